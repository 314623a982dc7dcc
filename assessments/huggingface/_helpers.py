"""Shared machinery of the ONNX assessments: optimum-style parity records and artifact checks."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from implementations.frameworks.onnx.parity import output_diffs, within_tolerance


def parity_rows(reference: dict[str, np.ndarray], candidate: dict[str, np.ndarray], **case) -> list[dict]:
    """output_diffs rows with the case (batch size, sequence length, ...) prepended to each."""
    return [{**case, **row} for row in output_diffs(reference, candidate)]


def record_parity(evidence, model: str, rows: list[dict], tol: dict, exporter: str, opset: int | None) -> float:
    """Record the per-case table, the model's tolerance row (with its reason) and the worst
    difference as the key metric; returns the worst max_abs. Asserts every row is in tolerance."""
    worst_abs = max(r["max_abs"] for r in rows)
    worst_rel = max(r["max_rel"] for r in rows)
    evidence.table(f"{model}_parity", rows)
    evidence.table("tolerance", [{"model": model, "exporter": exporter, "opset": opset, "atol": tol["atol"],
                                  "rtol": tol["rtol"], "max_abs": worst_abs, "max_rel": worst_rel,
                                  "reason": tol["reason"]}])
    evidence.metric(f"{model}_max_abs_diff", worst_abs, threshold=tol["atol"], direction="lower", key=True)
    evidence.metric(f"{model}_max_rel_diff", worst_rel, threshold=tol["rtol"], direction="lower")
    bad = [r for r in rows if not within_tolerance([r], tol["atol"], tol["rtol"])]
    assert not bad, f"{model}: outside atol {tol['atol']} / rtol {tol['rtol']}: {bad}"
    return worst_abs


def read_sidecar(onnx_path: Path) -> dict:
    """The sidecar JSON beside an exported model, checked against the ONNX file it describes."""
    sidecar = json.loads(onnx_path.with_suffix(".json").read_text())
    assert sidecar["file"] == onnx_path.name and onnx_path.stat().st_size > 0
    return sidecar


def dims(sidecar: dict, kind: str = "inputs") -> dict[str, list]:
    """{input name: shape} from a sidecar (dynamic axes by name)."""
    return {v["name"]: v["shape"] for v in sidecar[kind]}
