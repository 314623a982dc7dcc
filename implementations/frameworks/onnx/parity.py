"""Output parity between a source model and its conversion, in the style of optimum's export check.

For every output: the max absolute difference, and the relative difference as that maximum divided
by the largest reference magnitude (elementwise |a - b| / |a| is meaningless where a logit is ~0).
NaN or inf anywhere fails loudly instead of comparing as "not greater than the tolerance".
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np

__all__ = ["output_diffs", "within_tolerance"]


def output_diffs(reference: Mapping[str, np.ndarray], candidate: Mapping[str, np.ndarray]) -> list[dict]:
    """One row per output name of `reference`: shape, max_abs, max_rel (see module docstring)."""
    rows = []
    for name, ref in reference.items():
        if name not in candidate:
            raise KeyError(f"candidate lacks output {name!r}; it has {sorted(candidate)}")
        ref = np.asarray(ref, dtype=np.float64)
        got = np.asarray(candidate[name], dtype=np.float64)
        if ref.shape != got.shape:
            raise ValueError(f"output {name!r}: reference shape {ref.shape}, candidate {got.shape}")
        for label, arr in (("reference", ref), ("candidate", got)):
            if not np.all(np.isfinite(arr)):
                raise ValueError(f"output {name!r}: the {label} holds NaN or inf")
        max_abs = float(np.max(np.abs(ref - got))) if ref.size else 0.0
        scale = float(np.max(np.abs(ref))) if ref.size else 0.0
        rows.append({"output": name, "shape": list(ref.shape), "max_abs": max_abs,
                     "max_rel": max_abs / max(scale, 1e-12)})
    return rows


def within_tolerance(rows: list[dict], atol: float, rtol: float) -> bool:
    """Every row's max_abs <= atol and max_rel <= rtol."""
    return all(r["max_abs"] <= atol and r["max_rel"] <= rtol for r in rows)
