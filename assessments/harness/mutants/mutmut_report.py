"""Write mutmut's score and its surviving mutants as one self-describing JSON file.

    python -m assessments.harness.mutants.mutmut_report --seconds 1234 --out reports/mutation.json

Run from the repository root after `mutmut run` (`make mutation` does both). Reads mutmut's own
state under mutants/ and writes:
    tool, source, tests          what was mutated and which tests judged it
    seconds, finished            wall time of the `mutmut run` and when it ended
    counts                       mutants per mutmut status (killed, survived, no tests, timeout, ...)
    killed, checked, score       score = (killed + timeout) / checked, where checked counts every
                                 mutant with a verdict ("no tests" counts against the score)
    goal                         0.90
    survivors                    [{name, file, status, diff, explanation, killed_by}]: explanation
                                 says why the mutant is equivalent (EXPLAINED below), killed_by
                                 names the test that kills it since (--recheck), else both ""
    after                        with --recheck: the score counting those kills too

`--recheck TEST ...` re-runs each survivor against tests (files or node ids) written since `mutmut run`
(copied into mutants/, one pytest session per survivor in one process, MUTANT_UNDER_TEST set
as mutmut sets it) after a control session without a mutant that must pass: a quick "after"
without repeating the whole run.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from collections import Counter
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
GOAL = 0.90
KILLED = ("killed", "timeout", "caught by type check", "segfault")
UNCHECKED = ("not checked", "skipped", "check was interrupted by user")

# Surviving mutants that cannot be killed because they do not change behaviour, and why.
# Keys are mutmut's mutant names (`mutmut results` lists them; `mutmut show NAME` prints the diff).
L = "implementations.fundamentals.layers.xǁ"  # mutmut's names: module.x<sep>Class<sep>method__mutmut_N
LOSSES = "implementations.fundamentals.losses.x\u01c1"
_ALPHA_DTYPE = "alpha as given (ints or floats) holds the same values; every product with it is float"
_NEGATIVE_RESHAPE = "NumPy's reshape reads any negative size as 'infer this one', so -2 is -1"
_COPY = "astype(copy=...) only decides whether a copy is made (True is its default); the values are the same"
_MESSAGE = "only the error message's text changes (wrapped in XX); it still names the problem the tests match"
ACT = "implementations.fundamentals.activations.x\u01c1"
MLP = "implementations.fundamentals.mlp.x\u01c1MLP\u01c1"
_FIRST_DENSE = "an MLP's first layer is always a Dense, so the other branch never runs"
_FLOAT_N = "n from true division is the same count as a float; it is only used in arithmetic"
_IGNORES_TRAINING = "the default of `training`, which this layer ignores"
SCHED = "implementations.fundamentals.schedules.x\u01c1"
TRAIN = "implementations.fundamentals.training.x_"
_PROMOTED = "one side is float64 either way, and NumPy promotes the other to float64 exactly: the same arithmetic"
_IS_INITIAL = "_initial_step() sets _is_initial itself and resets it to False before anything reads it"
EXPLAINED: dict[str, str] = {
    f"{L}BatchNorm1dǁ_shape__mutmut_13": _NEGATIVE_RESHAPE,
    f"{L}BatchNorm1dǁ_shape__mutmut_22": _NEGATIVE_RESHAPE,
    f"{L}BatchNorm1dǁ_shape__mutmut_15": "einsum labels in upper case: the same contraction",
    f"{L}BatchNorm1dǁ_shape__mutmut_25": "einsum labels in upper case: the same contraction",
    f"{L}BatchNorm1dǁforward__mutmut_8": _FLOAT_N,
    f"{L}BatchNorm1dǁbackward__mutmut_25": _FLOAT_N,
    f"{L}BatchNorm1dǁforward__mutmut_40": _COPY,
    f"{L}BatchNorm1dǁforward__mutmut_42": _COPY,
    f"{L}BatchNorm1dǁforward__mutmut_47": _COPY,
    f"{L}Layerǁ__call____mutmut_5": "forward(x) without training: every layer's forward defaults to training=True",
    f"{L}Layerǁforward__mutmut_1": "the base Layer is the identity whatever `training` is",
    f"{L}Denseǁforward__mutmut_1": _IGNORES_TRAINING,
    f"{L}Denseǁbackward__mutmut_4": _MESSAGE,
    "implementations.fundamentals.losses.x__check_binary__mutmut_14": _MESSAGE,
    f"{LOSSES}FocalLoss\u01c1__init____mutmut_14": _ALPHA_DTYPE,
    f"{LOSSES}FocalLoss\u01c1__init____mutmut_16": _ALPHA_DTYPE,
    f"{LOSSES}FocalLoss\u01c1forward__mutmut_50": "n_classes is only read for multi-class alpha; the binary branch ignores it",
    f"{LOSSES}FocalLoss\u01c1forward__mutmut_70": "a placeholder where p_t = 1, masked out of the term it guards; any positive value serves",
    f"{LOSSES}FocalLoss\u01c1forward__mutmut_73": "with gamma = 0 the second term is 0 times a finite number (p_t < 1 where it is kept)",
    f"{LOSSES}CrossEntropyLoss\u01c1forward__mutmut_22": "rows all hold C classes, so the mean of the row means is the global mean (and the "
                                                          "sum N times it); reduction is only 'mean' or 'sum'",
    f"{L}Dropout\u01c1forward__mutmut_13": "rng.random() > p vs >= p differ only when a draw equals p exactly",
    f"{L}Dropout\u01c1__init____mutmut_13": "the initial mask is only read by a backward before any forward",
    "implementations.fundamentals.optimizers.x\u01c1SGD\u01c1step__mutmut_16": "np.array copies by default: the same as copy=True",
    "implementations.fundamentals.optimizers.x\u01c1SGD\u01c1__init____mutmut_22": _MESSAGE,
    "implementations.fundamentals.optimizers.x\u01c1Optimizer\u01c1__init____mutmut_5": _MESSAGE,
    f"{MLP}predict__mutmut_3": "training=None is falsy: every layer treats it as False",
    f"{MLP}backward__mutmut_9": _FIRST_DENSE,
    f"{MLP}backward__mutmut_14": _FIRST_DENSE,
    "implementations.fundamentals.activations.x_sigmoid__mutmut_11": "at x = 0 both branches give exactly 0.5 (z = 1)",
    # gradcheck, clipping, regularization
    **{f"implementations.fundamentals.gradcheck.x_{name}__mutmut_{n}": _PROMOTED
       for name in ("rel_error", "tensor_rel_error") for n in (3, 5, 7, 9)},
    **{f"implementations.fundamentals.gradcheck.x_eval_numerical_gradient__mutmut_{n}":
       "the iterator only yields indices; every write goes through x[ix], so its op_flags do not matter"
       for n in (15, 18)},
    "implementations.fundamentals.clipping.x_clip_grad_norm___mutmut_15": _MESSAGE,
    "implementations.fundamentals.regularization.x_near_zero_fraction__mutmut_6": _MESSAGE,
    **{f"implementations.fundamentals.init.x__fans__mutmut_{n}": "for a 2-D weight np.prod(shape[2:]) is the "
       "product of nothing, 1: the same receptive field as the else branch" for n in (6, 10)},
    # schedules
    f"{SCHED}CosineAnnealingLR\u01c1get_lr__mutmut_18": "t - 1 + T and t - 1 - T differ by 2T: equal modulo 2T",
    f"{SCHED}LRScheduler\u01c1__init____mutmut_16": _IS_INITIAL,
    f"{SCHED}LRScheduler\u01c1__init____mutmut_17": _IS_INITIAL,
    f"{SCHED}LRScheduler\u01c1_initial_step__mutmut_5": "_is_initial is only read for its truth: None is as false as False",
    f"{SCHED}OneCycleLR\u01c1__init____mutmut_135": "the initial step's get_lr() sets the momentum again before anyone "
                                                      "can read it",
    # training loops
    f"{TRAIN}evaluate__mutmut_3": "training=None is falsy like False; every layer reads it only for its truth",
    **{f"{TRAIN}{name}__mutmut_{n}": "forward's default for training is True: the same call"
       for name, n in (("train_classifier", 52), ("train_regressor", 28))},
    **{f"{TRAIN}{name}__mutmut_{n}": "input_grad=None is falsy like False: the first Dense skips dx"
       for name, n in (("train_classifier", 67), ("train_regressor", 31))},
    **{f"{TRAIN}{name}__mutmut_{n}": "input_grad=True also computes the first layer's dx, which the loop discards"
       for name, ns in (("train_classifier", (69, 70)), ("train_regressor", (33, 34))) for n in ns},
    **{f"{TRAIN}train_classifier__mutmut_{n}": "only evaluate()[1], the accuracy, is kept, and it does not depend "
       "on the loss function (for the integer labels every loss here takes)" for n in (105, 109)},
    **{f"{ACT}ReLU\u01c1{method}__mutmut_{n}": _COPY
       for method, numbers in (("forward", (6, 8, 16)), ("backward", (2, 4, 12))) for n in numbers},
    **{f"{ACT}{name}\u01c1forward__mutmut_1": _IGNORES_TRAINING
       for name in ("ReLU", "LeakyReLU", "Sigmoid", "Tanh", "Swish", "GELU")},
}


def collect() -> tuple[Counter, list[dict[str, str]]]:
    from mutmut.__main__ import SourceFileMutationData, walk_mutatable_files
    from mutmut.mutation.diff_apply import get_diff_for_mutant
    from mutmut.stats import status_by_exit_code

    counts: Counter = Counter()
    survivors = []
    for path in walk_mutatable_files():
        data = SourceFileMutationData(path=path)
        data.load()
        for name, code in sorted(data.exit_code_by_key.items()):
            status = status_by_exit_code[code]
            counts[status] += 1
            if status in ("survived", "no tests", "suspicious"):
                survivors.append({"name": name, "file": str(path), "status": status,
                                  "diff": get_diff_for_mutant(name, path=path),
                                  "explanation": EXPLAINED.get(name, ""), "killed_by": ""})
    return counts, survivors


RECHECK = """
import json, os, sys
sys.path.insert(0, os.getcwd())
import pytest
tests, names, run_dir = json.loads(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3]

