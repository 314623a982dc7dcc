"""Renders a run folder into the HTML report.

    from reports.build import build_report
    report = build_report(Path("reports/runs/latest"), Path("reports/out"))
    print(report.index, report.summary)

Pages: index.html (state at a glance, the requirement matrix, the questions), req-<id>.html (one
per requirement: claim, forms of proof, metrics, figures, tables, its tests folded),
validation.html (the eight questions answered from reports/validation.toml), area-<area>.html
(every test of an area, parametrised cases grouped), benchmarks.html, gate.html (this run
against reports/baseline.json), notebooks/<area>.html (copied from <run>/notebooks/).

The output folder is replaced on each build (it carries a marker file, and a folder that is
not empty and has no marker is never cleared). Figures are copied from <run>/figures/ to
<out>/figures/, and the benchmark plot is drawn there as benchmarks.png.
"""
from __future__ import annotations

import datetime as dt
import json
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from reports.benchmarks import Group, by_area, compare, load_benchmarks, plot_ratios
from reports.evidence import Metric, slug
from reports.gate import (DEFAULT_BASELINE, DEFAULT_POLICY, BaselineMissing, GateResult, load_baseline,
                          load_policy)
from reports.gate import compare as compare_baseline
from reports.mutation import DEFAULT_MUTATION, load_mutation
from reports.matrix import (SKIP, Item, RunData, Row, TestRef, build_matrix, items_by_test,
                            load_items, load_run, status_class, summary_line)
from reports.numbers import fmt_cell, fmt_number
from reports.validation import DEFAULT_ANSWERS, Answer, load_answers, problems, resolve
from reports.views import glance, group_tests, junit_times, requirement_page, requirement_view, source_href

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_RUN = ROOT / "reports" / "runs" / "latest"
DEFAULT_OUT = ROOT / "reports" / "out"
DEFAULT_REQUIREMENTS = ROOT / "assessments" / "requirements.toml"
TEMPLATES = Path(__file__).resolve().parent / "templates"
MARKER = ".milestone-report"
OTHER_AREA = "other"


class RunMissing(Exception):
    """The run folder does not exist or holds no outcomes.jsonl."""


@dataclass
class Report:
    out_dir: Path
    index: Path
    pages: list[Path]
    requirements: list[Row]
    questions: list[Row]
    groups: list[Group] | None  # None: no benchmarks.json in the run
    summary: str
    answers: list[Answer] | None = None
    gate: GateResult | None = None  # None: no baseline to compare with


def check_run(run_dir: Path) -> None:
    """Raise RunMissing, with the command to run, unless `run_dir` holds outcomes.jsonl."""
    if not run_dir.is_dir():
        raise RunMissing(f"no run folder at {run_dir}: run `make test` first")
    if not (run_dir / "outcomes.jsonl").is_file():
        raise RunMissing(f"{run_dir} holds no outcomes.jsonl: run `make test` first")


def prepare_out(out_dir: Path, run_dir: Path) -> None:
    """Empty `out_dir` (a report folder from an earlier build) or create it."""
    out, run = out_dir.resolve(), run_dir.resolve()
    if out == run or out in run.parents or out == ROOT or out == Path(out.anchor):
        raise ValueError(f"refusing to write the report into {out_dir}: it holds the run or the repo")
    if out.exists():
        if not out.is_dir() or (any(out.iterdir()) and not (out / MARKER).exists()):
            raise ValueError(f"refusing to clear {out_dir}: not empty and not a report folder "
                             f"(no {MARKER}); remove it or choose another --out")
        shutil.rmtree(out)
    (out / "figures").mkdir(parents=True)
    (out / MARKER).write_text("written by `python -m reports build`; replaced on each build\n")


def metric_text(m: Metric) -> str:
    """"name = value unit (threshold ≥ t)"."""
    text = f"{m.name} = {fmt_number(m.value)}" + (f" {m.unit}" if m.unit else "")
    if m.threshold is not None:
        sign = {"higher": "≥ ", "lower": "≤ "}.get(m.direction, "")
        text += f" (threshold {sign}{fmt_number(m.threshold)})"
    return text


