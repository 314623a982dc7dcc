"""A small Keras functional CNN (the twin of the cnn area's SmallCNN) to convert with tf2onnx.

Keras 3 functional API, TensorFlow backend, channels-last input (N, 28, 28, 1):
[Conv3x3 -> BatchNorm -> ReLU] x 3 with 2x2 max pooling after the first two, then Flatten ->
Dropout -> Dense(num_classes) logits. A functional model, not Sequential: tf2onnx's `from_keras`
fails on a Keras 3 Sequential (KeyError on its input layer).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["keras_small_cnn", "fit_keras"]


def keras_small_cnn(num_classes: int = 10, widths: Sequence[int] = (16, 32, 64), input_size: int = 28,
                    dropout: float = 0.3, seed: int = 0):
    """The uncompiled functional model; input named "image" (N, input_size, input_size, 1)."""
    import keras

    if keras.backend.backend() != "tensorflow":
        raise RuntimeError(f"tf2onnx needs Keras on the TensorFlow backend, not {keras.backend.backend()!r} "
                           "(set KERAS_BACKEND=tensorflow)")
    keras.utils.set_random_seed(seed)
    x = inputs = keras.Input((input_size, input_size, 1), name="image")
    for i, width in enumerate(widths):
        x = keras.layers.Conv2D(width, 3, padding="same", use_bias=False)(x)
        x = keras.layers.BatchNormalization()(x)
        x = keras.layers.ReLU()(x)
        if i < 2:
            x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dropout(dropout, seed=seed)(x)
    logits = keras.layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, logits, name="keras_small_cnn")


def fit_keras(model, X: np.ndarray, y: np.ndarray, epochs: int = 1, batch_size: int = 128, lr: float = 3e-3,
              seed: int = 0):
    """Adam + sparse cross-entropy on logits; X (N, H, W, 1) float32, y (N,) int. Returns the History."""
    import keras

    keras.utils.set_random_seed(seed)
    model.compile(optimizer=keras.optimizers.Adam(lr),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    return model.fit(X, y, epochs=epochs, batch_size=batch_size, shuffle=True, verbose=0)
