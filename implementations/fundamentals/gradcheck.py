"""Numerical gradient checking, CS231n's discipline: central differences in float64.

rel_error <= 1e-7 is right; > 1e-2 is wrong. Beware kinks (ReLU at 0): keep inputs off them.
The default is the fourth-order central stencil at h=1e-3: round-off (eps * |f| / h) puts a
gradient entry of size g at a relative error near 1e-16 / (h * g), so the two-point stencil at
h=1e-5 cannot certify 1e-7 on entries below ~1e-4; the five-point one is exact to O(h^4),
which lets h grow. Larger h means staying further from kinks (callers check the margin).
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np


def rel_error(x: np.ndarray, y: np.ndarray) -> float:
    """max |x - y| / max(1e-8, |x| + |y|), elementwise."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    return float(np.max(np.abs(x - y) / np.maximum(1e-8, np.abs(x) + np.abs(y))))


def tensor_rel_error(x: np.ndarray, y: np.ndarray) -> float:
    """max |x - y| / max(1e-8, max(|x| + |y|)): rel_error with the denominator over the tensor.

    Use it for whole weight tensors: an entry many orders below the tensor's scale (a
    saturated unit's 1e-8 gradient) carries finite-difference round-off of ~1e-16 / h in
    absolute terms, which no correct backward can beat elementwise.
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    return float(np.max(np.abs(x - y)) / max(1e-8, float(np.max(np.abs(x) + np.abs(y)))))


def eval_numerical_gradient(f: Callable[[np.ndarray], float], x: np.ndarray, h: float = 1e-3,
                            order: int = 4) -> np.ndarray:
    """d f / d x for a scalar f, by central differences (order 2 or 4); x is perturbed in place and restored."""
    if order not in (2, 4):
        raise ValueError(f"order must be 2 or 4, got {order}")
    grad = np.zeros_like(x, dtype=np.float64)
    it = np.nditer(x, flags=["multi_index"], op_flags=[["readwrite"]])
    while not it.finished:
        ix = it.multi_index
        old = x[ix]

        def f_at(offset: float) -> float:
            x[ix] = old + offset
            return f(x)

        if order == 2:
            grad[ix] = (f_at(h) - f_at(-h)) / (2 * h)
        else:
            grad[ix] = (8 * (f_at(h) - f_at(-h)) - (f_at(2 * h) - f_at(-2 * h))) / (12 * h)
        x[ix] = old
        it.iternext()
    return grad


def eval_numerical_gradient_array(f: Callable[[np.ndarray], np.ndarray], x: np.ndarray,
                                  df: np.ndarray, h: float = 1e-3, order: int = 4) -> np.ndarray:
    """Gradient of sum(f(x) * df) w.r.t. x: checks a layer's backward given upstream df."""
    return eval_numerical_gradient(lambda z: float(np.sum(f(z) * df)), x, h, order)
