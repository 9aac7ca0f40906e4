"""The maths of the linear model against independent references (autograd, finite differences,
float64): the JVP term, the Taylor-expansion identity (Eq. 3), NTK conversion, batch-norm folding."""
from collections import OrderedDict

import pytest
import torch
from torch import nn
from torch.func import functional_call

from gradfeat_core.method.linear_model import LinearModel, g_hat, linearize
from gradfeat_core.method.nets import (LAYERS, Encoder, FEATURE_DIM, calibrate_batchnorm, fold_batchnorm,
                                ntk_scales, parse_layers, split, theta2_names, to_standard)

CLASSES = 10


@pytest.fixture(autouse=True)
def float64():
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(torch.float32)


def random_encoder(leak, seed=0, batchnorm=False):
    """The paper's encoder with PyTorch's default init (non-zero conv biases when no batch norm)."""
    torch.manual_seed(seed)
    return Encoder(in_channels=1, leak=leak, batchnorm=batchnorm).double().eval()


def top_and_z(net, layers, n=3, seed=1):
    torch.manual_seed(seed)
    x = torch.rand(n, 1, 32, 32)
    bottom, top = split(net, layers)
    return top, bottom(x).detach()


def random_like(params, seed=2):
    g = torch.Generator().manual_seed(seed)
    return {k: torch.randn(v.shape, generator=g) for k, v in params.items()}


def gradient_term(top, theta2, omega, direction, z):
    """ω̄ᵀ J_θ̄2(z) direction from the package's JVP (linearize): what the tests below check."""
    return linearize(top, theta2, direction, z)[1] @ omega.T


@pytest.mark.parametrize("leak", [0.01, 0.2])
@pytest.mark.parametrize("spec", ["conv5", "conv4-5", "conv3-5"])
def test_jvp_equals_explicit_per_sample_jacobian_product(leak, spec, explicit_gradient_term):
    layers = parse_layers(spec)
    top, z = top_and_z(random_encoder(leak), layers, n=2)
    names = theta2_names(top, layers)
    assert any(n.endswith("bias") for n in names)  # conv biases are part of θ2 here
    theta2 = {n: p.detach() for n, p in top.named_parameters() if n in names}
    omega = torch.randn(CLASSES, FEATURE_DIM)
    direction = random_like(theta2)
    fast = gradient_term(top, theta2, omega, direction, z)
    slow = explicit_gradient_term(top, theta2, omega, direction, z)
    torch.testing.assert_close(fast, slow, rtol=1e-9, atol=1e-12)


def test_gradient_head_uses_ntk_direction(explicit_gradient_term):
    """The grad head's logits are ω̄ᵀ J (s ⊙ w2), w2 in NTK coordinates."""
    layers = parse_layers("conv4-5")
    top, z = top_and_z(random_encoder(0.2), layers, n=2)
    omega = nn.Linear(FEATURE_DIM, CLASSES)
    model = LinearModel("grad", omega, top, layers)
    w2 = random_like(model.theta2_bar())
    with torch.no_grad():
        for p, n in zip(model.w2, model.names):
            p.copy_(w2[n])
    step = {n: model.scales[n] * w2[n] for n in model.names}
    expected = explicit_gradient_term(top, model.theta2_bar(), omega.weight, step, z)
    torch.testing.assert_close(model({"z": z}), expected, rtol=1e-9, atol=1e-12)


def network_output(top, theta2, omega, z):
    """F_{θ2,ω}(z) = ωᵀ top(z; θ2) + b, the non-linear network the linear model expands."""
    return omega(functional_call(top, theta2, (z,)))


