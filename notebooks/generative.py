# %% [markdown]
# # Generative models: a noise schedule, a small VAE, and how samples are scored
#
# This notebook uses `implementations/architectures/generative/`:
#
# 1. the DDPM noise schedule: how much of a digit is left after t steps of adding noise,
# 2. a variational autoencoder (VAE) trained briefly on MNIST-5k: reconstructions, samples, and
#    its held-out negative ELBO against a model with no latent at all,
# 3. the Fréchet distance behind FID, on two Gaussians whose distance we know in closed form.
#
# The assessments in `assessments/generative/` train the VAE, a GAN and the diffusion model much
# longer and compare their samples with FID, precision and recall; this notebook shows the ideas
# on a tiny budget.

# %%
# %matplotlib inline
import math
import os

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Normal, kl_divergence

from implementations.architectures.generative.diffusion import Diffusion, beta_schedule
from implementations.architectures.generative.metrics import fid_from_features, frechet_distance
from implementations.architectures.generative.training import train_vae
from implementations.architectures.generative.vae import VAE, negative_elbo
from implementations.config import load_experiment
from implementations.data.images import mnist_5k_split
from implementations.viz.curves import plot_curves

cfg = load_experiment("notebooks", "generative", os.environ.get("MILESTONE_BUDGET", "smoke"))
torch.manual_seed(0)
torch.set_num_threads(1)  # small MLP steps: a second thread only spin-waits (assessments/threads.py)
split = mnist_5k_split(test_size=cfg["test_size"], seed=cfg["split_seed"])
x_train = torch.tensor(split.X_train / 255.0, dtype=torch.float32)  # (4000, 28, 28) in [0, 1]
x_test = torch.tensor(split.X_test / 255.0, dtype=torch.float32)    # (1000, 28, 28)


def mosaic(images: np.ndarray, nrow: int) -> np.ndarray:
    """(nrow * ncol, 28, 28) -> one (nrow * 28, ncol * 28) picture."""
    return images.reshape(nrow, -1, 28, 28).transpose(0, 2, 1, 3).reshape(nrow * 28, -1)


cfg

# %% [markdown]
# ## 1. The DDPM noise schedule
#
# A diffusion model learns to undo a fixed process that adds a little Gaussian noise at each of
# T = 1000 steps: x_t = sqrt(1 - beta_t) x_{t-1} + sqrt(beta_t) noise. Ho et al. (2020) let
# beta_t grow linearly from 1e-4 to 0.02. After t steps the image is
# x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) noise with abar_t = (1 - beta_1) ... (1 - beta_t),
# so abar_t is "how much signal is left". The cosine schedule (Nichol & Dhariwal 2021) spends
# fewer steps on almost-pure noise. We check the linear schedule against the formula written
# out with NumPy.

# %%
T = cfg["num_timesteps"]
diffusion = Diffusion(nn.Identity(), "linear", T)        # no network needed to look at the schedule
linear_ref = np.cumprod(1 - np.linspace(1e-4, 0.02, T))
abar = {kind: torch.cumprod(1 - beta_schedule(kind, T), 0).numpy() for kind in ("linear", "cosine")}
err = float(np.abs(diffusion.alphas_cumprod.numpy() - linear_ref).max())
print(f"beta_1 = {diffusion.betas[0]:.4g}, beta_T = {diffusion.betas[-1]:.4g}; "
      f"abar_T = {abar['linear'][-1]:.2e}; max |abar - NumPy formula| = {err:.1e}")
