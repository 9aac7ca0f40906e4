"""BiGAN/ALI networks (Dumoulin et al. 2016; Donahue et al. 2016) and their two objectives.

    encoder  E: x → z   the five-conv `Encoder` (the f of the heads) + 1×1 convs to (μ, log σ)
    generator G: z → x  transposed convs 4s1 256, 4s2 128, 4s1 64, 4s2 32, 5s1 32, 1×1 32, 1×1 C
    discriminator D(x, z): D(x) = the five convs without batch norm, D(z) = two 1×1 convs 512,
                           joined by 1×1 convs 1024, 1024, 1 (a logit / critic value)

Objectives: `ali` (Jensen-Shannon, non-saturating; dropout in D; sigmoid output, [0, 1] pixels)
and `wali` (WGAN-GP on (x, z) pairs; no dropout or normalisation in the critic; tanh output,
[−1, 1] pixels; the encoder gives μ without sampling).
"""
from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

from .nets import ALI_CONVS, FEATURE_DIM, LAYERS, Encoder
from .registry import Objective, check, register

OBJECTIVES = {"ali": {"pixel_range": [0.0, 1.0], "output": nn.Sigmoid, "dropout": True},
              "wali": {"pixel_range": [-1.0, 1.0], "output": nn.Tanh, "dropout": False}}


class Dropout(nn.Dropout):
    """nn.Dropout with its mask drawn by uniform_ instead of bernoulli_: the same distribution,
    about 3x faster on CPU, where bernoulli_ took ~15% of an ALI update."""

    def forward(self, x):
        if not self.training or self.p == 0:
            return x
        keep = torch.empty_like(x).uniform_() >= self.p
        return x * keep / (1 - self.p)


def block(conv, channels, leak, batchnorm=True, dropout=0.0):
    layers = [Dropout(dropout)] if dropout else []
    layers += [conv] + ([nn.BatchNorm2d(channels)] if batchnorm else []) + [nn.LeakyReLU(leak)]
    return nn.Sequential(*layers)


class BiGANEncoder(nn.Module):
    """E(x): `features` is exactly the encoder the heads load; `latent` maps f(x) to (μ, log σ)."""

    def __init__(self, in_channels, latent, leak, stochastic=True):
        super().__init__()
        self.features = Encoder(in_channels, leak, batchnorm=True)
        self.latent = nn.Sequential(
            block(nn.Conv2d(FEATURE_DIM, FEATURE_DIM, 1, bias=False), FEATURE_DIM, leak),
            nn.Conv2d(FEATURE_DIM, 2 * latent, 1))
        self.stochastic = stochastic

    def forward(self, x):
        mu, log_sigma = self.latent(self.features(x)[:, :, None, None]).chunk(2, dim=1)
        if not self.stochastic:
            return mu
        return mu + log_sigma.exp() * torch.randn_like(mu)


class Generator(nn.Sequential):
    """G(z): latent×1×1 → C×32×32."""

    def __init__(self, out_channels, latent, leak, output=nn.Sigmoid):
        layers, channels = [], latent
        for out, kernel, stride in ((256, 4, 1), (128, 4, 2), (64, 4, 1), (32, 4, 2), (32, 5, 1)):
            layers.append(block(nn.ConvTranspose2d(channels, out, kernel, stride, bias=False),
                                out, leak))
            channels = out
        layers.append(block(nn.Conv2d(32, 32, 1, bias=False), 32, leak))
        super().__init__(*layers, nn.Conv2d(32, out_channels, 1), output())


class Discriminator(nn.Module):
    """D(x, z) → one logit (ali) or critic value (wali) per pair."""

    def __init__(self, in_channels, latent, leak, dropout=True):
        super().__init__()
        p_in, p = (0.2, 0.5) if dropout else (0.0, 0.0)
        convs, channels = OrderedDict(), in_channels
        for i, (name, (out, kernel, stride)) in enumerate(zip(LAYERS, ALI_CONVS)):
            convs[name] = block(nn.Conv2d(channels, out, kernel, stride), out, leak,
                                batchnorm=False, dropout=p_in if i == 0 else p)
            channels = out
        self.dx = nn.Sequential(convs)
        self.dz = nn.Sequential(block(nn.Conv2d(latent, 512, 1), 512, leak, False, p_in),
                                block(nn.Conv2d(512, 512, 1), 512, leak, False, p))
        self.dxz = nn.Sequential(block(nn.Conv2d(1024, 1024, 1), 1024, leak, False, p),
                                 block(nn.Conv2d(1024, 1024, 1), 1024, leak, False, p),
                                 Dropout(p) if p else nn.Identity(), nn.Conv2d(1024, 1, 1))

    def forward(self, x, z):
        return self.dxz(torch.cat([self.dx(x), self.dz(z)], dim=1)).flatten()


