"""ONNX -> another framework, so a model trained in one framework runs in another.

- `onnx_to_tensorflow`: onnx2tf rewrites the ONNX graph as TensorFlow ops and returns a tf_keras
  model (it also writes a SavedModel to `output_dir`). `keep_nchw` keeps named inputs in the
  PyTorch layout, so the TF model takes exactly the arrays the ONNX model takes.
- `onnx_to_torch`: onnx2torch builds a torch.fx module from the ONNX graph. Here it cannot run: it
  imports torchvision when imported (for its NMS/RoIAlign converters), and torchvision has no
  working CPU build in this environment; the ImportError is raised as it comes, not hidden.
"""
from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path

import numpy as np

__all__ = ["onnx_to_tensorflow", "onnx_to_torch", "run_tensorflow"]


def onnx_to_tensorflow(path: str | Path, output_dir: str | Path, keep_nchw: list[str] | None = None):
    """onnx2tf.convert(path) -> tf_keras model; input layout kept for the names in `keep_nchw`."""
    import onnx2tf

    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    cwd = os.getcwd()
    try:  # onnx2tf drops helper files into the working directory
        os.chdir(output_dir)
        with contextlib.redirect_stdout(io.StringIO()):
            return onnx2tf.convert(input_onnx_file_path=str(Path(path).resolve()),
                                   output_folder_path=str(output_dir / "saved_model"), non_verbose=True,
                                   keep_ncw_or_nchw_or_ncdhw_input_names=keep_nchw or [])
    finally:
        os.chdir(cwd)


def run_tensorflow(model, x: np.ndarray) -> np.ndarray:
    """Call a converted tf_keras model on one input array -> float32 NumPy output."""
    out = model(x, training=False)
    if isinstance(out, dict):
        (out,) = out.values()
    if isinstance(out, (list, tuple)):
        (out,) = out
    return np.asarray(out)


def onnx_to_torch(path: str | Path):
    """onnx2torch.convert(path) -> torch.fx.GraphModule (raises ImportError where torchvision is absent)."""
    import onnx2torch

    return onnx2torch.convert(str(path))
