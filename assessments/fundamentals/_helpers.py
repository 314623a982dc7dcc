"""Shared machinery for the fundamentals assessments (NumPy only; torch is imported lazily).

- parity_error: the one number every torch comparison reports;
- gradcheck_layer: a layer's input gradient against central differences;
- fashion_features / digits_data: the real data sets, as flat float64 features;
- gradient_profile: per-layer weight-gradient norms of an MLP at one batch;
- to_torch: an ndarray as a float64 torch tensor (for the parity files);
"""
from __future__ import annotations


import numpy as np

from implementations.data import digits_split, fashion_mnist_split
from implementations.fundamentals.gradcheck import eval_numerical_gradient_array, rel_error
from implementations.fundamentals.layers import Layer
from implementations.fundamentals.losses import CrossEntropyLoss
from implementations.fundamentals.mlp import MLP


def parity_error(ours: np.ndarray | float, ref: np.ndarray | float) -> float:
    """max |ours - ref| / max(1, |ref|): absolute for small values, relative for large ones.

    One scale-aware number for values that range from 1e-300 to 1e4 in the same array.
    """
    ours, ref = np.asarray(ours, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    if ours.shape != ref.shape:
        raise ValueError(f"shapes differ: {ours.shape} vs {ref.shape}")
    if not (np.all(np.isfinite(ours)) and np.all(np.isfinite(ref))):
        return float("inf")
    return float(np.max(np.abs(ours - ref) / np.maximum(1.0, np.abs(ref)), initial=0.0))


def gradcheck_layer(layer: Layer, x: np.ndarray, rng: np.random.Generator, training: bool = True) -> float:
    """rel_error of layer.backward against central differences for a random upstream gradient."""
    out = layer.forward(x, training)
    dout = rng.normal(size=out.shape)
    dx = layer.backward(dout)
    numeric = eval_numerical_gradient_array(lambda z: layer.forward(z, training), x.copy(), dout)
    return rel_error(dx, numeric)


def digits_data(test_size: float = 0.25, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """scikit-learn digits, seeded stratified split: X_train, y_train, X_test, y_test (64 features in [0, 1])."""
    s = digits_split(test_size=test_size, seed=seed)
    return s.X_train, s.y_train, s.X_test, s.y_test


def fashion_features(n_train: int, n_test: int, pool: int = 2, seed: int = 0
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Fashion-MNIST subsample as flat features in [0, 1], average-pooled by `pool` (2: 14x14 = 196)."""
    if 28 % pool:
        raise ValueError(f"pool must divide 28, got {pool}")
    s = fashion_mnist_split(n_train, n_test, seed)

    def prep(x: np.ndarray) -> np.ndarray:
        x = x.astype(np.float64) / 255.0
        side = 28 // pool
        return x.reshape(len(x), side, pool, side, pool).mean(axis=(2, 4)).reshape(len(x), -1)

    return prep(s.X_train), s.y_train, prep(s.X_test), s.y_test


def scaled_init_mlp(sizes: list[int], activation: str, init: str, scale: float = 1.0, seed: int = 0) -> MLP:
    """An MLP whose Dense weights are drawn by `init` and then multiplied by `scale`
    (scale=0.01 with init='normal' is CS231n's naive `0.01 * randn`)."""
    model = MLP(sizes, activation=activation, init=init, seed=seed)
    for dense in model.dense_layers:
        dense.params["weight"] *= scale
    return model


def gradient_profile(model: MLP, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Weight-gradient L2 norm of every Dense layer (input side first) after one backward pass."""
    loss = CrossEntropyLoss()
    with np.errstate(over="ignore", invalid="ignore"):  # the exploding settings overflow on purpose
        loss.forward(model.forward(x), y)
        model.backward(loss.backward())
    return np.array([np.linalg.norm(d.grads["weight"]) for d in model.dense_layers])


def to_torch(a: np.ndarray, requires_grad: bool = False):
    """A float64 (or integer) torch tensor holding a copy of `a`."""
    import torch

    t = torch.tensor(np.asarray(a))
    if t.is_floating_point():
        t = t.to(torch.float64)
    return t.requires_grad_(requires_grad)
