"""Requirement generative.3: a DDPM (epsilon prediction, small U-Net) with a DDIM sampler.

- the beta schedules equal their published formulas, alphas_cumprod included;
- the closed-form q(x_t | x_0) agrees with iterating the forward process step by step (mean and
  variance at several t, within bounds derived from the number of chains);
- the loss is the simple epsilon MSE on the same noise that made x_t;
- both samplers are exact where the answer is known: with the Bayes-optimal noise predictor for
  Gaussian data, ancestral DDPM and DDIM reproduce that Gaussian; with a point mass they return it;
- DDIM with eta = 0 is deterministic given x_T (eta = 1 is not);
- the trained model's loss falls, and one sample is shown denoised over the steps.
"""
import math

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from assessments.generative._helpers import image_grid
from implementations.architectures.generative.diffusion import Diffusion, beta_schedule
from implementations.architectures.generative.unet import UNet
from implementations.viz.curves import plot_curves

pytestmark = [pytest.mark.torch, pytest.mark.usefixtures("single_thread")]
F64 = torch.float64


class Oracle(nn.Module):
    """The Bayes-optimal noise predictor E[eps | x_t] for data x_0 ~ N(m, s^2) elementwise
    (s = 0: a point mass at m): eps* = sqrt(1 - abar)(x_t - sqrt(abar) m) / (abar s^2 + 1 - abar)."""

    def __init__(self, abar: torch.Tensor, m: float, s: float) -> None:
        super().__init__()
        self.abar, self.m, self.s = abar, m, s

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        a = self.abar[t].to(x.dtype).view(-1, *([1] * (x.dim() - 1)))
        return (1 - a).sqrt() * (x - a.sqrt() * self.m) / (a * self.s ** 2 + 1 - a)


def test_schedules_equal_the_published_formulas(experiment, evidence):
    tol = experiment("diffusion_parity")["max_abs_error"]
    T = 1000
    lin = np.linspace(1e-4, 0.02, T)  # Ho et al. 2020, sec. 4
    d = Diffusion(nn.Identity(), "linear", T)
    assert d.betas.dtype == F64 and d.betas.shape == (T,)
    err_lin = max(np.abs(d.betas.numpy() - lin).max(), np.abs(d.alphas_cumprod.numpy() - np.cumprod(1 - lin)).max())
    # abar_T of the linear schedule ~ 4.04e-5: x_T is noise up to a 0.6% trace of the data
    assert float(d.alphas_cumprod[-1]) == pytest.approx(float(np.exp(np.log1p(-lin).sum())), rel=1e-12)
    assert 3.9e-5 < float(d.alphas_cumprod[-1]) < 4.2e-5
    # cosine: abar_t = f(t)/f(0), f(t) = cos^2(((t/T + s)/(1 + s)) pi/2), betas clipped at 0.999 (Nichol & Dhariwal eq. 17)
    s = 0.008
    f = np.cos((np.arange(T + 1) / T + s) / (1 + s) * np.pi / 2) ** 2
    abar = f[1:] / f[0]
    cos_betas = np.minimum(1 - f[1:] / f[:-1], 0.999)
    c = Diffusion(nn.Identity(), "cosine", T)
    unclipped = cos_betas < 0.999
    err_cos = max(np.abs(c.betas.numpy() - cos_betas).max(),
                  np.abs(c.alphas_cumprod.numpy()[unclipped] - abar[unclipped]).max(),
                  np.abs(c.alphas_cumprod.numpy() - np.cumprod(1 - cos_betas)).max())
    evidence.metric("schedule_max_abs_error", max(err_lin, err_cos), threshold=tol, direction="lower", key=True)
    evidence.figure("alphas_cumprod", plot_curves({"linear 1e-4..0.02": d.alphas_cumprod.tolist(),
                                                   "cosine s=0.008": c.alphas_cumprod.tolist()},
                                                  "alphas_cumprod (T = 1000)", "t", "abar_t"))
    assert err_lin <= tol and err_cos <= tol
    with pytest.raises(ValueError, match="cosine"):
        beta_schedule("quadratic")


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_closed_form_q_matches_iterating_the_forward_process(schedule, experiment, evidence):
    cfg = experiment("diffusion_parity")
    n, z = cfg["forward_chains"], cfg["z_bound"]
    d = Diffusion(nn.Identity(), schedule, 1000)
    g = torch.Generator().manual_seed(0)
    x0 = torch.tensor([-1.0, -0.3, 0.0, 0.6, 1.0], dtype=F64)
    x = x0.expand(n, -1).clone()
    checkpoints = set(cfg["checkpoints"])
    worst = 0.0
    for t in range(max(checkpoints) + 1):
        x = d.forward_step(x, t, torch.randn(x.shape, generator=g, dtype=F64))
        if t in checkpoints:
            abar = float(np.prod(1 - d.betas[:t + 1].numpy()))  # independent of the class's buffers
            mean, var = math.sqrt(abar) * x0, 1 - abar
            se_mean, se_var = math.sqrt(var / n), var * math.sqrt(2 / (n - 1))
            dev_mean = ((x.mean(0) - mean).abs() / se_mean).max().item()
            dev_var = ((x.var(0) - var).abs() / se_var).max().item()
            # the closed form draws the same distribution in one step
            xt = d.q_sample(x0.expand(n, -1), torch.full((n,), t), torch.randn(n, 5, generator=g, dtype=F64))
            dev_q = max(((xt.mean(0) - mean).abs() / se_mean).max().item(),
                        ((xt.var(0) - var).abs() / se_var).max().item())
            worst = max(worst, dev_mean, dev_var, dev_q)
    evidence.metric(f"forward_process_max_deviation_{schedule}", worst, unit="standard errors", threshold=z,
                    direction="lower", key=True)
    evidence.text(f"{n} chains per pixel; a deviation is |empirical - closed form| in standard errors "
                  f"(mean: sqrt(var/n); variance: var*sqrt(2/(n-1))); t in {sorted(checkpoints)}; "
                  f"{5 * len(checkpoints) * 3} comparisons, bound {z} (two-sided p ~ 1e-6 each).")
    assert worst <= z


