"""Integrated gradients (Sundararajan, Taly & Yan 2017).

    IG_i(x) = (x_i - x'_i) * integral_0^1 d F(x' + a (x - x')) / d x_i  da

along the straight path from a baseline x' (here by default all zeros) to the input x.
Its *completeness* axiom: sum_i IG_i(x) = F(x) - F(x'), exactly for the integral, up to the
quadrature error for a finite number of steps. The quadrature rules and their names follow
captum (`riemann_left|right|middle|trapezoid`, `gausslegendre`).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from .saliency import as_target, input_gradients, target_scores

__all__ = ["METHODS", "path_points", "integrated_gradients", "completeness_gap"]

METHODS = ("riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid", "gausslegendre")


def path_points(n_steps: int, method: str = "gausslegendre") -> tuple[np.ndarray, np.ndarray]:
    """Quadrature nodes `alphas` in [0, 1] and weights (float64, both (n_steps,)), with
    sum(weights) == 1 and sum(weights * g(alphas)) ~ integral_0^1 g(a) da."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if n_steps < (1 if method == "gausslegendre" else 2):
        raise ValueError(f"n_steps must be >= 2 (>= 1 for gausslegendre), got {n_steps}")
    n = n_steps
    if method == "gausslegendre":
        nodes, weights = np.polynomial.legendre.leggauss(n)  # on [-1, 1]
        return 0.5 * (1.0 + nodes), 0.5 * weights
    if method == "riemann_trapezoid":
        # n points, n - 1 intervals of width 1/(n-1). (captum 0.9 uses width 1/n here, so its
        # weights sum to (n-1)/n and its trapezoid attributions are ours times (n-1)/n.)
        weights = np.full(n, 1.0 / (n - 1))
        weights[[0, -1]] /= 2
        return np.linspace(0.0, 1.0, n), weights
    weights = np.full(n, 1.0 / n)
    start = {"riemann_left": 0.0, "riemann_right": 1.0 / n, "riemann_middle": 0.5 / n}[method]
    return start + np.arange(n) / n, weights


def integrated_gradients(model: nn.Module, x: Tensor, target: int | Tensor,
                         baselines: Tensor | float | None = None, n_steps: int = 50,
                         method: str = "gausslegendre",
                         internal_batch_size: int | None = None) -> Tensor:
    """Integrated gradients of x (N, ...) for class `target`, same shape as x.

    baselines: a tensor shaped like x, a scalar, or None (zeros). The path's n_steps
    points are evaluated in chunks of at most `internal_batch_size` rows (all at once when
    None); captum's `IntegratedGradients.attribute` takes the same arguments."""
    target = as_target(target, len(x))
    x = x.detach()
    baselines = torch.zeros_like(x) if baselines is None else torch.as_tensor(baselines, dtype=x.dtype)
    baselines = baselines.expand_as(x)
    alphas, weights = path_points(n_steps, method)
    per_chunk = n_steps if internal_batch_size is None else max(1, internal_batch_size // len(x))
    delta = x - baselines
    total = torch.zeros_like(x)
    view = (-1,) + (1,) * x.ndim
    for s in range(0, n_steps, per_chunk):
        a = torch.as_tensor(alphas[s:s + per_chunk], dtype=x.dtype).view(view)
        w = torch.as_tensor(weights[s:s + per_chunk], dtype=x.dtype).view(view)
        k = len(a)
        points = (baselines + a * delta).reshape(k * len(x), *x.shape[1:])  # step-major
        grads = input_gradients(model, points, target.repeat(k)).view(k, *x.shape)
        total = total + (w * grads).sum(0)
    return total * delta


@torch.no_grad()
def completeness_gap(model: nn.Module, x: Tensor, target: int | Tensor, attributions: Tensor,
                     baselines: Tensor | float | None = None) -> Tensor:
    """Per row: sum(attributions) - (F(x) - F(baseline)), F the target logit; (N,).
    Zero for exact integrated gradients (the completeness axiom)."""
    target = as_target(target, len(x))
    baselines = torch.zeros_like(x) if baselines is None else torch.as_tensor(baselines, dtype=x.dtype)
    baselines = baselines.expand_as(x)
    f_x = target_scores(model(x), target)
    f_b = target_scores(model(baselines.contiguous()), target)
    return attributions.flatten(1).sum(1) - (f_x - f_b)
