"""ResNet base networks (method/resnet.py): torchvision's own forward as the reference, its
weights by name, batch norm folded through the residual blocks (their downsample branch too),
and the gradient term through BasicBlock and Bottleneck at both of Table 2's depths against the
float64 autograd oracle (value) and finite differences (the gradient training takes), on the JVP
and on the fast tangent path, which is checked against the JVP as well."""
import logging

import pytest
import torch
from torch import nn
from torchvision.models import resnet18, resnet50

from gradfeat_core.method.linear_model import FineTuned, LinearModel
from gradfeat_core.method.nets import fold_batchnorm, parse_layers, random_encoder, split
from gradfeat_core.method.registry import ARCHITECTURES
from gradfeat_core.method.resnet import from_torchvision

TORCHVISION = {"resnet18": resnet18, "resnet50": resnet50}


@pytest.fixture
def float64():
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(torch.float32)


@torch.no_grad()
def trained_looking(net, seed):
    """Batch norm with statistics and affine parameters far from 0/1: folding must use them."""
    g = torch.Generator().manual_seed(seed)
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            for t, lo, hi in ((m.weight, 0.5, 1.5), (m.bias, -0.2, 0.2), (m.running_mean, -0.3, 0.3),
                              (m.running_var, 0.5, 2.0)):
                t.copy_(torch.empty(t.shape).uniform_(lo, hi, generator=g))
    return net.eval()


@pytest.mark.parametrize("arch", TORCHVISION)
def test_the_features_are_torchvisions_forward_without_its_classifier(arch):
    torch.manual_seed(0)
    reference = trained_looking(TORCHVISION[arch](weights=None), 1)
    ours = ARCHITECTURES[arch]()
    ours.load_state_dict(from_torchvision(reference.state_dict(), arch))
    reference.fc = nn.Identity()
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(ours.eval()(x), reference(x))
    assert ours(x).shape == (2, ours.FEATURE_DIM) == (2, {"resnet18": 512, "resnet50": 2048}[arch])


def test_another_architectures_weights_are_a_one_line_error_that_names_them():
    with pytest.raises(ValueError, match=r"^the weights are not resnet18's \(a resnet50 state dict\)"):
        from_torchvision(resnet50(weights=None).state_dict(), "resnet18")
    with pytest.raises(ValueError, match=r"not resnet50's \(a resnet18 state dict\)"):
        from_torchvision(resnet18(weights=None).state_dict(), "resnet50")
    with pytest.raises(ValueError, match="no registered ResNet"):
        from_torchvision({"layer1.0.conv1.weight": torch.zeros(1)}, "resnet18")


@pytest.mark.parametrize("arch", TORCHVISION)
def test_folding_batch_norm_through_residual_blocks_is_exact(arch, float64):
    torch.manual_seed(0)
    net = trained_looking(ARCHITECTURES[arch](), 2)
    folded = fold_batchnorm(net)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    top = folded._modules[net.LAYERS[-1]]
    first = folded._modules[net.LAYERS[len(net.LAYERS) - net.DEPTHS[-1]]]   # layer4.0: downsamples
    assert first.downsample[0].bias is not None and top.conv1.bias is not None
    x = torch.rand(2, 3, 48, 48)
    with torch.no_grad():
        torch.testing.assert_close(folded(x), net(x), rtol=1e-10, atol=1e-12)


def folded_top(arch, spec, seed=0):
    torch.manual_seed(seed)
    net = fold_batchnorm(trained_looking(ARCHITECTURES[arch](), seed + 1)).requires_grad_(False)
    layers = parse_layers(spec, net.LAYERS)
    bottom, top = split(net, layers)
    return net, layers, top, bottom(torch.rand(2, 3, 48, 48))


SPECS = [("resnet18", "block8"), ("resnet18", "block7-8"), ("resnet50", "block16"), ("resnet50", "block15-16")]


@pytest.mark.parametrize("arch,spec", SPECS)
@pytest.mark.parametrize("path", ["fast", "jvp"])
def test_the_gradient_term_through_residual_blocks_equals_the_autograd_oracle(arch, spec, path, float64,
                                                                              explicit_gradient_term):
    net, layers, top, z = folded_top(arch, spec)
    omega = nn.Linear(net.FEATURE_DIM, 3)
    model = LinearModel("grad", omega, top, layers, path=path)
    assert (model.layers is not None) == (path == "fast")
    with torch.no_grad():
        for w in model.w2:
            w.normal_(0, 0.05)
    expected = explicit_gradient_term(model.top, model.theta2_bar(), model.omega_bar, model.direction(), z)
    torch.testing.assert_close(model({"z": z}), expected, rtol=1e-9, atol=1e-12)
    # the gradient training takes: a directional derivative of the loss in w2, by central differences
    labels = torch.tensor([0, 2])
    loss = lambda: nn.functional.cross_entropy(model({"z": z}), labels)  # noqa: E731
    grads = torch.autograd.grad(loss(), list(model.w2))
    v = [torch.randn_like(w) for w in model.w2]
    h = 1e-6
    with torch.no_grad():
        for w, d in zip(model.w2, v):
            w.add_(h * d)
        up = loss()
        for w, d in zip(model.w2, v):
            w.sub_(2 * h * d)
        down = loss()
    assert sum((g * d).sum() for g, d in zip(grads, v)) == pytest.approx(((up - down) / (2 * h)).item(), rel=1e-6)