def init_normal(module, std=0.01, generator=None):
    """ALI's initialisation: every conv weight N(0, std), biases 0, batch-norm scale 1."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            with torch.no_grad():
                m.weight.copy_(torch.randn(m.weight.shape, generator=generator) * std)
                if m.bias is not None:
                    m.bias.zero_()
        elif isinstance(m, nn.BatchNorm2d):
            m.reset_parameters()
    return module


def build_bigan(objective, in_channels, latent, leak, seed, init_std=0.01):
    """E, G, D initialised from `seed`: N(0, init_std) as ALI, or PyTorch's default
    (scaled by fan-in) when init_std is None."""
    spec = OBJECTIVES[objective]
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    nets = {"E": BiGANEncoder(in_channels, latent, leak, stochastic=objective == "ali"),
            "G": Generator(in_channels, latent, leak, spec["output"]),
            "D": Discriminator(in_channels, latent, leak, dropout=spec["dropout"])}
    if init_std is None:
        return nets
    return {k: init_normal(v, init_std, generator=g) for k, v in nets.items()}


def ali_losses(nets, x, z):
    """(D loss, E/G loss), Jensen-Shannon: D tells (x, E(x)) from (G(z), z); E, G use the
    non-saturating swap of the labels."""
    E, G, D = nets["E"], nets["G"], nets["D"]
    real, fake = D(x, E(x)), D(G(z), z)
    d_loss = F.softplus(-real).mean() + F.softplus(fake).mean()
    eg_loss = F.softplus(real).mean() + F.softplus(-fake).mean()
    return d_loss, eg_loss


def gradient_penalty(D, x_real, z_real, x_fake, z_fake):
    """E[(‖∇D(x̂, ẑ)‖ − 1)²] on random interpolates of the real and fake pairs (joint norm)."""
    a = torch.rand(len(x_real), 1, 1, 1, device=x_real.device)
    x_hat = (a * x_real + (1 - a) * x_fake).requires_grad_(True)
    z_hat = (a * z_real + (1 - a) * z_fake).requires_grad_(True)
    gx, gz = torch.autograd.grad(D(x_hat, z_hat).sum(), (x_hat, z_hat), create_graph=True)
    norm = torch.sqrt(gx.flatten(1).pow(2).sum(1) + gz.flatten(1).pow(2).sum(1) + 1e-12)
    return ((norm - 1) ** 2).mean()


def wali_critic_loss(nets, x, z, gp_weight):
    E, G, D = nets["E"], nets["G"], nets["D"]
    with torch.no_grad():
        z_real, x_fake = E(x), G(z)
    wasserstein = D(x_fake, z).mean() - D(x, z_real).mean()
    return wasserstein + gp_weight * gradient_penalty(D, x, z_real, x_fake, z)


def wali_eg_loss(nets, x, z):
    E, G, D = nets["E"], nets["G"], nets["D"]
    return D(x, E(x)).mean() - D(G(z), z).mean()


def _z(p, x_batches):
    """z ~ N(0, I) for a batch as large as the last one."""
    return torch.randn(len(x_batches[-1]), p["latent"], 1, 1, device=x_batches[-1].device)


def ali_update(nets, opts, x_batches, p):
    """One forward pass, two gradients: D's from d_loss, E's and G's from eg_loss."""
    d_loss, eg_loss = ali_losses(nets, x_batches[-1], _z(p, x_batches))
    check(d_loss=d_loss, eg_loss=eg_loss)
    for opt in opts.values():
        opt.zero_grad(set_to_none=True)
    d_params = list(nets["D"].parameters())
    d_grads = torch.autograd.grad(d_loss, d_params, retain_graph=True)
    eg_loss.backward(inputs=[*nets["E"].parameters(), *nets["G"].parameters()])
    for q, g in zip(d_params, d_grads):
        q.grad = g
    opts["D"].step()
    opts["EG"].step()
    return d_loss.item(), eg_loss.item()


def wali_update(nets, opts, x_batches, p):
    """One critic update per batch, then one encoder/generator update on the last."""
    for x in x_batches:
        d_loss = wali_critic_loss(nets, x, _z(p, x_batches), p["gp_weight"])
        check(d_loss=d_loss)
        opts["D"].zero_grad(set_to_none=True)
        d_loss.backward()
        opts["D"].step()
    eg_loss = wali_eg_loss(nets, x_batches[-1], _z(p, x_batches))
    check(eg_loss=eg_loss)
    opts["EG"].zero_grad(set_to_none=True)
    eg_loss.backward(inputs=[*nets["E"].parameters(), *nets["G"].parameters()])
    opts["EG"].step()
    return d_loss.item(), eg_loss.item()


def figures(nets, data, p, generator):
    """G(z) samples, and test images beside G(E(x))."""
    x = data.x_test[:32]
    return {"samples.png": nets["G"](torch.randn(64, p["latent"], 1, 1, generator=generator).to(x.device)),
            "reconstructions.png": torch.stack([x, nets["G"](nets["E"](x))], 1).flatten(0, 1)}


RECORDS = {"d_loss": "discriminator / critic", "eg_loss": "encoder + generator"}
for _name, _update in (("ali", ali_update), ("wali", wali_update)):
    register(Objective(
        _name, f"BiGAN ({_name})", "ali", RECORDS,
        build=lambda c, p, leak, seed, name=_name: build_bigan(name, c, p["latent"], leak, seed, p["init_std"]),
        update=_update, pixel_range=tuple(OBJECTIVES[_name]["pixel_range"]), figures=figures,
        figure_files=("samples.png", "reconstructions.png"), critic_batches=_name == "wali",
        paper="bigan" if _name == "ali" else None))  # the paper's BiGAN is ALI's Jensen-Shannon one