def test_loss_is_the_epsilon_mse_on_the_noise_that_made_x_t(experiment):
    """A recording stub in place of the U-Net: the loss must be MSE(prediction, eps) where x_t =
    sqrt(abar_t) (2 pixels - 1) + sqrt(1 - abar_t) eps."""
    class Recorder(nn.Module):
        def forward(self, x, t):
            self.x, self.t = x.clone(), t.clone()
            self.pred = 0.3 * x + 0.1
            return self.pred

    d = Diffusion(Recorder(), "linear", 1000).double()
    pixels = torch.rand(16, 28, 28, dtype=F64)
    loss = d.loss(pixels, generator=torch.Generator().manual_seed(0))
    rec = d.eps_model
    abar = torch.tensor(np.cumprod(1 - np.linspace(1e-4, 0.02, 1000)))[rec.t].view(-1, 1, 1, 1)
    eps = (rec.x - abar.sqrt() * (2 * pixels.unsqueeze(1) - 1)) / (1 - abar).sqrt()
    assert rec.t.min() >= 0 and rec.t.max() < 1000 and len(rec.t.unique()) > 1
    assert abs(eps.mean().item()) < 0.1 and abs(eps.std().item() - 1) < 0.05  # it really is N(0, 1) noise
    assert loss.item() == pytest.approx(F.mse_loss(rec.pred, eps).item(), rel=1e-9)


@pytest.mark.parametrize("sampler", ["ddpm", "ddim"])
def test_samplers_are_exact_with_the_optimal_denoiser(sampler, experiment, evidence):
    cfg = experiment("diffusion_parity")
    d = Diffusion(nn.Identity(), "linear", 1000).double()
    n, m, s = cfg["oracle_samples"], 0.0, 0.3
    # point mass at 0.35: both samplers return it exactly
    d.eps_model = Oracle(d.alphas_cumprod, 0.35, 0.0)
    x_T = torch.randn(64, 1, 1, 1, generator=torch.Generator().manual_seed(0), dtype=F64)
    out = d.ddpm_sample(x_T, torch.Generator().manual_seed(1)) if sampler == "ddpm" else d.ddim_sample(x_T, 10)
    assert torch.allclose(out * 2 - 1, torch.full_like(out, 0.35), atol=1e-9)
    # Gaussian data N(0, s^2): the samples have its mean and standard deviation (DDIM over all T
    # steps, where its discretisation error is far below the sampling error)
    d.eps_model = Oracle(d.alphas_cumprod, m, s)
    x_T = torch.randn(n, 1, 1, 1, generator=torch.Generator().manual_seed(2), dtype=F64)
    out = (d.ddpm_sample(x_T, torch.Generator().manual_seed(3)) if sampler == "ddpm"
           else d.ddim_sample(x_T, d.num_timesteps)) * 2 - 1
    dev_mean = abs(out.mean().item() - m) / (s / math.sqrt(n))
    dev_std = abs(out.std().item() - s) / (s / math.sqrt(2 * n))
    evidence.metric(f"{sampler}_oracle_deviation", max(dev_mean, dev_std), unit="standard errors",
                    threshold=cfg["z_bound"], direction="lower", key=True)
    assert dev_mean <= cfg["z_bound"] and dev_std <= cfg["z_bound"]


