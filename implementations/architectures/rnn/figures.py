"""Figures for the RNN experiments: forecasts with prediction intervals, per-class bar charts.

(Learning curves use the shared ``implementations.viz.curves.plot_curves``.)
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def plot_forecast(index: Sequence, history: np.ndarray, actual: np.ndarray,
                  forecasts: Mapping[str, np.ndarray], band: tuple[np.ndarray, np.ndarray] | None = None,
                  band_label: str = "90% interval", title: str = "", n_history: int = 60) -> plt.Figure:
    """The last ``n_history`` training values, the held-out tail and each model's forecast of it.

    index: (len(history) + len(actual),) x values; history (H,), actual (n,), forecasts name -> (n,);
    band: (lower (n,), upper (n,)) shaded around the tail.
    """
    index = np.asarray(index)
    h, n = len(history), len(actual)
    if len(index) != h + n:
        raise ValueError(f"index has {len(index)} entries, expected {h} + {n}")
    fig, ax = plt.subplots(figsize=(7, 3.6))
    k = min(n_history, h)
    ax.plot(index[h - k:h], history[h - k:], color="0.4", lw=1, label="training part")
    tail = index[h:]
    ax.plot(tail, actual, color="black", lw=1.6, label="held-out actual")
    if band is not None:
        ax.fill_between(tail, band[0], band[1], color="tab:blue", alpha=0.18, label=band_label)
    for (name, values), style in zip(forecasts.items(), ("-", "--", ":", "-.")):
        ax.plot(tail, values, ls=style, lw=1.3, label=name)
    ax.axvline(index[h], color="0.6", lw=0.8)
    ax.set(title=title, ylabel="value")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig


def plot_grouped_bars(groups: Sequence[str], series: Mapping[str, Sequence[float]], title: str,
                      ylabel: str) -> plt.Figure:
    """One group of bars per entry of ``groups`` (e.g. entity types), one bar per named series."""
    x = np.arange(len(groups))
    width = 0.8 / max(1, len(series))
    fig, ax = plt.subplots(figsize=(7, 3.6))
    for j, (name, values) in enumerate(series.items()):
        ax.bar(x + (j - (len(series) - 1) / 2) * width, values, width, label=name)
    ax.set_xticks(x, groups, rotation=30, ha="right", fontsize=8)
    ax.set(title=title, ylabel=ylabel)
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
