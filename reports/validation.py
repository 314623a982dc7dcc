"""The validation questions answered from a run's evidence: reports/validation.toml -> Answer.

Each answer is prose with {placeholders}; every placeholder names a value drawn from the run's
recorded metrics (test node id + metric name) or table cells, so no number in an answer is
typed by hand. The file's header documents the format.

    answers = load_answers(Path("reports/validation.toml"))
    rendered = [resolve(a, run) for a in answers]     # run: reports.matrix.RunData
    rendered[0].status, rendered[0].paragraphs        # "answered", [Markup(...), ...]
"""
from __future__ import annotations

import fnmatch
import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from markupsafe import Markup, escape

from reports.evidence import Metric
from reports.matrix import RunData, TestEvidence, matches
from reports.numbers import fmt_number

DEFAULT_ANSWERS = Path(__file__).resolve().parent / "validation.toml"
REDUCERS = ("first", "max", "min", "mean")
PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?:\.(threshold|count))?\}")
# A digit typed into prose: one not inside a name ("L2", "q.6", "nn.LSTM") or a placeholder.
TYPED_NUMBER = re.compile(r"(?<![A-Za-z_.\d])\d")
MISSING = "not measured in this run"


@dataclass
class ValueSpec:
    """Where one {placeholder} comes from."""
    name: str
    test: str
    metric: str = ""
    reduce: str = "first"
    table: str = ""
    column: str = ""
    where: dict[str, Any] = field(default_factory=dict)


@dataclass
class AnswerSpec:
    question: str
    prose: str = ""
    requirements: list[str] = field(default_factory=list)
    areas: list[str] = field(default_factory=list)
    values: dict[str, ValueSpec] = field(default_factory=dict)
    figures: list[dict[str, str]] = field(default_factory=list)


@dataclass
class Value:
    """A resolved placeholder: the number (None when the run lacks it) and where it came from."""
    spec: ValueSpec
    value: float | None = None
    unit: str = ""
    threshold: float | None = None
    direction: str = "none"
    count: int = 0
    nodeid: str = ""

    @property
    def found(self) -> bool:
        return self.value is not None


@dataclass
class Answer:
    spec: AnswerSpec
    status: str  # "answered", "partial" (some values missing), "pending" (area not run / no prose)
    paragraphs: list[Markup]
    values: dict[str, Value]
    figures: list[dict[str, str]]  # {"name", "file", "caption", "nodeid"} found in the run
    note: str = ""


# ---------------------------------------------------------------- loading and checking
def load_answers(path: Path = DEFAULT_ANSWERS) -> list[AnswerSpec]:
    """The [[answer]] entries of a validation.toml; ValueError naming the entry when malformed."""
    data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    answers = []
    for i, entry in enumerate(data.get("answer", []), 1):
        where = f"{path}: [[answer]] number {i}"
        if "question" not in entry:
            raise ValueError(f"{where} needs a question id")
        values = {}
        for name, v in (entry.get("values") or {}).items():
            if "test" not in v or not (("metric" in v) ^ ("table" in v)):
                raise ValueError(f"{where}: value {name!r} needs a test and either a metric or a table")
            if "table" in v and "column" not in v:
                raise ValueError(f"{where}: value {name!r} reads table {v['table']!r} but names no column")
            reduce = str(v.get("reduce", "first"))
            if reduce not in REDUCERS:
                raise ValueError(f"{where}: value {name!r} has reduce={reduce!r}; expected one of {REDUCERS}")
            values[name] = ValueSpec(name, str(v["test"]), str(v.get("metric", "")), reduce,
                                     str(v.get("table", "")), str(v.get("column", "")), dict(v.get("where", {})))
        answers.append(AnswerSpec(str(entry["question"]), str(entry.get("prose", "")).strip(),
                                  [str(r) for r in entry.get("requirements", [])],
                                  [str(a) for a in entry.get("areas", [])], values,
                                  [dict(f) for f in entry.get("figures", [])]))
    return answers


def problems(spec: AnswerSpec) -> list[str]:
    """What is wrong with an answer as written: typed numbers, unknown or unused placeholders."""
    found = []
    names = {m.group(1) for m in PLACEHOLDER.finditer(spec.prose)}
    for name in sorted(names - set(spec.values)):
        found.append(f"{spec.question}: {{{name}}} has no [answer.values.{name}]")
    for name in sorted(set(spec.values) - names):
        found.append(f"{spec.question}: value {name!r} is defined but never used in the prose")
    stripped = PLACEHOLDER.sub("", spec.prose)
    for m in TYPED_NUMBER.finditer(stripped):
        context = stripped[max(0, m.start() - 20):m.end() + 20].replace("\n", " ")
        found.append(f"{spec.question}: a number typed into the prose near {context!r}; use a placeholder")
    if re.search(r"\{[^}]*\}", stripped):
        found.append(f"{spec.question}: a malformed placeholder remains: {re.search(r'{[^}]*}', stripped)[0]!r}")
    for f in spec.figures:
        if "test" not in f or "name" not in f:
            found.append(f"{spec.question}: a figure needs a test and a name, got {f}")
    return found


