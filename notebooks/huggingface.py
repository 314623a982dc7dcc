# %% [markdown]
# # Hugging Face to ONNX: export MiniLM, check it against PyTorch, quantise it
#
# This notebook uses `implementations/frameworks/huggingface/` and `implementations/frameworks/onnx/`:
#
# 1. load all-MiniLM-L6-v2 (offline) as a `BertForSequenceClassification` with a freshly
#    initialised, seeded rotten/fresh head (no fine-tuning: the export does not care what the
#    head learnt, only that ONNX Runtime computes what PyTorch computes);
# 2. export it with `torch.onnx.export` into a temporary folder, validate the graph and its
#    dynamic axes, and compare ONNX Runtime's logits with PyTorch's on real Rotten Tomatoes
#    snippets against the tolerance of `experiments/huggingface.toml`;
# 3. quantise the graph to dynamic int8 (per channel) and see what it costs;
# 4. time PyTorch eager against ONNX Runtime (shown, not asserted).
#
# `assessments/huggingface/` proves these claims on the fine-tuned model at full strength.

# %%
# %matplotlib inline
import os
import tempfile
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch

from implementations.config import load_experiment
from implementations.data.text import ROTTEN_CLASSES, rotten_split
from implementations.frameworks.huggingface.inference import (INPUTS, feeds_for, ort_dynamic_int8, ort_session,
                                                              torch_eager)
from implementations.frameworks.huggingface.trainer import load_classifier
from implementations.frameworks.onnx.export import check, describe, export_torch
from implementations.frameworks.onnx.parity import output_diffs, within_tolerance
from implementations.viz.bars import plot_bars

budget = os.environ.get("MILESTONE_BUDGET", "smoke")
cfg = load_experiment("notebooks", "huggingface", budget)
opset = load_experiment("huggingface", "onnx_export", budget)["opset"]
tol = load_experiment("huggingface", "onnx_tolerance")[f"minilm_{cfg['exporter']}"]
max_int8_size_ratio = load_experiment("huggingface", "inference_size")["max_int8_size_ratio"]
threads = torch.get_num_threads()
cfg

# %% [markdown]
# ## 1. MiniLM with a new classification head
#
# The encoder (6 layers, hidden size 384) and BERT's pooler are pretrained; the linear head
# 384 -> 2 is drawn from the seeded generator. The snippets are held-out Rotten Tomatoes reviews.

# %%
torch.manual_seed(cfg["seed"])
tokenizer, model = load_classifier(2, dict(enumerate(ROTTEN_CLASSES)))
model.eval()
texts = rotten_split(test_size=cfg["n_snippets"], seed=cfg["seed"], n=4 * cfg["n_snippets"]).X_test
eager = torch_eager(model)
print(f"{sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters; {len(texts)} snippets, e.g. {texts[0]!r}")

# %% [markdown]
# ## 2. Export to ONNX and compare with PyTorch
#
# The export is traced on 2 snippets of 16 tokens, with the batch and sequence axes declared
# dynamic; the comparison then runs other batch sizes and lengths (each batch padded to the
# length), so a graph that baked in the tracing shapes fails here.

# %%
workdir = Path(tempfile.mkdtemp(prefix="hf-onnx-"))
example = feeds_for(tokenizer, texts[:2], 16, pad_to_max_length=True)
axes = {name: {0: "batch", 1: "sequence"} for name in INPUTS} | {"logits": {0: "batch"}}
onnx_path = export_torch(model, {k: torch.from_numpy(v) for k, v in example.items()}, workdir / "minilm.onnx",
                         cfg["exporter"], ["logits"], axes, opset)
proto = check(onnx_path)  # onnx.checker with full_check (strict shape inference)
sidecar = describe(onnx_path, "pytorch", cfg["exporter"])
print(f"{onnx_path.name}: opset {sidecar['opset']}, {len(proto.graph.node)} nodes, "
      f"{onnx_path.stat().st_size / 1e6:.1f} MB")
assert sidecar["opset"] == opset
assert {v["name"]: v["shape"] for v in sidecar["inputs"]} == {name: ["batch", "sequence"] for name in INPUTS}
assert sidecar["outputs"] == [{"name": "logits", "dtype": "float32", "shape": ["batch", 2]}]
sidecar["inputs"]

