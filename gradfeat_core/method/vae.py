"""The VAE base network of Table 3's lower half (Berthelot et al. 2019's architecture, as Mu et
al. 2020 use it): pre-training by the evidence lower bound on [−1, 1] pixels.

    encoder  q(z|x): the eight-conv `VAEEncoder` (the f of the heads, θ2 = conv8), then
             conv9 = 3×3 from conv8's 512×4×4 output to (μ, log σ²), each latent×4×4
    decoder  p(x|z): the encoder's scales in reverse: per scale two 3×3 convs (leaky 0.2), then
             2× nearest upsampling, 4×4 → 32×32; one more 3×3 conv at 32×32, and a last 3×3
             conv to C channels (the mean)

Loss per image: ‖x − decoder(z)‖² / (2 s²) (a Gaussian likelihood of fixed standard deviation
s = `pretrain.likelihood_std`, summed over pixels) + KL(q(z|x) ‖ N(0, I)), z = μ + σ·ε by the
reparametrisation trick. Every conv starts at He et al.'s initialisation (`nets.he_init`).

Samples: the decoder of z ~ N(0, I) (the prior), and of z ~ N(m, C), the Gaussian with the first
two moments of the aggregate posterior q(z) = E_x q(z|x) over training images
(`aggregate_posterior`; ex-post density estimation, Ghosh et al. 2020). After the hundreds of
updates a CPU affords, q(z) is far from N(0, I) (docs/base-networks.md): prior samples fall where
no image was encoded and decode to noise, while N(m, C)'s are trousers, tops, dresses, shoes and
bags.
"""
from collections import OrderedDict

import torch
from torch import nn

from .nets import BaseNetwork, he_init
from .registry import Objective, architecture, one_loss, register

VAE_LAYERS = tuple(f"conv{i}" for i in range(1, 9))
VAE_CONVS = ((64, 1), (64, 3), (64, 3), (128, 3), (128, 3), (256, 3), (256, 3), (512, 3))  # (out, kernel)
VAE_POOLED = ("conv3", "conv5", "conv7")  # blocks that end with a 2×2 average pool


