"""Shared machinery of the Keras assessments: twins with copied weights, backend facts, servers.

Parity twins (all independent of our keras.ops code):
- `keras.layers.MultiHeadAttention` (Keras' own, on whatever backend is active);
- the project's PyTorch `MultiHeadAttention` (implementations/architectures/transformers);
- `torch.nn.TransformerEncoderLayer(norm_first=True)` and a torch row transformer built from it.
Keras is imported inside the functions that need it, so this module is cheap to import.
"""
from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.request
from typing import Callable

import numpy as np

from implementations.config import load_experiment

PARITY = load_experiment("keras", "parity")


# ---------------------------------------------------------------- backend facts
def backend_name() -> str:
    """The Keras backend this process runs (fixed when keras is first imported)."""
    import keras

    return keras.backend.backend()


def parity_dtype() -> tuple[str, float]:
    """(dtype, tolerance) our layers are checked in: float64 where Keras computes in it, else float32.

    Keras 3 computes float64 only on TensorFlow: on torch and JAX its type promotion maps float64
    to float32 (keras.backend.result_type("float64", "float64") == "float32", "aligned with JAX's
    default"), so ops.matmul of two float64 tensors returns float32 there. Torch twins always run in
    float64 on the same values, so the error measured is ours against the exact result.
    """
    if backend_name() == "tensorflow":
        return "float64", PARITY["max_abs_error_float64"]
    return "float32", PARITY["max_abs_error_float32"]


def to_numpy(x) -> np.ndarray:
    from keras import ops

    return np.asarray(ops.convert_to_numpy(x))


def max_abs_diff(a, b) -> float:
    a, b = (np.asarray(v if isinstance(v, np.ndarray) else to_numpy(v), dtype=np.float64) for v in (a, b))
    if a.shape != b.shape:
        raise AssertionError(f"shapes differ: {a.shape} vs {b.shape}")
    d = np.abs(a - b)
    return float("inf") if np.isnan(d).any() else float(d.max()) if d.size else 0.0


def seeded(seed: int) -> np.random.Generator:
    """Seed Keras (its initializers) and return a NumPy generator with the same seed."""
    import keras

    keras.utils.set_random_seed(seed)
    return np.random.default_rng(seed)


def random_mask(rng: np.random.Generator, n: int, length: int) -> np.ndarray:
    """(N, L, L) bool, True = may attend; the diagonal is always allowed (no fully masked row)."""
    return (rng.random((n, length, length)) > 0.4) | np.eye(length, dtype=bool)


def perturb_weights(layer, rng: np.random.Generator, scale: float = 0.3) -> None:
    """Give every weight (zero-initialised biases, unit LayerNorm gains too) random values."""
    layer.set_weights([w + scale * rng.standard_normal(w.shape).astype(w.dtype) for w in layer.get_weights()])


# ---------------------------------------------------------------- attention twins
def attention_vs_keras_mha(embed_dim: int, num_heads: int, mask: str, seed: int = 0) -> float:
    """Our MultiHeadSelfAttention vs keras.layers.MultiHeadAttention with the same weights.

    mask: "none" | "causal" | "random" (a (N, L, L) bool mask). Returns max |difference|.
    """
    import keras

    from implementations.frameworks.keras.layers import MultiHeadSelfAttention

    dtype, _ = parity_dtype()
    rng = seeded(seed)
    n, length, head = 3, 7, embed_dim // num_heads
    x = rng.standard_normal((n, length, embed_dim)).astype(dtype)
    ours = MultiHeadSelfAttention(embed_dim, num_heads, dtype=dtype)
    ours.build(x.shape)
    perturb_weights(ours, rng)
    ref = keras.layers.MultiHeadAttention(num_heads, head, dtype=dtype)
    ref(x, x)  # builds query/key/value/output projections
    wq, wk, wv = np.split(to_numpy(ours.in_proj_kernel), 3, axis=1)
    bq, bk, bv = np.split(to_numpy(ours.in_proj_bias), 3)
    for dense, w, b in ((ref._query_dense, wq, bq), (ref._key_dense, wk, bk), (ref._value_dense, wv, bv)):
        dense.kernel.assign(w.reshape(embed_dim, num_heads, head))
        dense.bias.assign(b.reshape(num_heads, head))
    ref._output_dense.kernel.assign(to_numpy(ours.out_proj_kernel).reshape(num_heads, head, embed_dim))
    ref._output_dense.bias.assign(to_numpy(ours.out_proj_bias))
    kwargs = {"use_causal_mask": mask == "causal"}
    if mask == "random":
        kwargs["attention_mask"] = random_mask(rng, n, length)
    return max_abs_diff(ours(x, **kwargs), ref(x, x, **kwargs))


