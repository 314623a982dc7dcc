"""Reliability diagrams: accuracy against confidence in equal-width bins, one line per model."""
from __future__ import annotations

from collections.abc import Mapping

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def plot_reliability(models: Mapping[str, tuple[np.ndarray, np.ndarray]], title: str, n_bins: int = 10) -> plt.Figure:
    """`models`: name -> (probs (N, C), labels (N,)). Points at each non-empty bin's mean
    confidence and accuracy; the diagonal is perfect calibration."""
    if not models:
        raise ValueError("no models to plot")
    fig, ax = plt.subplots(figsize=(4.6, 4.2))
    ax.plot([0, 1], [0, 1], "k--", lw=1, label="perfectly calibrated")
    for name, (probs, labels) in models.items():
        conf, correct = probs.max(1), probs.argmax(1) == np.asarray(labels)
        bins = np.minimum((conf * n_bins).astype(int), n_bins - 1)
        xs, ys = zip(*[(conf[bins == b].mean(), correct[bins == b].mean()) for b in range(n_bins) if (bins == b).any()])
        ax.plot(xs, ys, "o-", label=name)
    ax.set(title=title, xlabel="confidence", ylabel="accuracy", xlim=(0, 1), ylim=(0, 1))
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig
