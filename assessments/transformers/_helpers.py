"""Shared machinery of the transformer assessments: random parity cases, torch references.

A parity case is drawn from one table of ranges, either by hypothesis (the property tests) or by
a seeded NumPy generator (the fixed sweep whose worst error goes into the report), so both
cover the same space. Masks never hide key 0 from any query in the MultiheadAttention cases:
torch's module returns NaN on fully masked rows (ours returns zeros; tested on its own).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from hypothesis import strategies as st

from implementations.architectures.transformers.attention import MultiHeadAttention, scaled_dot_product_attention
from implementations.config import load_experiment

# Budget-independent settings for decorators evaluated at import time.
PARITY = load_experiment("transformers", "attention_parity")
ROPE = load_experiment("transformers", "rope")
F64 = torch.float64

SDPA_MASKS = ("none", "bool", "bool_broadcast", "float", "causal")
MHA_MASKS = ("none", "bool", "float", "per_head", "causal")
PADDINGS = ("none", "bool", "float")


def max_abs_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a - b|; NaN anywhere (in either) counts as infinitely wrong."""
    if a.shape != b.shape:
        raise AssertionError(f"shapes differ: {tuple(a.shape)} vs {tuple(b.shape)}")
    d = (a.detach() - b.detach()).abs()
    return float("inf") if d.isnan().any() else float(d.max()) if d.numel() else 0.0


# ---------------------------------------------------------------- scaled dot-product attention
@dataclass(frozen=True)
class SDPACase:
    lead: tuple[int, ...]   # leading (batch, heads...) dims
    L: int
    S: int
    E: int
    Ev: int
    mask: str
    scaled: bool            # an explicit scale instead of 1/sqrt(E)
    seed: int


def sdpa_cases() -> st.SearchStrategy[SDPACase]:
    return st.builds(SDPACase, lead=st.lists(st.integers(1, 3), min_size=0, max_size=2).map(tuple),
                     L=st.integers(1, 9), S=st.integers(1, 9), E=st.integers(1, 8), Ev=st.integers(1, 8),
                     mask=st.sampled_from(SDPA_MASKS), scaled=st.booleans(), seed=st.integers(0, 2**31 - 1))


def random_sdpa_case(rng: np.random.Generator) -> SDPACase:
    return SDPACase(tuple(int(d) for d in rng.integers(1, 4, size=rng.integers(0, 3))), int(rng.integers(1, 10)),
                    int(rng.integers(1, 10)), int(rng.integers(1, 9)), int(rng.integers(1, 9)),
                    str(rng.choice(SDPA_MASKS)), bool(rng.integers(2)), int(rng.integers(2**31 - 1)))


def run_sdpa_case(case: SDPACase) -> dict[str, float]:
    """Ours vs F.scaled_dot_product_attention: max abs error of the output and of dq, dk, dv.

    Boolean masks drop half the keys at random, so fully masked rows occur (both give zeros).
    """
    g = torch.Generator().manual_seed(case.seed)
    q = torch.randn(*case.lead, case.L, case.E, generator=g, dtype=F64)
    k = torch.randn(*case.lead, case.S, case.E, generator=g, dtype=F64)
    v = torch.randn(*case.lead, case.S, case.Ev, generator=g, dtype=F64)
    kwargs: dict = {"scale": 0.3 + torch.rand(1, generator=g).item()} if case.scaled else {}
    if case.mask == "bool":
        kwargs["attn_mask"] = torch.rand(*case.lead, case.L, case.S, generator=g) > 0.5
    elif case.mask == "bool_broadcast":
        kwargs["attn_mask"] = torch.rand(case.L, case.S, generator=g) > 0.5
    elif case.mask == "float":
        kwargs["attn_mask"] = torch.randn(case.L, case.S, generator=g, dtype=F64)
    elif case.mask == "causal":
        kwargs["is_causal"] = True
    dout = torch.randn(*case.lead, case.L, case.Ev, generator=g, dtype=F64)
    errors, grads = {}, []
    for fn in (scaled_dot_product_attention, F.scaled_dot_product_attention):
        leaves = [t.clone().requires_grad_() for t in (q, k, v)]
        out = fn(*leaves, **kwargs)
        (out * dout).sum().backward()
        grads.append([out] + [t.grad for t in leaves])
    for name, a, b in zip(("out", "dq", "dk", "dv"), *grads):
        errors[name] = max_abs_diff(a, b)
    return errors


# ---------------------------------------------------------------- multi-head attention
@dataclass(frozen=True)
class MHACase:
    num_heads: int
    head_dim: int
    N: int
    L: int
    S: int
    batch_first: bool
    cross_dims: bool        # kdim, vdim differ from embed_dim (separate projection weights)
    self_attention: bool    # query is key is value (ignored when cross_dims or L != S)
    padding: str
    mask: str
    average: bool
    bias: bool
    seed: int


