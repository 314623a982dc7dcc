"""Loss functions with torch's names and reduction semantics.

Protocol: `loss = L.forward(input, target)` returns a float and caches; `L.backward()` returns
d loss / d input, same shape as input. Classification losses take logits and stay finite for
logits of any magnitude (log-sum-exp, softplus and expm1 arranged so exp never overflows).

- MSELoss: torch.nn.MSELoss.
- CrossEntropyLoss: torch.nn.CrossEntropyLoss over integer targets, with label_smoothing.
- BCEWithLogitsLoss: torch.nn.BCEWithLogitsLoss over 0/1 targets.
- FocalLoss: Lin et al. 2017, -alpha_t (1 - p_t)^gamma log p_t, softmax (multi-class) or
  sigmoid (binary); gamma=0 and alpha=None is exactly cross-entropy / BCE-with-logits.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from implementations.fundamentals.activations import sigmoid

REDUCTIONS = ("mean", "sum")


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise log-softmax via log-sum-exp: stable for logits of any magnitude. (N, C) -> (N, C)."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def log_sigmoid(x: np.ndarray) -> np.ndarray:
    """log(sigmoid(x)) = -softplus(-x), stable for any x."""
    return np.minimum(x, 0.0) - np.log1p(np.exp(-np.abs(x)))


def _check_reduction(reduction: str) -> str:
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
    return reduction


def _check_classification(logits: np.ndarray, target: np.ndarray) -> None:
    if logits.ndim != 2:
        raise ValueError(f"expected logits of shape (N, C), got {logits.shape}")
    if target.shape != (logits.shape[0],):
        raise ValueError(f"expected integer targets of shape ({logits.shape[0]},), got {target.shape}")
    if not np.issubdtype(target.dtype, np.integer):
        raise ValueError(f"expected integer class targets, got dtype {target.dtype}")
    if target.size and (target.min() < 0 or target.max() >= logits.shape[1]):
        raise ValueError(f"targets must lie in [0, {logits.shape[1] - 1}], got {target.min()}..{target.max()}")


def _check_binary(logits: np.ndarray, target: np.ndarray) -> None:
    if logits.ndim != 1 or target.shape != logits.shape:
        raise ValueError(f"binary losses expect logits (N,) and targets (N,), got {logits.shape} and {target.shape}")
    if not np.all((target == 0) | (target == 1)):
        raise ValueError("binary targets must be 0 or 1")


def _reduce(values: np.ndarray, reduction: str) -> float:
    return float(values.mean() if reduction == "mean" else values.sum())


class MSELoss:
    """torch.nn.MSELoss: mean (or sum) of (input - target)^2.

    Inputs:  input (N, ...), target of the same shape
    Returns: scalar loss
    """

    def __init__(self, reduction: str = "mean") -> None:
        self.reduction = _check_reduction(reduction)

    def forward(self, input: np.ndarray, target: np.ndarray) -> float:
        target = np.asarray(target)
        if input.shape != target.shape:
            raise ValueError(f"MSELoss expects input and target of the same shape, got {input.shape} and {target.shape}")
        self._diff = input - target
        return _reduce(self._diff**2, self.reduction)

    def backward(self) -> np.ndarray:
        grad = 2.0 * self._diff
        return grad / self._diff.size if self.reduction == "mean" else grad

    __call__ = forward


class CrossEntropyLoss:
    """torch.nn.CrossEntropyLoss over logits and integer targets, reduction 'mean' or 'sum'.

    label_smoothing=eps mixes the one-hot target with the uniform distribution, as torch does:
    loss = (1 - eps) * nll + eps * mean_c(-log p_c).

    Inputs:  logits (N, C), target (N,) ints in [0, C)
    Returns: scalar loss
    """

    def __init__(self, reduction: str = "mean", label_smoothing: float = 0.0) -> None:
        self.reduction = _check_reduction(reduction)
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing}")
        self.label_smoothing = label_smoothing

    def forward(self, logits: np.ndarray, target: np.ndarray) -> float:
        target = np.asarray(target)
        _check_classification(logits, target)
        logp = log_softmax(logits)
        self._probs = np.exp(logp)
        self._target = target
        per_sample = -logp[np.arange(len(target)), target]
        eps = self.label_smoothing
        if eps:
            per_sample = (1.0 - eps) * per_sample - eps * logp.mean(axis=1)
        return _reduce(per_sample, self.reduction)

    def backward(self) -> np.ndarray:
        eps = self.label_smoothing
        grad = self._probs - eps / self._probs.shape[1]
        grad[np.arange(len(self._target)), self._target] -= 1.0 - eps
        if self.reduction == "mean":
            grad /= len(self._target)
        return grad

    __call__ = forward


class BCEWithLogitsLoss:
    """torch.nn.BCEWithLogitsLoss: -[y log s(x) + (1 - y) log(1 - s(x))], computed as softplus.

    Inputs:  logits (N,), target (N,) of 0/1
    Returns: scalar loss
    """

    def __init__(self, reduction: str = "mean") -> None:
        self.reduction = _check_reduction(reduction)

    def forward(self, logits: np.ndarray, target: np.ndarray) -> float:
        target = np.asarray(target)
        _check_binary(logits, target)
        self._logits, self._target = logits, target.astype(logits.dtype)
        return _reduce(-log_sigmoid(logits) + (1.0 - self._target) * logits, self.reduction)

    def backward(self) -> np.ndarray:
        grad = sigmoid(self._logits) - self._target
        return grad / grad.size if self.reduction == "mean" else grad

    __call__ = forward


class FocalLoss:
    """Focal loss (Lin et al. 2017): -alpha_t (1 - p_t)^gamma log p_t, down-weighting easy examples.

    Multi-class: logits (N, C), integer target (N,), p = softmax; alpha None or (C,) class weights.
    Binary:      logits (N,),  0/1 target (N,),    p = sigmoid; alpha None or a float a, giving
                 alpha_t = a for positives and 1 - a for negatives (torchvision's sigmoid_focal_loss).
    Returns: scalar loss. gamma=0, alpha=None is cross-entropy (multi-class) or BCE (binary).
    """

    def __init__(self, gamma: float = 2.0, alpha: float | Sequence[float] | None = None,
                 reduction: str = "mean") -> None:
        if gamma < 0:
            raise ValueError(f"gamma must be >= 0, got {gamma}")
        self.gamma, self.reduction = gamma, _check_reduction(reduction)
        self.alpha = None if alpha is None else np.asarray(alpha, dtype=np.float64)

    def _alpha_t(self, target: np.ndarray, binary: bool, n_classes: int) -> np.ndarray | float:
        if self.alpha is None:
            return 1.0
        if binary:
            if self.alpha.ndim != 0 or not 0.0 <= float(self.alpha) <= 1.0:
                raise ValueError(f"binary focal loss takes a scalar alpha in [0, 1], got {self.alpha}")
            return np.where(target == 1, float(self.alpha), 1.0 - float(self.alpha))
        if self.alpha.shape != (n_classes,):
            raise ValueError(f"multi-class focal loss takes alpha of shape ({n_classes},), got {self.alpha.shape}")
        return self.alpha[target]

    def forward(self, logits: np.ndarray, target: np.ndarray) -> float:
        target = np.asarray(target)
        binary = logits.ndim == 1
        if binary:
            _check_binary(logits, target)
            y = target.astype(logits.dtype)
            logpt = log_sigmoid(logits) - (1.0 - y) * logits  # log p if y == 1 else log(1 - p)
            self._dlogpt_dlogits = y - sigmoid(logits)
        else:
            _check_classification(logits, target)
            logp = log_softmax(logits)
            rows = np.arange(len(target))
            logpt = logp[rows, target]
            dlogpt = -np.exp(logp)
            dlogpt[rows, target] += 1.0
            self._dlogpt_dlogits = dlogpt
        # in the logits' dtype: float64 class weights must not promote a float32 loss and gradient
        alpha_t = np.asarray(self._alpha_t(target, binary, 1 if binary else logits.shape[1]), dtype=logits.dtype)
        pt = np.exp(logpt)
        one_minus_pt = -np.expm1(logpt)  # exact where p_t is close to 1
        g = self.gamma
        modulator = one_minus_pt**g
        # d/d logpt of -(1 - e^u)^g u = -[(1 - p)^g - g (1 - p)^(g-1) p u]; the second term -> 0 as p -> 1.
        positive = one_minus_pt > 0
        base = np.where(positive, one_minus_pt, 1.0)
        second = np.where(positive, g * base ** (g - 1.0) * pt * logpt, 0.0) if g else 0.0
        self._dloss_dlogpt = -alpha_t * (modulator - second)
        self._n = len(target)
        return _reduce(-alpha_t * modulator * logpt, self.reduction)

    def backward(self) -> np.ndarray:
        d = self._dloss_dlogpt
        grad = (d[:, None] if self._dlogpt_dlogits.ndim == 2 else d) * self._dlogpt_dlogits
        return grad / self._n if self.reduction == "mean" else grad

    __call__ = forward
