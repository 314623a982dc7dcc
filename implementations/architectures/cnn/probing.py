"""Looking inside a CNN: intermediate feature maps by module name, translation equivariance,
and simple statistics of first-layer filters.

Convolutions, BatchNorm in eval mode and pointwise activations commute with translation, so
shifting the input by k pixels shifts a feature map of total stride s by k / s (when s
divides k), except near the borders where padding differs. `shift_error` measures that
on the interior; it is the number behind the feature-map figures.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor, nn

__all__ = ["capture", "shifted_crops", "shift_error", "channel_coherence", "relative_change"]


@torch.no_grad()
def capture(model: nn.Module, x: Tensor, names: Sequence[str]) -> dict[str, Tensor]:
    """Outputs of the submodules `names` (e.g. "features.2") for input x, in eval mode.
    Returns {name: tensor (N, C, H, W)}; the model's mode is restored."""
    modules = dict(model.named_modules())
    missing = [n for n in names if n not in modules]
    if missing:
        raise ValueError(f"no submodules named {missing}; valid names include "
                         f"{[n for n in modules if n][:10]}")
    out: dict[str, Tensor] = {}
    hooks = [modules[n].register_forward_hook(lambda m, i, o, n=n: out.__setitem__(n, o.detach().clone()))
             for n in names]
    was_training = model.training
    try:
        model.eval()
        model(x)
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return out


def shifted_crops(image: Tensor, size: int, shift: int, top: int = 0,
                  left: int = 0) -> tuple[Tensor, Tensor]:
    """Two size x size windows of image (C, H, W): `a` at (top + shift, left + shift) and `b`
    at (top, left), so b's content is a's moved by +shift pixels down and right
    (a[..., i, j] == b[..., i + shift, j + shift]). Real pixels on both sides, no fill."""
    if image.ndim != 3:
        raise ValueError(f"image must be (C, H, W), got {tuple(image.shape)}")
    if shift < 0 or top + shift + size > image.shape[1] or left + shift + size > image.shape[2]:
        raise ValueError(f"windows of {size} at ({top}, {left}) shifted by {shift} do not fit "
                         f"in an image of {tuple(image.shape[1:])}")
    a = image[:, top + shift:top + shift + size, left + shift:left + shift + size]
    b = image[:, top:top + size, left:left + size]
    return a, b


def shift_error(fa: Tensor, fb: Tensor, shift: int, margin: int) -> float:
    """Max |fb[i + shift, j + shift] - fa[i, j]| over the interior (dropping `margin` cells
    at every border), relative to max |fa|. fa, fb: (..., H, W) feature maps of the two
    crops of `shifted_crops`; `shift` is in feature-map cells (input shift / stride)."""
    if fa.shape != fb.shape:
        raise ValueError(f"feature maps differ in shape: {tuple(fa.shape)} vs {tuple(fb.shape)}")
    H, W = fa.shape[-2:]
    if 2 * margin + shift >= min(H, W):
        raise ValueError(f"margin {margin} and shift {shift} leave no interior in {H}x{W}")
    a = fa[..., margin:H - margin - shift, margin:W - margin - shift]
    b = fb[..., margin + shift:H - margin, margin + shift:W - margin]
    return float((a - b).abs().max() / fa.abs().max().clamp_min(1e-12))


def channel_coherence(weight: Tensor) -> float:
    """How alike a filter's input-channel slices are: mean over filters of the share of
    its energy in the best rank-1 (channel x space) approximation, in [1/C_in, 1].
    For i.i.d. random filters it is modest; luminance edge detectors (same pattern in R, G, B)
    push it towards 1. weight: (C_out, C_in, kh, kw)."""
    if weight.ndim != 4 or weight.shape[1] < 2:
        raise ValueError(f"need (C_out, C_in >= 2, kh, kw) weights, got {tuple(weight.shape)}")
    w = weight.detach().double().flatten(2)  # (C_out, C_in, kh*kw)
    s = torch.linalg.svdvals(w)
    return float(((s[:, 0] ** 2) / (s ** 2).sum(dim=1).clamp_min(1e-30)).mean())


def relative_change(before: Tensor, after: Tensor) -> np.ndarray:
    """Per filter ||after - before|| / ||before|| (L2 over all but the first dimension)."""
    if before.shape != after.shape:
        raise ValueError(f"shapes differ: {tuple(before.shape)} vs {tuple(after.shape)}")
    b, a = before.detach().double().flatten(1), after.detach().double().flatten(1)
    return ((a - b).norm(dim=1) / b.norm(dim=1).clamp_min(1e-30)).numpy()
