"""The regression gate: a run's key metrics and benchmark ratios against a committed baseline.

    python -m reports baseline --run reports/runs/latest            # writes reports/baseline.json
    python -m reports gate --run reports/runs/latest                # exit 1 on a regression

What is compared (tolerances in reports/gate.toml):
- every metric a test recorded with a better side (direction "higher" or "lower") that is its
  key metric or is held to a threshold, keyed "node id::metric name". It may worsen by
  max(relative * |baseline|, margin * |threshold - baseline|, absolute): a parity error of 3e-14
  held to 1e-7 may wobble in the last digits, an accuracy 2.5 points over its floor may not
  lose one. Moving the better way never fails. Wall-clock metrics (units s, ms, req/s, ...) get
  the loose tolerance gate.toml gives them: their comparison is the benchmarks' job.
- every benchmark ratio (candidate median / reference median, pytest-benchmark's medians),
  keyed "group::candidate". It may grow by max(max_ratio_increase, the pair's own noise:
  IQR/median of candidate plus reference). Pairs with fewer than min_rounds rounds are shown but
  not gated.
A baselined metric whose test ran but did not record it fails (re-run `make baseline` after a
rename); one whose test did not run in this selection is listed as not compared. A baseline of
another budget is refused.
"""
from __future__ import annotations

import datetime as dt
import fnmatch
import json
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reports.benchmarks import compare as compare_benchmarks
from reports.benchmarks import load_benchmarks
from reports.matrix import RunData, kind_of, load_run

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_BASELINE = ROOT / "reports" / "baseline.json"
DEFAULT_POLICY = ROOT / "reports" / "gate.toml"
FORMAT = 1


class BaselineMissing(Exception):
    """No baseline file, or one that cannot be compared with this run."""


@dataclass
class Tolerance:
    relative: float = 0.01
    margin: float = 0.1
    absolute: float = 0.0
    reason: str = ""


@dataclass
class Policy:
    metrics: Tolerance = field(default_factory=Tolerance)
    # (fnmatch pattern on "node id::metric", units it applies to (empty: any), tolerance)
    overrides: list[tuple[str, tuple[str, ...], Tolerance]] = field(default_factory=list)
    max_ratio_increase: float = 0.25
    min_rounds: int = 5

    def tolerance(self, key: str, unit: str = "") -> Tolerance:
        """The first override whose pattern matches the key and whose units (if any) hold the unit."""
        for pattern, units, tol in self.overrides:
            if fnmatch.fnmatchcase(key, pattern) and (not units or unit in units):
                return tol
        return self.metrics


def load_policy(path: Path = DEFAULT_POLICY) -> Policy:
    """The tolerances of reports/gate.toml (defaults when the file is absent)."""
    path = Path(path)
    if not path.is_file():
        return Policy()
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    m, b = data.get("metrics", {}), data.get("benchmarks", {})
    base = Tolerance(float(m.get("relative", 0.01)), float(m.get("margin", 0.1)), float(m.get("absolute", 0.0)))
    overrides = []
    for o in data.get("override", []):
        if "match" not in o and "units" not in o:
            raise ValueError(f"{path}: every [[override]] needs a match pattern or units")
        overrides.append((str(o.get("match", "*")), tuple(str(u) for u in o.get("units", [])),
                          Tolerance(float(o.get("relative", base.relative)), float(o.get("margin", base.margin)),
                                    float(o.get("absolute", base.absolute)), str(o.get("reason", "")))))
    return Policy(base, overrides, float(b.get("max_ratio_increase", 0.25)), int(b.get("min_rounds", 5)))


# ---------------------------------------------------------------- what a run offers for gating
def gated_metrics(run: RunData) -> dict[str, dict[str, Any]]:
    """"nodeid::metric" -> value, direction, threshold, unit: the metrics the gate compares."""
    found = {}
    for nodeid, ev in sorted(run.evidence.items()):
        for m in ev.metrics:
            if m.direction in ("higher", "lower") and (m.key or m.threshold is not None) and math.isfinite(m.value):
                found[f"{nodeid}::{m.name}"] = {"nodeid": nodeid, "metric": m.name, "value": m.value,
                                                "direction": m.direction, "threshold": m.threshold, "unit": m.unit}
    return found


