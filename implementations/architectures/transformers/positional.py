"""Positional information for attention, which is otherwise blind to order.

Self-attention is permutation-equivariant: permute the tokens and the outputs permute the same
way. Three ways to tell it where each token is:

- `SinusoidalPositionalEncoding` (Vaswani et al., 2017), added to the embeddings:
      PE[pos, 2i] = sin(pos / 10000^(2i/d)),  PE[pos, 2i+1] = cos(pos / 10000^(2i/d)).
  Each (sin, cos) pair rotates by a fixed angle per step, so PE[pos + k] is a linear function
  (a rotation) of PE[pos] for every pos: relative offsets are easy for a linear layer to read.
- `LearnedPositionalEmbedding` (BERT, GPT-2): a trained vector per position, added.
- `RotaryEmbedding` (RoPE, Su et al., 2021): rotates each head's queries and keys by an angle
  proportional to their position, so q_m . k_n depends on m - n only (relative position), with
  nothing added to the values. Half-split layout (GPT-NeoX / Hugging Face Llama's `rotate_half`):
  pairs are (x_i, x_{i + d/2}), rotated by m * theta_i with theta_i = base^(-2i/d).
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["sinusoidal_table", "SinusoidalPositionalEncoding", "LearnedPositionalEmbedding",
           "RotaryEmbedding", "rotate_half"]


def _check_even(name: str, d: int) -> None:
    if d <= 0 or d % 2:
        raise ValueError(f"{name} must be a positive even number (sin/cos pairs), got {d}")


def _check_length(T: int, max_len: int) -> None:
    if T > max_len:
        raise ValueError(f"sequence length {T} exceeds max_len={max_len} of the positional table")


def sinusoidal_table(max_len: int, d_model: int, dtype: torch.dtype = torch.float64) -> Tensor:
    """The (max_len, d_model) sinusoidal table, computed in float64 and cast to `dtype`."""
    _check_even("d_model", d_model)
    pos = torch.arange(max_len, dtype=torch.float64)[:, None]                      # (T, 1)
    inv_freq = 10000.0 ** (-torch.arange(0, d_model, 2, dtype=torch.float64) / d_model)  # (d/2,)
    table = torch.empty(max_len, d_model, dtype=torch.float64)
    table[:, 0::2] = torch.sin(pos * inv_freq)
    table[:, 1::2] = torch.cos(pos * inv_freq)
    return table.to(dtype)


class SinusoidalPositionalEncoding(nn.Module):
    """Adds the fixed sinusoidal table: x (N, T, d_model) -> x + PE[:T] (then dropout)."""

    def __init__(self, d_model: int, max_len: int = 5000, dropout: float = 0.0) -> None:
        super().__init__()
        _check_even("d_model", d_model)
        self.d_model, self.max_len = d_model, max_len
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 3 or x.shape[-1] != self.d_model:
            raise ValueError(f"expected (N, T, {self.d_model}), got {tuple(x.shape)}")
        _check_length(x.shape[1], self.max_len)
        # Computed per call in float64 (T x d sines, cheap): exact whatever dtype the model has.
        return self.dropout(x + sinusoidal_table(x.shape[1], self.d_model).to(x.device, x.dtype))


class LearnedPositionalEmbedding(nn.Module):
    """Adds a trained vector per position: x (N, T, d_model) -> x + P[:T] (then dropout)."""

    def __init__(self, max_len: int, d_model: int, dropout: float = 0.0, device=None, dtype=None) -> None:
        super().__init__()
        self.d_model, self.max_len = d_model, max_len
        self.embedding = nn.Embedding(max_len, d_model, device=device, dtype=dtype)
        # GPT-2's scale: small next to token embeddings at the start.
        nn.init.normal_(self.embedding.weight, std=0.02)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 3 or x.shape[-1] != self.d_model:
            raise ValueError(f"expected (N, T, {self.d_model}), got {tuple(x.shape)}")
        _check_length(x.shape[1], self.max_len)
        return self.dropout(x + self.embedding.weight[: x.shape[1]])


def rotate_half(x: Tensor) -> Tensor:
    """(x1, x2) -> (-x2, x1) on the two halves of the last dim: a 90-degree turn of each pair."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


class RotaryEmbedding(nn.Module):
    """RoPE over the last dim of per-head queries/keys.

    Inputs:  x (..., T, dim); `positions` (T,) integer positions (default arange(offset, offset+T)).
    Returns: x rotated: x * cos(m theta) + rotate_half(x) * sin(m theta), same shape and dtype.
    Angles are computed in float64 and cast, so float64 inputs keep full precision.
    """

    def __init__(self, dim: int, base: float = 10000.0) -> None:
        super().__init__()
        _check_even("dim", dim)
        if base <= 1.0:
            raise ValueError(f"base must be > 1, got {base}")
        self.dim, self.base = dim, base

    def cos_sin(self, positions: Tensor, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
        """cos and sin tables (T, dim) for integer positions (T,)."""
        # No float buffer: model.float() would round it; float64 angles keep float64 exact.
        arange = torch.arange(0, self.dim, 2, dtype=torch.float64, device=positions.device)
        angles = positions.to(torch.float64)[:, None] * self.base ** (-arange / self.dim)  # (T, dim/2)
        angles = torch.cat((angles, angles), dim=-1)
        return angles.cos().to(dtype), angles.sin().to(dtype)

    def forward(self, x: Tensor, positions: Tensor | None = None, offset: int = 0) -> Tensor:
        if x.dim() < 2 or x.shape[-1] != self.dim:
            raise ValueError(f"expected (..., T, {self.dim}), got {tuple(x.shape)}")
        T = x.shape[-2]
        if positions is None:
            positions = torch.arange(offset, offset + T, device=x.device)
        elif positions.shape != (T,):
            raise ValueError(f"positions must be ({T},), got {tuple(positions.shape)}")
        cos, sin = self.cos_sin(positions, x.dtype)
        return x * cos + rotate_half(x) * sin
