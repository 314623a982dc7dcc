"""Synthetic sequence tasks with a known answer, seeded (each call draws from its own Generator).

Token ids 0 and 1 are reserved (PAD, BOS); symbols are 2 .. 2 + n_symbols - 1.

- `first_marker_task`: an order-only classification task. Every sequence holds each of K
  marker tokens exactly once among random filler tokens; the label is which marker comes
  first. The multiset of tokens carries no information about the label, so a model that
  ignores order (a transformer without positional information) is at chance, 1/K.
- `sorting_task` / `reversal_task`: sequence-to-sequence with exact-match accuracy.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

__all__ = ["PAD", "BOS", "Seq2SeqData", "first_marker_task", "sorting_task", "reversal_task"]

PAD, BOS = 0, 1
FIRST_SYMBOL = 2


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def first_marker_task(n: int, seq_len: int = 12, n_markers: int = 4, n_fillers: int = 8,
                      seed: int = 0) -> tuple[Tensor, Tensor]:
    """x (n, seq_len) int64 token ids, y (n,) int64 in [0, n_markers): the first marker's index.

    Markers are ids 2 .. 2 + n_markers - 1, fillers the next n_fillers ids (vocab = 2 + K + F).
    """
    if n <= 0 or n_markers < 2 or n_fillers < 1:
        raise ValueError(f"need n > 0, n_markers >= 2, n_fillers >= 1; got {n}, {n_markers}, {n_fillers}")
    if seq_len < n_markers:
        raise ValueError(f"seq_len ({seq_len}) must hold the {n_markers} markers")
    g = _generator(seed)
    x = FIRST_SYMBOL + n_markers + torch.randint(0, n_fillers, (n, seq_len), generator=g)
    slots = torch.rand(n, seq_len, generator=g).argsort(dim=1)[:, :n_markers]  # distinct positions
    markers = torch.arange(n_markers).expand(n, -1)
    x.scatter_(1, slots, FIRST_SYMBOL + markers)
    y = markers.gather(1, slots.argmin(dim=1, keepdim=True)).squeeze(1)
    return x, y


class Seq2SeqData(NamedTuple):
    """src (n, S); tgt_in (n, T) = BOS + target[:-1] (teacher forcing); tgt_out (n, T) = target."""

    src: Tensor
    tgt_in: Tensor
    tgt_out: Tensor


def _seq2seq(src: Tensor, target: Tensor) -> Seq2SeqData:
    bos = torch.full((src.shape[0], 1), BOS, dtype=torch.int64)
    return Seq2SeqData(src, torch.cat([bos, target[:, :-1]], dim=1), target)


def _symbols(n: int, seq_len: int, n_symbols: int, seed: int) -> Tensor:
    if n <= 0 or seq_len <= 0 or n_symbols < 2:
        raise ValueError(f"need n > 0, seq_len > 0, n_symbols >= 2; got {n}, {seq_len}, {n_symbols}")
    return FIRST_SYMBOL + torch.randint(0, n_symbols, (n, seq_len), generator=_generator(seed))


def sorting_task(n: int, seq_len: int = 10, n_symbols: int = 10, seed: int = 0) -> Seq2SeqData:
    """Sort a random sequence of symbols ascending (vocab = 2 + n_symbols)."""
    src = _symbols(n, seq_len, n_symbols, seed)
    return _seq2seq(src, src.sort(dim=1).values)


def reversal_task(n: int, seq_len: int = 10, n_symbols: int = 10, seed: int = 0) -> Seq2SeqData:
    """Reverse a random sequence of symbols (vocab = 2 + n_symbols)."""
    src = _symbols(n, seq_len, n_symbols, seed)
    return _seq2seq(src, src.flip(1))
