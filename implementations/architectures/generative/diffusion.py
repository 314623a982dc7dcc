"""Denoising diffusion (DDPM, Ho et al. 2020) with a DDIM sampler (Song et al. 2021).

Forward process on data x_0 scaled to [-1, 1], t = 0..T-1 (paper's t = 1..T):
    q(x_t | x_{t-1}) = N(sqrt(1 - beta_t) x_{t-1}, beta_t I)
    q(x_t | x_0)     = N(sqrt(abar_t) x_0, (1 - abar_t) I),  abar_t = prod_{s<=t} (1 - beta_s)
Schedules: "linear", beta from 1e-4 to 0.02 over T = 1000 (Ho et al. 2020, sec. 4);
"cosine", abar_t = f(t)/f(0), f(t) = cos^2(((t/T + s)/(1 + s)) pi/2), s = 0.008, betas clipped
at 0.999 (Nichol & Dhariwal 2021, eq. 17).
Training: the simple loss E |eps - eps_theta(x_t, t)|^2 with t uniform and eps ~ N(0, I).
Sampling: ancestral DDPM (Ho et al. alg. 2, sigma_t^2 = beta_t) over all T steps, or DDIM
over a sub-sequence of steps with eta = 0 (deterministic given x_T) or eta = 1.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["beta_schedule", "Diffusion"]


def beta_schedule(kind: str, num_timesteps: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02,
                  s: float = 0.008) -> torch.Tensor:
    """Betas (T,) float64 for "linear" (Ho et al. 2020) or "cosine" (Nichol & Dhariwal 2021)."""
    if kind == "linear":
        return torch.linspace(beta_start, beta_end, num_timesteps, dtype=torch.float64)
    if kind == "cosine":
        steps = torch.arange(num_timesteps + 1, dtype=torch.float64)
        f = torch.cos((steps / num_timesteps + s) / (1 + s) * math.pi / 2) ** 2
        abar = f / f[0]
        return (1 - abar[1:] / abar[:-1]).clamp(max=0.999)
    raise ValueError(f"unknown beta schedule {kind!r}; expected 'linear' or 'cosine'")


class Diffusion(nn.Module):
    """Holds the schedule (buffers, float64) and an epsilon model eps_model(x_t, t).

    Images go in and out as pixels in [0, 1], shape (N, 28, 28); internally x = 2 * pixels - 1.
    """

    def __init__(self, eps_model: nn.Module, schedule: str = "linear", num_timesteps: int = 1000) -> None:
        super().__init__()
        self.eps_model, self.schedule, self.num_timesteps = eps_model, schedule, num_timesteps
        betas = beta_schedule(schedule, num_timesteps)
        self.register_buffer("betas", betas)
        self.register_buffer("alphas", 1.0 - betas)
        self.register_buffer("alphas_cumprod", torch.cumprod(1.0 - betas, dim=0))

    # ---------------------------------------------------------------- forward process
    def _abar(self, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return self.alphas_cumprod[t].to(like.dtype).view(-1, *([1] * (like.dim() - 1)))

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        """x_t ~ q(x_t | x_0) in closed form. x0: (N, ...) in [-1, 1], t: (N,) int64."""
        if noise is None:
            noise = torch.randn_like(x0)
        abar = self._abar(t, x0)
        return abar.sqrt() * x0 + (1 - abar).sqrt() * noise

    def forward_step(self, x_prev: torch.Tensor, t: int, noise: torch.Tensor | None = None) -> torch.Tensor:
        """One step of the forward chain x_{t-1} -> x_t (t is the 0-based index of beta_t)."""
        if noise is None:
            noise = torch.randn_like(x_prev)
        beta = self.betas[t].to(x_prev.dtype)
        return (1 - beta).sqrt() * x_prev + beta.sqrt() * noise

    # ---------------------------------------------------------------- training
    def loss(self, pixels: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Simple epsilon-MSE loss on digits (N, 28, 28) or (N, 1, 28, 28) in [0, 1]."""
        x0 = (pixels.reshape(-1, 1, 28, 28) * 2 - 1)
        n = x0.shape[0]
        t = torch.randint(0, self.num_timesteps, (n,), generator=generator, device=x0.device)
        noise = torch.randn(x0.shape, generator=generator, dtype=x0.dtype, device=x0.device)
        return F.mse_loss(self.eps_model(self.q_sample(x0, t, noise), t), noise)

    # ---------------------------------------------------------------- sampling
    def _eps(self, x: torch.Tensor, t: int) -> torch.Tensor:
        return self.eps_model(x, torch.full((x.shape[0],), t, dtype=torch.long, device=x.device))

    @torch.no_grad()
    def ddpm_sample(self, x_T: torch.Tensor, generator: torch.Generator | None = None,
                    return_trajectory: bool = False) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
        """Ancestral sampling from x_T (N, 1, 28, 28) over all T steps -> pixels (N, 28, 28)."""
        x, trajectory = x_T, []
        for t in range(self.num_timesteps - 1, -1, -1):
            beta, alpha, abar = (float(b[t]) for b in (self.betas, self.alphas, self.alphas_cumprod))
            mean = (x - beta / math.sqrt(1 - abar) * self._eps(x, t)) / math.sqrt(alpha)
            if t > 0:
                z = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
                x = mean + math.sqrt(beta) * z
            else:
                x = mean
            if return_trajectory:
                trajectory.append(self.to_pixels(x))
        out = self.to_pixels(x)
        return (out, trajectory) if return_trajectory else out

    @torch.no_grad()
    def ddim_sample(self, x_T: torch.Tensor, num_steps: int = 20, eta: float = 0.0,
                    generator: torch.Generator | None = None) -> torch.Tensor:
        """DDIM from x_T (N, 1, 28, 28) over num_steps evenly spaced timesteps -> pixels (N, 28, 28).

        The predicted x_0 is clipped to [-1, 1] at each step (as in the reference code).
        """
        if not 1 <= num_steps <= self.num_timesteps:
            raise ValueError(f"num_steps must be in [1, {self.num_timesteps}], got {num_steps}")
        ts = torch.linspace(self.num_timesteps - 1, 0, num_steps).round().long().tolist()
        x = x_T
        for i, t in enumerate(ts):
            abar = float(self.alphas_cumprod[t])
            abar_prev = float(self.alphas_cumprod[ts[i + 1]]) if i + 1 < len(ts) else 1.0
            eps = self._eps(x, t)
            x0 = ((x - math.sqrt(1 - abar) * eps) / math.sqrt(abar)).clamp(-1, 1)
            eps = (x - math.sqrt(abar) * x0) / math.sqrt(1 - abar)  # consistent with the clipped x0
            sigma = eta * math.sqrt((1 - abar_prev) / (1 - abar) * (1 - abar / abar_prev))
            x = math.sqrt(abar_prev) * x0 + math.sqrt(max(1 - abar_prev - sigma ** 2, 0.0)) * eps
            if sigma > 0:
                x = x + sigma * torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
        return self.to_pixels(x)

    @staticmethod
    def to_pixels(x: torch.Tensor) -> torch.Tensor:
        """[-1, 1] model space (N, 1, 28, 28) -> pixels in [0, 1] (N, 28, 28)."""
        return ((x.clamp(-1, 1) + 1) / 2).squeeze(1)

    @torch.no_grad()
    def sample(self, num_samples: int, num_steps: int = 20, eta: float = 0.0,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """DDIM samples (num_samples, 28, 28) in [0, 1] from fresh noise drawn with generator."""
        p = self.betas
        x_T = torch.randn(num_samples, 1, 28, 28, generator=generator, device=p.device)
        return self.ddim_sample(x_T, num_steps, eta, generator)