def mha_cases() -> st.SearchStrategy[MHACase]:
    return st.builds(MHACase, num_heads=st.integers(1, 4), head_dim=st.integers(1, 5), N=st.integers(1, 3),
                     L=st.integers(1, 7), S=st.integers(1, 7), batch_first=st.booleans(), cross_dims=st.booleans(),
                     self_attention=st.booleans(), padding=st.sampled_from(PADDINGS),
                     mask=st.sampled_from(MHA_MASKS), average=st.booleans(), bias=st.booleans(),
                     seed=st.integers(0, 2**31 - 1))


def random_mha_case(rng: np.random.Generator) -> MHACase:
    i = lambda lo, hi: int(rng.integers(lo, hi + 1))  # noqa: E731
    b = lambda: bool(rng.integers(2))  # noqa: E731
    return MHACase(i(1, 4), i(1, 5), i(1, 3), i(1, 7), i(1, 7), b(), b(), b(), str(rng.choice(PADDINGS)),
                   str(rng.choice(MHA_MASKS)), b(), b(), i(0, 2**31 - 2))


def _blocked(shape: tuple[int, ...], g: torch.Generator) -> torch.Tensor:
    """Random bool mask (True = blocked) over (..., S) that never blocks key 0."""
    m = torch.rand(*shape, generator=g) > 0.6
    m[..., 0] = False
    return m


def _as_float(blocked: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Random finite additive values, -inf where blocked."""
    return torch.randn(blocked.shape, generator=g, dtype=F64).masked_fill(blocked, float("-inf"))


def run_mha_case(case: MHACase) -> dict[str, float]:
    """Ours vs torch.nn.MultiheadAttention with our weights loaded into it (its state_dict
    layout is ours): max abs error of the output and of the returned attention weights, and of
    our output when asked for no weights (the path that may run in batch slices)."""
    g = torch.Generator().manual_seed(case.seed)
    torch.manual_seed(case.seed)  # parameter init draws from the global RNG
    E = case.num_heads * case.head_dim
    kdim, vdim = (E + 1, E + 2) if case.cross_dims else (E, E)
    ours = MultiHeadAttention(E, case.num_heads, bias=case.bias, kdim=kdim, vdim=vdim,
                              batch_first=case.batch_first, dtype=F64).eval()
    ref = torch.nn.MultiheadAttention(E, case.num_heads, bias=case.bias, kdim=kdim, vdim=vdim,
                                      batch_first=case.batch_first, dtype=F64).eval()
    ref.load_state_dict(ours.state_dict())
    S = case.L if case.self_attention and not case.cross_dims else case.S

    def seq(length: int, dim: int) -> torch.Tensor:
        shape = (case.N, length, dim) if case.batch_first else (length, case.N, dim)
        return torch.randn(*shape, generator=g, dtype=F64)

    query = seq(case.L, E)
    if case.self_attention and not case.cross_dims:
        key = value = query
    else:
        key, value = seq(S, kdim), seq(S, vdim)
    kwargs: dict = {"average_attn_weights": case.average}
    if case.padding != "none":
        pad = _blocked((case.N, S), g)
        kwargs["key_padding_mask"] = pad if case.padding == "bool" else _as_float(pad, g)
    if case.mask in ("bool", "float"):
        blocked = _blocked((case.L, S), g)
        kwargs["attn_mask"] = blocked if case.mask == "bool" else _as_float(blocked, g)
    elif case.mask == "per_head":
        kwargs["attn_mask"] = _as_float(_blocked((case.N * case.num_heads, case.L, S), g), g)
    elif case.mask == "causal":
        # torch's is_causal is only a hint: it needs the mask itself; ours builds it.
        kwargs["attn_mask"] = torch.ones(case.L, S, dtype=torch.bool).triu(1)
    with warnings.catch_warnings():  # torch deprecates mixing bool and float masks; ours takes both
        warnings.filterwarnings("ignore", message="Support for mismatched key_padding_mask")
        out_ref, w_ref = ref(query, key, value, **kwargs)
    if case.mask == "causal":
        del kwargs["attn_mask"]
        kwargs["is_causal"] = True
    out, w = ours(query, key, value, **kwargs)
    out_only, _ = ours(query, key, value, need_weights=False, **kwargs)
    return {"out": max_abs_diff(out, out_ref), "weights": max_abs_diff(w, w_ref),
            "out_without_weights": max_abs_diff(out_only, out_ref)}


# ---------------------------------------------------------------- benchmark reference
def sdpa_multihead(mha: MultiHeadAttention, x: torch.Tensor) -> torch.Tensor:
    """Self-attention with `mha`'s weights, the core done by torch's fused
    F.scaled_dot_product_attention: x (N, L, E) -> (N, L, E)."""
    N, L, E = x.shape
    q, k, v = F.linear(x, mha.in_proj_weight, mha.in_proj_bias).chunk(3, dim=-1)
    q, k, v = (t.unflatten(-1, (mha.num_heads, mha.head_dim)).transpose(1, 2) for t in (q, k, v))
    out = F.scaled_dot_product_attention(q, k, v)
    return mha.out_proj(out.transpose(1, 2).reshape(N, L, E))
