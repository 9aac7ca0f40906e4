"""The method: the paper's linear model and heads (linear_model, Eq. 2), the tangent without a JVP
(tangent), the base networks (nets) and what pre-trains them (gan, vae, rotation)."""
from . import gan, rotation, vae  # noqa: E402,F401  each registers its objective (registry.OBJECTIVES)
