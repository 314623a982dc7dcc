"""The Fashion-MNIST training run with callbacks (requirements keras.1 learning, keras.2 callbacks).

One `model.fit` (conftest.py `fashion_run`) with EarlyStopping(restore_best_weights), two
ModelCheckpoints, a StepLR LearningRateScheduler, CSVLogger, TensorBoard and our NaNStopper.
Each callback is checked against what the recorded History says it must have done.
"""
import csv

import numpy as np
import pytest

pytest.importorskip("tensorflow", reason="needs TensorFlow (pip install -e '.[tensorflow]')")

from implementations.frameworks.keras.callbacks import expected_early_stop, step_lr  # noqa: E402

pytestmark = [pytest.mark.tensorflow]


def _evaluate(model, x, y) -> dict:
    return model.evaluate(x, y, batch_size=256, verbose=0, return_dict=True)


def _fresh_model(run):
    """An untrained model of the run's architecture, compiled like it."""
    from implementations.frameworks.keras.models import row_transformer
    from implementations.frameworks.keras.training import compile_classifier

    c = run.cfg
    model = compile_classifier(row_transformer(d_model=c["d_model"], num_heads=c["num_heads"],
                                               num_layers=c["num_layers"], dim_feedforward=c["dim_feedforward"]),
                               c["lr"])
    model.optimizer.build(model.trainable_variables)  # so load_weights restores its state too
    return model


def test_model_learns_fashion_mnist(fashion_run, evidence):
    """The restored model on the held-out test set vs a nearest-centroid baseline on the same split."""
    from sklearn.neighbors import NearestCentroid

    from implementations.viz.curves import plot_curves

    run, d = fashion_run, fashion_run.data
    acc = _evaluate(run.load(), d.x_test, d.y_test)["accuracy"]
    flat = lambda x: x.reshape(len(x), -1)  # noqa: E731
    baseline = NearestCentroid().fit(flat(d.x_train), d.y_train).score(flat(d.x_test), d.y_test)
    cfg = run.cfg
    evidence.metric("test_accuracy", acc, threshold=cfg["min_test_accuracy"], direction="higher", key=True)
    evidence.metric("nearest_centroid_accuracy", baseline)
    evidence.metric("margin_over_baseline", acc - baseline, threshold=cfg["min_margin_over_baseline"],
                    direction="higher")
    fig = plot_curves({"train loss": run.history["loss"], "val loss": run.history["val_loss"],
                       "val accuracy": run.history["val_accuracy"]}, "Row transformer on Fashion-MNIST", "epoch", "")
    fig.axes[0].axvline(run.summary["best_epoch"] + 1, color="grey", ls="--", label="restored (best) epoch")
    fig.axes[0].legend(fontsize=8)
    evidence.figure("early_stopping_curves", fig, caption="Dashed: the epoch EarlyStopping restored.")
    evidence.text(f"Row transformer ({cfg['num_layers']} block, d_model {cfg['d_model']}) trained on "
                  f"{len(d.y_train)} Fashion-MNIST images, {run.summary['epochs_run']} epochs (EarlyStopping), "
                  f"tested on {len(d.y_test)} official test images; baseline: nearest centroid on the same pixels.")
    assert acc >= cfg["min_test_accuracy"]
    assert acc - baseline >= cfg["min_margin_over_baseline"]


def test_early_stopping_follows_the_validation_curve(fashion_run, evidence):
    """Replay the patience/min_delta rule on the recorded val_loss: training must stop exactly
    there, and the restored weights must be the best epoch's (same val metrics, same weights as
    that epoch's checkpoint)."""
    run, d, cfg = fashion_run, fashion_run.data, fashion_run.cfg
    val_loss = run.history["val_loss"]
    stop, best = expected_early_stop(val_loss, cfg["patience"], cfg["min_delta"])
    rows, best_so_far, wait = [], np.inf, 0
    for e, v in enumerate(val_loss):
        improved = v + cfg["min_delta"] < best_so_far
        best_so_far, wait = (v, 0) if improved else (best_so_far, wait + 1)
        rows.append({"epoch": e + 1, "loss": run.history["loss"][e], "val_loss": v,
                     "val_accuracy": run.history["val_accuracy"][e], "improved": improved, "wait": wait})
    evidence.table("early_stopping_history", rows)
    evidence.metric("stopped_epoch", stop if stop is not None else -1)
    evidence.metric("best_epoch", best)
    assert stop is not None and stop < cfg["max_epochs"] - 1, "the curve never triggered EarlyStopping: retune"
    assert len(val_loss) == stop + 1, f"ran {len(val_loss)} epochs, the rule says stop after epoch {stop}"
    assert (run.summary["stopped_epoch"], run.summary["best_epoch"]) == (stop, best)

    restored = run.load()
    metrics = _evaluate(restored, d.x_val, d.y_val)
    rel = abs(metrics["loss"] - val_loss[best]) / val_loss[best]
    evidence.metric("restored_val_loss_rel_error", rel, threshold=cfg["metric_rtol"], direction="lower", key=True)
    assert rel <= cfg["metric_rtol"]
    assert metrics["accuracy"] == pytest.approx(run.history["val_accuracy"][best], abs=cfg["accuracy_atol"])
    best_epoch_weights = _fresh_model(run)
    best_epoch_weights.load_weights(run.folder / "weights" / f"epoch_{best + 1:02d}.weights.h5")
    assert all(np.array_equal(a, b) for a, b in zip(restored.get_weights(), best_epoch_weights.get_weights()))
    last = _fresh_model(run)
    last.load_weights(run.folder / "weights" / f"epoch_{len(val_loss):02d}.weights.h5")
    assert best == len(val_loss) - 1 or not all(
        np.array_equal(a, b) for a, b in zip(restored.get_weights(), last.get_weights())), "weights not restored"


