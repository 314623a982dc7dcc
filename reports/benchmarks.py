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
    iqr: float = 0.0

    @property
    def area(self) -> str:
        """The assessment area of the benchmark's test file (assessments/<area>/...), else "other"."""
        parts = self.fullname.split("::")[0].split("/")
        return parts[1] if len(parts) > 2 and parts[0] == "assessments" else "other"

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

    @property
    def area(self) -> str:
        first = self.reference or (self.rows[0].bench if self.rows else None)
        return first.area if first else "other"


def by_area(groups: list[Group]) -> dict[str, list[Group]]:
    """The groups under their area, areas in name order."""
    areas: dict[str, list[Group]] = {}
    for g in groups:
        areas.setdefault(g.area, []).append(g)
    return dict(sorted(areas.items()))


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
            target_ratio=_float(extra.get("target_ratio")), extra_info=extra,
            iqr=float(stats.get("iqr", 0.0) or 0.0)))
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


def plot_ratios(groups: list[Group], path: Path, baseline: dict[str, float] | None = None) -> Path | None:
    """`ratio_figure` saved as PNG at `path` (whole: axis label, tick labels and legend inside);
    None, and nothing written, when no group has a ratio."""
    fig = ratio_figure(groups, baseline)
    if fig is None:
        return None
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, bbox_inches="tight", pad_inches=0.15)
    return path


def ratio_figure(groups: list[Group], baseline: dict[str, float] | None = None) -> Any:
    """A horizontal bar per candidate (its ratio), grouped by area, a line at 1.0, a diamond at each
    target and, when `baseline` ("group::candidate" -> ratio) is given, a tick at the baseline ratio.

    The value labels stand in their own column right of the axes, so they never cover a marker.
    A matplotlib Figure; None when no group has a ratio.
    """
    from matplotlib.figure import Figure  # no pyplot: no backend or global state involved
    from matplotlib.transforms import blended_transform_factory

    rows = [c for area in by_area(groups).values() for g in area for c in g.ratios]
    if not rows:
        return None
    baseline = baseline or {}
    labels = [f"{c.group}: {c.bench.name}" for c in rows]
    ratios = [float(c.ratio) for c in rows]  # type: ignore[arg-type]
    olds = [baseline.get(f"{c.group}::{c.bench.name}") for c in rows]
    colors = ["#3b873e" if c.met else "#c0392b" if c.met is False else "#5b7db1" for c in rows]
    fig = Figure(figsize=(9, 1.6 + 0.42 * len(rows)), layout="constrained")
    ax = fig.add_subplot()
    y = list(range(len(rows)))[::-1]
    ax.barh(y, ratios, color=colors, height=0.6)
    ax.axvline(1.0, color="black", linestyle="--", linewidth=1, label="reference (1.0)")
    targets = [(yi, c.target) for yi, c in zip(y, rows) if c.target is not None]
    if targets:
        ax.scatter([t for _, t in targets], [yi for yi, _ in targets], marker="D", s=28, color="black",
                   zorder=3, label="target")
    marks = [(yi, o) for yi, o in zip(y, olds) if o is not None]
    if marks:
        ax.scatter([o for _, o in marks], [yi for yi, _ in marks], marker="|", s=260, linewidths=2,
                   color="#8e44ad", zorder=4, label="baseline")
    values = ratios + [t for _, t in targets] + [o for _, o in marks] + [1.0]
    log = min(values) > 0 and max(values) / min(values) > 30
    # value labels in their own column right of the axes: they can never cover a bar, a target or a tick
    column = blended_transform_factory(ax.transAxes, ax.transData)
    for yi, r in zip(y, ratios):
        ax.text(1.02, yi, f"{r:.3g}x", transform=column, va="center", fontsize=8)
    ax.text(1.02, len(rows) - 0.45, "ratio", transform=column, va="bottom", fontsize=8, fontweight="bold")
    if log:
        ax.set_xscale("log")
        ax.set_xlim(min(values) / 1.5, max(values) * 3)
    else:
        ax.set_xlim(0, max(values) * 1.12)
    # a separator and a label between areas
    areas = [c.bench.area for c in rows]
    for i in range(1, len(rows)):
        if areas[i] != areas[i - 1]:
            ax.axhline(y[i] + 0.5, color="#999", linewidth=0.8)
    ax.set_yticks(y, [f"[{a}] {lab}" for a, lab in zip(areas, labels)], fontsize=8)
    ax.set_ylim(-0.7, len(rows) - 0.3)
    ax.set_xlabel("candidate median / reference median (lower is faster)")
    fig.legend(loc="outside lower center", ncols=3, fontsize=8, frameon=False)
    return fig