def table_columns(rows: list[dict[str, Any]]) -> list[str]:
    """Every key of every row, in first-seen order."""
    return list(dict.fromkeys(k for row in rows for k in row))


def area_page(area: str) -> str:
    return f"area-{slug(area) or OTHER_AREA}.html"


def environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                             trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined)
    env.filters.update(num=fmt_number, cell=fmt_cell, metric=metric_text, status_class=status_class,
                       slug=slug, columns=table_columns, req_page=requirement_page)
    return env


class _Pages:
    """Where each test lives in the report: its area page and anchor."""

    def __init__(self, run: RunData) -> None:
        self.area_of: dict[str, str] = {}
        for nid, ev in run.evidence.items():
            self.area_of[nid] = ev.area or OTHER_AREA
        for nid, o in run.outcomes.items():
            self.area_of[nid] = o.area or self.area_of.get(nid) or OTHER_AREA

    def href(self, nodeid: str) -> str:
        return f"{area_page(self.area_of.get(nodeid, OTHER_AREA))}#{slug(nodeid)}"

    def ref_href(self, ref: TestRef) -> str | None:
        return self.href(ref.first.nodeid) if ref.first else None


def _copy_figures(run_dir: Path, out_dir: Path) -> None:
    for png in sorted((run_dir / "figures").glob("*.png")):
        shutil.copy2(png, out_dir / "figures" / png.name)


def _area_tests(run: RunData, items: list[Item], pages: _Pages) -> dict[str, list[dict[str, Any]]]:
    nodeids = sorted(set(run.outcomes) | set(run.evidence))
    proves = items_by_test(items, nodeids)
    areas: dict[str, list[dict[str, Any]]] = {}
    for nid in nodeids:
        areas.setdefault(pages.area_of[nid], []).append(
            {"nodeid": nid, "anchor": slug(nid), "outcome": run.outcomes.get(nid),
             "evidence": run.evidence.get(nid), "proves": proves[nid]})
    return dict(sorted(areas.items()))


def _run_info(run_dir: Path) -> dict[str, Any]:
    """The plugin's run.json (budget, seed, workers, versions, sessions); empty for runs without one."""
    path = run_dir / "run.json"
    try:
        return json.loads(path.read_text()) if path.exists() else {}
    except json.JSONDecodeError:
        return {}


def _copy_notebooks(run_dir: Path, out_dir: Path) -> dict[str, str]:
    """<run>/notebooks/<area>.html -> <out>/notebooks/; area -> href."""
    found = {}
    for page in sorted((run_dir / "notebooks").glob("*.html")):
        (out_dir / "notebooks").mkdir(exist_ok=True)
        shutil.copy2(page, out_dir / "notebooks" / page.name)
        found[page.stem] = f"notebooks/{page.name}"
    return found


def _gate(run_dir: Path, baseline: Path | None, policy: Path) -> tuple[GateResult | None, str]:
    """This run against the baseline, or None and why not."""
    if baseline is None:
        return None, "no baseline given"
    try:
        return compare_baseline(run_dir, load_baseline(baseline), load_policy(policy)), ""
    except BaselineMissing as e:
        return None, str(e)


