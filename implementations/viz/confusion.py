"""Confusion-matrix heat map for classifiers; returns a matplotlib Figure."""
from __future__ import annotations

from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

__all__ = ["plot_confusion_matrix"]


def plot_confusion_matrix(cm: np.ndarray, class_names: Sequence[str], title: str,
                          normalize: bool = True) -> plt.Figure:
    """cm (K, K) counts, rows = true class, columns = predicted; rows normalised to 1 when
    `normalize`, with the value written in each cell."""
    cm = np.asarray(cm, dtype=np.float64)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1] or cm.shape[0] != len(class_names):
        raise ValueError(f"cm must be (K, K) with K = len(class_names) = {len(class_names)}, got {cm.shape}")
    shown = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1) if normalize else cm
    k = len(class_names)
    fig, ax = plt.subplots(figsize=(0.55 * k + 2, 0.5 * k + 1.5))
    im = ax.imshow(shown, cmap="Blues", vmin=0)
    for i in range(k):
        for j in range(k):
            ax.text(j, i, f"{shown[i, j]:.2f}" if normalize else f"{int(shown[i, j])}",
                    ha="center", va="center", fontsize=6,
                    color="white" if shown[i, j] > 0.5 * shown.max() else "black")
    ax.set(xticks=range(k), yticks=range(k), xlabel="predicted", ylabel="true", title=title)
    ax.set_xticklabels(class_names, rotation=45, ha="right", fontsize=7)
    ax.set_yticklabels(class_names, fontsize=7)
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    return fig
