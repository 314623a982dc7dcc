"""A DCGAN-style GAN (Radford et al. 2016) for 28x28 digits, with the non-saturating loss.

Generator: z (N, latent_dim) -> Linear -> (2c, 7, 7) -> ConvT 4/2 -> (c, 14, 14) -> ConvT 4/2
-> (1, 28, 28) -> sigmoid (pixels in [0, 1], like the data). BatchNorm + ReLU in G as in DCGAN.
Discriminator: Conv 4/2 -> (c, 14, 14) -> Conv 4/2 -> (2c, 7, 7) -> Linear -> one logit,
LeakyReLU(0.2), no BatchNorm. Stabilisation, and why:
- spectral normalisation on every D layer (Miyato et al. 2018): bounds D's Lipschitz constant,
  so G's gradients stay informative when D wins early (the usual failure on small data);
- Adam(lr 2e-4, betas (0.5, 0.999)) from DCGAN;
- the non-saturating generator loss -log D(G(z)) (Goodfellow et al. 2014): its gradient does
  not vanish when D confidently rejects the fakes, unlike the minimax log(1 - D(G(z))).

Losses on logits l = D(x) (D(x) = sigmoid(l)), as means over the batch:
    discriminator_loss = -log sigmoid(l_real) - log(1 - sigmoid(l_fake)) = softplus(-l_real) + softplus(l_fake)
    generator_loss     = -log sigmoid(l_fake)                           = softplus(-l_fake)
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

__all__ = ["Generator", "Discriminator", "discriminator_loss", "generator_loss"]


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Mean BCE of D: real labelled 1, fake labelled 0. Logits (N,) / (M,) -> scalar."""
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating G loss: mean -log D(G(z)), i.e. fakes labelled 1. Logits (M,) -> scalar."""
    return F.softplus(-fake_logits).mean()


class Generator(nn.Module):
    """z (N, latent_dim) -> images (N, 28, 28) in [0, 1]."""

    def __init__(self, latent_dim: int = 64, channels: int = 32) -> None:
        super().__init__()
        self.latent_dim, c = latent_dim, channels
        self.project = nn.Sequential(nn.Linear(latent_dim, 2 * c * 7 * 7, bias=False),
                                     nn.BatchNorm1d(2 * c * 7 * 7), nn.ReLU())
        self.net = nn.Sequential(
            nn.ConvTranspose2d(2 * c, c, 4, stride=2, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(),
            nn.ConvTranspose2d(c, 1, 4, stride=2, padding=1))
        self.c = c

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.project(z).view(-1, 2 * self.c, 7, 7)
        return torch.sigmoid(self.net(h)).squeeze(1)

    @torch.no_grad()
    def sample(self, num_samples: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """(num_samples, 28, 28) in [0, 1]; call in eval mode (BatchNorm running statistics)."""
        p = next(self.parameters())
        return self(torch.randn(num_samples, self.latent_dim, generator=generator, dtype=p.dtype, device=p.device))


class Discriminator(nn.Module):
    """images (N, 28, 28) or (N, 1, 28, 28) -> logits (N,)."""

    def __init__(self, channels: int = 32) -> None:
        super().__init__()
        c = channels
        self.net = nn.Sequential(
            spectral_norm(nn.Conv2d(1, c, 4, stride=2, padding=1)), nn.LeakyReLU(0.2),
            spectral_norm(nn.Conv2d(c, 2 * c, 4, stride=2, padding=1)), nn.LeakyReLU(0.2),
            nn.Flatten(), spectral_norm(nn.Linear(2 * c * 7 * 7, 1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 3:
            x = x.unsqueeze(1)
        return self.net(x).squeeze(1)
