"""Keras on three backends (requirements keras.1): the custom layers' and models' parity and
round-trip checks on TensorFlow, torch and JAX in one run.

Keras fixes its backend at import, so the two backends this process is not running are checked in
subprocesses (`python -m assessments.keras._backend_parity --quick` with KERAS_BACKEND set), in
parallel. The full per-backend set is test_layers.py, run by the tox envs keras-{tensorflow,torch,jax}.
"""
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("keras", reason="needs keras (pip install -e '.[tensorflow]')")

from assessments.keras._helpers import backend_name, parity_report, subprocess_env  # noqa: E402

pytestmark = [pytest.mark.tensorflow, pytest.mark.torch, pytest.mark.jax]
ROOT = Path(__file__).resolve().parents[2]
BACKENDS = ("tensorflow", "torch", "jax")


def _report_from(proc: subprocess.Popen, backend: str, timeout: float) -> dict:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise AssertionError(f"the {backend} parity subprocess ran past {timeout} s") from None
    lines = [l for l in out.splitlines() if l.startswith("PARITY ")]
    if proc.returncode != 0 or not lines:
        raise AssertionError(f"the {backend} parity subprocess failed (exit {proc.returncode}):\n{err[-3000:]}")
    return json.loads(lines[-1].removeprefix("PARITY "))


def test_parity_on_three_backends(evidence, experiment, tmp_path):
    cfg = experiment("backends")
    missing = [pkg for pkg in ("tensorflow", "torch", "jax") if importlib.util.find_spec(pkg) is None]
    if missing:
        pytest.skip(f"Keras backend package(s) not installed: {', '.join(missing)} (pip install -e '.[all]')")
    here = backend_name()
    # torch and JAX run as in their tox envs, without TensorFlow (Keras' saving would import it)
    procs = {b: subprocess.Popen([sys.executable, "-m", "assessments.keras._backend_parity", "--quick",
                                  *(["--without-tensorflow"] if b != "tensorflow" else [])],
                                 cwd=ROOT, env=subprocess_env(KERAS_BACKEND=b, OMP_NUM_THREADS="1"),
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for b in BACKENDS if b != here}
    try:
        reports = {here: parity_report(tmp_path, quick=True)}
        for backend, proc in procs.items():
            reports[backend] = _report_from(proc, backend, cfg["subprocess_timeout"])
    finally:
        for proc in procs.values():  # stopped by PID if anything above failed
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    rows = []
    for backend in BACKENDS:
        report = reports[backend]
        assert report["backend"] == backend, f"asked for {backend}, the subprocess ran {report['backend']}"
        worst = max(report["errors"].values())
        evidence.metric(f"worst_parity_error_{backend}", worst, threshold=report["tolerance"], direction="lower",
                        key=backend == "jax")
        rows += [{"backend": backend, "dtype": report["dtype"], "check": k, "max_abs_error": v,
                  "tolerance": report["tolerance"]} for k, v in report["errors"].items()]
    evidence.table("parity_per_backend", rows)
    evidence.text("The same checks (attention vs keras.layers.MultiHeadAttention and the project's torch attention "
                  "with a random mask, block vs torch.nn.TransformerEncoderLayer, model vs its torch twin, "
                  "subclassed vs functional, .keras and config round trips) on each Keras backend. TensorFlow "
                  "computes in float64; Keras maps float64 to float32 on torch and JAX, so those are float32 "
                  "against a float64 torch reference.")
    assert reports["tensorflow"]["dtype"] == "float64"
    for backend in BACKENDS:
        errors = reports[backend]["errors"]
        assert max(errors.values()) <= reports[backend]["tolerance"], (backend, errors)
        assert set(errors) == set(reports["tensorflow"]["errors"]), f"{backend} ran a different set of checks"
