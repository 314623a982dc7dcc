"""How strong is the suite? Plant realistic wrong implementations and check that it notices.

The catalogue (assessments/harness/mutants/) holds wrong versions of our own code: Adam without
bias correction, a softmax without the max subtracted, an LSTM output gate through tanh, an
attention mask applied after the softmax, BatchNorm using batch statistics in eval mode, an L1
gradient with the wrong sign, StepLR off by one, TF-SAME padding on the wrong side, a positional
encoding added twice, ... Each is planted by swapping a function's code (no file is edited) and
run against the few tests aimed at it; every one must make a test fail, and each test that
caught one must pass again without it (the control). The runner is one subprocess
(`python -m assessments.harness.mutants`), so nothing planted can leak into this session.
"""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from assessments.harness.mutants import catalogue, planted

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.torch


def test_catalogue_is_well_formed():
    """At least 30 mutants over the four original areas, unique names, targets that resolve,
    test ids that name existing files, and a wrong version that fits its target's signature."""
    mutants = catalogue()
    assert len(mutants) >= 30
    assert {"fundamentals", "cnn", "rnn", "transformers"} <= {m.area for m in mutants}
    for m in mutants:
        assert m.tests, f"{m.name} names no test"
        for test in m.tests:
            assert (ROOT / test.split("::")[0]).is_file(), f"{m.name}: no test file for {test}"
        if not m.missing():
            with planted(m):  # resolves the target and checks the signature, then restores it
                pass


def test_planting_swaps_the_code_everywhere_and_restores_it():
    """The mechanism itself: every reference (module attribute, `from` import, alias) runs the
    wrong code while planted, and the original afterwards."""
    import numpy as np

    from implementations.fundamentals import losses
    from implementations.fundamentals.losses import log_softmax

    mutant = next(m for m in catalogue() if m.name == "softmax_without_max_subtraction")
    big = np.array([[1000.0, 0.0]])
    before = log_softmax(big)
    with planted(mutant), np.errstate(all="ignore"):
        assert not np.isfinite(log_softmax(big)).all()
        assert not np.isfinite(losses.log_softmax(big)).all()
        assert not np.isfinite(losses.CrossEntropyLoss()(big, np.array([1]))), "the loss must use it too"
    np.testing.assert_array_equal(log_softmax(big), before)


def test_every_mutant_is_caught(evidence, artifacts):
    out = artifacts("mutation") / "catalogue.json"
    proc = subprocess.run([sys.executable, "-m", "assessments.harness.mutants", "--json", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=1200)
    if not out.exists():
        pytest.fail(f"the mutant runner wrote no results (rc {proc.returncode}):\n{proc.stdout[-3000:]}\n"
                    f"{proc.stderr[-3000:]}")
    result = json.loads(out.read_text())
    rows = [{"mutant": r["name"], "area": r["area"], "what it breaks": r["bug"], "status": r["status"],
             "caught by": (r.get("caught_by") or r.get("reason") or ""),
             "failure": (r.get("message") or "")[:160]} for r in result["mutants"]]
    evidence.table("mutant_catalogue", rows)
    evidence.metric("mutants_caught", result["caught"], unit="mutants", threshold=result["run"],
                    direction="higher", key=True)
    evidence.metric("mutants_in_catalogue", result["total"], unit="mutants", threshold=30, direction="higher")
    evidence.metric("mutant_run_seconds", result["seconds"], unit="s")
    not_run = f"; not run here (a library missing): {', '.join(result['not_run'])}" if result["not_run"] else ""
    evidence.text(f"{result['caught']} of {result['run']} wrong implementations were caught by the tests aimed at "
                  f"them{not_run}. Each row names the test that failed first and its message; each of those "
                  "tests passed again with the mutant removed (control). Full results: "
                  "artifacts/mutation/catalogue.json.")
    control = result["control"]
    assert control is not None and control["rc"] == 0 and control["passed"] == len(control["tests"]), (
        f"a test that caught a mutant fails without it, so its catch proves nothing: {control}")
    assert not result["broken"], f"mutants whose wrong version does not run or whose tests errored: {result['broken']}"
    assert not result["survived"], f"wrong implementations the suite does not catch: {result['survived']}"
    assert result["caught"] == result["run"] >= 30 - len(result["not_run"])
