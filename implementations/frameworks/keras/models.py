"""A small transformer image classifier that reads an image row by row (each row a token).

    (N, H, W) -> Dense(W -> d_model) -> + PositionEmbedding -> num_layers x TransformerBlock
             -> LayerNorm -> mean over rows -> Dense(num_classes) logits (N, num_classes)

The same network twice: `RowTransformer`, a subclassed `keras.Model`, and `row_transformer()`, a
functional model built from the same custom layers in the same order, so `get_weights()` of one
loads into the other. Both are registered for `.keras` saving.
"""
from __future__ import annotations

import keras

from .layers import PACKAGE, PositionEmbedding, TransformerBlock

__all__ = ["RowTransformer", "row_transformer"]


def _check(image_shape: tuple[int, int], num_classes: int, d_model: int, num_layers: int) -> None:
    if len(image_shape) != 2 or min(image_shape) <= 0:
        raise ValueError(f"image_shape must be (H, W) with positive sizes, got {image_shape}")
    if num_classes < 2 or d_model <= 0 or num_layers < 1:
        raise ValueError(f"need num_classes >= 2, d_model > 0, num_layers >= 1; got {num_classes}, "
                         f"{d_model}, {num_layers}")


@keras.saving.register_keras_serializable(package=PACKAGE)
class RowTransformer(keras.Model):
    """Subclassed row transformer. Inputs (N, H, W) float; returns logits (N, num_classes)."""

    def __init__(self, image_shape: tuple[int, int] = (28, 28), num_classes: int = 10, d_model: int = 32,
                 num_heads: int = 4, num_layers: int = 1, dim_feedforward: int = 64, dropout: float = 0.0,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        image_shape = tuple(image_shape)
        _check(image_shape, num_classes, d_model, num_layers)
        self.image_shape, self.num_classes, self.d_model = image_shape, num_classes, d_model
        self.num_heads, self.num_layers, self.dim_feedforward, self.dropout = (num_heads, num_layers,
                                                                               dim_feedforward, dropout)
        policy = self.dtype_policy
        self.embed = keras.layers.Dense(d_model, dtype=policy, name="embed")
        self.position = PositionEmbedding(image_shape[0], dtype=policy, name="position")
        self.blocks = [TransformerBlock(d_model, num_heads, dim_feedforward, dropout, dtype=policy, name=f"block{i}")
                       for i in range(num_layers)]
        self.norm = keras.layers.LayerNormalization(epsilon=1e-5, dtype=policy, name="norm")
        self.pool = keras.layers.GlobalAveragePooling1D(dtype=policy, name="pool")
        self.head = keras.layers.Dense(num_classes, dtype=policy, name="head")

    def call(self, x, training=None):
        h = self.position(self.embed(x))
        for block in self.blocks:
            h = block(h, training=training)
        return self.head(self.pool(self.norm(h)))

    def get_config(self) -> dict:
        return {**super().get_config(), "image_shape": list(self.image_shape), "num_classes": self.num_classes,
                "d_model": self.d_model, "num_heads": self.num_heads, "num_layers": self.num_layers,
                "dim_feedforward": self.dim_feedforward, "dropout": self.dropout}


def row_transformer(image_shape: tuple[int, int] = (28, 28), num_classes: int = 10, d_model: int = 32,
                    num_heads: int = 4, num_layers: int = 1, dim_feedforward: int = 64, dropout: float = 0.0,
                    dtype: str | None = None, name: str = "row_transformer", model_class: type = keras.Model
                    ) -> keras.Model:
    """The functional twin of RowTransformer (same layers, same weight order).

    `model_class` lets a subclass of keras.Model that overrides `train_step` wrap the same graph.
    """
    image_shape = tuple(image_shape)
    _check(image_shape, num_classes, d_model, num_layers)
    inputs = keras.Input(shape=image_shape, dtype=dtype, name="images")
    h = keras.layers.Dense(d_model, dtype=dtype, name="embed")(inputs)
    h = PositionEmbedding(image_shape[0], dtype=dtype, name="position")(h)
    for i in range(num_layers):
        h = TransformerBlock(d_model, num_heads, dim_feedforward, dropout, dtype=dtype, name=f"block{i}")(h)
    h = keras.layers.LayerNormalization(epsilon=1e-5, dtype=dtype, name="norm")(h)
    h = keras.layers.GlobalAveragePooling1D(dtype=dtype, name="pool")(h)
    logits = keras.layers.Dense(num_classes, dtype=dtype, name="head")(h)
    return model_class(inputs=inputs, outputs=logits, name=name)
