"""A small CNN image classifier (Fashion-MNIST sized): three conv-BN-ReLU stages with max
pooling between them, dropout and a linear read-out over the flattened feature map.

Deliberately cheap (about 2 MFLOPs per 28x28 image) so a couple of epochs on two CPU cores
reach ~90% on Fashion-MNIST; `widths` and `dropout` scale it for the full budget.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

__all__ = ["SmallCNN"]


class SmallCNN(nn.Module):
    """x: (N, in_channels, H, W), H and W divisible by 4 -> logits (N, num_classes).

    features: [conv3x3 -> BN -> ReLU] x 3 with 2x2 max pooling after the first two
    (H/4 x W/4 maps of widths[-1] channels); classifier: Dropout -> Linear.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10,
                 widths: Sequence[int] = (16, 32, 64), input_size: int = 28,
                 dropout: float = 0.3) -> None:
        super().__init__()
        if len(widths) != 3 or min(widths) < 1:
            raise ValueError(f"widths must be 3 positive channel counts, got {tuple(widths)}")
        if input_size < 4 or input_size % 4:
            raise ValueError(f"input_size must be a positive multiple of 4, got {input_size}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.in_channels, self.input_size = in_channels, input_size
        layers: list[nn.Module] = []
        c_in = in_channels
        for i, c_out in enumerate(widths):
            layers += [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out),
                       nn.ReLU(inplace=True)]
            if i < 2:
                layers.append(nn.MaxPool2d(2))
            c_in = c_out
        self.features = nn.Sequential(*layers)
        side = input_size // 4
        self.classifier = nn.Sequential(nn.Flatten(), nn.Dropout(dropout),
                                        nn.Linear(widths[-1] * side * side, num_classes))

    @property
    def first_conv(self) -> nn.Conv2d:
        return self.features[0]

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_channels or x.shape[-2:] != (self.input_size,) * 2:
            raise ValueError(f"SmallCNN expects (N, {self.in_channels}, {self.input_size}, "
                             f"{self.input_size}), got {tuple(x.shape)}")
        return self.classifier(self.features(x))

    @torch.no_grad()
    def feature_maps(self, x: Tensor) -> list[Tensor]:
        """Post-ReLU maps of each conv stage: [(N, widths[0], H, W), (N, widths[1], H/2, W/2),
        (N, widths[2], H/4, W/4)]."""
        maps = []
        for layer in self.features:
            x = layer(x)
            if isinstance(layer, nn.ReLU):
                maps.append(x.clone())
        return maps
