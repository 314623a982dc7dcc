"""Faster CPU inference for a fine-tuned BERT-style sequence classifier: one runner per technique.

Every runner maps the same NumPy feeds {"input_ids", "attention_mask", "token_type_ids"} (N, T)
int64 to logits (N, num_labels) float32, so accuracy, agreement and latency are measured the same
way for all of them:
- `torch_eager`: the model as trained, float32 (the reference);
- `torch_dynamic_int8`: `torch.ao.quantization.quantize_dynamic` on every nn.Linear (int8 weights
  per output channel, activations quantised on the fly per batch);
- `torch_compiled`: `torch.compile` (Inductor) of the eager model;
- `ort_session`: ONNX Runtime on an exported graph, `ORT_ENABLE_ALL` graph optimisations;
- `transformer_fusions`: `onnxruntime.transformers.optimizer` (model_type "bert"): attention,
  SkipLayerNorm, BiasGelu and embedding fusions into ORT's contrib operators;
- `ort_dynamic_int8`: `onnxruntime.quantization.quantize_dynamic` (int8 weights, per_channel=True).
"""
from __future__ import annotations

import copy
import io
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import torch

__all__ = ["Runner", "torch_eager", "torch_dynamic_int8", "torch_compiled", "ort_session",
           "transformer_fusions", "ort_dynamic_int8", "feeds_for", "state_dict_bytes"]

Feeds = Mapping[str, np.ndarray]
Runner = Callable[[Feeds], np.ndarray]
INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def feeds_for(tokenizer, texts: list[str], max_length: int, pad_to_max_length: bool = False) -> dict[str, np.ndarray]:
    """Tokenise texts -> int64 feeds; padded to the longest text, or to `max_length` exactly."""
    enc = tokenizer(list(texts), truncation=True, max_length=max_length, return_tensors="np",
                    padding="max_length" if pad_to_max_length else True)
    return {k: enc[k].astype(np.int64) for k in INPUTS}


def _torch_runner(model) -> Runner:
    @torch.inference_mode()
    def run(feeds: Feeds) -> np.ndarray:
        return model(**{k: torch.from_numpy(np.asarray(feeds[k])) for k in INPUTS}).logits.float().numpy()
    return run


def torch_eager(model) -> Runner:
    return _torch_runner(model.eval())


def torch_dynamic_int8(model) -> tuple[Runner, torch.nn.Module]:
    """(runner, quantised copy); the original model is left as it was."""
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    quantised = quantize_dynamic(copy.deepcopy(model).eval(), {torch.nn.Linear: per_channel_dynamic_qconfig},
                                 dtype=torch.qint8)
    return _torch_runner(quantised), quantised


def torch_compiled(model) -> Runner:
    """torch.compile of the eager model; compiles on the first call of each new shape."""
    return _torch_runner(torch.compile(model.eval(), dynamic=False))


def state_dict_bytes(model: torch.nn.Module) -> int:
    """Size of `torch.save(model.state_dict())`, what a torch model weighs on disk."""
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.getbuffer().nbytes


def ort_session(path: str | Path, threads: int, optimization: str = "all"):
    """(runner, session) of ONNX Runtime on the CPU; `optimization` "all" or "disabled"."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = {"all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
                                     "disabled": ort.GraphOptimizationLevel.ORT_DISABLE_ALL}[optimization]
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    wanted = [i.name for i in sess.get_inputs()]

    def run(feeds: Feeds) -> np.ndarray:
        return sess.run(None, {k: np.asarray(feeds[k]) for k in wanted})[0]
    return run, sess


def transformer_fusions(path: str | Path, out: str | Path, num_heads: int, hidden_size: int) -> dict[str, int]:
    """Fuse a BERT ONNX graph with onnxruntime.transformers.optimizer into `out`; returns the
    fused-operator counts (e.g. {"Attention": 6, "SkipLayerNormalization": 12, ...})."""
    from onnxruntime.transformers import optimizer

    opt = optimizer.optimize_model(str(path), model_type="bert", num_heads=num_heads, hidden_size=hidden_size,
                                   opt_level=1, use_gpu=False)
    opt.save_model_to_file(str(out))
    return {k: int(v) for k, v in opt.get_fused_operator_statistics().items()}


def ort_dynamic_int8(path: str | Path, out: str | Path, per_channel: bool = True) -> Path:
    """Dynamic int8 quantisation of an ONNX model's MatMul/Gemm weights (activations quantised at
    run time) into `out`."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # ONNX shape inference cannot type the outputs of ORT's fused contrib ops (Attention, ...):
    # they are float32, which the quantiser is told instead of failing.
    quantize_dynamic(str(path), str(out), weight_type=QuantType.QInt8, per_channel=per_channel,
                     extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    return Path(out)

