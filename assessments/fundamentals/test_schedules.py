"""Learning-rate schedules demonstrated on digits (requirement optreg.4).

The same MLP, initial weights and batches under each schedule, stepped every batch. Annealing
schedules end below a constant learning rate's loss at the same peak rate; at a peak rate too
high for a constant schedule, warmup and the one-cycle policy still train. Step-by-step
equality with torch's schedulers is in test_torch_parity_schedules.py.
"""
import math

import numpy as np
import pytest

from implementations.fundamentals import schedules
from implementations.fundamentals.mlp import MLP
from implementations.fundamentals.optimizers import SGD
from implementations.fundamentals.training import evaluate, train_classifier
from implementations.viz.curves import plot_curves

from ._helpers import digits_data

pytestmark = pytest.mark.usefixtures("single_thread")

FACTORIES = {
    "constant": lambda opt, total, lr: None,
    "StepLR": lambda opt, total, lr: schedules.StepLR(opt, step_size=total // 3 + 1, gamma=0.1),
    "ExponentialLR": lambda opt, total, lr: schedules.ExponentialLR(opt, gamma=0.01 ** (1 / total)),
    "CosineAnnealingLR": lambda opt, total, lr: schedules.CosineAnnealingLR(opt, T_max=total),
    "warmup + cosine": lambda opt, total, lr: schedules.warmup_cosine(opt, warmup_steps=total // 10, total_steps=total),
    "OneCycleLR": lambda opt, total, lr: schedules.OneCycleLR(opt, max_lr=lr, total_steps=total),
}
ANNEALED = ("CosineAnnealingLR", "warmup + cosine", "OneCycleLR")


def run_schedules(cfg: dict, seed: int, names=tuple(FACTORIES)) -> dict:
    X, y, Xt, yt = digits_data()
    total = cfg["epochs"] * math.ceil(len(X) / cfg["batch_size"])
    out = {}
    for name in names:
        model = MLP(cfg["sizes"], activation=cfg["activation"], seed=seed)
        opt = SGD(model.parameters(), lr=cfg["lr"], momentum=cfg["momentum"])
        history = train_classifier(model, opt, X, y, epochs=cfg["epochs"], batch_size=cfg["batch_size"], seed=seed,
                                   scheduler=FACTORIES[name](opt, total, cfg["lr"]), x_val=Xt, y_val=yt)
        with np.errstate(over="ignore", invalid="ignore"):  # a diverged run is reported, not warned about
            train_loss, _ = evaluate(model, X, y)
        test_accuracy = history.val_accuracy[-1] if history.val_accuracy and not history.diverged else float("nan")
        out[name] = dict(history=history, train_loss=train_loss, test_accuracy=test_accuracy)
    return out


def test_schedules_compared_on_digits(evidence, experiment, seed):
    cfg = experiment("schedules_digits")
    runs = run_schedules(cfg, seed)
    evidence.figure("learning_rate_per_step", plot_curves(
        {n: r["history"].lr for n, r in runs.items()}, f"Schedules, peak lr {cfg['lr']}", "step", "learning rate"))
    evidence.figure("training_loss_by_schedule", plot_curves(
        {n: r["history"].train_loss for n, r in runs.items()}, f"MLP {cfg['sizes']} on digits", "epoch",
        "train cross-entropy", logy=True))
    evidence.table("schedules", [{"schedule": n, "final train loss": r["train_loss"], "test accuracy": r["test_accuracy"],
                                  "last lr": r["history"].lr[-1]} for n, r in runs.items()])
    # The drawn lr curves are the schedules they claim to be.
    lr = {n: np.array(r["history"].lr) for n, r in runs.items()}
    peak = cfg["lr"]
    assert np.all(lr["constant"] == peak)
    assert lr["CosineAnnealingLR"][0] == peak and lr["CosineAnnealingLR"][-1] < 1e-3 * peak
    assert lr["warmup + cosine"][0] == pytest.approx(0.1 * peak) and lr["warmup + cosine"].max() == pytest.approx(peak)
    assert lr["OneCycleLR"][0] == pytest.approx(peak / 25) and lr["OneCycleLR"].max() == pytest.approx(peak, rel=1e-3)
    assert np.all(np.diff(lr["ExponentialLR"]) < 0) and len(np.unique(lr["StepLR"])) == 3
    constant = runs["constant"]["train_loss"]
    evidence.metric("constant_final_train_loss", constant)
    for name in ANNEALED:
        ratio = runs[name]["train_loss"] / constant
        evidence.metric(f"{name}_loss_over_constant", ratio, threshold=cfg["max_annealed_ratio"], direction="lower",
                        key=name == "CosineAnnealingLR")
        assert ratio <= cfg["max_annealed_ratio"], f"{name} should end below the constant lr's loss"
    for name, r in runs.items():
        evidence.metric(f"{name}_test_accuracy", r["test_accuracy"])
        assert r["test_accuracy"] >= cfg["min_test_accuracy"], f"{name} reached only {r['test_accuracy']:.3f}"


def test_warmup_and_one_cycle_rescue_a_too_high_peak_lr(evidence, experiment, seed):
    cfg = experiment("schedules_high_lr")
    runs = run_schedules(cfg, seed, names=("constant", "warmup + cosine", "OneCycleLR"))
    evidence.figure("training_loss_at_high_peak_lr", plot_curves(
        {n: r["history"].train_loss for n, r in runs.items()}, f"Peak lr {cfg['lr']} (momentum {cfg['momentum']})",
        "epoch", "train cross-entropy", logy=True))
    constant = runs["constant"]
    evidence.metric("constant_final_train_loss", constant["train_loss"], threshold=math.log(10), direction="higher")
    assert not np.isfinite(constant["train_loss"]) or constant["train_loss"] >= math.log(10), \
        "at this peak lr a constant schedule should fail (loss no better than chance)"
    for name in ("warmup + cosine", "OneCycleLR"):
        loss = runs[name]["train_loss"]
        evidence.metric(f"{name}_final_train_loss", loss, threshold=cfg["max_rescued_loss"], direction="lower", key=True)
        assert loss <= cfg["max_rescued_loss"], f"{name} should train at this peak lr"


def test_schedule_arguments_are_checked():
    opt = SGD([np.zeros(2)], lr=0.1)
    with pytest.raises(ValueError, match="step_size"):
        schedules.StepLR(opt, step_size=0)
    with pytest.raises(ValueError, match="total_steps"):
        schedules.OneCycleLR(opt, max_lr=1.0)
    with pytest.raises(ValueError, match="warmup_steps"):
        schedules.warmup_cosine(opt, warmup_steps=10, total_steps=10)
    with pytest.raises(ValueError, match="Optimizer"):
        schedules.CosineAnnealingLR(object(), T_max=10)
