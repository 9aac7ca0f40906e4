"""gradfeat_core: a reproduction of "Gradients as Features for Deep Representation Learning"
(Mu, Liang & Li, ICLR 2020). The method lives in `linear_model`; see the README for the rest."""
__version__ = "0.1.0"
