"""Grad-CAM (Selvaraju et al. 2017): a coarse class-discriminative map from a convolutional
layer. With A (N, K, h, w) the layer's activations and y the target logit,

    alpha_k = mean_{i,j} dy / dA_k[i, j]          (one weight per channel)
    L       = ReLU(sum_k alpha_k A_k)              (N, 1, h, w)

then upsampled to the input size to be drawn over the image. Same arithmetic as captum's
`LayerGradCam(model, layer).attribute(x, target, relu_attributions=True)`.

HiResCAM (Draelos & Carin 2020) skips the spatial average: L = ReLU(sum_k dy/dA_k * A_k).
When the layer feeds a flatten + linear head (no global average pooling), y is exactly
sum_{k,i,j} W_k[i,j] A_k[i,j] + b, so HiResCAM's cell (i, j) is that cell's share of the logit,
while Grad-CAM's averaged weights alpha_k = mean_ij W_k[i,j] can light up cells the head ignores.
With a global-average-pooling head the two maps are proportional.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .saliency import as_target, target_scores

__all__ = ["layer_activations_and_gradients", "grad_cam", "hires_cam", "upsample"]


def layer_activations_and_gradients(model: nn.Module, layer: nn.Module, x: Tensor,
                                    target: int | Tensor) -> tuple[Tensor, Tensor]:
    """The output A of `layer` for input x and d logit_target / d A, both shaped like A."""
    if not any(m is layer for m in model.modules()):
        raise ValueError(f"layer {layer.__class__.__name__} is not a submodule of the model")
    target = as_target(target, len(x))
    store: dict[str, Tensor] = {}

    def keep(module: nn.Module, inputs: tuple, output: Tensor) -> None:
        store["A"] = output

    hook = layer.register_forward_hook(keep)
    try:
        with torch.enable_grad():
            scores = target_scores(model(x.detach()), target)
            if "A" not in store:
                raise ValueError("the layer was not called in the forward pass")
            (grad,) = torch.autograd.grad(scores.sum(), store["A"])
    finally:
        hook.remove()
    return store["A"].detach(), grad


def grad_cam(model: nn.Module, layer: nn.Module, x: Tensor, target: int | Tensor,
             relu_attributions: bool = True) -> Tensor:
    """Grad-CAM of x (N, C, H, W) at a conv `layer` with (N, K, h, w) output -> (N, 1, h, w).
    `relu_attributions=False` keeps the negative evidence (captum's default)."""
    A, dA = layer_activations_and_gradients(model, layer, x, target)
    if A.ndim != 4:
        raise ValueError(f"Grad-CAM needs a layer with (N, K, h, w) output, got {tuple(A.shape)}")
    alpha = dA.mean(dim=(2, 3), keepdim=True)          # (N, K, 1, 1) channel importance
    cam = (alpha * A).sum(dim=1, keepdim=True)          # (N, 1, h, w)
    return F.relu(cam) if relu_attributions else cam


def hires_cam(model: nn.Module, layer: nn.Module, x: Tensor, target: int | Tensor,
              relu_attributions: bool = True) -> Tensor:
    """HiResCAM of x (N, C, H, W) at `layer` -> (N, 1, h, w): the channel sum of
    gradient * activation (captum's `LayerGradientXActivation` summed over channels)."""
    A, dA = layer_activations_and_gradients(model, layer, x, target)
    if A.ndim != 4:
        raise ValueError(f"HiResCAM needs a layer with (N, K, h, w) output, got {tuple(A.shape)}")
    cam = (dA * A).sum(dim=1, keepdim=True)
    return F.relu(cam) if relu_attributions else cam


def upsample(cam: Tensor, size: tuple[int, int], mode: str = "bilinear") -> Tensor:
    """(N, 1, h, w) -> (N, 1, *size), e.g. to the input's H x W (captum's
    `LayerAttribution.interpolate(cam, size, mode)`)."""
    if cam.ndim != 4:
        raise ValueError(f"cam must be (N, 1, h, w), got {tuple(cam.shape)}")
    return F.interpolate(cam, size=size, mode=mode)
