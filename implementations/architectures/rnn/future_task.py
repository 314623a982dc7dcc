"""A controlled tagging task whose label depends only on future context.

Each sequence holds i.i.d. uniform tokens; the tag of position t is the token at t + shift, so
nothing at or before t carries information about it. A left-to-right model can do no better
than chance (1 / vocab_size); a bidirectional one reads the answer off its backward state.
Lengths vary, so batches exercise packing; the last ``shift`` positions of each sequence have
no label (-100, ignored by the loss and the accuracy).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from .tagger import LSTMTagger

__all__ = ["future_token_task", "tag_accuracy"]


def future_token_task(n: int, vocab_size: int = 8, min_len: int = 4, max_len: int = 16, shift: int = 1,
                      seed: int = 0) -> list[tuple[Tensor, Tensor]]:
    """n items (token ids (T,) in 1..vocab_size, tags (T,) = the token ``shift`` steps ahead
    minus 1, i.e. in 0..vocab_size-1, with -100 where t + shift >= T). Id 0 stays free for padding."""
    if not (1 <= shift < min_len <= max_len) or vocab_size < 2 or n < 1:
        raise ValueError(f"need n >= 1, vocab_size >= 2 and 1 <= shift < min_len <= max_len, got n={n}, "
                         f"vocab_size={vocab_size}, shift={shift}, min_len={min_len}, max_len={max_len}")
    rng = np.random.default_rng(seed)
    items = []
    for length in rng.integers(min_len, max_len + 1, size=n):
        ids = rng.integers(1, vocab_size + 1, size=length)
        tags = np.full(length, -100)
        tags[:-shift] = ids[shift:] - 1
        items.append((torch.as_tensor(ids), torch.as_tensor(tags)))
    return items


def tag_accuracy(model: LSTMTagger, batches: list[tuple[Tensor, Tensor, Tensor]]) -> float:
    """Accuracy of the arg-max tag over the labelled positions of pad_collate batches."""
    model.eval()
    correct = total = 0
    with torch.no_grad():
        for ids, lengths, tags in batches:
            pred = model(ids, lengths).argmax(-1)
            mask = tags != -100
            correct += int((pred[mask] == tags[mask]).sum())
            total += int(mask.sum())
    return correct / total
