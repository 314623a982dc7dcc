"""Layers with one protocol (CS231n's, as objects): forward caches, backward fills `grads`.

    out = layer.forward(x, training=True)   # caches what backward needs
    dx = layer.backward(dout)               # fills layer.grads, parallel to layer.params

Parameters use torch's names and layouts (`weight` is (out_features, in_features)), so a
torch module's state can be copied in and compared.
"""
from __future__ import annotations

import numpy as np

from implementations.fundamentals.init import initialize


class Layer:
    """Base: no parameters, identity. Subclasses override forward/backward."""

    def __init__(self) -> None:
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}

    def forward(self, x: np.ndarray, training: bool = True) -> np.ndarray:
        return x

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return dout

    def __call__(self, x: np.ndarray, training: bool = True) -> np.ndarray:
        return self.forward(x, training)

    def __repr__(self) -> str:
        shapes = ", ".join(f"{k}={v.shape}" for k, v in self.params.items())
        return f"{type(self).__name__}({shapes})"


class Dense(Layer):
    """Fully connected layer, torch.nn.Linear's twin: y = x @ weight.T + bias.

    Inputs:  x (N, in_features)
    Returns: y (N, out_features)
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 init: str = "torch_default", nonlinearity: str = "relu",
                 rng: np.random.Generator | None = None, dtype=np.float64) -> None:
        super().__init__()
        if in_features < 1 or out_features < 1:
            raise ValueError(f"Dense needs positive sizes, got in={in_features}, out={out_features}")
        rng = rng if rng is not None else np.random.default_rng()
        self.in_features, self.out_features = in_features, out_features
        self.params["weight"] = initialize(init, (out_features, in_features), rng, nonlinearity, dtype)
        if bias:
            # Zero bias except for torch's default scheme, which draws it like nn.Linear.
            bound = 1.0 / np.sqrt(in_features) if init == "torch_default" else 0.0
            self.params["bias"] = rng.uniform(-bound, bound, size=out_features).astype(dtype)
        self._x: np.ndarray | None = None

    def forward(self, x: np.ndarray, training: bool = True) -> np.ndarray:
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise ValueError(f"Dense expected input of shape (N, {self.in_features}), got {x.shape}")
        self._x = x
        out = x @ self.params["weight"].T
        if "bias" in self.params:
            out += self.params["bias"]
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        if self._x is None:
            raise RuntimeError("Dense.backward called before forward")
        self.grads["weight"] = dout.T @ self._x
        if "bias" in self.params:
            self.grads["bias"] = dout.sum(axis=0)
        return dout @ self.params["weight"]
