"""A minibatch training loop for the NumPy models, recording what the assessments plot.

History holds per-epoch train loss and validation accuracy, and per-step gradient norms of
every Dense layer's weight (the "gradient flow" through the network).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from implementations.fundamentals.losses import CrossEntropyLoss
from implementations.fundamentals.mlp import MLP
from implementations.fundamentals.optimizers import Optimizer


@dataclass
class History:
    train_loss: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    grad_norms: list[list[float]] = field(default_factory=list)  # (steps, n_dense_layers)


def accuracy(model: MLP, x: np.ndarray, y: np.ndarray) -> float:
    return float((model.predict(x) == y).mean())


def layer_grad_norms(model: MLP) -> list[float]:
    """L2 norm of each Dense layer's weight gradient, first layer first."""
    return [float(np.linalg.norm(layer.grads["weight"])) for layer in model.dense_layers]


def train_classifier(model: MLP, optimizer: Optimizer, x: np.ndarray, y: np.ndarray, *,
                     epochs: int, batch_size: int, seed: int = 0,
                     x_val: np.ndarray | None = None, y_val: np.ndarray | None = None,
                     loss_fn: CrossEntropyLoss | None = None) -> History:
    """Shuffled minibatch training with cross-entropy; returns the History."""
    if len(x) != len(y):
        raise ValueError(f"x and y differ in length: {len(x)} vs {len(y)}")
    loss_fn = loss_fn or CrossEntropyLoss()
    rng = np.random.default_rng(seed)
    history = History()
    for _ in range(epochs):
        order = rng.permutation(len(x))
        losses = []
        for start in range(0, len(x), batch_size):
            idx = order[start:start + batch_size]
            logits = model.forward(x[idx], training=True)
            losses.append(loss_fn.forward(logits, y[idx]))
            model.backward(loss_fn.backward())
            history.grad_norms.append(layer_grad_norms(model))
            optimizer.step(model.gradients())
        history.train_loss.append(float(np.mean(losses)))
        if x_val is not None and y_val is not None:
            history.val_accuracy.append(accuracy(model, x_val, y_val))
    return history
