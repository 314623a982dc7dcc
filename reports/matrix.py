"""The requirement matrix: requirements.toml joined with a run's outcomes and evidence.

A row is one seed requirement (or validation question) with its listed tests, the outcome of
each, a status and a key metric. How a listed test id finds its results:
    `path::test_name`  matches `path::test_name` and every `path::test_name[...]`;
    `path::TestClass`  matches every `path::TestClass::method[...]`; `path` matches the file.

Outcomes fall into three kinds: passed and xpass pass; failed and error (and anything
unrecognised) fail; skipped and xfail skip. Row status, from every matched result:
    "not yet covered"     the row lists no tests
    "not run"             none of its tests is in outcomes.jsonl (deselected, or never collected)
    "failed"              any of them failed or errored
    "skipped"             all that ran were skipped
    "partial"             none failed, but some were skipped or some listed tests did not run
                          (deselected: `-m "not torch"` must not make a parity row look proven;
                          parametrised cases named in the run's deselected.jsonl count too)
    "passed"              every listed test ran and passed

Key metric: among the evidence of the row's tests, the metrics marked key=True (else the first
metric of each test); the first one that misses its threshold, else the first one.
"""
from __future__ import annotations

import json
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from reports.evidence import Metric

PASS = ("passed", "xpass")
SKIP = ("skipped", "xfail")
# When one test has several records (a call that passed, then a teardown error), the worst wins.
_SEVERITY = {"skipped": 0, "xfail": 1, "passed": 2, "xpass": 3, "failed": 4, "error": 5}


@dataclass
class Outcome:
    nodeid: str
    outcome: str
    duration: float = 0.0
    area: str = ""
    reason: str = ""


@dataclass
class TestEvidence:
    nodeid: str
    area: str = ""
    metrics: list[Metric] = field(default_factory=list)
    figures: list[dict[str, str]] = field(default_factory=list)
    tables: list[dict[str, Any]] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)


@dataclass
class RunData:
    """Everything a run folder holds for the matrix, keyed by pytest node id."""
    run_dir: Path
    outcomes: dict[str, Outcome]
    evidence: dict[str, TestEvidence]
    warnings: list[str] = field(default_factory=list)
    # node ids a session deselected (-m/-k) and no session ran (deselected*.jsonl)
    deselected: set[str] = field(default_factory=set)


@dataclass
class Item:
    """One [[requirement]] or [[question]] of requirements.toml."""
    id: str
    text: str
    tests: list[str]
    kind: Literal["requirement", "question"] = "requirement"
    area: str = ""
    section: str = ""
    proof: dict[str, str] = field(default_factory=dict)  # listed test id -> form (reports.proof)


@dataclass
class TestRef:
    """One test id listed by a row, with the node ids it matched in the run."""
    listed: str
    outcomes: list[Outcome]
    deselected: int = 0  # its cases that were collected but deselected

    @property
    def outcome(self) -> str:
        """The aggregated outcome: "not run", "failed", "skipped", "partial", "passed"."""
        return row_status([o.outcome for o in self.outcomes], listed=1)

    @property
    def duration(self) -> float:
        return sum(o.duration for o in self.outcomes)

    @property
    def label(self) -> str:
        """Counts per outcome for parametrized tests ("2 passed, 1 skipped"), else the outcome."""
        if len(self.outcomes) <= 1:
            return self.outcomes[0].outcome if self.outcomes else "not run"
        counts: dict[str, int] = {}
        for o in self.outcomes:
            counts[o.outcome] = counts.get(o.outcome, 0) + 1
        return ", ".join(f"{n} {name}" for name, n in counts.items())

    @property
    def first(self) -> Outcome | None:
        return self.outcomes[0] if self.outcomes else None


