"""Vanilla gradient saliency (Simonyan, Vedaldi & Zisserman 2014): how much the target
class score changes per unit change of each input pixel, |d logit_target / d x|.

`input_gradients` is the one gradient primitive the other attribution methods reuse.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["as_target", "target_scores", "input_gradients", "saliency"]


def as_target(target: int | Tensor, n: int) -> Tensor:
    """An int (same class for every row) or an (N,) integer tensor -> (N,) int64 tensor."""
    if isinstance(target, int):
        return torch.full((n,), target, dtype=torch.long)
    if not isinstance(target, Tensor) or target.ndim != 1 or len(target) != n \
            or target.dtype.is_floating_point:
        shape = tuple(target.shape) if isinstance(target, Tensor) else type(target).__name__
        raise ValueError(f"target must be an int or an (N,) = ({n},) integer tensor, got {shape}")
    return target.long()


def target_scores(logits: Tensor, target: Tensor) -> Tensor:
    """logits (N, K), target (N,) -> the target class's logit per row, (N,)."""
    if logits.ndim != 2:
        raise ValueError(f"the model must return logits (N, num_classes), got {tuple(logits.shape)}")
    if target.min() < 0 or target.max() >= logits.shape[1]:
        raise ValueError(f"target classes must lie in [0, {logits.shape[1]}), got "
                         f"[{int(target.min())}, {int(target.max())}]")
    return logits.gather(1, target[:, None]).squeeze(1)


def input_gradients(model: nn.Module, x: Tensor, target: int | Tensor) -> Tensor:
    """d logit_target(x_i) / d x_i for every row i of x (N, ...): the gradient, shape of x.

    Rows do not interact in eval mode, so one backward pass of the summed scores gives every
    row's own gradient."""
    if x.ndim < 2 or len(x) == 0:
        raise ValueError(f"x must be a non-empty batch (N, ...), got {tuple(x.shape)}")
    target = as_target(target, len(x))
    x = x.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        scores = target_scores(model(x), target)
        (grad,) = torch.autograd.grad(scores.sum(), x)
    return grad


def saliency(model: nn.Module, x: Tensor, target: int | Tensor, abs: bool = True) -> Tensor:
    """Gradient saliency of x (N, C, H, W) for class `target`: (N, C, H, W), its absolute
    value by default (captum's `Saliency.attribute(x, target, abs=True)`)."""
    grad = input_gradients(model, x, target)
    return grad.abs() if abs else grad
