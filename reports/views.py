"""What the templates show, computed from a run: requirement pages, grouped tests, the state at a glance.

A requirement page (`RequirementView`) holds the claim, its forms of proof, the metrics, figures
and tables of its tests, and the listed tests grouped (a parametrised test is one `TestView`
with its cases and its worst case). `glance` counts rows per status and wall time per area.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reports.evidence import Metric, slug
from reports.matrix import STATUSES, Outcome, RunData, Row, TestEvidence, TestRef, matches
from reports.numbers import fmt_number
from reports.proof import form_of, forms_summary

ROOT = Path(__file__).resolve().parent.parent
AREA_ORDER = ("fundamentals", "cnn", "rnn", "transformers", "generative", "keras", "pytorch", "huggingface",
              "validation", "data", "harness")


def requirement_page(item_id: str) -> str:
    return f"req-{slug(item_id)}.html"


def source_href(nodeid: str, out_dir: Path, root: Path = ROOT) -> str | None:
    """A relative link from the report folder to the test's source file; None if it does not exist."""
    path = root / nodeid.split("::")[0]
    if not path.is_file():
        return None
    return Path(os.path.relpath(path, Path(out_dir).resolve())).as_posix()


def _badness(m: Metric) -> float:
    """How close a metric is to (or how far past) its threshold: above 1 it missed it."""
    t, v = m.threshold, m.value
    if t is None:
        return float("-inf")
    if m.direction == "lower":
        return v / t if t > 0 else v - t
    return t / v if v > 0 and t > 0 else t - v


def worst_metric(evs: list[TestEvidence]) -> tuple[Metric | None, str]:
    """The thresholded metric closest to (or past) its threshold; else the first key metric."""
    pool = [(m, ev.nodeid) for ev in evs for m in ev.metrics
            if m.threshold is not None and m.direction in ("higher", "lower")]
    if pool:
        return max(pool, key=lambda p: _badness(p[0]))
    keyed = [(m, ev.nodeid) for ev in evs for m in ev.metrics if m.key]
    return keyed[0] if keyed else (None, "")


def case_label(nodeid: str) -> str:
    """"[relu-3]" of a parametrised node id, else the function name."""
    m = re.search(r"(\[.*\])$", nodeid)
    return m.group(1) if m else nodeid.split("::")[-1]


@dataclass
class TestView:
    """One listed test id: a function, its parametrised cases grouped, or a class."""
    ref: TestRef
    form: str
    source: str | None
    evidence: list[TestEvidence]
    worst: Metric | None = None
    worst_nodeid: str = ""

    @property
    def name(self) -> str:
        return self.ref.listed.split("::", 1)[-1] if "::" in self.ref.listed else self.ref.listed

    @property
    def cases(self) -> list[Outcome]:
        return self.ref.outcomes

    @property
    def parametrised(self) -> bool:
        return len(self.ref.outcomes) > 1 or any("[" in o.nodeid for o in self.ref.outcomes)

    @property
    def summary(self) -> str:
        """"gradient check, 8 cases, worst max_rel_error = 3e-11 (threshold ≤ 1e-07)"."""
        parts = [self.form]
        if self.parametrised:
            parts.append(f"{len(self.cases)} cases")
        if self.worst is not None:
            sign = {"higher": "≥ ", "lower": "≤ "}.get(self.worst.direction, "")
            text = f"{'worst ' if len(self.evidence) > 1 or self.parametrised else ''}{self.worst.name} = " \
                   f"{fmt_number(self.worst.value)}{' ' + self.worst.unit if self.worst.unit else ''}"
            if self.worst.threshold is not None:
                text += f" ({sign}{fmt_number(self.worst.threshold)})"
            if self.parametrised and self.worst_nodeid:
                text += f" at {case_label(self.worst_nodeid)}"
            parts.append(text)
        return ", ".join(parts)


@dataclass
class RequirementView:
    row: Row
    page: str
    tests: list[TestView]
    forms: list[tuple[str, int]]
    metrics: list[tuple[str, Metric]]  # (node id, metric), every metric of its tests
    figures: list[dict[str, str]]  # name, file, caption, nodeid
    tables: list[dict[str, Any]]  # name, rows, nodeid
    texts: list[tuple[str, str]]  # (node id, text)
    thumbnail: dict[str, str] | None = None
    notebook: str | None = None  # href, or None when not executed in this run


def _evidence_of(ref: TestRef, run: RunData) -> list[TestEvidence]:
    return [ev for nid, ev in sorted(run.evidence.items()) if matches(ref.listed, nid)]


