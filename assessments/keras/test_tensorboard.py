"""TensorBoard visualisation of the training run (requirement keras.3).

The run (conftest.py `fashion_run`) logged scalars (keras.callbacks.TensorBoard), weight histograms
every epoch, and an image summary of validation samples (our SampleImages callback). Read back
with TensorBoard's own EventAccumulator they must equal the Keras History, the restored weights
and the logged pixels; and the real `tensorboard` server, started on 127.0.0.1, must serve the
same runs and series over its HTTP data API.
"""
import io
import subprocess
import sys
import urllib.parse

import numpy as np
import pytest

pytest.importorskip("tensorflow", reason="needs TensorFlow (pip install -e '.[tensorflow]')")
pytest.importorskip("tensorboard", reason="needs tensorboard (pip install -e '.[tensorflow]')")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402
from tensorboard.util import tensor_util  # noqa: E402

from implementations.config import load_experiment  # noqa: E402
from assessments.keras._helpers import free_port, http_json, stop, subprocess_env, wait_for  # noqa: E402

pytestmark = [pytest.mark.tensorflow]
SCALARS = {("train", "epoch_loss"): "loss", ("train", "epoch_accuracy"): "accuracy",
           ("train", "epoch_learning_rate"): "learning_rate", ("validation", "epoch_loss"): "val_loss",
           ("validation", "epoch_accuracy"): "val_accuracy"}


@pytest.fixture(scope="module")
def events(fashion_run) -> dict[str, EventAccumulator]:
    out = {}
    for run in ("train", "validation"):
        acc = EventAccumulator(str(fashion_run.folder / "tensorboard" / run),
                               size_guidance={"tensors": 0, "images": 0, "histograms": 0})
        acc.Reload()
        out[run] = acc
    return out


def _series(acc: EventAccumulator, tag: str) -> tuple[list[int], np.ndarray]:
    events = acc.Tensors(tag)
    return [e.step for e in events], np.array([float(tensor_util.make_ndarray(e.tensor_proto)) for e in events])


def test_scalars_equal_history(fashion_run, events, evidence, tensorboard_process, experiment):
    from implementations.viz.curves import plot_curves

    tol = experiment("tensorboard")["max_rel_error"]
    history, n = fashion_run.history, len(fashion_run.history["loss"])
    errors = {}
    for (run, tag), key in SCALARS.items():
        steps, values = _series(events[run], tag)
        assert steps == list(range(n)), (run, tag, steps)
        errors[f"{run}/{tag}"] = float(np.max(np.abs(values - history[key]) / np.abs(history[key])))
    fig = plot_curves({"train (TensorBoard epoch_loss)": _series(events["train"], "epoch_loss")[1],
                       "validation (TensorBoard epoch_loss)": _series(events["validation"], "epoch_loss")[1]},
                      "Loss curve read back from the TensorBoard event files", "epoch", "loss")
    evidence.figure("tensorboard_loss_curve", fig, caption="Values read with TensorBoard's EventAccumulator.")
    evidence.table("tensorboard_vs_history", [{"series": k, "max_rel_error": v} for k, v in errors.items()])
    worst = max(errors.values())
    evidence.metric("worst_scalar_rel_error_vs_history", worst, threshold=tol, direction="lower", key=True)
    assert worst <= tol, errors


def test_histograms_describe_the_weights(fashion_run, events, evidence, experiment):
    """One histogram per weight per epoch, counting all its entries; the best epoch's histogram
    spans exactly [min, max] of the weights EarlyStopping restored."""
    restored = fashion_run.load()
    n, best = len(fashion_run.history["loss"]), fashion_run.summary["best_epoch"]
    acc = events["train"]
    tags = {t for t in acc.Tags()["tensors"] if t.endswith("/histogram")}
    assert tags == {f"{w.path}/histogram" for w in restored.weights}
    worst_edge = 0.0
    for w in restored.weights:
        hist = {e.step: tensor_util.make_ndarray(e.tensor_proto) for e in acc.Tensors(f"{w.path}/histogram")}
        assert sorted(hist) == list(range(n)), w.path
        values = np.asarray(w.numpy(), dtype=np.float64)
        assert all(h[:, 2].sum() == values.size for h in hist.values()), w.path
        edges = hist[best][:, :2]
        worst_edge = max(worst_edge, abs(edges.min() - values.min()), abs(edges.max() - values.max()))
    tol = experiment("tensorboard")["max_edge_error"]
    evidence.metric("best_epoch_histogram_edge_error", worst_edge, threshold=tol, direction="lower")
    assert worst_edge <= tol


