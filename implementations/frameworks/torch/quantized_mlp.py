"""Why the straight-through estimator exists: an MLP whose hidden activations are quantised to
a few levels (as on low-bit inference hardware) trained three ways on the same data:

- `"float"`: activations clamp(x, 0, 1), no rounding (the full-precision baseline);
- `"ste"`: rounded to `levels` values, gradient passed straight through (`QuantizeSTE`);
- `"round"`: rounded, with autograd's true derivative of rounding (zero almost everywhere),
  so no gradient reaches the hidden layers and only the read-out learns.
"""
from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .autograd import QuantizeSTE

__all__ = ["QuantizedMLP", "train_quantized_mlp"]

Mode = Literal["float", "ste", "round"]


class QuantizedMLP(nn.Module):
    """x: (N, in_features) -> logits (N, num_classes); hidden activations quantised per `mode`."""

    def __init__(self, in_features: int, hidden: int, num_classes: int, levels: int = 2,
                 mode: Mode = "ste", depth: int = 2) -> None:
        super().__init__()
        if mode not in ("float", "ste", "round"):
            raise ValueError(f"mode must be 'float', 'ste' or 'round', got {mode!r}")
        self.levels, self.mode = levels, mode
        sizes = [in_features] + [hidden] * depth
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.out = nn.Linear(hidden, num_classes)

    def act(self, x: Tensor) -> Tensor:
        # shift so a fresh layer's pre-activations straddle the rounding threshold 0.5
        x = x + 0.5
        if self.mode == "float":
            return x.clamp(0, 1)
        if self.mode == "ste":
            return QuantizeSTE.apply(x, self.levels)
        n = self.levels - 1
        return torch.round(x.clamp(0, 1) * n) / n

    def forward(self, x: Tensor) -> Tensor:
        for layer in self.hidden:
            x = self.act(layer(x))
        return self.out(x)


def train_quantized_mlp(X: Tensor, y: Tensor, X_test: Tensor, y_test: Tensor, mode: Mode,
                        levels: int = 2, hidden: int = 128, epochs: int = 20,
                        batch_size: int = 64, lr: float = 1e-2, seed: int = 0
                        ) -> tuple[float, QuantizedMLP]:
    """Train with Adam on (X (N, D) float32, y (N,) int64); returns (test accuracy, model)."""
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = QuantizedMLP(X.shape[1], hidden, int(y.max()) + 1, levels, mode)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(epochs):
        perm = torch.randperm(len(X), generator=g)
        for i in range(0, len(X), batch_size):
            idx = perm[i:i + batch_size]
            loss = F.cross_entropy(model(X[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    with torch.no_grad():
        acc = (model(X_test).argmax(1) == y_test).float().mean().item()
    return acc, model
