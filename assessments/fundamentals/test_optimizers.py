"""SGD, SGD with momentum, Adam and AdamW compared on digits (requirement optreg.1).

Same MLP, same initial weights, same batches; only the update rule differs. Step-by-step
equality with torch.optim is in test_torch_parity_optimizers.py.
"""
import numpy as np
import pytest

from implementations.fundamentals.mlp import MLP
from implementations.fundamentals.optimizers import SGD, Adam, AdamW
from implementations.fundamentals.training import accuracy, train_classifier
from implementations.viz.curves import plot_curves

from ._helpers import digits_data

pytestmark = pytest.mark.usefixtures("single_thread")


def test_optimizers_compared_on_digits(evidence, experiment, seed):
    cfg = experiment("optimizers_digits")
    X, y, Xt, yt = digits_data()
    makers = {
        f"SGD lr={cfg['sgd_lr']}": lambda p: SGD(p, lr=cfg["sgd_lr"]),
        f"SGD+momentum {cfg['momentum']}": lambda p: SGD(p, lr=cfg["sgd_lr"], momentum=cfg["momentum"]),
        f"Adam lr={cfg['adam_lr']}": lambda p: Adam(p, lr=cfg["adam_lr"]),
        f"AdamW wd={cfg['adamw_weight_decay']}": lambda p: AdamW(p, lr=cfg["adam_lr"],
                                                                  weight_decay=cfg["adamw_weight_decay"]),
    }
    results = {}
    for name, make in makers.items():
        model = MLP(cfg["sizes"], activation="relu", init="kaiming_normal", seed=seed)
        history = train_classifier(model, make(model.parameters()), X, y, epochs=cfg["epochs"],
                                   batch_size=cfg["batch_size"], seed=seed)
        weight_norm = float(np.sqrt(sum(np.sum(d.params["weight"] ** 2) for d in model.dense_layers)))
        results[name] = (history.train_loss, accuracy(model, Xt, yt), weight_norm)
    evidence.figure("loss_by_optimizer", plot_curves(
        {n: r[0] for n, r in results.items()}, f"MLP {cfg['sizes']} on digits", "epoch", "train cross-entropy",
        logy=True))
    evidence.table("optimizers", [{"optimizer": n, "final train loss": r[0][-1], "test accuracy": r[1],
                                   "weight L2 norm": r[2]} for n, r in results.items()])
    sgd, _, adam, adamw = results.values()
    for (name, r), role in zip(results.items(), ("sgd", "momentum", "adam", "adamw")):
        evidence.metric(f"{role}_final_train_loss", r[0][-1], direction="lower", key=role == "adam")
        evidence.metric(f"{role}_test_accuracy", r[1])
    ratio = cfg["max_loss_ratio_vs_sgd"]
    for name, r in list(results.items())[1:]:
        assert r[0][-1] <= ratio * sgd[0][-1], f"{name} should end far below plain SGD's loss"
        assert r[1] >= cfg["min_test_accuracy"], f"{name} reached only {r[1]:.3f}"
    assert all(r[0][-1] < r[0][0] for r in results.values()), "every optimizer must reduce the loss"
    # Decoupled weight decay shrinks the weights relative to Adam on the same trajectory.
    evidence.metric("adamw_over_adam_weight_norm", adamw[2] / adam[2], threshold=1.0, direction="lower")
    assert adamw[2] < adam[2]


@pytest.mark.parametrize("make, message", [
    (lambda p: SGD(p, lr=-0.1), "learning rate"),
    (lambda p: SGD(p, lr=0.1, nesterov=True), "Nesterov"),
    (lambda p: Adam(p, betas=(0.9, 1.0)), "betas"),
    (lambda p: AdamW(p, eps=-1.0), "eps"),
    (lambda p: SGD([], lr=0.1), "empty"),
])
def test_optimizer_arguments_are_checked(make, message):
    with pytest.raises(ValueError, match=message):
        make([np.zeros(3)])


def test_step_checks_gradients():
    opt = Adam([np.zeros((2, 3))])
    with pytest.raises(ValueError, match="shape"):
        opt.step([np.zeros(3)])
    with pytest.raises(ValueError, match="gradients for 1 parameters"):
        opt.step([np.zeros((2, 3)), np.zeros(1)])
