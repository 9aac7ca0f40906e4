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
updates a CPU affords, q(z) is far from N(0, I) (on Fashion-MNIST after the profile's 600 updates
the covariance's eigenvalues spanned 0.012 to 24, README): prior samples fall where no image was
encoded and decode to noise, while N(m, C)'s are trousers, tops, dresses, shoes and bags.
"""
import torch
from torch import nn

from .nets import VAEEncoder, he_init

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
