"""Export a Keras classifier in TensorFlow Serving's layout.

    <base_path>/<model_name>/<version>/saved_model.pb
                                      /variables/variables.{index,data-*}

with one `serving_default` signature: input `images` (None, H, W) float32 -> outputs
`probabilities` (None, num_classes) float32 (softmax of the logits) and `class_ids` (None,) int64.
Written with `keras.export.ExportArchive`, so the SavedModel holds the traced graph and the
weights, and TF Serving (or `tf.saved_model.load`) needs no Python code of ours.
"""
from __future__ import annotations

from pathlib import Path

import keras

__all__ = ["export_for_serving", "SIGNATURE", "INPUT_NAME", "OUTPUT_NAMES"]

SIGNATURE = "serving_default"
INPUT_NAME = "images"
OUTPUT_NAMES = ("probabilities", "class_ids")


def export_for_serving(model: keras.Model, base_path: str | Path, model_name: str, version: int) -> Path:
    """Write `model` as version `version` of `model_name` under `base_path`; returns the version dir.

    The model maps images (N, H, W) to logits (N, C). An existing version directory is an error:
    TF Serving treats a version as immutable once written.
    """
    import tensorflow as tf

    if not isinstance(version, int) or version <= 0:
        raise ValueError(f"version must be a positive int (TF Serving's directory name), got {version!r}")
    if not model_name or "/" in model_name or ":" in model_name:
        raise ValueError(f"model_name must be a non-empty name without '/' or ':', got {model_name!r}")
    out = Path(base_path) / model_name / str(version)
    if out.exists():
        raise FileExistsError(f"{out} exists: TF Serving versions are immutable, export a new version number")
    shape = tuple(model.inputs[0].shape) if getattr(model, "inputs", None) else None
    if shape is None or len(shape) != 3:
        raise ValueError(f"expected a model with inputs (N, H, W), got {shape}")

    def serve(images):
        logits = model(images, training=False)
        return {OUTPUT_NAMES[0]: keras.ops.softmax(logits, axis=-1),
                OUTPUT_NAMES[1]: keras.ops.cast(keras.ops.argmax(logits, axis=-1), "int64")}

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(SIGNATURE, serve, input_signature=[tf.TensorSpec((None, *shape[1:]), tf.float32,
                                                                           name=INPUT_NAME)])
    archive.write_out(str(out), verbose=False)
    return out
