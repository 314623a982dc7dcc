"""Why ResNets use skip connections: the same deep CNN with and without identity shortcuts,
same init seed, data, optimiser and steps. Recorded: per-layer gradient norms at init, the
early layers' gradient norms during training, and the training loss.

Requirement cnn.2 (ResNet); validation question q.3 (why skip connections).
"""
import numpy as np
import pytest
import torch

from implementations.architectures.cnn.resnet import cifar_resnet
from implementations.architectures.cnn.training import fit
from implementations.viz.curves import plot_curves, plot_depth_profiles

from ._helpers import fashion_tensors

# hundreds of tiny convolutions: a second thread only adds spin-waiting (assessments/threads.py)
pytestmark = [pytest.mark.torch, pytest.mark.usefixtures("single_thread")]


def window_means(values: np.ndarray, window: int) -> list[float]:
    n = len(values) // window * window
    return np.asarray(values[:n]).reshape(-1, window).mean(axis=1).tolist()


@pytest.mark.slow
def test_skip_connections_keep_deep_nets_trainable(evidence, experiment, seed):
    cfg = experiment("skip_connections")
    data = fashion_tensors(cfg["n_train"], 10, seed=seed, size=cfg["image_size"])
    runs = {}
    for residual in (False, True):
        torch.manual_seed(seed)
        model = cifar_resnet(cfg["depth"], 10, 1, cfg["width"], residual=residual)
        hist = fit(model, data.X_train, data.y_train, epochs=10_000, batch_size=cfg["batch_size"],
                   lr=cfg["lr"], weight_decay=cfg["weight_decay"], seed=seed, max_steps=cfg["steps"],
                   track=model.convs(), optimizer=cfg["optimizer"], channels_last=True)
        runs["residual" if residual else "plain"] = (np.array(hist.grad_norms), np.array(hist.step_loss))

    warm, early, tail, w = cfg["warmup_steps"], cfg["early_layers"], cfg["tail_steps"], cfg["plot_window"]
    stats = {}
    for name, (g, loss) in runs.items():
        at_init = g[:warm].mean(axis=0)  # (layers,): averaged over the first steps
        early_curve = np.array(window_means(g[:, :early].mean(axis=1), w))  # as drawn below
        stats[name] = {"init_spread": float(at_init[0] / at_init[-1]),
                       "early_grad_swing": float(early_curve[0] / early_curve.min()),
                       "early_grad_floor": float(early_curve.min()),
                       "final_loss": float(loss[-tail:].mean()), "at_init": at_init,
                       "early_curve": early_curve}
        for key in ("init_spread", "early_grad_swing", "early_grad_floor", "final_loss"):
            evidence.metric(f"{name}_{key}", stats[name][key])
    plain, res = stats["plain"], stats["residual"]
    loss_ratio = res["final_loss"] / plain["final_loss"]
    spread_ratio = plain["init_spread"] / res["init_spread"]
    swing_ratio = plain["early_grad_swing"] / res["early_grad_swing"]
    floor_ratio = res["early_grad_floor"] / plain["early_grad_floor"]
    evidence.metric("final_loss_ratio_residual_over_plain", loss_ratio, threshold=cfg["max_loss_ratio"],
                    direction="lower", key=True)
    evidence.metric("init_gradient_spread_ratio_plain_over_residual", spread_ratio,
                    threshold=cfg["min_spread_ratio"], direction="higher")
    evidence.metric("early_gradient_swing_ratio_plain_over_residual", swing_ratio,
                    threshold=cfg["min_swing_ratio"], direction="higher")
    evidence.metric("early_gradient_floor_ratio_residual_over_plain", floor_ratio,
                    threshold=cfg["min_floor_ratio"], direction="higher")

    evidence.figure("training_loss", plot_curves(
        {f"{n} (depth {cfg['depth']})": window_means(loss, w) for n, (_, loss) in runs.items()},
        "Training loss: plain vs residual, same depth and budget", f"x{w} steps", "cross-entropy", logy=True))
    evidence.figure("early_layer_gradients", plot_curves(
        {f"{n}: conv 1-{early}": s["early_curve"] for n, s in stats.items()},
        "Gradient norm of the first convolutions during training", f"x{w} steps", "|dL/dW|", logy=True))
    evidence.figure("gradient_profile_at_init", plot_depth_profiles(
        {n: s["at_init"] for n, s in stats.items()},
        f"|dL/dW| per conv layer at init (mean of {warm} steps)", "weight-gradient L2 norm"))
    evidence.text(
        f"Depth {cfg['depth']} CIFAR-style network, width {cfg['width']}, BatchNorm in both; the plain "
        f"twin is the residual one minus its identity paths. {cfg['steps']} steps of SGD+momentum on "
        f"{cfg['n_train']} Fashion-MNIST images at {cfg['image_size']} px. Without shortcuts the "
        f"gradient at init explodes towards the input ({plain['init_spread']:.0f}x first/last layer vs "
        f"{res['init_spread']:.0f}x), then the early layers' gradient collapses "
        f"({plain['early_grad_swing']:.0f}x from its start vs {res['early_grad_swing']:.0f}x) to a floor "
        f"{floor_ratio:.1f}x below the residual net's, and the loss stays {1 / loss_ratio:.1f}x higher: "
        "the degradation problem the shortcuts remove.")
    assert all(np.isfinite(g).all() and np.isfinite(loss).all() for g, loss in runs.values())
    assert loss_ratio <= cfg["max_loss_ratio"]
    assert spread_ratio >= cfg["min_spread_ratio"]
    assert swing_ratio >= cfg["min_swing_ratio"]
    assert floor_ratio >= cfg["min_floor_ratio"]
