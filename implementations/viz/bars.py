"""Bar charts of one number per model or setting, with optional reference lines (chance, a floor)."""
from __future__ import annotations

from collections.abc import Mapping

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def plot_bars(values: Mapping[str, float], title: str, ylabel: str,
              lines: Mapping[str, float] | None = None, ylim: tuple[float, float] | None = None) -> plt.Figure:
    """One bar per name, its value printed on top; `lines` draws labelled horizontal references."""
    if not values:
        raise ValueError("no values to plot")
    fig, ax = plt.subplots(figsize=(max(4.0, 1.7 * len(values)), 3.6))
    names = list(values)
    bars = ax.bar(names, [values[n] for n in names], color=plt.cm.tab10(range(len(names))))
    ax.bar_label(bars, fmt="%.3f", fontsize=8)
    for i, (label, y) in enumerate((lines or {}).items()):
        ax.axhline(y, ls="--", lw=1, color=f"C{(i + 3) % 10}", label=f"{label} = {y:.3g}")
    ax.set(title=title, ylabel=ylabel)
    if ylim is not None:
        ax.set_ylim(*ylim)
    if lines:
        ax.legend(fontsize=8)
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    return fig
