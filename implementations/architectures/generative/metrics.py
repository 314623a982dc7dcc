"""Sample-quality metrics in a feature space: FID, precision/recall, confidence, class entropy.

- Fréchet distance (Heusel et al. 2017, "GANs trained by a two time-scale update rule"):
  d^2 = |mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1^1/2 S2 S1^1/2)^1/2).
  The trace of the matrix square root is taken from the eigenvalues of the symmetric PSD
  matrix S1^1/2 S2 S1^1/2 (it has the eigenvalues of S1 S2), which avoids the complex
  round-off of a general ``sqrtm(S1 @ S2)``.
- Improved precision and recall (Kynkäänniemi et al. 2019): each set's manifold is the union
  of balls around its points with radius the distance to the k-th nearest neighbour (k=3 in
  the paper); precision = share of generated points inside the real manifold, recall =
  share of real points inside the generated manifold.
- The classifier's mean confidence (max softmax) and the entropy of the histogram of its
  predicted classes (ln 10 = 2.303 nats when all ten digits are equally frequent).
"""
from __future__ import annotations

import numpy as np

__all__ = ["gaussian_stats", "frechet_distance", "fid_from_features", "manifold_radii",
           "precision_recall", "class_histogram", "histogram_entropy", "mean_confidence"]


def gaussian_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and unbiased covariance (D, D), float64, of features (N, D), N >= 2."""
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or f.shape[0] < 2:
        raise ValueError(f"features must be (N, D) with N >= 2, got shape {f.shape}")
    if not np.isfinite(f).all():
        raise ValueError("features contain NaN or inf")
    return f.mean(axis=0), np.cov(f, rowvar=False).reshape(f.shape[1], f.shape[1])


def _psd_sqrt(sigma: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh(sigma)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Squared Fréchet (2-Wasserstein) distance between N(mu1, sigma1) and N(mu2, sigma2).

    mu: (D,), sigma: (D, D) symmetric positive semi-definite. float64 throughout.
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    s1, s2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    d = mu1.shape[0]
    if mu1.shape != (d,) or mu2.shape != (d,) or s1.shape != (d, d) or s2.shape != (d, d):
        raise ValueError(f"shapes must be mu (D,), sigma (D, D); got {mu1.shape}, {s1.shape}, {mu2.shape}, {s2.shape}")
    for name, s in (("sigma1", s1), ("sigma2", s2)):
        if not np.allclose(s, s.T, rtol=1e-10, atol=1e-12 * max(1.0, float(np.abs(s).max()))):
            raise ValueError(f"{name} is not symmetric")
    s1, s2 = (s1 + s1.T) / 2, (s2 + s2.T) / 2
    r1 = _psd_sqrt(s1)
    m = r1 @ s2 @ r1
    eig = np.linalg.eigvalsh((m + m.T) / 2)
    tr_covmean = float(np.sqrt(np.clip(eig, 0.0, None)).sum())
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * tr_covmean)


def fid_from_features(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """FID between two feature sets (N_a, D) and (N_b, D)."""
    return frechet_distance(*gaussian_stats(features_a), *gaussian_stats(features_b))


def _sq_dists(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise squared Euclidean distances (N, M), float64, clipped at 0."""
    d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.maximum(d, 0.0)


def manifold_radii(features: np.ndarray, k: int = 3) -> np.ndarray:
    """Squared distance from each point (N, D) to its k-th nearest other point: (N,)."""
    f = np.asarray(features, np.float64)
    if not 1 <= k < len(f):
        raise ValueError(f"k must be in [1, N-1] = [1, {len(f) - 1}], got {k}")
    d = _sq_dists(f, f)
    np.fill_diagonal(d, np.inf)
    return np.partition(d, k - 1, axis=1)[:, k - 1]


def _coverage(queries: np.ndarray, support: np.ndarray, radii: np.ndarray, chunk: int = 1024) -> float:
    inside = [(_sq_dists(queries[i:i + chunk], support) <= radii[None, :]).any(1)
              for i in range(0, len(queries), chunk)]
    return float(np.concatenate(inside).mean())


def precision_recall(real_features: np.ndarray, fake_features: np.ndarray, k: int = 3) -> tuple[float, float]:
    """Kynkäänniemi et al. (2019) precision and recall of fake (M, D) against real (N, D)."""
    real, fake = np.asarray(real_features, np.float64), np.asarray(fake_features, np.float64)
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(f"need (N, D) and (M, D) features, got {real.shape} and {fake.shape}")
    precision = _coverage(fake, real, manifold_radii(real, k))
    recall = _coverage(real, fake, manifold_radii(fake, k))
    return precision, recall


def class_histogram(probs: np.ndarray, num_classes: int = 10) -> np.ndarray:
    """Share of samples (num_classes,) assigned to each class by argmax of probs (N, C)."""
    pred = np.asarray(probs).argmax(1)
    return np.bincount(pred, minlength=num_classes)[:num_classes] / len(pred)


def histogram_entropy(hist: np.ndarray) -> float:
    """Entropy (nats) of a class histogram; ln(C) for a uniform one, 0 for a single class."""
    p = np.asarray(hist, np.float64)
    p = p[p > 0] / p.sum()
    return float(-(p * np.log(p)).sum())


def mean_confidence(probs: np.ndarray) -> float:
    """Mean of the classifier's top softmax probability over samples."""
    return float(np.asarray(probs).max(1).mean())
