"""Export models to ONNX and describe what was exported.

- `export_torch`: `torch.onnx.export` with either exporter: "dynamo" (torch.export -> ONNX via
  onnxscript, `dynamic_shapes` built from named axes) or "legacy" (TorchScript tracing,
  `dynamic_axes`). Inputs are passed by name (keyword arguments), so one call serves BERT
  (input_ids, attention_mask, token_type_ids) and a CNN (x).
- `export_keras`: tf2onnx's `from_keras` for a Keras 3 functional model (TensorFlow backend).
- `describe` + `write_sidecar`: `<name>.json` beside `<name>.onnx` with the source framework, the
  exporter, the opset, and every input's and output's name, dtype and shape as read back from the
  ONNX graph (a dynamic axis is its name, e.g. ["batch", "sequence"]; a fixed one its size).
- `check`: `onnx.checker.check_model(full_check=True)` (also runs shape inference strictly).
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import onnx

__all__ = ["export_torch", "export_keras", "check", "describe", "write_sidecar", "run_onnx"]

EXPORTERS = ("dynamo", "legacy")


def export_torch(model, inputs: Mapping, path: str | Path, exporter: str, output_names: list[str],
                 dynamic_axes: Mapping[str, Mapping[int, str]], opset: int = 18) -> Path:
    """Export `model(**inputs)` (eval mode) to `path`. `dynamic_axes`: {input or output name:
    {axis: axis name}}; inputs sharing an axis name share one dynamic dimension."""
    import torch

    if exporter not in EXPORTERS:
        raise ValueError(f"exporter must be one of {EXPORTERS}, got {exporter!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model.eval()
    inputs = dict(inputs)
    if exporter == "legacy":
        torch.onnx.export(model, (), str(path), kwargs=inputs, dynamo=False, input_names=list(inputs),
                          output_names=output_names, dynamic_axes={k: dict(v) for k, v in dynamic_axes.items()},
                          opset_version=opset)
        return path
    dims: dict[str, torch.export.Dim] = {}
    shapes = {}
    for name in inputs:
        axes = dynamic_axes.get(name, {})
        shapes[name] = {axis: dims.setdefault(label, torch.export.Dim(label)) for axis, label in axes.items()}
    program = torch.onnx.export(model, (), kwargs=inputs, dynamo=True, input_names=list(inputs),
                                output_names=output_names, dynamic_shapes=shapes, opset_version=opset,
                                verbose=False)
    program.save(str(path))
    return path


def export_keras(model, path: str | Path, opset: int = 17) -> Path:
    """tf2onnx.convert.from_keras for a functional Keras model; the batch axis is named "batch"."""
    import tensorflow as tf
    import tf2onnx

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    spec = [tf.TensorSpec((None, *t.shape[1:]), t.dtype, name=t.name.split(":")[0]) for t in model.inputs]
    proto, _ = tf2onnx.convert.from_keras(model, input_signature=spec, opset=opset)
    for value in list(proto.graph.input) + list(proto.graph.output):  # tf2onnx names it "unk__N"
        dim = value.type.tensor_type.shape.dim[0]
        if dim.dim_param or not dim.dim_value:
            dim.dim_param = "batch"
    onnx.save(proto, str(path))
    return path


def check(path: str | Path) -> onnx.ModelProto:
    """Load and validate the model (full_check: strict shape inference too); returns it."""
    onnx.checker.check_model(str(path), full_check=True)
    return onnx.load(str(path))


def _values(values) -> list[dict]:
    out = []
    for v in values:
        t = v.type.tensor_type
        shape = [d.dim_param if d.dim_param else int(d.dim_value) for d in t.shape.dim]
        out.append({"name": v.name, "dtype": onnx.helper.tensor_dtype_to_np_dtype(t.elem_type).name,
                    "shape": shape})
    return out


def describe(path: str | Path, source_framework: str, exporter: str, **extra) -> dict:
    """What the sidecar says: framework, exporter, opset, inputs/outputs read from the graph."""
    model = onnx.load(str(path), load_external_data=False)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    return {"name": Path(path).stem, "file": Path(path).name, "source_framework": source_framework,
            "exporter": exporter, "opset": opset, "producer": f"{model.producer_name} {model.producer_version}",
            "inputs": _values(model.graph.input), "outputs": _values(model.graph.output), **extra}


def write_sidecar(path: str | Path, source_framework: str, exporter: str, **extra) -> Path:
    """Write `<name>.json` beside `<name>.onnx`; returns its path."""
    path = Path(path)
    sidecar = path.with_suffix(".json")
    sidecar.write_text(json.dumps(describe(path, source_framework, exporter, **extra), indent=1))
    return sidecar


def run_onnx(session_or_path, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Run an ONNX Runtime session (or a path, on the CPU) -> {output name: array}."""
    import onnxruntime as ort

    sess = session_or_path
    if not isinstance(sess, ort.InferenceSession):
        sess = ort.InferenceSession(str(session_or_path), providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    wanted = {i.name for i in sess.get_inputs()}
    missing = wanted - set(feeds)
    if missing:
        raise ValueError(f"missing inputs {sorted(missing)}; the model takes {sorted(wanted)}")
    return dict(zip(names, sess.run(names, {k: v for k, v in feeds.items() if k in wanted})))
