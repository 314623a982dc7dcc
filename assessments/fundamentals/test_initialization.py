"""The effect of initialisation on a deep stack (requirement mlp.4).

Zeros never break symmetry; N(0, 1) saturates tanh (and explodes its gradients) and explodes
ReLU activations; Xavier (tanh) and He (ReLU) keep the activation scale across depth.
"""
import numpy as np

from implementations.fundamentals.losses import CrossEntropyLoss
from implementations.fundamentals.mlp import MLP
from implementations.fundamentals.optimizers import SGD
from implementations.fundamentals.layers import Dense
from implementations.viz.curves import plot_depth_profiles


def depth_profile(activation: str, init: str, cfg: dict) -> tuple[np.ndarray, np.ndarray, float]:
    """Activation std after each hidden layer, weight-gradient norm per layer, tanh saturation."""
    rng = np.random.default_rng(0)
    model = MLP([cfg["width"]] * cfg["depth"] + [10], activation=activation, init=init, seed=0)
    x = rng.normal(size=(cfg["batch"], cfg["width"]))
    y = rng.integers(0, 10, size=cfg["batch"])
    stds, saturated = [], []
    a = x
    for layer in model.layers:
        a = layer.forward(a)
        if not isinstance(layer, Dense):
            stds.append(a.std())
            saturated.append(np.mean(np.abs(a) > 0.99))
    loss = CrossEntropyLoss()
    with np.errstate(over="ignore", invalid="ignore"):
        loss.forward(a, y)
        model.backward(loss.backward())
    grads = np.array([np.linalg.norm(d.grads["weight"]) for d in model.dense_layers[:-1]])
    return np.array(stds), grads, float(np.mean(saturated))


def test_zero_init_never_breaks_symmetry(evidence):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(64, 8)), rng.integers(0, 3, size=64)
    model = MLP([8, 16, 16, 3], activation="tanh", init="zeros", seed=0)
    opt, loss = SGD(model.parameters(), lr=0.5), CrossEntropyLoss()
    for _ in range(50):
        loss.forward(model.forward(x), y)
        model.backward(loss.backward())
        opt.step(model.gradients())
    spreads = [float(np.max(np.ptp(d.params["weight"], axis=0))) for d in model.dense_layers[:-1]]
    evidence.metric("max_difference_between_hidden_units", max(spreads), threshold=0.0, direction="lower")
    # Every hidden unit of a layer has the same incoming weights: they compute the same thing.
    assert max(spreads) == 0.0
    # A small random init on the same data does break it.
    model = MLP([8, 16, 16, 3], activation="tanh", init="xavier_normal", seed=0)
    assert np.ptp(model.dense_layers[0].params["weight"], axis=0).max() > 0.1


