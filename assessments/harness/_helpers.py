"""A synthetic run folder, as the harness plugin and pytest-benchmark write it, for the report tests.

`make_run(path)` writes outcomes, evidence (with a figure), run.json and benchmarks.json;
REQUIREMENTS and ANSWERS are a requirement map and a validation.toml that refer to its tests.
"""
from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

from reports.evidence import slug

ROOT = Path(__file__).resolve().parents[2]
F = "assessments/fundamentals/test_fake.py"

REQUIREMENTS = f'''
[[requirement]]
id = "r.pass"
area = "fundamentals"
section = "Fundamentals / Basics"
text = "A requirement whose test passed"
tests = ["{F}::test_pass"]

[[requirement]]
id = "r.fail"
area = "fundamentals"
section = "Fundamentals / Basics"
text = "A requirement whose test failed"
tests = ["{F}::test_fail"]

[[requirement]]
id = "r.skip"
area = "cnn"
section = "Architectures / CNN"
text = "A requirement whose test was skipped"
tests = ["assessments/cnn/test_gpu.py::test_on_gpu"]

[[requirement]]
id = "r.param"
area = "fundamentals"
section = "Fundamentals / Basics"
text = "A requirement with a parametrized test"
tests = ["{F}::test_param"]

[[requirement]]
id = "r.class"
area = "fundamentals"
section = "Fundamentals / Basics"
text = "A requirement naming a test class"
tests = ["{F}::TestSuite"]

[[requirement]]
id = "r.deselected"
area = "fundamentals"
section = "Fundamentals / Basics"
text = "A requirement whose test did not run"
tests = ["{F}::test_deselected"]

[[requirement]]
id = "r.none"
area = "cnn"
section = "Architectures / CNN"
text = "A requirement with no tests yet"
tests = []

[[question]]
id = "q.1"
text = "Does the parity hold?"
tests = ["{F}::test_parity"]

[[question]]
id = "q.2"
text = "Does the GPU help?"
tests = ["assessments/generative/test_gan.py::test_gan_learns"]
'''

# Answers to the questions above, in reports/validation.toml's format: q.1 from the run's
# evidence (a metric, its threshold, a table cell, a figure), q.2 from an area that did not run.
ANSWERS = f'''
[[answer]]
question = "q.1"
requirements = ["r.pass", "r.param"]
areas = ["fundamentals"]
prose = """
Parity holds: the worst error was {{err}} (held to {{err.threshold}}).

The dog class reached a recall of {{dog}} and accuracy was {{acc}}."""
figures = [{{test = "{F}::test_pass", name = "loss_curve"}}]

[answer.values.err]
test = "{F}::test_parity"
metric = "max_*_error"
reduce = "max"

[answer.values.dog]
test = "{F}::test_pass"
table = "per_class"
where = {{class = "dog"}}
column = "recall"

[answer.values.acc]
test = "{F}"
metric = "test_accuracy"
reduce = "min"

[[answer]]
question = "q.2"
requirements = []
areas = ["generative"]
prose = "The GAN reached {{fid}}."

[answer.values.fid]
test = "assessments/generative/test_gan.py::test_gan_learns"
metric = "fid"
'''

RUN_INFO = {"budget": "smoke", "seed": 0, "workers": 2, "cpus": 2, "started": "2026-01-01 00:00:00",
            "python": "3.11.2", "versions": {"numpy": "2.0"},
            "sessions": [{"markexpr": "not benchmark", "keyword": "", "args": ["assessments"],
                          "tox_env": "numpy", "budget": "smoke"}]}

OUTCOMES = [
    {"nodeid": f"{F}::test_pass", "outcome": "passed", "duration": 1.25, "area": "fundamentals"},
    {"nodeid": f"{F}::test_fail", "outcome": "failed", "duration": 0.5, "area": "fundamentals"},
    {"nodeid": "assessments/cnn/test_gpu.py::test_on_gpu", "outcome": "skipped", "duration": 0.0,
     "area": "cnn", "reason": "needs a CUDA GPU; none on this machine"},
    {"nodeid": f"{F}::test_param[relu]", "outcome": "passed", "duration": 0.1, "area": "fundamentals"},
    {"nodeid": f"{F}::test_param[tanh]", "outcome": "passed", "duration": 0.1, "area": "fundamentals"},
    {"nodeid": f"{F}::test_param[swish]", "outcome": "skipped", "duration": 0.0,
     "area": "fundamentals", "reason": "swish not implemented yet"},
    {"nodeid": f"{F}::TestSuite::test_a", "outcome": "passed", "duration": 0.1, "area": "fundamentals"},
    {"nodeid": f"{F}::TestSuite::test_b", "outcome": "passed", "duration": 0.1, "area": "fundamentals"},
    {"nodeid": f"{F}::test_parity", "outcome": "passed", "duration": 0.2, "area": "fundamentals"},
    # a test whose name starts like a listed one must not be taken for it
    {"nodeid": f"{F}::test_passthrough", "outcome": "failed", "duration": 0.1, "area": "fundamentals"},
]


def _metric(name, value, unit="", threshold=None, direction="none", key=False) -> dict:
    return {"name": name, "value": value, "unit": unit, "threshold": threshold,
            "direction": direction, "key": key}


def _bench(name: str, role: str, mean_s: float, rounds: int = 10, **extra) -> dict:
    return {"group": "matmul 256", "name": name, "fullname": f"{F}::{name}",
            "stats": {"mean": mean_s, "stddev": mean_s / 10, "median": mean_s, "min": mean_s,
                      "max": mean_s, "rounds": rounds, "ops": 1 / mean_s, "iqr": mean_s / 50},
            "extra_info": {"role": role, **extra}}


