"""Custom training loops and a custom callback (requirement keras.2).

- A `train_step` override (GradNormModel) and a raw GradientTape loop reach the same weights as
  `model.fit(shuffle=False)` after N steps from the same initial weights, float64; a reversed batch
  order does not (the comparison is sharp).
- The train_step override's `grad_norm` metric equals the norm the raw loop computed.
- NaN injected into one training image stops `fit` at that batch through our NaNStopper; without
  it the same fit runs every batch of every epoch.
"""
import math

import numpy as np
import pytest

pytest.importorskip("tensorflow", reason="needs TensorFlow (pip install -e '.[tensorflow]')")
import keras  # noqa: E402

from implementations.frameworks.keras.callbacks import NaNStopper  # noqa: E402
from implementations.frameworks.keras.training import compile_classifier, fashion_arrays  # noqa: E402

pytestmark = [pytest.mark.tensorflow]
if keras.backend.backend() != "tensorflow":
    pytest.skip("GradientTape loops need KERAS_BACKEND=tensorflow", allow_module_level=True)

from implementations.frameworks.keras.custom_loop import GradNormModel, gradient_tape_fit  # noqa: E402
from implementations.frameworks.keras.models import row_transformer  # noqa: E402


def _model(cfg: dict, model_class=keras.Model, dtype: str = "float64") -> keras.Model:
    return row_transformer(d_model=cfg["d_model"], num_heads=cfg["num_heads"],
                           dim_feedforward=cfg["dim_feedforward"], dtype=dtype, model_class=model_class)


def _max_weight_diff(a: keras.Model, b: keras.Model) -> float:
    return max(float(np.abs(u - v).max()) for u, v in zip(a.get_weights(), b.get_weights()))


