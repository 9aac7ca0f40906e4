"""The paper's linear model (Mu, Liang & Li, ICLR 2020, Eq. 2) and the heads compared with it.

    ĝ(x) = w1ᵀ f_θ̄(x) + ω̄ᵀ J_θ̄2(x) w2

code name      paper   what it holds
-----------    -----   ------------------------------------------------------------------
features       f_θ̄(x)  pooled activations of the frozen pre-trained network (cacheable)
z              —       output of the frozen layers below θ2 (the cacheable input of `top`)
top            —       the layers from the first θ2 block up to the pooled feature
theta2_bar     θ̄2      the frozen parameters of `top` that the gradient term differentiates
omega_bar      ω̄       classifier of a finished activation run (or random, for Table 1)
w1             w1      linear classifier on f_θ̄(x), initialised at ω̄, trained
w2             w2      one weight per θ2 entry, initialised at 0, trained; NTK coordinates
scales         s       NTK scale per θ2 tensor: the gradient term moves θ2 by s·w2

The gradient term is a forward-mode Jacobian-vector product (Eq. 5): one `torch.func.jvp` pass
through `top`, never the c × |θ2| per-sample gradients. Heads:
  actv      w1ᵀ f(x)                          trains w1
  grad      ω̄ᵀ J w2                           trains w2
  full      w1ᵀ f(x) + ω̄ᵀ J w2               trains w1, w2
  finetune  ωᵀ f_{θ̄1,θ2}(x), non-linear       trains θ2 (standard parametrisation) and ω
"""
import copy

import torch
from torch import nn
from torch.func import functional_call, jvp

from .nets import ntk_scales, theta2_names, to_standard

HEADS = ("actv", "grad", "full", "finetune")


def linearize(top, theta2_bar, direction, z):
    """(top(z; θ̄2), J_θ̄2(z)·direction): the network and its directional derivative
    d/dr top(z; θ̄2 + r·direction) at r = 0, in one forward-mode pass (Eq. 5)."""
    return jvp(lambda theta2: functional_call(top, theta2, (z,)), (theta2_bar,), (direction,))


def gradient_term(top, theta2_bar, omega_bar, direction, z):
    """ω̄ᵀ J_θ̄2(z) direction."""
    return linearize(top, theta2_bar, direction, z)[1] @ omega_bar.T


def g_hat(w1, features, top, theta2_bar, omega_bar, direction, z):
    """Eq. 2: w1ᵀ f_θ̄(x) + ω̄ᵀ J_θ̄2(x) w2, with w1 an nn.Linear and direction = s·w2.

    features=None: f_θ̄(x) is the primal output of the same pass (the activation and the
    gradient term then share one network, as everywhere but Table 1's ablation)."""
    f, df = linearize(top, theta2_bar, direction, z)
    return w1(f if features is None else features) + df @ omega_bar.T


class LinearModel(nn.Module):
    """The activation, gradient and full heads: the terms of ĝ that `head` names, trained."""

    def __init__(self, head, omega_bar, top=None, theta2_layers=(), omega_grad=None,
                 scale_rule="authors"):
        super().__init__()
        assert head in ("actv", "grad", "full"), head
        self.head = head
        if head in ("actv", "full"):
            self.w1 = copy.deepcopy(omega_bar).requires_grad_(True)
        if head in ("grad", "full"):
            self.top = copy.deepcopy(top).eval().requires_grad_(False)
            # nn.ParameterDict keys may not contain '.': w2[i] belongs to θ2 tensor names[i].
            self.names = theta2_names(self.top, theta2_layers)
            self.scales = ntk_scales(self.theta2_bar(), scale_rule)
            self.w2 = nn.ParameterList(torch.zeros_like(p) for p in self.theta2_bar().values())
            omega_grad = omega_bar if omega_grad is None else omega_grad
            self.register_buffer("omega_bar", omega_grad.weight.detach().clone())

    def theta2_bar(self):
        params = dict(self.top.named_parameters())
        return {n: params[n] for n in self.names}

    def direction(self):
        """s·w2 as a {θ2 name: tensor} dict: the step in standard coordinates."""
        return to_standard(dict(zip(self.names, self.w2)), self.scales)

    def forward(self, inputs):
        if self.head == "actv":
            return self.w1(inputs["features"])
        args = self.top, self.theta2_bar(), self.omega_bar, self.direction(), inputs["z"]
        if self.head == "grad":
            return gradient_term(*args)
        return g_hat(self.w1, inputs.get("features"), *args)


class FineTuned(nn.Module):
    """F_{θ2,ω}(x) = ωᵀ top(z; θ2): θ2 and ω start at θ̄2, ω̄ and are trained non-linearly."""

    def __init__(self, top, theta2_layers, omega_bar):
        super().__init__()
        self.head = "finetune"
        self.top = copy.deepcopy(top).requires_grad_(False)
        for n, p in self.top.named_parameters():
            p.requires_grad_(n in theta2_names(self.top, theta2_layers))
        self.omega = copy.deepcopy(omega_bar).requires_grad_(True)

    def forward(self, inputs):
        return self.omega(self.top(inputs["z"]))


def build_head(head, omega_bar, top=None, theta2_layers=(), omega_grad=None,
               scale_rule="authors"):
    if head == "finetune":
        return FineTuned(top, theta2_layers, omega_bar)
    return LinearModel(head, omega_bar, top, theta2_layers, omega_grad, scale_rule)