def build_report(run_dir: Path = DEFAULT_RUN, out_dir: Path = DEFAULT_OUT,
                 requirements: Path = DEFAULT_REQUIREMENTS, baseline: Path | None = DEFAULT_BASELINE,
                 answers: Path = DEFAULT_ANSWERS, policy: Path = DEFAULT_POLICY,
                 mutation: Path = DEFAULT_MUTATION) -> Report:
    """Build the whole report from `run_dir` into `out_dir` (replacing what was there)."""
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    check_run(run_dir)
    reqs, questions = load_items(Path(requirements))
    run = load_run(run_dir)
    req_rows, q_rows = build_matrix(reqs, run), build_matrix(questions, run)
    benches = load_benchmarks(run_dir / "benchmarks.json")
    groups = compare(benches) if benches is not None else None
    gate, gate_note = _gate(run_dir, baseline, policy)
    checks = gate.by_key() if gate else {}

    prepare_out(out_dir, run_dir)
    _copy_figures(run_dir, out_dir)
    notebooks = _copy_notebooks(run_dir, out_dir)
    base_ratios = {k: c.baseline for k, c in checks.items() if c.kind == "benchmark"}
    plot = plot_ratios(groups, out_dir / "figures" / "benchmarks.png", base_ratios) if groups else None

    pages = _Pages(run)
    areas = _area_tests(run, reqs + questions, pages)
    area_pages = {a: area_page(a) for a in areas}
    views = {row.item.id: requirement_view(row, run, out_dir, notebooks) for row in req_rows}
    sections: dict[str, list[Row]] = {}
    for row in req_rows:
        sections.setdefault(row.item.section or "Requirements", []).append(row)

    specs = {a.question: a for a in load_answers(answers)} if Path(answers).is_file() else {}
    warnings = list(run.warnings)
    warnings += [p for spec in specs.values() for p in problems(spec)]
    warnings += [f"{answers}: an answer to {q}, which requirements.toml does not ask" for q in specs
                 if q not in {r.item.id for r in q_rows}]
    answered = {r.item.id: resolve(specs[r.item.id], run) for r in q_rows if r.item.id in specs}

    counts = Counter(o.outcome for o in run.outcomes.values())
    times = junit_times(run_dir)
    summary = summary_line(req_rows, q_rows)
    info = _run_info(run_dir)
    common = {
        "generated": dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "run_dir": str(run_dir), "areas": list(area_pages.items()), "warnings": warnings, "page": pages,
        "run_info": info, "notebooks": notebooks, "checks": checks, "gate": gate, "gate_note": gate_note,
    }
    env = environment()
    written = []

    def render(name: str, template: str, **context: Any) -> Path:
        path = out_dir / name
        path.write_text(env.get_template(template).render(**common, **context), encoding="utf-8")
        written.append(path)
        return path

    index = render("index.html", "index.html", title="milestone report", summary=summary,
                   counts={k: counts.get(k, 0) for k in ("passed", "failed", "skipped", "error")}
                   | {k: v for k, v in counts.items() if k in ("xfail", "xpass")},
                   total_tests=len(run.outcomes),
                   total_duration=sum(o.duration for o in run.outcomes.values()),
                   glance=glance(req_rows, run, notebooks, area_pages, times), timed_by_junit=bool(times),
                   sessions=info.get("sessions", []),
                   sections=sections, views=views, questions=q_rows, answers=answered, groups=groups,
                   skips=sorted((o for o in run.outcomes.values() if o.outcome in SKIP),
                                key=lambda o: o.nodeid))
    for view in views.values():
        cited_by = [(q, answered[q.item.id].status) for q in q_rows
                    if q.item.id in answered and view.row.item.id in answered[q.item.id].spec.requirements]
        render(view.page, "requirement.html", title=f"{view.row.item.id}: {view.row.item.text}", view=view,
               cited_by=cited_by, figure_exists=lambda f: (out_dir / f).is_file())
    for area, tests in areas.items():
        render(area_page(area), "area.html", title=f"area: {area}", area=area, groups=group_tests(tests),
               requirements=[v for v in views.values() if v.row.item.area == area],
               source=lambda nodeid: source_href(nodeid, out_dir), figure_exists=lambda f: (out_dir / f).is_file(),
               item_href=lambda id: views[id].page if id in views else f"validation.html#{slug(id)}")
    render("validation.html", "validation.html", title="validation questions", questions=q_rows,
           answers=answered, views=views, figure_exists=lambda f: (out_dir / f).is_file())
    render("benchmarks.html", "benchmarks.html", title="benchmarks", groups=groups,
           areas_of=by_area(groups) if groups else {},
           plot=plot.relative_to(out_dir).as_posix() if plot else None)
    render("gate.html", "gate.html", title="against the baseline")
    render("mutation.html", "mutation.html", title="mutation testing", mutation=load_mutation(mutation),
           catalogue_test="assessments/harness/test_mutants.py::test_every_mutant_is_caught")
    shutil.copy2(TEMPLATES / "style.css", out_dir / "style.css")
    return Report(out_dir, index, written, req_rows, q_rows, groups, summary, list(answered.values()), gate)
