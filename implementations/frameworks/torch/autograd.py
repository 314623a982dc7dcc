"""Custom `torch.autograd.Function`s, each earning its place:

- `SiLU`, `GELU`: memory-saving activations. Autograd of the plain formula `x * sigmoid(x)`
  keeps `x` and `sigmoid(x)` alive until backward; these save only `x` and recompute the rest
  in backward (`saved_tensor_bytes` measures the difference). Double backward is supported:
  backward is written in differentiable torch ops.
- `QuantizeSTE`: rounds activations in [0, 1] to `levels` values in forward and passes the
  gradient straight through (clipped to [0, 1]) in backward (Bengio et al. 2013; Hubara et
  al. 2016). The true derivative of rounding is zero almost everywhere, so without the
  estimator nothing below a quantised layer learns (see `quantized_mlp.py`).
- `LogSumExp`: numerically stable `log(sum(exp(x)))` along a dim, shifting by the max, with
  the softmax as its backward; double backward supported (through the softmax).
- `Sparsemax` (Martins & Astudillo 2016): Euclidean projection onto the simplex, with the
  backward `mask * (g - mean of g over the support)`. Its backward runs without a graph, so
  double backward raises a `RuntimeError` that says so.

All use the `setup_context` style (forward without ctx), which also makes them work under
`torch.func` transforms.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

__all__ = ["SiLU", "GELU", "QuantizeSTE", "LogSumExp", "Sparsemax", "silu", "gelu",
           "quantize_ste", "logsumexp", "sparsemax", "saved_tensor_bytes"]


class SiLU(torch.autograd.Function):
    """silu(x) = x * sigmoid(x), saving only x (recomputes sigmoid in backward)."""

    @staticmethod
    def forward(x: Tensor) -> Tensor:
        return x * torch.sigmoid(x)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple, output: Tensor) -> None:
        ctx.save_for_backward(inputs[0])

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> Tensor:
        (x,) = ctx.saved_tensors
        s = torch.sigmoid(x)
        return grad_output * s * (1 + x * (1 - s))


class GELU(torch.autograd.Function):
    """Exact gelu(x) = x * Phi(x) (Phi: standard normal CDF), saving only x."""

    @staticmethod
    def forward(x: Tensor) -> Tensor:
        return 0.5 * x * (1 + torch.erf(x / math.sqrt(2.0)))

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple, output: Tensor) -> None:
        ctx.save_for_backward(inputs[0])

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> Tensor:
        (x,) = ctx.saved_tensors
        cdf = 0.5 * (1 + torch.erf(x / math.sqrt(2.0)))
        pdf = torch.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)
        return grad_output * (cdf + x * pdf)


class QuantizeSTE(torch.autograd.Function):
    """x (any shape) -> round(clamp(x, 0, 1) * (levels - 1)) / (levels - 1).

    Backward: the straight-through estimator, grad * 1[0 <= x <= 1] (the derivative of the
    clamp, treating rounding as the identity)."""

    @staticmethod
    def forward(x: Tensor, levels: int) -> Tensor:
        n = levels - 1
        return torch.round(x.clamp(0, 1) * n) / n

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple, output: Tensor) -> None:
        x, levels = inputs
        if levels < 2:
            raise ValueError(f"levels must be >= 2, got {levels}")
        # a bool mask (1 byte per element) is all backward needs
        ctx.save_for_backward((x >= 0) & (x <= 1))

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor, None]:
        (inside,) = ctx.saved_tensors
        return grad_output * inside, None


class LogSumExp(torch.autograd.Function):
    """x (..., K, ...) -> log(sum(exp(x), dim)) with the max subtracted first, so entries of
    1e4 do not overflow. Backward: grad * softmax(x), recomputed from x (stable, and more
    precise than exp(x - out) when out is large: float32's spacing at 1e4 is 1e-3)."""

    @staticmethod
    def forward(x: Tensor, dim: int, keepdim: bool) -> Tensor:
        m = x.amax(dim=dim, keepdim=True)
        m = torch.where(torch.isfinite(m), m, torch.zeros_like(m))  # all -inf rows stay -inf
        out = m + torch.log(torch.exp(x - m).sum(dim=dim, keepdim=True))
        return out if keepdim else out.squeeze(dim)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple, output: Tensor) -> None:
        x, dim, keepdim = inputs
        ctx.dim, ctx.keepdim = dim, keepdim
        ctx.save_for_backward(x)

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor, None, None]:
        (x,) = ctx.saved_tensors
        if not ctx.keepdim:
            grad_output = grad_output.unsqueeze(ctx.dim)
        return grad_output * torch.softmax(x, ctx.dim), None, None


class Sparsemax(torch.autograd.Function):
    """z (..., K) along `dim` -> argmin_{p in simplex} ||p - z||^2: a probability vector with
    exact zeros. Backward: J^T g = s * (g - sum(g * s) / |S|), s the support mask."""

    @staticmethod
    def forward(z: Tensor, dim: int) -> Tensor:
        z = z.transpose(dim, -1)
        zs, _ = torch.sort(z, dim=-1, descending=True)
        k = torch.arange(1, z.shape[-1] + 1, dtype=z.dtype, device=z.device)
        cums = zs.cumsum(-1)
        in_support = 1 + k * zs > cums
        k_z = in_support.sum(-1, keepdim=True)  # support size, >= 1
        tau = (cums.gather(-1, k_z - 1) - 1) / k_z.to(z.dtype)
        return torch.clamp(z - tau, min=0).transpose(dim, -1)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple, output: Tensor) -> None:
        ctx.dim = inputs[1]
        ctx.save_for_backward(output)

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor, None]:
        if torch.is_grad_enabled():
            raise RuntimeError(
                "Sparsemax does not support double backward (create_graph=True): its backward "
                "is computed in place without a graph. Use a smooth alternative such as "
                "softmax, or differentiate only once.")
        (p,) = ctx.saved_tensors
        support = p > 0
        g = grad_output * support
        mean = g.sum(ctx.dim, keepdim=True) / support.sum(ctx.dim, keepdim=True)
        return g.sub_(mean).mul_(support), None


def silu(x: Tensor) -> Tensor:
    return SiLU.apply(x)


def gelu(x: Tensor) -> Tensor:
    return GELU.apply(x)


def quantize_ste(x: Tensor, levels: int = 2) -> Tensor:
    return QuantizeSTE.apply(x, levels)


def logsumexp(x: Tensor, dim: int = -1, keepdim: bool = False) -> Tensor:
    return LogSumExp.apply(x, dim, keepdim)


def sparsemax(z: Tensor, dim: int = -1) -> Tensor:
    return Sparsemax.apply(z, dim)


def saved_tensor_bytes(fn: Callable[..., Tensor], *inputs: Tensor) -> int:
    """Bytes of distinct tensors autograd keeps for backward while building `fn(*inputs)`,
    counted with `torch.autograd.graph.saved_tensors_hooks` (views of one storage once)."""
    seen: dict[tuple[int, int], int] = {}

    def pack(t: Tensor) -> Tensor:
        storage = t.untyped_storage()
        seen[(storage.data_ptr(), storage.nbytes())] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn(*inputs)
    del out
    return sum(seen.values())
