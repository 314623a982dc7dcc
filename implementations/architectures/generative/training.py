"""Seeded training loops for the VAE, the GAN and the diffusion model on digits in [0, 1].

Every loop draws its batches and noise from one ``torch.Generator`` seeded with ``seed`` and
returns a history of per-step losses, so the same seed on the same thread count gives the
same model. ``build(name, cfg)`` makes a model from an experiments/generative.toml table.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch
from torch import nn

from .diffusion import Diffusion
from .gan import Discriminator, Generator, discriminator_loss, generator_loss
from .unet import UNet
from .vae import VAE, negative_elbo

__all__ = ["History", "build", "train_vae", "train_gan", "train_diffusion", "sample", "MODELS"]

MODELS = ("vae", "gan", "diffusion")


@dataclass
class History:
    """Per-step training curves, name -> list of floats."""
    curves: dict[str, list[float]] = field(default_factory=dict)

    def log(self, **values: float) -> None:
        for k, v in values.items():
            self.curves.setdefault(k, []).append(float(v))


def build(name: str, cfg: dict) -> nn.Module:
    """A fresh model from its settings: "vae" -> VAE, "gan" -> ModuleDict(G, D), "diffusion" -> Diffusion."""
    if name == "vae":
        return VAE(latent_dim=cfg["latent_dim"], hidden_dim=cfg["hidden_dim"])
    if name == "gan":
        return nn.ModuleDict({"G": Generator(cfg["latent_dim"], cfg["channels"]), "D": Discriminator(cfg["channels"])})
    if name == "diffusion":
        return Diffusion(UNet(cfg["channels"], cfg["emb_dim"]), cfg["schedule"], cfg["num_timesteps"])
    raise ValueError(f"unknown model {name!r}; expected one of {MODELS}")


def _batches(n: int, batch_size: int, steps: int, g: torch.Generator):
    """`steps` index batches, reshuffling (with `g`) after each pass over n items."""
    perm, pos = torch.randperm(n, generator=g), 0
    for _ in range(steps):
        if pos + batch_size > n:
            perm, pos = torch.randperm(n, generator=g), 0
        yield perm[pos:pos + batch_size]
        pos += batch_size


def train_vae(model: VAE, images: torch.Tensor, steps: int, batch_size: int, lr: float, seed: int) -> History:
    """Adam on the mean per-image negative ELBO. images: (N, 28, 28) float in [0, 1]."""
    g, hist = torch.Generator().manual_seed(seed), History()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    x_all = images.reshape(-1, 1, 28, 28)
    model.train()
    for idx in _batches(len(x_all), batch_size, steps, g):
        nelbo, recon, kl = negative_elbo(model, x_all[idx], generator=g)
        loss = nelbo.mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        hist.log(neg_elbo=loss.item(), recon=recon.mean().item(), kl=kl.mean().item())
    return hist


def train_gan(gan: nn.ModuleDict, images: torch.Tensor, steps: int, batch_size: int, lr: float,
              seed: int, betas: tuple[float, float] = (0.5, 0.999)) -> History:
    """Alternating updates, one D step then one G step (non-saturating loss) per batch."""
    g, hist = torch.Generator().manual_seed(seed), History()
    G, D = gan["G"], gan["D"]
    opt_g = torch.optim.Adam(G.parameters(), lr=lr, betas=betas)
    opt_d = torch.optim.Adam(D.parameters(), lr=lr, betas=betas)
    gan.train()
    for idx in _batches(len(images), batch_size, steps, g):
        real = images[idx]
        z = torch.randn(len(idx), G.latent_dim, generator=g)
        fake = G(z)
        real_logits, fake_logits = D(real), D(fake.detach())
        d_loss = discriminator_loss(real_logits, fake_logits)
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        g_loss = generator_loss(D(fake))
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        hist.log(d_loss=d_loss.item(), g_loss=g_loss.item(),
                 d_real=torch.sigmoid(real_logits).mean().item(), d_fake=torch.sigmoid(fake_logits).mean().item())
    return hist


def train_diffusion(diffusion: Diffusion, images: torch.Tensor, steps: int, batch_size: int, lr: float,
                    seed: int, ema_decay: float = 0.995) -> tuple[History, Diffusion]:
    """Adam on the simple epsilon-MSE; returns the history and an EMA copy of the weights,
    which is what is sampled from (Ho et al. 2020 sample from an EMA too)."""
    g, hist = torch.Generator().manual_seed(seed), History()
    opt = torch.optim.Adam(diffusion.eps_model.parameters(), lr=lr)
    ema = copy.deepcopy(diffusion).requires_grad_(False)
    diffusion.train()
    for idx in _batches(len(images), batch_size, steps, g):
        loss = diffusion.loss(images[idx], generator=g)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            for pe, p in zip(ema.eps_model.parameters(), diffusion.eps_model.parameters()):
                pe.lerp_(p, 1 - ema_decay)
        hist.log(loss=loss.item())
    return hist, ema.eval()


@torch.no_grad()
def sample(name: str, model: nn.Module, num_samples: int, seed: int, batch_size: int = 500,
           **sampler: int | float) -> torch.Tensor:
    """num_samples images (N, 28, 28) in [0, 1] from a trained model, in batches, seeded."""
    g = torch.Generator().manual_seed(seed)
    model.eval()
    out = []
    for start in range(0, num_samples, batch_size):
        n = min(batch_size, num_samples - start)
        if name == "vae":
            out.append(model.sample(n, generator=g))
        elif name == "gan":
            out.append(model["G"].sample(n, generator=g))
        elif name == "diffusion":
            out.append(model.sample(n, generator=g, **sampler))
        else:
            raise ValueError(f"unknown model {name!r}; expected one of {MODELS}")
    return torch.cat(out).float().clamp(0, 1)
