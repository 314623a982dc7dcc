"""Gradient clipping with torch.nn.utils' semantics, on lists of gradient arrays (in place).

clip_grad_norm_ rescales every gradient by min(1, max_norm / (total_norm + 1e-6)), where
total_norm is the p-norm of all gradients seen as one vector: the direction of the update is
kept and only its length is bounded, which is what tames exploding gradients.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def total_norm(grads: Sequence[np.ndarray], norm_type: float = 2.0) -> float:
    """p-norm of the norms of every gradient (= the norm of all entries as one vector); 'inf' allowed."""
    norm_type = float(norm_type)
    if not grads:
        return 0.0
    norms = np.array([np.linalg.norm(np.ravel(g), ord=norm_type) for g in grads], dtype=np.float64)
    return float(np.linalg.norm(norms, ord=norm_type))


def clip_grad_norm_(grads: Sequence[np.ndarray], max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False) -> float:
    """torch.nn.utils.clip_grad_norm_: scale grads in place so their total norm is at most max_norm.

    Inputs:  grads, a list of arrays (any shapes); max_norm > 0; norm_type p >= 1 or 'inf'
    Returns: the total norm *before* clipping, as torch returns it.
    Raises ValueError when error_if_nonfinite and the norm is NaN or inf (torch raises RuntimeError).
    """
    if max_norm <= 0:
        raise ValueError(f"max_norm must be positive, got {max_norm}")
    norm = total_norm(grads, norm_type)
    if error_if_nonfinite and not np.isfinite(norm):
        raise ValueError(f"the total norm of order {norm_type} of the gradients is non-finite ({norm}), "
                         "so it cannot be clipped; pass error_if_nonfinite=False to scale anyway")
    coef = min(float(max_norm) / (norm + 1e-6), 1.0)
    for g in grads:
        g *= coef
    return norm


def clip_grad_value_(grads: Sequence[np.ndarray], clip_value: float) -> None:
    """torch.nn.utils.clip_grad_value_: clamp every entry into [-clip_value, clip_value], in place."""
    if clip_value < 0:
        raise ValueError(f"clip_value must be >= 0, got {clip_value}")
    for g in grads:
        np.clip(g, -clip_value, clip_value, out=g)


clip_grad_norm = clip_grad_norm_
