"""The fundamentals are NumPy only (requirements mlp.1 and optreg.3: "from scratch using NumPy").

The torch parity files would also pass if a layer quietly called torch. Here every module of
implementations/fundamentals is imported in a fresh interpreter where torch, TensorFlow, JAX,
Keras, scikit-learn and SciPy cannot be imported (sys.modules[name] = None), and nothing but the
standard library, NumPy and our own package may end up loaded. In that interpreter an MLP with
BatchNorm and dropout trains for a few AdamW steps under a one-cycle schedule, and every loss and
final weight equals, bit for bit, what the same code gives in this process (where torch is loaded
and the parity tests pin these layers to torch).
"""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from assessments.forbidden import STDLIB, blocked_import_script

ROOT = Path(__file__).resolve().parents[2]
BLOCKED = ["torch", "tensorflow", "jax", "jaxlib", "keras", "sklearn", "scipy", "pandas"]
WORKLOAD = '''
import importlib, json, pkgutil, sys
import numpy as np
import implementations.fundamentals as fundamentals
modules = sorted(info.name for info in pkgutil.walk_packages(fundamentals.__path__, "implementations.fundamentals."))
for name in modules:
    importlib.import_module(name)
from implementations.fundamentals.losses import CrossEntropyLoss
from implementations.fundamentals.mlp import MLP
from implementations.fundamentals.optimizers import AdamW
from implementations.fundamentals.schedules import OneCycleLR
rng = np.random.default_rng(0)
x, y = rng.normal(size=(32, 6)), rng.integers(0, 3, size=32)
model = MLP([6, 16, 8, 3], activation="tanh", init="xavier_uniform", seed=1, dropout=0.2, batch_norm=True)
opt = AdamW(model.parameters(), lr=1e-2, weight_decay=0.1)
sched, loss, losses = OneCycleLR(opt, max_lr=5e-2, total_steps=6), CrossEntropyLoss(), []
for _ in range(6):
    losses.append(float(loss.forward(model.forward(x), y)))
    model.backward(loss.backward())
    opt.step(model.gradients())
    sched.step()
RESULT = {"modules": modules, "losses": losses, "weights": [p.ravel().tolist() for p in model.parameters()],
          "loaded": sorted({m.split(".")[0] for m in sys.modules if sys.modules[m] is not None})}
'''


def test_fundamentals_import_and_train_with_only_numpy(evidence):
    body = WORKLOAD + "\nprint(json.dumps(RESULT))"
    proc = subprocess.run([sys.executable, "-c", blocked_import_script(BLOCKED, body)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"fundamentals failed without torch & co:\n{proc.stderr[-3000:]}"
    isolated = json.loads(proc.stdout.splitlines()[-1])
    here: dict = {}
    exec(compile(WORKLOAD, "workload", "exec"), here)
    reference = here["RESULT"]

    # numpy's compiled extensions bring the Cython runtime; "__main__" and the editable-install
    # finder are the interpreter's own
    foreign = sorted(m for m in set(isolated["loaded"]) - STDLIB - {"numpy", "implementations", "cython_runtime"}
                     if not m.startswith(("__", "_cython_", "_distutils_hack")))
    evidence.metric("fundamentals_modules_imported", len(isolated["modules"]))
    evidence.metric("non_numpy_third_party_packages_loaded", len(foreign), threshold=0, direction="lower", key=True)
    evidence.table("modules_imported_without_torch", [{"module": m} for m in isolated["modules"]])
    assert len(isolated["modules"]) >= 10, isolated["modules"]
    assert not foreign, f"implementations/fundamentals pulled in {foreign}"
    assert isolated["losses"] == reference["losses"]
    assert all(np.array_equal(a, b) for a, b in zip(isolated["weights"], reference["weights"]))
    assert isolated["losses"][-1] < isolated["losses"][0]  # the steps did something


def test_blocked_imports_really_fail():
    """The guard has teeth: in the same kind of interpreter `import torch` raises."""
    body = "try:\n    import torch\nexcept ImportError:\n    print('blocked')"
    proc = subprocess.run([sys.executable, "-c", blocked_import_script(BLOCKED, body)], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "blocked", proc.stderr
