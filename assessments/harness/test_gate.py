"""The regression gate on synthetic runs: a run passes against its own baseline and within the
tolerances, and fails on an injected regression of a key metric, a parity error or a benchmark
ratio; the report shows the comparison with direction marks."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from assessments.harness._helpers import F, ROOT, make_report_inputs, set_metric, write_benchmarks
from reports.build import build_report
from reports.gate import BaselineMissing, Policy, compare, load_policy, make_baseline, write_baseline

ACC = f"{F}::test_pass::test_accuracy"
PARITY = f"{F}::test_parity::max_abs_error"
RATIO = "matmul 256::test_matmul_numpy"


@pytest.fixture
def setup(tmp_path: Path):
    run, requirements, answers = make_report_inputs(tmp_path)
    baseline = write_baseline(run, tmp_path / "baseline.json")
    return run, requirements, tmp_path / "baseline.json", baseline


def verdicts(run: Path, baseline: dict) -> dict[str, str]:
    return {c.key: c.verdict for c in compare(run, baseline, Policy()).checks}


def test_baseline_holds_key_and_thresholded_metrics_and_ratios(setup) -> None:
    _, _, _, baseline = setup
    # test_fail's accuracy is left out: a failing test's number is no standard
    assert set(baseline["metrics"]) == {ACC, f"{F}::test_pass::train_loss", PARITY}
    assert baseline["metrics"][ACC]["value"] == pytest.approx(0.973123)
    assert baseline["benchmarks"][RATIO]["ratio"] == pytest.approx(1.5)
    assert baseline["run"]["budget"] == "smoke"


def test_same_run_passes(setup) -> None:
    run, _, _, baseline = setup
    result = compare(run, baseline)
    assert result.passed and {c.verdict for c in result.checks} == {"same"}


@pytest.mark.parametrize("key, value, verdict", [
    (ACC, 0.95, "regression"),                      # 2.3 points lost; allowed max(1%, 10% of margin)
    (ACC, 0.968, "worse (within tolerance)"),       # 0.5 points: noise
    (ACC, 0.99, "better"),
    (PARITY, 6e-14, "worse (within tolerance)"),    # last-digit wobble of a 1e-10 parity
    (PARITY, 5e-11, "regression"),                  # still under its threshold, but a real loss
])
def test_metric_moving_the_wrong_way_beyond_tolerance_fails(setup, key: str, value: float, verdict: str) -> None:
    run, _, _, baseline = setup
    nodeid, _, name = key.rpartition("::")
    set_metric(run, nodeid, name, value)
    result = compare(run, baseline)
    assert verdicts(run, baseline)[key] == verdict
    assert result.passed is (verdict != "regression")


@pytest.mark.parametrize("candidate_s, rounds, verdict", [
    (0.0045, 10, "regression"),                     # ratio 1.5 -> 2.25: +50% > 25%
    (0.0033, 10, "worse (within tolerance)"),       # +10%
    (0.0024, 10, "better"),
    (0.0045, 3, "not gated"),                       # too few rounds to judge
])
def test_benchmark_ratio_worsening_beyond_allowance_fails(setup, candidate_s: float, rounds: int,
                                                          verdict: str) -> None:
    run, _, _, baseline = setup
    write_benchmarks(run, candidate_s, rounds)
    assert verdicts(run, baseline)[RATIO] == verdict


def test_noise_widens_the_ratio_allowance(setup) -> None:
    run, _, _, baseline = setup
    write_benchmarks(run, 0.0045)
    baseline["benchmarks"][RATIO]["noise"] = 0.6  # a pair whose IQR is 60% of its median
    assert verdicts(run, baseline)[RATIO] == "worse (within tolerance)"


def test_unrecorded_metric_fails_and_deselected_test_is_not_compared(setup) -> None:
    run, _, _, baseline = setup
    set_metric(run, f"{F}::test_pass", "test_accuracy", float("nan"))  # not finite: not recorded
    outcomes = [json.loads(line) for line in (run / "outcomes.jsonl").read_text().splitlines()]
    (run / "outcomes.jsonl").write_text("".join(json.dumps(o) + "\n" for o in outcomes
                                                if o["nodeid"] != f"{F}::test_parity"))
    (run / "evidence-main.jsonl").unlink()  # test_parity's evidence
    found = verdicts(run, baseline)
    assert found[ACC] == "missing" and found[PARITY] == "not run"
    assert not compare(run, baseline).passed


def test_policy_file_and_overrides(tmp_path: Path, setup) -> None:
    run, _, _, baseline = setup
    (tmp_path / "gate.toml").write_text('[metrics]\nrelative = 0.0\nmargin = 0.0\n'
                                        '[[override]]\nmatch = "*::test_accuracy"\nrelative = 0.05\n')
    policy = load_policy(tmp_path / "gate.toml")
    set_metric(run, f"{F}::test_pass", "test_accuracy", 0.95)
    set_metric(run, f"{F}::test_parity", "max_abs_error", 3.3e-14)
    found = {c.key: c.verdict for c in compare(run, baseline, policy).checks}
    assert found[ACC] == "worse (within tolerance)" and found[PARITY] == "regression"
    committed = load_policy(ROOT / "reports" / "gate.toml")
    assert committed.metrics == Policy().metrics  # the committed file states the defaults
    assert committed.tolerance("a.py::test_x::latency", "ms").relative >= 0.5  # timings gated loosely
    assert committed.tolerance("a.py::test_x::accuracy", "") == committed.metrics


def test_baseline_of_another_budget_is_refused(setup) -> None:
    run, _, _, baseline = setup
    baseline["run"]["budget"] = "full"
    with pytest.raises(BaselineMissing, match="budget full"):
        compare(run, baseline)


def _gate_cli(run: Path, baseline: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "reports", "gate", "--run", str(run), "--baseline", str(baseline)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_cli_exit_codes_pass_regression_and_no_baseline(setup, tmp_path: Path) -> None:
    run, _, path, _ = setup
    ok = _gate_cli(run, path)
    assert ok.returncode == 0 and "gate passed" in ok.stdout, ok.stdout + ok.stderr
    set_metric(run, f"{F}::test_pass", "test_accuracy", 0.9)
    bad = _gate_cli(run, path)
    assert bad.returncode == 1 and "REGRESSION" in bad.stdout and ACC in bad.stdout
    missing = _gate_cli(run, tmp_path / "none.json")
    assert missing.returncode == 2 and "make baseline" in missing.stderr


def test_report_shows_this_run_against_the_baseline(setup, tmp_path: Path) -> None:
    run, requirements, path, _ = setup
    set_metric(run, f"{F}::test_pass", "test_accuracy", 0.9)
    report = build_report(run, tmp_path / "out", requirements, baseline=path,
                          answers=tmp_path / "validation.toml")
    assert report.gate is not None and not report.gate.passed
    page = (tmp_path / "out" / "gate.html").read_text()
    assert "gate FAILED: 1 regression(s)" in page and "↓" in page and "regression" in page
    index = (tmp_path / "out" / "index.html").read_text()
    assert "↓ vs 0.9731" in index  # the matrix's key metric, with its direction mark
    assert "vs baseline" in (tmp_path / "out" / "benchmarks.html").read_text()


def test_report_without_a_baseline_says_how_to_make_one(setup, tmp_path: Path) -> None:
    run, requirements, _, _ = setup
    build_report(run, tmp_path / "out", requirements, baseline=tmp_path / "none.json",
                 answers=tmp_path / "validation.toml")
    assert "make baseline" in (tmp_path / "out" / "gate.html").read_text()


def test_make_baseline_is_deterministic(setup) -> None:
    run, _, _, baseline = setup
    again = make_baseline(run)
    assert {k: v for k, v in again.items() if k != "created"} == {k: v for k, v in baseline.items() if k != "created"}
