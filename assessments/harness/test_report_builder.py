"""The report builder on a synthetic run: matrix statuses, key metrics, figures, skips, benchmarks, CLI."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from reports.build import build_report
from reports.evidence import slug
from reports.matrix import matches, row_status
from reports.numbers import fmt_number

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
'''

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


def _bench(name: str, role: str, mean_s: float, **extra) -> dict:
    return {"group": "matmul 256", "name": name, "fullname": f"{F}::{name}",
            "stats": {"mean": mean_s, "stddev": mean_s / 10, "median": mean_s, "min": mean_s,
                      "max": mean_s, "rounds": 10, "ops": 1 / mean_s},
            "extra_info": {"role": role, **extra}}


def make_run(run: Path, benchmarks: bool = True) -> Path:
    """A run folder as conftest.py and pytest-benchmark write it."""
    from matplotlib.figure import Figure

    (run / "figures").mkdir(parents=True)
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
        data = {"benchmarks": [_bench("test_matmul_torch", "reference", 0.002),
                               _bench("test_matmul_numpy", "candidate", 0.003, target_ratio=2.0)]}
        (run / "benchmarks.json").write_text(json.dumps(data))
    return run


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


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory):
    base = tmp_path_factory.mktemp("report")
    requirements = base / "requirements.toml"
    requirements.write_text(REQUIREMENTS)
    run = make_run(base / "run")
    out = base / "out"
    report = build_report(run, out, requirements)
    return report, out, requirements, run


@pytest.mark.parametrize("outcomes, listed, expected", [
    ([], 0, "not yet covered"),
    ([], 1, "not run"),
    (["passed", "failed"], 2, "failed"),
    (["passed", "error"], 1, "failed"),
    (["skipped", "skipped"], 1, "skipped"),
    (["passed", "passed"], 1, "passed"),
    (["passed", "skipped", "passed"], 1, "passed (1 skipped)"),
    (["xpass", "xfail"], 1, "passed (1 skipped)"),
])
def test_row_status_rules(outcomes: list[str], listed: int, expected: str) -> None:
    assert row_status(outcomes, listed) == expected


@pytest.mark.parametrize("listed, nodeid, expected", [
    ("a.py::test_x", "a.py::test_x", True),
    ("a.py::test_x", "a.py::test_x[relu-3]", True),
    ("a.py::TestC", "a.py::TestC::test_y[1]", True),
    ("a.py::test_x", "a.py::test_xy", False),
    ("a.py::test_x", "b.py::test_x", False),
])
def test_listed_ids_match_parameters_and_classes(listed: str, nodeid: str, expected: bool) -> None:
    assert matches(listed, nodeid) is expected


@pytest.mark.parametrize("value, text", [
    (0.973123, "0.9731"), (3.2e-14, "3.2e-14"), (12345.67, "12346"), (20.0, "20"), (7, "7"),
    (9999.9, "10000"), (1.23456e-9, "1.235e-9"), (None, ""),
])
def test_numbers_have_four_significant_digits(value: object, text: str) -> None:
    assert fmt_number(value) == text


def test_each_row_shows_its_status(built) -> None:
    report, out, _, _ = built
    rows, statuses = parse_rows((out / "index.html").read_text())
    expected = {"r.pass": "passed", "r.fail": "failed", "r.skip": "skipped",
                "r.param": "passed (1 skipped)", "r.class": "passed", "r.deselected": "not run",
                "r.none": "not yet covered", "q.1": "passed"}
    assert statuses == expected
    assert {r.item.id: r.status for r in report.requirements + report.questions} == expected
    assert "2 passed, 1 skipped" in rows["r.param"]
    assert "none listed" in rows["r.none"]
    assert report.summary.startswith("7 requirements: 3 passed, 1 failed, 1 skipped, 1 not run, 1 not yet covered")


def test_key_metric_with_threshold_and_mark(built) -> None:
    _, out, _, _ = built
    rows = rows_of((out / "index.html").read_text())
    assert "test_accuracy = 0.9731 (threshold ≥ 0.95) ✓" in rows["r.pass"]
    assert "train_loss" not in rows["r.pass"]  # the key metric, not the first one
    assert "test_accuracy = 0.41 (threshold ≥ 0.9) ✗" in rows["r.fail"]
    assert "max_abs_error = 3.2e-14 (threshold ≤ 1e-10) ✓" in rows["q.1"]  # no key: the first


def test_tests_link_to_their_area_anchor(built) -> None:
    _, out, _, _ = built
    index = (out / "index.html").read_text()
    anchor = slug(f"{F}::test_pass")
    assert f'href="area-fundamentals.html#{anchor}"' in index
    assert f'id="{anchor}"' in (out / "area-fundamentals.html").read_text()
    assert 'id="' + slug("assessments/cnn/test_gpu.py::test_on_gpu") + '"' in (out / "area-cnn.html").read_text()


def test_area_page_has_figure_table_and_text(built) -> None:
    _, out, _, _ = built
    page = (out / "area-fundamentals.html").read_text()
    srcs = re.findall(r'<img src="([^"]+)"', page)
    assert srcs and all((out / src).is_file() for src in srcs)
    assert (out / srcs[0]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "training loss per epoch" in page
    assert "<td>0.1235</td>" in page and "<td>0.9877</td>" in page and "0.123456789" not in page
    assert "The network learns the digits." in page
    assert "r.pass" in page  # which requirement the test proves


def test_skips_list_every_skip_with_its_reason(built) -> None:
    _, out, _, _ = built
    index = (out / "index.html").read_text()
    skips = index[index.index('id="skips"'):]
    assert "needs a CUDA GPU; none on this machine" in skips
    assert "swish not implemented yet" in skips
    assert "test_gpu.py::test_on_gpu" in skips


def test_benchmark_ratio_table_and_plot(built) -> None:
    report, out, _, _ = built
    (ratio,) = [c.ratio for g in report.groups for c in g.ratios]
    assert ratio == pytest.approx(1.5)
    page = (out / "benchmarks.html").read_text()
    assert re.search(r'<td class="num">1\.5</td>', page)
    assert "≤ 2" in page and "✓" in page
    assert "1.5×" in (out / "index.html").read_text()
    png = out / "figures" / "benchmarks.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 2000
    assert '<img src="figures/benchmarks.png"' in page


def test_missing_benchmarks_are_reported(tmp_path: Path, built) -> None:
    _, _, requirements, _ = built
    run = make_run(tmp_path / "run", benchmarks=False)
    report = build_report(run, tmp_path / "out", requirements)
    assert report.groups is None
    assert "no benchmark session in this run" in (tmp_path / "out" / "benchmarks.html").read_text()
    assert not (tmp_path / "out" / "figures" / "benchmarks.png").exists()


def test_rebuild_replaces_out_but_never_clears_a_foreign_folder(tmp_path: Path, built) -> None:
    _, _, requirements, run = built
    out = tmp_path / "out"
    build_report(run, out, requirements)
    (out / "stale.html").write_text("old")
    build_report(run, out, requirements)
    assert not (out / "stale.html").exists() and (out / "index.html").is_file()
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="refusing"):
        build_report(run, foreign, requirements)
    assert (foreign / "notes.txt").read_text() == "keep me"


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "reports", "build", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def test_cli_builds_and_prints_the_summary(tmp_path: Path, built) -> None:
    _, _, requirements, run = built
    out = tmp_path / "cli-out"
    done = _cli("--run", str(run), "--out", str(out), "--requirements", str(requirements))
    assert done.returncode == 0, done.stderr
    assert str(out / "index.html") in done.stdout
    assert "7 requirements: 3 passed, 1 failed, 1 skipped, 1 not run, 1 not yet covered" in done.stdout
    assert rows_of((out / "index.html").read_text())["r.none"].count("not yet covered") == 1


@pytest.mark.parametrize("make_dir", [False, True], ids=["missing", "empty"])
def test_cli_without_a_run_exits_2_with_the_hint(tmp_path: Path, make_dir: bool, built) -> None:
    _, _, requirements, _ = built
    run = tmp_path / "run"
    if make_dir:
        run.mkdir()
    done = _cli("--run", str(run), "--out", str(tmp_path / "out"), "--requirements", str(requirements))
    assert done.returncode == 2
    assert "make test" in done.stderr
    assert not (tmp_path / "out").exists()