@dataclass
class Row:
    item: Item
    refs: list[TestRef]
    status: str
    key_metric: Metric | None = None
    key_nodeid: str = ""
    other_metrics: int = 0  # how many more candidate key metrics the area pages show

    @property
    def counts(self) -> dict[str, int]:
        """Listed tests that ran / did not run, and their cases passed / failed / skipped."""
        kinds = [kind_of(o.outcome) for ref in self.refs for o in ref.outcomes]
        return {"listed": len(self.refs), "ran": sum(1 for r in self.refs if r.outcomes),
                "not_run": sum(1 for r in self.refs if not r.outcomes), "passed": kinds.count("pass"),
                "failed": kinds.count("fail"), "skipped": kinds.count("skip"),
                "deselected": sum(r.deselected for r in self.refs if r.outcomes)}

    @property
    def detail(self) -> str:
        """Why a row is partial (or failed): "4 of 6 listed tests ran; 1 case skipped"."""
        c = self.counts
        parts: list[str] = []
        if not c["ran"]:
            return ""
        if c["not_run"]:
            parts.append(f"{c['ran']} of {c['listed']} listed tests ran")
        if c["failed"]:
            parts.append(f"{c['failed']} case{'s' if c['failed'] != 1 else ''} failed")
        if c["skipped"]:
            parts.append(f"{c['skipped']} case{'s' if c['skipped'] != 1 else ''} skipped")
        if c["deselected"]:
            parts.append(f"{c['deselected']} case{'s' if c['deselected'] != 1 else ''} deselected")
        return "; ".join(parts)


def matches(listed: str, nodeid: str) -> bool:
    """Whether a listed test id names this node id (itself, a parameter of it, or a member)."""
    return nodeid == listed or nodeid.startswith(listed + "[") or nodeid.startswith(listed + "::")


def kind_of(outcome: str) -> Literal["pass", "fail", "skip"]:
    if outcome in PASS:
        return "pass"
    if outcome in SKIP:
        return "skip"
    return "fail"


def row_status(outcomes: list[str], listed: int, not_run: int = 0) -> str:
    """The status of a row listing `listed` test ids whose matched results are `outcomes`;
    `not_run` of the listed ids matched no result (deselected or not collected)."""
    if listed == 0:
        return "not yet covered"
    if not outcomes:
        return "not run"
    kinds = [kind_of(o) for o in outcomes]
    if "fail" in kinds:
        return "failed"
    skipped = kinds.count("skip")
    if skipped == len(kinds):
        return "skipped"
    return "partial" if skipped or not_run else "passed"


def status_class(status: str) -> str:
    """The CSS class of a status or outcome: passed, partial, failed, skipped, notrun or uncovered."""
    if status.startswith("passed") or status in ("xpass", "answered"):
        return "passed"
    if status in ("failed", "error"):
        return "failed"
    if status == "partial":
        return "partial"
    if status in ("skipped", "xfail"):
        return "skipped"
    return "uncovered" if status == "not yet covered" else "notrun"


# ---------------------------------------------------------------- loading
def load_items(path: Path) -> tuple[list[Item], list[Item]]:
    """The requirements and the validation questions of a requirements.toml, in file order."""
    data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    found: dict[str, list[Item]] = {"requirement": [], "question": []}
    for kind, items in found.items():
        for i, entry in enumerate(data.get(kind, [])):
            if "id" not in entry or "text" not in entry:
                raise ValueError(f"{path}: [[{kind}]] number {i + 1} needs an id and a text")
            items.append(Item(id=str(entry["id"]), text=str(entry["text"]),
                              tests=[str(t) for t in entry.get("tests", [])], kind=kind,  # type: ignore[arg-type]
                              area=str(entry.get("area", "")), section=str(entry.get("section", "")),
                              proof={str(k): str(v) for k, v in (entry.get("proof") or {}).items()}))
    return found["requirement"], found["question"]


def _read_lines(path: Path, warnings: list[str]) -> list[dict[str, Any]]:
    """JSON lines, skipping (and reporting) any line a crashed process left half-written."""
    records = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            warnings.append(f"{path.name} line {n} is not valid JSON; skipped")
    return records


def _metric(d: dict[str, Any]) -> Metric:
    try:
        value = float(d.get("value", math.nan))
    except (TypeError, ValueError):
        value = math.nan
    threshold = d.get("threshold")
    return Metric(name=str(d.get("name", "")), value=value, unit=str(d.get("unit", "") or ""),
                  threshold=None if threshold is None else float(threshold),
                  direction=d.get("direction", "none") or "none", key=bool(d.get("key", False)))


