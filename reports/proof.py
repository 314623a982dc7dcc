"""How a test proves its claim: the form of proof, strongest first (DESIGN.md, "What an assessment
proves"), read from the test's name and source unless requirements.toml states it.

    form_of("assessments/fundamentals/test_mlp_torch_parity.py::test_loss_and_every_gradient_match_torch")
    -> "parity with a reference"

A requirement may state a test's form when its name does not tell:

    [[requirement]]
    id = "cnn.4"
    tests = ["assessments/cnn/test_transfer.py::test_finetune"]
    proof = {"assessments/cnn/test_transfer.py::test_finetune" = "baseline beaten"}
"""
from __future__ import annotations

import ast
import re
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# strongest first; the words a test's name uses for each form (checked in this order)
FORMS = ("parity with a reference", "gradient check", "real weights", "baseline beaten", "property",
         "input checks", "benchmark", "demonstration")
_NAME_RULES: tuple[tuple[str, str], ...] = (
    ("gradient check", r"central_difference|gradcheck|gradient_check|numerical_grad"),
    ("parity with a reference", r"parity|match|equal|same_as|_vs_torch|agrees|reference|round_trip"),
    ("real weights", r"pretrained|published|real_weights|imagenet|real_photo"),
    ("input checks", r"reject|bad_input|raise|are_checked|checks_|invalid|error"),
    ("baseline beaten", r"beat|learns|narrow|outperform|than|better|compared|advantage|trainable|"
                        r"ablation|cannot|rescue|_over_"),
)


@lru_cache(maxsize=256)
def _hypothesis_tests(path: Path) -> frozenset[str]:
    """Names of the test functions in a file that hypothesis drives (decorated with @given)."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError):
        return frozenset()
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for dec in node.decorator_list:
                target = dec.func if isinstance(dec, ast.Call) else dec
                name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")
                if name == "given":
                    found.add(node.name)
    return frozenset(found)


def form_of(nodeid: str, stated: str | None = None, root: Path = ROOT, metrics: tuple[str, ...] = ()) -> str:
    """The form of proof of a test (a listed id, with or without parameters); `metrics`, the names of
    the metrics it recorded, tell a learning result held against a baseline of the same run."""
    if stated:
        return stated
    file, _, name = nodeid.partition("::")
    function = re.sub(r"\[.*\]$", "", name.split("::")[-1]).lower()
    if Path(file).name.startswith("test_bench"):
        return "benchmark"
    for form, pattern in _NAME_RULES[:2]:
        if re.search(pattern, function):
            return form
    if function in _hypothesis_tests(root / file):
        return "property"
    for form, pattern in _NAME_RULES[2:]:
        if re.search(pattern, function):
            return form
    if any("baseline" in m for m in metrics):
        return "baseline beaten"
    return "demonstration"


def forms_summary(forms: list[str]) -> list[tuple[str, int]]:
    """[(form, how many tests)], strongest form first."""
    return [(f, forms.count(f)) for f in FORMS if f in forms]
