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
from implementations.fundamentals.layers import BatchNorm1d, Dense, Dropout, Layer


class MLP:
    """Dense -> [BatchNorm1d] -> activation -> [Dropout] -> ... -> Dense (the last returns logits).

    `batch_norm=True` puts a BatchNorm1d after every hidden Dense (before the activation, as
    Ioffe & Szegedy); `dropout=p > 0` puts a Dropout(p) after every hidden activation. Both
    switch to inference behaviour with `forward(x, training=False)` (used by `predict`).
    """

    def __init__(self, sizes: Sequence[int], activation: str = "relu", init: str = "kaiming_normal",
                 bias: bool = True, seed: int = 0, dtype=np.float64, dropout: float = 0.0,
                 batch_norm: bool = False) -> None:
        if len(sizes) < 2:
            raise ValueError(f"MLP needs at least input and output sizes, got {list(sizes)}")
        rng = np.random.default_rng(seed)
        self.sizes = list(sizes)
        self.layers: list[Layer] = []
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            self.layers.append(Dense(n_in, n_out, bias=bias, init=init, nonlinearity=activation,
                                     rng=rng, dtype=dtype))
            if i < len(sizes) - 2:
                if batch_norm:
                    self.layers.append(BatchNorm1d(n_out, dtype=dtype))
                self.layers.append(make_activation(activation))
                if dropout:
                    # Its own stream, drawn after every weight, so the weights match a dropout-free MLP's.
                    self.layers.append(Dropout(dropout, rng=np.random.default_rng([seed, i])))

    @property
    def dense_layers(self) -> list[Dense]:
        return [layer for layer in self.layers if isinstance(layer, Dense)]

    def forward(self, x: np.ndarray, training: bool = True) -> np.ndarray:
        for layer in self.layers:
            x = layer.forward(x, training)
        return x

    __call__ = forward

    def backward(self, dout: np.ndarray, input_grad: bool = True) -> np.ndarray | None:
        """Backpropagate d loss / d logits; returns d loss / d x (None if `input_grad=False`)."""
        for layer in reversed(self.layers[1:]):
            dout = layer.backward(dout)
        first = self.layers[0]
        return first.backward(dout, input_grad=input_grad) if isinstance(first, Dense) else first.backward(dout)

    def parameters(self) -> list[np.ndarray]:
        return [p for layer in self.layers for p in layer.params.values()]

    def gradients(self) -> list[np.ndarray]:
        """Parallel to parameters(); valid after backward()."""
        return [layer.grads[name] for layer in self.layers for name in layer.params]

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.forward(x, training=False).argmax(axis=1)

    def __repr__(self) -> str:
        return f"MLP({' -> '.join(map(str, self.sizes))}, layers={self.layers})"
