"""The recurrent baseline for the sequence task: an LSTM encoder-decoder (Sutskever et al., 2014).

The encoder's final (h, c) is the only path from source to target (no attention), which is the
bottleneck a transformer's cross-attention removes. Same interface as `Seq2SeqTransformer`
(forward with teacher forcing, greedy `generate`), so both train in the same loop and budget.
The recurrent layers are the RNN area's LSTM from tensor ops (`implementations.architectures.
rnn.lstm.LSTM`, a twin of torch.nn.LSTM); torch.nn.LSTM stands in where that module is absent.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

try:
    from implementations.architectures.rnn.lstm import LSTM
except ImportError:  # the RNN area not installed alongside: its torch twin
    LSTM = nn.LSTM

__all__ = ["LSTM", "LSTMSeq2Seq"]


class LSTMSeq2Seq(nn.Module):
    """src (N, S), tgt (N, T) -> logits (N, T, tgt_vocab_size)."""

    def __init__(self, src_vocab_size: int, tgt_vocab_size: int, embed_dim: int = 64, hidden_size: int = 128,
                 num_layers: int = 2, dropout: float = 0.0) -> None:
        super().__init__()
        self.src_vocab_size, self.tgt_vocab_size = src_vocab_size, tgt_vocab_size
        self.src_embed = nn.Embedding(src_vocab_size, embed_dim)
        self.tgt_embed = nn.Embedding(tgt_vocab_size, embed_dim)
        self.encoder = LSTM(embed_dim, hidden_size, num_layers, batch_first=True, dropout=dropout)
        self.decoder = LSTM(embed_dim, hidden_size, num_layers, batch_first=True, dropout=dropout)
        self.head = nn.Linear(hidden_size, tgt_vocab_size)

    def _check(self, x: Tensor, vocab_size: int, name: str) -> None:
        if x.dim() != 2 or x.dtype != torch.int64:
            raise ValueError(f"{name} must be an int64 tensor (N, T), got {x.dtype} {tuple(x.shape)}")
        if x.numel() and (x.min() < 0 or x.max() >= vocab_size):
            raise ValueError(f"{name} ids must be in [0, {vocab_size})")

    def encode(self, src: Tensor) -> tuple[Tensor, Tensor]:
        self._check(src, self.src_vocab_size, "src")
        _, state = self.encoder(self.src_embed(src))
        return state

    def forward(self, src: Tensor, tgt: Tensor) -> Tensor:
        self._check(tgt, self.tgt_vocab_size, "tgt")
        out, _ = self.decoder(self.tgt_embed(tgt), self.encode(src))
        return self.head(out)

    @torch.no_grad()
    def generate(self, src: Tensor, max_new_tokens: int, bos_id: int) -> Tensor:
        """Greedy decoding, one step at a time carrying the LSTM state: (N, S) -> (N, max_new_tokens)."""
        state = self.encode(src)
        token = torch.full((src.shape[0], 1), bos_id, dtype=torch.int64, device=src.device)
        out = []
        for _ in range(max_new_tokens):
            h, state = self.decoder(self.tgt_embed(token), state)
            token = self.head(h[:, -1]).argmax(-1, keepdim=True)
            out.append(token)
        return torch.cat(out, dim=1)
