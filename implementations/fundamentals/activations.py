"""Activation functions as parameter-free layers (same protocol as layers.Layer).

ReLU, LeakyReLU, Sigmoid, Tanh, Swish and GELU, each the twin of its torch.nn module (Swish
with beta=1 is torch.nn.SiLU). Each caches what its derivative needs; all are elementwise,
x: (N, ...) -> (N, ...). Every formula is arranged so that no exp ever sees a large positive
argument: |x| up to 1e4 (and beyond) gives finite values and gradients with no overflow.
"""
from __future__ import annotations

import math

import numpy as np

from implementations.fundamentals.layers import Layer

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_GELU_KAPPA = 0.044715
# NumPy has no erf; the standard library's is correctly rounded to within an ulp.
_erf = np.frompyfunc(math.erf, 1, 1)


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Numerically stable logistic: never calls exp on a large positive number."""
    z = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + z), z / (1.0 + z))


def erf(x: np.ndarray) -> np.ndarray:
    """Elementwise error function in x's dtype."""
    x = np.asarray(x)
    return _erf(x).astype(x.dtype if np.issubdtype(x.dtype, np.floating) else np.float64)


class ReLU(Layer):
    def forward(self, x: np.ndarray, training: bool = True) -> np.ndarray:
        self._mask = x > 0
        return np.where(self._mask, x, 0).astype(x.dtype, copy=False)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        # The subgradient at 0 is 0, as in torch.
        return np.where(self._mask, dout, 0).astype(dout.dtype, copy=False)


class LeakyReLU(Layer):
    """torch.nn.LeakyReLU: x if x > 0 else negative_slope * x (slope at 0 is negative_slope, as torch)."""

    def __init__(self, negative_slope: float = 0.01) -> None:
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, x: np.ndarray, training: bool = True) -> np.ndarray:
        self._mask = x > 0
        return np.where(self._mask, x, x * self.negative_slope)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return np.where(self._mask, dout, dout * self.negative_slope)


class Sigmoid(Layer):
    def forward(self, x: np.ndarray, training: bool = True) -> np.ndarray:
        self._out = sigmoid(x)
        return self._out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return dout * self._out * (1.0 - self._out)


class Tanh(Layer):
    def forward(self, x: np.ndarray, training: bool = True) -> np.ndarray:
        self._out = np.tanh(x)
        return self._out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return dout * (1.0 - self._out**2)


class Swish(Layer):
    """Swish (Ramachandran et al. 2017): x * sigmoid(beta * x); beta=1 is torch.nn.SiLU.

    d/dx = s * (1 + beta * x * (1 - s)) with s = sigmoid(beta * x), torch's arrangement.
    """

    def __init__(self, beta: float = 1.0) -> None:
        super().__init__()
        self.beta = beta

    def forward(self, x: np.ndarray, training: bool = True) -> np.ndarray:
        self._x, self._s = x, sigmoid(self.beta * x)
        return x * self._s

    def backward(self, dout: np.ndarray) -> np.ndarray:
        s = self._s
        return dout * s * (1.0 + self.beta * self._x * (1.0 - s))


class GELU(Layer):
    """torch.nn.GELU: x * Phi(x), exactly (approximate='none') or by the tanh formula ('tanh')."""

    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, x: np.ndarray, training: bool = True) -> np.ndarray:
        self._x = x
        if self.approximate == "tanh":
            self._t = np.tanh(_SQRT_2_OVER_PI * (x + _GELU_KAPPA * x**3))
            return 0.5 * x * (1.0 + self._t)
        self._cdf = 0.5 * (1.0 + erf(x / math.sqrt(2.0)))
        return x * self._cdf

    def backward(self, dout: np.ndarray) -> np.ndarray:
        x = self._x
        if self.approximate == "tanh":
            t = self._t
            d_inner = _SQRT_2_OVER_PI * (1.0 + 3.0 * _GELU_KAPPA * x**2)
            return dout * (0.5 * (1.0 + t) + 0.5 * x * (1.0 - t**2) * d_inner)
        # exp(-x^2/2) underflows quietly to 0 for large |x|, which is the right limit.
        return dout * (self._cdf + x * _INV_SQRT_2PI * np.exp(-0.5 * x * x))


ACTIVATIONS: dict[str, type[Layer]] = {"relu": ReLU, "leaky_relu": LeakyReLU, "sigmoid": Sigmoid,
                                       "tanh": Tanh, "swish": Swish, "gelu": GELU}


def make_activation(name: str) -> Layer:
    try:
        return ACTIVATIONS[name]()
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; expected one of {', '.join(ACTIVATIONS)}") from None
