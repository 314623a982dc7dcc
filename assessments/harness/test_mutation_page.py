"""The report's mutation page shows `make mutation`'s score and every survivor with its fate.

A survivor with neither a test that kills it nor an argument that it is equivalent is flagged;
a missing or malformed result file says what to run instead of failing the build.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from assessments.harness._helpers import make_report_inputs
from reports.build import build_report
from reports.mutation import load_mutation


def mutation_json(path: Path, survivors: list[dict]) -> Path:
    path.write_text(json.dumps({
        "tool": "mutmut 3.8.1", "seconds": 3639, "finished": "2026-11-30 10:06",
        "counts": {"killed": 90, "survived": len(survivors)}, "killed": 90, "checked": 90 + len(survivors),
        "score": 90 / (90 + len(survivors)), "goal": 0.9, "after": {"score": 0.97},
        "survivors": survivors}))
    return path


SURVIVORS = [
    {"name": "m.layers.x_shape__mutmut_13", "file": "layers.py", "status": "survived", "diff": "-1 -> -2",
     "explanation": "reshape reads any negative size as -1", "killed_by": ""},
    {"name": "m.layers.x_init__mutmut_12", "file": "layers.py", "status": "survived", "diff": "<= -> <",
     "explanation": "", "killed_by": "assessments/fundamentals/test_torch_twins_api.py::test_boundary"},
    {"name": "m.losses.x_focal__mutmut_7", "file": "losses.py", "status": "survived", "diff": "* -> /",
     "explanation": "", "killed_by": ""},
]


@pytest.fixture
def inputs(tmp_path: Path) -> tuple[Path, Path, Path]:
    return make_report_inputs(tmp_path, benchmarks=False)


def test_page_shows_score_survivors_and_flags_the_unexplained(tmp_path: Path, inputs) -> None:
    run, requirements, answers = inputs
    result = mutation_json(tmp_path / "mutation.json", SURVIVORS)
    build_report(run, tmp_path / "out", requirements, baseline=None, answers=answers, mutation=result)
    html = (tmp_path / "out" / "mutation.html").read_text()
    assert "90 of 93 checked mutants killed (96.8%)" in html
    assert "with the tests added for the survivors 97.0%" in html
    assert "reshape reads any negative size as -1" in html and "test_boundary" in html
    assert "1 survivor(s) have neither a killing test nor an equivalence argument" in html
    assert [s["name"] for s in load_mutation(result).unexplained] == ["m.losses.x_focal__mutmut_7"]
    assert 'href="mutation.html"' in (tmp_path / "out" / "index.html").read_text()


def test_without_a_result_the_page_says_what_to_run(tmp_path: Path, inputs) -> None:
    run, requirements, answers = inputs
    build_report(run, tmp_path / "out", requirements, baseline=None, answers=answers,
                 mutation=tmp_path / "absent.json")
    assert "run <code>make mutation</code>" in (tmp_path / "out" / "mutation.html").read_text()


def test_a_malformed_result_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "mutation.json"
    bad.write_text(json.dumps({"tool": "mutmut"}))
    with pytest.raises(ValueError, match="not a mutation result"):
        load_mutation(bad)


def test_the_committed_result_meets_its_goal_with_every_survivor_accounted_for() -> None:
    result = load_mutation()
    assert result is not None, "reports/mutation.json is missing: run `make mutation`"
    assert result.after_score is not None and result.after_score >= result.goal
    assert result.unexplained == [], [s["name"] for s in result.unexplained]