def benchmark_ratios(run_dir: Path) -> dict[str, dict[str, Any]]:
    """"group::candidate" -> ratio of medians, the rounds behind it and its noise (IQR/median)."""
    benches = load_benchmarks(Path(run_dir) / "benchmarks.json")
    found: dict[str, dict[str, Any]] = {}
    for group in compare_benchmarks(benches or []):
        for c in group.ratios:
            ref = c.reference
            assert ref is not None  # a ratio needs a reference
            noise = sum(b.iqr / b.median for b in (c.bench, ref) if b.median > 0)
            found[f"{group.name}::{c.bench.name}"] = {
                "group": group.name, "candidate": c.bench.name, "reference": ref.name, "ratio": c.ratio,
                "candidate_median_s": c.bench.median, "reference_median_s": ref.median,
                "rounds": min(c.bench.rounds, ref.rounds), "noise": noise, "area": c.bench.area}
    return found


def _run_info(run_dir: Path) -> dict[str, Any]:
    try:
        return json.loads((Path(run_dir) / "run.json").read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def make_baseline(run_dir: Path) -> dict[str, Any]:
    """The baseline document for a run: its gated metrics and benchmark ratios."""
    info, run = _run_info(run_dir), load_run(run_dir)
    passed = {nid for nid, o in run.outcomes.items() if kind_of(o.outcome) == "pass"}
    # a failing test's numbers are no standard to hold later runs to
    metrics = {k: m for k, m in gated_metrics(run).items() if m["nodeid"] in passed}
    return {"format": FORMAT, "created": dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
            "run": {k: info.get(k) for k in ("budget", "seed", "cpus", "workers", "python", "versions", "sessions")},
            "metrics": metrics, "benchmarks": benchmark_ratios(run_dir)}


def write_baseline(run_dir: Path, path: Path = DEFAULT_BASELINE) -> dict[str, Any]:
    doc = make_baseline(run_dir)
    Path(path).write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return doc


def load_baseline(path: Path = DEFAULT_BASELINE) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise BaselineMissing(f"no baseline at {path}: run `make baseline` (after a full `make test` on the "
                              "reference machine) and commit reports/baseline.json")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise BaselineMissing(f"{path} is not valid JSON ({e}); regenerate it with `make baseline`") from None
    if doc.get("format") != FORMAT:
        raise BaselineMissing(f"{path} has format {doc.get('format')!r}, this gate reads {FORMAT}; "
                              "regenerate it with `make baseline`")
    return doc


# ---------------------------------------------------------------- comparing
@dataclass
class Check:
    """One line of the gate: a metric or benchmark ratio, baseline vs this run."""
    kind: str  # "metric" or "benchmark"
    key: str
    nodeid: str
    name: str
    baseline: float
    current: float | None
    direction: str  # "higher" or "lower": which way is better
    allowed: float  # how far it may move the wrong way (absolute)
    verdict: str  # better, same, worse (within tolerance), regression, missing, not run, not gated
    note: str = ""

    @property
    def failed(self) -> bool:
        return self.verdict in ("regression", "missing")

    @property
    def delta(self) -> float | None:
        return None if self.current is None else self.current - self.baseline

    @property
    def arrow(self) -> str:
        """"↑" or "↓" for the way the value moved ("=" unchanged, "" not compared)."""
        d = self.delta
        if d is None:
            return ""
        return "=" if d == 0 else ("↑" if d > 0 else "↓")

    @property
    def mark(self) -> str:
        """CSS class: better (green), worse (red), same."""
        if self.verdict == "better":
            return "better"
        if self.verdict in ("regression", "missing") or self.verdict.startswith("worse"):
            return "worse"
        return "same"


@dataclass
class GateResult:
    checks: list[Check]
    baseline_created: str = ""
    baseline_budget: str = ""
    new_metrics: int = 0

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if c.failed]

    @property
    def passed(self) -> bool:
        return not self.failures

    def by_key(self) -> dict[str, Check]:
        return {c.key: c for c in self.checks}

    def summary(self) -> str:
        counts: dict[str, int] = {}
        for c in self.checks:
            counts[c.verdict] = counts.get(c.verdict, 0) + 1
        parts = ", ".join(f"{n} {v}" for v, n in sorted(counts.items()))
        head = "gate passed" if self.passed else f"gate FAILED: {len(self.failures)} regression(s)"
        return f"{head} against the baseline of {self.baseline_created or '?'} ({len(self.checks)} compared: {parts})"


