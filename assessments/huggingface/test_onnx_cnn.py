"""Image classifiers across frameworks through ONNX (requirement huggingface.3).

- the cnn area's SmallCNN (PyTorch), trained briefly on Fashion-MNIST, exported with both
  torch.onnx exporters (dynamic batch axis);
- a Keras functional twin trained in TensorFlow, exported with tf2onnx;
- ONNX -> another framework: the PyTorch CNN's ONNX file rebuilt as a TensorFlow model by onnx2tf
  (a model trained in torch running in TF); onnx2torch, the converter the other way, is tried too
  and its failure here (it imports torchvision) recorded as it happens.
Each conversion: onnx.checker full_check, every output within the model's tolerance at several batch
sizes, test accuracy unchanged, and a sidecar JSON beside the .onnx file.
"""
import importlib.util

import numpy as np
import pytest
import torch

for _module in ("onnx", "onnxruntime", "transformers"):
    pytest.importorskip(_module, reason=f"{_module} (onnx/hf extras) is not installed")

from assessments.huggingface._helpers import dims, parity_rows, read_sidecar, record_parity  # noqa: E402
from implementations.architectures.cnn.classifier import SmallCNN  # noqa: E402
from implementations.architectures.cnn.training import fit, images_to_tensor  # noqa: E402
from implementations.data.images import fashion_mnist_split  # noqa: E402
from implementations.frameworks.huggingface.inference import ort_session  # noqa: E402
from implementations.frameworks.onnx.export import (check, export_keras, export_torch, run_onnx,  # noqa: E402
                                                    write_sidecar)

pytestmark = [pytest.mark.torch]


@pytest.fixture(scope="module")
def fashion(request):
    from implementations.config import load_experiment

    cfg = load_experiment("huggingface", "onnx_export", request.config.getoption("--budget"))
    split = fashion_mnist_split(cfg["n_train"], cfg["n_test"], seed=0)
    norm = {"mean": cfg["image_mean"], "std": cfg["image_std"]}
    return (cfg, images_to_tensor(split.X_train, **norm), torch.from_numpy(split.y_train),
            images_to_tensor(split.X_test, **norm), split.y_test)


@pytest.fixture(scope="module")
def torch_cnn(fashion):
    cfg, X, y, X_test, _ = fashion
    torch.manual_seed(0)
    model = SmallCNN(widths=cfg["cnn_widths"])
    fit(model, X, y, epochs=cfg["cnn_epochs"], batch_size=cfg["cnn_batch_size"], lr=cfg["cnn_lr"], seed=0)
    model.eval()
    with torch.inference_mode():
        logits = model(X_test).numpy()
    return model, logits


@pytest.fixture(scope="module")
def cnn_onnx(torch_cnn, fashion, artifacts):
    """{exporter: path} of the SmallCNN exported by both exporters, with sidecars."""
    cfg, *_ , X_test, _ = fashion
    model, _ = torch_cnn
    paths = {}
    for exporter in ("dynamo", "legacy"):
        path = artifacts("onnx") / f"fashion_cnn_{exporter}.onnx"
        export_torch(model, {"x": X_test[:2]}, path, exporter, ["logits"], {"x": {0: "batch"}, "logits": {0: "batch"}},
                     cfg["opset"])
        write_sidecar(path, "pytorch", f"torch.onnx.export ({exporter})", model="SmallCNN (cnn area) on Fashion-MNIST",
                      torch_version=torch.__version__)
        paths[exporter] = path
    return paths


def _accuracies(evidence, ours: np.ndarray, source: np.ndarray, y: np.ndarray, cfg: dict) -> None:
    """The task metric after conversion: test accuracy within max_accuracy_delta of the source's,
    the source itself trained (above min_source_accuracy, so equal predictions mean something)."""
    acc, acc_src = float(np.mean(ours.argmax(1) == y)), float(np.mean(source.argmax(1) == y))
    evidence.metric("converted_test_accuracy", acc, threshold=acc_src - cfg["max_accuracy_delta"], direction="higher")
    evidence.metric("source_test_accuracy", acc_src, threshold=cfg["min_source_accuracy"], direction="higher")
    assert acc_src >= cfg["min_source_accuracy"], acc_src
    assert abs(acc - acc_src) <= cfg["max_accuracy_delta"], (acc, acc_src)
    assert np.mean(ours.argmax(1) == source.argmax(1)) >= 1 - cfg["max_accuracy_delta"]


@pytest.mark.parametrize("exporter", ["dynamo", "legacy"])
def test_torch_cnn_to_onnx(exporter, cnn_onnx, torch_cnn, fashion, experiment, evidence):
    cfg, *_, X_test, y_test = fashion
    model, logits = torch_cnn
    path = cnn_onnx[exporter]
    check(path)
    sidecar = read_sidecar(path)
    _, sess = ort_session(path, threads=torch.get_num_threads())
    rows = []
    for batch in cfg["cnn_batch_sizes"]:
        rows += parity_rows({"logits": logits[:batch]}, run_onnx(sess, {"x": X_test[:batch].numpy()}), batch=batch)
    record_parity(evidence, f"cnn_{exporter}", rows, experiment("onnx_tolerance")[f"cnn_{exporter}"], exporter,
                  sidecar["opset"])
    full = run_onnx(sess, {"x": X_test.numpy()})["logits"]
    _accuracies(evidence, full, logits, y_test, cfg)
    assert dims(sidecar) == {"x": ["batch", 1, 28, 28]} and dims(sidecar, "outputs") == {"logits": ["batch", 10]}
    assert sidecar["inputs"][0]["dtype"] == "float32" and sidecar["opset"] == cfg["opset"]


