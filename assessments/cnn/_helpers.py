"""Machinery shared by the CNN assessments: Fashion-MNIST tensors, a baseline, counts."""
from __future__ import annotations

import re
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


# ResNet-18/34/50 as Hugging Face transformers builds them (an independent implementation).
HF_RESNET_CONFIGS = {
    "resnet18": dict(layer_type="basic", depths=[2, 2, 2, 2], hidden_sizes=[64, 128, 256, 512]),
    "resnet34": dict(layer_type="basic", depths=[3, 4, 6, 3], hidden_sizes=[64, 128, 256, 512]),
    "resnet50": dict(layer_type="bottleneck", depths=[3, 4, 6, 3], hidden_sizes=[256, 512, 1024, 2048]),
}


def hf_resnet_key(key: str) -> str:
    """A ResNetForImageClassification state_dict key -> torchvision's (our) name for it.

    resnet.embedder.embedder.{convolution,normalization} -> conv1 / bn1;
    resnet.encoder.stages.S.layers.B.layer.K.{convolution,normalization} -> layer{S+1}.B.conv{K+1} / bn{K+1};
    ...layers.B.shortcut.{convolution,normalization} -> layer{S+1}.B.downsample.{0,1}; classifier.1 -> fc.
    """
    rules = [(r"^resnet\.embedder\.embedder\.convolution\.", "conv1."),
             (r"^resnet\.embedder\.embedder\.normalization\.", "bn1."),
             (r"^resnet\.encoder\.stages\.(\d+)\.layers\.(\d+)\.shortcut\.convolution\.",
              lambda m: f"layer{int(m[1]) + 1}.{m[2]}.downsample.0."),
             (r"^resnet\.encoder\.stages\.(\d+)\.layers\.(\d+)\.shortcut\.normalization\.",
              lambda m: f"layer{int(m[1]) + 1}.{m[2]}.downsample.1."),
             (r"^resnet\.encoder\.stages\.(\d+)\.layers\.(\d+)\.layer\.(\d+)\.convolution\.",
              lambda m: f"layer{int(m[1]) + 1}.{m[2]}.conv{int(m[3]) + 1}."),
             (r"^resnet\.encoder\.stages\.(\d+)\.layers\.(\d+)\.layer\.(\d+)\.normalization\.",
              lambda m: f"layer{int(m[1]) + 1}.{m[2]}.bn{int(m[3]) + 1}."),
             (r"^classifier\.1\.", "fc.")]
    for pattern, repl in rules:
        new, n = re.subn(pattern, repl, key)
        if n:
            return new
    raise KeyError(f"no torchvision name for Hugging Face ResNet key {key!r}")


def hf_resnet(name: str, num_classes: int = 1000, seed: int = 0) -> torch.nn.Module:
    """transformers' ResNetForImageClassification (v1.5, float64, eval), every tensor drawn here:
    convs He-normal (fan_out), the classifier uniform, and every BatchNorm's affine parameters and
    running statistics random, so that copying each of them matters. (transformers' own init is
    skipped: on 25M parameters it costs seconds, and it leaves the BatchNorms at the identity.)"""
    from transformers import ResNetConfig, ResNetForImageClassification
    from transformers.initialization import no_init_weights

    with no_init_weights():
        model = ResNetForImageClassification(ResNetConfig(
            embedding_size=64, num_labels=num_classes, downsample_in_bottleneck=False, **HF_RESNET_CONFIGS[name]))
    model = model.double().eval()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.Conv2d):
                fan_out = m.out_channels * m.kernel_size[0] * m.kernel_size[1]
                m.weight.normal_(0.0, (2.0 / fan_out) ** 0.5, generator=g)
            elif isinstance(m, torch.nn.Linear):
                bound = m.in_features ** -0.5
                m.weight.uniform_(-bound, bound, generator=g)
                m.bias.uniform_(-bound, bound, generator=g)
            elif isinstance(m, torch.nn.BatchNorm2d):
                n = m.num_features
                m.weight.copy_(0.5 + torch.rand(n, generator=g))
                m.bias.copy_(0.1 * torch.randn(n, generator=g))
                m.running_mean.copy_(0.1 * torch.randn(n, generator=g))
                m.running_var.copy_(0.5 + torch.rand(n, generator=g))
    return model


def pixel_baselines(data: FashionTensors, weight_decay: float, mlp_hidden: int, mlp_epochs: int,
                    lbfgs_iter: int = 100, seed: int = 0) -> dict[str, float]:
    """Test accuracy of two models on raw (standardised) pixels, fitted in the same run:
    multinomial logistic regression (full-batch L-BFGS with L2, float64, to convergence) and an
    MLP (one hidden ReLU layer, AdamW + one-cycle like the CNNs)."""
    from implementations.architectures.cnn.training import accuracy, fit

    X, y = data.X_train.flatten(1).double(), data.y_train
    W = torch.zeros(X.shape[1], 10, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(10, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([W, b], lr=1.0, max_iter=lbfgs_iter, history_size=20, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(X @ W + b, y) + weight_decay * (W * W).sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        logreg = float(((data.X_test.flatten(1).double() @ W + b).argmax(1) == data.y_test).double().mean())
    torch.manual_seed(seed)
    mlp = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(X.shape[1], mlp_hidden), torch.nn.ReLU(),
                              torch.nn.Linear(mlp_hidden, 10))
    fit(mlp, data.X_train, data.y_train, epochs=mlp_epochs, batch_size=128, lr=1e-3, weight_decay=1e-4, seed=seed)
    return {"logistic regression": logreg, "MLP": accuracy(mlp, data.X_test, data.y_test)}
