"""The method: the paper's linear model and heads (linear_model, Eq. 2), the tangent without a JVP
(tangent), the base networks (nets) and what pre-trains them (gan, vae, rotation).

Every module here is imported with the package, so that each objective and architecture
registers itself (registry.OBJECTIVES, registry.ARCHITECTURES): a new one is its module alone.
"""
import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
