"""Custom Keras 3 layers written with `keras.ops` only, so they run on TensorFlow, torch and JAX.

- `MultiHeadSelfAttention`: softmax(Q K^T / sqrt(d_head)) V over h heads (Vaswani et al., 2017),
  with its own fused input projection, like `torch.nn.MultiheadAttention`: `in_proj_kernel`
  (E, 3E) holds [W_q | W_k | W_v] (torch's `in_proj_weight` transposed), `out_proj_kernel` (E, E).
- `PositionEmbedding`: a learned (max_length, dim) table added to the input (BERT/ViT style).
- `TransformerBlock`: pre-norm encoder block, x + MHSA(LN(x)) then x + FFN(LN(x)); the twin of
  `torch.nn.TransformerEncoderLayer(norm_first=True, batch_first=True)`.

Constructor names follow PyTorch (embed_dim, num_heads, dim_feedforward, layer_norm_eps, bias);
each layer is registered for `.keras` saving and round-trips through get_config/from_config.
"""
from __future__ import annotations

import math

import keras
from keras import ops

__all__ = ["MultiHeadSelfAttention", "PositionEmbedding", "TransformerBlock"]

PACKAGE = "milestone"


@keras.saving.register_keras_serializable(package=PACKAGE)
class MultiHeadSelfAttention(keras.layers.Layer):
    """Multi-head self-attention with its own weights.

    Inputs:  x (N, L, E); attention_mask (N, L, L) or (L, L) bool, True = may attend (Keras'
             convention); use_causal_mask: query i sees keys j <= i.
    Returns: (N, L, E).
    Weights: in_proj_kernel (E, 3E), in_proj_bias (3E,), out_proj_kernel (E, E), out_proj_bias (E,).
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 kernel_initializer: str = "glorot_uniform", **kwargs) -> None:
        super().__init__(**kwargs)
        if embed_dim <= 0 or num_heads <= 0:
            raise ValueError(f"embed_dim and num_heads must be positive, got {embed_dim} and {num_heads}")
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim ({embed_dim}) must be divisible by num_heads ({num_heads})")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.embed_dim, self.num_heads, self.dropout, self.bias = embed_dim, num_heads, dropout, bias
        self.head_dim = embed_dim // num_heads
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.attention_dropout = keras.layers.Dropout(dropout, dtype=self.dtype_policy)

    def build(self, input_shape: tuple) -> None:
        if input_shape[-1] != self.embed_dim:
            raise ValueError(f"expected inputs (N, L, {self.embed_dim}), got {tuple(input_shape)}")
        E = self.embed_dim
        self.in_proj_kernel = self.add_weight(shape=(E, 3 * E), initializer=self.kernel_initializer,
                                              name="in_proj_kernel")
        self.out_proj_kernel = self.add_weight(shape=(E, E), initializer=self.kernel_initializer,
                                               name="out_proj_kernel")
        if self.bias:
            self.in_proj_bias = self.add_weight(shape=(3 * E,), initializer="zeros", name="in_proj_bias")
            self.out_proj_bias = self.add_weight(shape=(E,), initializer="zeros", name="out_proj_bias")

    def _heads(self, t):
        """(N, L, E) -> (N, H, L, head_dim)."""
        shape = ops.shape(t)
        return ops.transpose(ops.reshape(t, (shape[0], shape[1], self.num_heads, self.head_dim)), (0, 2, 1, 3))

    def call(self, x, attention_mask=None, use_causal_mask: bool = False, training=None):
        qkv = ops.matmul(x, self.in_proj_kernel)
        if self.bias:
            qkv = qkv + self.in_proj_bias
        q, k, v = (self._heads(t) for t in ops.split(qkv, 3, axis=-1))
        # Scaling q (L x d numbers) rather than the scores (L x L) saves a pass over the big matrix.
        scores = ops.matmul(q * (1.0 / math.sqrt(self.head_dim)), ops.transpose(k, (0, 1, 3, 2)))
        allowed = None
        if use_causal_mask:
            length = ops.shape(x)[1]
            allowed = ops.tril(ops.ones((length, length), dtype="bool"))
        if attention_mask is not None:
            mask = ops.cast(attention_mask, "bool")
            allowed = mask if allowed is None else ops.logical_and(allowed, mask)
        if allowed is not None:
            if len(allowed.shape) == 3:
                allowed = ops.expand_dims(allowed, 1)  # (N, L, L) -> (N, 1, L, L): every head
            # A large negative (not -inf) keeps fully masked rows finite, as Keras' softmax does.
            scores = ops.where(allowed, scores, ops.cast(-1e9, scores.dtype))
        weights = self.attention_dropout(ops.softmax(scores, axis=-1), training=training)
        out = ops.matmul(weights, v)  # (N, H, L, head_dim)
        shape = ops.shape(out)
        out = ops.reshape(ops.transpose(out, (0, 2, 1, 3)), (shape[0], shape[2], self.embed_dim))
        out = ops.matmul(out, self.out_proj_kernel)
        return out + self.out_proj_bias if self.bias else out

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return input_shape

    def get_config(self) -> dict:
        return {**super().get_config(), "embed_dim": self.embed_dim, "num_heads": self.num_heads,
                "dropout": self.dropout, "bias": self.bias,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer)}


@keras.saving.register_keras_serializable(package=PACKAGE)
class PositionEmbedding(keras.layers.Layer):
    """Adds a learned position vector to each step: (N, L, E) -> (N, L, E), L <= max_length."""

    def __init__(self, max_length: int, initializer: str = "glorot_uniform", **kwargs) -> None:
        super().__init__(**kwargs)
        if max_length <= 0:
            raise ValueError(f"max_length must be positive, got {max_length}")
        self.max_length = max_length
        self.initializer = keras.initializers.get(initializer)

    def build(self, input_shape: tuple) -> None:
        self.embeddings = self.add_weight(shape=(self.max_length, input_shape[-1]),
                                          initializer=self.initializer, name="embeddings")

    def call(self, x):
        length = ops.shape(x)[1]
        if isinstance(length, int) and length > self.max_length:
            raise ValueError(f"sequence length {length} exceeds max_length {self.max_length}")
        return x + self.embeddings[:length]

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return input_shape

    def get_config(self) -> dict:
        return {**super().get_config(), "max_length": self.max_length,
                "initializer": keras.initializers.serialize(self.initializer)}


@keras.saving.register_keras_serializable(package=PACKAGE)
class TransformerBlock(keras.layers.Layer):
    """Pre-norm encoder block: x += MHSA(LN1(x)); x += W2 act(W1 LN2(x)). (N, L, E) -> (N, L, E).

    Twin of torch.nn.TransformerEncoderLayer(embed_dim, num_heads, dim_feedforward, dropout,
    activation, layer_norm_eps, batch_first=True, norm_first=True).
    """

    def __init__(self, embed_dim: int, num_heads: int, dim_feedforward: int = 2048, dropout: float = 0.0,
                 activation: str = "relu", layer_norm_eps: float = 1e-5, **kwargs) -> None:
        super().__init__(**kwargs)
        if dim_feedforward <= 0:
            raise ValueError(f"dim_feedforward must be positive, got {dim_feedforward}")
        self.embed_dim, self.num_heads, self.dim_feedforward = embed_dim, num_heads, dim_feedforward
        self.dropout, self.activation, self.layer_norm_eps = dropout, activation, layer_norm_eps
        policy = self.dtype_policy
        self.norm1 = keras.layers.LayerNormalization(epsilon=layer_norm_eps, dtype=policy, name="norm1")
        self.self_attn = MultiHeadSelfAttention(embed_dim, num_heads, dropout, dtype=policy, name="self_attn")
        self.norm2 = keras.layers.LayerNormalization(epsilon=layer_norm_eps, dtype=policy, name="norm2")
        self.linear1 = keras.layers.Dense(dim_feedforward, activation=activation, dtype=policy, name="linear1")
        self.linear2 = keras.layers.Dense(embed_dim, dtype=policy, name="linear2")
        self.drop = keras.layers.Dropout(dropout, dtype=policy)

    def build(self, input_shape: tuple) -> None:
        for layer, shape in ((self.norm1, input_shape), (self.self_attn, input_shape), (self.norm2, input_shape),
                             (self.linear1, input_shape), (self.linear2, (*input_shape[:-1], self.dim_feedforward))):
            layer.build(shape)

    def call(self, x, attention_mask=None, use_causal_mask: bool = False, training=None):
        h = self.self_attn(self.norm1(x), attention_mask=attention_mask, use_causal_mask=use_causal_mask,
                           training=training)
        x = x + self.drop(h, training=training)
        h = self.linear2(self.drop(self.linear1(self.norm2(x)), training=training))
        return x + self.drop(h, training=training)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return input_shape

    def get_config(self) -> dict:
        return {**super().get_config(), "embed_dim": self.embed_dim, "num_heads": self.num_heads,
                "dim_feedforward": self.dim_feedforward, "dropout": self.dropout,
                "activation": self.activation, "layer_norm_eps": self.layer_norm_eps}