def attention_vs_torch(embed_dim: int, num_heads: int, mask: str, seed: int = 0) -> float:
    """Our MultiHeadSelfAttention vs the project's torch MultiHeadAttention, copied weights."""
    import torch

    from implementations.architectures.transformers.attention import MultiHeadAttention
    from implementations.frameworks.keras.layers import MultiHeadSelfAttention

    dtype, _ = parity_dtype()
    rng = seeded(seed)
    n, length = 3, 7
    x = rng.standard_normal((n, length, embed_dim)).astype(dtype)
    ours = MultiHeadSelfAttention(embed_dim, num_heads, dtype=dtype)
    ours.build(x.shape)
    perturb_weights(ours, rng)
    ref = MultiHeadAttention(embed_dim, num_heads, batch_first=True, dtype=torch.float64)
    with torch.no_grad():
        ref.in_proj_weight.copy_(_t64(ours.in_proj_kernel).T)
        ref.in_proj_bias.copy_(_t64(ours.in_proj_bias))
        ref.out_proj.weight.copy_(_t64(ours.out_proj_kernel).T)
        ref.out_proj.bias.copy_(_t64(ours.out_proj_bias))
    kwargs, tkwargs = {}, {}
    if mask == "causal":
        kwargs["use_causal_mask"], tkwargs["is_causal"] = True, True
    elif mask == "random":
        allowed = random_mask(rng, n, length)
        kwargs["attention_mask"] = allowed
        # torch: True = may NOT attend, one (L, S) mask per (batch, head), batch-major
        tkwargs["attn_mask"] = torch.from_numpy(np.repeat(~allowed, num_heads, axis=0))
    xt = torch.from_numpy(x.astype(np.float64))
    with torch.no_grad():
        expected = ref(xt, xt, xt, need_weights=False, **tkwargs)[0].numpy()
    return max_abs_diff(ours(x, **kwargs), expected)


def _t64(v):
    """A Keras variable or tensor as a float64 torch tensor (same values)."""
    import torch

    return torch.from_numpy(np.ascontiguousarray(to_numpy(v), dtype=np.float64))


def _torch_block_from(block, torch_block) -> None:
    """Copy a TransformerBlock's weights into torch.nn.TransformerEncoderLayer (in place)."""
    import torch

    t = _t64
    a = block.self_attn
    with torch.no_grad():
        torch_block.self_attn.in_proj_weight.copy_(t(a.in_proj_kernel).T)
        torch_block.self_attn.in_proj_bias.copy_(t(a.in_proj_bias))
        torch_block.self_attn.out_proj.weight.copy_(t(a.out_proj_kernel).T)
        torch_block.self_attn.out_proj.bias.copy_(t(a.out_proj_bias))
        for dense, lin in ((block.linear1, torch_block.linear1), (block.linear2, torch_block.linear2)):
            lin.weight.copy_(t(dense.kernel).T)
            lin.bias.copy_(t(dense.bias))
        for norm, tnorm in ((block.norm1, torch_block.norm1), (block.norm2, torch_block.norm2)):
            tnorm.weight.copy_(t(norm.gamma))
            tnorm.bias.copy_(t(norm.beta))


def _torch_encoder_layer(embed_dim: int, num_heads: int, dim_feedforward: int):
    import torch

    return torch.nn.TransformerEncoderLayer(embed_dim, num_heads, dim_feedforward, dropout=0.0,
                                            batch_first=True, norm_first=True, layer_norm_eps=1e-5,
                                            dtype=torch.float64).eval()


def block_vs_torch(embed_dim: int = 16, num_heads: int = 4, dim_feedforward: int = 24, seed: int = 0) -> float:
    """TransformerBlock vs torch.nn.TransformerEncoderLayer(norm_first=True), copied weights."""
    import torch

    from implementations.frameworks.keras.layers import TransformerBlock

    dtype, _ = parity_dtype()
    rng = seeded(seed)
    x = rng.standard_normal((3, 9, embed_dim)).astype(dtype)
    block = TransformerBlock(embed_dim, num_heads, dim_feedforward, dtype=dtype)
    block.build(x.shape)
    perturb_weights(block, rng)
    ref = _torch_encoder_layer(embed_dim, num_heads, dim_feedforward)
    _torch_block_from(block, ref)
    with torch.enable_grad():  # keeps torch off its fused inference fast path: plain arithmetic
        expected = ref(torch.from_numpy(x.astype(np.float64))).detach().numpy()
    return max_abs_diff(block(x), expected)


def model_vs_torch(model, x: np.ndarray) -> float:
    """A row transformer (functional or subclassed) vs its torch twin: max |difference|."""
    return max_abs_diff(model(x), torch_twin_output(model, x))


def torch_twin_output(model, x: np.ndarray) -> np.ndarray:
    """The row transformer's logits computed by the same network assembled from torch modules
    (Linear, a position table, TransformerEncoderLayer, LayerNorm, mean, Linear) in float64."""
    import torch

    get = lambda name: next(l for l in model.layers if l.name == name)  # noqa: E731
    t = _t64
    embed, head, norm, position = get("embed"), get("head"), get("norm"), get("position")
    blocks = sorted((l for l in model.layers if l.name.startswith("block")), key=lambda l: l.name)
    refs = []
    for block in blocks:
        ref = _torch_encoder_layer(block.embed_dim, block.num_heads, block.dim_feedforward)
        _torch_block_from(block, ref)
        refs.append(ref)
    with torch.enable_grad():
        h = torch.from_numpy(x.astype(np.float64)) @ t(embed.kernel) + t(embed.bias)
        h = h + t(position.embeddings)[: x.shape[1]]
        for ref in refs:
            h = ref(h)
        h = torch.nn.functional.layer_norm(h, (h.shape[-1],), t(norm.gamma), t(norm.beta), 1e-5).mean(1)
        return (h @ t(head.kernel) + t(head.bias)).detach().numpy()


