"""The Keras area's shared training run: one `model.fit` with every callback, trained once.

`fashion_run` trains the functional row transformer on Fashion-MNIST (implementations/frameworks/
keras/training.py) and writes the whole run under `<run-dir>/artifacts/keras/fashion_run/`.
Under xdist (`--dist loadfile`) the test files that use it may land on different workers: a file
lock lets the first one train and the others read the finished run from disk. A run left by an
earlier session (older than this process's collection) is never reused: the harness clears it.
"""
from __future__ import annotations

import fcntl
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from implementations.config import load_experiment

# Imported at collection, before any fixture of this session (on every xdist worker) runs.
_COLLECTED_AT = time.time()


@dataclass
class FashionRun:
    folder: Path
    cfg: dict
    history: dict
    summary: dict
    data: object  # implementations.frameworks.keras.training.FashionArrays

    def load(self, name: str = "restored.keras"):
        import keras

        import implementations.frameworks.keras.models  # noqa: F401  registers the custom classes

        return keras.models.load_model(self.folder / name)


def _open_lock(path: Path, tries: int = 5):
    """Open the lock file; its folder is re-created if the harness, clearing the run folder of
    earlier runs, removed it while it was still empty."""
    for _ in range(tries - 1):
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            return open(path, "w")
        except FileNotFoundError:
            time.sleep(0.1)
    path.parent.mkdir(parents=True, exist_ok=True)
    return open(path, "w")


@pytest.fixture(scope="session")
def fashion_run(artifacts, budget: str, request: pytest.FixtureRequest) -> FashionRun:
    pytest.importorskip("tensorflow", reason="needs TensorFlow (pip install -e '.[tensorflow]')")
    import keras

    if keras.backend.backend() != "tensorflow":
        pytest.skip(f"the training run uses TensorBoard and tf.summary: needs KERAS_BACKEND=tensorflow, "
                    f"this process runs {keras.backend.backend()}")
    from implementations.frameworks.keras.training import fashion_arrays, fit_fashion

    seed = request.config.getoption("--seed")
    cfg = load_experiment("keras", "fashion_run", budget)
    folder = artifacts("keras") / f"fashion_run_{budget}_seed{seed}"
    data = fashion_arrays(cfg["n_train"], cfg["n_val"], cfg["n_test"], seed)
    with _open_lock(Path(str(folder) + ".lock")) as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        done = folder / "summary.json"
        if not done.exists() or done.stat().st_mtime < _COLLECTED_AT:
            shutil.rmtree(folder, ignore_errors=True)  # a run cut short: start clean
            fit_fashion(data, folder, cfg, seed)
    return FashionRun(folder, cfg, json.loads((folder / "history.json").read_text()),
                      json.loads((folder / "summary.json").read_text()), data)
