"""Grids of convolution filters and feature maps; each function returns a matplotlib Figure.

Filters with 3 input channels are drawn as RGB patches (each filter min-max scaled on its
own, the usual AlexNet/CS231n picture); other filters as one diverging heat map per output
channel, summed over input channels, on a colour scale symmetric about 0.
"""
from __future__ import annotations

from collections.abc import Mapping

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

__all__ = ["filter_images", "plot_filters", "plot_feature_maps"]


def _np(a) -> np.ndarray:
    return a.detach().cpu().numpy() if hasattr(a, "detach") else np.asarray(a)


def filter_images(weight) -> np.ndarray:
    """weight (C_out, C_in, kh, kw) -> what plot_filters draws: (C_out, kh, kw, 3) RGB in
    [0, 1] when C_in == 3, else (C_out, kh, kw) summed over input channels."""
    w = _np(weight).astype(np.float64)
    if w.ndim != 4:
        raise ValueError(f"expected conv weights (C_out, C_in, kh, kw), got shape {w.shape}")
    if w.shape[1] == 3:
        rgb = w.transpose(0, 2, 3, 1)
        lo = rgb.min(axis=(1, 2, 3), keepdims=True)
        hi = rgb.max(axis=(1, 2, 3), keepdims=True)
        return (rgb - lo) / np.maximum(hi - lo, 1e-12)
    return w.sum(axis=1)


def plot_filters(panels: Mapping[str, object], title: str, ncols: int = 8) -> plt.Figure:
    """One grid of first-layer filters per named weight tensor (C_out, C_in, kh, kw)."""
    if not panels:
        raise ValueError("plot_filters needs at least one weight tensor")
    images = {name: filter_images(w) for name, w in panels.items()}
    rows_per = {name: int(np.ceil(len(im) / ncols)) for name, im in images.items()}
    n_rows = sum(rows_per.values())
    fig, axes = plt.subplots(n_rows, ncols, figsize=(ncols * 0.9, n_rows * 0.9 + 0.6 * len(panels)),
                             squeeze=False)
    r = 0
    for name, ims in images.items():
        vmax = float(np.abs(ims).max()) if ims.ndim == 3 else None
        for k in range(rows_per[name] * ncols):
            ax = axes[r + k // ncols, k % ncols]
            ax.set_xticks([])
            ax.set_yticks([])
            if k >= len(ims):
                ax.axis("off")
                continue
            if ims.ndim == 4:
                ax.imshow(ims[k], interpolation="nearest")
            else:
                ax.imshow(ims[k], cmap="RdBu_r", vmin=-vmax, vmax=vmax, interpolation="nearest")
        axes[r, 0].set_title(name, fontsize=8, loc="left")
        r += rows_per[name]
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_feature_maps(maps: Mapping[str, object], title: str, channels: int = 8,
                      image: np.ndarray | None = None) -> plt.Figure:
    """One row per named feature map (C, H, W): its `channels` most active channels (by mean
    activation), each on its own colour scale. `image` (H, W[, 3]) is drawn first if given."""
    if not maps:
        raise ValueError("plot_feature_maps needs at least one feature map")
    rows = len(maps) + (image is not None)
    fig, axes = plt.subplots(rows, channels, figsize=(channels * 1.2, rows * 1.3), squeeze=False)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    r = 0
    if image is not None:
        axes[0, 0].imshow(image, cmap=None if np.ndim(image) == 3 else "gray")
        axes[0, 0].set_title("input", fontsize=7)
        for ax in axes[0, 1:]:
            ax.axis("off")
        r = 1
    for name, m in maps.items():
        m = _np(m)
        if m.ndim != 3:
            raise ValueError(f"feature map {name!r} must be (C, H, W), got shape {m.shape}")
        top = np.argsort(-m.mean(axis=(1, 2)))[:channels]
        for j, c in enumerate(top):
            axes[r, j].imshow(m[c], cmap="viridis", interpolation="nearest")
            axes[r, j].set_title(f"ch {c}", fontsize=6)
        axes[r, 0].set_ylabel(f"{name}\n{m.shape[1]}x{m.shape[2]}", fontsize=7)
        r += 1
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