def write_benchmarks(run: Path, candidate_s: float = 0.003, rounds: int = 10) -> None:
    """benchmarks.json with one group: numpy (candidate) against torch (reference, 2 ms)."""
    data = {"benchmarks": [_bench("test_matmul_torch", "reference", 0.002, rounds),
                           _bench("test_matmul_numpy", "candidate", candidate_s, rounds, target_ratio=2.0)]}
    (run / "benchmarks.json").write_text(json.dumps(data))


def set_metric(run: Path, nodeid: str, name: str, value: float) -> None:
    """Rewrite one recorded metric in a run's evidence files (an injected change)."""
    for path in run.glob("evidence-*.jsonl"):
        records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        for rec in records:
            for m in rec["metrics"] if rec["nodeid"] == nodeid else []:
                if m["name"] == name:
                    m["value"] = value
        path.write_text("".join(json.dumps(r) + "\n" for r in records))


def make_run(run: Path, benchmarks: bool = True) -> Path:
    """A run folder as the harness plugin and pytest-benchmark write it."""
    from matplotlib.figure import Figure

    (run / "figures").mkdir(parents=True)
    (run / "run.json").write_text(json.dumps(RUN_INFO))
    fig = Figure(figsize=(2, 1.5))
    fig.add_subplot().plot([0, 1, 2], [1.0, 0.5, 0.2])
    figure = f"figures/{slug(F + '::test_pass')}-loss_curve.png"
    fig.savefig(run / figure)
    (run / "outcomes.jsonl").write_text("".join(json.dumps(o) + "\n" for o in OUTCOMES))
    evidence = [
        {"nodeid": f"{F}::test_pass", "area": "fundamentals",
         "metrics": [_metric("train_loss", 0.0123, threshold=0.5, direction="lower"),
                     _metric("test_accuracy", 0.973123, "", 0.95, "higher", key=True)],
         "figures": [{"name": "loss_curve", "file": figure, "caption": "training loss per epoch"}],
         "tables": [{"name": "per_class", "rows": [{"class": "cat", "recall": 0.123456789},
                                                   {"class": "dog", "recall": 0.987654321}]}],
         "texts": ["The network learns the digits."]},
        {"nodeid": f"{F}::test_fail", "area": "fundamentals",
         "metrics": [_metric("test_accuracy", 0.41, threshold=0.9, direction="higher", key=True)],
         "figures": [], "tables": [], "texts": []},
        {"nodeid": f"{F}::test_parity", "area": "fundamentals",
         "metrics": [_metric("max_abs_error", 3.2e-14, threshold=1e-10, direction="lower")],
         "figures": [], "tables": [], "texts": []},
    ]
    (run / "evidence-gw0.jsonl").write_text("".join(json.dumps(e) + "\n" for e in evidence[:2]))
    (run / "evidence-main.jsonl").write_text(json.dumps(evidence[2]) + "\n")
    if benchmarks:
        write_benchmarks(run)
    return run


def make_report_inputs(base: Path, benchmarks: bool = True) -> tuple[Path, Path, Path]:
    """(run folder, requirements.toml, validation.toml) under `base`."""
    requirements, answers = base / "requirements.toml", base / "validation.toml"
    requirements.write_text(REQUIREMENTS)
    answers.write_text(ANSWERS)
    return make_run(base / "run", benchmarks), requirements, answers


class _Rows(HTMLParser):
    """The text of every <tr id="row-..."> of a page, and of its status cell, by row id."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, str] = {}
        self.statuses: dict[str, str] = {}
        self._row: str | None = None
        self._in_status = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "tr" and (attributes.get("id") or "").startswith("row-"):
            self._row = (attributes["id"] or "").removeprefix("row-")
            self.rows[self._row] = self.statuses[self._row] = ""
        elif tag == "td" and self._row is not None:
            self._in_status = "status" in (attributes.get("class") or "").split()

    def handle_endtag(self, tag: str) -> None:
        if tag == "tr":
            self._row = None
        if tag in ("td", "tr"):
            self._in_status = False

    def handle_data(self, data: str) -> None:
        if self._row is not None:
            self.rows[self._row] += data
            if self._in_status:
                self.statuses[self._row] += data


def parse_rows(html: str) -> tuple[dict[str, str], dict[str, str]]:
    """(row text, status cell text) by row id, whitespace collapsed."""
    parser = _Rows()
    parser.feed(html)
    return ({k: " ".join(v.split()) for k, v in parser.rows.items()},
            {k: " ".join(v.split()) for k, v in parser.statuses.items()})


def rows_of(html: str) -> dict[str, str]:
    return parse_rows(html)[0]




def defined_tests(path: Path) -> set[str]:
    """Names of test functions and classes (and Class::method) defined in a test module."""
    import ast

    names = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        if isinstance(node, ast.ClassDef):
            names.update(f"{node.name}::{item.name}" for item in node.body if isinstance(item, ast.FunctionDef))
    return names


def listed_test_problem(nodeid: str) -> str | None:
    """Why a listed test id names no test (no such file, or the file defines no such test); None if it does."""
    import re

    file, _, name = nodeid.partition("::")
    path = ROOT / file
    if not re.fullmatch(r"assessments/.+/test_\w+\.py", file) or not path.exists():
        return f"no test file {file}"
    if name and re.sub(r"\[.*\]$", "", name) not in defined_tests(path):
        return f"{file} defines no {name}"
    return None
