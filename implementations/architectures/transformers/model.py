"""A small pre-norm transformer built on our MultiHeadAttention (nanoGPT-sized, torch.nn.Transformer names).

    encoder block:  x = x + Dropout(SelfAttn(LN(x)));  x = x + Dropout(FF(LN(x)))
    decoder block:  y = y + Dropout(CausalSelfAttn(LN(y)));  y = y + Dropout(CrossAttn(LN(y), memory))
                    y = y + Dropout(FF(LN(y)))

Pre-norm (LayerNorm inside the residual branch, one final LayerNorm) keeps the residual path an
identity, which trains without warm-up at this size. Two models:
- `SequenceClassifier`: encoder + mean pooling over real tokens + linear head.
- `Seq2SeqTransformer`: encoder-decoder with teacher forcing and greedy `generate`.
`positional` picks "none", "sinusoidal", "learned" or "rope" (see positional.py).
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from implementations.architectures.transformers.attention import MultiHeadAttention
from implementations.architectures.transformers.positional import (LearnedPositionalEmbedding, RotaryEmbedding,
                                                                   SinusoidalPositionalEncoding)

__all__ = ["POSITIONAL_KINDS", "FeedForward", "EncoderBlock", "DecoderBlock", "SequenceClassifier",
           "Seq2SeqTransformer"]

POSITIONAL_KINDS = ("none", "sinusoidal", "learned", "rope")


def _positional(kind: str, d_model: int, nhead: int, max_len: int) -> tuple[nn.Module, RotaryEmbedding | None]:
    """(module added to the embeddings, rotary applied inside self-attention) for `kind`."""
    if kind not in POSITIONAL_KINDS:
        raise ValueError(f"positional must be one of {POSITIONAL_KINDS}, got {kind!r}")
    if kind == "sinusoidal":
        return SinusoidalPositionalEncoding(d_model, max_len), None
    if kind == "learned":
        return LearnedPositionalEmbedding(max_len, d_model), None
    if kind == "rope":
        return nn.Identity(), RotaryEmbedding(d_model // nhead)
    return nn.Identity(), None


class FeedForward(nn.Sequential):
    """Position-wise MLP: (N, T, d_model) -> (N, T, d_model) through dim_feedforward GELU units."""

    def __init__(self, d_model: int, dim_feedforward: int, dropout: float = 0.1) -> None:
        super().__init__(nn.Linear(d_model, dim_feedforward), nn.GELU(), nn.Dropout(dropout),
                         nn.Linear(dim_feedforward, d_model))


class EncoderBlock(nn.Module):
    """Pre-norm self-attention block. x (N, T, d_model) -> (x, weights (N, H, T, T))."""

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048, dropout: float = 0.1,
                 rotary: RotaryEmbedding | None = None, layer_norm_eps: float = 1e-5) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(d_model, layer_norm_eps), nn.LayerNorm(d_model, layer_norm_eps)
        self.self_attn = MultiHeadAttention(d_model, nhead, dropout=dropout, batch_first=True, rotary=rotary)
        self.ff = FeedForward(d_model, dim_feedforward, dropout)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, src_key_padding_mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        h = self.norm1(x)
        a, w = self.self_attn(h, h, h, key_padding_mask=src_key_padding_mask, average_attn_weights=False)
        x = x + self.dropout(a)
        return x + self.dropout(self.ff(self.norm2(x))), w


class DecoderBlock(nn.Module):
    """Pre-norm causal self-attention + cross-attention block.

    Inputs:  y (N, T, d_model), memory (N, S, d_model), memory_key_padding_mask (N, S) bool.
    Returns: y, self-attention weights (N, H, T, T), cross-attention weights (N, H, T, S).
    """

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048, dropout: float = 0.1,
                 rotary: RotaryEmbedding | None = None, layer_norm_eps: float = 1e-5) -> None:
        super().__init__()
        self.norm1, self.norm2, self.norm3 = (nn.LayerNorm(d_model, layer_norm_eps) for _ in range(3))
        self.self_attn = MultiHeadAttention(d_model, nhead, dropout=dropout, batch_first=True, rotary=rotary)
        # Queries and keys come from different sequences: relative rotation has no meaning here.
        self.cross_attn = MultiHeadAttention(d_model, nhead, dropout=dropout, batch_first=True)
        self.ff = FeedForward(d_model, dim_feedforward, dropout)
        self.dropout = nn.Dropout(dropout)

    def forward(self, y: Tensor, memory: Tensor, memory_key_padding_mask: Tensor | None = None,
                tgt_key_padding_mask: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
        h = self.norm1(y)
        a, w_self = self.self_attn(h, h, h, key_padding_mask=tgt_key_padding_mask, is_causal=True,
                                   average_attn_weights=False)
        y = y + self.dropout(a)
        a, w_cross = self.cross_attn(self.norm2(y), memory, memory, key_padding_mask=memory_key_padding_mask,
                                     average_attn_weights=False)
        y = y + self.dropout(a)
        return y + self.dropout(self.ff(self.norm3(y))), w_self, w_cross


def _check_tokens(x: Tensor, vocab_size: int, max_len: int, name: str) -> None:
    if x.dim() != 2 or x.dtype != torch.int64:
        raise ValueError(f"{name} must be an int64 tensor (N, T), got {x.dtype} {tuple(x.shape)}")
    if x.shape[1] > max_len:
        raise ValueError(f"{name} has length {x.shape[1]} > max_len={max_len}")
    if x.numel() and (x.min() < 0 or x.max() >= vocab_size):
        raise ValueError(f"{name} ids must be in [0, {vocab_size}), got [{int(x.min())}, {int(x.max())}]")


class SequenceClassifier(nn.Module):
    """Token ids (N, T) -> class logits (N, num_classes): encoder, mean over real tokens, linear.

    Without positional information the model is permutation-invariant (attention and the mean
    pool both are), so it cannot tell sequences that differ only in order.
    """

    def __init__(self, vocab_size: int, num_classes: int, d_model: int = 64, nhead: int = 4,
                 num_layers: int = 2, dim_feedforward: int = 128, dropout: float = 0.0, max_len: int = 128,
                 positional: str = "sinusoidal", padding_idx: int | None = 0) -> None:
        super().__init__()
        self.vocab_size, self.max_len, self.padding_idx = vocab_size, max_len, padding_idx
        self.embed = nn.Embedding(vocab_size, d_model)
        self.pos, rotary = _positional(positional, d_model, nhead, max_len)
        self.blocks = nn.ModuleList(EncoderBlock(d_model, nhead, dim_feedforward, dropout, rotary)
                                    for _ in range(num_layers))
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, num_classes)

    def forward(self, x: Tensor, need_weights: bool = False) -> Tensor | tuple[Tensor, list[Tensor]]:
        """x (N, T) int64 -> logits (N, C); with need_weights also per-layer weights (N, H, T, T)."""
        _check_tokens(x, self.vocab_size, self.max_len, "x")
        pad = (x == self.padding_idx) if self.padding_idx is not None else torch.zeros_like(x, dtype=torch.bool)
        h = self.pos(self.embed(x))
        weights = []
        for block in self.blocks:
            h, w = block(h, src_key_padding_mask=pad if pad.any() else None)
            weights.append(w)
        keep = (~pad).unsqueeze(-1).to(h.dtype)
        pooled = (self.norm(h) * keep).sum(1) / keep.sum(1).clamp_min(1.0)
        logits = self.head(pooled)
        return (logits, weights) if need_weights else logits


class Seq2SeqTransformer(nn.Module):
    """Encoder-decoder transformer (torch.nn.Transformer's names), tied to no task.

    forward(src (N, S), tgt (N, T)) -> logits (N, T, tgt_vocab_size): the decoder reads `tgt`
    (BOS + the target shifted right, teacher forcing) under a causal mask. Token id
    `padding_idx` is masked out of every attention as a key.
    """

    def __init__(self, src_vocab_size: int, tgt_vocab_size: int, d_model: int = 512, nhead: int = 8,
                 num_encoder_layers: int = 6, num_decoder_layers: int = 6, dim_feedforward: int = 2048,
                 dropout: float = 0.1, max_len: int = 512, positional: str = "sinusoidal",
                 padding_idx: int | None = 0) -> None:
        super().__init__()
        self.src_vocab_size, self.tgt_vocab_size = src_vocab_size, tgt_vocab_size
        self.max_len, self.padding_idx = max_len, padding_idx
        self.src_embed = nn.Embedding(src_vocab_size, d_model)
        self.tgt_embed = nn.Embedding(tgt_vocab_size, d_model)
        self.pos, rotary = _positional(positional, d_model, nhead, max_len)
        self.encoder = nn.ModuleList(EncoderBlock(d_model, nhead, dim_feedforward, dropout, rotary)
                                     for _ in range(num_encoder_layers))
        self.decoder = nn.ModuleList(DecoderBlock(d_model, nhead, dim_feedforward, dropout, rotary)
                                     for _ in range(num_decoder_layers))
        self.enc_norm, self.dec_norm = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, tgt_vocab_size)

    def _pad_mask(self, x: Tensor) -> Tensor | None:
        if self.padding_idx is None:
            return None
        pad = x == self.padding_idx
        return pad if pad.any() else None

    def encode(self, src: Tensor) -> tuple[Tensor, Tensor | None, list[Tensor]]:
        """src (N, S) -> memory (N, S, d_model), its padding mask, encoder weights per layer."""
        _check_tokens(src, self.src_vocab_size, self.max_len, "src")
        pad = self._pad_mask(src)
        h, weights = self.pos(self.src_embed(src)), []
        for block in self.encoder:
            h, w = block(h, src_key_padding_mask=pad)
            weights.append(w)
        return self.enc_norm(h), pad, weights

    def decode(self, tgt: Tensor, memory: Tensor, memory_pad: Tensor | None
               ) -> tuple[Tensor, list[Tensor], list[Tensor]]:
        """tgt (N, T) -> logits (N, T, V), decoder self- and cross-attention weights per layer."""
        _check_tokens(tgt, self.tgt_vocab_size, self.max_len, "tgt")
        y, selfs, crosses = self.pos(self.tgt_embed(tgt)), [], []
        for block in self.decoder:
            y, w_self, w_cross = block(y, memory, memory_pad)
            selfs.append(w_self)
            crosses.append(w_cross)
        return self.head(self.dec_norm(y)), selfs, crosses

    def forward(self, src: Tensor, tgt: Tensor, need_weights: bool = False
                ) -> Tensor | tuple[Tensor, dict[str, list[Tensor]]]:
        if src.shape[0] != tgt.shape[0]:
            raise ValueError(f"src and tgt batch sizes differ: {src.shape[0]} vs {tgt.shape[0]}")
        memory, pad, enc_w = self.encode(src)
        logits, self_w, cross_w = self.decode(tgt, memory, pad)
        if need_weights:
            return logits, {"encoder": enc_w, "decoder_self": self_w, "cross": cross_w}
        return logits

    @torch.no_grad()
    def generate(self, src: Tensor, max_new_tokens: int, bos_id: int) -> Tensor:
        """Greedy decoding: (N, S) -> (N, max_new_tokens), BOS not included."""
        memory, pad, _ = self.encode(src)
        out = torch.full((src.shape[0], 1), bos_id, dtype=torch.int64, device=src.device)
        for _ in range(max_new_tokens):
            logits, _, _ = self.decode(out, memory, pad)
            out = torch.cat([out, logits[:, -1].argmax(-1, keepdim=True)], dim=1)
        return out[:, 1:]
