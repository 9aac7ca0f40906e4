"""Claim C7 on real data: ĝ is the first-order Taylor expansion of the network around (θ̄2, ω̄).

The full model's logits are ĝ(x) = w1ᵀ f_θ̄(x) + ω̄ᵀ J_θ̄2(x) w2 (Eq. 2), and the network it
linearises is F(x; θ2, ω) = ωᵀ top(z; θ2). With Δ = s·w2 (the step in standard coordinates):
    F(x; θ̄2 + εΔ, ω̄ + ε(w1 − ω̄)) = ĝ_ε(x) + O(ε²),
so the gap ‖F − ĝ_ε‖ shrinks about four times when ε halves (twice, relative to the size of
the step ‖ĝ_ε − ĝ_0‖), and at ε = 1 it says how far the learned ĝ is from the network
evaluated at the parameters it points to.
"""
import torch
from torch.func import functional_call

from .train import predict
from ..method.linear_model import linearize


def jvp_against_autograd(top, theta2_bar, direction, z):
    """Largest |forward-mode JVP − reverse-mode (double-vjp) JVP| relative to the JVP's scale:
    torch.autograd.functional.jvp never runs forward mode, so it is an independent reference."""
    names = list(theta2_bar)

    def f(*theta2):
        return functional_call(top, dict(zip(names, theta2)), (z,))

    _, forward = linearize(top, theta2_bar, direction, z)
    _, reverse = torch.autograd.functional.jvp(f, tuple(theta2_bar.values()),
                                               tuple(direction[n] for n in names))
    return ((forward - reverse).abs().max() / forward.abs().max().clamp_min(1e-30)).item()


@torch.no_grad()
def taylor_gap(model, z, features, eps=1.0):
    """(ĝ_ε logits, F logits at θ̄2 + εΔ and ω̄ + ε(w1 − ω̄)) for a trained full model; both
    keep w1's bias, which cancels in their difference."""
    theta2_bar, omega_bar = model.theta2_bar(), model.omega_bar
    step = {n: eps * d for n, d in model.direction().items()}
    w1 = omega_bar + eps * (model.w1.weight - omega_bar)
    b1 = model.w1.bias  # the bias is not linearised (θ2 does not reach it): the same in both
    f, df = linearize(model.top, theta2_bar, step, z)
    base = features if features is not None else f
    g = base @ w1.T + b1 + df @ omega_bar.T
    moved = {n: theta2_bar[n] + step[n] for n in theta2_bar}
    F = functional_call(model.top, moved, (z,)) @ w1.T + b1
    return g, F


def taylor_report(model, inputs, n_images, eps_values=(0.25, 0.5, 1.0)):
    """Per ε: the gap ‖F − ĝ‖ (over all logits), relative to ‖ĝ − ĝ_0‖, and how often F and ĝ
    predict the same class."""
    batch = inputs[torch.arange(min(n_images, len(inputs)))]
    g0, _ = taylor_gap(model, batch["z"], batch.get("features"), eps=0.0)
    rows = []
    for eps in eps_values:
        g, F = taylor_gap(model, batch["z"], batch.get("features"), eps)
        rows.append({"eps": eps, "gap": (F - g).norm().item(),
                     "relative_gap": ((F - g).norm() / (g - g0).norm()).item(),
                     "same_prediction": (F.argmax(1) == g.argmax(1)).float().mean().item()})
    return rows


def agreement(model_a, inputs_a, model_b, inputs_b):
    """Fraction of images on which two models predict the same class."""
    return (predict(model_a, inputs_a).argmax(1) == predict(model_b, inputs_b).argmax(1)).float().mean().item()
