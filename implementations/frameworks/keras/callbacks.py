"""Keras callbacks of our own and the learning-rate schedule the training run uses.

- `NaNStopper`: stops `fit` at the first batch whose loss (or any watched log) is not finite and
  records where (epoch, batch) and what it saw; unlike keras' TerminateOnNaN it says where.
- `SampleImages`: writes a grid of input images with the model's predicted classes to TensorBoard
  (`tf.summary.image`) once, at the end of a chosen epoch.
- `step_lr`: PyTorch StepLR's rule as a `keras.callbacks.LearningRateScheduler` function:
  lr(epoch) = lr * gamma ** (epoch // step_size).
- `expected_early_stop`: Keras' EarlyStopping rule replayed on a recorded curve (what epoch it
  must stop at and which epoch's weights it restores), to check the callback against.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import keras
import numpy as np

__all__ = ["NaNStopper", "SampleImages", "step_lr", "expected_early_stop"]


class NaNStopper(keras.callbacks.Callback):
    """Stop training at the first batch whose watched logs are NaN or infinite.

    After training: `stopped_at` = (epoch, batch) or None, `bad_logs` = that batch's logs,
    `batches_seen` = how many training batches ended before (and including) the stop.
    """

    def __init__(self, monitor: Sequence[str] = ("loss",)) -> None:
        super().__init__()
        if isinstance(monitor, str):
            monitor = (monitor,)
        self.monitor = tuple(monitor)
        self.stopped_at: tuple[int, int] | None = None
        self.bad_logs: dict[str, float] = {}
        self.batches_seen = 0
        self._epoch = 0

    def on_train_begin(self, logs=None) -> None:
        self.stopped_at, self.bad_logs, self.batches_seen = None, {}, 0

    def on_epoch_begin(self, epoch: int, logs=None) -> None:
        self._epoch = epoch

    def on_train_batch_end(self, batch: int, logs=None) -> None:
        self.batches_seen += 1
        logs = logs or {}
        bad = {k: float(logs[k]) for k in self.monitor if k in logs and not math.isfinite(float(logs[k]))}
        if bad and self.stopped_at is None:
            self.stopped_at, self.bad_logs = (self._epoch, batch), bad
            self.model.stop_training = True


class SampleImages(keras.callbacks.Callback):
    """Log `images` (N, H, W) in [0, 1] as a TensorBoard image summary at the end of `epoch`.

    Written under `<log_dir>/validation` with tag `name`, one image per sample (max_outputs = N),
    so TensorBoard shows them beside the validation curves.
    """

    def __init__(self, log_dir: str, images: np.ndarray, name: str = "samples", epoch: int = 0) -> None:
        super().__init__()
        images = np.asarray(images)
        if images.ndim != 3 or images.min() < 0 or images.max() > 1:
            raise ValueError(f"images must be (N, H, W) in [0, 1], got shape {images.shape}, "
                             f"range [{images.min()}, {images.max()}]")
        self.log_dir, self.images, self.name, self.epoch = str(log_dir), images, name, epoch

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        if epoch != self.epoch:
            return
        import tensorflow as tf

        writer = tf.summary.create_file_writer(f"{self.log_dir}/validation")
        with writer.as_default():
            tf.summary.image(self.name, self.images[..., None].astype("float32"), step=epoch,
                             max_outputs=len(self.images))
        writer.close()


def step_lr(lr: float, step_size: int, gamma: float = 0.1) -> Callable[[int, float], float]:
    """StepLR for keras.callbacks.LearningRateScheduler: lr * gamma ** (epoch // step_size)."""
    if lr <= 0 or step_size <= 0 or not 0 < gamma <= 1:
        raise ValueError(f"need lr > 0, step_size > 0, 0 < gamma <= 1; got {lr}, {step_size}, {gamma}")

    def schedule(epoch: int, current_lr: float | None = None) -> float:
        return float(lr * gamma ** (epoch // step_size))

    return schedule


def expected_early_stop(values: Sequence[float], patience: int, min_delta: float = 0.0, mode: str = "min",
                        start_from_epoch: int = 0) -> tuple[int | None, int]:
    """Replay EarlyStopping on a recorded monitor curve.

    An epoch improves when it beats the best so far by more than `min_delta`; training stops
    at the first epoch e > 0 with `patience` epochs since the last improvement.
    Returns (stop_epoch or None when it would run to the end, best_epoch whose weights are restored).
    """
    if mode not in ("min", "max"):
        raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
    sign = 1.0 if mode == "min" else -1.0
    best, best_epoch, wait = math.inf, None, 0
    for epoch, value in enumerate(values):
        if epoch < start_from_epoch:
            continue
        if best_epoch is None:
            best_epoch = epoch
        wait += 1
        if sign * value + abs(min_delta) < best:  # i.e. improved by more than min_delta
            best, best_epoch, wait = sign * value, epoch, 0
            continue
        if wait >= patience and epoch > 0:
            return epoch, best_epoch
    return None, best_epoch if best_epoch is not None else 0