# %%
ort_fp32, _ = ort_session(onnx_path, threads)
cases = {(batch, seq_len): feeds_for(tokenizer, texts[:batch], seq_len, pad_to_max_length=True)
         for batch in cfg["batch_sizes"] for seq_len in cfg["seq_lens"]}
reference = {case: eager(feeds) for case, feeds in cases.items()}
fp32 = {case: ort_fp32(feeds) for case, feeds in cases.items()}
rows = [{"batch": b, "seq_len": t, **row} for (b, t) in cases
        for row in output_diffs({"logits": reference[b, t]}, {"logits": fp32[b, t]})]
for row in rows:
    print(f"batch {row['batch']:3d}, {row['seq_len']:3d} tokens: max |torch - ORT| {row['max_abs']:.1e} "
          f"(relative {row['max_rel']:.1e})")
print(f"tolerance ({cfg['exporter']}): atol {tol['atol']}, rtol {tol['rtol']}: {tol['reason']}")
assert within_tolerance(rows, tol["atol"], tol["rtol"]), rows
# parity means little if every snippet gave the same logits: their spread must dwarf the tolerance
largest = reference[max(cfg["batch_sizes"]), max(cfg["seq_lens"])]
spread = float(np.ptp(largest, axis=0).min() / np.abs(largest).max())
assert spread > 100 * tol["rtol"], spread

# %% [markdown]
# ## 3. Dynamic int8
#
# `onnxruntime.quantization.quantize_dynamic` stores every MatMul weight as int8 with one scale
# per output channel (the embedding tables too) and quantises activations per batch at run time,
# so the file shrinks to about a quarter of its size. With a random head the
# two logits of a snippet are close (|logit| ~ 0.02), so near ties can flip: agreement is a
# sterner test here than on the fine-tuned model.

# %%
int8_path = ort_dynamic_int8(onnx_path, workdir / "minilm_int8.onnx", per_channel=True)
ort_int8, _ = ort_session(int8_path, threads)
case = (max(cfg["batch_sizes"]), max(cfg["seq_lens"]))
ref, got = reference[case], ort_int8(cases[case])
size_ratio = int8_path.stat().st_size / onnx_path.stat().st_size
agreement = float(np.mean(got.argmax(1) == ref.argmax(1)))
int8_rel = float(np.abs(got - ref).max() / np.abs(ref).max())
print(f"size {size_ratio:.2f} of float32; predictions agree on {agreement:.0%} of {len(ref)} snippets; "
      f"max |int8 - torch| / max |torch| = {int8_rel:.2f}")
assert size_ratio <= max_int8_size_ratio, "the MatMul weights were not stored as int8"
assert agreement >= cfg["min_int8_agreement"]
assert int8_rel <= cfg["max_int8_rel_diff"], int8_rel

# %%
fig, ax = plt.subplots(figsize=(7, 3.4))
for label, logits, marker in (("ORT float32", fp32[case], "o"), ("ORT int8 (per channel)", got, "s")):
    ax.semilogy(np.abs(logits - ref).max(1), marker, ms=4, label=label)
ax.axhline(tol["atol"], ls="--", color="C3", label=f"float32 tolerance {tol['atol']:g}")
ax.set(title=f"Largest |logit - PyTorch logit| per snippet ({case[1]} tokens)", xlabel="snippet",
       ylabel="absolute difference")
ax.legend(fontsize=8)
fig.tight_layout()
plt.close(fig)  # shown once, as the cell's value
fig

# %% [markdown]
# ## 4. Latency at batch 1
#
# Median of a few calls on one snippet padded to the longest length, after a warm-up call. On a
# shared machine these numbers are noisy: the benchmark tests of `assessments/huggingface/`
# measure them properly; this is only a picture.

# %%
one = feeds_for(tokenizer, texts[:1], max(cfg["seq_lens"]), pad_to_max_length=True)
latency_ms = {}
for name, run in (("torch eager", eager), ("ORT float32", ort_fp32), ("ORT int8", ort_int8)):
    run(one)
    times = []
    for _ in range(cfg["latency_repeats"]):
        start = time.perf_counter()
        run(one)
        times.append(time.perf_counter() - start)
    latency_ms[name] = 1e3 * float(np.median(times))
print({k: f"{v:.1f} ms" for k, v in latency_ms.items()}, f"({threads} threads)")
plot_bars(latency_ms, f"MiniLM classifier, batch 1, {max(cfg['seq_lens'])} tokens (median of "
          f"{cfg['latency_repeats']})", "milliseconds")