def test_constant_init_gradients_are_nonzero_but_identical_across_units(evidence, experiment):
    """Symmetry with a constant non-zero init: backprop gives every hidden unit of a layer the same
    non-zero gradient, so after training they are still copies of each other although the weights
    moved. (With zeros and tanh every gradient is exactly 0, which a no-op backward also gives.)
    Hidden weights are all `constant_value`; the output layer's row k is a constant c_k (classes
    differ, hidden units do not), so the logits and the gradients are not trivially equal."""
    cfg = experiment("initialization")
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(64, 8)), rng.integers(0, 3, size=64)
    model = MLP([8, 16, 12, 3], activation="tanh", init="zeros", seed=0)
    hidden = model.dense_layers[:-1]
    for d in hidden:
        d.params["weight"][...] = cfg["constant_value"]
    model.dense_layers[-1].params["weight"][...] = rng.normal(size=(3, 1))
    opt, loss = SGD(model.parameters(), lr=0.5), CrossEntropyLoss()
    loss.forward(model.forward(x), y)
    model.backward(loss.backward())
    first = [d.grads["weight"].copy() for d in hidden]
    for _ in range(cfg["symmetry_steps"]):
        loss.forward(model.forward(x), y)
        model.backward(loss.backward())
        opt.step(model.gradients())

    def spread(w: np.ndarray) -> float:  # how much the units (rows) of a layer differ
        return float(np.ptp(w, axis=0).max() / np.abs(w).mean())

    grad_norm = min(float(np.linalg.norm(g)) for g in first)
    grad_spread = max(spread(g) for g in first)
    weight_spread = max(spread(d.params["weight"]) for d in hidden)
    change = min(float(np.abs(d.params["weight"] - cfg["constant_value"]).mean() / cfg["constant_value"])
                 for d in hidden)
    evidence.metric("constant_init_first_gradient_norm", grad_norm, threshold=0.0, direction="higher")
    evidence.metric("constant_init_gradient_spread_across_units", grad_spread,
                    threshold=cfg["max_unit_spread"], direction="lower")
    evidence.metric("constant_init_weight_spread_after_training", weight_spread,
                    threshold=cfg["max_unit_spread"], direction="lower", key=True)
    evidence.metric("constant_init_relative_weight_change", change, threshold=cfg["min_weight_change"],
                    direction="higher")
    assert grad_norm > 1e-6, "backprop gave a zero gradient to a hidden layer"
    assert grad_spread <= cfg["max_unit_spread"], "units of one layer got different gradients"
    assert change >= cfg["min_weight_change"], "the weights barely moved: training did nothing"
    assert weight_spread <= cfg["max_unit_spread"], "the hidden units drifted apart: symmetry broke"
    # The same data and steps from a random init give distinct units.
    model = MLP([8, 16, 12, 3], activation="tanh", init="xavier_normal", seed=0)
    assert spread(model.dense_layers[0].params["weight"]) > 0.1


def test_initialization_across_depth(evidence, experiment):
    cfg = experiment("initialization")
    runs = {(act, init): depth_profile(act, init, cfg)
            for act in ("tanh", "relu") for init in ("normal", "xavier_normal", "kaiming_normal")}
    evidence.figure("activation_std_by_depth", plot_depth_profiles(
        {f"{act} + {init}": stds for (act, init), (stds, _, _) in runs.items()},
        f"Activation std across a {cfg['depth']}-layer stack", "std of activations"))
    evidence.figure("gradient_norm_by_depth", plot_depth_profiles(
        {f"{act} + {init}": g for (act, init), (_, g, _) in runs.items()},
        "Weight-gradient norm per layer at init", "|dL/dW|"))
    evidence.table("init_summary", [
        {"activation": act, "init": init, "std first": s[0], "std last": s[-1],
         "grad first/last": g[0] / g[-1], "tanh saturated": sat}
        for (act, init), (s, g, sat) in runs.items()])

    relu_normal, tanh_normal = runs["relu", "normal"], runs["tanh", "normal"]
    growth = relu_normal[0][-1] / relu_normal[0][0]
    evidence.metric("relu_normal_std_growth", growth, threshold=1e6, direction="higher")
    assert growth > 1e6, "N(0,1) on a deep ReLU stack should explode"
    evidence.metric("tanh_normal_saturated_fraction", tanh_normal[2], threshold=0.5, direction="higher")
    grad_ratio = tanh_normal[1][0] / tanh_normal[1][-1]
    evidence.metric("tanh_normal_grad_first_over_last", grad_ratio, threshold=1e3, direction="higher")
    assert tanh_normal[2] > 0.5, "N(0,1) should saturate most tanh units"
    assert grad_ratio > 1e3, "N(0,1) tanh gradients should explode towards the input"

    for act, init in (("tanh", "xavier_normal"), ("relu", "kaiming_normal")):
        stds = runs[act, init][0]
        ratio = float(max(stds.max() / stds[0], stds[0] / stds.min()))
        evidence.metric(f"{act}_{init}_std_ratio", ratio, threshold=cfg["max_std_ratio"], direction="lower",
                        key=act == "relu")
        assert ratio <= cfg["max_std_ratio"], f"{init} should keep the {act} activation scale"
