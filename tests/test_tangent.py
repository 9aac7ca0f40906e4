"""The fast tangent path (tangent.py) against its references: torch.func.jvp (linear_model.linearize)
and the float64 autograd oracle of test_linear_model; values and the gradients training takes."""
import copy
import functools
import logging
from collections import OrderedDict

import pytest
import torch
from torch import nn

from gradfeat_core.method import tangent
from gradfeat_core.method.linear_model import LinearModel, FineTuned, linearize
from gradfeat_core.method.nets import (Encoder, FEATURE_DIM, calibrate_batchnorm, fold_batchnorm, mix,
                                parse_layers, split, theta2_names, LAYERS)
from gradfeat_core.experiments.train import FrozenInputs, Of

CLASSES = 10
DEPTHS = ["conv5", "conv4-5", "conv3-5"]


@pytest.fixture(autouse=True)
def float64():
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(torch.float32)


@functools.lru_cache
def encoder(leak, seed):
    """A folded encoder as the heads see one: batch norm with data statistics folded into conv
    weights and (non-zero) biases. Shared between tests: copy before changing it."""
    torch.manual_seed(seed)
    net = Encoder(in_channels=1, leak=leak, batchnorm=True)
    calibrate_batchnorm(net, torch.rand(64, 1, 32, 32))
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.bias.uniform_(-0.3, 0.3)
    return fold_batchnorm(net).requires_grad_(False)


def networks(leak, mixed):
    """Table 1's networks: all pre-trained, or θ1 and θ2 from different encoders."""
    nets = {"pretrained": encoder(leak, 0), "random": encoder(leak, 1)}
    if not mixed:
        return nets["pretrained"]
    return mix(nets, {n: "pretrained" if n in ("conv4", "conv5") else "random" for n in LAYERS})


def model_pair(head, spec, leak, mixed, omega_random, seed=3):
    """The same head on the fast path and on the JVP, with the same non-zero w2 and w1."""
    layers = parse_layers(spec)
    bottom, top = split(networks(leak, mixed), layers)
    torch.manual_seed(seed)
    omega = nn.Linear(FEATURE_DIM, CLASSES)
    omega_grad = nn.Linear(FEATURE_DIM, CLASSES) if omega_random else None
    models = [LinearModel(head, omega, top, layers, omega_grad, path=p) for p in ("fast", "jvp")]
    state = {k: v if k.startswith("top.") else v + 0.05 * torch.randn_like(v)
             for k, v in models[0].state_dict().items()}  # θ̄2 stays; w1, w2, ω̄ move
    for m in models:
        m.load_state_dict(state)
    x = torch.rand(6, 1, 32, 32)
    return models, bottom(x), top


@pytest.mark.parametrize("omega_random", [False, True])
@pytest.mark.parametrize("mixed", [False, True])
@pytest.mark.parametrize("leak", [0.01, 0.2])
@pytest.mark.parametrize("spec", DEPTHS)
@pytest.mark.parametrize("head", ["grad", "full"])
def test_fast_path_equals_jvp_in_value_and_gradient(head, spec, leak, mixed, omega_random):
    (fast, slow), z, _ = model_pair(head, spec, leak, mixed, omega_random)
    assert fast.layers is not None and slow.layers is None
    outs = []
    for model in (fast, slow):
        out = model({"z": z})
        grads = torch.autograd.grad(out.pow(2).sum(), [p for p in model.parameters() if p.requires_grad])
        outs.append((out, grads))
    torch.testing.assert_close(outs[0][0], outs[1][0], rtol=1e-10, atol=1e-12)
    for a, b in zip(outs[0][1], outs[1][1]):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("leak", [0.01, 0.2])
