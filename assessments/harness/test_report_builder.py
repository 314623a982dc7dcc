"""The report builder on a synthetic run: statuses (partial when tests were deselected or skipped),
requirement pages, key metrics, figures, skips, benchmarks, notebooks, the CLI."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from assessments.harness._helpers import F, ROOT, make_report_inputs, make_run, parse_rows, rows_of
from reports.build import build_report
from reports.evidence import slug
from reports.matrix import matches, row_status
from reports.numbers import fmt_number
from reports.proof import form_of


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory):
    base = tmp_path_factory.mktemp("report")
    run, requirements, answers = make_report_inputs(base)
    (run / "notebooks").mkdir()
    (run / "notebooks" / "fundamentals.html").write_text("<html><body>executed notebook</body></html>")
    out = base / "out"
    report = build_report(run, out, requirements, baseline=None, answers=answers)
    return report, out, requirements, run


@pytest.mark.parametrize("outcomes, listed, not_run, expected", [
    ([], 0, 0, "not yet covered"),
    ([], 1, 1, "not run"),
    (["passed", "failed"], 2, 0, "failed"),
    (["passed", "error"], 1, 0, "failed"),
    (["skipped", "skipped"], 1, 0, "skipped"),
    (["passed", "passed"], 1, 0, "passed"),
    (["passed", "skipped", "passed"], 1, 0, "partial"),
    (["xpass", "xfail"], 1, 0, "partial"),
    (["passed", "passed"], 3, 1, "partial"),  # one listed test deselected: never "passed"
    (["passed", "failed"], 3, 1, "failed"),
])
def test_row_status_rules(outcomes: list[str], listed: int, not_run: int, expected: str) -> None:
    assert row_status(outcomes, listed, not_run) == expected


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


@pytest.mark.parametrize("nodeid, form", [
    ("assessments/fundamentals/test_mlp_torch_parity.py::test_loss_and_every_gradient_match_torch",
     "parity with a reference"),
    ("assessments/fundamentals/test_losses.py::test_loss_gradient_matches_central_differences[mse]", "gradient check"),
    ("assessments/cnn/test_efficientnet.py::test_lite0_weights_load_strict_and_classify_real_photos", "real weights"),
    ("assessments/rnn/test_bidirectional.py::test_bilstm_beats_unidirectional_on_wnut16", "baseline beaten"),
    ("assessments/fundamentals/test_losses.py::test_focal_down_weights_every_example", "property"),  # @given
    ("assessments/fundamentals/test_losses.py::test_losses_reject_bad_input", "input checks"),
    ("assessments/fundamentals/test_bench_mlp_step.py::test_numpy_mlp_step", "benchmark"),
    ("assessments/x/test_y.py::test_z", "demonstration"),
])
def test_form_of_proof_from_name_and_source(nodeid: str, form: str) -> None:
    assert form_of(nodeid) == form
    assert form_of(nodeid, stated="real weights") == "real weights"  # requirements.toml overrides


def test_a_recorded_baseline_makes_a_demonstration_a_baseline_beaten() -> None:
    assert form_of("assessments/x/test_y.py::test_z", metrics=("test_accuracy", "majority_class_baseline")) == \
        "baseline beaten"


def test_each_row_shows_its_status(built) -> None:
    report, out, _, _ = built
    rows, statuses = parse_rows((out / "index.html").read_text())
    expected = {"r.pass": "passed", "r.fail": "failed", "r.skip": "skipped", "r.param": "partial",
                "r.class": "passed", "r.deselected": "not run", "r.none": "not yet covered",
                "q.1": "passed", "q.2": "not run"}
    assert {r.item.id: r.status for r in report.requirements + report.questions} == expected
    assert {k: v for k, v in statuses.items() if v in ("passed", "not run", "not yet covered")} == \
        {k: v for k, v in expected.items() if v in ("passed", "not run", "not yet covered")}
    assert statuses["r.param"] == "partial 1 case skipped"  # amber, with the count, never "passed"
    assert statuses["r.fail"] == "failed 1 case failed" and statuses["r.skip"] == "skipped 1 case skipped"
    assert "none listed" in rows["r.none"]
    assert report.summary.startswith("7 requirements: 2 passed, 1 partial, 1 failed, 1 skipped, 1 not run, "
                                     "1 not yet covered")


def test_partly_deselected_requirement_is_partial(tmp_path: Path, built) -> None:
    """A listed parity test deselected (`-m "not torch"`) leaves the row partial, with the counts."""
    _, _, requirements, run = built
    text = requirements.read_text().replace(
        'tests = ["' + F + '::test_pass"]', 'tests = ["' + F + '::test_pass", "' + F + '::test_torch_parity"]')
    (tmp_path / "req.toml").write_text(text)
    report = build_report(run, tmp_path / "out", tmp_path / "req.toml", baseline=None)
    row = next(r for r in report.requirements if r.item.id == "r.pass")
    assert row.status == "partial" and row.detail == "1 of 2 listed tests ran"
    page = (tmp_path / "out" / "req-r.pass.html").read_text()
    assert "Partial: 1 of 2 listed tests ran" in page


def test_deselected_parametrised_cases_make_the_row_partial(tmp_path: Path, built) -> None:
    """Cases a session deselected (deselected.jsonl) count against their row, unless another session
    of the run ran them (the benchmark session deselects everything the main one ran)."""
    _, _, requirements, _ = built
    run = make_run(tmp_path / "run")
    (run / "deselected.jsonl").write_text(
        '{"nodeid": "' + F + '::test_class_free[x]"}\n{"nodeid": "' + F + '::TestSuite::test_c"}\n'
        '{"nodeid": "' + F + '::test_pass"}\n')
    report = build_report(run, tmp_path / "out", requirements, baseline=None)
    rows = {r.item.id: r for r in report.requirements}
    assert rows["r.class"].status == "partial" and rows["r.class"].detail == "1 case deselected"
    assert rows["r.pass"].status == "passed"  # deselected in one session, run in another


def test_key_metric_with_threshold_and_mark(built) -> None:
    _, out, _, _ = built
    rows = rows_of((out / "index.html").read_text())
    assert "test_accuracy = 0.9731 (threshold ≥ 0.95) ✓" in rows["r.pass"]
    assert "train_loss" not in rows["r.pass"]  # the key metric, not the first one
    assert "test_accuracy = 0.41 (threshold ≥ 0.9) ✗" in rows["r.fail"]
    assert "max_abs_error = 3.2e-14 (threshold ≤ 1e-10) ✓" in rows["q.1"]  # no key: the first


def test_matrix_links_each_row_to_its_page_with_a_thumbnail(built) -> None:
    report, out, _, _ = built
    index = (out / "index.html").read_text()
    for row in report.requirements:
        assert f'href="req-{slug(row.item.id)}.html"' in index
        assert (out / f"req-{slug(row.item.id)}.html").is_file()
    thumb = re.search(r'<img class="thumb" src="([^"]+)"', rows_html(index, "r.pass"))
    assert thumb and (out / thumb.group(1)).read_bytes()[:4] == b"\x89PNG"
    assert "<img" not in rows_html(index, "r.fail")  # no figure recorded: no thumbnail


def rows_html(index: str, row_id: str) -> str:
    start = index.index(f'<tr id="row-{row_id}"')
    return index[start:index.index("</tr>", start)]


def test_requirement_page_shows_claim_proof_figure_and_folded_tests(built) -> None:
    _, out, _, _ = built
    page = (out / "req-r.pass.html").read_text()
    assert "A requirement whose test passed" in page
    assert "How it is proven" in page and "demonstration" in page
    assert '<img src="figures/' in page and "training loss per epoch" in page
    assert "test_accuracy" in page and "≥ 0.95" in page
    assert "<td>0.1235</td>" in page and "The network learns the digits." in page
    folded = page[page.index("<details"):]
    assert f"{F}::test_pass" in folded  # test ids only at the bottom, folded
    assert f'href="area-fundamentals.html#{slug(F + "::test_pass")}"' in page
    assert 'href="notebooks/fundamentals.html"' in page


def test_parametrised_test_is_one_row_with_its_cases(built) -> None:
    report, out, _, _ = built
    page = (out / "req-r.param.html").read_text()
    proof = page[page.index('id="proof"'):page.index("</ul>", page.index('id="proof"'))]
    assert proof.count("<li>") == 1 and "3 cases" in proof and "2 passed, 1 skipped" in proof
    assert "swish not implemented yet" in page
    area = (out / "area-fundamentals.html").read_text()
    assert area.count(f'id="{slug(F + "::test_param")}"') == 1  # one section for the function
    assert f'id="{slug(F + "::test_param[swish]")}"' in area  # and an anchor per case


def test_source_links_point_at_real_files(tmp_path: Path, built) -> None:
    from reports.views import source_href

    out = tmp_path / "out"
    out.mkdir()
    href = source_href("assessments/harness/test_report_builder.py::test_x", out)
    assert href and (out / href).resolve() == Path(__file__).resolve()
    assert source_href(f"{F}::test_pass", out) is None  # no such file: no link


def test_notebooks_are_copied_and_linked_or_marked_absent(built) -> None:
    _, out, _, _ = built
    assert (out / "notebooks" / "fundamentals.html").read_text().startswith("<html>")
    index = (out / "index.html").read_text()
    assert 'href="notebooks/fundamentals.html"' in index
    assert "not executed in this run" in (out / "req-r.skip.html").read_text()  # cnn has none


def test_index_states_the_selection_and_wall_time(built) -> None:
    _, out, _, _ = built
    index = (out / "index.html").read_text()
    assert '-m "not benchmark"' in index and "tox env <strong>numpy</strong>" in index
    assert "budget <strong>smoke</strong>" in index
    glance = index[index.index('id="glance"'):index.index('id="requirements"')]
    assert "2.5 s" in glance  # fundamentals: 1.25 + 0.5 + 0.1 * 5 + 0.2 + 0.1 (rounded)


def test_area_time_comes_from_junit_when_the_run_wrote_it(tmp_path: Path, built) -> None:
    """JUnit's testcase time holds setup + call + teardown: a module fixture's training counts."""
    from reports.views import junit_times

    _, _, requirements, _ = built
    run = make_run(tmp_path / "run")
    (run / "junit.xml").write_text(
        '<?xml version="1.0"?><testsuites><testsuite name="pytest">'
        '<testcase classname="assessments.fundamentals.test_fake" name="test_pass" time="41.5"/>'
        '<testcase classname="assessments.fundamentals.test_fake" name="test_fail" time="0.5"/>'
        '<testcase classname="assessments.cnn.test_gpu" name="test_on_gpu" time="0.25"/>'
        '</testsuite></testsuites>')
    assert junit_times(run) == {"fundamentals": 42.0, "cnn": 0.25}
    build_report(run, tmp_path / "out", requirements, baseline=None)
    index = (tmp_path / "out" / "index.html").read_text()
    assert "42.0 s" in index[index.index('id="glance"'):index.index('id="requirements"')]


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
    png = out / "figures" / "benchmarks.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 2000
    assert '<img src="figures/benchmarks.png"' in page
    assert '<h2 id="area-fundamentals">fundamentals</h2>' in page  # grouped by the test's area


def test_missing_benchmarks_are_reported(tmp_path: Path, built) -> None:
    _, _, requirements, _ = built
    run = make_run(tmp_path / "run", benchmarks=False)
    report = build_report(run, tmp_path / "out", requirements, baseline=None)
    assert report.groups is None
    assert "no benchmark session in this run" in (tmp_path / "out" / "benchmarks.html").read_text()
    assert not (tmp_path / "out" / "figures" / "benchmarks.png").exists()


def test_rebuild_replaces_out_but_never_clears_a_foreign_folder(tmp_path: Path, built) -> None:
    _, _, requirements, run = built
    out = tmp_path / "out"
    build_report(run, out, requirements, baseline=None)
    (out / "stale.html").write_text("old")
    build_report(run, out, requirements, baseline=None)
    assert not (out / "stale.html").exists() and (out / "index.html").is_file()
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="refusing"):
        build_report(run, foreign, requirements, baseline=None)
    assert (foreign / "notes.txt").read_text() == "keep me"


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "reports", "build", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def test_cli_builds_and_prints_the_summary(tmp_path: Path, built) -> None:
    _, _, requirements, run = built
    out = tmp_path / "cli-out"
    done = _cli("--run", str(run), "--out", str(out), "--requirements", str(requirements),
                "--baseline", str(tmp_path / "no-baseline.json"))
    assert done.returncode == 0, done.stderr
    assert str(out / "index.html") in done.stdout
    assert "7 requirements: 2 passed, 1 partial, 1 failed, 1 skipped, 1 not run, 1 not yet covered" in done.stdout
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


def test_run_info_records_each_sessions_selection(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """run.json states what produced the run: -m expression, -k, paths, budget, tox env; an appended
    (benchmark) session adds its own selection and keeps the first session's header."""
    import json
    from types import SimpleNamespace

    from harness.plugin import _write_run_info

    def config(markexpr: str, args: list[str]) -> SimpleNamespace:
        options = {"--budget": "smoke", "--seed": 0}
        return SimpleNamespace(option=SimpleNamespace(markexpr=markexpr, keyword="", numprocesses=None), args=args,
                               getoption=options.__getitem__)

    monkeypatch.setenv("TOX_ENV_NAME", "numpy")
    path = tmp_path / "run.json"
    _write_run_info(config("not torch and not benchmark", ["assessments/fundamentals"]), path)
    first = json.loads(path.read_text())
    _write_run_info(config("benchmark", []), path)
    info = json.loads(path.read_text())
    assert info["started"] == first["started"] and info["budget"] == "smoke"
    assert [s["markexpr"] for s in info["sessions"]] == ["not torch and not benchmark", "benchmark"]
    assert info["sessions"][0]["tox_env"] == "numpy" and info["sessions"][0]["args"] == ["assessments/fundamentals"]


