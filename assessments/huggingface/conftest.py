"""The fine-tuned MiniLM sentiment model every huggingface test file shares, trained once per run.

`sentiment_run` fine-tunes with transformers.Trainer into `<run-dir>/artifacts/huggingface/` the
first time any test asks for it (in any pytest process: a file lock serialises xdist workers),
keyed by budget, seed and the experiment's settings; every later request loads it from there,
including the benchmark session that `make test` runs after the main one (--evidence-append keeps
the run folder).
"""
from __future__ import annotations

import hashlib
import json

import pytest

from implementations.config import load_experiment


@pytest.fixture(scope="session")
def sentiment_cfg(request) -> dict:
    return load_experiment("huggingface", "trainer_finetune", request.config.getoption("--budget"))


@pytest.fixture(scope="session")
def sentiment_run(request, artifacts, sentiment_cfg):
    from implementations.frameworks.huggingface.sentiment import finetuned_sentiment

    seed = request.config.getoption("--seed")
    key = hashlib.sha256(json.dumps(sentiment_cfg, sort_keys=True).encode()).hexdigest()[:8]
    folder = artifacts("huggingface") / f"minilm-rotten-{sentiment_cfg['budget']}-seed{seed}-{key}"
    return finetuned_sentiment(folder, sentiment_cfg, seed)


@pytest.fixture(scope="session")
def sentiment_model(sentiment_run):
    """(tokenizer, model) loaded from the cached fine-tune; tests must not modify the model."""
    return sentiment_run.load()


@pytest.fixture(scope="session")
def minilm_onnx(sentiment_run, sentiment_model, artifacts, request):
    """`minilm_onnx("dynamo" | "legacy")` -> path of the fine-tuned MiniLM exported to ONNX (with its
    sidecar) under <run-dir>/artifacts/onnx/, exported once per run (file lock across workers)."""
    from filelock import FileLock

    from implementations.frameworks.huggingface.inference import INPUTS, feeds_for
    from implementations.frameworks.onnx.export import export_torch, write_sidecar

    opset = load_experiment("huggingface", "onnx_export", request.config.getoption("--budget"))["opset"]
    tokenizer, _ = sentiment_model
    # attention written out (not SDPA): the graph onnxruntime.transformers.optimizer can fuse
    _, model = sentiment_run.load(attn_implementation="eager")

    def export(exporter: str):
        import torch

        path = artifacts("onnx") / f"minilm_sentiment_{exporter}.onnx"
        with FileLock(str(path) + ".lock"):
            if not path.with_suffix(".json").exists():
                feeds = feeds_for(tokenizer, sentiment_run.split.X_test[:2], 16, pad_to_max_length=True)
                axes = {name: {0: "batch", 1: "sequence"} for name in INPUTS} | {"logits": {0: "batch"}}
                tmp = path.with_name(f"tmp-{path.name}")
                export_torch(model, {k: torch.from_numpy(v) for k, v in feeds.items()}, tmp, exporter,
                             ["logits"], axes, opset)
                tmp.replace(path)
                write_sidecar(path, "pytorch", f"torch.onnx.export ({exporter})", model="all-MiniLM-L6-v2 "
                              "fine-tuned on Rotten Tomatoes (BertForSequenceClassification, eager attention)",
                              torch_version=torch.__version__)
        return path

    return export
