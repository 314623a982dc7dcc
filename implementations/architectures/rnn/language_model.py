"""Character-level language model with our LSTM (next-character prediction), and n-gram baselines.

Karpathy's char-rnn on a small scale: the model reads a window of characters and predicts each
next one; held-out cross-entropy (nats per character) is compared with add-alpha smoothed
unigram/bigram/trigram models fitted on the same training text.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch
from torch import Tensor, nn

from .lstm import LSTM

__all__ = ["CharVocab", "CharLSTM", "LMHistory", "train_char_lm", "lm_cross_entropy",
           "ngram_cross_entropy"]


class CharVocab:
    """Characters seen at least ``min_count`` times in the training text get ids 1..; id 0 is
    the unknown character (rare symbols, unseen characters in held-out text)."""

    def __init__(self, text: str, min_count: int = 5) -> None:
        counts = Counter(text)
        self.itos = ["\ufffd"] + sorted(ch for ch, n in counts.items() if n >= min_count)
        self.stoi = {ch: i for i, ch in enumerate(self.itos)}

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, text: str) -> np.ndarray:
        return np.fromiter((self.stoi.get(ch, 0) for ch in text), dtype=np.int64, count=len(text))

    def decode(self, ids: Sequence[int]) -> str:
        return "".join(self.itos[int(i)] for i in ids)


class CharLSTM(nn.Module):
    """ids (B, T) -> next-character logits (B, T, V): Embedding -> LSTM -> Linear."""

    def __init__(self, vocab_size: int, embedding_dim: int = 32, hidden_size: int = 128,
                 num_layers: int = 1, dropout: float = 0.0) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_dim)
        self.lstm = LSTM(embedding_dim, hidden_size, num_layers=num_layers, batch_first=True,
                         dropout=dropout if num_layers > 1 else 0.0)
        self.head = nn.Linear(hidden_size, vocab_size)

    def forward(self, ids: Tensor) -> Tensor:
        out, _ = self.lstm(self.embedding(ids))
        return self.head(out)


def _windows(ids: np.ndarray, seq_len: int, starts: np.ndarray) -> tuple[Tensor, Tensor]:
    idx = starts[:, None] + np.arange(seq_len + 1)[None, :]
    w = torch.as_tensor(ids[idx])
    return w[:, :-1], w[:, 1:]


@dataclass
class LMHistory:
    step: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)


def lm_cross_entropy(model: CharLSTM, ids: np.ndarray, seq_len: int, batch_size: int = 64) -> float:
    """Mean next-character cross-entropy (nats) over consecutive non-overlapping windows of
    held-out ids; each window starts from a zero state (no context carried across windows)."""
    n = (len(ids) - 1) // seq_len
    if n < 1:
        raise ValueError(f"need more than {seq_len} held-out characters, got {len(ids)}")
    starts = np.arange(n) * seq_len
    model.eval()
    total = 0.0
    with torch.no_grad():
        for chunk in np.array_split(starts, max(1, n // batch_size)):
            x, y = _windows(ids, seq_len, chunk)
            total += nn.functional.cross_entropy(model(x).flatten(0, 1), y.flatten(), reduction="sum").item()
    return total / (n * seq_len)


def train_char_lm(model: CharLSTM, train_ids: np.ndarray, val_ids: np.ndarray, steps: int, seq_len: int,
                  batch_size: int, lr: float = 3e-3, eval_every: int = 50, clip: float = 1.0,
                  seed: int = 0) -> LMHistory:
    """Adam on random training windows (seeded); held-out loss every ``eval_every`` steps."""
    if len(train_ids) <= seq_len + 1:
        raise ValueError(f"training text ({len(train_ids)} chars) is shorter than seq_len={seq_len}")
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps, eta_min=lr / 10)
    rng = np.random.default_rng(seed)
    history, running = LMHistory(), []
    for step in range(1, steps + 1):
        model.train()
        x, y = _windows(train_ids, seq_len, rng.integers(0, len(train_ids) - seq_len - 1, size=batch_size))
        loss = nn.functional.cross_entropy(model(x).flatten(0, 1), y.flatten())
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
        sched.step()
        running.append(loss.item())
        if step % eval_every == 0 or step == steps:
            history.step.append(step)
            history.train_loss.append(float(np.mean(running)))
            history.val_loss.append(lm_cross_entropy(model, val_ids, seq_len))
            running = []
    return history


def ngram_cross_entropy(train_ids: np.ndarray, test_ids: np.ndarray, vocab_size: int, order: int,
                        alpha: float = 0.1) -> float:
    """Cross-entropy (nats per character) of an add-alpha smoothed n-gram model fitted on
    ``train_ids``, over every held-out character that has ``order - 1`` predecessors.

    The n-gram reads its context straight from the held-out stream, across the window borders
    where the LSTM restarts from a zero state: if anything this favours the baseline.
    """
    if order < 1 or vocab_size ** order >= 2 ** 62:
        raise ValueError(f"order must be >= 1 with vocab_size**order < 2**62, got order={order}")

    def codes(ids: np.ndarray, n: int) -> np.ndarray:
        """Integer code of every n-gram in ids (base vocab_size)."""
        ids = np.asarray(ids, dtype=np.int64)
        out = np.zeros(len(ids) - n + 1, dtype=np.int64)
        for j in range(n):
            out = out * vocab_size + ids[j:len(ids) - n + 1 + j]
        return out

    def counts(train_codes: np.ndarray, query: np.ndarray) -> np.ndarray:
        """How often each query code occurs among train_codes (sparse: no V**n table)."""
        keys, n = np.unique(train_codes, return_counts=True)
        pos = np.clip(np.searchsorted(keys, query), 0, len(keys) - 1)
        return np.where(keys[pos] == query, n[pos], 0)

    k = order - 1
    test_codes = codes(test_ids, order)
    num = counts(codes(train_ids, order), test_codes) + alpha
    if k:
        # Contexts counted where an n-gram follows them (train[:-1]), so each conditional sums to 1.
        den = counts(codes(train_ids[:-1], k), test_codes // vocab_size) + alpha * vocab_size
    else:
        den = len(train_ids) + alpha * vocab_size
    return float(-np.mean(np.log(num / den)))