def test_benchmark_plot_labels_cover_no_marker_and_nothing_is_clipped() -> None:
    """The benchmark page's old faults: value labels drawn on the target diamonds, a clipped x label."""
    from reports.benchmarks import Bench, compare, ratio_figure

    def bench(name: str, role: str, median: float, target: float | None = None, area: str = "fundamentals"):
        return Bench(name, f"assessments/{area}/test_b.py::{name}", f"g-{name[-1]}", role, median, median=median,
                     rounds=20, target_ratio=target)

    benches = [bench("ref_1", "reference", 1.0), bench("cand_1", "candidate", 1.4, 1.5),  # target just past the bar
               bench("ref_2", "reference", 1.0, area="cnn"), bench("cand_2", "candidate", 2.0, 2.0, area="cnn")]
    groups = compare(benches)
    fig = ratio_figure(groups, {"g-1::cand_1": 1.45})
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    (ax,) = fig.axes
    points = [xy for coll in ax.collections for xy in ax.transData.transform(coll.get_offsets())]
    assert len(points) == 3  # two targets and one baseline tick
    for text in ax.texts:
        box = text.get_window_extent(renderer)
        assert not any(box.contains(x, y) for x, y in points), f"label {text.get_text()!r} covers a marker"
    whole = fig.bbox  # the canvas itself, before any tight cropping
    for artist in [ax.xaxis.label, *ax.get_yticklabels(), *ax.texts, *fig.legends]:
        box = artist.get_window_extent(renderer)
        assert whole.x0 <= box.x0 and box.x1 <= whole.x1 and whole.y0 <= box.y0 and box.y1 <= whole.y1
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels[0].startswith("[cnn]") and labels[1].startswith("[fundamentals]")  # grouped by area
