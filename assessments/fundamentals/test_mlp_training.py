"""The NumPy MLP learns real data (digits), and the gradient flow through it is shown and checked.

Requirements mlp.1 (MLP from scratch) and mlp.3 (gradient-flow visualisation).
"""
import numpy as np
import pytest

from implementations.config import load_experiment
from implementations.data.images import digits_split
from implementations.fundamentals.mlp import MLP
from implementations.fundamentals.optimizers import SGD
from implementations.fundamentals.training import accuracy, train_classifier
from implementations.viz.curves import plot_curves, plot_layer_series


@pytest.fixture(scope="module")
def trained(request):
    cfg = load_experiment("fundamentals", "mlp_digits", request.config.getoption("--budget"))
    split = digits_split(test_size=cfg["test_size"], seed=0)
    model = MLP(cfg["sizes"], activation="relu", init="kaiming_normal", seed=0)
    opt = SGD(model.parameters(), lr=cfg["lr"], momentum=cfg["momentum"], weight_decay=cfg["weight_decay"])
    history = train_classifier(model, opt, split.X_train, split.y_train, epochs=cfg["epochs"],
                               batch_size=cfg["batch_size"], seed=0, x_val=split.X_test, y_val=split.y_test)
    return cfg, split, model, history


def test_mlp_learns_digits(trained, evidence):
    cfg, split, model, history = trained
    test_acc = accuracy(model, split.X_test, split.y_test)
    majority = float(np.mean(split.y_test == np.bincount(split.y_train).argmax()))
    evidence.metric("test_accuracy", test_acc, threshold=cfg["min_test_accuracy"], direction="higher", key=True)
    evidence.metric("majority_class_baseline", majority)
    evidence.metric("train_accuracy", accuracy(model, split.X_train, split.y_train))
    evidence.figure("learning_curve", plot_curves(
        {"train loss": history.train_loss}, "MLP on digits: training loss", "epoch", "cross-entropy", logy=True))
    evidence.figure("val_accuracy", plot_curves(
        {"test accuracy": history.val_accuracy}, "MLP on digits: held-out accuracy", "epoch", "accuracy"))
    evidence.text(f"MLP {cfg['sizes']} (ReLU, He init), SGD lr={cfg['lr']} momentum={cfg['momentum']}, "
                  f"{cfg['epochs']} epochs on the seeded stratified digits split "
                  f"({len(split.y_train)} train / {len(split.y_test)} test).")
    assert test_acc >= cfg["min_test_accuracy"]
    assert history.train_loss[-1] < 0.1 * history.train_loss[0], "training loss did not fall tenfold"


def test_gradient_flow(trained, evidence):
    """Per-layer weight-gradient norms over training: every layer learns, none vanishes."""
    _, _, _, history = trained
    norms = np.array(history.grad_norms)  # (steps, n_dense)
    evidence.figure("gradient_flow", plot_layer_series(
        norms, "Gradient flow: |dL/dW| per layer during training", "weight-gradient L2 norm"))
    n = max(1, len(norms) // 10)
    early, late = norms[:n].mean(axis=0), norms[-n:].mean(axis=0)
    for j, (e, l) in enumerate(zip(early, late), start=1):
        evidence.metric(f"layer{j}_grad_norm_early", e)
        evidence.metric(f"layer{j}_grad_norm_late", l)
    spread = float(early.max() / early.min())
    evidence.metric("early_layer_norm_spread", spread, threshold=100.0, direction="lower", key=True)
    evidence.table("gradient_norms", [{"layer": j + 1, "early": e, "late": l} for j, (e, l) in enumerate(zip(early, late))])
    assert np.all(np.isfinite(norms)) and np.all(norms > 0), "a layer received no gradient"
    # With He init, no layer's gradient is orders of magnitude below another's (no vanishing).
    assert spread < 100.0
    # Gradients shrink as the loss converges: backprop signal tracks the error.
    assert np.all(late < early)