@architecture
class VAEEncoder(BaseNetwork):
    """f(x) of the VAE (Berthelot et al. 2019, as Mu et al. 2020): 3×3 convs with padding 1
    (conv1 is 1×1), each followed by leaky ReLU 0.2, no batch norm; conv3, conv5 and conv7 end
    with a 2×2 average pool; f = conv8's 512×4×4 output average-pooled to 512-d. θ2 = conv8.

        conv1  C→64    1×1  32×32     conv4  64→128  16×16      conv7  256→256 8×8 → 4×4
        conv2  64→64        32×32     conv5  128→128 16×16 → 8  conv8  256→512 4×4
        conv3  64→64        32×32 → 16  conv6 128→256  8×8      pool   average → 512-d f(x)
    """
    ARCH, LAYERS = "vae", VAE_LAYERS
    DESCRIPTION = "the VAE's eight-conv encoder (Berthelot et al. 2019)"
    BATCHNORM = False
    BENCH_LAYERS = ("conv8",)

    def __init__(self, in_channels=1, leak=0.2, batchnorm=False):
        if batchnorm:
            raise ValueError("the VAE encoder has no batch norm: set base.batchnorm to false")
        blocks, channels = OrderedDict(), in_channels
        for name, (out, kernel) in zip(VAE_LAYERS, VAE_CONVS):
            layers = [nn.Conv2d(channels, out, kernel, padding=kernel // 2), nn.LeakyReLU(leak)]
            layers += [nn.AvgPool2d(2)] if name in VAE_POOLED else []
            blocks[name] = nn.Sequential(*layers)
            channels = out
        blocks["pool"] = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        super().__init__(blocks)
        self.config = dict(in_channels=in_channels, leak=leak, batchnorm=False)

    def reset_parameters(self, generator=None):
        """He et al. 2015's initialisation for this leaky network (`he_init`), drawn from
        `generator`: without batch norm, ALI's N(0, 0.01) would shrink the signal ~100× per layer."""
        return he_init(self, self.config["leak"], generator)


DECODER_WIDTHS = (256, 128, 64)  # the encoder's widths before each pool, from the top down


class VAE(nn.Module):
    """E = q(z|x) and D = p(x|z); `features` is exactly the encoder the heads load."""

    def __init__(self, in_channels, latent, leak):
        super().__init__()
        self.features = VAEEncoder(in_channels, leak)
        self.posterior = nn.Conv2d(512, 2 * latent, 3, padding=1)
        layers, channels = [], latent
        for width in DECODER_WIDTHS:
            layers += [nn.Conv2d(channels, width, 3, padding=1), nn.LeakyReLU(leak),
                       nn.Conv2d(width, width, 3, padding=1), nn.LeakyReLU(leak),
                       nn.Upsample(scale_factor=2, mode="nearest")]
            channels = width
        layers += [nn.Conv2d(channels, channels, 3, padding=1), nn.LeakyReLU(leak),
                   nn.Conv2d(channels, in_channels, 3, padding=1)]
        self.decoder = nn.Sequential(*layers)
        self.latent = latent

    def posterior_of(self, x):
        """(μ, log σ²) of q(z|x), each (B, latent, 4, 4)."""
        h = x
        for name in self.features.LAYERS:  # conv1..conv8: conv8's 512×4×4 map, not pooled
            h = self.features._modules[name](h)
        return self.posterior(h).chunk(2, dim=1)

    def decode(self, z):
        return self.decoder(z)

    def reconstruct(self, x):
        """decoder(μ(x)): the reconstruction grid's right-hand images."""
        return self.decode(self.posterior_of(x)[0])

    def sample_latent(self, n, generator=None, device=None, moments=None):
        """n latents from N(0, I), or from N(m, C) for moments = (m, C) of flattened z."""
        eps = torch.randn(n, self.latent * 16, generator=generator, dtype=torch.float64)
        if moments is not None:
            mean, cov = moments
            eps = mean.double().cpu() + eps @ torch.linalg.cholesky(cov.double().cpu()).T
        return eps.float().view(n, self.latent, 4, 4).to(device)


@torch.no_grad()
def aggregate_posterior(vae, x, batch=500):
    """(m, C): mean and covariance of q(z) = E_x q(z|x) over the images x, z flattened; by the
    law of total covariance C = Cov_x(μ(x)) + E_x diag σ²(x), positive definite since σ² > 0."""
    mu, log_var = zip(*(vae.posterior_of(x[i:i + batch]) for i in range(0, len(x), batch)))
    mu, var = torch.cat(mu).flatten(1).double(), torch.cat(log_var).flatten(1).double().exp()
    return mu.mean(0), torch.cov(mu.T, correction=0) + torch.diag(var.mean(0))


def kl_to_standard_normal(mu, log_var):
    """KL(N(μ, σ²) ‖ N(0, 1)) per image, summed over latent entries."""
    return 0.5 * (mu.pow(2) + log_var.exp() - 1 - log_var).flatten(1).sum(1)


def vae_losses(nets, x, likelihood_std=1.0):
    """(loss, reconstruction, kl): the negative ELBO per image (up to a constant) and its two
    terms, batch means; the reconstruction term is the squared error over 2 likelihood_std²."""
    vae = nets["E"]
    mu, log_var = vae.posterior_of(x)
    z = mu + torch.exp(0.5 * log_var) * torch.randn_like(mu)
    reconstruction = (vae.decode(z) - x).pow(2).flatten(1).sum(1).mean() / (2 * likelihood_std**2)
    kl = kl_to_standard_normal(mu, log_var).mean()
    return reconstruction + kl, reconstruction, kl


def build_vae(in_channels, latent, leak, seed):
    """{'E': the VAE}, He et al.'s initialisation from seed."""
    generator = torch.Generator().manual_seed(seed)
    return {"E": he_init(VAE(in_channels, latent, leak), leak, generator)}


FITTED_IMAGES = 5000  # training images whose posteriors give the VAE's N(m, C) (C: 256² numbers)


def figures(nets, data, p, generator):
    """The decoder of z ~ N(0, I) and of z ~ N(m, C) fitted to q(z) (aggregate_posterior, on up
    to FITTED_IMAGES training images), and test images beside the decoder of their μ(x)."""
    vae, device, x = nets["E"], data.x_test.device, data.x_test[:32]
    samples = vae.decode(vae.sample_latent(64, generator, device))
    moments = aggregate_posterior(vae, data.x_train[:FITTED_IMAGES])
    return {"samples.png": samples,
            "samples_fitted.png": vae.decode(vae.sample_latent(64, generator, device, moments)),
            "reconstructions.png": torch.stack([x, vae.reconstruct(x)], 1).flatten(0, 1)}


register(Objective(
    "vae", "a VAE (the paper's Table 3, lower half)", "vae",
    {"loss": "negative ELBO", "reconstruction": "reconstruction ‖x − x̂‖²/2", "kl": "KL(q(z|x) ‖ N(0, I))"},
    build=lambda c, p, leak, seed: build_vae(c, p["latent"], leak, seed),
    update=one_loss(lambda nets, x, p: vae_losses(nets, x, p["likelihood_std"])),
    pixel_range=(-1.0, 1.0), figures=figures, log_scale=True,  # the ELBO falls by orders at first
    figure_files=("samples.png", "samples_fitted.png", "reconstructions.png"), paper="vae"))
