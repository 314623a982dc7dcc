"""Optimising the fine-tuned MiniLM classifier for CPU inference (requirement huggingface.4).

Variants (experiments/huggingface.toml [inference_optimisation]): torch eager fp32 (the reference),
torch dynamic int8, ONNX Runtime fp32 with every graph optimisation, ORT with the transformer
fusions of onnxruntime.transformers.optimizer, ORT dynamic int8 (per channel) on the fused graph,
and torch.compile in the full budget. These tests hold each variant to its accuracy and agreement
bounds on the test split, check the fusions happened and the int8 models shrank; the latencies
(batch 1 and 8, 128 tokens) are pytest-benchmark tests, marked `benchmark`, as ratios to eager.
"""
import numpy as np
import pytest

for _module in ("onnx", "onnxruntime", "transformers"):
    pytest.importorskip(_module, reason=f"{_module} (onnx/hf extras) is not installed")
from implementations.config import load_experiment  # noqa: E402
from implementations.frameworks.huggingface import inference  # noqa: E402
from implementations.viz.bars import plot_bars  # noqa: E402

pytestmark = [pytest.mark.torch]
REFERENCE = "torch_eager"


def pytest_generate_tests(metafunc):
    cfg = load_experiment("huggingface", "inference_optimisation", metafunc.config.getoption("--budget"))
    if "variant" in metafunc.fixturenames:
        metafunc.parametrize("variant", [v for v in cfg["variants"] if v != REFERENCE])
    if "bench_variant" in metafunc.fixturenames:
        metafunc.parametrize("bench_variant", cfg["variants"])
        metafunc.parametrize("batch", cfg["batch_sizes"])


@pytest.fixture(scope="module")
def opt_cfg(request):
    return load_experiment("huggingface", "inference_optimisation", request.config.getoption("--budget"))


@pytest.fixture(scope="module")
def variants(opt_cfg, sentiment_model, minilm_onnx, artifacts):
    """{name: (runner, size on disk in bytes)} and the fused graph's operator counts."""
    _, model = sentiment_model
    threads = opt_cfg["threads"]
    folder = artifacts("huggingface")
    onnx_fp32 = minilm_onnx("legacy")
    fused, int8 = folder / "minilm_sentiment_fused.onnx", folder / "minilm_sentiment_fused_int8.onnx"
    fusions = inference.transformer_fusions(onnx_fp32, fused, opt_cfg["num_heads"], opt_cfg["hidden_size"])
    inference.ort_dynamic_int8(fused, int8, per_channel=True)
    quantised_run, quantised = inference.torch_dynamic_int8(model)
    built = {
        "torch_eager": (inference.torch_eager(model), inference.state_dict_bytes(model)),
        "torch_dynamic_int8": (quantised_run, inference.state_dict_bytes(quantised)),
        "ort_fp32": (inference.ort_session(onnx_fp32, threads)[0], onnx_fp32.stat().st_size),
        "ort_fusions": (inference.ort_session(fused, threads)[0], fused.stat().st_size),
        "ort_int8": (inference.ort_session(int8, threads)[0], int8.stat().st_size),
    }
    if "torch_compile" in opt_cfg["variants"]:
        built["torch_compile"] = (inference.torch_compiled(model), inference.state_dict_bytes(model))
    return {k: v for k, v in built.items() if k in opt_cfg["variants"]}, fusions


@pytest.fixture(scope="module")
def evaluated(variants, sentiment_run, sentiment_cfg, sentiment_model):
    """{variant: row} on the test split: accuracy, max |logit - eager logit|, prediction agreement."""
    tokenizer, _ = sentiment_model
    texts, y = sentiment_run.split.X_test, sentiment_run.split.y_test
    feeds = [inference.feeds_for(tokenizer, texts[i:i + 64], sentiment_cfg["max_length"])
             for i in range(0, len(texts), 64)]
    reference = sentiment_run.test_logits  # torch eager, the same tokenisation and batches
    rows = {}
    for name, (run, size) in variants[0].items():
        logits = reference if name == REFERENCE else np.concatenate([run(f) for f in feeds])
        rows[name] = {"variant": name, "size_mb": size / 1e6, "accuracy": float(np.mean(logits.argmax(1) == y)),
                      "max_logit_diff": float(np.max(np.abs(logits - reference))),
                      "agreement": float(np.mean(logits.argmax(1) == reference.argmax(1)))}
    return rows


