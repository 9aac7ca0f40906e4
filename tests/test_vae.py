"""The VAE base network (Table 3's lower half): architecture, loss, pre-training, heads on conv8."""
import pytest
import torch

from gradfeat_core.experiments.checkpoint import CheckpointError, load_checkpoint, load_into
from gradfeat_core.method.linear_model import linearize
from gradfeat_core.method.nets import FEATURE_DIM, Encoder, split
from gradfeat_core.method.vae import VAE_LAYERS, VAEEncoder
from gradfeat_core.experiments.params import ParamError, load_params
from gradfeat_core.experiments.pretrain import pretrain
from gradfeat_core.experiments.run import run_head
from gradfeat_core.method.vae import aggregate_posterior, build_vae, kl_to_standard_normal, vae_losses


def quick(tmp_path, *sets):
    return load_params("quick", [f"out_dir={tmp_path}", "data.n_train=64", "data.n_test=32",
                                 "base.calibrate_images=64", *sets], objective="vae")


def test_encoder_shapes_follow_the_paper():
    """f is conv8's 512×4×4 output average-pooled; θ2 = conv8 sees conv7's pooled 256×4×4."""
    net = VAEEncoder(1).reset_parameters(torch.Generator().manual_seed(0))
    x = torch.randn(2, 1, 32, 32)
    assert net(x).shape == (2, FEATURE_DIM) and net.LAYERS == VAE_LAYERS
    bottom, top = split(net, ["conv8"])
    assert bottom(x).shape == (2, 256, 4, 4)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())
    assert net.conv8[1].negative_slope == 0.2
    with pytest.raises(ValueError, match="batch norm"):
        VAEEncoder(1, batchnorm=True)


def test_he_initialisation_keeps_the_signal_where_pytorchs_default_loses_it():
    """At PyTorch's default init the VAE encoder's conv8 output is ~60x smaller than its input,
    and a random VAE encoder's features hardly vary: the random reference would be at chance."""
    x = torch.rand(64, 1, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1

    def conv8_rms(net):  # conv8's output against the input, root mean squares
        with torch.no_grad():
            h = x
            for name in VAE_LAYERS:
                h = net._modules[name](h)
        return (h.pow(2).mean() / x.pow(2).mean()).sqrt()

    torch.manual_seed(0)
    assert conv8_rms(VAEEncoder(1)) < 0.05  # nn.Conv2d's own init
    he = VAEEncoder(1).reset_parameters(torch.Generator().manual_seed(0))
    assert 0.2 < conv8_rms(he) < 2
    weights = [m.weight for m in he.modules() if isinstance(m, torch.nn.Conv2d)]
    for w in weights:  # N(0, 2 / ((1 + 0.2²) fan_in)), biases 0
        assert abs(w.std().item() / (2 / (1.04 * w[0].numel())) ** 0.5 - 1) < 0.1
    # the pre-training init is the same rule, one seed one network
    a, b = build_vae(1, 4, 0.2, seed=3)["E"], build_vae(1, 4, 0.2, seed=3)["E"]
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert all(not m.bias.any() for m in a.modules() if isinstance(m, torch.nn.Conv2d))


def test_the_likelihoods_standard_deviation_scales_the_reconstruction_term():
    nets = build_vae(1, 4, 0.2, seed=0)
    x = torch.rand(8, 1, 32, 32) * 2 - 1
    torch.manual_seed(1)
    _, unit, kl = vae_losses(nets, x)
    torch.manual_seed(1)
    _, half, kl_half = vae_losses(nets, x, likelihood_std=0.5)
    torch.testing.assert_close(half, 4 * unit)
    torch.testing.assert_close(kl_half, kl)


def test_kl_matches_torch_distributions():
    torch.manual_seed(0)
    mu, log_var = torch.randn(3, 4, 4, 4), torch.randn(3, 4, 4, 4)
    q = torch.distributions.Normal(mu, torch.exp(0.5 * log_var))
    p = torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu))
    reference = torch.distributions.kl_divergence(q, p).flatten(1).sum(1)
    torch.testing.assert_close(kl_to_standard_normal(mu, log_var), reference)


