"""Keras' own EfficientNetB0 with our weights copied in, as an independent float64 reference.

Keras builds B0 with TF "SAME"-style padding (ZeroPadding2D(correct_pad) before stride-2
convs), BatchNorm eps 1e-3, squeeze-and-excitation and swish: the same network as our
`EfficientNet(se=True, same_padding=True, bn_eps=1e-3)`. Its input layers (rescale by
1/255, normalise) are made the identity: scale 1, mean 0, variance 1.
"""
from __future__ import annotations

import numpy as np
import torch

from implementations.architectures.cnn.efficientnet import EfficientNet
from implementations.architectures.cnn.training import recalibrate_bn


def keras_efficientnet_b0(input_size: int, num_classes: int):
    """Keras EfficientNetB0 (weights=None, logits out) built in float64."""
    import keras

    # floatx too: the Input layer takes its dtype from floatx, not from the dtype policy
    prev_policy, prev_floatx = keras.config.dtype_policy(), keras.config.floatx()
    keras.config.set_dtype_policy("float64")
    keras.config.set_floatx("float64")
    try:
        model = keras.applications.EfficientNetB0(weights=None, input_shape=(input_size, input_size, 3),
                                                  classes=num_classes, classifier_activation=None)
    finally:
        keras.config.set_floatx(prev_floatx)
        keras.config.set_dtype_policy(prev_policy)
    for layer in model.layers:
        if isinstance(layer, keras.layers.Rescaling):
            # its Python-float scale 1/255 passes through a float32 tensor (error ~6e-8); 1.0 is
            # exact, so inputs go in unscaled
            layer.scale = 1.0
        elif isinstance(layer, keras.layers.Normalization):
            layer.set_weights([np.zeros(3), np.ones(3), np.array(0, dtype=np.int64)])
    return model


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().double().numpy()


def _bn(seq: torch.nn.Sequential) -> list[np.ndarray]:
    bn = seq[1]
    return [_np(bn.weight), _np(bn.bias), _np(bn.running_mean), _np(bn.running_var)]


def _conv(seq: torch.nn.Sequential) -> list[np.ndarray]:
    return [_np(seq[0].weight).transpose(2, 3, 1, 0)]  # OIHW -> HWIO


def copy_into_keras(ours: EfficientNet, kmodel) -> None:
    """Set every keras layer's weights from `ours` (SE model, torchvision layout)."""
    layers = {layer.name: layer for layer in kmodel.layers}

    def put(name: str, weights: list[np.ndarray]) -> None:
        layers[name].set_weights(weights)

    head = len(ours.features) - 1
    put("stem_conv", _conv(ours.features[0]))
    put("stem_bn", _bn(ours.features[0]))
    for i, stage in enumerate(ours.features[1:head], start=1):
        for j, block in enumerate(stage):
            p, parts = f"block{i}{chr(97 + j)}_", list(block.block)
            if len(parts) == 4:  # expand, depthwise, SE, project
                expand = parts.pop(0)
                put(p + "expand_conv", _conv(expand))
                put(p + "expand_bn", _bn(expand))
            dw, se, project = parts
            put(p + "dwconv", [_np(dw[0].weight).transpose(2, 3, 0, 1)])  # (C,1,k,k) -> (k,k,C,1)
            put(p + "bn", _bn(dw))
            put(p + "se_reduce", [_np(se.fc1.weight).transpose(2, 3, 1, 0), _np(se.fc1.bias)])
            put(p + "se_expand", [_np(se.fc2.weight).transpose(2, 3, 1, 0), _np(se.fc2.bias)])
            put(p + "project_conv", _conv(project))
            put(p + "project_bn", _bn(project))
    put("top_conv", _conv(ours.features[head]))
    put("top_bn", _bn(ours.features[head]))
    fc = ours.classifier[1]
    put("predictions", [_np(fc.weight).T, _np(fc.bias)])


def calibrate_batchnorm(model: torch.nn.Module, x: torch.Tensor, seed: int) -> None:
    """Non-trivial BN affine terms, and running statistics measured on x: with the default
    (0, 1) statistics a randomly initialised B0 in eval mode loses its input on the way up
    (every image gets the same logits) and a comparison would prove nothing."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            with torch.no_grad():
                m.weight.copy_(1 + 0.2 * torch.randn(m.num_features, generator=g))
                m.bias.copy_(0.1 * torch.randn(m.num_features, generator=g))
    recalibrate_bn(model, x, batch_size=len(x))
    model.eval()