def requirement_view(row: Row, run: RunData, out_dir: Path, notebooks: dict[str, str]) -> RequirementView:
    tests, metrics, figures, tables, texts = [], [], [], [], []
    for ref in row.refs:
        evs = _evidence_of(ref, run)
        worst, worst_nodeid = worst_metric(evs)
        names = tuple(m.name for ev in evs for m in ev.metrics)
        tests.append(TestView(ref, form_of(ref.listed, row.item.proof.get(ref.listed), metrics=names),
                              source_href(ref.listed, out_dir), evs, worst, worst_nodeid))
        for ev in evs:
            metrics += [(ev.nodeid, m) for m in ev.metrics]
            figures += [dict(f, nodeid=ev.nodeid) for f in ev.figures]
            tables += [dict(t, nodeid=ev.nodeid) for t in ev.tables]
            texts += [(ev.nodeid, t) for t in ev.texts]
    key_figures = [f for f in figures if f["nodeid"] == row.key_nodeid]
    thumbnail = (key_figures or figures or [None])[0]
    return RequirementView(row, requirement_page(row.item.id), tests, forms_summary([t.form for t in tests]),
                           metrics, figures, tables, texts, thumbnail, notebooks.get(row.item.area))


@dataclass
class AreaGlance:
    area: str
    statuses: dict[str, int]
    tests: dict[str, int]
    wall_time: float
    notebook: str | None
    page: str | None

    @property
    def rows(self) -> int:
        return sum(self.statuses.values())

    @property
    def bar(self) -> list[tuple[str, int, float]]:
        """(status, rows, percent of the area's rows) for each status present."""
        total = self.rows or 1
        return [(s, n, 100.0 * n / total) for s, n in self.statuses.items() if n]


def junit_times(run_dir: Path) -> dict[str, float]:
    """Seconds per area from the run's JUnit XML (setup + call + teardown of each test, so module
    fixtures that train a model count); empty when the run wrote none."""
    import xml.etree.ElementTree as ET

    times: dict[str, float] = {}
    for path in sorted(Path(run_dir).glob("junit*.xml")):
        try:
            cases = ET.parse(path).getroot().iter("testcase")
            for case in cases:
                parts = (case.get("classname") or "").split(".")
                if len(parts) > 2 and parts[0] == "assessments":
                    times[parts[1]] = times.get(parts[1], 0.0) + float(case.get("time") or 0.0)
        except (ET.ParseError, ValueError):
            continue
    return times


def glance(rows: list[Row], run: RunData, notebooks: dict[str, str], area_pages: dict[str, str],
           times: dict[str, float] | None = None) -> list[AreaGlance]:
    """Per area: requirement rows per status, test outcomes, time (JUnit's setup + call + teardown
    when the run wrote JUnit XML, else the summed call durations)."""
    areas = [a for a in AREA_ORDER if any(r.item.area == a for r in rows) or
             any(o.area == a for o in run.outcomes.values())]
    areas += sorted({o.area for o in run.outcomes.values() if o.area and o.area not in areas})
    found = []
    for area in areas:
        statuses = dict.fromkeys(STATUSES, 0)
        for r in rows:
            if r.item.area == area:
                statuses[r.status] += 1
        outcomes = [o for o in run.outcomes.values() if o.area == area]
        tests: dict[str, int] = {}
        for o in outcomes:
            tests[o.outcome] = tests.get(o.outcome, 0) + 1
        seconds = times[area] if times and area in times else sum(o.duration for o in outcomes)
        found.append(AreaGlance(area, statuses, tests, seconds, notebooks.get(area), area_pages.get(area)))
    return found


@dataclass
class TestGroup:
    """An area page's entry: one test function and its cases (parametrisations)."""
    base: str
    cases: list[dict[str, Any]] = field(default_factory=list)  # nodeid, anchor, outcome, evidence, proves

    @property
    def anchor(self) -> str:
        return slug(self.base)

    @property
    def single(self) -> bool:
        return len(self.cases) == 1 and self.cases[0]["nodeid"] == self.base

    @property
    def label(self) -> str:
        counts: dict[str, int] = {}
        for c in self.cases:
            name = c["outcome"].outcome if c["outcome"] else "not run"
            counts[name] = counts.get(name, 0) + 1
        return ", ".join(f"{n} {k}" for k, n in counts.items())

    @property
    def worst_outcome(self) -> str:
        order = ("error", "failed", "xpass", "passed", "xfail", "skipped", "not run")
        names = [c["outcome"].outcome if c["outcome"] else "not run" for c in self.cases]
        return min(names, key=lambda n: order.index(n) if n in order else 0)


def group_tests(tests: list[dict[str, Any]]) -> list[TestGroup]:
    """Area-page tests grouped by function: `f[a]`, `f[b]` -> one group `f`."""
    groups: dict[str, TestGroup] = {}
    for t in tests:
        base = re.sub(r"\[.*\]$", "", t["nodeid"])
        groups.setdefault(base, TestGroup(base)).cases.append(t)
    return list(groups.values())
