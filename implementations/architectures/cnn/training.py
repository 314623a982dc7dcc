"""One seeded training loop for the CNN experiments: in-memory image tensors, AdamW with a
one-cycle learning-rate schedule, per-epoch held-out accuracy and optional per-step
weight-gradient norms of chosen layers (for gradient-flow figures).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["History", "fit", "predict", "accuracy", "images_to_tensor", "recalibrate_bn"]


@dataclass
class History:
    """epoch_loss[e]: mean training loss of epoch e; step_loss[t]: loss of step t;
    val_accuracy[e]: held-out accuracy after epoch e (empty without validation data);
    grad_norms[t][j]: L2 norm of tracked layer j's weight gradient at step t."""

    epoch_loss: list[float] = field(default_factory=list)
    step_loss: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    grad_norms: list[list[float]] = field(default_factory=list)


def images_to_tensor(images: np.ndarray, mean: float | None = None, std: float | None = None,
                     size: int | None = None) -> Tensor:
    """uint8 images (N, H, W) -> float32 (N, 1, H', W'), optionally resized to size x size
    and standardised as (x / 255 - mean) / std."""
    images = np.asarray(images)
    if images.ndim != 3:
        raise ValueError(f"expected grayscale images (N, H, W), got shape {images.shape}")
    x = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)
    if size is not None:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    if mean is not None:
        if std is None or std <= 0:
            raise ValueError(f"std must be a positive number with mean, got {std}")
        x = (x - mean) / std
    return x


def _as_format(x: Tensor, channels_last: bool) -> Tensor:
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


@torch.no_grad()
def predict(model: nn.Module, X: Tensor, batch_size: int = 1000,
            channels_last: bool = False) -> Tensor:
    """Logits (N, num_classes) in eval mode, batch by batch; restores the model's mode."""
    was_training = model.training
    model.eval()
    out = torch.cat([model(_as_format(X[i:i + batch_size], channels_last))
                     for i in range(0, len(X), batch_size)])
    model.train(was_training)
    return out


def accuracy(model: nn.Module, X: Tensor, y: Tensor, batch_size: int = 1000,
             channels_last: bool = False) -> float:
    """Fraction of rows of X whose arg-max logit equals y."""
    return float((predict(model, X, batch_size, channels_last).argmax(1) == y).float().mean())


@torch.no_grad()
def recalibrate_bn(model: nn.Module, X: Tensor, batch_size: int = 128,
                   channels_last: bool = False) -> None:
    """"Precise BN": recompute every BatchNorm's running mean/var as the plain average over
    batches of X (N, C, H, W) with the current weights. After a few hundred fast-moving steps
    the exponential running averages still mix statistics of stale weights, and a deep net
    trained from scratch then collapses in eval mode; this removes that lag."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    was_training = model.training
    model.train()
    for i in range(0, len(X), batch_size):
        model(_as_format(X[i:i + batch_size], channels_last))
    for m, momentum in zip(bns, momenta):
        m.momentum = momentum
    model.train(was_training)


def fit(model: nn.Module, X: Tensor, y: Tensor, epochs: int, batch_size: int = 128,
        lr: float = 3e-3, weight_decay: float = 1e-4, seed: int = 0,
        X_val: Tensor | None = None, y_val: Tensor | None = None, channels_last: bool = False,
        track: Sequence[nn.Module] = (), max_steps: int | None = None,
        params: Sequence[nn.Parameter] | None = None, optimizer: str = "adamw",
        augment: Callable[[Tensor, torch.Generator], Tensor] | None = None,
        precise_bn: bool = False) -> History:
    """Train `model` on X (N, C, H, W), y (N,) with cross-entropy.

    AdamW (or `optimizer="sgd"`: SGD with momentum 0.9) over `params` (default: all
    trainable), one-cycle schedule peaking at `lr`,
    shuffled by a torch.Generator(seed). `track`: layers whose weight-gradient norm is
    recorded every step. `max_steps` stops early (the schedule is laid out for it).
    `augment(batch, generator)` may transform each training batch. `precise_bn`
    recalibrates BatchNorm statistics on X after every epoch (see `recalibrate_bn`).
    """
    if len(X) != len(y) or X.ndim != 4:
        raise ValueError(f"X must be (N, C, H, W) with N == len(y); got {tuple(X.shape)} and {len(y)}")
    if epochs < 1 or batch_size < 1 or lr <= 0:
        raise ValueError(f"need epochs >= 1, batch_size >= 1, lr > 0; got {epochs}, {batch_size}, {lr}")
    if optimizer not in ("adamw", "sgd"):
        raise ValueError(f"optimizer must be 'adamw' or 'sgd', got {optimizer!r}")
    if (X_val is None) != (y_val is None):
        raise ValueError("give both X_val and y_val, or neither")
    gen = torch.Generator().manual_seed(seed)
    params = [p for p in model.parameters() if p.requires_grad] if params is None else list(params)
    steps_per_epoch = (len(X) + batch_size - 1) // batch_size
    total = epochs * steps_per_epoch if max_steps is None else min(max_steps, epochs * steps_per_epoch)
    if optimizer == "sgd":
        opt = torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=weight_decay)
    else:
        opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=total)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    hist, step = History(), 0
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(len(X), generator=gen)
        losses = []
        for i in range(0, len(X), batch_size):
            idx = perm[i:i + batch_size]
            xb = X[idx] if augment is None else augment(X[idx], gen)
            loss = F.cross_entropy(model(_as_format(xb, channels_last)), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if track:
                hist.grad_norms.append([float(m.weight.grad.norm()) for m in track])
            opt.step()
            sched.step()
            losses.append(loss.item())
            step += 1
            if step >= total:
                break
        hist.step_loss += losses
        hist.epoch_loss.append(float(np.mean(losses)))
        if precise_bn:
            recalibrate_bn(model, X, batch_size, channels_last)
        if X_val is not None:
            hist.val_accuracy.append(accuracy(model, X_val, y_val, channels_last=channels_last))
        if step >= total:
            break
    model.eval()
    return hist