class Failures:
    def __init__(self):
        self.failed = []
    def pytest_runtest_logreport(self, report):
        if report.failed:
            self.failed.append(report.nodeid)

def session(name):
    os.environ["MUTANT_UNDER_TEST"] = name
    rec = Failures()
    rc = pytest.main(["-p", "no:xdist", "-p", "no:cacheprovider", "-p", "no:unraisableexception", "-p",
                      "no:terminal", "-x", "--budget=smoke", f"--run-dir={run_dir}", *tests], plugins=[rec])
    return int(rc), rec.failed

rc, failed = session("")
result = {"control": {"rc": rc, "failed": failed}, "killed_by": {}}
if rc == 0:
    for name in names:
        rc, failed = session(name)
        result["killed_by"][name] = failed[0] if rc == 1 and failed else ""
print("RESULT " + json.dumps(result))
"""


def recheck(survivors: list[dict[str, str]], tests: list[str], only: str = "") -> dict:
    """Run `tests` (copied into mutants/) against each survivor whose name contains `only`;
    fills survivor["killed_by"]."""
    import shutil
    import subprocess
    import sys
    import tempfile

    for file in {test.split("::")[0] for test in tests}:
        shutil.copy2(ROOT / file, ROOT / "mutants" / file)
    names = [s["name"] for s in survivors if only in s["name"]]
    with tempfile.TemporaryDirectory(prefix="recheck-") as tmp:
        proc = subprocess.run([sys.executable, "-c", RECHECK, json.dumps(tests), json.dumps(names), tmp],
                              cwd=ROOT / "mutants", capture_output=True, text=True)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if not lines:
        raise RuntimeError(f"recheck failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    result = json.loads(lines[-1].removeprefix("RESULT "))
    if result["control"]["rc"] != 0:
        raise RuntimeError(f"the new tests fail without a mutant, so they prove nothing: {result['control']}")
    for s in survivors:
        s["killed_by"] = result["killed_by"].get(s["name"], "")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, required=True, help="wall time of the mutmut run")
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "mutation.json")
    parser.add_argument("--recheck", nargs="*", default=[], metavar="TEST",
                        help="test files or node ids (from the root) to re-run against every survivor")
    parser.add_argument("--only", default="", metavar="TEXT",
                        help="with --recheck: only the survivors whose name contains TEXT (e.g. '.schedules.')")
    args = parser.parse_args(argv)
    os.chdir(ROOT)
    import tomllib

    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutmut"]
    counts, survivors = collect()
    checked = sum(n for status, n in counts.items() if status not in UNCHECKED)
    killed = sum(counts[s] for s in KILLED)
    summary = {
        "tool": f"mutmut {metadata.version('mutmut')}", "source": cfg["source_paths"],
        "tests": cfg["pytest_add_cli_args_test_selection"], "seconds": round(args.seconds),
        "finished": time.strftime("%Y-%m-%d %H:%M:%S"), "counts": dict(counts), "killed": killed,
        "checked": checked, "score": round(killed / checked, 4) if checked else None, "goal": GOAL,
        "survivors": survivors,
    }
    if args.recheck:
        recheck(survivors, args.recheck, args.only)
        later = sum(bool(s["killed_by"]) for s in survivors)
        summary["after"] = {"tests": args.recheck, "killed_by_them": later,
                            "score": round((killed + later) / checked, 4) if checked else None}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=1) + "\n")
    unexplained = [s["name"] for s in survivors if not (s["explanation"] or s["killed_by"])]
    print(f"mutation score {summary['score']} ({killed}/{checked} killed) in {summary['seconds']} s; "
          f"{len(survivors)} survivors, {len(unexplained)} unexplained -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
