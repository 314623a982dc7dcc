"""The fine-tuned MiniLM, PyTorch -> ONNX with both torch.onnx exporters (requirement huggingface.3).

Validation in the style of optimum's export check: onnx.checker (full_check); every output of
ONNX Runtime against PyTorch on held-out real text at several batch sizes and sequence lengths,
against the tolerance in experiments/huggingface.toml ([onnx_tolerance.*], with its reason); the
task metric (test accuracy) after conversion; the sidecar's names, dynamic axes and dtypes.
"""
import numpy as np
import pytest
import torch

for _module in ("onnx", "onnxruntime", "transformers"):
    pytest.importorskip(_module, reason=f"{_module} (onnx/hf extras) is not installed")

from assessments.huggingface._helpers import dims, parity_rows, read_sidecar, record_parity  # noqa: E402
from implementations.data.text import bbc_split  # noqa: E402
from implementations.frameworks.huggingface.inference import INPUTS, feeds_for, ort_session  # noqa: E402
from implementations.frameworks.onnx.export import check, run_onnx  # noqa: E402

pytestmark = [pytest.mark.torch]
EXPORTERS = ["dynamo", "legacy"]


@pytest.fixture(scope="module")
def grid(sentiment_run, sentiment_model, request):
    """[(case, feeds, PyTorch logits)] for every text source x sequence length x batch size: Rotten
    Tomatoes test snippets padded to the length, and held-out BBC articles that fill it."""
    from implementations.config import load_experiment

    cfg = load_experiment("huggingface", "onnx_export", request.config.getoption("--budget"))
    tokenizer, model = sentiment_model
    sources = {"rotten (padded)": sentiment_run.split.X_test,
               "bbc (full)": bbc_split(test_size=0.2, seed=0).X_test[:max(cfg["minilm_batch_sizes"])]}
    cases = []
    for source, texts in sources.items():
        for seq_len in cfg["minilm_seq_lens"]:
            for batch in cfg["minilm_batch_sizes"]:
                feeds = feeds_for(tokenizer, texts[:batch], seq_len, pad_to_max_length=True)
                with torch.inference_mode():
                    ref = model(**{k: torch.from_numpy(v) for k, v in feeds.items()}).logits.numpy()
                cases.append(({"text": source, "batch": batch, "seq_len": seq_len}, feeds, ref))
    return cases


@pytest.mark.parametrize("exporter", EXPORTERS)
def test_minilm_onnx_matches_torch(exporter, minilm_onnx, grid, experiment, evidence):
    cfg = experiment("onnx_export")
    tol = experiment("onnx_tolerance")[f"minilm_{exporter}"]
    path = minilm_onnx(exporter)
    proto = check(path)
    sidecar = read_sidecar(path)
    _, sess = ort_session(path, threads=torch.get_num_threads())
    rows = [row for case, feeds, ref in grid for row in parity_rows({"logits": ref}, run_onnx(sess, feeds), **case)]
    evidence.text(f"{path.name}: torch.onnx.export ({exporter}), opset {sidecar['opset']}, "
                  f"{len(proto.graph.node)} nodes, {path.stat().st_size / 1e6:.1f} MB. Reference: the PyTorch model "
                  "as loaded by default (SDPA attention); the export spells attention out (eager), the same math.")
    record_parity(evidence, f"minilm_{exporter}", rows, tol, exporter, sidecar["opset"])
    assert sidecar["opset"] == cfg["opset"]
    assert dims(sidecar) == {name: ["batch", "sequence"] for name in INPUTS}
    assert dims(sidecar, "outputs") == {"logits": ["batch", 2]}
    assert {v["dtype"] for v in sidecar["inputs"]} == {"int64"} and sidecar["outputs"][0]["dtype"] == "float32"
    assert sidecar["source_framework"] == "pytorch"


@pytest.mark.parametrize("exporter", EXPORTERS)
def test_minilm_onnx_keeps_test_accuracy(exporter, minilm_onnx, sentiment_run, sentiment_cfg, sentiment_model,
                                         experiment, evidence):
    cfg = experiment("onnx_export")
    tokenizer, _ = sentiment_model
    run, _ = ort_session(minilm_onnx(exporter), threads=torch.get_num_threads())
    texts, y = sentiment_run.split.X_test, sentiment_run.split.y_test
    logits = np.concatenate([run(feeds_for(tokenizer, texts[i:i + 64], sentiment_cfg["max_length"]))
                             for i in range(0, len(texts), 64)])
    acc_onnx = float(np.mean(logits.argmax(1) == y))
    acc_torch = float(np.mean(sentiment_run.test_logits.argmax(1) == y))
    agreement = float(np.mean(logits.argmax(1) == sentiment_run.test_logits.argmax(1)))
    evidence.metric("onnx_test_accuracy", acc_onnx, key=True, threshold=acc_torch - cfg["max_accuracy_delta"],
                    direction="higher")
    evidence.metric("torch_test_accuracy", acc_torch)
    evidence.metric("prediction_agreement", agreement)
    assert abs(acc_onnx - acc_torch) <= cfg["max_accuracy_delta"], (acc_onnx, acc_torch)
    assert agreement >= 1 - cfg["max_accuracy_delta"], agreement
