"""The requirement map is complete and honest.

Every bullet and validation question of the seed (fixtures/seed/requirements.md, a verbatim
copy of the user's requirements) has exactly one entry in assessments/requirements.toml, and
every test an entry names exists.
"""
import tomllib
from pathlib import Path

import pytest

from assessments.harness._helpers import defined_tests, listed_test_problem
from reports.proof import FORMS

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "fixtures" / "seed" / "requirements.md"
MAP = ROOT / "assessments" / "requirements.toml"


def seed_items(text: str) -> tuple[list[str], list[str]]:
    """(requirement bullets, validation questions) in the order the seed lists them."""
    bullets, questions, part = [], [], None
    for line in text.splitlines():
        if line.startswith("## "):
            part = {"## Requirements": "req", "## Validation Questions": "q"}.get(line.strip())
        elif part and line.lstrip().startswith("- "):
            (bullets if part == "req" else questions).append(line.strip()[2:].strip())
    return bullets, questions


@pytest.fixture(scope="module")
def mapping() -> dict:
    return tomllib.loads(MAP.read_text())


def test_seed_parses_into_all_sections():
    bullets, questions = seed_items(SEED.read_text())
    assert len(bullets) == 40, "the seed lists 10 sections of 4 bullets"
    assert len(questions) == 8


def test_every_seed_bullet_has_exactly_one_entry(mapping):
    bullets, questions = seed_items(SEED.read_text())
    mapped = [r["text"] for r in mapping["requirement"]]
    asked = [q["text"] for q in mapping["question"]]
    assert sorted(mapped) == sorted(bullets), (
        f"missing: {sorted(set(bullets) - set(mapped))}; unknown: {sorted(set(mapped) - set(bullets))}")
    assert sorted(asked) == sorted(questions)
    ids = [e["id"] for e in mapping["requirement"] + mapping["question"]]
    assert len(ids) == len(set(ids)), "requirement ids must be unique"


def test_every_listed_test_exists(mapping):
    problems = []
    for entry in mapping["requirement"] + mapping["question"]:
        for nodeid in entry["tests"]:
            if (problem := listed_test_problem(nodeid)) is not None:
                problems.append(f"{entry['id']}: {problem}")
    assert not problems, "\n".join(problems)


def test_stated_forms_of_proof_are_known_and_name_listed_tests(mapping):
    """`proof = {"<listed test id>" = "<form>"}` (optional, per entry) overrides the form read from
    a test's name (reports/proof.py); it must name one of the entry's tests and a known form."""
    problems = []
    for entry in mapping["requirement"] + mapping["question"]:
        for nodeid, form in (entry.get("proof") or {}).items():
            if nodeid not in entry["tests"]:
                problems.append(f"{entry['id']}: proof names {nodeid}, which its tests do not list")
            if form not in FORMS:
                problems.append(f"{entry['id']}: unknown form of proof {form!r}; expected one of {FORMS}")
    assert not problems, "\n".join(problems)


def test_the_checker_catches_a_missing_test(tmp_path):
    """The existence check has teeth: a misspelt test name is reported."""
    module = tmp_path / "test_x.py"
    module.write_text("def test_real():\n    assert 1\n\nclass TestGroup:\n    def test_m(self):\n        assert 1\n")
    assert {"test_real", "TestGroup", "TestGroup::test_m"} <= defined_tests(module)
    assert "test_reel" not in defined_tests(module)
