"""ResNet (He et al. 2015, "Deep Residual Learning for Image Recognition") in plain PyTorch.

`resnet18/34/50` reproduce torchvision's layout exactly (module names, shapes, init), so a
torchvision state_dict would load with strict=True: conv1 -> bn1 -> relu -> maxpool ->
layer1..layer4 -> avgpool -> fc, stride on the 3x3 conv of a Bottleneck ("ResNet v1.5").
`cifar_resnet` is the paper's small CIFAR variant (section 4.2: 6n+2 layers, 16/32/64
channels) sized for 28x28 inputs. `residual=False` removes every identity path and gives the
"plain" network of the same depth used in the paper's degradation experiment.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["BasicBlock", "Bottleneck", "ResNet", "resnet18", "resnet34", "resnet50",
           "CifarResNet", "cifar_resnet"]


def conv3x3(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    """3x3 convolution with padding 1 and no bias (a BatchNorm follows)."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


def conv1x1(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


def downsample_for(in_planes: int, out_planes: int, stride: int) -> nn.Module | None:
    """Projection shortcut (option B) when the block changes shape, else None (identity)."""
    if stride == 1 and in_planes == out_planes:
        return None
    return nn.Sequential(conv1x1(in_planes, out_planes, stride), nn.BatchNorm2d(out_planes))


class BasicBlock(nn.Module):
    """Two 3x3 convs: out = relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)).

    x: (N, inplanes, H, W) -> (N, planes, H/stride, W/stride). With residual=False the
    shortcut is dropped (a plain block of the same depth and parameters).
    """

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1,
                 downsample: nn.Module | None = None, residual: bool = True) -> None:
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.residual = residual

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.residual:
            out = out + (x if self.downsample is None else self.downsample(x))
        return self.relu(out)


class Bottleneck(nn.Module):
    """1x1 reduce -> 3x3 (carries the stride) -> 1x1 expand by 4, plus the shortcut.

    x: (N, inplanes, H, W) -> (N, 4 * planes, H/stride, W/stride).
    """

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1,
                 downsample: nn.Module | None = None, residual: bool = True) -> None:
        super().__init__()
        self.conv1 = conv1x1(inplanes, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = conv1x1(planes, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.residual = residual

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.residual:
            out = out + (x if self.downsample is None else self.downsample(x))
        return self.relu(out)


Block = type[BasicBlock] | type[Bottleneck]


def _init_weights(model: nn.Module, zero_init_residual: bool) -> None:
    """torchvision's init: He normal (fan_out) convs, BN at (1, 0); optionally the last BN of
    each block at 0 so every block starts as the identity (Goyal et al. 2017)."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    if zero_init_residual:
        for m in model.modules():
            if isinstance(m, Bottleneck):
                nn.init.zeros_(m.bn3.weight)
            elif isinstance(m, BasicBlock):
                nn.init.zeros_(m.bn2.weight)


def _check_input(x: Tensor, in_channels: int, name: str) -> None:
    if x.ndim != 4 or x.shape[1] != in_channels:
        raise ValueError(f"{name} expects input (N, {in_channels}, H, W), got {tuple(x.shape)}")


class ResNet(nn.Module):
    """ImageNet ResNet. x: (N, in_channels, H, W), H, W >= 32 -> logits (N, num_classes)."""

    def __init__(self, block: Block, layers: list[int], num_classes: int = 1000,
                 in_channels: int = 3, zero_init_residual: bool = False) -> None:
        super().__init__()
        if len(layers) != 4 or min(layers) < 1:
            raise ValueError(f"layers must be 4 positive block counts, got {layers}")
        if num_classes < 1 or in_channels < 1:
            raise ValueError(f"num_classes and in_channels must be >= 1, got {num_classes}, {in_channels}")
        self.in_channels = in_channels
        self.inplanes = 64
        self.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, 64, layers[0])
        self.layer2 = self._make_layer(block, 128, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 256, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 512, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * block.expansion, num_classes)
        _init_weights(self, zero_init_residual)

    def _make_layer(self, block: Block, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        downsample = downsample_for(self.inplanes, planes * block.expansion, stride)
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        _check_input(x, self.in_channels, "ResNet")
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def resnet18(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> ResNet:
    """ResNet-18: BasicBlock x [2, 2, 2, 2]; 11,689,512 parameters at 1000 classes."""
    return ResNet(BasicBlock, [2, 2, 2, 2], num_classes, in_channels, **kwargs)


def resnet34(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> ResNet:
    """ResNet-34: BasicBlock x [3, 4, 6, 3]; 21,797,672 parameters at 1000 classes."""
    return ResNet(BasicBlock, [3, 4, 6, 3], num_classes, in_channels, **kwargs)


def resnet50(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> ResNet:
    """ResNet-50: Bottleneck x [3, 4, 6, 3]; 25,557,032 parameters at 1000 classes."""
    return ResNet(Bottleneck, [3, 4, 6, 3], num_classes, in_channels, **kwargs)


class CifarResNet(nn.Module):
    """Small ResNet for 28x28/32x32 inputs: 3x3 stem, three stages of `n` BasicBlocks at
    width, 2*width, 4*width channels (strides 1, 2, 2), global average pool, linear.

    x: (N, in_channels, H, W) -> logits (N, num_classes). Depth = 6n + 2 weighted layers.
    `residual=False` gives the plain twin (same layers, no identity paths).
    """

    def __init__(self, n: int = 1, num_classes: int = 10, in_channels: int = 1, width: int = 16,
                 residual: bool = True) -> None:
        super().__init__()
        if n < 1 or width < 1 or num_classes < 1 or in_channels < 1:
            raise ValueError(f"n, width, num_classes, in_channels must be >= 1, got "
                             f"{n}, {width}, {num_classes}, {in_channels}")
        self.in_channels = in_channels
        self.conv1 = conv3x3(in_channels, width)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        stages, inplanes = [], width
        for i, planes in enumerate((width, 2 * width, 4 * width)):
            stride = 1 if i == 0 else 2
            blocks = [BasicBlock(inplanes, planes, stride,
                                 downsample_for(inplanes, planes, stride) if residual else None,
                                 residual=residual)]
            blocks += [BasicBlock(planes, planes, residual=residual) for _ in range(1, n)]
            stages.append(nn.Sequential(*blocks))
            inplanes = planes
        self.layer1, self.layer2, self.layer3 = stages
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(4 * width, num_classes)
        _init_weights(self, zero_init_residual=False)

    def forward(self, x: Tensor) -> Tensor:
        _check_input(x, self.in_channels, "CifarResNet")
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(self.avgpool(x), 1))

    def convs(self) -> list[nn.Conv2d]:
        """The 3x3 convolutions in depth order (stem first; projection shortcuts excluded)."""
        return [self.conv1] + [c for layer in (self.layer1, self.layer2, self.layer3)
                               for b in layer for c in (b.conv1, b.conv2)]


def cifar_resnet(depth: int = 8, num_classes: int = 10, in_channels: int = 1, width: int = 16,
                 residual: bool = True) -> CifarResNet:
    """The CIFAR ResNet of depth 6n+2 (8, 14, 20, 32, 44, 56, ...)."""
    if depth < 8 or (depth - 2) % 6:
        raise ValueError(f"depth must be 6n+2 with n >= 1 (8, 14, 20, ...), got {depth}")
    return CifarResNet((depth - 2) // 6, num_classes, in_channels, width, residual)
