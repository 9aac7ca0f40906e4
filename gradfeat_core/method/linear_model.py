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

The gradient term is a forward-mode Jacobian-vector product (Eq. 5), never the c × |θ2|
per-sample gradients. Two implementations of the same tangent J_θ̄2(x)·(s·w2):
  linearize          one `torch.func.jvp` through `top`: the reference, and the fallback
  tangent.linearize  only the tangent, from a primal record of θ̄2 computed once per data set
                     (`path="fast"`, the default, for the layer types of our base networks)
Heads:
  actv      w1ᵀ f(x)                          trains w1
  grad      ω̄ᵀ J w2                           trains w2
  full      w1ᵀ f(x) + ω̄ᵀ J w2               trains w1, w2
  finetune  ωᵀ f_{θ̄1,θ2}(x), non-linear       trains θ2 (standard parametrisation) and ω
"""
import copy
import logging

import torch
from torch import nn
from torch.func import functional_call, jvp

from . import tangent
from .nets import ntk_scales, theta2_names, to_standard

log = logging.getLogger(__name__)

HEADS = ("actv", "grad", "full", "finetune")


def linearize(top, theta2_bar, direction, z):
    """(top(z; θ̄2), J_θ̄2(z)·direction): the network and its directional derivative
    d/dr top(z; θ̄2 + r·direction) at r = 0, in one forward-mode pass (Eq. 5)."""
    return jvp(lambda theta2: functional_call(top, theta2, (z,)), (theta2_bar,), (direction,))


def g_hat(w1, features, omega_bar, jw2):
    """Eq. 2: w1ᵀ f_θ̄(x) + ω̄ᵀ J_θ̄2(x) w2, with w1 an nn.Linear and jw2 = J_θ̄2(x)·(s·w2) from
    either implementation of the tangent."""
    return torch.addmm(w1(features), jw2, omega_bar.T)


def fast_path(top, path, reference="the gradient term runs on torch.func.jvp"):
    """The layers `tangent` runs `top` as, or None for the reference (asked for, or a layer it
    does not know: then one log line says so)."""
    layers = tangent.plan(top) if path == "fast" else None
    if path == "fast" and layers is None:
        log.warning("the fast tangent path does not know %s in this network: %s",
                    tangent.unsupported(top), reference)
    return layers


class LinearModel(nn.Module):
    """The activation, gradient and full heads: the terms of ĝ that `head` names, trained."""

    def __init__(self, head, omega_bar, top=None, theta2_layers=(), omega_grad=None,
                 scale_rule="authors", path="fast"):
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
            self.layers = fast_path(self.top, path)

    def theta2_bar(self):
        params = dict(self.top.named_parameters())
        return {n: params[n] for n in self.names}

    def direction(self):
        """s·w2 as a {θ2 name: tensor} dict: the step in standard coordinates."""
        return to_standard(dict(zip(self.names, self.w2)), self.scales)

    def linearize(self, inputs):
        """(f_θ̄(x), J_θ̄2(x)·(s·w2)) on the fast path when it applies, else on the JVP. The
        primal record comes from the frozen-part cache, or is computed here from z."""
        z = inputs["z"]
        if self.layers is None:
            return linearize(self.top, self.theta2_bar(), self.direction(), z)
        primal = inputs.get("primal") or tangent.record(self.layers, z)
        return tangent.linearize(self.layers, primal, z, dict(zip(self.names, self.w2)),
                                 self.scales)

    def forward(self, inputs):
        if self.head == "actv":
            return self.w1(inputs["features"])
        f, jw2 = self.linearize(inputs)
        if self.head == "grad":
            return jw2 @ self.omega_bar.T
        # f_θ̄(x) is the primal of the same network unless Table 1's ablation gives it apart.
        return g_hat(self.w1, inputs.get("features", f), self.omega_bar, jw2)


class FineTuned(nn.Module):
    """F_{θ2,ω}(x) = ωᵀ top(z; θ2): θ2 and ω start at θ̄2, ω̄ and are trained non-linearly."""

    def __init__(self, top, theta2_layers, omega_bar, path="fast"):
        super().__init__()
        self.head = "finetune"
        self.top = copy.deepcopy(top).requires_grad_(False)
        for n, p in self.top.named_parameters():
            p.requires_grad_(n in theta2_names(self.top, theta2_layers))
        self.omega = copy.deepcopy(omega_bar).requires_grad_(True)
        self.layers = fast_path(self.top, path, "fine-tuning runs on the network's own modules")

    def forward(self, inputs):
        z = inputs["z"]
        return self.omega(self.top(z) if self.layers is None else tangent.forward(self.layers, z))


def build_head(head, omega_bar, top=None, theta2_layers=(), omega_grad=None,
               scale_rule="authors", path="fast"):
    """path: 'fast' (tangent.py where it knows the layers, else the JVP) or 'jvp'."""
    if head == "finetune":
        return FineTuned(top, theta2_layers, omega_bar, path)
    return LinearModel(head, omega_bar, top, theta2_layers, omega_grad, scale_rule, path)