@pytest.mark.parametrize("spec", ["conv5", "conv3-5"])
def test_full_model_is_first_order_taylor_expansion(spec):
    """ĝ(w1 = ω̄ + εΔω, w2 = εΔθ) − F(θ̄2 + εΔθ, ω̄ + εΔω) = O(ε²) (Eq. 3).

    Leaky ReLU is piecewise linear, so the remainder of its expansion jumps whenever a tiny
    step crosses a kink; a smooth activation (softplus) shows the clean second-order decay."""
    layers = parse_layers(spec)
    net = random_encoder(0.01)
    for block in LAYERS:
        net._modules[block][-1] = nn.Softplus(beta=4.0)
    top, z = top_and_z(net, layers)
    theta2 = {n: p.detach() for n, p in top.named_parameters() if n in theta2_names(top, layers)}
    omega_bar = nn.Linear(FEATURE_DIM, CLASSES)
    d_theta, d_omega = random_like(theta2, 3), random_like(dict(omega_bar.named_parameters()), 4)
    features = top(z)

    def error(eps):
        w1 = nn.Linear(FEATURE_DIM, CLASSES)
        w1.load_state_dict({k: v + eps * d_omega[k] for k, v in omega_bar.state_dict().items()})
        step = {k: eps * v for k, v in d_theta.items()}
        linear = g_hat(w1, features, omega_bar.weight, linearize(top, theta2, step, z)[1])
        moved = {k: v + eps * d_theta[k] for k, v in theta2.items()}
        return (linear - network_output(top, moved, w1, z)).abs().max().item()

    e1, e2 = error(1e-4), error(5e-5)
    assert 3.5 < e1 / e2 < 4.5  # halving ε quarters the error: second order
    # At w2 = 0 the expansion is exact, whatever w1.
    assert error(0.0) < 1e-12


@pytest.mark.parametrize("spec", ["conv5", "conv4-5", "conv3-5"])
def test_gradient_term_matches_finite_differences(spec):
    layers = parse_layers(spec)
    top, z = top_and_z(random_encoder(0.2), layers)
    theta2 = {n: p.detach() for n, p in top.named_parameters() if n in theta2_names(top, layers)}
    omega = torch.randn(CLASSES, FEATURE_DIM)
    w2 = random_like(theta2)
    h = 1e-9  # small enough that no leaky-ReLU kink lies within ±h of θ̄2 (float64 keeps 7 digits)
    plus = functional_call(top, {k: v + h * w2[k] for k, v in theta2.items()}, (z,)) @ omega.T
    minus = functional_call(top, {k: v - h * w2[k] for k, v in theta2.items()}, (z,)) @ omega.T
    torch.testing.assert_close(gradient_term(top, theta2, omega, w2, z), (plus - minus) / (2 * h),
                               rtol=1e-5, atol=1e-6)


def test_backprop_through_jvp_gives_the_gradient_wrt_w2():
    """gradcheck of the gradient term w.r.t. the direction on a small generic network."""
    torch.manual_seed(0)
    top = nn.Sequential(OrderedDict(
        a=nn.Sequential(nn.Conv2d(2, 3, 3), nn.LeakyReLU(0.2)),
        b=nn.Sequential(nn.Conv2d(3, 4, 3), nn.LeakyReLU(0.2)),
        pool=nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten()))).double()
    z, omega = torch.randn(2, 2, 6, 6), torch.randn(5, 4)
    theta2 = {n: p.detach() for n, p in top.named_parameters()}
    names = list(theta2)

    def term(*tensors):
        return gradient_term(top, theta2, omega, dict(zip(names, tensors)), z)

    w2 = tuple(torch.randn(theta2[n].shape, requires_grad=True) for n in names)
    assert torch.autograd.gradcheck(term, w2)


def test_ntk_conversion_preserves_function():
    layers = parse_layers("conv3-5")
    top, z = top_and_z(random_encoder(0.01), layers)
    params = {n: p.detach() for n, p in top.named_parameters()}
    for rule in ("authors", "fan_in"):
        scales = ntk_scales(params, rule)
        ntk = {n: p / scales[n] for n, p in params.items()}  # stored values: s·w unchanged
        assert not torch.allclose(ntk["conv5.0.weight"], params["conv5.0.weight"])
        torch.testing.assert_close(functional_call(top, to_standard(ntk, scales), (z,)), top(z))
        torch.testing.assert_close(to_standard(ntk, scales), params)


def test_ntk_scale_rules():
    params = {"w": torch.zeros(512, 256, 4, 4), "b": torch.zeros(512)}
    authors, fan_in = ntk_scales(params, "authors"), ntk_scales(params, "fan_in")
    assert authors["w"] == pytest.approx((1 / 512) ** 0.5) and authors["b"] == pytest.approx(0.1 ** 0.5)
    assert fan_in["w"] == pytest.approx(1 / (256 * 16) ** 0.5)


