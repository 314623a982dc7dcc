"""Scaled dot-product and multi-head attention from matmuls and a softmax (Vaswani et al., 2017).

    softmax(Q K^T / sqrt(d_k) + mask) V

Twins of `torch.nn.functional.scaled_dot_product_attention` and `torch.nn.MultiheadAttention`:
same argument names, defaults and mask conventions, and MultiHeadAttention has torch's parameter
names (`in_proj_weight`, `in_proj_bias`, `out_proj.*`), so a torch state_dict loads as is.

Mask conventions are PyTorch's, and they differ between the two:
- `scaled_dot_product_attention`: boolean `attn_mask` True = may attend; a float mask is added.
- `MultiHeadAttention`: boolean `attn_mask` / `key_padding_mask` True = may NOT attend (ignored);
  a float mask is added.

Fully masked rows (a query allowed to attend to no key): the softmax of an all -inf row is 0/0.
Here such a row gets all-zero attention weights and a zero context vector, and no NaN reaches
the output or the gradients. This is what `F.scaled_dot_product_attention` returns; torch's
`nn.MultiheadAttention` returns NaN there instead.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["CHUNK_ELEMENTS", "attention", "masked_softmax", "scaled_dot_product_attention", "MultiHeadAttention"]


def _check_mask(mask: Tensor, scores_shape: torch.Size, name: str, dtype: torch.dtype) -> None:
    if mask.dtype != torch.bool and not mask.is_floating_point():
        raise ValueError(f"{name} must be bool or floating point, got {mask.dtype}")
    if mask.is_floating_point() and mask.dtype != dtype:
        raise ValueError(f"float {name} must have the query's dtype {dtype}, got {mask.dtype}")
    try:
        torch.broadcast_shapes(mask.shape, scores_shape)
    except RuntimeError:
        raise ValueError(f"{name} of shape {tuple(mask.shape)} does not broadcast to the attention "
                         f"scores (..., L, S) = {tuple(scores_shape)}") from None


def masked_softmax(scores: Tensor) -> Tensor:
    """Softmax over the last dim; rows that are -inf everywhere give zeros instead of NaN.

    The dead rows are set to 0 before the softmax and zeroed after it, so neither the forward
    nor the backward pass ever sees 0/0.
    """
    dead = torch.isneginf(scores).all(dim=-1, keepdim=True)
    if not dead.any():
        return torch.softmax(scores, dim=-1)
    weights = torch.softmax(scores.masked_fill(dead, 0.0), dim=-1)
    return weights.masked_fill(dead, 0.0)


# Without returned weights, score tensors larger than this many elements are formed in slices
# along the first (batch) dim: each (L, S) block stays in cache, and no big temporary is
# allocated (and page-faulted in) per call. 2**19 float32 scores = 2 MiB.
CHUNK_ELEMENTS = 2**19


def _rows(t: Tensor | None, start: int, stop: int, ndim: int) -> Tensor | None:
    """Rows start:stop of the first of `ndim` broadcast dims; t itself where it broadcasts there."""
    if t is None or t.dim() < ndim or t.shape[0] == 1:
        return t
    return t[start:stop]


def _attend(query: Tensor, key: Tensor, value: Tensor, attn_mask: Tensor | None, dropout_p: float,
            scale: float) -> tuple[Tensor, Tensor]:
    """The arithmetic itself, on checked inputs; attn_mask bool (True = may attend) or additive."""
    # Scaling q (L x E numbers) rather than the scores (L x S) saves a pass over the big matrix.
    scores = torch.matmul(query * scale, key.transpose(-2, -1))  # (..., L, S)
    if attn_mask is not None:
        if attn_mask.dtype == torch.bool:
            scores = scores.masked_fill(~attn_mask, float("-inf"))
        else:
            scores = scores + attn_mask
    weights = masked_softmax(scores) if attn_mask is not None else torch.softmax(scores, dim=-1)
    if dropout_p > 0.0:
        weights = F.dropout(weights, p=dropout_p, training=True)
    return torch.matmul(weights, value), weights


def attention(query: Tensor, key: Tensor, value: Tensor, attn_mask: Tensor | None = None,
              dropout_p: float = 0.0, is_causal: bool = False, scale: float | None = None,
              need_weights: bool = True) -> tuple[Tensor, Tensor | None]:
    """Scaled dot-product attention that can also return its weights.

    Inputs:  query (..., L, E), key (..., S, E), value (..., S, Ev); leading dims broadcast.
             attn_mask broadcastable to (..., L, S): bool (True = may attend) or float (added).
             is_causal: query i attends to keys j <= i (top-left aligned when L != S).
    Returns: out (..., L, Ev), weights (..., L, S) after dropout, as used for `out` (None when
             need_weights=False: large inputs then run in batch slices, same numbers).
    """
    if query.ndim < 2 or key.ndim < 2 or value.ndim < 2:
        raise ValueError("query, key and value need at least 2 dims (..., seq, features), got "
                         f"{tuple(query.shape)}, {tuple(key.shape)}, {tuple(value.shape)}")
    if query.shape[-1] != key.shape[-1]:
        raise ValueError(f"query and key must share the feature size, got {query.shape[-1]} and {key.shape[-1]}")
    if key.shape[-2] != value.shape[-2]:
        raise ValueError(f"key and value must have the same length S, got {key.shape[-2]} and {value.shape[-2]}")
    if not 0.0 <= dropout_p <= 1.0:
        raise ValueError(f"dropout_p must be in [0, 1], got {dropout_p}")
    if is_causal and attn_mask is not None:
        raise ValueError("give either attn_mask or is_causal=True, not both")
    try:
        lead = torch.broadcast_shapes(query.shape[:-2], key.shape[:-2], value.shape[:-2])
    except RuntimeError:
        raise ValueError(f"leading dims of query {tuple(query.shape)}, key {tuple(key.shape)} and value "
                         f"{tuple(value.shape)} do not broadcast") from None
    L, S = query.shape[-2], key.shape[-2]
    scores_shape = torch.Size((*lead, L, S))
    if is_causal:
        attn_mask = torch.ones(L, S, dtype=torch.bool, device=query.device).tril()
    if attn_mask is not None:
        _check_mask(attn_mask, scores_shape, "attn_mask", torch.result_type(query, key))
        scores_shape = torch.broadcast_shapes(scores_shape, attn_mask.shape)
    scale = 1.0 / math.sqrt(query.shape[-1]) if scale is None else scale
    n_rows = scores_shape[0] if len(scores_shape) > 2 else 1
    if need_weights or n_rows == 1 or scores_shape.numel() <= CHUNK_ELEMENTS:
        out, weights = _attend(query, key, value, attn_mask, dropout_p, scale)
        return out, (weights if need_weights else None)
    step = max(1, CHUNK_ELEMENTS * n_rows // scores_shape.numel())
    ndim = len(scores_shape)
    outs = [_attend(*(_rows(t, i, i + step, ndim) for t in (query, key, value, attn_mask)), dropout_p, scale)[0]
            for i in range(0, n_rows, step)]
    return torch.cat(outs, dim=0), None


def scaled_dot_product_attention(query: Tensor, key: Tensor, value: Tensor, attn_mask: Tensor | None = None,
                                 dropout_p: float = 0.0, is_causal: bool = False,
                                 scale: float | None = None) -> Tensor:
    """`torch.nn.functional.scaled_dot_product_attention`'s twin (same arguments and masks).

    Inputs:  query (N, ..., L, E), key (N, ..., S, E), value (N, ..., S, Ev).
    Returns: (N, ..., L, Ev). Dropout, like torch's, applies whenever dropout_p > 0.
    """
    return attention(query, key, value, attn_mask, dropout_p, is_causal, scale, need_weights=False)[0]


class MultiHeadAttention(nn.Module):
    """`torch.nn.MultiheadAttention`'s twin: h heads of scaled dot-product attention.

        head_i = Attention(Q W_q^i, K W_k^i, V W_v^i);  out = concat(head_1..head_h) W_o

    Args follow torch (embed_dim, num_heads, dropout on the weights, bias, kdim, vdim,
    batch_first); `rotary` (an optional `positional.RotaryEmbedding` over head_dim) rotates each
    head's queries and keys by their positions before the dot product (RoPE).
    Parameters: in_proj_weight (3E, E) when kdim == vdim == E, else q/k/v_proj_weight;
    in_proj_bias (3E,); out_proj (Linear E -> E).
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 kdim: int | None = None, vdim: int | None = None, batch_first: bool = False,
                 rotary: nn.Module | None = None, device=None, dtype=None) -> None:
        super().__init__()
        if embed_dim <= 0 or num_heads <= 0:
            raise ValueError(f"embed_dim and num_heads must be positive, got {embed_dim} and {num_heads}")
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim ({embed_dim}) must be divisible by num_heads ({num_heads})")
        if not 0.0 <= dropout <= 1.0:
            raise ValueError(f"dropout must be in [0, 1], got {dropout}")
        factory = {"device": device, "dtype": dtype}
        self.embed_dim, self.num_heads, self.dropout = embed_dim, num_heads, dropout
        self.head_dim = embed_dim // num_heads
        self.kdim, self.vdim = kdim or embed_dim, vdim or embed_dim
        self.batch_first, self.rotary = batch_first, rotary
        self._packed = self.kdim == embed_dim and self.vdim == embed_dim
        if self._packed:
            self.in_proj_weight = nn.Parameter(torch.empty(3 * embed_dim, embed_dim, **factory))
            self.register_parameter("q_proj_weight", None)
            self.register_parameter("k_proj_weight", None)
            self.register_parameter("v_proj_weight", None)
        else:
            self.register_parameter("in_proj_weight", None)
            self.q_proj_weight = nn.Parameter(torch.empty(embed_dim, embed_dim, **factory))
            self.k_proj_weight = nn.Parameter(torch.empty(embed_dim, self.kdim, **factory))
            self.v_proj_weight = nn.Parameter(torch.empty(embed_dim, self.vdim, **factory))
        if bias:
            self.in_proj_bias = nn.Parameter(torch.empty(3 * embed_dim, **factory))
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = nn.Linear(embed_dim, embed_dim, bias=bias, **factory)
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        # torch's scheme: Xavier-uniform projections, zero biases.
        for w in (self.in_proj_weight, self.q_proj_weight, self.k_proj_weight, self.v_proj_weight):
            if w is not None:
                nn.init.xavier_uniform_(w)
        if self.in_proj_bias is not None:
            nn.init.zeros_(self.in_proj_bias)
            nn.init.zeros_(self.out_proj.bias)

    def _project(self, query: Tensor, key: Tensor, value: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        E = self.embed_dim
        b = self.in_proj_bias
        bq, bk, bv = (None, None, None) if b is None else (b[:E], b[E:2 * E], b[2 * E:])
        if self._packed and query is key and key is value:  # self-attention: one matmul
            return F.linear(query, self.in_proj_weight, b).chunk(3, dim=-1)
        if self._packed:
            wq, wk, wv = self.in_proj_weight.chunk(3, dim=0)
        else:
            wq, wk, wv = self.q_proj_weight, self.k_proj_weight, self.v_proj_weight
        return F.linear(query, wq, bq), F.linear(key, wk, bk), F.linear(value, wv, bv)

    def _merged_mask(self, attn_mask: Tensor | None, key_padding_mask: Tensor | None, N: int, L: int,
                     S: int, dtype: torch.dtype) -> Tensor | None:
        """One additive float mask (N or 1, H or 1, L, S), -inf where attention is not allowed."""
        def additive(mask: Tensor, name: str) -> Tensor:
            if mask.dtype == torch.bool:
                return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(mask, float("-inf"))
            if not mask.is_floating_point() or mask.dtype != dtype:
                raise ValueError(f"{name} must be bool or have the query's dtype {dtype}, got {mask.dtype}")
            return mask

        merged = None
        if attn_mask is not None:
            if attn_mask.shape == (L, S):
                merged = additive(attn_mask, "attn_mask")
            elif attn_mask.shape == (N * self.num_heads, L, S):
                merged = additive(attn_mask, "attn_mask").view(N, self.num_heads, L, S)
            else:
                raise ValueError(f"attn_mask must be (L, S) = {(L, S)} or (N * num_heads, L, S) = "
                                 f"{(N * self.num_heads, L, S)}, got {tuple(attn_mask.shape)}")
        if key_padding_mask is not None:
            if key_padding_mask.shape != (N, S):
                raise ValueError(f"key_padding_mask must be (N, S) = {(N, S)}, got {tuple(key_padding_mask.shape)}")
            pad = additive(key_padding_mask, "key_padding_mask").view(N, 1, 1, S)
            merged = pad if merged is None else merged + pad
        return merged

    def forward(self, query: Tensor, key: Tensor, value: Tensor, key_padding_mask: Tensor | None = None,
                need_weights: bool = True, attn_mask: Tensor | None = None,
                average_attn_weights: bool = True, is_causal: bool = False) -> tuple[Tensor, Tensor | None]:
        """Inputs:  query (L, N, E), key (S, N, kdim), value (S, N, vdim); (N, L, E)... if
                    batch_first; unbatched (L, E) also accepted. key_padding_mask (N, S);
                    attn_mask (L, S) or (N * num_heads, L, S); bool True = ignore, float added.
                    is_causal without attn_mask applies the causal mask (with one, it is a hint).
           Returns: out like query; weights (N, L, S) averaged over heads, or (N, H, L, S) with
                    average_attn_weights=False, or None when need_weights=False.
        """
        unbatched = query.dim() == 2
        if query.dim() not in (2, 3) or key.dim() != query.dim() or value.dim() != query.dim():
            raise ValueError("query, key, value must all be 3-D (batched) or all 2-D (unbatched), got "
                             f"{tuple(query.shape)}, {tuple(key.shape)}, {tuple(value.shape)}")
        # Work batch-first, (N, L, E): the layout the head split and the matmuls want.
        same_qk, same_kv = query is key, key is value
        if unbatched:
            query = query.unsqueeze(0)
            if key_padding_mask is not None:
                key_padding_mask = key_padding_mask.unsqueeze(0)
        elif not self.batch_first:
            query = query.transpose(0, 1)
        if unbatched or not self.batch_first:
            key = query if same_qk else (key.unsqueeze(0) if unbatched else key.transpose(0, 1))
            value = key if same_kv else (value.unsqueeze(0) if unbatched else value.transpose(0, 1))
        N, L, E = query.shape
        S = key.shape[1]
        if E != self.embed_dim or key.shape[-1] != self.kdim or value.shape[-1] != self.vdim:
            raise ValueError(f"expected feature sizes (query {self.embed_dim}, key {self.kdim}, value "
                             f"{self.vdim}), got ({E}, {key.shape[-1]}, {value.shape[-1]})")
        if key.shape[:2] != value.shape[:2] or key.shape[0] != N:
            raise ValueError(f"key {tuple(key.shape)} and value {tuple(value.shape)} must hold the query's batch "
                             f"size N={N} and one length S (batch_first={self.batch_first})")
        q, k, v = self._project(query, key, value)
        # (N, L, E) -> (N, H, L, head_dim)
        q, k, v = (t.unflatten(-1, (self.num_heads, self.head_dim)).transpose(1, 2) for t in (q, k, v))
        if self.rotary is not None:
            q, k = self.rotary(q), self.rotary(k)
        if is_causal and attn_mask is None:  # True = blocked: key j is after query i
            attn_mask = torch.ones(L, S, dtype=torch.bool, device=q.device).triu(1)
        mask = self._merged_mask(attn_mask, key_padding_mask, N, L, S, q.dtype)
        out, weights = attention(q, k, v, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0,
                                 need_weights=need_weights)
        out = self.out_proj(out.transpose(1, 2).flatten(2))  # (N, L, E)
        if unbatched:
            out = out.squeeze(0)
        elif not self.batch_first:
            out = out.transpose(0, 1)
        if not need_weights:
            return out, None
        if average_attn_weights:
            weights = weights.mean(dim=1)
        return out, (weights.squeeze(0) if unbatched else weights)