@pytest.mark.parametrize("arch,spec", SPECS[:2])
def test_the_full_model_is_the_networks_first_order_expansion_through_residual_blocks(arch, spec, float64):
    """top(θ̄2 + ε·d) − top(θ̄2) − ε·J d shrinks as ε²: the tangent is the derivative."""
    from gradfeat_core.method.linear_model import linearize
    from torch.func import functional_call
    net, layers, top, z = folded_top(arch, spec)
    theta2 = {n: p for n, p in top.named_parameters() if n.split(".")[0] in layers}
    d = {n: torch.randn_like(p) * p.abs().mean() for n, p in theta2.items()}
    f, jd = linearize(top, theta2, d, z)
    remainders = [(functional_call(top, {n: p + eps * d[n] for n, p in theta2.items()}, (z,)) - f - eps * jd).norm()
                  for eps in (1e-5, 5e-6)]   # small enough that no ReLU flips
    assert 3.5 < (remainders[0] / remainders[1]).item() < 4.5


def test_fine_tuning_trains_the_theta2_blocks_alone():
    net, layers, top, z = folded_top("resnet18", "block7-8")
    tuned = FineTuned(top, layers, nn.Linear(512, 3))
    torch.testing.assert_close(tuned({"z": z}), tuned.omega(top(z)))
    assert {n.split(".")[0] for n, p in tuned.top.named_parameters() if p.requires_grad} == {"block7", "block8"}


def test_the_random_twin_is_seeded_and_calibrated():
    images = torch.rand(16, 3, 32, 32)
    a, b, c = (random_encoder(3, 0.0, True, s, images, 16, arch="resnet18") for s in (5, 5, 6))
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(a(x), b(x)) and not torch.equal(a(x), c(x))
    bn = a._modules["stem"][1]
    assert not torch.equal(bn.running_mean, torch.zeros_like(bn.running_mean))


@pytest.mark.parametrize("size", [32, 64])   # layer4 at 1×1 (convs as matrix products) and at 2×2
@pytest.mark.parametrize("arch,spec", SPECS)
@pytest.mark.parametrize("head", ["grad", "full"])
def test_the_fast_path_through_residual_blocks_equals_the_jvp_in_value_and_gradient(arch, spec, head, size, float64):
    torch.manual_seed(0)
    net = fold_batchnorm(trained_looking(ARCHITECTURES[arch](), 1)).requires_grad_(False)
    layers = parse_layers(spec, net.LAYERS)
    bottom, top = split(net, layers)
    z = bottom(torch.rand(2, 3, size, size))
    omega = nn.Linear(net.FEATURE_DIM, 3)
    models = [LinearModel(head, omega, top, layers, path=p) for p in ("fast", "jvp")]
    assert models[0].layers is not None and models[1].layers is None
    state = {k: v if k.startswith("top.") else v + 0.05 * torch.randn_like(v)
             for k, v in models[0].state_dict().items()}   # θ̄2 stays; w1, w2, ω̄ move
    outs = []
    for model in models:
        model.load_state_dict(state)
        out = model({"z": z})
        outs.append((out, torch.autograd.grad(out.pow(2).sum(), [p for p in model.parameters() if p.requires_grad])))
    torch.testing.assert_close(outs[0][0], outs[1][0], rtol=1e-10, atol=1e-12)
    for a, b in zip(outs[0][1], outs[1][1]):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    from gradfeat_core.method import tangent
    primal = tangent.record(models[0].layers, z)   # the cached record gives the same
    torch.testing.assert_close(models[0]({"z": z, "primal": primal}), outs[0][0])
    tuned = FineTuned(top, layers, omega)
    assert tuned.layers is not None
    torch.testing.assert_close(tuned({"z": z}), omega(top(z)), rtol=1e-10, atol=1e-12)


def test_a_block_with_batch_norm_not_folded_runs_on_the_jvp_and_says_why(caplog):
    torch.manual_seed(0)
    net = ARCHITECTURES["resnet18"]().eval()
    _, top = split(net, ["block8"])
    with caplog.at_level(logging.WARNING):
        model = LinearModel("grad", nn.Linear(512, 3), top, ["block8"])
    assert model.layers is None and "BatchNorm2d" in caplog.text