def test_batchnorm_folding_is_exact_in_eval_mode():
    torch.manual_seed(0)
    net = Encoder(in_channels=3, leak=0.2, batchnorm=True).double()
    x = torch.rand(8, 3, 32, 32)
    calibrate_batchnorm(net, torch.rand(64, 3, 32, 32), batch_size=16)
    with torch.no_grad():  # non-trivial affine parameters as well as statistics
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
    folded = fold_batchnorm(net)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    assert all(m.bias is not None for m in folded.modules() if isinstance(m, nn.Conv2d))
    torch.testing.assert_close(folded(x), net.eval()(x), rtol=1e-10, atol=1e-12)


def test_batchnorm_folding_keeps_an_existing_conv_bias():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(2, 3, 3, bias=True), nn.BatchNorm2d(3)).double()
    with torch.no_grad():
        net[1].running_mean.uniform_(-1, 1)
        net[1].running_var.uniform_(0.5, 2)
    x = torch.randn(4, 2, 5, 5)
    torch.testing.assert_close(fold_batchnorm(net)(x), net.eval()(x))


def test_calibrated_statistics_are_the_data_statistics():
    torch.manual_seed(0)
    net = Encoder(in_channels=1, batchnorm=True).double()
    x = torch.rand(40, 1, 32, 32)
    calibrate_batchnorm(net, x, batch_size=40)
    conv1_out = net.conv1[0](x)
    torch.testing.assert_close(net.conv1[1].running_mean, conv1_out.mean((0, 2, 3)))


def test_layer_specs_and_split():
    assert parse_layers("conv5") == ["conv5"]
    assert parse_layers("conv3-5") == ["conv3", "conv4", "conv5"]
    for bad in ("conv7", "conv2-9", "fc", ""):
        with pytest.raises(ValueError, match="do not exist"):
            parse_layers(bad)
    net = Encoder().eval()
    bottom, top = split(net, parse_layers("conv4-5"))
    assert list(bottom._modules) == ["conv1", "conv2", "conv3"]
    assert list(top._modules) == ["conv4", "conv5", "pool"]
    x = torch.rand(2, 1, 32, 32)
    torch.testing.assert_close(top(bottom(x)), net(x))


@pytest.mark.parametrize("size", [32, 48])
def test_flops_per_block_are_what_torch_flop_counter_counts(size):
    """Every registered base network's BaseNetwork.flops (shapes on the meta device, 2 per
    multiply-accumulate) against torch.utils.flop_counter on a real forward of each block."""
    from torch.utils.flop_counter import FlopCounterMode
    from gradfeat_core.method.registry import ARCHITECTURES
    assert {"ali", "vae"} <= set(ARCHITECTURES)
    for arch, cls in ARCHITECTURES.items():
        net = cls(in_channels=3).eval()
        counted, x = net.flops(size), torch.rand(1, 3, size, size)
        for name in net.LAYERS:
            with FlopCounterMode(display=False) as counter, torch.no_grad():
                x = net._modules[name](x)
            assert counted[name] == counter.get_total_flops() > 0, (arch, name)


@pytest.mark.parametrize("size", [32, 128])
def test_map_sides_are_each_blocks_output_as_a_real_forward_gives_it(size):
    """BaseNetwork.map_sides (meta device) against a forward pass of real tensors, block by block;
    and the hand-counted case: a ResNet18 halves its input five times, so its top block sees a
    1×1 map of a 32 px image and 4×4 of a 128 px one."""
    from gradfeat_core.method.registry import ARCHITECTURES
    for arch, cls in ARCHITECTURES.items():
        net = cls(in_channels=1).eval()
        sides, x = net.map_sides(size), torch.rand(1, 1, size, size)
        with torch.no_grad():
            for name in net.LAYERS:
                x = net._modules[name](x)
                assert sides[name] == x.shape[-1], (arch, name)
    assert ARCHITECTURES["resnet18"](in_channels=1).map_sides(size)["block8"] == size // 32