# ---------------------------------------------------------------- resolving against a run
def _evidence_for(test: str, run: RunData) -> list[TestEvidence]:
    return [ev for nid, ev in sorted(run.evidence.items()) if matches(test, nid)]


def _reduce(metrics: list[tuple[Metric, str]], how: str) -> tuple[Metric, str]:
    finite = [(m, n) for m, n in metrics if math.isfinite(m.value)] or metrics
    if how == "max":
        return max(finite, key=lambda p: p[0].value)
    if how == "min":
        return min(finite, key=lambda p: p[0].value)
    if how == "mean":
        first, nodeid = finite[0]
        mean = sum(m.value for m, _ in finite) / len(finite)
        return Metric(first.name, mean, first.unit, first.threshold, first.direction, first.key), nodeid
    return finite[0]


def _cell(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number


def resolve_value(spec: ValueSpec, run: RunData) -> Value:
    """The number a placeholder stands for in this run (value None when the run lacks it)."""
    evs = _evidence_for(spec.test, run)
    if spec.table:
        for ev in evs:
            for table in ev.tables:
                if table.get("name") != spec.table:
                    continue
                for row in table.get("rows", []):
                    if all(str(row.get(k)) == str(v) for k, v in spec.where.items()) and spec.column in row:
                        return Value(spec, _cell(row[spec.column]), count=1, nodeid=ev.nodeid)
        return Value(spec)
    found = [(m, ev.nodeid) for ev in evs for m in ev.metrics if fnmatch.fnmatchcase(m.name, spec.metric)]
    if not found:
        return Value(spec)
    metric, nodeid = _reduce(found, spec.reduce)
    return Value(spec, metric.value, metric.unit, metric.threshold, metric.direction, len(found), nodeid)


def _show(value: Value, part: str | None) -> Markup:
    if not value.found:
        return Markup('<span class="missing">{}</span>').format(MISSING)
    if part == "count":
        text = str(value.count)
    elif part == "threshold":
        if value.threshold is None:
            return Markup('<span class="missing">no threshold recorded</span>')
        text = {"higher": "≥ ", "lower": "≤ "}.get(value.direction, "") + fmt_number(value.threshold)
    elif value.value is not None and math.isinf(value.value):
        text = "∞" if value.value > 0 else "-∞"
    else:
        text = fmt_number(value.value) + (f" {value.unit}" if value.unit else "")
    title = f"{value.spec.metric or value.spec.table + ': ' + value.spec.column} of {value.nodeid}"
    return Markup('<span class="live" title="{}">{}</span>').format(title, text)


def _area_ran(areas: list[str], run: RunData) -> bool:
    return not areas or any(o.area in areas for o in run.outcomes.values())


def resolve(spec: AnswerSpec, run: RunData) -> Answer:
    """Fill an answer's placeholders from the run; its status says how much of it the run backs."""
    values = {name: resolve_value(v, run) for name, v in spec.values.items()}
    figures = []
    for f in spec.figures:
        for ev in _evidence_for(f.get("test", ""), run):
            figures += [dict(fig, nodeid=ev.nodeid) for fig in ev.figures if fig.get("name") == f.get("name")]
    if not spec.prose:
        return Answer(spec, "pending", [], values, figures,
                      "Not answered yet: its area adds the answer when its tests record evidence.")
    if not _area_ran(spec.areas, run):
        return Answer(spec, "pending", [], values, figures,
                      f"Pending: no test of {', '.join(spec.areas) or 'its area'} ran in this run "
                      f"(select it with -m {' or -m '.join(spec.areas) or 'AREA'}).")
    if values and not any(v.found for v in values.values()):
        return Answer(spec, "pending", [], values, figures,
                      "Pending: the tests this answer cites recorded none of its values in this run "
                      "(deselected, skipped or failed; see the requirement pages below).")
    missing = [n for n, v in values.items() if not v.found]
    paragraphs = []
    for para in re.split(r"\n\s*\n", spec.prose):
        text = " ".join(para.split())
        out, last = Markup(""), 0
        for m in PLACEHOLDER.finditer(text):
            out += escape(text[last:m.start()]) + _show(values[m.group(1)], m.group(2))
            last = m.end()
        paragraphs.append(out + escape(text[last:]))
    status = "partial" if missing else "answered"
    note = f"{len(missing)} of {len(values)} values were not measured in this run." if missing else ""
    return Answer(spec, status, paragraphs, values, figures, note)
