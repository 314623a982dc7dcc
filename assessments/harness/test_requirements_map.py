"""The requirement map is complete and honest.

Every bullet and validation question of the seed (fixtures/seed/requirements.md, a verbatim
copy of the user's requirements) has exactly one entry in assessments/requirements.toml, and
every test an entry names exists.
"""
import ast
import re
import tomllib
from pathlib import Path

import pytest

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


def defined_tests(path: Path) -> set[str]:
    """Names of test functions and classes (and Class::method) defined in a test module."""
    names = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        if isinstance(node, ast.ClassDef):
            names.update(f"{node.name}::{item.name}" for item in node.body if isinstance(item, ast.FunctionDef))
    return names


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
            file, _, name = nodeid.partition("::")
            path = ROOT / file
            if not re.fullmatch(r"assessments/.+/test_\w+\.py", file) or not path.exists():
                problems.append(f"{entry['id']}: no test file {file}")
            elif name and re.sub(r"\[.*\]$", "", name) not in defined_tests(path):
                problems.append(f"{entry['id']}: {file} defines no {name}")
    assert not problems, "\n".join(problems)


def test_the_checker_catches_a_missing_test(tmp_path):
    """The existence check has teeth: a misspelt test name is reported."""
    module = tmp_path / "test_x.py"
    module.write_text("def test_real():\n    assert 1\n\nclass TestGroup:\n    def test_m(self):\n        assert 1\n")
    assert {"test_real", "TestGroup", "TestGroup::test_m"} <= defined_tests(module)
    assert "test_reel" not in defined_tests(module)
