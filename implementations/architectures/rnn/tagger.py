"""A (Bi)LSTM sequence tagger with packing, a masked token loss, and its training loop.

The tagger embeds token ids (plus an optional word-shape feature, which carries capitalisation
and '@'/'#'/URL cues for words outside the vocabulary), packs the batch with
``pack_padded_sequence`` so the recurrence never reads padding, runs our ``LSTM`` and maps each
hidden state to tag logits. ``masked_cross_entropy`` masks padded positions in the loss, so a
sequence's loss and gradients do not depend on what it is batched with.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
from torch.utils.data import DataLoader

from .lstm import LSTM

__all__ = ["LSTMTagger", "length_mask", "masked_cross_entropy", "sequence_losses", "word_shape",
           "NUM_SHAPES", "TaggerHistory", "train_tagger", "predict_tags", "count_parameters"]

_SHAPES = ["<pad>", "url", "mention", "hashtag", "number", "punct", "upper", "title", "lower", "mixed"]
NUM_SHAPES = len(_SHAPES)


def word_shape(token: str) -> int:
    """A coarse shape class of a token (0 is reserved for padding), e.g. 'Paris' -> title."""
    if token.startswith(("http", "www.")):
        return 1
    if token.startswith("@"):
        return 2
    if token.startswith("#"):
        return 3
    if re.fullmatch(r"[\d.,:/-]+", token) and any(ch.isdigit() for ch in token):
        return 4
    if not any(ch.isalnum() for ch in token):
        return 5
    if token.isupper():
        return 6
    if token[:1].isupper() and token[1:].islower():
        return 7
    return 8 if token.islower() else 9


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def length_mask(lengths: Tensor, max_len: int | None = None) -> Tensor:
    """lengths (B,) -> bool mask (B, T) that is True at the valid positions t < lengths[b]."""
    lengths = torch.as_tensor(lengths)
    T = int(lengths.max()) if max_len is None else max_len
    return torch.arange(T, device=lengths.device)[None, :] < lengths[:, None]


class LSTMTagger(nn.Module):
    """Word embedding (+ word shape) -> packed (Bi)LSTM -> dropout -> Linear to tag logits.

    forward(tokens (B, T) int64, lengths (B,), shapes (B, T) int64 or None) -> logits (B, T, C);
    logits at padded positions must be masked by the loss.
    """

    def __init__(self, vocab_size: int, num_tags: int, embedding_dim: int = 64, hidden_size: int = 64,
                 num_layers: int = 1, bidirectional: bool = True, dropout: float = 0.0,
                 shape_dim: int = 0, padding_idx: int = 0) -> None:
        super().__init__()
        if vocab_size <= 0 or num_tags <= 0:
            raise ValueError(f"vocab_size and num_tags must be positive, got {vocab_size}, {num_tags}")
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=padding_idx)
        self.shape_embedding = nn.Embedding(NUM_SHAPES, shape_dim, padding_idx=0) if shape_dim > 0 else None
        self.input_size = embedding_dim + shape_dim
        self.lstm = LSTM(self.input_size, hidden_size, num_layers=num_layers, batch_first=True,
                         bidirectional=bidirectional, dropout=dropout if num_layers > 1 else 0.0)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size * (2 if bidirectional else 1), num_tags)

    def embed(self, tokens: Tensor, shapes: Tensor | None = None) -> Tensor:
        """tokens (B, T) [, shapes (B, T)] -> features (B, T, input_size)."""
        x = self.embedding(tokens)
        if self.shape_embedding is None:
            return x
        if shapes is None or shapes.shape != tokens.shape:
            raise ValueError("this tagger was built with shape_dim > 0: pass word-shape ids of shape "
                             f"{tuple(tokens.shape)}")
        return torch.cat([x, self.shape_embedding(shapes)], dim=-1)

    def tag(self, x: Tensor, lengths: Tensor) -> Tensor:
        """Embedded batch x (B, T, F) with lengths (B,) -> logits (B, T, C)."""
        lengths = torch.as_tensor(lengths).cpu()
        if x.dim() != 3 or lengths.shape != (x.shape[0],):
            raise ValueError(f"expected x (B, T, F) and lengths (B,), got {tuple(x.shape)} and "
                             f"{tuple(lengths.shape)}")
        if int(lengths.min()) < 1 or int(lengths.max()) > x.shape[1]:
            raise ValueError(f"lengths must lie in 1..{x.shape[1]}, got {lengths.tolist()}")
        packed = pack_padded_sequence(self.dropout(x), lengths, batch_first=True, enforce_sorted=False)
        out, _ = self.lstm(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
        return self.head(self.dropout(out))

    def forward(self, tokens: Tensor, lengths: Tensor, shapes: Tensor | None = None) -> Tensor:
        return self.tag(self.embed(tokens, shapes), lengths)


def _masked_nll(logits: Tensor, tags: Tensor, lengths: Tensor | None, ignore_index: int) -> tuple[Tensor, Tensor]:
    if logits.dim() != 3 or tags.shape != logits.shape[:2]:
        raise ValueError(f"expected logits (B, T, C) and tags (B, T), got {tuple(logits.shape)} "
                         f"and {tuple(tags.shape)}")
    mask = tags != ignore_index
    if lengths is not None:
        mask = mask & length_mask(torch.as_tensor(lengths).to(tags.device), tags.shape[1])
    logp = torch.log_softmax(logits, dim=-1)
    nll = -logp.gather(-1, torch.where(mask, tags, 0).unsqueeze(-1)).squeeze(-1)
    # where(), not nll * mask: a masked position gets exactly zero gradient even if its
    # logits are inf or NaN (0 * NaN would leak NaN into the backward pass).
    return torch.where(mask, nll, torch.zeros_like(nll)), mask


def masked_cross_entropy(logits: Tensor, tags: Tensor, lengths: Tensor | None = None,
                         ignore_index: int = -100, reduction: str = "mean") -> Tensor:
    """Token cross-entropy over the valid positions only.

    logits (B, T, C), tags (B, T) int64 (``ignore_index`` at padding, as ``pad_collate`` fills),
    lengths (B,) optional (positions t >= lengths[b] are masked as well).
    reduction: 'mean' over valid tokens, 'sum', or 'none' -> (B, T) with zeros at masked positions.
    """
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    nll, mask = _masked_nll(logits, tags, lengths, ignore_index)
    if reduction == "none":
        return nll
    total = nll.sum()
    return total / mask.sum().clamp_min(1) if reduction == "mean" else total


def sequence_losses(logits: Tensor, tags: Tensor, lengths: Tensor | None = None,
                    ignore_index: int = -100) -> Tensor:
    """Mean token loss of each sequence (B,): what a sequence scores on its own."""
    nll, mask = _masked_nll(logits, tags, lengths, ignore_index)
    return nll.sum(dim=1) / mask.sum(dim=1).clamp_min(1)


@dataclass
class TaggerHistory:
    train_loss: list[float] = field(default_factory=list)
    val_f1: list[float] = field(default_factory=list)


def _unpack(batch: Sequence) -> tuple[Tensor, Tensor, Tensor, tuple[Tensor, ...]]:
    """A pad_collate batch: (tokens, lengths, tags) or ((tokens, *features), lengths, tags)."""
    inputs, lengths, tags = batch
    if isinstance(inputs, (tuple, list)):
        return inputs[0], lengths, tags, tuple(inputs[1:])
    return inputs, lengths, tags, ()


def predict_tags(model: LSTMTagger, loader: Iterable[Sequence[Tensor]]) -> list[list[int]]:
    """Arg-max tag ids per sequence (each list as long as its sequence), in loader order."""
    model.eval()
    preds: list[list[int]] = []
    with torch.no_grad():
        for batch in loader:
            tokens, lengths, _, features = _unpack(batch)
            best = model(tokens, lengths, *features).argmax(-1)
            preds.extend(best[i, : int(n)].tolist() for i, n in enumerate(lengths))
    return preds


def train_tagger(model: LSTMTagger, loader: DataLoader, epochs: int, lr: float = 1e-3,
                 weight_decay: float = 0.0, clip: float = 5.0, word_dropout: float = 0.0,
                 unk_id: int = 1, seed: int = 0, evaluate=None) -> TaggerHistory:
    """Adam on ``masked_cross_entropy``; ``word_dropout`` replaces that fraction of training
    tokens by ``unk_id`` so the model learns to tag words it has never seen from context and
    shape. ``evaluate(model) -> float`` (optional) is called after every epoch (val F1)."""
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    gen = torch.Generator().manual_seed(seed)
    history = TaggerHistory()
    for _ in range(epochs):
        model.train()
        total, count = 0.0, 0
        for batch in loader:
            tokens, lengths, tags, features = _unpack(batch)
            if word_dropout > 0:
                drop = (torch.rand(tokens.shape, generator=gen) < word_dropout) & (tokens > unk_id)
                tokens = torch.where(drop, torch.full_like(tokens, unk_id), tokens)
            loss = masked_cross_entropy(model(tokens, lengths, *features), tags, lengths)
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), clip)
            opt.step()
            total, count = total + loss.item() * len(lengths), count + len(lengths)
        history.train_loss.append(total / count)
        if evaluate is not None:
            history.val_f1.append(float(evaluate(model)))
    return history