assert err <= cfg["max_schedule_error"]
assert math.isclose(float(diffusion.betas[0]), 1e-4) and math.isclose(float(diffusion.betas[-1]), 0.02)
assert np.all(np.diff(abar["linear"]) < 0) and abar["linear"][-1] < 1e-4   # x_T is (almost) pure noise
assert abar["cosine"][T // 2] > abar["linear"][T // 2]                     # cosine keeps signal longer

fig, ax = plt.subplots(figsize=(6, 3.6))
ax.plot(diffusion.betas.numpy() / 0.02, "--", label="linear beta_t (/ 0.02)")
for kind, values in abar.items():
    ax.plot(values, label=f"{kind}: abar_t (signal left)")
ax.set(title="DDPM noise schedules, T = 1000", xlabel="step t", ylabel="value")
ax.grid(alpha=0.3)
ax.legend(fontsize=8)
fig

# %% [markdown]
# What the forward process does to a digit (pixels scaled to [-1, 1] inside the model):

# %%
steps = [0, 50, 100, 200, 400, 700, 999]
x0 = (x_test[:1] * 2 - 1).unsqueeze(1).expand(len(steps), 1, 28, 28)
noisy = diffusion.to_pixels(diffusion.q_sample(x0, torch.tensor(steps), torch.randn(x0.shape)))
fig, axes = plt.subplots(1, len(steps), figsize=(10, 1.9))
for ax, t, im in zip(axes, steps, noisy):
    ax.imshow(im, cmap="gray", vmin=0, vmax=1)
    ax.set_title(f"t = {t}\nabar = {abar['linear'][t]:.2f}", fontsize=8)
    ax.axis("off")
fig

# %% [markdown]
# ## 2. A variational autoencoder on MNIST-5k
#
# The encoder maps a digit to a Gaussian over a 16-d latent z; the decoder maps z back to one
# probability per pixel. Training minimises the negative evidence lower bound (-ELBO, in nats
# per image) = reconstruction error + KL(q(z|x) || N(0, I)); the KL term keeps the latents close
# to the prior, so decoding z ~ N(0, I) gives new digits.

# %%
vae = VAE(latent_dim=cfg["latent_dim"], hidden_dim=cfg["hidden_dim"])
history = train_vae(vae, x_train, cfg["steps"], cfg["batch_size"], cfg["lr"], seed=0)
vae.eval()
plot_curves({k: history.curves[k] for k in ("neg_elbo", "recon", "kl")},
            f"VAE training on {len(x_train)} digits (minibatch means)", "step", "nats per image")

# %% [markdown]
# **Did it learn anything?** The simplest model with no latent at all treats every pixel as an
# independent coin with the training set's mean brightness. The VAE's held-out -ELBO must be
# well below that model's negative log-likelihood. We also recompute the VAE's -ELBO from
# `torch.distributions` with the same noise, so a wrong KL or reconstruction term cannot hide.

# %%
xt = x_test.unsqueeze(1)
eps = torch.randn(len(xt), cfg["latent_dim"], generator=torch.Generator().manual_seed(1))
with torch.no_grad():
    nelbo, recon, kl = negative_elbo(vae, xt, eps=eps)
    mu, logvar = vae.encode(xt)
    probs = torch.sigmoid(vae.decode(mu + torch.exp(0.5 * logvar) * eps))
    ref = (F.binary_cross_entropy(probs, xt, reduction="none").sum((1, 2, 3))
           + kl_divergence(Normal(mu, torch.exp(0.5 * logvar)), Normal(0.0, 1.0)).sum(1))
p = x_train.mean(0).clamp(1e-4, 1 - 1e-4)
baseline = float(F.binary_cross_entropy(p.expand_as(x_test), x_test, reduction="none").sum((1, 2)).mean())
value = float(nelbo.mean())
print(f"held-out -ELBO {value:.1f} nats/image (recon {recon.mean():.1f} + KL {kl.mean():.1f}); "
      f"independent pixels {baseline:.1f}; ratio {value / baseline:.3f}")
assert float(((nelbo - ref).abs() / ref).max()) <= cfg["max_elbo_rel_error"]
assert value <= cfg["max_fraction_of_baseline"] * baseline
assert history.curves["neg_elbo"][-1] < history.curves["neg_elbo"][0]

# %% [markdown]
# Reconstructions decode the encoder's mean; samples decode fresh z ~ N(0, I). After so little
# training the samples are blurry, but most already look like digits.

# %%
with torch.no_grad():
    recons = torch.sigmoid(vae.decode(mu[:10])).squeeze(1).numpy()
    samples = vae.sample(20, generator=torch.Generator().manual_seed(2)).numpy()
assert samples.shape == (20, 28, 28) and samples.min() >= 0 and samples.max() <= 1
fig, axes = plt.subplots(1, 2, figsize=(10, 2.6), gridspec_kw={"width_ratios": [1, 2]})
axes[0].imshow(mosaic(np.concatenate([split.X_test[:10] / 255.0, recons]), 4), cmap="gray")
axes[0].set_title("held-out digits (rows 1-2) / reconstructions", fontsize=9)
axes[1].imshow(mosaic(samples, 2), cmap="gray")
axes[1].set_title("samples: decoder(z), z ~ N(0, I)", fontsize=9)
for ax in axes:
    ax.axis("off")
fig

# %% [markdown]
# ## 3. FID is a distance between two Gaussians
#
# FID fits a Gaussian to the features of real images and one to the features of generated
# images, and reports the squared Fréchet (2-Wasserstein) distance between them:
# |mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1^1/2 S2 S1^1/2)^1/2). When the two covariances share their
# axes it reduces to |mu1 - mu2|^2 + sum_i (sqrt(a_i) - sqrt(b_i))^2 over their variances a_i,
# b_i. Below, both ellipses are tilted by 30 degrees, mu2 - mu1 = (3, 1), variances (1, 1/4)
# and (4, 1): the distance is 10 + 1 + 1/4 = 11.25. From samples, `fid_from_features` should
# land near it.

# %%
c, s = np.cos(np.pi / 6), np.sin(np.pi / 6)
R = np.array([[c, -s], [s, c]])
mu1, S1 = np.zeros(2), R @ np.diag([1.0, 0.25]) @ R.T
mu2, S2 = np.array([3.0, 1.0]), R @ np.diag([4.0, 1.0]) @ R.T
d2 = frechet_distance(mu1, S1, mu2, S2)
rng = np.random.default_rng(0)
a = rng.multivariate_normal(mu1, S1, cfg["fid_samples"])
b = rng.multivariate_normal(mu2, S2, cfg["fid_samples"])
d2_samples = fid_from_features(a, b)
print(f"closed form {d2:.12f} (known 11.25); from {len(a)} samples each: {d2_samples:.3f}")
assert abs(d2 - 11.25) <= cfg["max_fid_rel_error"] * 11.25
assert abs(frechet_distance(mu1, S1, mu1, S1)) <= 1e-9    # a distribution is at distance 0 from itself
assert abs(d2_samples - 11.25) <= cfg["max_fid_sample_rel_error"] * 11.25

fig, ax = plt.subplots(figsize=(5, 4))
ax.scatter(*a[:500].T, s=4, alpha=0.5, label="N(mu1, S1)")
ax.scatter(*b[:500].T, s=4, alpha=0.5, label="N(mu2, S2)")
ax.set(title=f"Fréchet distance^2 = {d2:.2f} (from samples: {d2_samples:.2f})", aspect="equal")
ax.legend(fontsize=8)
fig
