"""Fixed, seeded train/test splits shared by every offline data set.

Splits come from scikit-learn's ``train_test_split`` with a fixed ``random_state`` (and
``stratify=y`` for classification), so the same call gives the same split on every
machine. A :class:`Split` carries the row indices it took from the source, so callers can
check that train and test are disjoint and trace a row back to its record.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
from sklearn.model_selection import train_test_split

__all__ = ["Split", "stratified_split", "random_split", "stratified_subsample", "take"]


@dataclass
class Split:
    """A train/test split.

    ``X_*`` are arrays (rows first) or lists (texts, token lists); ``y_*`` are int64
    arrays for classification, lists of tag lists for tagging. ``train_idx`` and
    ``test_idx`` (int64) index the source's records in the order its loader returns
    them (for a source with an official split: train records first, then test records).
    """

    X_train: Any
    X_test: Any
    y_train: Any
    y_test: Any
    class_names: list[str] | None = None
    train_idx: np.ndarray | None = None
    test_idx: np.ndarray | None = None


def take(X: Any, idx: np.ndarray) -> Any:
    """Rows ``idx`` of an array (a copy) or of a list (a new list)."""
    if isinstance(X, np.ndarray):
        return X[idx]
    return [X[int(i)] for i in idx]


def stratified_subsample(y: np.ndarray, n: int | None, seed: int = 0) -> np.ndarray:
    """Indices of ``n`` records keeping class proportions (within one per class).

    ``n=None`` or ``n >= len(y)`` returns ``arange(len(y))``. Deterministic in ``seed``.
    """
    y = np.asarray(y)
    if n is None or n >= len(y):
        return np.arange(len(y), dtype=np.int64)
    if n <= 0:
        raise ValueError(f"n must be positive, got {n}")
    idx, _ = train_test_split(np.arange(len(y)), train_size=n, stratify=y,
                              random_state=seed)
    return idx.astype(np.int64)


def stratified_split(X: Any, y: Sequence[int] | np.ndarray, test_size: float | int = 0.25,
                     seed: int = 0, class_names: list[str] | None = None,
                     base_idx: np.ndarray | None = None) -> Split:
    """Stratified, seeded split of ``(X, y)``; per-class counts stay within one of the
    exact proportion. ``base_idx`` maps rows of X to source record ids (default: arange).
    """
    y = np.asarray(y, dtype=np.int64)
    if len(X) != len(y):
        raise ValueError(f"X has {len(X)} rows but y has {len(y)}")
    rows = np.arange(len(y))
    tr, te = train_test_split(rows, test_size=test_size, stratify=y, random_state=seed)
    base = rows if base_idx is None else np.asarray(base_idx)
    return Split(take(X, tr), take(X, te), y[tr], y[te], class_names,
                 base[tr].astype(np.int64), base[te].astype(np.int64))


def random_split(X: Any, y: Any, test_size: float | int = 0.2, seed: int = 0,
                 class_names: list[str] | None = None) -> Split:
    """Seeded split without stratification (for sequence tagging, where y is per token)."""
    if len(X) != len(y):
        raise ValueError(f"X has {len(X)} rows but y has {len(y)}")
    rows = np.arange(len(X))
    tr, te = train_test_split(rows, test_size=test_size, random_state=seed)
    return Split(take(X, tr), take(X, te), take(y, tr), take(y, te), class_names,
                 tr.astype(np.int64), te.astype(np.int64))
