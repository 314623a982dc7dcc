"""Requirement generative.1: a variational autoencoder on MNIST-5k.

Parity: the KL term equals torch.distributions.kl_divergence (float64, <= 1e-12); the
reconstruction term equals binary_cross_entropy_with_logits and the Bernoulli log-likelihood;
gradients reach mu and logvar through the reparameterised sample (gradcheck, float64, fixed
noise) and the sample has the right mean and spread. Learning: held-out negative ELBO below a
floor and below an independent-pixel Bernoulli baseline measured in the same run; a k-NN on
held-out latent means far above chance.
"""
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.decomposition import PCA
from sklearn.neighbors import KNeighborsClassifier
from torch.distributions import Bernoulli, Normal, kl_divergence as torch_kl

from assessments.threads import single_thread
from assessments.generative._helpers import image_grid
from implementations.architectures.generative.vae import (VAE, kl_divergence, negative_elbo, reconstruction_loss,
                                                          reparameterize)
from implementations.viz.curves import plot_curves

pytestmark = [pytest.mark.torch, pytest.mark.usefixtures("single_thread")]
F64 = torch.float64


def test_kl_term_equals_torch_distributions(experiment, evidence):
    tol = experiment("vae_parity")["max_abs_error"]
    g = torch.Generator().manual_seed(0)
    worst = 0.0
    for scale in (0.1, 1.0, 5.0):
        mu = scale * torch.randn(64, 16, generator=g, dtype=F64)
        logvar = scale * torch.randn(64, 16, generator=g, dtype=F64)
        ref = torch_kl(Normal(mu, torch.exp(0.5 * logvar)), Normal(torch.zeros_like(mu), torch.ones_like(mu))).sum(-1)
        got = kl_divergence(mu, logvar)
        assert got.shape == (64,)
        worst = max(worst, float((got - ref).abs().max() / ref.abs().max().clamp(min=1)))
    evidence.metric("kl_max_error_vs_torch", worst, threshold=tol, direction="lower", key=True)
    assert worst <= tol
    assert float(kl_divergence(torch.zeros(3, 4, dtype=F64), torch.zeros(3, 4, dtype=F64)).abs().max()) == 0.0


def test_reconstruction_term_is_the_bernoulli_nll(experiment):
    tol = experiment("vae_parity")["max_abs_error"]
    g = torch.Generator().manual_seed(1)
    logits = 4 * torch.randn(8, 1, 28, 28, generator=g, dtype=F64)
    grey = torch.rand(8, 1, 28, 28, generator=g, dtype=F64)
    ref = F.binary_cross_entropy_with_logits(logits, grey, reduction="none").sum((1, 2, 3))
    assert torch.allclose(reconstruction_loss(logits, grey), ref, rtol=0, atol=tol * 784)
    binary = (grey > 0.5).to(F64)
    nll = -Bernoulli(logits=logits).log_prob(binary).sum((1, 2, 3))
    assert torch.allclose(reconstruction_loss(logits, binary), nll, rtol=1e-12, atol=1e-9)


def test_reparameterised_sample_carries_gradients_to_mu_and_logvar(experiment, evidence):
    torch.manual_seed(0)
    model = VAE(latent_dim=3, hidden_dim=8).to(F64)
    x = torch.rand(2, 1, 28, 28, dtype=F64)
    eps = torch.randn(2, 3, dtype=F64)

    def loss_of(mu, logvar):
        z = reparameterize(mu, logvar, eps)
        return reconstruction_loss(model.decode(z), x).sum() + kl_divergence(mu, logvar).sum()

    mu = torch.randn(2, 3, dtype=F64, requires_grad=True)
    logvar = (0.3 * torch.randn(2, 3, dtype=F64)).requires_grad_()
    assert torch.autograd.gradcheck(loss_of, (mu, logvar), eps=1e-6, atol=1e-7, rtol=1e-5)
    # the sample's own Jacobian: dz/dmu = 1, dz/dlogvar = exp(logvar / 2) * eps / 2
    z = reparameterize(mu, logvar, eps)
    g_mu, g_lv = torch.autograd.grad(z.sum(), (mu, logvar))
    assert torch.allclose(g_mu, torch.ones_like(g_mu))
    assert torch.allclose(g_lv, 0.5 * torch.exp(0.5 * logvar.detach()) * eps, rtol=1e-12, atol=0)
    # drawn without a given eps: mean mu, standard deviation exp(logvar / 2), within 5 standard errors
    n = 200_000
    m, lv = torch.tensor([[0.5, -2.0]], dtype=F64), torch.tensor([[np.log(0.25), np.log(4.0)]], dtype=F64)
    draws = reparameterize(m.expand(n, 2), lv.expand(n, 2), generator=torch.Generator().manual_seed(2))
    std = torch.exp(0.5 * lv)[0]
    assert ((draws.mean(0) - m[0]).abs() <= 5 * std / n ** 0.5).all()
    assert ((draws.std(0) - std).abs() <= 5 * std * (1 / (2 * n)) ** 0.5).all()
    evidence.metric("reparam_sample_std_rel_error", float(((draws.std(0) - std) / std).abs().max()))


