"""Line plots of training curves and per-layer statistics; each returns a matplotlib Figure."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def plot_curves(curves: Mapping[str, Sequence[float]], title: str, xlabel: str, ylabel: str,
                logy: bool = False) -> plt.Figure:
    """One line per named curve, e.g. {"train loss": [...], "val loss": [...]}."""
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for name, values in curves.items():
        ax.plot(np.arange(1, len(values) + 1), values, label=name)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    if logy:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_layer_series(values: np.ndarray, title: str, ylabel: str, xlabel: str = "step",
                      logy: bool = True) -> plt.Figure:
    """values: (steps, n_layers) -> one line per layer (layer 1 = closest to the input)."""
    values = np.asarray(values)
    fig, ax = plt.subplots(figsize=(6, 3.6))
    colors = plt.cm.viridis(np.linspace(0, 0.9, values.shape[1]))
    for j in range(values.shape[1]):
        ax.plot(values[:, j], color=colors[j], label=f"layer {j + 1}", lw=1)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    if logy:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig


def plot_depth_profiles(profiles: Mapping[str, Sequence[float]], title: str, ylabel: str,
                        logy: bool = True) -> plt.Figure:
    """One line per setting of a per-layer quantity against depth (e.g. activation std)."""
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for name, values in profiles.items():
        ax.plot(np.arange(1, len(values) + 1), values, marker="o", ms=3, label=name)
    ax.set(title=title, xlabel="layer", ylabel=ylabel)
    if logy:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
