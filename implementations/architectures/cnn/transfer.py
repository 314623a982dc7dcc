"""Transfer learning from ImageNet EfficientNet-Lite0 to a small labelled image set.

Three ways to use the same architecture on few labels, compared at the same budget:
- linear probe: the pretrained backbone frozen, its pooled 1280-d features cached once, a
  multinomial logistic regression on them (scikit-learn, deterministic L-BFGS);
- fine-tune: pretrained backbone + a new linear head, every weight trained;
- scratch: the same network from random init, trained exactly like the fine-tuned one.
Both trained variants recompute their BatchNorm statistics after each epoch ("precise BN"):
without it the scratch network collapses to one class in eval mode after so few steps.
Grayscale inputs are replicated to RGB and resized, then given the Lite normalisation.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from torch import Tensor, nn

from .efficientnet import LITE_MEAN, LITE_STD, EfficientNet, efficientnet_lite0, lite0_pretrained
from .training import History, accuracy, fit

__all__ = ["to_lite_input", "extract_features", "linear_probe", "fine_tuned", "scratch",
           "set_bn_momentum", "TransferResult"]


def to_lite_input(images: np.ndarray, size: int) -> Tensor:
    """uint8 grayscale (N, H, W) -> Lite input (N, 3, size, size): bilinear resize
    (antialiased), channel replicated, (x - 127) / 128 on the 0..255 scale."""
    images = np.asarray(images)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ValueError(f"expected uint8 grayscale images (N, H, W), got {images.dtype} {images.shape}")
    if size < 32:
        raise ValueError(f"size must be >= 32 (five stride-2 stages), got {size}")
    x = torch.from_numpy(images.astype(np.float32)).unsqueeze(1)
    x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return ((x - LITE_MEAN) / LITE_STD).expand(-1, 3, -1, -1).contiguous()


@torch.no_grad()
def extract_features(backbone: EfficientNet, X: Tensor, batch_size: int = 256) -> np.ndarray:
    """Pooled features (N, last_channel) of the frozen backbone in eval mode, float64."""
    backbone.eval()
    return torch.cat([backbone.forward_features(X[i:i + batch_size])
                      for i in range(0, len(X), batch_size)]).double().numpy()


@dataclass
class TransferResult:
    """Held-out accuracy of one variant, its training history (empty for the probe) and the
    number of trainable parameters it used."""

    name: str
    test_accuracy: float
    history: History
    trainable_params: int


def linear_probe(X_train: Tensor, y_train: Tensor, X_test: Tensor, y_test: Tensor,
                 C: float = 1.0, max_iter: int = 1000,
                 backbone: EfficientNet | None = None) -> TransferResult:
    """Frozen pretrained features (cached once per call) + standardised logistic regression."""
    backbone = lite0_pretrained() if backbone is None else backbone
    f_train, f_test = extract_features(backbone, X_train), extract_features(backbone, X_test)
    scaler = StandardScaler().fit(f_train)
    clf = LogisticRegression(C=C, max_iter=max_iter)
    clf.fit(scaler.transform(f_train), y_train.numpy())
    acc = float(np.mean(clf.predict(scaler.transform(f_test)) == y_test.numpy()))
    return TransferResult("linear probe (frozen)", acc, History(), int(clf.coef_.size + clf.intercept_.size))


def set_bn_momentum(model: nn.Module, momentum: float) -> None:
    """Lite's TF-style momentum (0.01) would leave the running statistics near their starting
    values after a few hundred steps; both trained variants use the same, faster one."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = momentum


def _train(name: str, model: EfficientNet, X_train: Tensor, y_train: Tensor, X_test: Tensor,
           y_test: Tensor, seed: int, bn_momentum: float, **fit_kwargs) -> TransferResult:
    set_bn_momentum(model, bn_momentum)
    fit_kwargs.setdefault("precise_bn", True)
    hist = fit(model, X_train, y_train, seed=seed, X_val=X_test, y_val=y_test, **fit_kwargs)
    n = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return TransferResult(name, accuracy(model, X_test, y_test, batch_size=256), hist, n)


def fine_tuned(X_train: Tensor, y_train: Tensor, X_test: Tensor, y_test: Tensor,
               num_classes: int, seed: int = 0, bn_momentum: float = 0.1,
               **fit_kwargs) -> TransferResult:
    """Pretrained Lite0 with a fresh `num_classes` head, every weight trained by `fit`."""
    torch.manual_seed(seed)
    model = lite0_pretrained()
    model.classifier[1] = nn.Linear(model.last_channel, num_classes)
    return _train("fine-tuned (pretrained)", model, X_train, y_train, X_test, y_test, seed,
                  bn_momentum, **fit_kwargs)


def scratch(X_train: Tensor, y_train: Tensor, X_test: Tensor, y_test: Tensor,
            num_classes: int, seed: int = 0, bn_momentum: float = 0.1,
            **fit_kwargs) -> TransferResult:
    """Lite0 from random init (torchvision-style init), trained exactly like `fine_tuned`."""
    torch.manual_seed(seed)
    model = efficientnet_lite0(num_classes=num_classes)
    return _train("from scratch", model, X_train, y_train, X_test, y_test, seed, bn_momentum,
                  **fit_kwargs)