@pytest.mark.tensorflow
def test_onnx_to_tensorflow_with_onnx2tf(cnn_onnx, torch_cnn, fashion, artifacts, experiment, evidence):
    """The PyTorch-trained CNN runs in TensorFlow: ONNX -> onnx2tf -> a tf_keras model."""
    from implementations.frameworks.onnx.convert import onnx_to_tensorflow, run_tensorflow

    cfg, *_, X_test, y_test = fashion
    _, logits = torch_cnn
    tf_model = onnx_to_tensorflow(cnn_onnx["legacy"], artifacts("onnx") / "fashion_cnn_tf", keep_nchw=["x"])
    rows = [row for batch in cfg["cnn_batch_sizes"] for row in parity_rows(
        {"logits": logits[:batch]}, {"logits": run_tensorflow(tf_model, X_test[:batch].numpy())}, batch=batch)]
    record_parity(evidence, "cnn_onnx2tf", rows, experiment("onnx_tolerance")["cnn_onnx2tf"], "onnx2tf",
                  cfg["opset"])
    _accuracies(evidence, run_tensorflow(tf_model, X_test.numpy()), logits, y_test, cfg)
    evidence.text(f"{type(tf_model).__module__}.{type(tf_model).__name__} built by onnx2tf from "
                  f"{cnn_onnx['legacy'].name}; SavedModel under artifacts/onnx/fashion_cnn_tf/.")


def test_onnx_to_torch_with_onnx2torch(cnn_onnx, torch_cnn, fashion, evidence):
    """onnx2torch is tried for real: here its import fails on torchvision (no CPU build in this
    environment), and that error is what this test records; where it imports, its module must
    match the source model."""
    if importlib.util.find_spec("onnx2torch") is None:
        pytest.skip("onnx2torch is not installed (make setup installs it with --no-deps)")
    from implementations.frameworks.onnx.convert import onnx_to_torch

    *_, X_test, _ = fashion
    _, logits = torch_cnn
    try:
        module = onnx_to_torch(cnn_onnx["legacy"])
    except ImportError as err:
        evidence.text(f"onnx2torch.convert failed: {type(err).__name__}: {err}. onnx2torch imports "
                      "torchvision for its NMS/RoIAlign converters; onnx2tf is used instead.")
        assert "torchvision" in str(err), err
        return
    with torch.inference_mode():
        ours = module(X_test[:64]).numpy()
    evidence.metric("onnx2torch_max_abs_diff", float(np.max(np.abs(ours - logits[:64]))), threshold=1e-4,
                    direction="lower")
    assert np.max(np.abs(ours - logits[:64])) <= 1e-4


@pytest.mark.tensorflow
def test_keras_to_onnx_with_tf2onnx(fashion, artifacts, experiment, evidence):
    """A Keras functional model trained in TensorFlow runs in ONNX Runtime."""
    keras = pytest.importorskip("keras", reason="keras (tensorflow extra) is not installed")
    if keras.backend.backend() != "tensorflow":
        pytest.skip(f"tf2onnx needs Keras' TensorFlow backend; this session runs {keras.backend.backend()!r}")
    from implementations.frameworks.onnx.keras_twin import fit_keras, keras_small_cnn

    cfg, X, y, X_test, y_test = fashion
    x_train, x_test = X.permute(0, 2, 3, 1).numpy(), X_test.permute(0, 2, 3, 1).numpy()  # NHWC
    model = keras_small_cnn(widths=cfg["cnn_widths"])
    fit_keras(model, x_train, y.numpy(), epochs=cfg["cnn_epochs"], batch_size=cfg["cnn_batch_size"], lr=cfg["cnn_lr"])
    source = np.asarray(model(x_test, training=False))
    path = export_keras(model, artifacts("onnx") / "fashion_cnn_keras.onnx", cfg["keras_opset"])
    write_sidecar(path, "keras (tensorflow)", "tf2onnx.convert.from_keras", model="Keras functional twin of SmallCNN "
                  "on Fashion-MNIST", keras_version=keras.__version__)
    check(path)
    sidecar = read_sidecar(path)
    _, sess = ort_session(path, threads=torch.get_num_threads())
    rows = [row for batch in cfg["cnn_batch_sizes"] for row in parity_rows(
        {"logits": source[:batch]}, {"logits": run_onnx(sess, {"image": x_test[:batch]})[sess.get_outputs()[0].name]},
        batch=batch)]
    record_parity(evidence, "keras_tf2onnx", rows, experiment("onnx_tolerance")["keras_tf2onnx"], "tf2onnx",
                  sidecar["opset"])
    full = run_onnx(sess, {"image": x_test})[sess.get_outputs()[0].name]
    _accuracies(evidence, full, source, y_test, cfg)
    assert dims(sidecar) == {"image": ["batch", 28, 28, 1]} and sidecar["opset"] == cfg["keras_opset"]
