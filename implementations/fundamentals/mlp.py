"""A multilayer perceptron from scratch in NumPy (micrograd's Module -> Layer -> MLP, vectorised).

    model = MLP([64, 128, 64, 10], activation="relu", init="kaiming_normal", seed=0)
    logits = model.forward(x)          # x: (N, 64) -> (N, 10)
    dx = model.backward(dlogits)       # backpropagation: chain rule, last layer first
    SGD(model.parameters(), lr=0.1).step(model.gradients())
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from implementations.fundamentals.activations import make_activation
from implementations.fundamentals.layers import Dense, Layer


class MLP:
    """Dense -> activation -> ... -> Dense (no activation after the last: it returns logits)."""

    def __init__(self, sizes: Sequence[int], activation: str = "relu", init: str = "kaiming_normal",
                 bias: bool = True, seed: int = 0, dtype=np.float64) -> None:
        if len(sizes) < 2:
            raise ValueError(f"MLP needs at least input and output sizes, got {list(sizes)}")
        rng = np.random.default_rng(seed)
        self.sizes = list(sizes)
        self.layers: list[Layer] = []
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            self.layers.append(Dense(n_in, n_out, bias=bias, init=init, nonlinearity=activation,
                                     rng=rng, dtype=dtype))
            if i < len(sizes) - 2:
                self.layers.append(make_activation(activation))

    @property
    def dense_layers(self) -> list[Dense]:
        return [layer for layer in self.layers if isinstance(layer, Dense)]

    def forward(self, x: np.ndarray, training: bool = True) -> np.ndarray:
        for layer in self.layers:
            x = layer.forward(x, training)
        return x

    __call__ = forward

    def backward(self, dout: np.ndarray) -> np.ndarray:
        for layer in reversed(self.layers):
            dout = layer.backward(dout)
        return dout

    def parameters(self) -> list[np.ndarray]:
        return [p for layer in self.layers for p in layer.params.values()]

    def gradients(self) -> list[np.ndarray]:
        """Parallel to parameters(); valid after backward()."""
        return [layer.grads[name] for layer in self.layers for name in layer.params]

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.forward(x, training=False).argmax(axis=1)

    def __repr__(self) -> str:
        return f"MLP({' -> '.join(map(str, self.sizes))}, layers={self.layers})"
