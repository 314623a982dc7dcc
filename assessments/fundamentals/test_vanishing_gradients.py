"""The vanishing/exploding gradient problem, measured on deep stacks (requirement actloss.2).

A 20-layer MLP per activation x initialisation, one backward pass on a fixed batch: the weight
gradient norm of every layer. Sigmoid with the naive 0.01*randn init vanishes by tens of
orders of magnitude towards the input; ReLU with He init stays within a modest band; N(0, 1)
init explodes. Then gradient-norm clipping (torch's semantics) turns a diverging deep network
with too large an init into one that trains.
"""
import numpy as np
import pytest

from implementations.fundamentals.clipping import clip_grad_norm_, total_norm
from implementations.fundamentals.optimizers import SGD
from implementations.fundamentals.training import train_classifier
from implementations.viz.curves import plot_curves, plot_depth_profiles

from ._helpers import digits_data, gradient_profile, scaled_init_mlp

pytestmark = pytest.mark.usefixtures("single_thread")

# name -> (init scheme, scale applied after drawing)
INITS = {"naive 0.01*N(0,1)": ("normal", 0.01), "N(0,1)": ("normal", 1.0),
         "Xavier": ("xavier_normal", 1.0), "He": ("kaiming_normal", 1.0)}
ACTIVATIONS = ("sigmoid", "tanh", "relu", "leaky_relu", "swish", "gelu")


