"""Loss functions with torch's names and reduction semantics.

Protocol: `loss = L.forward(input, target)` returns a float and caches; `L.backward()` returns
d loss / d input, same shape as input.
"""
from __future__ import annotations

import numpy as np


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise log-softmax via log-sum-exp: stable for logits of any magnitude. (N, C) -> (N, C)."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def _check_classification(logits: np.ndarray, target: np.ndarray) -> None:
    if logits.ndim != 2:
        raise ValueError(f"expected logits of shape (N, C), got {logits.shape}")
    if target.shape != (logits.shape[0],):
        raise ValueError(f"expected integer targets of shape ({logits.shape[0]},), got {target.shape}")
    if not np.issubdtype(target.dtype, np.integer):
        raise ValueError(f"expected integer class targets, got dtype {target.dtype}")
    if target.size and (target.min() < 0 or target.max() >= logits.shape[1]):
        raise ValueError(f"targets must lie in [0, {logits.shape[1] - 1}], got {target.min()}..{target.max()}")


class CrossEntropyLoss:
    """torch.nn.CrossEntropyLoss over logits and integer targets, reduction 'mean' or 'sum'.

    Inputs:  logits (N, C), target (N,) ints in [0, C)
    Returns: scalar loss
    """

    def __init__(self, reduction: str = "mean") -> None:
        if reduction not in ("mean", "sum"):
            raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
        self.reduction = reduction

    def forward(self, logits: np.ndarray, target: np.ndarray) -> float:
        target = np.asarray(target)
        _check_classification(logits, target)
        logp = log_softmax(logits)
        self._probs = np.exp(logp)
        self._target = target
        nll = -logp[np.arange(len(target)), target]
        return float(nll.mean() if self.reduction == "mean" else nll.sum())

    def backward(self) -> np.ndarray:
        grad = self._probs.copy()
        grad[np.arange(len(self._target)), self._target] -= 1.0
        if self.reduction == "mean":
            grad /= len(self._target)
        return grad

    __call__ = forward
