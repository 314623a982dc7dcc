"""Weight penalties: L1 (lasso) and L2 (ridge / weight decay), each with its gradient.

    penalty = L2(alpha=1e-3)
    value, grads = penalty(weights)      # add value to the loss, grads to the weight gradients

L2's value is alpha/2 * sum w^2, so its gradient alpha * w is exactly torch.optim.SGD's
`weight_decay=alpha`. L1's value is alpha * sum |w| with subgradient alpha * sign(w) (0 at 0,
as torch's abs): a constant pull towards zero whatever the weight's size, which is why L1
drives unneeded weights to (near) zero while L2 only shrinks them in proportion.
Dropout, the third regulariser, is a layer (layers.Dropout).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np


def _check_alpha(alpha: float) -> float:
    if alpha < 0:
        raise ValueError(f"penalty strength alpha must be >= 0, got {alpha}")
    return float(alpha)


def l1_penalty(params: Sequence[np.ndarray], alpha: float) -> tuple[float, list[np.ndarray]]:
    """alpha * sum_i |w_i| over every array, and its subgradient alpha * sign(w) per array."""
    alpha = _check_alpha(alpha)
    value = alpha * sum(float(np.abs(p).sum()) for p in params)
    return value, [alpha * np.sign(p) for p in params]


def l2_penalty(params: Sequence[np.ndarray], alpha: float) -> tuple[float, list[np.ndarray]]:
    """alpha / 2 * sum_i w_i^2 over every array, and its gradient alpha * w per array."""
    alpha = _check_alpha(alpha)
    value = 0.5 * alpha * sum(float(np.sum(p * p)) for p in params)
    return value, [alpha * p for p in params]


class Penalty:
    """A callable weight penalty: `penalty(weights) -> (value, grads)`; subclasses set `rule`."""

    rule: Callable[[Sequence[np.ndarray], float], tuple[float, list[np.ndarray]]]

    def __init__(self, alpha: float) -> None:
        self.alpha = _check_alpha(alpha)

    def __call__(self, params: Sequence[np.ndarray]) -> tuple[float, list[np.ndarray]]:
        return self.rule(params, self.alpha)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(alpha={self.alpha})"


class L1(Penalty):
    rule = staticmethod(l1_penalty)


class L2(Penalty):
    rule = staticmethod(l2_penalty)


def near_zero_fraction(params: Sequence[np.ndarray], tol: float) -> float:
    """Fraction of entries with |w| <= tol across the arrays (how sparse a penalty made them)."""
    total = sum(p.size for p in params)
    if total == 0:
        raise ValueError("near_zero_fraction got no entries")
    return sum(int(np.count_nonzero(np.abs(p) <= tol)) for p in params) / total
