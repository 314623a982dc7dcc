"""Requirement generative.2: a DCGAN-style GAN on MNIST-5k.

Parity: the discriminator loss and the non-saturating generator loss equal their
binary_cross_entropy_with_logits definitions (float64), and the generator's gradient does not
vanish where D rejects the fakes. Training: D and G loss curves and a samples grid. Mode
coverage: the independent classifier finds all ten digits among the samples, none above a
share from the toml. No memorisation: the samples' nearest-training-image distances are
compared with those of held-out real digits.
"""
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from assessments.threads import single_thread
from assessments.generative._helpers import image_grid, nearest_distances
from implementations.architectures.generative.digit_features import digit_features
from implementations.architectures.generative.gan import Discriminator, Generator, discriminator_loss, generator_loss
from implementations.architectures.generative.metrics import class_histogram, histogram_entropy
from implementations.viz.curves import plot_curves

pytestmark = [pytest.mark.torch, pytest.mark.usefixtures("single_thread")]
F64 = torch.float64


def test_gan_losses_equal_their_bce_definitions(experiment, evidence):
    tol = experiment("gan_parity")["max_abs_error"]
    g = torch.Generator().manual_seed(0)
    worst = 0.0
    for scale in (0.5, 5.0, 40.0):  # 40: saturated logits must stay finite and exact
        real, fake = scale * torch.randn(128, generator=g, dtype=F64), scale * torch.randn(96, generator=g, dtype=F64)
        d_ref = (F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
                 + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)))
        g_ref = F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))
        worst = max(worst, float((discriminator_loss(real, fake) - d_ref).abs() / d_ref.abs().clamp(min=1)),
                    float((generator_loss(fake) - g_ref).abs() / g_ref.abs().clamp(min=1)))
    evidence.metric("gan_loss_max_rel_error_vs_bce", worst, threshold=tol, direction="lower", key=True)
    assert worst <= tol


def test_generator_loss_is_non_saturating():
    """Where D confidently rejects a fake (logit -10), -log D(G(z)) still pushes with gradient
    ~ -1/M per logit; the minimax log(1 - D(G(z))) would give ~ -e^-10/M."""
    fake = torch.full((4,), -10.0, dtype=F64, requires_grad=True)
    (grad,) = torch.autograd.grad(generator_loss(fake), fake)
    assert torch.allclose(grad, torch.full_like(grad, -1 / 4 * torch.sigmoid(torch.tensor(10.0, dtype=F64))))
    # and D's loss pushes real logits up and fake logits down
    real = torch.zeros(3, dtype=F64, requires_grad=True)
    fake = torch.zeros(3, dtype=F64, requires_grad=True)
    g_real, g_fake = torch.autograd.grad(discriminator_loss(real, fake), (real, fake))
    assert (g_real < 0).all() and (g_fake > 0).all()


def test_generator_and_discriminator_shapes():
    G, D = Generator(latent_dim=8, channels=4), Discriminator(channels=4)
    x = G(torch.randn(5, 8))
    assert x.shape == (5, 28, 28) and x.min() >= 0 and x.max() <= 1
    assert D(x).shape == (5,) and D(x.unsqueeze(1)).shape == (5,)


@pytest.fixture(scope="module")
def gan(store, digit_classifier):
    with single_thread():  # many small ops: a second thread only spins (assessments/threads.py)
        model, info = store.trained("gan")
        samples, side = store.samples("gan")
        _, probs = digit_features(digit_classifier, samples)
        return model, info, samples, side, probs


def test_gan_trains_and_covers_every_digit(gan, experiment, evidence):
    cfg = experiment("gan")
    model, info, samples, side, probs = gan
    curves = info["curves"]
    hist = class_histogram(probs)
    entropy = histogram_entropy(hist)
    evidence.metric("max_class_share", float(hist.max()), threshold=cfg["max_class_share"], direction="lower", key=True)
    evidence.metric("min_class_share", float(hist.min()), threshold=cfg["min_class_share"], direction="higher")
    evidence.metric("class_entropy", entropy, unit="nats")
    evidence.metric("train_seconds", info["train_seconds"], unit="s")
    w = max(1, len(curves["d_loss"]) // 50)
    smooth = {k: np.convolve(curves[k], np.ones(w) / w, mode="valid") for k in ("d_loss", "g_loss")}
    evidence.figure("loss_curves", plot_curves(smooth, f"GAN losses (moving average over {w} steps)", "step", "loss"))
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), gridspec_kw={"width_ratios": [1.4, 1]})
    axes[0].imshow(image_grid(samples[:64], 8), cmap="gray")
    axes[0].set_title(f"GAN samples ({side['sampler']})")
    axes[0].axis("off")
    axes[1].bar(range(10), hist)
    axes[1].axhline(cfg["max_class_share"], color="r", ls="--", label="max share allowed")
    axes[1].axhline(0.1, color="k", ls=":", label="uniform")
    axes[1].set_xticks(range(10))
    axes[1].set_xlabel("digit predicted by the independent classifier")
    axes[1].set_title(f"class histogram of {len(samples)} samples")
    axes[1].legend()
    evidence.figure("samples_and_class_histogram", fig)
    evidence.table("class_histogram", [{"digit": d, "share": float(hist[d])} for d in range(10)])
    assert hist.min() >= cfg["min_class_share"], f"a digit is missing or rare: {hist.round(3)}"
    assert hist.max() <= cfg["max_class_share"], f"mode collapse: {hist.round(3)}"
    # both players kept learning: D is not perfect at the end, G's loss is finite
    tail = slice(-len(curves["d_loss"]) // 5, None)
    assert np.isfinite(curves["g_loss"]).all()
    assert np.mean(curves["d_real"][tail]) - np.mean(curves["d_fake"][tail]) < cfg["max_d_gap"]


def test_gan_does_not_memorise_training_digits(gan, real_digits, experiment, evidence):
    cfg = experiment("gan")
    _, _, samples, _, _ = gan
    x_train, _, x_test, _ = real_digits
    train = x_train.numpy()
    d_fake = nearest_distances(samples, train)
    d_real = nearest_distances(x_test, train)
    ratio = float(np.median(d_fake) / np.median(d_real))
    copies = float((d_fake < cfg["copy_fraction"] * np.median(d_real)).mean())
    evidence.metric("nn_distance_ratio_fake_vs_heldout", ratio, threshold=cfg["min_nn_distance_ratio"],
                    direction="higher", key=True)
    evidence.metric("share_of_near_copies", copies, threshold=cfg["max_copy_share"], direction="lower")
    evidence.metric("median_nn_distance_fake", float(np.median(d_fake)))
    evidence.metric("median_nn_distance_heldout", float(np.median(d_real)))
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.hist(d_real, bins=40, alpha=0.6, density=True, label="held-out real -> train")
    ax.hist(d_fake, bins=40, alpha=0.6, density=True, label="GAN sample -> train")
    ax.set_xlabel("L2 pixel distance to the nearest training digit")
    ax.legend()
    evidence.figure("nearest_neighbour_distances", fig)
    assert ratio >= cfg["min_nn_distance_ratio"]
    assert copies <= cfg["max_copy_share"]
    # the check has teeth: training digits themselves (a memorising "generator") fail it
    d_copy = nearest_distances(train[:200] + 0.0, train)
    assert np.median(d_copy) == pytest.approx(0.0, abs=1e-6)
