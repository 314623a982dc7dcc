"""Is one classifier better than another on the same test items, beyond the noise?

- `paired_bootstrap`: resample test items with replacement, the same items for both models, and
  take the percentile interval of the accuracy difference (Efron & Tibshirani; the standard paired
  test in NLP, e.g. Koehn 2004 for MT).
- `mcnemar`: the exact McNemar test on the discordant pairs (items exactly one model gets right):
  under "equally accurate" the count b of (A right, B wrong) is Binomial(b + c, 1/2).
"""
from __future__ import annotations

import numpy as np
from scipy.stats import binomtest

__all__ = ["paired_bootstrap", "mcnemar"]


def _correct(pred: np.ndarray, labels: np.ndarray) -> np.ndarray:
    pred, labels = np.asarray(pred), np.asarray(labels)
    if pred.shape != labels.shape or pred.ndim != 1 or not len(labels):
        raise ValueError(f"predictions and labels must be equal-length 1-D arrays, got {pred.shape} and "
                         f"{labels.shape}")
    return (pred == labels).astype(np.float64)


def paired_bootstrap(pred_a: np.ndarray, pred_b: np.ndarray, labels: np.ndarray, n_resamples: int = 2000,
                     confidence: float = 0.95, seed: int = 0) -> tuple[float, float, float]:
    """(accuracy(A) - accuracy(B), lower, upper) with a percentile bootstrap interval over items."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    diff = _correct(pred_a, labels) - _correct(pred_b, labels)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(diff), size=(n_resamples, len(diff)))
    means = diff[idx].mean(axis=1)
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(means, [alpha, 1 - alpha])
    return float(diff.mean()), float(lo), float(hi)


def mcnemar(pred_a: np.ndarray, pred_b: np.ndarray, labels: np.ndarray) -> tuple[int, int, float]:
    """(b, c, two-sided exact p): b items only A gets right, c items only B gets right."""
    a, b_ = _correct(pred_a, labels), _correct(pred_b, labels)
    b = int(np.sum((a == 1) & (b_ == 0)))
    c = int(np.sum((a == 0) & (b_ == 1)))
    p = 1.0 if b + c == 0 else float(binomtest(b, b + c, 0.5).pvalue)
    return b, c, p
