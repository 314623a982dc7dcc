"""Two custom training loops for Keras 3 on TensorFlow, each the twin of `model.fit`.

- `GradNormModel`: a keras.Model whose `train_step` is written out with `tf.GradientTape`
  (forward, compiled loss, gradients, `optimizer.apply`, metrics), and which also reports the
  global L2 norm of each step's gradients as the `grad_norm` metric (epoch mean in the logs).
  Wrap any functional graph with it: `GradNormModel(inputs=..., outputs=...)`.
- `gradient_tape_fit`: the loop without `fit` at all: batches in order, a tape per step.

Both reach the same weights as `fit(..., shuffle=False)` from the same initial weights and data.
"""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

__all__ = ["GradNormModel", "gradient_tape_fit"]


class GradNormModel(keras.Model):
    """keras.Model with a hand-written TensorFlow train_step that also tracks gradient norms."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.grad_norm_tracker = keras.metrics.Mean(name="grad_norm")

    def train_step(self, data):
        x, y = data[0], data[1]
        with tf.GradientTape() as tape:
            y_pred = self(x, training=True)
            loss = self.compute_loss(x=x, y=y, y_pred=y_pred)
        grads = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply(grads, self.trainable_variables)
        self.grad_norm_tracker.update_state(tf.linalg.global_norm(grads))
        logs = {}
        for metric in self.metrics:
            if metric is self.grad_norm_tracker:
                continue
            if metric.name == "loss":
                metric.update_state(loss)
            else:
                metric.update_state(y, y_pred)
            result = metric.result()
            logs.update(result if isinstance(result, dict) else {metric.name: result})
        logs["grad_norm"] = self.grad_norm_tracker.result()
        return logs


def gradient_tape_fit(model: keras.Model, x: np.ndarray, y: np.ndarray, loss_fn, optimizer, batch_size: int,
                      steps: int) -> dict[str, list[float]]:
    """`steps` optimizer steps over x, y in order (wrapping around), batch_size rows each.

    Returns {"loss": per-step loss, "grad_norm": per-step global gradient L2 norm}.
    """
    if batch_size <= 0 or steps <= 0:
        raise ValueError(f"batch_size and steps must be positive, got {batch_size} and {steps}")
    n_batches = -(-len(x) // batch_size)
    record: dict[str, list[float]] = {"loss": [], "grad_norm": []}
    for step in range(steps):
        i = (step % n_batches) * batch_size
        xb, yb = x[i:i + batch_size], y[i:i + batch_size]
        with tf.GradientTape() as tape:
            loss = loss_fn(yb, model(xb, training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply(grads, model.trainable_variables)
        record["loss"].append(float(loss))
        record["grad_norm"].append(float(tf.linalg.global_norm(grads)))
    return record
