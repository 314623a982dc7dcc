"""Benchmarks: pytest-benchmark's JSON, as ratios of each candidate against its reference.

The convention a benchmark test follows:

    def test_conv_im2col(benchmark):
        benchmark.group = "conv2d 32x32"                   # what is compared with what
        benchmark.extra_info["role"] = "candidate"         # or "reference" (e.g. torch)
        benchmark.extra_info["target_ratio"] = 3.0         # optional: candidate <= 3x reference
        benchmark(conv2d, x, w)

In each group, ratio = candidate median / reference median for every candidate (> 1: slower
than the reference; the median, because a 2-core machine's stray load inflates means); a target is met when ratio <= target. `target_ratio` may be set on the
reference instead, for every candidate of its group. A group with several references uses the
first by name (and says so); a group without one lists its medians without ratios; a benchmark
with no role is listed with its median only. Times are shown in milliseconds.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

NO_GROUP = "(no group)"


@dataclass
class Bench:
    name: str
    fullname: str
    group: str
    role: str  # "reference", "candidate" or ""
    mean: float  # seconds
    stddev: float = 0.0
    median: float = 0.0
    min: float = 0.0
    max: float = 0.0
    rounds: int = 0
    target_ratio: float | None = None
    extra_info: dict[str, Any] = field(default_factory=dict)

    @property
    def mean_ms(self) -> float:
        return self.mean * 1e3

    @property
    def median_ms(self) -> float:
        return self.median * 1e3

    @property
    def stddev_ms(self) -> float:
        return self.stddev * 1e3


@dataclass
class Comparison:
    """One line of the benchmark table: a benchmark and, when its group has one, its reference."""
    group: str
    bench: Bench
    reference: Bench | None = None
    target: float | None = None

    @property
    def ratio(self) -> float | None:
        if self.reference is None or self.bench.role != "candidate" or not self.reference.median > 0:
            return None
        return self.bench.median / self.reference.median

    @property
    def met(self) -> bool | None:
        ratio = self.ratio
        return None if ratio is None or self.target is None else ratio <= self.target


@dataclass
class Group:
    name: str
    reference: Bench | None
    rows: list[Comparison]
    notes: list[str] = field(default_factory=list)

    @property
    def ratios(self) -> list[Comparison]:
        return [c for c in self.rows if c.ratio is not None]


def _float(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def load_benchmarks(path: Path) -> list[Bench] | None:
    """The benchmarks of a pytest-benchmark JSON file; None when there is no such file."""
    path = Path(path)
    if not path.exists():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    benches = []
    for b in data.get("benchmarks", []):
        stats = b.get("stats", {})
        extra = b.get("extra_info") or {}
        role = str(extra.get("role", "")).lower()
        benches.append(Bench(
            name=b.get("name", "?"), fullname=b.get("fullname", b.get("name", "?")),
            group=b.get("group") or NO_GROUP, role=role if role in ("reference", "candidate") else "",
            mean=float(stats.get("mean", math.nan)), stddev=float(stats.get("stddev", 0.0)),
            median=float(stats.get("median", stats.get("mean", 0.0))), min=float(stats.get("min", 0.0)),
            max=float(stats.get("max", 0.0)), rounds=int(stats.get("rounds", 0)),
            target_ratio=_float(extra.get("target_ratio")), extra_info=extra))
    return benches


def compare(benches: list[Bench]) -> list[Group]:
    """The benchmarks grouped (by group name), each candidate set against its reference."""
    by_group: dict[str, list[Bench]] = {}
    for b in benches:
        by_group.setdefault(b.group, []).append(b)
    groups = []
    for name in sorted(by_group):
        members = sorted(by_group[name], key=lambda b: b.name)
        refs = [b for b in members if b.role == "reference"]
        ref = refs[0] if refs else None
        notes = []
        if len(refs) > 1:
            notes.append(f"{len(refs)} references; ratios use {ref.name}")  # type: ignore[union-attr]
        candidates = [b for b in members if b.role == "candidate"]
        others = [b for b in members if b.role == ""]
        if ref is None and candidates:
            notes.append("no reference in this group: medians only")
        rows = [Comparison(name, c, ref, c.target_ratio if c.target_ratio is not None
                           else (ref.target_ratio if ref else None)) for c in candidates]
        if ref is not None and not candidates:
            rows.append(Comparison(name, ref))
        rows += [Comparison(name, b) for b in others]
        groups.append(Group(name, ref, rows, notes))
    return groups


def plot_ratios(groups: list[Group], path: Path) -> Path | None:
    """A horizontal bar per candidate (its ratio), a line at 1.0 and a marker at each target.

    Saved as PNG at `path`; None (and nothing written) when no group has a ratio.
    """
    from matplotlib.figure import Figure  # no pyplot: no backend or global state involved

    rows = [c for g in groups for c in g.ratios]
    if not rows:
        return None
    labels = [f"{c.group}: {c.bench.name}" for c in rows]
    ratios = [float(c.ratio) for c in rows]  # type: ignore[arg-type]
    colors = ["#3b873e" if c.met else "#c0392b" if c.met is False else "#5b7db1" for c in rows]
    fig = Figure(figsize=(8, 1.2 + 0.45 * len(rows)), layout="constrained")
    ax = fig.add_subplot()
    y = list(range(len(rows)))[::-1]
    ax.barh(y, ratios, color=colors, height=0.6)
    ax.axvline(1.0, color="black", linestyle="--", linewidth=1, label="reference (1.0)")
    targets = [(yi, c.target) for yi, c in zip(y, rows) if c.target is not None]
    if targets:
        ax.scatter([t for _, t in targets], [yi for yi, _ in targets], marker="D", color="black",
                   zorder=3, label="target")
    values = ratios + [t for _, t in targets] + [1.0]
    if min(values) > 0 and max(values) / min(values) > 30:
        ax.set_xscale("log")
        ax.set_xlim(right=max(values) * 2)
    else:
        ax.set_xlim(0, max(values) * 1.15)
    for yi, r in zip(y, ratios):
        ax.annotate(f"{r:.3g}x", (r, yi), xytext=(4, 0), textcoords="offset points", va="center",
                    fontsize=8)
    ax.set_yticks(y, labels, fontsize=8)
    ax.set_xlabel("candidate median / reference median (lower is faster)")
    fig.legend(loc="outside lower center", ncols=2, fontsize=8, frameon=False)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    return path