def test_checkpoints_reload_to_the_recorded_metrics(fashion_run, evidence):
    """Every epoch's weights checkpoint evaluates to that epoch's recorded val metrics; the
    save_best_only .keras file to the lowest val_loss of the run."""
    import keras

    run, d, cfg = fashion_run, fashion_run.data, fashion_run.cfg
    val_loss = run.history["val_loss"]
    model, errors = _fresh_model(run), []
    for e in range(len(val_loss)):
        model.load_weights(run.folder / "weights" / f"epoch_{e + 1:02d}.weights.h5")
        m = _evaluate(model, d.x_val, d.y_val)
        errors.append(abs(m["loss"] - val_loss[e]) / val_loss[e])
        assert m["accuracy"] == pytest.approx(run.history["val_accuracy"][e], abs=cfg["accuracy_atol"]), e
    best = keras.models.load_model(run.folder / "best.keras")
    best_rel = abs(_evaluate(best, d.x_val, d.y_val)["loss"] - min(val_loss)) / min(val_loss)
    evidence.metric("worst_epoch_checkpoint_rel_error", max(errors), threshold=cfg["metric_rtol"], direction="lower",
                    key=True)
    evidence.metric("best_checkpoint_rel_error", best_rel, threshold=cfg["metric_rtol"], direction="lower")
    assert max(errors) <= cfg["metric_rtol"] and best_rel <= cfg["metric_rtol"]
    # the epochs really differ, so matching each one is not automatic
    assert np.ptp(val_loss) > 100 * cfg["metric_rtol"] * max(val_loss)


def test_learning_rate_schedule_was_applied(fashion_run, evidence):
    """LearningRateScheduler(step_lr): the learning rate the optimizer logged each epoch equals
    torch.optim.lr_scheduler.StepLR's for the same (lr, step_size, gamma), and it did decay."""
    torch = pytest.importorskip("torch", reason="torch's StepLR is the reference")
    run, cfg = fashion_run, fashion_run.cfg
    logged = run.history["learning_rate"]
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=cfg["lr"])
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=cfg["step_size"], gamma=cfg["gamma"])
    expected = []
    for _ in logged:
        expected.append(sched.get_last_lr()[0])
        opt.step()
        sched.step()
    ours = [step_lr(cfg["lr"], cfg["step_size"], cfg["gamma"])(e) for e in range(len(logged))]
    evidence.table("learning_rate_per_epoch", [{"epoch": e + 1, "logged": a, "torch StepLR": b}
                                               for e, (a, b) in enumerate(zip(logged, expected))])
    assert np.allclose(ours, expected, rtol=1e-12, atol=0)
    assert np.allclose(logged, expected, rtol=1e-6, atol=0)  # logged from the float32 optimizer variable
    assert len(set(np.round(logged, 9))) >= 2, "the run ended before the first decay: nothing was tested"


def test_csv_logger_equals_history(fashion_run):
    run = fashion_run
    with open(run.folder / "log.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == list(range(len(run.history["loss"])))
    assert set(rows[0]) - {"epoch"} == set(run.history)
    for key, values in run.history.items():
        assert np.allclose([float(r[key]) for r in rows], values, rtol=1e-12, atol=0), key


def test_nan_stopper_silent_on_a_healthy_run(fashion_run):
    """On the real run the NaN stopper never fired, and every logged number is finite."""
    assert fashion_run.summary["nan_stopped_at"] is None
    assert all(np.isfinite(v).all() for v in fashion_run.history.values())
