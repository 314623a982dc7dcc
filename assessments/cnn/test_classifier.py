"""A CNN classifies Fashion-MNIST (full 60k/10k split) well above a same-run baseline; its
learning curve, confusion matrix, trained first-layer filters and feature maps are shown,
each beside an assertion on the numbers drawn.

Requirements cnn.1 (CNN for image classification) and cnn.3 (filters and feature maps).
"""
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from implementations.architectures.cnn.classifier import SmallCNN
from implementations.architectures.cnn.probing import relative_change, shift_error, shifted_crops
from implementations.architectures.cnn.training import History, fit, predict
from implementations.config import load_experiment
from implementations.viz.confusion import plot_confusion_matrix
from implementations.viz.curves import plot_curves
from implementations.viz.filters import plot_feature_maps, plot_filters

from ._helpers import FashionTensors, confusion_matrix, fashion_tensors, nearest_centroid_accuracy

pytestmark = pytest.mark.torch


def smoothed(values: list[float], window: int) -> list[float]:
    """Means of consecutive windows (the per-step loss is noisy)."""
    return [float(np.mean(values[i:i + window])) for i in range(0, len(values) - window + 1, window)]


@dataclass
class Trained:
    cfg: dict
    data: FashionTensors
    model: SmallCNN
    w_init: torch.Tensor
    hist: History
    pred: np.ndarray
    seed: int


@pytest.fixture(scope="module")
def trained(request) -> Trained:
    """SmallCNN trained once per run on the full Fashion-MNIST training set (xdist loadfile)."""
    cfg = load_experiment("cnn", "fashion_cnn", request.config.getoption("--budget"))
    seed = request.config.getoption("--seed")
    data = fashion_tensors(cfg.get("n_train"), cfg.get("n_test"), seed=seed)
    torch.manual_seed(seed)
    model = SmallCNN(widths=cfg["widths"], dropout=cfg["dropout"])
    w_init = model.first_conv.weight.detach().clone()
    hist = fit(model, data.X_train, data.y_train, epochs=cfg["epochs"], batch_size=cfg["batch_size"],
               lr=cfg["lr"], weight_decay=cfg["weight_decay"], seed=seed, X_val=data.X_test,
               y_val=data.y_test, channels_last=cfg["channels_last"])
    pred = predict(model, data.X_test, channels_last=cfg["channels_last"]).argmax(1).numpy()
    return Trained(cfg, data, model, w_init, hist, pred, seed)


