"""Univariate forecasting: an LSTM quantile forecaster, seasonal-naive and SARIMA baselines, metrics.

Protocol (no leakage): the series is split into a training part and a held-out tail; every
fitted quantity (scaling, LSTM weights, SARIMA parameters, the MASE scale) comes from the
training part only. Forecasts over the tail are one step ahead from a rolling origin: the
forecast of y[t] may use the observed y[..t-1] (as a deployed forecaster would), never y[t].

The LSTM predicts quantiles of the next (optionally log-transformed and differenced) value,
trained with the pinball loss; its median is the point forecast and its outer quantiles a
prediction interval.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor, nn

from .lstm import LSTM

__all__ = ["pinball_loss", "SeriesTransform", "make_windows", "LSTMForecaster", "ForecastHistory",
           "fit_forecaster", "lstm_quantiles", "to_levels", "conformal_margin", "seasonal_naive_one_step",
           "seasonal_drift_one_step", "drift_one_step", "ets_one_step", "sarima_one_step", "mae", "rmse",
           "mase", "coverage"]


def pinball_loss(input: Tensor, target: Tensor, quantiles: Tensor | list[float],
                 reduction: str = "mean") -> Tensor:
    """Quantile (pinball) loss: mean over n and q of max(tau (y - yhat), (tau - 1)(y - yhat)).

    input (N, Q) predicted quantiles, target (N,), quantiles (Q,) in (0, 1).
    Its minimiser in yhat_q is the tau_q-quantile of y; tau = 0.5 gives half the MAE. The torch
    twin of the NumPy ``implementations.fundamentals.quantile_loss.PinballLoss`` (parity-tested).
    """
    taus = torch.as_tensor(quantiles, dtype=input.dtype, device=input.device)
    if input.dim() != 2 or target.shape != input.shape[:1] or taus.shape != input.shape[1:]:
        raise ValueError(f"expected input (N, Q), target (N,), quantiles (Q,); got {tuple(input.shape)}, "
                         f"{tuple(target.shape)}, {tuple(taus.shape)}")
    if not bool(((taus > 0) & (taus < 1)).all()):
        raise ValueError(f"quantiles must lie strictly between 0 and 1, got {taus.tolist()}")
    diff = target[:, None] - input
    loss = torch.maximum(taus * diff, (taus - 1) * diff)
    if reduction == "none":
        return loss
    if reduction != "mean":
        raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")
    return loss.mean()


@dataclass
class SeriesTransform:
    """log (optional) -> difference at ``lag`` (0 = none) -> standardise with training statistics.

    ``fit`` sees only the training values; ``forward`` maps any stretch of the series to the
    model's scale (the first ``lag`` values have no difference and are dropped); ``inverse_next``
    turns a prediction on the model's scale back into a level, given the observed past.
    """

    log: bool = False
    lag: int = 0
    mean: float = field(default=0.0, init=False)
    std: float = field(default=1.0, init=False)

    def _base(self, values: np.ndarray) -> np.ndarray:
        values = np.asarray(values, dtype=np.float64)
        if self.log:
            if np.any(values <= 0):
                raise ValueError("log transform needs strictly positive values")
            values = np.log(values)
        return values[self.lag:] - values[:-self.lag] if self.lag else values

    def fit(self, train: np.ndarray) -> "SeriesTransform":
        z = self._base(train)
        self.mean, self.std = float(z.mean()), float(z.std())
        if not self.std > 1e-12 * max(1.0, abs(self.mean)):  # constant up to rounding (e.g. log 2**k)
            raise ValueError("the training part is constant after the transform; cannot scale it")
        return self

    def forward(self, values: np.ndarray) -> np.ndarray:
        return (self._base(values) - self.mean) / self.std

    def inverse_next(self, z: np.ndarray, base: np.ndarray | None = None) -> np.ndarray:
        """Predictions z (n, ...) of y[t] on the model's scale -> levels of y[t]; ``base`` (n,)
        holds the observed y[t - lag] each difference is added to (ignored when lag = 0)."""
        d = np.asarray(z, dtype=np.float64) * self.std + self.mean
        if self.lag:
            if base is None:
                raise ValueError(f"lag={self.lag}: pass base, the observed y[t - lag] of each forecast")
            b = np.asarray(base, dtype=np.float64).reshape((-1,) + (1,) * (d.ndim - 1))
            d = d + (np.log(b) if self.log else b)
        return np.exp(d) if self.log else d


def make_windows(z: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """z (T,) -> inputs (T - window, window) and next values (T - window,)."""
    z = np.asarray(z, dtype=np.float64)
    if not 0 < window < len(z):
        raise ValueError(f"window must be in 1..{len(z) - 1}, got {window}")
    idx = np.arange(window)[None, :] + np.arange(len(z) - window)[:, None]
    return z[idx], z[window:]


class LSTMForecaster(nn.Module):
    """window (B, W) on the model's scale -> quantiles of the next value (B, Q), sorted so the
    quantiles never cross (the head predicts the median and positive gaps around it)."""

    def __init__(self, quantiles: list[float], hidden_size: int = 32, num_layers: int = 1,
                 dropout: float = 0.0) -> None:
        super().__init__()
        if list(quantiles) != sorted(quantiles) or 0.5 not in quantiles:
            raise ValueError(f"quantiles must be increasing and include 0.5, got {quantiles}")
        self.quantiles = list(quantiles)
        self.median = self.quantiles.index(0.5)
        self.lstm = LSTM(1, hidden_size, num_layers=num_layers, batch_first=True,
                         dropout=dropout if num_layers > 1 else 0.0)
        self.head = nn.Linear(hidden_size, len(quantiles))

    def forward(self, window: Tensor) -> Tensor:
        if window.dim() != 2:
            raise ValueError(f"expected windows (B, W), got {tuple(window.shape)}")
        out, _ = self.lstm(window.unsqueeze(-1))
        raw = self.head(out[:, -1])
        m = self.median
        mid = raw[:, m:m + 1]
        # Cumulative softplus gaps outwards from the median: monotone quantiles by construction.
        below = mid - torch.flip(torch.cumsum(torch.flip(nn.functional.softplus(raw[:, :m]), [1]), 1), [1])
        above = mid + torch.cumsum(nn.functional.softplus(raw[:, m + 1:]), 1)
        return torch.cat([below, mid, above], dim=1)


@dataclass
class ForecastHistory:
    train_loss: list[float] = field(default_factory=list)


def fit_forecaster(model: LSTMForecaster, X: np.ndarray, y: np.ndarray, epochs: int, lr: float = 3e-3,
                   batch_size: int = 16, weight_decay: float = 0.0, seed: int = 0) -> ForecastHistory:
    """Adam on the pinball loss over the training windows, shuffled with a seeded generator."""
    Xt, yt = torch.as_tensor(X, dtype=torch.float32), torch.as_tensor(y, dtype=torch.float32)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    gen = torch.Generator().manual_seed(seed)
    history = ForecastHistory()
    for _ in range(epochs):
        model.train()
        total = 0.0
        for idx in torch.randperm(len(yt), generator=gen).split(batch_size):
            loss = pinball_loss(model(Xt[idx]), yt[idx], model.quantiles)
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            total += loss.item() * len(idx)
        history.train_loss.append(total / len(yt))
    return history


def lstm_quantiles(model: LSTMForecaster, transform: SeriesTransform, series: np.ndarray, start: int,
                   window: int) -> tuple[np.ndarray, np.ndarray]:
    """One-step quantile forecasts of series[start:] on the model's scale, each from the observed
    values before it. Returns (quantiles (n, Q), targets (n,)), both on the model's scale."""
    series = np.asarray(series, dtype=np.float64)
    z = transform.forward(series)  # z[k] belongs to series[k + lag]
    lag = transform.lag
    if start - lag < window or start >= len(series):
        raise ValueError(f"need {window + lag} values before start={start} and at least one after")
    rows = np.stack([z[t - lag - window:t - lag] for t in range(start, len(series))])
    model.eval()
    with torch.no_grad():
        q = model(torch.as_tensor(rows, dtype=torch.float32)).double().numpy()
    return q, z[start - lag:]


