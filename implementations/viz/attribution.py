"""Attribution maps drawn over their images, deletion curves and the integrated-gradients
convergence plot; each function returns a matplotlib Figure."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

__all__ = ["plot_attribution_maps", "plot_deletion_curves", "plot_convergence"]


def _np(a) -> np.ndarray:
    return a.detach().cpu().double().numpy() if hasattr(a, "detach") else np.asarray(a, dtype=np.float64)


def plot_attribution_maps(images, maps: Mapping[str, object], title: str,
                          row_labels: Sequence[str] | None = None) -> plt.Figure:
    """images (N, H, W) grayscale; maps {method: (N, H, W)}. One row per image: the image,
    then each map as a heat map over a faded copy of it. Signed maps use a diverging scale
    symmetric about 0 (red = evidence for the class, blue = against); non-negative maps a
    sequential one. Each map is scaled on its own (per image, per method)."""
    imgs = _np(images)
    if imgs.ndim != 3:
        raise ValueError(f"images must be (N, H, W), got {imgs.shape}")
    arrays = {k: _np(v) for k, v in maps.items()}
    for k, v in arrays.items():
        if v.shape != imgs.shape:
            raise ValueError(f"map {k!r} has shape {v.shape}, images {imgs.shape}")
    n, cols = len(imgs), 1 + len(arrays)
    fig, axes = plt.subplots(n, cols, figsize=(1.7 * cols, 1.7 * n + 0.5), squeeze=False)
    for i in range(n):
        axes[i, 0].imshow(imgs[i], cmap="gray")
        if row_labels is not None:
            axes[i, 0].set_ylabel(row_labels[i], fontsize=7)
        for j, (name, a) in enumerate(arrays.items(), start=1):
            ax = axes[i, j]
            ax.imshow(imgs[i], cmap="gray", alpha=0.35)
            m = a[i]
            if m.min() < 0:
                vmax = max(float(np.abs(m).max()), 1e-12)
                ax.imshow(m, cmap="RdBu_r", vmin=-vmax, vmax=vmax, alpha=0.8)
            else:
                ax.imshow(m, cmap="inferno", vmin=0, vmax=max(float(m.max()), 1e-12), alpha=0.75)
            if i == 0:
                ax.set_title(name, fontsize=8)
        axes[0, 0].set_title("image", fontsize=8)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def plot_deletion_curves(fractions, curves: Mapping[str, object], title: str,
                         ylabel: str = "probability of the predicted class") -> plt.Figure:
    """curves {name: (N, F)} over fractions (F,): the mean over N images as a line, the
    interquartile range as a band, the area (mean probability) in the legend."""
    fr = _np(fractions)
    fig, ax = plt.subplots(figsize=(6, 3.8))
    for name, c in curves.items():
        c = _np(c)
        mean = c.mean(0)
        area = float(np.trapezoid(mean, fr) / (fr[-1] - fr[0]))
        dashed = name.startswith("random") or "randomized" in name
        line, = ax.plot(fr, mean, ls="--" if dashed else "-", label=f"{name} (area {area:.3f})")
        ax.fill_between(fr, np.percentile(c, 25, axis=0), np.percentile(c, 75, axis=0),
                        color=line.get_color(), alpha=0.12)
    ax.set(title=title, xlabel="fraction of pixels deleted (most attributed first)", ylabel=ylabel,
           ylim=(0, 1.02))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_convergence(n_steps: Sequence[int], errors: Mapping[str, Sequence[float]], title: str,
                     ylabel: str, tolerance: float | None = None) -> plt.Figure:
    """errors {method: value per n_steps} on log-log axes, the tolerance as a dotted line."""
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for name, e in errors.items():
        ax.loglog(n_steps, e, marker="o", ms=3, label=name)
    if tolerance is not None:
        ax.axhline(tolerance, color="k", ls=":", lw=1, label=f"tolerance {tolerance:g}")
    ax.set(title=title, xlabel="integration steps", ylabel=ylabel)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