def test_image_summary_holds_the_logged_pixels(fashion_run, events, evidence):
    from PIL import Image

    acc = events["validation"]
    (event,) = acc.Tensors("val_samples")
    blob = tensor_util.make_ndarray(event.tensor_proto)  # [width, height, png, png, ...]
    pngs = [np.asarray(Image.open(io.BytesIO(b))) for b in blob[2:]]
    samples = fashion_run.data.x_val[: fashion_run.summary["n_sample_images"]]
    expected = np.round(samples * 255).astype(np.uint8)
    assert (int(blob[0]), int(blob[1])) == (28, 28) and len(pngs) == len(samples)
    decoded = np.stack([p[..., 0] if p.ndim == 3 else p for p in pngs])
    assert np.array_equal(decoded, expected)
    assert acc.SummaryMetadata("val_samples").plugin_data.plugin_name == "images"
    evidence.metric("image_pixels_differing", int((decoded != expected).sum()), threshold=0, direction="lower")


@pytest.fixture(scope="module")
def tensorboard_process(fashion_run, budget):
    """The real `tensorboard` on 127.0.0.1 and a free port, started (not yet waited for) at the
    module's first test, so it boots while the event-file tests run; stopped by its PID."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "tensorboard.main", "--logdir",
                             str(fashion_run.folder / "tensorboard"), "--host", "127.0.0.1", "--port", str(port),
                             "--load_fast=false", "--reload_interval", "0"],
                            env=subprocess_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield proc, f"http://127.0.0.1:{port}"
    finally:
        stop(proc)


@pytest.fixture(scope="module")
def tensorboard_server(fashion_run, tensorboard_process, budget) -> str:
    """Its URL once it serves both runs with every epoch (bounded wait)."""
    proc, url = tensorboard_process
    n = len(fashion_run.history["loss"])

    def loaded() -> bool:
        tags = http_json(f"{url}/data/plugin/scalars/tags")
        return all(run in tags and "epoch_loss" in tags[run] for run in ("train", "validation")) and len(
            http_json(f"{url}/data/plugin/scalars/scalars?run=validation&tag=epoch_loss")) == n

    wait_for(loaded, proc, load_experiment("keras", "tensorboard", budget)["start_timeout"], "tensorboard")
    return url


@pytest.mark.serving
def test_tensorboard_server_serves_the_run(fashion_run, tensorboard_server, evidence, experiment):
    """The real `tensorboard` on 127.0.0.1 (a free port), queried through its HTTP data API."""
    url, history = tensorboard_server, fashion_run.history
    runs = http_json(f"{url}/data/runs")
    assert {"train", "validation"} <= set(runs), runs
    tags = http_json(f"{url}/data/plugin/scalars/tags")
    assert {"epoch_loss", "epoch_accuracy", "epoch_learning_rate"} <= set(tags["train"])
    worst = 0.0
    for (run, tag), key in SCALARS.items():
        query = urllib.parse.urlencode({"run": run, "tag": tag})
        series = http_json(f"{url}/data/plugin/scalars/scalars?{query}")  # [[wall_time, step, value], ...]
        assert [s[1] for s in series] == list(range(len(history[key])))
        worst = max(worst, float(np.max(np.abs(np.array([s[2] for s in series]) - history[key])
                                        / np.abs(history[key]))))
    images = http_json(f"{url}/data/plugin/images/tags")
    assert "val_samples" in images.get("validation", {}), images
    tol = experiment("tensorboard")["max_rel_error"]
    evidence.metric("server_scalar_rel_error_vs_history", worst, threshold=tol, direction="lower", key=True)
    evidence.text(f"tensorboard {__import__('tensorboard').__version__} served runs {sorted(runs)}; every scalar "
                  "series from /data/plugin/scalars/scalars equals the Keras History.")
    assert worst <= tol
