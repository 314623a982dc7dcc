"""A custom loss for this project's forecasting work: the pinball (quantile) loss.

Use case. The time-series assessment forecasts real series (sunspots, CO2, airline
passengers). A point forecast trained with MSE says nothing about how far off it may be, and
the usual fix -- a Gaussian band of constant width from the training residuals -- is wrong
for series whose noise grows with their level, as the sunspot cycle's does (quiet minima are
predictable, the height of a maximum is not). Training one network to output several
quantiles with the pinball loss gives intervals whose width follows the input: for quantile
tau the loss tau * (y - q) if y >= q else (1 - tau) * (q - y) is minimised in expectation
exactly at the tau-quantile of y given x (Koenker & Bassett 1978), so the (0.1, 0.9) outputs
form an 80% prediction interval. The metric it is designed for is the mean pinball loss over
the interval's quantiles (half the interval score of Gneiting & Raftery 2007 with alpha=0.2)
with coverage near the nominal 80%; the assessment compares it with the MSE + Gaussian band.

    loss = PinballLoss(quantiles=(0.1, 0.5, 0.9))
    value = loss.forward(pred, y)     # pred: (N, 3) one column per quantile, y: (N,)
    dpred = loss.backward()           # (N, 3)
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class PinballLoss:
    """Mean over samples and quantiles of rho_tau(y - q) = max(tau * (y - q), (tau - 1) * (y - q)).

    Inputs:  pred (N, Q), one column per quantile in `quantiles`; target (N,) or (N, 1)
    Returns: scalar loss. Gradient w.r.t. pred: -tau where y > q, 1 - tau where y < q, and
             at y == q the subgradient 1/2 - tau (the average of the two sides), all / (N * Q).
    """

    def __init__(self, quantiles: Sequence[float] = (0.1, 0.5, 0.9)) -> None:
        q = np.asarray(quantiles, dtype=np.float64)
        if q.ndim != 1 or q.size == 0 or np.any((q <= 0) | (q >= 1)):
            raise ValueError(f"quantiles must be a non-empty list of numbers in (0, 1), got {list(quantiles)}")
        self.quantiles = q

    def forward(self, pred: np.ndarray, target: np.ndarray) -> float:
        target = np.asarray(target)
        if target.ndim == 2 and target.shape[1] == 1:
            target = target[:, 0]
        if pred.ndim != 2 or pred.shape[1] != self.quantiles.size or target.shape != (pred.shape[0],):
            raise ValueError(f"expected pred (N, {self.quantiles.size}) and target (N,), "
                             f"got {pred.shape} and {target.shape}")
        self._err = target[:, None] - pred  # > 0: the quantile is too low
        tau = self.quantiles[None, :]
        return float(np.mean(np.maximum(tau * self._err, (tau - 1.0) * self._err)))

    def backward(self) -> np.ndarray:
        tau = self.quantiles[None, :]
        grad = np.where(self._err > 0, -tau, np.where(self._err < 0, 1.0 - tau, 0.5 - tau))
        return grad / self._err.size

    __call__ = forward


def pinball(pred: np.ndarray, target: np.ndarray, tau: float) -> float:
    """Mean pinball loss of one quantile forecast pred (N,) against target (N,)."""
    err = np.asarray(target) - np.asarray(pred)
    return float(np.mean(np.maximum(tau * err, (tau - 1.0) * err)))


def interval_coverage(lower: np.ndarray, upper: np.ndarray, target: np.ndarray) -> float:
    """Fraction of targets inside [lower, upper]."""
    target = np.asarray(target)
    return float(np.mean((target >= lower) & (target <= upper)))


def lag_windows(values: np.ndarray, n_lags: int) -> tuple[np.ndarray, np.ndarray]:
    """Supervised pairs from a series: X[t] = values[t:t+n_lags] (N, n_lags), y[t] = values[t+n_lags] (N,)."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1 or not 0 < n_lags < len(values):
        raise ValueError(f"need a 1-D series longer than n_lags >= 1, got shape {values.shape} and n_lags={n_lags}")
    X = np.lib.stride_tricks.sliding_window_view(values[:-1], n_lags).copy()
    return X, values[n_lags:].copy()