def test_variant_keeps_accuracy_and_agrees_with_eager(variant, evaluated, experiment, evidence):
    bounds = experiment("inference_bounds")[variant]
    row, ref = evaluated[variant], evaluated[REFERENCE]
    drop = ref["accuracy"] - row["accuracy"]
    evidence.metric(f"{variant}_accuracy", row["accuracy"], threshold=ref["accuracy"] - bounds["max_accuracy_drop"],
                    direction="higher", key=True)
    evidence.metric(f"{variant}_max_logit_diff", row["max_logit_diff"], threshold=bounds["max_logit_diff"],
                    direction="lower")
    evidence.metric(f"{variant}_agreement", row["agreement"], threshold=bounds["min_agreement"], direction="higher")
    evidence.metric(f"{variant}_size_mb", row["size_mb"], unit="MB")
    evidence.text(f"{variant}: {bounds['reason']}. Accuracy drop vs eager {drop * 100:+.1f} points.")
    assert drop <= bounds["max_accuracy_drop"], (row, ref)
    assert row["max_logit_diff"] <= bounds["max_logit_diff"], row
    assert row["agreement"] >= bounds["min_agreement"], row


def test_transformer_fusions_were_applied(variants, sentiment_model, evidence):
    """One fused Attention per encoder layer and the LayerNorms fused with their residual adds: the
    optimizer silently returns the graph unchanged when its patterns do not match."""
    _, fusions = variants
    _, model = sentiment_model
    layers = model.config.num_hidden_layers
    evidence.table("fused_operators", [{"operator": k, "count": v} for k, v in fusions.items()])
    evidence.metric("fused_attention_ops", fusions.get("Attention", 0), threshold=layers, direction="higher", key=True)
    assert fusions.get("Attention", 0) == layers, fusions
    assert fusions.get("SkipLayerNormalization", 0) >= layers, fusions


def test_int8_models_are_smaller(evaluated, experiment, evidence):
    cfg = experiment("inference_size")
    ref = evaluated[REFERENCE]["size_mb"]
    for name in ("torch_dynamic_int8", "ort_int8"):
        if name in evaluated:
            ratio = evaluated[name]["size_mb"] / ref
            evidence.metric(f"{name}_size_ratio", ratio, threshold=cfg["max_int8_size_ratio"], direction="lower")
            assert ratio <= cfg["max_int8_size_ratio"], (name, ratio)


def test_optimisation_summary(evaluated, opt_cfg, evidence):
    """The optimisation table and plot (latency ratios are on the benchmark page)."""
    rows = list(evaluated.values())
    evidence.table("optimisation", rows)
    evidence.figure("size_mb", plot_bars({r["variant"]: r["size_mb"] for r in rows}, "Size on disk", "MB"))
    evidence.figure("accuracy", plot_bars({r["variant"]: r["accuracy"] for r in rows},
                                          "Test accuracy (Rotten Tomatoes)", "accuracy", ylim=(0.5, 1.0)))
    best = min(rows, key=lambda r: r["size_mb"])
    evidence.metric("smallest_size_mb", best["size_mb"], unit="MB", key=True)
    assert {r["variant"] for r in rows} == set(opt_cfg["variants"])


@pytest.mark.benchmark
@pytest.mark.usefixtures("single_thread")
def test_latency(bench_variant, batch, variants, opt_cfg, sentiment_run, sentiment_model, benchmark):
    tokenizer, _ = sentiment_model
    run, _ = variants[0][bench_variant]
    feeds = inference.feeds_for(tokenizer, sentiment_run.split.X_test[:batch], opt_cfg["seq_len"],
                                pad_to_max_length=True)
    run(feeds)  # warm-up (and, for torch.compile, compilation) outside the timing
    benchmark.group = f"minilm-classifier seq{opt_cfg['seq_len']} batch{batch}"
    if bench_variant == REFERENCE:
        benchmark.extra_info.update(role="reference")
    else:
        benchmark.extra_info.update(role="candidate")
        if bench_variant == "ort_int8" and batch == 1:
            benchmark.extra_info["target_ratio"] = opt_cfg["target_ratio"]
    logits = benchmark(run, feeds)
    assert logits.shape == (batch, 2) and np.all(np.isfinite(logits))