def test_ddim_few_steps_equals_its_update_rule_in_closed_form(experiment):
    """With the optimal denoiser for N(0, s^2), each DDIM (eta = 0) step is linear in x:
    x' = x (sqrt(a a') s^2 + sqrt((1 - a)(1 - a'))) / (a s^2 + 1 - a), a = abar_t, a' = abar_t'.
    The sampler must equal the product of these factors over its timesteps, to round-off."""
    steps, s = experiment("diffusion_parity")["closed_form_ddim_steps"], 0.2
    d = Diffusion(nn.Identity(), "linear", 1000).double()
    d.eps_model = Oracle(d.alphas_cumprod, 0.0, s)
    abar = np.cumprod(1 - np.linspace(1e-4, 0.02, 1000))
    ts = [int(round(v)) for v in np.linspace(999, 0, steps)]
    factor = 1.0
    for i, t in enumerate(ts):
        a, a2 = abar[t], (abar[ts[i + 1]] if i + 1 < len(ts) else 1.0)
        factor *= (np.sqrt(a * a2) * s ** 2 + np.sqrt((1 - a) * (1 - a2))) / (a * s ** 2 + 1 - a)
    x_T = torch.linspace(-3, 3, 13, dtype=F64).view(-1, 1, 1, 1)
    out = d.ddim_sample(x_T, steps) * 2 - 1
    assert torch.allclose(out.flatten(), factor * x_T.flatten(), rtol=1e-10, atol=1e-12)


def test_ddim_with_eta_zero_is_deterministic_given_the_noise():
    torch.manual_seed(0)
    d = Diffusion(UNet(channels=8, emb_dim=16), "linear", 1000).eval()
    nn.init.normal_(d.eps_model.out[-1].weight, std=0.1)  # a non-trivial (untrained) predictor
    x_T = torch.randn(4, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    a = d.ddim_sample(x_T, 8, eta=0.0, generator=torch.Generator().manual_seed(2))
    b = d.ddim_sample(x_T.clone(), 8, eta=0.0, generator=torch.Generator().manual_seed(3))
    c1 = d.ddim_sample(x_T, 8, eta=1.0, generator=torch.Generator().manual_seed(2))
    c2 = d.ddim_sample(x_T, 8, eta=1.0, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    assert not torch.equal(c1, c2)
    other = d.ddim_sample(torch.randn(4, 1, 28, 28), 8, eta=0.0)
    assert not torch.equal(a, other)
    assert a.shape == (4, 28, 28) and a.min() >= 0 and a.max() <= 1
    with pytest.raises(ValueError, match="num_steps"):
        d.ddim_sample(x_T, 0)


@pytest.fixture(scope="module")
def diffusion(store):
    return store.trained("diffusion")


def test_diffusion_trains_and_denoises(diffusion, store, experiment, evidence):
    cfg = experiment("diffusion")
    model, info = diffusion
    loss = np.asarray(info["curves"]["loss"])
    k = max(1, len(loss) // 10)
    first, last = float(loss[:k].mean()), float(loss[-k:].mean())
    evidence.metric("train_loss_last_tenth", last, threshold=cfg["max_final_loss"], direction="lower", key=True)
    evidence.metric("train_loss_first_tenth", first)
    evidence.metric("train_seconds", info["train_seconds"], unit="s")
    evidence.figure("training_loss", plot_curves({"epsilon MSE": np.convolve(loss, np.ones(k) / k, "valid")},
                                                 f"DDPM training loss (moving average, {k} steps)", "step", "MSE"))
    # one sample denoised over the steps: ancestral DDPM over all T steps
    g = torch.Generator().manual_seed(0)
    x_T = torch.randn(1, 1, 28, 28, generator=g)
    with torch.no_grad():
        final, traj = model.ddpm_sample(x_T, g, return_trajectory=True)
        ddim = model.ddim_sample(x_T, cfg["ddim_steps"])
    shown = [int(t) for t in np.linspace(0, len(traj) - 1, 10)]
    fig, ax = plt.subplots(figsize=(12, 1.8))
    ax.imshow(image_grid(np.stack([traj[i][0].numpy() for i in shown]), 1), cmap="gray")
    ax.set_title("one DDPM sample, t = " + ", ".join(str(model.num_timesteps - 1 - i) for i in shown))
    ax.axis("off")
    evidence.figure("denoising_trajectory", fig)
    samples, side = store.samples("diffusion")
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.imshow(image_grid(samples[:64], 8), cmap="gray")
    ax.set_title(f"DDIM samples ({side['num_steps']} steps, eta 0)")
    ax.axis("off")
    evidence.figure("samples", fig)
    assert last <= cfg["max_final_loss"] and last < 0.5 * first
    # the trajectory starts as noise and ends on the final image
    assert torch.equal(traj[-1], final)
    assert float((traj[0] - final).abs().mean()) > 0.2
    assert ddim.shape == final.shape == (1, 28, 28)
