"""Faithfulness of an attribution map by deletion (Petsiuk et al. 2018, RISE; Samek et al.
2017, "most relevant first"): remove pixels in the order the map ranks them and watch the
predicted class's probability. A map that points at what the model uses makes it fall
fast; a random order makes it fall slowly. The area under the curve (mean probability over
the deleted fractions) is the score: lower is more faithful.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from .saliency import as_target

__all__ = ["deletion_curve", "curve_area", "random_scores"]


@torch.no_grad()
def deletion_curve(model: nn.Module, x: Tensor, target: int | Tensor, scores: Tensor,
                   fractions: np.ndarray | list[float], fill: float | Tensor = 0.0) -> Tensor:
    """Probability of `target` after the top `fractions` of pixels by `scores` are set to `fill`.

    x: (N, C, H, W); scores: (N, H, W) or (N, 1, H, W), one score per pixel position (all
    channels of a pixel are deleted together); fractions in [0, 1]. Returns (N, F) with
    F = len(fractions). Ties are broken by position (stable sort), so a constant map deletes
    in raster order."""
    if x.ndim != 4:
        raise ValueError(f"x must be (N, C, H, W), got {tuple(x.shape)}")
    N, C, H, W = x.shape
    scores = scores.reshape(N, -1) if scores.numel() == N * H * W else None
    if scores is None:
        raise ValueError(f"scores must hold one value per pixel, (N, H, W) = ({N}, {H}, {W})")
    fractions = np.asarray(fractions, dtype=np.float64)
    if fractions.ndim != 1 or fractions.min() < 0 or fractions.max() > 1:
        raise ValueError(f"fractions must be a 1-d array in [0, 1], got {fractions}")
    target = as_target(target, N)
    order = torch.argsort(scores, dim=1, descending=True, stable=True)   # (N, H*W)
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(H * W).expand(N, -1))           # rank of each pixel
    fill = torch.as_tensor(fill, dtype=x.dtype)
    ks = torch.as_tensor(np.round(fractions * H * W).astype(np.int64))          # (F,)
    probs = []
    for chunk in ks.split(max(1, 4096 // N)):                                     # (F', N) images a batch
        deleted = (rank[None] < chunk[:, None, None]).view(len(chunk), N, 1, H, W)
        xd = torch.where(deleted, fill, x[None]).reshape(-1, C, H, W)
        p = torch.softmax(model(xd), dim=1).view(len(chunk), N, -1)
        probs.append(p.gather(2, target.expand(len(chunk), N)[..., None])[..., 0].T)
    return torch.cat(probs, dim=1)


def curve_area(curves: Tensor, fractions: np.ndarray | list[float]) -> Tensor:
    """Normalised area under each deletion curve (N, F) over `fractions` -> (N,): the mean
    probability along the deletion (trapezoid rule). Lower = more faithful map."""
    fr = torch.as_tensor(np.asarray(fractions, dtype=np.float64), dtype=curves.dtype)
    if curves.shape[-1] != len(fr) or len(fr) < 2:
        raise ValueError(f"curves (N, {curves.shape[-1]}) and {len(fr)} fractions disagree")
    return torch.trapezoid(curves, fr, dim=-1) / (fr[-1] - fr[0])


def random_scores(shape: tuple[int, ...], seed: int) -> Tensor:
    """A random pixel ranking (uniform scores) of the given shape, from torch.Generator(seed)."""
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed))
