"""The 1000 ImageNet-1k class names, read from the committed fixtures/imagenet_classes.txt.

No installed package ships them offline (Keras downloads its index on first use), so the
file is committed with its provenance in its header and checked here against a SHA-256.
"""
from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path

import torch
from torch import Tensor

__all__ = ["IMAGENET_CLASSES_PATH", "imagenet_classes", "top_k"]

IMAGENET_CLASSES_PATH = Path(__file__).resolve().parents[3] / "fixtures" / "imagenet_classes.txt"
_SHA256 = "202783de9ab7853bbbabd3f5d185cd9cac8493477b06e53c5c6c0fb0ceb1ebfb"


@functools.lru_cache(maxsize=2)
def _read(path: str) -> tuple[str, ...]:
    raw = Path(path).read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    if path == str(IMAGENET_CLASSES_PATH) and digest != _SHA256:
        raise ValueError(f"{path}: checksum {digest} differs from the committed file's {_SHA256}")
    names = []
    for line in raw.decode("utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        index, _, name = line.partition(", ")
        if not index.isdigit() or int(index) != len(names) or not name:
            raise ValueError(f"{path}: expected '{len(names)}, <name>', got {line!r}")
        names.append(name.replace("_", " "))
    if len(names) != 1000:
        raise ValueError(f"{path}: expected 1000 classes, found {len(names)}")
    return tuple(names)


def imagenet_classes(path: str | os.PathLike[str] | None = None) -> list[str]:
    """The 1000 class names in logit order ("tench", "goldfish", ..., "toilet tissue")."""
    return list(_read(str(path or IMAGENET_CLASSES_PATH)))


def top_k(logits: Tensor, k: int = 5) -> list[list[tuple[str, float]]]:
    """logits (N, 1000) -> per image the k (class name, softmax probability) pairs, best first."""
    if logits.ndim != 2 or logits.shape[1] != 1000:
        raise ValueError(f"expected ImageNet logits (N, 1000), got {tuple(logits.shape)}")
    if not 1 <= k <= 1000:
        raise ValueError(f"k must be in 1..1000, got {k}")
    names = imagenet_classes()
    probs, idx = torch.softmax(logits.detach().float(), dim=1).topk(k, dim=1)
    return [[(names[i], float(p)) for p, i in zip(ps.tolist(), ids.tolist())]
            for ps, ids in zip(probs, idx)]