def _verdict(current: float, baseline: float, direction: str, allowed: float) -> str:
    worse_by = (baseline - current) if direction == "higher" else (current - baseline)
    if worse_by < 0:
        return "better"
    if worse_by == 0:
        return "same"
    return "worse (within tolerance)" if worse_by <= allowed else "regression"


def compare(run_dir: Path, baseline: dict[str, Any], policy: Policy | None = None) -> GateResult:
    """Every baselined metric and ratio against this run; raises BaselineMissing on a budget mismatch."""
    policy = policy or Policy()
    run_dir = Path(run_dir)
    budget, base_budget = _run_info(run_dir).get("budget"), (baseline.get("run") or {}).get("budget")
    if budget and base_budget and budget != base_budget:
        raise BaselineMissing(f"the baseline was measured at --budget {base_budget}, this run at --budget {budget}: "
                              "compare like with like (or write a baseline for this budget)")
    run = load_run(run_dir)
    metrics, checks = gated_metrics(run), []
    for key, b in sorted(baseline.get("metrics", {}).items()):
        tol = policy.tolerance(key, b.get("unit", ""))
        threshold = b.get("threshold")
        allowed = max(tol.relative * abs(b["value"]), tol.absolute,
                      tol.margin * abs(threshold - b["value"]) if threshold is not None else 0.0)
        nodeid, name = b.get("nodeid", ""), b.get("metric", key)
        cur = metrics.get(key)
        outcome = run.outcomes.get(nodeid)
        if cur is not None:
            verdict, note = _verdict(cur["value"], b["value"], b["direction"], allowed), tol.reason
        elif outcome is None or kind_of(outcome.outcome) == "skip":
            verdict, note = "not run", "its test did not run in this selection"
        else:
            verdict, note = "missing", f"its test {outcome.outcome} but recorded no {name!r}"
        checks.append(Check("metric", key, nodeid, name, b["value"], None if cur is None else cur["value"],
                            b["direction"], allowed, verdict, note))
    ratios = benchmark_ratios(run_dir)
    for key, b in sorted(baseline.get("benchmarks", {}).items()):
        cur = ratios.get(key)
        if cur is None:
            checks.append(Check("benchmark", key, "", key, b["ratio"], None, "lower", 0.0, "not run",
                                "no such benchmark in this run's benchmarks.json"))
            continue
        noise = max(cur.get("noise", 0.0), b.get("noise", 0.0))
        allowed = b["ratio"] * max(policy.max_ratio_increase, noise)
        verdict = _verdict(cur["ratio"], b["ratio"], "lower", allowed)
        note = f"noise (IQR/median) {noise:.0%}; allowed +{allowed / b['ratio']:.0%}"
        if cur["rounds"] < policy.min_rounds:
            verdict, note = "not gated", f"only {cur['rounds']} rounds (< {policy.min_rounds})"
        checks.append(Check("benchmark", key, "", key, b["ratio"], cur["ratio"], "lower", allowed, verdict, note))
    new = len(set(metrics) - set(baseline.get("metrics", {})))
    return GateResult(checks, baseline.get("created", ""), base_budget or "", new)


def gate(run_dir: Path, baseline_path: Path = DEFAULT_BASELINE, policy_path: Path = DEFAULT_POLICY) -> GateResult:
    return compare(run_dir, load_baseline(baseline_path), load_policy(policy_path))
