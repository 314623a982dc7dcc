"""The validation page: the eight answers in reports/validation.toml are well formed, cite real tests
and requirements, type no numbers, and are filled from a run's evidence (pending when their area
did not run)."""
from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from assessments.harness._helpers import F, ROOT, listed_test_problem, make_report_inputs, set_metric
from reports.build import build_report
from reports.matrix import load_run
from reports.validation import DEFAULT_ANSWERS, AnswerSpec, ValueSpec, load_answers, problems, resolve

MAP = tomllib.loads((ROOT / "assessments" / "requirements.toml").read_text())


@pytest.fixture(scope="module")
def committed() -> list[AnswerSpec]:
    return load_answers(DEFAULT_ANSWERS)


def test_committed_answers_are_well_formed(committed) -> None:
    questions = [q["id"] for q in MAP["question"]]
    asked = [a.question for a in committed]
    assert sorted(asked) == sorted(questions), "one [[answer]] per question of requirements.toml"
    found = [p for spec in committed for p in problems(spec)]
    assert not found, "\n".join(found)


def test_committed_answers_cite_real_requirements_and_tests(committed) -> None:
    ids = {r["id"] for r in MAP["requirement"]}
    found = []
    for spec in committed:
        found += [f"{spec.question}: no requirement {r}" for r in spec.requirements if r not in ids]
        tests = [v.test for v in spec.values.values()] + [f.get("test", "") for f in spec.figures]
        found += [f"{spec.question}: {p}" for t in tests if (p := listed_test_problem(t))]
    assert not found, "\n".join(found)


@pytest.mark.parametrize("prose, values, expected", [
    ("Accuracy was 0.97 on digits.", {}, "a number typed into the prose"),
    ("Errors reached 1e-7 at worst.", {}, "a number typed into the prose"),
    ("It took {epochs} epochs.", {}, "{epochs} has no [answer.values.epochs]"),
    ("Nothing measured here.", {"acc": ValueSpec("acc", F, "acc")}, "'acc' is defined but never used"),
    ("It reached {acc.value}.", {"acc": ValueSpec("acc", F, "acc")}, "malformed placeholder"),
])
def test_the_checker_catches_typed_numbers_and_bad_placeholders(prose: str, values: dict, expected: str) -> None:
    found = problems(AnswerSpec("q.x", prose, values=values))
    assert any(expected in p for p in found), found


def test_names_with_digits_are_not_typed_numbers() -> None:
    spec = AnswerSpec("q.x", "L1 and L2 penalties, as q.6 and nn.LSTM say, reach {a}.",
                      values={"a": ValueSpec("a", F, "m")})
    assert problems(spec) == []


@pytest.fixture
def synthetic(tmp_path: Path):
    run, requirements, answers = make_report_inputs(tmp_path)
    return run, requirements, {a.question: a for a in load_answers(answers)}


def test_answers_are_filled_from_the_run(synthetic) -> None:
    run, _, specs = synthetic
    answer = resolve(specs["q.1"], load_run(run))
    text = " ".join(str(p) for p in answer.paragraphs)
    assert answer.status == "answered"
    assert ">3.2e-14<" in text and ">≤ 1e-10<" in text  # metric (wildcard, max) and its threshold
    assert ">0.9877<" in text  # a table cell picked by its row
    assert ">0.41<" in text  # reduce="min" over every test of the file
    assert [f["name"] for f in answer.figures] == ["loss_curve"]
    set_metric(run, f"{F}::test_parity", "max_abs_error", 7.5e-12)
    again = " ".join(str(p) for p in resolve(specs["q.1"], load_run(run)).paragraphs)
    assert ">7.5e-12<" in again and "3.2e-14" not in again  # live: the run's number, not a typed one


def test_unmeasured_value_makes_the_answer_partial(synthetic) -> None:
    run, _, specs = synthetic
    spec = specs["q.1"]
    spec.values["err"] = ValueSpec("err", f"{F}::test_parity", "no_such_metric")
    answer = resolve(spec, load_run(run))
    assert answer.status == "partial" and "not measured in this run" in str(answer.paragraphs[0])


def test_question_whose_area_did_not_run_is_pending(synthetic) -> None:
    run, _, specs = synthetic
    answer = resolve(specs["q.2"], load_run(run))
    assert answer.status == "pending" and answer.paragraphs == []
    assert "generative" in answer.note and "-m generative" in answer.note


def test_validation_page_links_answers_to_requirement_pages(synthetic, tmp_path: Path) -> None:
    run, requirements, _ = synthetic
    out = tmp_path / "out"
    build_report(run, out, requirements, baseline=None, answers=tmp_path / "validation.toml")
    page = (out / "validation.html").read_text()
    q1 = page[page.index('id="q.1"'):page.index('id="q.2"')]
    assert 'href="req-r.pass.html"' in q1 and 'href="req-r.param.html"' in q1
    assert "3.2e-14" in q1 and '<img src="figures/' in q1
    q2 = page[page.index('id="q.2"'):]
    assert "Pending: no test of generative ran" in q2
    assert 'href="validation.html#q.1"' in (out / "index.html").read_text()
    assert 'href="validation.html#q.1"' in (out / "req-r.pass.html").read_text()  # and back
