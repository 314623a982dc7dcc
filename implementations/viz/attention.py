"""Attention-weight heatmaps: one panel per map, query positions down, key positions across."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def plot_attention_maps(maps: Mapping[str, np.ndarray], title: str, query_labels: Sequence[str] | None = None,
                        key_labels: Sequence[str] | None = None, xlabel: str = "key position",
                        ylabel: str = "query position") -> plt.Figure:
    """maps: name -> weights (L, S) with rows summing to 1 (or 0 for fully masked rows)."""
    if not maps:
        raise ValueError("no attention maps to plot")
    fig, axes = plt.subplots(1, len(maps), figsize=(3.4 * len(maps), 3.4), squeeze=False)
    for ax, (name, w) in zip(axes[0], maps.items()):
        w = np.asarray(w, dtype=float)
        if w.ndim != 2:
            raise ValueError(f"map {name!r} must be 2-D (L, S), got shape {w.shape}")
        im = ax.imshow(w, cmap="viridis", vmin=0.0, vmax=max(float(w.max()), 1e-12), aspect="auto")
        ax.set(title=name, xlabel=xlabel, ylabel=ylabel)
        if key_labels is not None:
            ax.set_xticks(range(len(key_labels)), key_labels, fontsize=6)
        if query_labels is not None:
            ax.set_yticks(range(len(query_labels)), query_labels, fontsize=6)
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