@pytest.mark.slow
def test_cnn_learns_fashion_mnist(trained, evidence):
    cfg, data, hist = trained.cfg, trained.data, trained.hist
    baseline = nearest_centroid_accuracy(data)
    y_test = data.y_test.numpy()
    acc = float(np.mean(trained.pred == y_test))
    cm = confusion_matrix(y_test, trained.pred, len(data.class_names))
    recall = cm.diagonal() / cm.sum(axis=1)

    evidence.metric("test_accuracy", acc, threshold=cfg["min_test_accuracy"], direction="higher", key=True)
    evidence.metric("nearest_centroid_baseline", baseline)
    evidence.metric("margin_over_baseline", acc - baseline, threshold=cfg["min_margin_over_baseline"],
                    direction="higher")
    evidence.metric("worst_class_recall", recall.min(), threshold=cfg["min_class_recall"], direction="higher")
    evidence.metric("parameters", sum(p.numel() for p in trained.model.parameters()))
    window = max(1, len(hist.step_loss) // 40)
    evidence.figure("learning_curve", plot_curves(
        {f"train loss (mean of {window} steps)": smoothed(hist.step_loss, window)},
        "SmallCNN on Fashion-MNIST: training loss", f"x{window} steps", "cross-entropy", logy=True))
    evidence.figure("test_accuracy_per_epoch", plot_curves(
        {"test accuracy": hist.val_accuracy}, "SmallCNN on Fashion-MNIST: held-out accuracy",
        "epoch", "accuracy"))
    evidence.figure("confusion_matrix", plot_confusion_matrix(
        cm, data.class_names, f"SmallCNN, Fashion-MNIST test (acc {acc:.3f})"))
    evidence.table("per_class_recall", [{"class": c, "recall": r, "support": int(n)}
                                        for c, r, n in zip(data.class_names, recall, cm.sum(axis=1))])
    evidence.text(f"SmallCNN widths {cfg['widths']}, AdamW + one-cycle (peak lr {cfg['lr']}), "
                  f"{cfg['epochs']} epochs, batch {cfg['batch_size']}, on {len(data.y_train)} train / "
                  f"{len(y_test)} test images of the fixed split; baseline: nearest class mean on pixels.")
    assert acc >= cfg["min_test_accuracy"]
    assert acc - baseline >= cfg["min_margin_over_baseline"]
    assert recall.min() >= cfg["min_class_recall"]
    assert hist.step_loss[-1] < hist.step_loss[0] / 3, "training loss did not fall threefold"
    assert cm.sum() == len(y_test) and np.isclose(np.trace(cm) / cm.sum(), acc)


def test_trained_filters_moved_from_init(trained, evidence):
    """What the first layer learned: every filter moved far from its random init."""
    w_trained = trained.model.first_conv.weight.detach().clone()
    change = relative_change(trained.w_init, w_trained)
    floor = trained.cfg["min_filter_change"]
    evidence.metric("median_filter_relative_change", np.median(change), threshold=floor,
                    direction="higher", key=True)
    evidence.metric("min_filter_relative_change", change.min())
    evidence.figure("first_layer_filters", plot_filters(
        {"at initialisation": trained.w_init, "after training": w_trained},
        "SmallCNN first-layer 3x3 filters (summed over the input channel)"))
    assert np.median(change) >= floor
    assert change.min() > 0.05, "a first-layer filter barely moved from its initialisation"


def test_trained_feature_maps_shift_with_the_image(trained, evidence):
    """Feature maps of one real test image at the three depths; a 4-pixel shift of the image
    moves each map by 4 / stride cells (strides 1, 2, 4), exactly away from the borders."""
    cfg, data = trained.cfg, trained.data
    shift = 4
    raw = torch.from_numpy(np.pad(data.raw_test[0], shift)).float()[None] / 255.0
    a, b = shifted_crops((raw - data.mean) / data.std, 28, shift)
    maps_a, maps_b = trained.model.feature_maps(a[None]), trained.model.feature_maps(b[None])
    stages = list(zip(maps_a, maps_b, (1, 2, 4), cfg["shift_margins"]))
    errors = [shift_error(fa, fb, shift // s, m) for fa, fb, s, m in stages]
    wrong = [shift_error(fa, fb, shift // s + 1, m) for fa, fb, s, m in stages]
    for depth, err in enumerate(errors, start=1):
        evidence.metric(f"shift_error_stage{depth}", err, threshold=cfg["max_shift_error"], direction="lower")
    evidence.metric("worst_shift_error", max(errors), threshold=cfg["max_shift_error"], direction="lower",
                    key=True)
    evidence.figure("feature_maps", plot_feature_maps(
        {f"stage {i + 1}": m[0] for i, m in enumerate(maps_a)},
        f"SmallCNN feature maps of a test '{data.class_names[int(data.y_test[0])]}'",
        image=data.raw_test[0]))
    assert max(errors) <= cfg["max_shift_error"]
    assert min(wrong) >= cfg["min_wrong_shift_error"], "a wrong shift lines up: the check is blind"


def pooled_stage_features(model: SmallCNN, X: torch.Tensor, batch: int = 500) -> np.ndarray:
    """Global-average-pooled maps of every stage, concatenated: (N, sum(widths))."""
    model.eval()
    with torch.no_grad():
        parts = [torch.cat([m.mean((2, 3)) for m in model.feature_maps(X[i:i + batch])], 1)
                 for i in range(0, len(X), batch)]
    return torch.cat(parts).double().numpy()


def test_trained_feature_maps_are_class_informative(trained, evidence):
    """What the drawn feature maps carry: a linear probe on the trained network's pooled maps
    classifies held-out images far better than the same probe on the maps of the same network
    at its random initialisation (same seed, same architecture). Equivariance alone holds for
    random weights too; this holds only after training."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    cfg, data = trained.cfg, trained.data
    n_fit, n_eval = cfg["probe_train"], cfg["probe_test"]
    torch.manual_seed(trained.seed)
    untrained = SmallCNN(widths=cfg["widths"], dropout=cfg["dropout"])
    assert torch.equal(untrained.first_conv.weight, trained.w_init)  # the very init training started from
    acc = {}
    for name, model in (("trained", trained.model), ("random init", untrained)):
        probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
        probe.fit(pooled_stage_features(model, data.X_train[:n_fit]), data.y_train[:n_fit].numpy())
        acc[name] = float(probe.score(pooled_stage_features(model, data.X_test[:n_eval]), data.y_test[:n_eval].numpy()))
    gain = acc["trained"] - acc["random init"]
    evidence.metric("probe_accuracy_trained_maps", acc["trained"], key=True)
    evidence.metric("probe_accuracy_random_init_maps", acc["random init"])
    evidence.metric("feature_map_probe_gain", gain, threshold=cfg["min_feature_probe_gain"], direction="higher")
    evidence.table("feature_map_probe", [{"feature maps of": k, "linear-probe accuracy": v} for k, v in acc.items()])
    assert gain >= cfg["min_feature_probe_gain"], acc


def test_small_cnn_rejects_bad_input():
    model = SmallCNN()
    with pytest.raises(ValueError, match=r"\(N, 1, 28, 28\)"):
        model(torch.zeros(2, 3, 28, 28))
    with pytest.raises(ValueError, match="multiple of 4"):
        SmallCNN(input_size=30)
    with pytest.raises(ValueError, match="widths"):
        SmallCNN(widths=(8, 16))


@settings(max_examples=6, deadline=None)
@given(batch=st.integers(1, 4), size=st.sampled_from([8, 16, 28, 32]), classes=st.integers(2, 12))
def test_small_cnn_shapes_and_finite(batch, size, classes):
    torch.manual_seed(0)
    model = SmallCNN(num_classes=classes, input_size=size).eval()
    x = torch.randn(batch, 1, size, size) * 100  # far outside the standardised range
    out = model(x)
    assert out.shape == (batch, classes)
    assert torch.isfinite(out).all()
    maps = model.feature_maps(x)
    assert [tuple(m.shape[-2:]) for m in maps] == [(size // s, size // s) for s in (1, 2, 4)]