def to_levels(transform: SeriesTransform, qz: np.ndarray, series: np.ndarray, start: int) -> np.ndarray:
    """Quantiles (n, Q) of series[start:] on the model's scale -> levels (n, Q)."""
    lag = transform.lag
    base = np.asarray(series, dtype=np.float64)[start - lag:start - lag + len(qz)] if lag else None
    return transform.inverse_next(qz, base)


def conformal_margin(lower: np.ndarray, upper: np.ndarray, target: np.ndarray, alpha: float) -> float:
    """Split-conformal widening of a quantile interval (CQR, Romano et al. 2019).

    On calibration points the model never trained on, scores s = max(lower - y, y - upper); the
    ceil((n + 1)(1 - alpha))-th smallest score is the margin that makes [lower - m, upper + m]
    cover a new point with probability >= 1 - alpha when the points are exchangeable.
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    scores = np.sort(np.maximum(np.asarray(lower) - target, np.asarray(target) - upper))
    k = int(np.ceil((len(scores) + 1) * (1 - alpha)))
    if k > len(scores):
        raise ValueError(f"{len(scores)} calibration points are too few for alpha={alpha}")
    return float(scores[k - 1])


def seasonal_naive_one_step(series: np.ndarray, start: int, period: int) -> np.ndarray:
    """Forecast of series[t] = series[t - period], for t in start..end."""
    series = np.asarray(series, dtype=np.float64)
    if not 0 < period <= start:
        raise ValueError(f"period must be in 1..start={start}, got {period}")
    return series[start - period:len(series) - period].copy()


def seasonal_drift_one_step(series: np.ndarray, start: int, period: int) -> np.ndarray:
    """Forecast of series[t] = series[t - period] + (series[t - 1] - series[t - 1 - period]):
    last season's value moved by the latest year-on-year change (no parameters). On a trending
    seasonal series it is a strong baseline (seasonal naive misses the trend)."""
    series = np.asarray(series, dtype=np.float64)
    if not 0 < period < start:
        raise ValueError(f"period must be in 1..start - 1={start - 1}, got {period}")
    t = np.arange(start, len(series))
    return series[t - period] + (series[t - 1] - series[t - 1 - period])


def drift_one_step(series: np.ndarray, start: int) -> np.ndarray:
    """Random walk with drift: series[t - 1] + (series[t - 1] - series[0]) / (t - 1)."""
    series = np.asarray(series, dtype=np.float64)
    if not 2 <= start < len(series):
        raise ValueError(f"start must be in 2..{len(series) - 1}, got {start}")
    t = np.arange(start, len(series))
    return series[t - 1] + (series[t - 1] - series[0]) / (t - 1)


def _model_scale(series: np.ndarray, start: int, log: bool) -> np.ndarray:
    """The series as float64 (its log with ``log``), after checking the split point."""
    y = np.asarray(series, dtype=np.float64)
    if not 0 < start < len(y):
        raise ValueError(f"start must be in 1..{len(y) - 1}, got {start}")
    if log:
        if np.any(y <= 0):
            raise ValueError("log=True needs strictly positive values")
        y = np.log(y)
    return y


def ets_one_step(series: np.ndarray, start: int, trend: str | None = None, seasonal: str | None = None,
                 period: int | None = None, damped_trend: bool = False, log: bool = False,
                 alpha: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """Exponential smoothing (statsmodels ETSModel, additive errors) fitted on series[:start] by
    maximum likelihood, then run over the tail with those parameters fixed: one-step forecasts of
    series[start:] and their 1 - alpha prediction intervals, (n,) and (n, 2)."""
    import pandas as pd
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel

    y = _model_scale(series, start, log)
    z = pd.Series(y)  # statsmodels' ETS prediction needs an index
    kw = dict(error="add", trend=trend, seasonal=seasonal, damped_trend=damped_trend,
              seasonal_periods=period if seasonal else None)
    fitted = ETSModel(z[:start], **kw).fit(disp=False)
    frame = ETSModel(z, **kw).smooth(fitted.params).get_prediction(start=start).summary_frame(alpha=alpha)
    point, interval = frame["mean"].to_numpy(), frame[["pi_lower", "pi_upper"]].to_numpy()
    return (np.exp(point), np.exp(interval)) if log else (point, interval)


def sarima_one_step(series: np.ndarray, start: int, order: tuple[int, int, int],
                    seasonal_order: tuple[int, int, int, int] = (0, 0, 0, 0), log: bool = False,
                    trend: str | None = None, alpha: float = 0.1) -> tuple[np.ndarray, np.ndarray, object]:
    """SARIMA fitted on series[:start] (statsmodels SARIMAX, maximum likelihood), then run over
    the tail with those parameters fixed: one-step-ahead forecasts of series[start:].

    Returns (point (n,), interval (n, 2) at level 1 - alpha, the fitted results). With
    ``log``, the model is fitted to log values and the point is exp of the log-scale mean:
    the median forecast, the natural point forecast for MAE.
    """
    from statsmodels.tsa.statespace.sarimax import SARIMAX

    y = _model_scale(series, start, log)
    res = SARIMAX(y[:start], order=tuple(order), seasonal_order=tuple(seasonal_order), trend=trend).fit(disp=False)
    pred = res.append(y[start:], refit=False).get_prediction(start=start)
    point, interval = np.asarray(pred.predicted_mean), np.asarray(pred.conf_int(alpha=alpha))
    return (np.exp(point), np.exp(interval), res) if log else (point, interval, res)


def mae(y: np.ndarray, yhat: np.ndarray) -> float:
    return float(np.mean(np.abs(np.asarray(y) - np.asarray(yhat))))


def rmse(y: np.ndarray, yhat: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(y) - np.asarray(yhat)) ** 2)))


def mase(y: np.ndarray, yhat: np.ndarray, train: np.ndarray, period: int) -> float:
    """Hyndman & Koehler's MASE: test MAE over the in-sample MAE of the seasonal-naive forecast
    (lag ``period``) on the training part. Below 1: better than seasonal-naive did in-sample."""
    train = np.asarray(train, dtype=np.float64)
    scale = np.mean(np.abs(train[period:] - train[:-period]))
    if not scale > 0:
        raise ValueError("the seasonal-naive in-sample MAE is zero; MASE is undefined")
    return mae(y, yhat) / float(scale)


def coverage(y: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> float:
    """Fraction of y inside [lower, upper]."""
    y = np.asarray(y)
    return float(np.mean((y >= np.asarray(lower)) & (y <= np.asarray(upper))))
