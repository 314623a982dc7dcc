"""Minibatch training loops for the NumPy models, recording what the assessments plot.

History holds per-epoch train loss (the minibatch average, in training mode), validation
accuracy and loss, train accuracy measured in eval mode, the learning rate per step, and
per-step gradient norms of every Dense layer's weight (the "gradient flow" through the network).
Options: a weight penalty (regularization.L1/L2) on the Dense weights, a scheduler stepped
every batch or every epoch, and gradient-norm clipping. A run whose loss stops being finite
stops early and sets `diverged`.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from implementations.fundamentals.clipping import clip_grad_norm_
from implementations.fundamentals.losses import CrossEntropyLoss
from implementations.fundamentals.mlp import MLP
from implementations.fundamentals.optimizers import Optimizer
from implementations.fundamentals.schedules import LRScheduler

PenaltyFn = Callable[[Sequence[np.ndarray]], tuple[float, list[np.ndarray]]]


@dataclass
class History:
    train_loss: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    grad_norms: list[list[float]] = field(default_factory=list)  # (steps, n_dense_layers)
    val_loss: list[float] = field(default_factory=list)
    train_accuracy: list[float] = field(default_factory=list)  # eval mode, end of each epoch
    lr: list[float] = field(default_factory=list)  # the lr used at each step
    total_grad_norm: list[float] = field(default_factory=list)  # before clipping, per step
    diverged: bool = False


def accuracy(model: MLP, x: np.ndarray, y: np.ndarray) -> float:
    return float((model.predict(x) == y).mean())


def evaluate(model: MLP, x: np.ndarray, y: np.ndarray, loss_fn: CrossEntropyLoss | None = None
             ) -> tuple[float, float]:
    """(mean loss, accuracy) in eval mode (dropout off, batch norm on running statistics)."""
    logits = model.forward(x, training=False)
    loss = (loss_fn or CrossEntropyLoss()).forward(logits, y)
    return float(loss), float((logits.argmax(axis=1) == y).mean())


def layer_grad_norms(model: MLP) -> list[float]:
    """L2 norm of each Dense layer's weight gradient, first layer first."""
    return [float(np.linalg.norm(layer.grads["weight"])) for layer in model.dense_layers]


def add_penalty(model: MLP, penalty: PenaltyFn) -> float:
    """Add a weight penalty's gradient to every Dense weight's gradient; returns its value."""
    dense = model.dense_layers
    value, grads = penalty([d.params["weight"] for d in dense])
    for d, g in zip(dense, grads):
        d.grads["weight"] = d.grads["weight"] + g
    return value


def train_classifier(model: MLP, optimizer: Optimizer, x: np.ndarray, y: np.ndarray, *,
                     epochs: int, batch_size: int, seed: int = 0,
                     x_val: np.ndarray | None = None, y_val: np.ndarray | None = None,
                     loss_fn: CrossEntropyLoss | None = None, penalty: PenaltyFn | None = None,
                     scheduler: LRScheduler | None = None, scheduler_interval: str = "step",
                     max_grad_norm: float | None = None,
                     track_train_accuracy: bool = False, drop_last: bool = False) -> History:
    """Shuffled minibatch training with cross-entropy (or `loss_fn`); returns the History.

    x: (N, D), y: (N,) ints. `scheduler.step()` runs after every optimizer step
    (scheduler_interval="step") or after every epoch ("epoch"). drop_last skips the final
    short batch, as torch's DataLoader does: batch norm on a handful of samples is mostly noise.
    """
    if len(x) != len(y):
        raise ValueError(f"x and y differ in length: {len(x)} vs {len(y)}")
    if scheduler_interval not in ("step", "epoch"):
        raise ValueError(f"scheduler_interval must be 'step' or 'epoch', got {scheduler_interval!r}")
    loss_fn = loss_fn or CrossEntropyLoss()
    rng = np.random.default_rng(seed)
    history = History()
    stop = len(x) - len(x) % batch_size if drop_last else len(x)
    if stop == 0:
        raise ValueError(f"drop_last with batch_size {batch_size} leaves no batch of {len(x)} samples")
    for _ in range(epochs):
        order = rng.permutation(len(x))
        losses = []
        for start in range(0, stop, batch_size):
            idx = order[start:start + batch_size]
            # A diverging run overflows on its way to NaN: detected below, not warned about.
            with np.errstate(over="ignore", invalid="ignore"):
                logits = model.forward(x[idx], training=True)
                losses.append(loss_fn.forward(logits, y[idx]))
                if not np.isfinite(losses[-1]):
                    history.diverged = True
                    break
                model.backward(loss_fn.backward(), input_grad=False)
                if penalty is not None:
                    add_penalty(model, penalty)
                history.grad_norms.append(layer_grad_norms(model))
                grads = model.gradients()
                if max_grad_norm is not None:
                    history.total_grad_norm.append(clip_grad_norm_(grads, max_grad_norm))
                history.lr.append(optimizer.lr)
                optimizer.step(grads)
            if scheduler is not None and scheduler_interval == "step":
                scheduler.step()
        history.train_loss.append(float(np.mean(losses)))
        if history.diverged:
            break
        if scheduler is not None and scheduler_interval == "epoch":
            scheduler.step()
        if track_train_accuracy:
            history.train_accuracy.append(evaluate(model, x, y, loss_fn)[1])
        if x_val is not None and y_val is not None:
            val_loss, val_acc = evaluate(model, x_val, y_val, loss_fn)
            history.val_loss.append(val_loss)
            history.val_accuracy.append(val_acc)
    return history


def train_regressor(model: MLP, optimizer: Optimizer, loss_fn, x: np.ndarray, y: np.ndarray, *,
                    epochs: int, batch_size: int, seed: int = 0) -> list[float]:
    """Shuffled minibatch training of `model` (x: (N, D) -> (N, K)) on any loss with the
    forward(input, target)/backward() protocol; returns the per-epoch mean training loss."""
    if len(x) != len(y):
        raise ValueError(f"x and y differ in length: {len(x)} vs {len(y)}")
    rng = np.random.default_rng(seed)
    curve = []
    for _ in range(epochs):
        order = rng.permutation(len(x))
        losses = []
        for start in range(0, len(x), batch_size):
            idx = order[start:start + batch_size]
            losses.append(loss_fn.forward(model.forward(x[idx], training=True), y[idx]))
            model.backward(loss_fn.backward(), input_grad=False)
            optimizer.step(model.gradients())
        curve.append(float(np.mean(losses)))
    return curve
