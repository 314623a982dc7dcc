"""The harness plugin works as an installed pytest plugin, from any folder, and keeps runs apart.

Each test runs pytest in a subprocess on a tiny test file outside the repository, the way a user
would point it at a folder of their own: the plugin must come from the `pytest11` entry point
(no conftest.py is in reach), `--run-dir DIR` must work with a space, and a session that runs no
test must leave the previous run's evidence alone.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

TINY_TESTS = '''
def test_records(evidence):
    evidence.metric("answer", 42.0, threshold=40, direction="higher", key=True)

def test_other(evidence):
    evidence.text("second test")
'''


def run_pytest(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """pytest on tmp_path/tests (outside the repository), from tmp_path as working folder."""
    tests = tmp_path / "tests"
    tests.mkdir(exist_ok=True)
    (tests / "test_tiny.py").write_text(TINY_TESTS)
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args,
                           str(tests)], cwd=tmp_path, capture_output=True, text=True, timeout=120)


def evidence_lines(run_dir: Path) -> list[dict]:
    return [json.loads(line) for path in sorted(run_dir.glob("evidence-*.jsonl"))
            for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture
def earlier_run(tmp_path: Path) -> Path:
    """A run folder as an earlier session left it: evidence, outcomes and a figure."""
    run_dir = tmp_path / "run"
    (run_dir / "figures").mkdir(parents=True)
    (run_dir / "evidence-gw0-0123456789ab.jsonl").write_text('{"nodeid": "old::test", "metrics": []}\n')
    (run_dir / "outcomes.jsonl").write_text('{"nodeid": "old::test", "outcome": "passed"}\n')
    (run_dir / "figures" / "old.png").write_bytes(b"png")
    return run_dir


def test_run_dir_with_a_space_works_outside_the_repository(tmp_path: Path, earlier_run: Path) -> None:
    result = run_pytest(tmp_path, "--run-dir", str(earlier_run), "--budget", "smoke")
    assert result.returncode == 0, result.stdout + result.stderr
    outcomes = [json.loads(line) for line in (earlier_run / "outcomes.jsonl").read_text().splitlines()]
    assert sorted(o["nodeid"].split("::")[-1] for o in outcomes) == ["test_other", "test_records"]
    assert all(o["outcome"] == "passed" for o in outcomes)
    lines = evidence_lines(earlier_run)
    assert [m["value"] for line in lines for m in line["metrics"]] == [42.0]
    assert not (earlier_run / "figures" / "old.png").exists(), "an earlier run's figure survived"
    assert json.loads((earlier_run / "run.json").read_text())["budget"] == "smoke"


@pytest.mark.parametrize("args", [("--co",), ("-m", "no_such_marker")], ids=["collect-only", "all-deselected"])
def test_a_session_that_runs_no_test_leaves_the_run_alone(tmp_path: Path, earlier_run: Path,
                                                          args: tuple[str, ...]) -> None:
    before = {p.relative_to(earlier_run): p.read_bytes() for p in earlier_run.rglob("*") if p.is_file()}
    result = run_pytest(tmp_path, "--run-dir", str(earlier_run), *args)
    assert result.returncode in (0, 5), result.stdout + result.stderr
    after = {p.relative_to(earlier_run): p.read_bytes() for p in earlier_run.rglob("*") if p.is_file()}
    assert after == before


def test_xdist_workers_write_under_the_sessions_token(tmp_path: Path, earlier_run: Path) -> None:
    result = run_pytest(tmp_path, "-n", "2", f"--run-dir={earlier_run}")
    assert result.returncode == 0, result.stdout + result.stderr
    files = sorted(p.name for p in earlier_run.glob("evidence-*.jsonl"))
    assert files and all(name.startswith("evidence-gw") for name in files), files
    assert len({name.rsplit("-", 1)[-1] for name in files}) == 1, "workers used different tokens"
    assert sorted(line["nodeid"].split("::")[-1] for line in evidence_lines(earlier_run)) == \
        ["test_other", "test_records"]