# ---------------------------------------------------------------- models and round trips
SMALL = {"image_shape": (6, 5), "num_classes": 3, "d_model": 8, "num_heads": 2, "num_layers": 2,
         "dim_feedforward": 12, "dropout": 0.1}  # every argument away from its default


def small_models(seed: int = 0):
    """(functional, subclassed, x): the same small row transformer twice, with the same random
    weights (LayerNorm gains and biases too), and an input batch, in parity_dtype()."""
    from implementations.frameworks.keras.models import RowTransformer, row_transformer

    dtype, _ = parity_dtype()
    rng = seeded(seed)
    x = rng.random((4, *SMALL["image_shape"])).astype(dtype)
    functional = row_transformer(**SMALL, dtype=dtype)
    perturb_weights(functional, rng)
    subclassed = RowTransformer(**SMALL, dtype=dtype)
    subclassed(x)
    subclassed.set_weights(functional.get_weights())
    return functional, subclassed, x


def plain_config(obj) -> dict:
    """get_config() as JSON would store it (tuples become lists), for comparing configs."""
    import json

    return json.loads(json.dumps(obj.get_config(), default=str))


def keras_file_round_trip(model, x: np.ndarray, path) -> float:
    """Save as .keras, load without custom_objects (the classes are registered), and return the
    largest difference in predictions or weights. The loaded model must keep its class."""
    import keras

    model.save(path)
    loaded = keras.models.load_model(path)
    if type(loaded) is not type(model):
        raise AssertionError(f"loaded a {type(loaded).__name__}, saved a {type(model).__name__}")
    if plain_config(loaded) != plain_config(model):
        raise AssertionError("the loaded model's config differs from the saved one")
    weights = max(max_abs_diff(a, b) for a, b in zip(model.get_weights(), loaded.get_weights()))
    return max(weights, max_abs_diff(model(x), loaded(x)))


def config_round_trip(model, x: np.ndarray) -> float:
    """from_config(get_config()) rebuilds the same architecture: equal configs, and with the
    weights copied over, the same predictions. Returns the largest prediction difference."""
    clone = model.__class__.from_config(model.get_config())
    clone(x)
    if plain_config(clone) != plain_config(model):
        raise AssertionError("from_config(get_config()) changed the config")
    clone.set_weights(model.get_weights())
    return max_abs_diff(model(x), clone(x))


def parity_report(tmp_dir, quick: bool = False) -> dict:
    """The parity and round-trip checks for the active backend: {"backend", "dtype", "tolerance",
    "errors": {check: max abs error}}. `quick` (the cross-backend subprocess run) keeps one mask
    and one round trip per kind; test_layers.py runs the full set in-process on its backend."""
    from pathlib import Path

    dtype, tol = parity_dtype()
    errors = {}
    for mask in ("random",) if quick else ("none", "causal", "random"):
        errors[f"attention_vs_keras_mha_{mask}"] = attention_vs_keras_mha(16, 4, mask)
        errors[f"attention_vs_torch_{mask}"] = attention_vs_torch(16, 4, mask)
    errors["block_vs_torch_encoder_layer"] = block_vs_torch()
    functional, subclassed, x = small_models()
    errors["functional_model_vs_torch"] = model_vs_torch(functional, x)
    errors["subclassed_vs_functional"] = max_abs_diff(functional(x), subclassed(x))
    errors["functional_keras_file"] = keras_file_round_trip(functional, x, Path(tmp_dir) / "functional.keras")
    errors["subclassed_config"] = config_round_trip(subclassed, x)
    if not quick:
        errors["subclassed_model_vs_torch"] = model_vs_torch(subclassed, x)
        errors["subclassed_keras_file"] = keras_file_round_trip(subclassed, x, Path(tmp_dir) / "subclassed.keras")
        errors["functional_config"] = config_round_trip(functional, x)
    return {"backend": backend_name(), "dtype": dtype, "tolerance": tol, "errors": errors}


# ---------------------------------------------------------------- servers
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(check: Callable[[], bool], proc: subprocess.Popen, timeout: float, what: str,
             interval: float = 0.25) -> None:
    """Poll `check` until it is true, at most `timeout` seconds; fail early if `proc` died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with code {proc.returncode} before it was ready")
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(interval)
    raise TimeoutError(f"{what} not ready within {timeout} s")


def http_json(url: str, timeout: float = 10.0):
    import json

    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read())


def stop(proc: subprocess.Popen, timeout: float = 10.0) -> None:
    """Stop a process we started, by its PID: terminate, then kill after `timeout`."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)


def subprocess_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    env.update(TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1", **extra)
    return env
