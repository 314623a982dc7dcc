"""A small U-Net noise predictor eps_theta(x_t, t) for 28x28 digits (after Ho et al. 2020).

Resolutions 28 -> 14 -> 7 and back, one residual block per level on each side, skip
connections by concatenation, GroupNorm + SiLU, and a sinusoidal timestep embedding
(Vaswani et al. 2017) passed through an MLP and added inside every residual block.
"""
from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["UNet", "timestep_embedding"]


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding of integer timesteps t (N,) -> (N, dim) (dim even)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.float()[:, None] * freqs[None, :]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=1)


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(8, channels), channels)


class ResBlock(nn.Module):
    """GroupNorm-SiLU-Conv, + time embedding, GroupNorm-SiLU-Conv, with a 1x1 skip when C changes."""

    def __init__(self, in_channels: int, out_channels: int, emb_dim: int) -> None:
        super().__init__()
        self.block1 = nn.Sequential(_norm(in_channels), nn.SiLU(), nn.Conv2d(in_channels, out_channels, 3, padding=1))
        self.emb = nn.Linear(emb_dim, out_channels)
        self.block2 = nn.Sequential(_norm(out_channels), nn.SiLU(), nn.Conv2d(out_channels, out_channels, 3, padding=1))
        self.skip = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.block1(x) + self.emb(emb)[:, :, None, None]
        return self.block2(h) + self.skip(x)


class UNet(nn.Module):
    """eps_theta: x_t (N, 1, 28, 28), t (N,) int64 -> predicted noise (N, 1, 28, 28).

    channels: width at 28x28; 2*channels at 14x14 and 7x7.
    """

    def __init__(self, channels: int = 32, emb_dim: int = 64) -> None:
        super().__init__()
        c, c2 = channels, 2 * channels
        self.emb_dim = emb_dim
        self.time_mlp = nn.Sequential(nn.Linear(emb_dim, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        self.stem = nn.Conv2d(1, c, 3, padding=1)
        self.down1 = ResBlock(c, c, emb_dim)                       # 28
        self.pool1 = nn.Conv2d(c, c, 3, stride=2, padding=1)        # 28 -> 14
        self.down2 = ResBlock(c, c2, emb_dim)                       # 14
        self.pool2 = nn.Conv2d(c2, c2, 3, stride=2, padding=1)      # 14 -> 7
        self.mid = ResBlock(c2, c2, emb_dim)                        # 7
        self.up2 = nn.ConvTranspose2d(c2, c2, 4, stride=2, padding=1)  # 7 -> 14
        self.dec2 = ResBlock(2 * c2, c, emb_dim)
        self.up1 = nn.ConvTranspose2d(c, c, 4, stride=2, padding=1)    # 14 -> 28
        self.dec1 = ResBlock(2 * c, c, emb_dim)
        self.out = nn.Sequential(_norm(c), nn.SiLU(), nn.Conv2d(c, 1, 3, padding=1))
        nn.init.zeros_(self.out[-1].weight)  # start by predicting zero noise: a calm first step
        nn.init.zeros_(self.out[-1].bias)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        emb = self.time_mlp(timestep_embedding(t, self.emb_dim))
        h1 = self.down1(self.stem(x), emb)
        h2 = self.down2(self.pool1(h1), emb)
        h = self.mid(self.pool2(h2), emb)
        h = self.dec2(torch.cat([self.up2(h), h2], dim=1), emb)
        h = self.dec1(torch.cat([self.up1(h), h1], dim=1), emb)
        return self.out(h)
