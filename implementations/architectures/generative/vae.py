"""A variational autoencoder (Kingma & Welling 2014) for 28x28 digits.

Gaussian posterior q(z|x) = N(mu(x), diag(exp(logvar(x)))), standard normal prior p(z),
Bernoulli decoder p(x|z) with logits (pixels in [0, 1] are the Bernoulli means; for
grey-level targets BCE is the usual surrogate, for binary digits it is the exact NLL).

Loss per image = reconstruction + KL, the negative evidence lower bound (nats):
    recon(x, logits) = sum_pixels BCE_with_logits(logits, x)
    KL(q || p)       = 1/2 sum_j (mu_j^2 + exp(logvar_j) - 1 - logvar_j)
Sampling z = mu + exp(logvar / 2) * eps keeps z differentiable in mu and logvar
(the reparameterisation trick).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["VAE", "reparameterize", "kl_divergence", "reconstruction_loss", "negative_elbo"]


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor, eps: torch.Tensor | None = None,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """z = mu + exp(logvar / 2) * eps, eps ~ N(0, I) unless given. mu, logvar, eps: (N, D)."""
    if eps is None:
        eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype, device=mu.device)
    return mu + torch.exp(0.5 * logvar) * eps


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) per row: (N, D) -> (N,) nats."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=-1)


def reconstruction_loss(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Bernoulli negative log-likelihood per image: logits, x (N, ...) -> (N,) nats."""
    return F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(dim=1)


class VAE(nn.Module):
    """MLP encoder 784 -> hidden -> (mu, logvar) of size latent_dim; MLP decoder back to logits.

    forward(x: (N, 28, 28) or (N, 1, 28, 28)) -> (logits (N, 1, 28, 28), mu (N, D), logvar (N, D)).
    """

    def __init__(self, latent_dim: int = 16, hidden_dim: int = 400) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.encoder = nn.Sequential(nn.Flatten(), nn.Linear(784, hidden_dim), nn.ReLU(),
                                     nn.Linear(hidden_dim, hidden_dim), nn.ReLU())
        self.to_mu = nn.Linear(hidden_dim, latent_dim)
        self.to_logvar = nn.Linear(hidden_dim, latent_dim)
        self.decoder = nn.Sequential(nn.Linear(latent_dim, hidden_dim), nn.ReLU(),
                                     nn.Linear(hidden_dim, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, 784))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.encoder(x)
        return self.to_mu(h), self.to_logvar(h)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Latents (N, D) -> pixel logits (N, 1, 28, 28)."""
        return self.decoder(z).view(-1, 1, 28, 28)

    def forward(self, x: torch.Tensor, eps: torch.Tensor | None = None,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, logvar = self.encode(x)
        return self.decode(reparameterize(mu, logvar, eps, generator)), mu, logvar

    @torch.no_grad()
    def sample(self, num_samples: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Decoder means sigmoid(logits) of z ~ N(0, I): (num_samples, 28, 28) in [0, 1]."""
        p = next(self.parameters())
        z = torch.randn(num_samples, self.latent_dim, generator=generator, dtype=p.dtype, device=p.device)
        return torch.sigmoid(self.decode(z)).squeeze(1)


def negative_elbo(model: VAE, x: torch.Tensor, eps: torch.Tensor | None = None,
                  generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-image (-ELBO, recon, KL), each (N,), for digits x (N, 1, 28, 28) in [0, 1]."""
    logits, mu, logvar = model(x, eps, generator)
    recon = reconstruction_loss(logits, x.reshape(logits.shape))
    kl = kl_divergence(mu, logvar)
    return recon + kl, recon, kl
