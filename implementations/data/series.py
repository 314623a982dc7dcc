"""Offline univariate time series: sunspots, Mauna Loa CO2 and the airline passengers.

- sunspots: statsmodels' ``statsmodels/datasets/sunspots/sunspots.csv`` (yearly mean
  sunspot activity 1700..2008, 309 values; csv checksum-verified).
- co2: statsmodels' ``statsmodels/datasets/co2/co2.csv`` (weekly CO2 ppmv at Mauna Loa,
  1958-03-29..2001-12-29, 2284 Saturdays; 59 missing weeks filled by linear interpolation
  in time; csv checksum-verified).
- airline: pmdarima's ``load_airpassengers()`` (Box & Jenkins monthly international
  airline passengers in thousands, 1949-01..1960-12, 144 values). The values are written
  in pmdarima's source, so the checksum is over the returned values' float64 bytes.
"""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from .sources import (SOURCES, DataSourceError, resolve_source, sha256_of, sha256_of_array,
                      verify_digest)

__all__ = ["Series", "load_sunspots", "load_co2", "load_airline", "train_test_tail"]

PathLike = str | os.PathLike[str]


@dataclass
class Series:
    """A univariate series: ``values`` (T,) float64, ``index`` (T,) (years as an int64
    ``pd.Index`` or a ``pd.DatetimeIndex``), ``name``, and ``period``, the seasonal period
    in steps that seasonal models and seasonal-naive baselines use."""

    values: np.ndarray
    index: pd.Index
    name: str
    period: int

    def __len__(self) -> int:
        return len(self.values)


@functools.lru_cache(maxsize=4)
def _parse_sunspots(path: str, digest: str) -> tuple[np.ndarray, np.ndarray]:
    df = pd.read_csv(path)
    return df["YEAR"].to_numpy(np.int64), df["SUNACTIVITY"].to_numpy(np.float64)


def load_sunspots(path: PathLike | None = None) -> Series:
    """Yearly sunspot activity, 309 values for 1700..2008, index = years (int64).

    The solar cycle is about 11 years but varies (roughly 9 to 14) and is not a fixed
    calendar season; ``period=11`` is the conventional approximation used for
    seasonal-naive baselines and lag features, not an exact seasonality.
    """
    p = resolve_source("sunspots", path)
    years, values = _parse_sunspots(str(p), sha256_of(p))
    return Series(values.copy(), pd.Index(years.copy(), name="year"), "sunspots", 11)


@functools.lru_cache(maxsize=4)
def _parse_co2(path: str, digest: str) -> tuple[np.ndarray, np.ndarray]:
    df = pd.read_csv(path)
    dates = pd.to_datetime(df["date"].astype(str), format="%Y%m%d")
    if not (dates.diff().dropna() == pd.Timedelta(days=7)).all():
        raise DataSourceError(f"co2: {path} is not a gap-free weekly series")
    s = pd.Series(df["co2"].to_numpy(np.float64), index=pd.DatetimeIndex(dates))
    return s.index.to_numpy(), s.interpolate(method="time").to_numpy(np.float64)


def load_co2(path: PathLike | None = None) -> Series:
    """Weekly Mauna Loa CO2 (ppmv), 2284 values, index = weekly Saturdays (W-SAT),
    ``period=52`` (a year of weeks; the true year is 52.18 weeks). Missing weeks are
    linearly interpolated in time, so ``values`` has no NaN."""
    p = resolve_source("co2", path)
    dates, values = _parse_co2(str(p), sha256_of(p))
    index = pd.DatetimeIndex(dates.copy(), name="week", freq="W-SAT")
    return Series(values.copy(), index, "co2", 52)


def load_airline() -> Series:
    """Box & Jenkins airline passengers (thousands), 144 monthly values 1949-01..1960-12,
    index = month starts (MS), ``period=12``. Verified against the registered checksum."""
    src = SOURCES["airline"]
    try:
        from pmdarima.datasets import load_airpassengers
    except ImportError as exc:
        raise DataSourceError(
            f"airline: pmdarima is not installed ({exc}). To install it: "
            f"{src.install_hint}.") from exc
    values = np.asarray(load_airpassengers(), dtype=np.float64)
    verify_digest(sha256_of_array(values), src.sha256, "airline",
                  "pmdarima.datasets.load_airpassengers()", src.install_hint)
    index = pd.date_range("1949-01-01", periods=len(values), freq="MS", name="month")
    return Series(values.copy(), index, "airline", 12)


def train_test_tail(series: Series, n_test: int) -> tuple[Series, Series]:
    """Split off the last ``n_test`` steps as the held-out test series (no shuffling)."""
    if not 0 < n_test < len(series):
        raise ValueError(f"n_test must be in 1..{len(series) - 1}, got {n_test}")
    cut = len(series) - n_test
    train = replace(series, values=series.values[:cut].copy(), index=series.index[:cut])
    test = replace(series, values=series.values[cut:].copy(), index=series.index[cut:])
    return train, test
