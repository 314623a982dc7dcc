"""Machinery shared by the CNN assessments: Fashion-MNIST tensors, a baseline, counts."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from sklearn.neighbors import NearestCentroid

from implementations.architectures.cnn.training import images_to_tensor
from implementations.data.images import fashion_mnist_split


@dataclass
class FashionTensors:
    """Standardised (N, 1, H, W) float32 images, int64 labels, raw split and the statistics."""

    X_train: torch.Tensor
    y_train: torch.Tensor
    X_test: torch.Tensor
    y_test: torch.Tensor
    class_names: list[str]
    raw_train: np.ndarray
    raw_test: np.ndarray
    mean: float
    std: float


def fashion_tensors(n_train: int | None, n_test: int | None, seed: int = 0,
                    size: int | None = None) -> FashionTensors:
    """The fixed Fashion-MNIST split (stratified subsample when n_* is given), standardised
    with the training pixels' mean and std."""
    split = fashion_mnist_split(n_train, n_test, seed=seed)
    pixels = split.X_train.astype(np.float64) / 255.0
    mean, std = float(pixels.mean()), float(pixels.std())
    return FashionTensors(images_to_tensor(split.X_train, mean, std, size),
                          torch.from_numpy(split.y_train), images_to_tensor(split.X_test, mean, std, size),
                          torch.from_numpy(split.y_test), list(split.class_names),
                          split.X_train, split.X_test, mean, std)


def nearest_centroid_accuracy(data: FashionTensors) -> float:
    """The simple baseline measured in the same run: nearest class mean on raw pixels."""
    clf = NearestCentroid().fit(data.raw_train.reshape(len(data.raw_train), -1), data.y_train.numpy())
    pred = clf.predict(data.raw_test.reshape(len(data.raw_test), -1))
    return float(np.mean(pred == data.y_test.numpy()))


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, k: int) -> np.ndarray:
    """(k, k) counts, rows = true class, columns = predicted."""
    cm = np.zeros((k, k), dtype=np.int64)
    np.add.at(cm, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return cm


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