def depth_profiles(cfg: dict, seed: int) -> dict[tuple[str, str], np.ndarray]:
    """Per-layer weight-gradient norms for every activation x init on one seeded random batch."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(cfg["batch"], cfg["width"]))
    y = rng.integers(0, 10, size=cfg["batch"])
    sizes = [cfg["width"]] * cfg["depth"] + [10]
    return {(act, name): gradient_profile(scaled_init_mlp(sizes, act, init, scale, seed=seed), x, y)
            for act in ACTIVATIONS for name, (init, scale) in INITS.items()}


def test_gradient_norms_across_depth(evidence, experiment, seed):
    cfg = experiment("vanishing")
    runs = depth_profiles(cfg, seed)
    for act in ACTIVATIONS:
        evidence.figure(f"gradient_norm_by_layer_{act}", plot_depth_profiles(
            {name: np.maximum(runs[act, name], 1e-300) for name in INITS},
            f"{act}: |dL/dW| per layer, {cfg['depth']}-layer MLP at init", "weight-gradient norm"))
    evidence.table("first_over_last_layer", [
        {"activation": act, "init": name, "first layer": g[0], "last layer": g[-1], "first/last": g[0] / g[-1],
         "max/min over layers": g.max() / g.min()} for (act, name), g in runs.items()])

    sig = runs["sigmoid", "naive 0.01*N(0,1)"]
    vanish = sig[0] / sig[-1]
    evidence.metric("sigmoid_naive_first_over_last", vanish, threshold=cfg["vanish_ratio_max"], direction="lower",
                    key=True)
    assert vanish <= cfg["vanish_ratio_max"], "sigmoid + 0.01*randn should vanish towards the input"

    he = runs["relu", "He"]
    band = he.max() / he.min()
    evidence.metric("relu_he_max_over_min", band, threshold=cfg["he_band_max"], direction="lower")
    assert band <= cfg["he_band_max"], "ReLU + He should keep every layer's gradient within a modest band"

    tanh_big = runs["tanh", "N(0,1)"]
    explode = tanh_big[0] / tanh_big[-1]
    evidence.metric("tanh_normal_first_over_last", explode, threshold=cfg["explode_ratio_min"], direction="higher")
    assert explode >= cfg["explode_ratio_min"], "tanh + N(0,1) gradients should grow towards the input"

    relu_big = runs["relu", "N(0,1)"].max() / he.max()
    evidence.metric("relu_normal_over_he_grad_norm", relu_big, threshold=cfg["explode_vs_he_min"], direction="higher")
    assert relu_big >= cfg["explode_vs_he_min"], "ReLU + N(0,1) gradients should dwarf He's"


def test_clipping_tames_exploding_gradients(evidence, experiment, seed):
    """Deep ReLU MLP with He init scaled up: plain SGD's first steps blow the weights up (the run
    overflows to NaN or every ReLU dies at chance level); with clip_grad_norm_ the same run learns."""
    cfg = experiment("clipping")
    X, y, Xt, yt = digits_data()
    runs = {}
    for label, max_norm in (("no clipping", None), (f"clip_grad_norm_({cfg['max_norm']})", cfg["max_norm"])):
        sizes = [X.shape[1]] + [cfg["width"]] * cfg["depth"] + [10]
        model = scaled_init_mlp(sizes, "relu", "kaiming_normal", cfg["init_scale"], seed=seed)
        opt = SGD(model.parameters(), lr=cfg["lr"], momentum=cfg["momentum"])
        runs[label] = train_classifier(model, opt, X, y, epochs=cfg["epochs"], batch_size=cfg["batch_size"],
                                       seed=seed, max_grad_norm=max_norm, x_val=Xt, y_val=yt)
    plain, clipped = runs.values()
    evidence.figure("loss_with_and_without_clipping", plot_curves(
        {k: h.train_loss for k, h in runs.items()}, f"{cfg['depth']}-layer ReLU MLP, He init x {cfg['init_scale']}",
        "epoch", "train cross-entropy", logy=True))
    evidence.figure("gradient_norm_before_clipping", plot_curves(
        {"total gradient norm (before clipping)": clipped.total_grad_norm}, "Gradient norm seen by the clipper",
        "step", "L2 norm", logy=True))
    plain_acc = plain.val_accuracy[-1] if plain.val_accuracy and not plain.diverged else float("nan")
    clipped_acc = clipped.val_accuracy[-1]
    first_norm = clipped.total_grad_norm[0]
    evidence.metric("plain_sgd_diverged", float(plain.diverged))
    evidence.metric("plain_sgd_test_accuracy", plain_acc, threshold=cfg["max_failed_accuracy"], direction="lower")
    evidence.metric("plain_sgd_first_epoch_loss", plain.train_loss[0])
    evidence.metric("clipped_initial_grad_norm", first_norm)
    evidence.metric("clipped_final_grad_norm_median", float(np.median(clipped.total_grad_norm[-20:])))
    evidence.metric("clipped_test_accuracy", clipped_acc, threshold=cfg["min_clipped_accuracy"], direction="higher",
                    key=True)
    evidence.metric("clipped_loss_drop", clipped.train_loss[0] / clipped.train_loss[-1],
                    threshold=cfg["min_loss_drop"], direction="higher")
    assert first_norm >= cfg["min_explosion"] * cfg["max_norm"], "the setting must explode for clipping to matter"
    assert plain.diverged or plain_acc <= cfg["max_failed_accuracy"], "without clipping the run should fail"
    assert not clipped.diverged and np.all(np.isfinite(clipped.train_loss))
    assert clipped_acc >= cfg["min_clipped_accuracy"]
    assert clipped.train_loss[0] / clipped.train_loss[-1] >= cfg["min_loss_drop"]


def test_clip_grad_norm_semantics():
    """Total norm returned before clipping; after it the norm is max_norm and the direction is kept;
    gradients already inside the ball are untouched."""
    rng = np.random.default_rng(0)
    grads = [rng.normal(size=(4, 3)) * 10, rng.normal(size=5) * 10]
    before = [g.copy() for g in grads]
    norm = clip_grad_norm_(grads, max_norm=1.0)
    assert norm == pytest.approx(np.sqrt(sum(np.sum(g**2) for g in before)))
    assert total_norm(grads) == pytest.approx(1.0, rel=1e-5)
    for g, b in zip(grads, before):
        np.testing.assert_allclose(g, b * (1.0 / (norm + 1e-6)))
    small = [np.full(3, 0.1)]
    clip_grad_norm_(small, max_norm=1.0)
    np.testing.assert_array_equal(small[0], np.full(3, 0.1))
    with pytest.raises(ValueError, match="non-finite"):
        clip_grad_norm_([np.array([np.inf, 1.0])], 1.0, error_if_nonfinite=True)
    with pytest.raises(ValueError, match="max_norm"):
        clip_grad_norm_(small, 0.0)