@pytest.mark.parametrize("spec", DEPTHS)
def test_fast_tangent_equals_the_autograd_oracle(spec, leak, explicit_gradient_term):
    """ω̄ᵀ J (s·w2) on the fast path against per-sample reverse-mode gradients (no JVP at all)."""
    (model, _), z, _ = model_pair("grad", spec, leak, mixed=True, omega_random=False)
    expected = explicit_gradient_term(model.top, model.theta2_bar(), model.omega_bar,
                                      model.direction(), z)
    torch.testing.assert_close(model({"z": z}), expected, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("spec", DEPTHS)
def test_cached_record_equals_record_computed_per_batch(spec):
    """The primal record kept with the frozen-part cache (computed once, indexed per batch) gives
    the same logits as the record the model computes from z, and as the JVP."""
    (fast, slow), _, top = model_pair("full", spec, 0.2, mixed=False, omega_random=False)
    layers = parse_layers(spec)
    bottom = split(networks(0.2, False), layers)[0]
    plan = tangent.plan(top)
    parts = {"z": bottom, "primal": Of("z", functools.partial(tangent.record, plan))}
    x = torch.rand(20, 1, 32, 32)
    cached, per_batch = (FrozenInputs(parts, x, cache=True, batch_size=7),
                         FrozenInputs({"z": bottom}, x, cache=False))
    idx = torch.tensor([3, 0, 17, 9])
    batch = cached[idx]
    assert set(batch["primal"]) >= {"conv5.2.output"}
    torch.testing.assert_close(fast(batch), fast(per_batch[idx]), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(fast(batch), slow(per_batch[idx]), rtol=1e-10, atol=1e-12)


def test_record_holds_activations_and_the_features():
    net = encoder(0.2, 0)
    layers = parse_layers("conv3-5")
    bottom, top = split(net, layers)
    z = bottom(torch.rand(3, 1, 32, 32))
    rec = tangent.record(tangent.plan(top), z)
    # conv5's output is 1×1: f_θ̄(x) is the last ReLU's output itself, kept once
    assert sorted(rec) == ["conv3.2.output", "conv4.2.output", "conv5.2.output"]
    torch.testing.assert_close(tangent.features(tangent.plan(top), rec), top(z))
    torch.testing.assert_close(rec["conv4.2.output"], top[:2](z))  # conv5's input


@pytest.mark.parametrize("spec", DEPTHS)
def test_finetuning_fast_forward_equals_the_module(spec):
    layers = parse_layers(spec)
    bottom, top = split(encoder(0.01, 0), layers)
    z = bottom(torch.rand(5, 1, 32, 32))
    torch.manual_seed(0)
    omega = nn.Linear(FEATURE_DIM, CLASSES)
    fast, slow = FineTuned(top, layers, omega, "fast"), FineTuned(top, layers, omega, "jvp")
    assert fast.layers is not None and slow.layers is None
    outs = [m({"z": z}) for m in (fast, slow)]
    torch.testing.assert_close(outs[0], outs[1], rtol=1e-10, atol=1e-12)
    grads = [torch.autograd.grad(o.sum(), [p for p in m.parameters() if p.requires_grad])
             for o, m in zip(outs, (fast, slow))]
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_a_conv_covering_its_input_is_a_matrix_product_by_shape_not_name():
    conv = nn.Conv2d(6, 5, 3)
    assert tangent.covers_input(conv, torch.zeros(2, 6, 3, 3))
    assert not tangent.covers_input(conv, torch.zeros(2, 6, 4, 4))
    assert not tangent.covers_input(nn.Conv2d(6, 5, 3, padding=1), torch.zeros(2, 6, 3, 3))
    h = torch.randn(4, 6, 3, 3)
    torch.testing.assert_close(tangent.affine(conv, h, conv.weight, conv.bias), conv(h).flatten(1))
    # A network whose blocks have other names runs the fast path all the same, and matches the JVP.
    top = nn.Sequential(OrderedDict(
        first=nn.Sequential(nn.Conv2d(2, 6, 3, stride=2), nn.ReLU()),
        second=nn.Sequential(nn.Conv2d(6, 7, 3), nn.LeakyReLU(0.1)),
        head=nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(7, 8), nn.LeakyReLU(0.3))))
    z = torch.randn(4, 2, 7, 7)
    assert tangent.covers_input(top.second[0], top.first(z))
    theta2 = {n: p.detach() for n, p in top.named_parameters()}
    w2 = {n: torch.randn_like(p) for n, p in theta2.items()}
    scales = {n: 0.5 + i for i, n in enumerate(theta2)}
    plan = tangent.plan(top)
    f, jw2 = tangent.linearize(plan, tangent.record(plan, z), z, w2, scales)
    ref_f, ref = linearize(top, theta2, {n: scales[n] * w2[n] for n in w2}, z)
    torch.testing.assert_close(f, ref_f)
    torch.testing.assert_close(jw2, ref, rtol=1e-10, atol=1e-12)


def test_an_unknown_layer_runs_on_the_jvp_with_one_log_line(caplog):
    layers = parse_layers("conv4-5")
    top = split(copy.deepcopy(encoder(0.2, 0)), layers)[1]
    top.conv5[2] = nn.Softplus()
    with caplog.at_level(logging.WARNING, logger="gradfeat_core"):
        model = LinearModel("full", nn.Linear(FEATURE_DIM, CLASSES), top, layers)
    assert model.layers is None
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and "Softplus" in lines[0] and "torch.func.jvp" in lines[0]
    z = torch.rand(2, 128, 10, 10)
    assert model({"z": z}).shape == (2, CLASSES)  # runs, no error


def test_theta2_without_the_layers_below_has_no_input_tangent():
    """θ2 = conv5 only, though `top` starts lower: conv4 is frozen, so the tangent starts at conv5."""
    layers = parse_layers("conv4-5")
    bottom, top = split(encoder(0.2, 0), layers)
    z = bottom(torch.rand(3, 1, 32, 32))
    names = theta2_names(top, ["conv5"])
    theta2 = {n: p for n, p in top.named_parameters() if n in names}
    w2 = {n: torch.randn_like(p) for n, p in theta2.items()}
    plan = tangent.plan(top)
    _, fast = tangent.linearize(plan, tangent.record(plan, z), z, w2, dict.fromkeys(w2, 1.0))
    torch.testing.assert_close(fast, linearize(top, theta2, w2, z)[1], rtol=1e-10, atol=1e-12)