def test_custom_loops_reach_fit_weights(experiment, evidence, seed):
    cfg = experiment("custom_loop")
    data = fashion_arrays(cfg["n_train"], 10, 10, seed)
    x, y = data.x_train.astype("float64"), data.y_train
    keras.utils.set_random_seed(seed)
    reference = _model(cfg)
    init = reference.get_weights()
    steps = cfg["epochs"] * (len(x) // cfg["batch_size"])
    assert len(x) % cfg["batch_size"] == 0, "whole batches keep the three loops' batches identical"

    def fitted(model_class):
        model = _model(cfg, model_class)
        model.set_weights(init)
        compile_classifier(model, cfg["lr"])
        history = model.fit(x, y, batch_size=cfg["batch_size"], epochs=cfg["epochs"], shuffle=False, verbose=0)
        return model, history.history

    fit_model, _ = fitted(keras.Model)
    step_model, step_history = fitted(GradNormModel)

    def tape(order):
        model = _model(cfg)
        model.set_weights(init)
        record = gradient_tape_fit(model, x[order], y[order], keras.losses.SparseCategoricalCrossentropy(
            from_logits=True), keras.optimizers.Adam(cfg["lr"]), cfg["batch_size"], steps)
        return model, record

    tape_model, record = tape(np.arange(len(x)))
    control_model, _ = tape(np.arange(len(x))[::-1])
    diffs = {"train_step_override_vs_fit": _max_weight_diff(step_model, fit_model),
             "gradient_tape_loop_vs_fit": _max_weight_diff(tape_model, fit_model),
             "reversed_batch_order_vs_fit (control)": _max_weight_diff(control_model, fit_model),
             "moved_from_init": max(float(np.abs(u - v).max()) for u, v in zip(init, fit_model.get_weights()))}
    n_batches = len(x) // cfg["batch_size"]
    # fit's epoch log of the Mean tracker = the mean of that epoch's per-step norms
    epoch_norms = [float(np.mean(record["grad_norm"][e * n_batches:(e + 1) * n_batches]))
                   for e in range(cfg["epochs"])]
    norm_error = max(abs(a - b) / b for a, b in zip(step_history["grad_norm"], epoch_norms))
    for name in ("gradient_tape_loop_vs_fit", "train_step_override_vs_fit"):
        evidence.metric(name, diffs[name], threshold=cfg["max_weight_diff"], direction="lower",
                        key=name == "gradient_tape_loop_vs_fit")
    evidence.metric("reversed_batch_order_vs_fit", diffs["reversed_batch_order_vs_fit (control)"],
                    threshold=cfg["min_control_diff"], direction="higher")
    evidence.metric("grad_norm_rel_error", norm_error, threshold=cfg["grad_norm_rtol"], direction="lower")
    evidence.table("loop_weight_differences", [{"comparison": k, "max_abs_weight_diff": v} for k, v in diffs.items()])
    evidence.text(f"{steps} Adam steps (lr {cfg['lr']}, batch {cfg['batch_size']}, shuffle=False) of a float64 row "
                  "transformer from one set of initial weights: model.fit, a train_step override written with "
                  "tf.GradientTape, and a plain GradientTape loop. Max |weight difference| per loop.")
    assert diffs["moved_from_init"] > 100 * cfg["min_control_diff"], "training did not move the weights"
    assert diffs["train_step_override_vs_fit"] <= cfg["max_weight_diff"]
    assert diffs["gradient_tape_loop_vs_fit"] <= cfg["max_weight_diff"]
    assert diffs["reversed_batch_order_vs_fit (control)"] >= cfg["min_control_diff"]
    assert norm_error <= cfg["grad_norm_rtol"], (step_history["grad_norm"], epoch_norms)


def _nan_fit(cfg: dict, x: np.ndarray, y: np.ndarray, callbacks: list, seed: int):
    keras.utils.set_random_seed(seed)
    model = compile_classifier(row_transformer(d_model=16, num_heads=2, dim_feedforward=32), 1e-3)
    seen = keras.callbacks.LambdaCallback()
    seen.batches = 0

    def count(batch, logs):
        seen.batches += 1

    seen.on_train_batch_end = count
    history = model.fit(x, y, batch_size=cfg["batch_size"], epochs=cfg["epochs"], shuffle=False, verbose=0,
                        callbacks=[*callbacks, seen])
    return history.history, seen.batches


def test_nan_stopper_stops_at_the_injected_batch(experiment, evidence, seed):
    cfg = experiment("nan_stopper")
    data = fashion_arrays(cfg["n_train"], 10, 10, seed)
    x, y = data.x_train.copy(), data.y_train
    x[cfg["nan_row"]] = np.nan
    nan_batch = cfg["nan_row"] // cfg["batch_size"]
    batches_per_epoch = -(-len(x) // cfg["batch_size"])

    stopper = NaNStopper()
    history, batches = _nan_fit(cfg, x, y, [stopper], seed)
    control_history, control_batches = _nan_fit(cfg, x, y, [], seed)

    evidence.metric("stopped_at_batch", stopper.stopped_at[1] if stopper.stopped_at else -1,
                    threshold=nan_batch, direction="lower", key=True)
    evidence.metric("batches_without_stopper", control_batches)
    evidence.text(f"Image {cfg['nan_row']} (batch {nan_batch} of epoch 0, shuffle=False) set to NaN. With NaNStopper "
                  f"training stopped at (epoch, batch) = {stopper.stopped_at} after {batches} batches; without it "
                  f"fit ran all {control_batches} batches and ended with loss {control_history['loss'][-1]}.")
    assert stopper.stopped_at == (0, nan_batch)
    assert batches == nan_batch + 1 == stopper.batches_seen
    assert len(history["loss"]) == 1 and math.isnan(stopper.bad_logs["loss"])
    # the control: nothing else stops it, the NaN poisons every later batch
    assert control_batches == cfg["epochs"] * batches_per_epoch
    assert len(control_history["loss"]) == cfg["epochs"] and math.isnan(control_history["loss"][-1])