def test_aggregate_posterior_has_the_moments_of_the_mixture_of_posteriors():
    """q(z) = (1/N) Σ_x N(μ(x), σ²(x)): its mean and variances from torch.distributions'
    mixture (exact), its covariance from sampling the mixture, all in float64."""
    vae = build_vae(1, 2, 0.2, seed=0)["E"]
    x = torch.rand(6, 1, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    mean, cov = aggregate_posterior(vae, x, batch=4)  # two batches
    with torch.no_grad():
        mu, log_var = (t.flatten(1).double() for t in vae.posterior_of(x))
    components = torch.distributions.Independent(torch.distributions.Normal(mu, (0.5 * log_var).exp()), 1)
    mixture = torch.distributions.MixtureSameFamily(
        torch.distributions.Categorical(torch.ones(len(x), dtype=torch.float64)), components)
    torch.testing.assert_close(mean, mixture.mean)
    torch.testing.assert_close(cov.diagonal(), mixture.variance)
    torch.manual_seed(1)
    z = mixture.sample((200_000,))
    scale = cov.diagonal().sqrt()
    torch.testing.assert_close(cov / scale / scale[:, None], torch.corrcoef(z.T), atol=0.02, rtol=0)
    # and sampling N(m, C) gives latents of those moments, in the decoder's shape
    z = vae.sample_latent(100_000, torch.Generator().manual_seed(2), moments=(mean, cov))
    assert z.shape == (100_000, 2, 4, 4) and z.dtype == torch.float32
    flat = z.flatten(1).double()
    assert ((flat.mean(0) - mean).abs() / scale).max() < 0.03
    torch.testing.assert_close(torch.cov(flat.T) / scale / scale[:, None], cov / scale / scale[:, None],
                               atol=0.03, rtol=0)
    prior = vae.sample_latent(100_000, torch.Generator().manual_seed(2)).flatten(1)
    assert prior.mean(0).abs().max() < 0.03 and (prior.var(0) - 1).abs().max() < 0.03


def test_loss_is_the_negative_elbo_and_every_weight_gets_a_gradient():
    nets = build_vae(1, 4, 0.2, seed=0)
    x = torch.rand(8, 1, 32, 32) * 2 - 1
    loss, reconstruction, kl = vae_losses(nets, x)
    assert torch.isclose(loss, reconstruction + kl) and kl >= 0 and reconstruction > 0
    loss.backward()
    missing = [n for n, p in nets["E"].named_parameters() if p.grad is None or not p.grad.abs().sum()]
    assert not missing


def test_pretraining_resumes_exactly_and_writes_every_output(tmp_path):
    whole = pretrain(quick(tmp_path / "whole"))
    pretrain(quick(tmp_path / "split"), stop_after=2)
    resumed = pretrain(quick(tmp_path / "split"))
    assert whole["status"] == resumed["status"] == "finished"
    a, _ = load_checkpoint(tmp_path / "whole/pretrain/vae/state.pt")
    b, _ = load_checkpoint(tmp_path / "split/pretrain/vae/state.pt")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    out = tmp_path / "whole/pretrain/vae"
    for name in ("encoder.pt", "random_encoder.pt", "samples.png", "samples_fitted.png", "reconstructions.png",
                 "losses.csv", "losses.png", "pretrain.json"):
        assert (out / name).is_file(), name
    assert (out / "losses.csv").read_text().splitlines()[0] == "iteration,loss,reconstruction,kl"


def test_heads_run_on_conv8_and_checkpoints_are_refused_across_architectures(tmp_path):
    pretrain(quick(tmp_path))
    out = tmp_path / "pretrain/vae"
    sets = [f"base.checkpoint={out / 'encoder.pt'}", f"base.random_checkpoint={out / 'random_encoder.pt'}"]
    params = quick(tmp_path, *sets, "model.head=grad")
    assert params["model"]["layers"] == "conv8"
    assert 0 <= run_head(params).accuracy <= 1
    # the ALI encoder's settings refuse a VAE encoder file, and the VAE's an ALI one
    with pytest.raises(CheckpointError, match="arch"):
        load_into(Encoder(1, 0.2, batchnorm=False), out / "encoder.pt",
                  Encoder(1, 0.2, batchnorm=False).meta("synthetic", [-1, 1]))
    with pytest.raises(ParamError, match="conv8"):
        quick(tmp_path, "model.layers=conv5")
    with pytest.raises(ParamError, match="batch"):
        quick(tmp_path, "base.batchnorm=true")


def test_fast_tangent_at_conv8_equals_the_jvp():
    """conv8 (3×3, padding 1, at 4×4) → leaky ReLU → pool: the fast path against torch.func.jvp,
    in float64."""
    from gradfeat_core.method import tangent
    torch.manual_seed(0)
    net = VAEEncoder(1).reset_parameters(torch.Generator().manual_seed(1)).double()
    _, top = split(net, ["conv8"])
    z = torch.randn(5, 256, 4, 4, dtype=torch.float64)
    plan = tangent.plan(top)
    assert plan is not None
    theta2 = {n: p.detach() for n, p in top.named_parameters()}
    w2 = {n: torch.randn_like(p) for n, p in theta2.items()}
    scales = {n: 0.5 + i for i, n in enumerate(theta2)}
    f, jw2 = tangent.linearize(plan, tangent.record(plan, z), z, w2, scales)
    ref_f, ref = linearize(top, theta2, {n: scales[n] * w2[n] for n in w2}, z)
    torch.testing.assert_close(f, ref_f)
    torch.testing.assert_close(jw2, ref, rtol=1e-10, atol=1e-12)