def load_run(run_dir: Path) -> RunData:
    """outcomes.jsonl and every evidence-*.jsonl of a run folder."""
    run_dir = Path(run_dir)
    warnings: list[str] = []
    outcomes: dict[str, Outcome] = {}
    for rec in _read_lines(run_dir / "outcomes.jsonl", warnings):
        if "nodeid" not in rec:
            continue
        new = Outcome(nodeid=rec["nodeid"], outcome=str(rec.get("outcome", "error")),
                      duration=float(rec.get("duration", 0.0) or 0.0), area=rec.get("area", "") or "",
                      reason=rec.get("reason", "") or "")
        old = outcomes.get(new.nodeid)
        if old is not None:
            worse = _SEVERITY.get(new.outcome, 6) > _SEVERITY.get(old.outcome, 6)
            new = Outcome(old.nodeid, new.outcome if worse else old.outcome, old.duration + new.duration,
                          old.area or new.area, old.reason or new.reason)
        outcomes[new.nodeid] = new
    evidence: dict[str, TestEvidence] = {}
    for path in sorted(run_dir.glob("evidence-*.jsonl")):
        for rec in _read_lines(path, warnings):
            if "nodeid" not in rec:
                continue
            ev = evidence.setdefault(rec["nodeid"], TestEvidence(rec["nodeid"], rec.get("area", "") or ""))
            ev.metrics += [_metric(m) for m in rec.get("metrics", [])]
            ev.figures += rec.get("figures", [])
            ev.tables += rec.get("tables", [])
            ev.texts += rec.get("texts", [])
    deselected = {str(rec["nodeid"]) for path in sorted(run_dir.glob("deselected*.jsonl"))
                  for rec in _read_lines(path, warnings) if "nodeid" in rec}
    return RunData(run_dir, outcomes, evidence, warnings, deselected - set(outcomes))


# ---------------------------------------------------------------- the matrix
def _key_metric(evs: list[TestEvidence]) -> tuple[Metric | None, str, int]:
    keyed = [(m, ev.nodeid) for ev in evs for m in ev.metrics if m.key]
    pool = keyed or [(ev.metrics[0], ev.nodeid) for ev in evs if ev.metrics]
    if not pool:
        return None, "", 0
    missed = [p for p in pool if p[0].passed is False]
    metric, nodeid = (missed or pool)[0]
    return metric, nodeid, len(pool) - 1


def build_row(item: Item, run: RunData) -> Row:
    refs = [TestRef(listed, [o for nid, o in sorted(run.outcomes.items()) if matches(listed, nid)],
                    sum(1 for nid in run.deselected if matches(listed, nid)))
            for listed in item.tests]
    status = row_status([o.outcome for ref in refs for o in ref.outcomes], len(item.tests),
                        not_run=sum(1 for ref in refs if not ref.outcomes or ref.deselected))
    evs = [ev for listed in item.tests for nid, ev in sorted(run.evidence.items()) if matches(listed, nid)]
    metric, nodeid, others = _key_metric(evs)
    return Row(item, refs, status, metric, nodeid, others)


def build_matrix(items: list[Item], run: RunData) -> list[Row]:
    return [build_row(item, run) for item in items]


STATUSES = ("passed", "partial", "failed", "skipped", "not run", "not yet covered")


def count_statuses(rows: list[Row]) -> dict[str, int]:
    """Rows per status; "partial" and "not run" only when present."""
    counts = dict.fromkeys(STATUSES, 0)
    for row in rows:
        counts[row.status] += 1
    for optional in ("partial", "not run"):
        if not counts[optional]:
            del counts[optional]
    return counts


def summary_line(requirements: list[Row], questions: list[Row]) -> str:
    """"40 requirements: 5 passed, 0 failed, 1 skipped, 34 not yet covered; 8 questions: ..."."""
    parts = []
    for rows, noun in ((requirements, "requirements"), (questions, "questions")):
        if rows or noun == "requirements":
            counts = ", ".join(f"{n} {name}" for name, n in count_statuses(rows).items())
            parts.append(f"{len(rows)} {noun if len(rows) != 1 else noun[:-1]}: {counts}")
    return "; ".join(parts)


def items_by_test(items: list[Item], nodeids: list[str]) -> dict[str, list[str]]:
    """For each node id, the ids of the requirements and questions that list it."""
    return {nid: [it.id for it in items if any(matches(t, nid) for t in it.tests)] for nid in nodeids}