@pytest.fixture(scope="module")
def vae(store, real_digits):
    with single_thread():  # many small ops: a second thread only spins (assessments/threads.py)
        model, info = store.trained("vae")
        x_train, y_train, x_test, y_test = real_digits
        xt = torch.tensor(x_test, dtype=torch.float32).unsqueeze(1)
        with torch.no_grad():
            nelbo, recon, kl = negative_elbo(model, xt, generator=torch.Generator().manual_seed(0))
            mu_test, _ = model.encode(xt)
            mu_train, _ = model.encode(x_train.unsqueeze(1))
        return model, info, nelbo.numpy(), recon.numpy(), kl.numpy(), mu_train.numpy(), mu_test.numpy()


def test_vae_lowers_held_out_negative_elbo(vae, real_digits, experiment, evidence):
    cfg = experiment("vae")
    model, info, nelbo, recon, kl, _, _ = vae
    x_train, _, x_test, _ = real_digits
    # baseline: every pixel an independent Bernoulli with the training mean (no latent at all)
    p = x_train.mean(0).clamp(1e-4, 1 - 1e-4).double()
    baseline = float(F.binary_cross_entropy(p.expand(len(x_test), 28, 28), torch.tensor(x_test),
                                            reduction="none").sum((1, 2)).mean())
    value = float(nelbo.mean())
    evidence.metric("heldout_neg_elbo", value, unit="nats/image", threshold=cfg["max_neg_elbo"], direction="lower",
                    key=True)
    evidence.metric("heldout_recon", float(recon.mean()), unit="nats/image")
    evidence.metric("heldout_kl", float(kl.mean()), unit="nats/image")
    evidence.metric("independent_pixel_baseline", baseline, unit="nats/image")
    evidence.metric("train_seconds", info["train_seconds"], unit="s")
    curves = info["curves"]
    evidence.figure("training_curves", plot_curves({k: curves[k] for k in ("neg_elbo", "recon", "kl")},
                                                   "VAE training loss (per image, minibatch)", "step", "nats"))
    evidence.text(f"Held-out -ELBO {value:.1f} nats/image (recon {recon.mean():.1f} + KL {kl.mean():.1f}) vs "
                  f"{baseline:.1f} for independent pixels at the training mean. The ELBO is a lower bound on "
                  "log p(x): the VAE has a likelihood to report (Bernoulli decoder on grey levels).")
    assert value <= cfg["max_neg_elbo"]
    assert value <= cfg["max_fraction_of_baseline"] * baseline
    assert curves["neg_elbo"][-1] < curves["neg_elbo"][0]


def test_vae_latent_means_separate_the_digits(vae, real_digits, experiment, evidence):
    cfg = experiment("vae")
    model, _, _, _, _, mu_train, mu_test = vae
    _, y_train, x_test, y_test = real_digits
    knn = KNeighborsClassifier(n_neighbors=cfg["knn_k"]).fit(mu_train, y_train)
    acc = float(knn.score(mu_test, y_test))
    evidence.metric("latent_knn_accuracy", acc, threshold=cfg["min_latent_knn_accuracy"], direction="higher", key=True)
    evidence.metric("chance_accuracy", 0.1)
    # figures: reconstructions, samples, an interpolation, a PCA of the held-out means by class
    xt = torch.tensor(x_test[:10], dtype=torch.float32)
    with torch.no_grad():
        recon = torch.sigmoid(model(xt.unsqueeze(1), eps=torch.zeros(10, model.latent_dim))[0]).squeeze(1).numpy()
        samples = model.sample(40, generator=torch.Generator().manual_seed(0)).numpy()
        a, b = torch.tensor(mu_test[[0]]), torch.tensor(mu_test[[int(np.argmax(y_test != y_test[0]))]])
        w = torch.linspace(0, 1, 10)[:, None]
        interp = torch.sigmoid(model.decode((1 - w) * a + w * b)).squeeze(1).numpy()
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.5), gridspec_kw={"width_ratios": [1, 2, 1]})
    axes[0].imshow(image_grid(np.concatenate([x_test[:10], recon]), 2), cmap="gray")
    axes[0].set_title("held-out (top) / reconstruction")
    axes[1].imshow(image_grid(samples, 4), cmap="gray")
    axes[1].set_title("samples, z ~ N(0, I)")
    axes[2].imshow(image_grid(interp, 1), cmap="gray")
    axes[2].set_title("interpolation between two latent means")
    for ax in axes:
        ax.axis("off")
    evidence.figure("reconstructions_samples_interpolation", fig)
    pcs = PCA(2).fit_transform(mu_test)
    fig, ax = plt.subplots(figsize=(5, 4.5))
    sc = ax.scatter(pcs[:, 0], pcs[:, 1], c=y_test, cmap="tab10", s=6)
    fig.colorbar(sc, ax=ax, ticks=range(10), label="digit")
    ax.set_title(f"PCA of held-out latent means (k-NN accuracy {acc:.2f})")
    evidence.figure("latent_pca", fig)
    assert acc >= cfg["min_latent_knn_accuracy"]
    assert samples.shape == (40, 28, 28) and samples.min() >= 0 and samples.max() <= 1
