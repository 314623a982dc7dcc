"""PyTorch ``Dataset`` classes, transforms and a padding collate for the offline data.

The only module of ``implementations.data`` that imports torch. It loads nothing itself:
wrap the arrays the loaders return (``images.load_mnist_5k``, ``ner.load_wnut16`` with
``ner.Vocab``...). torchvision has no CPU build here, so the few transforms needed are
small callables with torchvision's names and semantics.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

__all__ = ["ArrayDataset", "ImageDataset", "SequenceDataset", "ToTensor", "Normalize",
           "RandomShift", "Compose", "pad_collate"]


class ToTensor:
    """uint8 image (H, W) or (H, W, C) -> float32 tensor (C, H, W) in [0, 1] (x / 255)."""

    def __call__(self, img: np.ndarray | torch.Tensor) -> torch.Tensor:
        t = torch.as_tensor(np.asarray(img))
        if t.ndim == 2:
            t = t.unsqueeze(-1)
        if t.ndim != 3:
            raise ValueError(f"expected (H, W) or (H, W, C), got shape {tuple(t.shape)}")
        t = t.permute(2, 0, 1).contiguous()
        return t.float().div_(255.0) if t.dtype == torch.uint8 else t.float()


class Normalize:
    """Per-channel ``(x - mean[c]) / std[c]`` on a (C, H, W) float tensor."""

    def __init__(self, mean: Sequence[float] | float, std: Sequence[float] | float) -> None:
        self.mean = torch.as_tensor(mean, dtype=torch.float32).reshape(-1, 1, 1)
        self.std = torch.as_tensor(std, dtype=torch.float32).reshape(-1, 1, 1)
        if (self.std <= 0).any():
            raise ValueError("std must be positive")

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)


class RandomShift:
    """Translate a (C, H, W) tensor by integer (dy, dx) in ``[-max_shift, max_shift]``,
    filling with ``fill``; draws from its own ``torch.Generator(seed)``, so a fresh
    instance replays the same shifts (with DataLoader workers, each worker gets a copy)."""

    def __init__(self, max_shift: int = 2, seed: int = 0, fill: float = 0.0) -> None:
        if max_shift < 0:
            raise ValueError("max_shift must be >= 0")
        self.max_shift, self.fill = max_shift, fill
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        m = self.max_shift
        dy, dx = (torch.randint(-m, m + 1, (2,), generator=self.generator)).tolist()
        out = torch.full_like(x, self.fill)
        H, W = x.shape[-2:]
        ys, yd = (slice(0, H - dy), slice(dy, H)) if dy >= 0 else (slice(-dy, H), slice(0, H + dy))
        xs, xd = (slice(0, W - dx), slice(dx, W)) if dx >= 0 else (slice(-dx, W), slice(0, W + dx))
        out[..., yd, xd] = x[..., ys, xs]
        return out


class Compose:
    """Apply transforms in order."""

    def __init__(self, transforms: Sequence[Callable[[Any], Any]]) -> None:
        self.transforms = list(transforms)

    def __call__(self, x: Any) -> Any:
        for t in self.transforms:
            x = t(x)
        return x


class ArrayDataset(Dataset):
    """Rows of ``X`` (N, ...) as float32 tensors with int64 labels ``y`` (N,).
    ``transform`` (optional) is applied to the row tensor."""

    def __init__(self, X: np.ndarray, y: np.ndarray,
                 transform: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        if len(X) != len(y):
            raise ValueError(f"X has {len(X)} rows but y has {len(y)}")
        self.X = torch.as_tensor(np.asarray(X), dtype=torch.float32)
        self.y = torch.as_tensor(np.asarray(y), dtype=torch.int64)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.X[i]
        return (self.transform(x) if self.transform else x), self.y[i]


class ImageDataset(Dataset):
    """uint8 images (N, H, W) or (N, H, W, C) with labels (N,); items are
    ``(image (C, H, W) float32, label int64 scalar tensor)``. ``transform`` receives the
    uint8 (H, W[, C]) array and must return a tensor; default :class:`ToTensor`."""

    def __init__(self, images: np.ndarray, labels: np.ndarray,
                 transform: Callable[[np.ndarray], torch.Tensor] | None = None) -> None:
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        if images.ndim not in (3, 4):
            raise ValueError(f"images must be (N, H, W) or (N, H, W, C), got {images.shape}")
        self.images = np.asarray(images)
        self.labels = torch.as_tensor(np.asarray(labels), dtype=torch.int64)
        self.transform = transform if transform is not None else ToTensor()

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.transform(self.images[i]), self.labels[i]


class SequenceDataset(Dataset):
    """Variable-length id sequences with a target each: a scalar label, or a per-token
    tag id list of the same length. Items are ``(LongTensor (T_i,), target)``, target a
    0-dim int64 tensor or a LongTensor (T_i,). Batch them with :func:`pad_collate`."""

    def __init__(self, sequences: Sequence[Sequence[int]],
                 targets: Sequence[int] | Sequence[Sequence[int]]) -> None:
        if len(sequences) != len(targets):
            raise ValueError(f"{len(sequences)} sequences but {len(targets)} targets")
        self.sequences = [torch.as_tensor(list(s), dtype=torch.int64) for s in sequences]
        self.targets = [torch.as_tensor(t if np.ndim(t) == 0 else list(t), dtype=torch.int64)
                        for t in targets]
        for i, (s, t) in enumerate(zip(self.sequences, self.targets)):
            if t.ndim == 1 and len(t) != len(s):
                raise ValueError(f"item {i}: {len(s)} tokens but {len(t)} tags")

    def __len__(self) -> int:
        return len(self.sequences)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.sequences[i], self.targets[i]


def pad_collate(batch: Sequence[tuple[Any, Any]], padding_value: int = 0,
                label_padding_value: int = -100
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Collate ``(sequence, target)`` pairs of different lengths.

    Returns ``padded`` LongTensor (B, T_max) filled with ``padding_value`` after each
    sequence (0 = ``ner.Vocab``'s ``<pad>``), ``lengths`` LongTensor (B,), and targets:
    a (B,) tensor when each target is a scalar, or a LongTensor (B, T_max) of per-token
    tags filled with ``label_padding_value`` (-100, ``CrossEntropyLoss``'s ignore_index)
    at padded positions. Order is kept (no sort by length): pass ``lengths`` to
    ``pack_padded_sequence(..., enforce_sorted=False)``.
    """
    if len(batch) == 0:
        raise ValueError("empty batch")
    seqs = [torch.as_tensor(s, dtype=torch.int64).reshape(-1) for s, _ in batch]
    lengths = torch.tensor([len(s) for s in seqs], dtype=torch.int64)
    T = int(lengths.max())
    padded = torch.full((len(seqs), T), padding_value, dtype=torch.int64)
    for i, s in enumerate(seqs):
        padded[i, : len(s)] = s
    targets = [torch.as_tensor(t) for _, t in batch]
    if all(t.ndim == 0 for t in targets):
        return padded, lengths, torch.stack(targets)
    tags = torch.full((len(seqs), T), label_padding_value, dtype=torch.int64)
    for i, t in enumerate(targets):
        if t.ndim != 1 or len(t) != len(seqs[i]):
            raise ValueError(f"item {i}: target must be a scalar or {len(seqs[i])} tags, "
                             f"got shape {tuple(t.shape)}")
        tags[i, : len(t)] = t
    return padded, lengths, tags
