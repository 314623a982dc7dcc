"""Attention from scratch equals torch's, in float64 (requirement transformers.1, question q.4).

Ours is written from matmuls and a softmax; the references are torch's fused
F.scaled_dot_product_attention and nn.MultiheadAttention with our weights loaded into it.
"""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings

from assessments.transformers._helpers import (F64, PARITY, max_abs_diff, mha_cases, random_mha_case, random_sdpa_case,
                                               run_mha_case, run_sdpa_case, sdpa_cases)
import implementations.architectures.transformers.attention as attention_module
from implementations.architectures.transformers.attention import (MultiHeadAttention, attention,
                                                                  scaled_dot_product_attention)

pytestmark = [pytest.mark.torch, pytest.mark.usefixtures("single_thread")]
TOL = PARITY["max_abs_error"]


@settings(max_examples=PARITY["max_examples"], deadline=None, derandomize=True)
@given(case=sdpa_cases())
def test_sdpa_matches_torch(case):
    """Output and the gradients wrt q, k, v, for bool/float/causal masks and any broadcast shape."""
    errors = run_sdpa_case(case)
    assert max(errors.values()) <= TOL, f"{case}: {errors}"


@settings(max_examples=PARITY["max_examples"], deadline=None, derandomize=True)
@given(case=mha_cases())
def test_multihead_matches_torch(case):
    """Outputs and attention weights (averaged or per head), key padding and attention masks."""
    errors = run_mha_case(case)
    assert max(errors.values()) <= TOL, f"{case}: {errors}"


def test_parity_sweep_reported(evidence, experiment):
    """A fixed, seeded sweep over the same space as the properties, worst errors recorded."""
    cfg = experiment("attention_parity")
    rng = np.random.default_rng(0)
    sdpa = [run_sdpa_case(random_sdpa_case(rng)) for _ in range(cfg["sweep_cases"])]
    mha = [run_mha_case(random_mha_case(rng)) for _ in range(cfg["sweep_cases"])]
    worst = {f"sdpa_{k}": max(e[k] for e in sdpa) for k in ("out", "dq", "dk", "dv")}
    worst |= {f"mha_{k}": max(e[k] for e in mha) for k in ("out", "weights", "out_without_weights")}
    for name, err in worst.items():
        evidence.metric(f"max_abs_error_{name}", err, threshold=cfg["max_abs_error"], direction="lower",
                        key=name == "mha_out")
    evidence.table("worst_parity_errors", [{"quantity": k, "max_abs_error": v} for k, v in worst.items()])
    evidence.text(f"{cfg['sweep_cases']} random configurations each of scaled_dot_product_attention (vs "
                  "F.scaled_dot_product_attention, output and dq/dk/dv; bool, broadcast bool, float and causal "
                  "masks) and MultiHeadAttention (vs nn.MultiheadAttention with the same weights; key padding, "
                  "(L, S) and per-head masks, causal, kdim/vdim, batch_first, averaged and per-head weights), "
                  "float64.")
    assert max(worst.values()) <= cfg["max_abs_error"], worst


def test_batch_sliced_path_matches_torch(monkeypatch):
    """Without returned weights, big inputs run in slices along the batch dim. Force slicing
    for every case (and count that it happened): same numbers as torch."""
    calls = []
    attend = attention_module._attend
    monkeypatch.setattr(attention_module, "CHUNK_ELEMENTS", 1)
    monkeypatch.setattr(attention_module, "_attend", lambda *a: calls.append(1) or attend(*a))
    rng = np.random.default_rng(1)
    cases = [random_sdpa_case(rng) for _ in range(30)]
    errors = [max(run_sdpa_case(c).values()) for c in cases]
    errors += [run_mha_case(random_mha_case(rng))["out_without_weights"] for _ in range(30)]
    assert max(errors) <= TOL
    sliced = sum(c.lead[0] for c in cases if c.lead and c.lead[0] > 1)
    assert sliced > 0 and len(calls) >= sliced, "the sliced path was not exercised"


def test_fully_masked_rows_give_zeros_not_nan(evidence):
    """A query allowed to see no key: zero weights, zero context, finite gradients (torch's
    functional does the same; its nn.MultiheadAttention returns NaN)."""
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, 4, 5, generator=g, dtype=F64, requires_grad=True) for _ in range(3))
    allowed = torch.rand(2, 3, 4, 4, generator=g) > 0.3
    allowed[:, :, 1] = False  # query 1 sees nothing, in every batch and head
    out, weights = attention(q, k, v, attn_mask=allowed)
    out.sum().backward()
    assert torch.isfinite(out).all() and all(torch.isfinite(t.grad).all() for t in (q, k, v))
    assert weights[:, :, 1].abs().max() == 0 and out[:, :, 1].abs().max() == 0
    live = allowed.any(-1)
    assert torch.allclose(weights.sum(-1)[live], torch.ones((), dtype=F64), atol=1e-12)
    assert max_abs_diff(out, F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)) <= TOL

    # Multi-head: batch element 1 has every key padded; element 0 is untouched by that.
    torch.manual_seed(0)
    ours = MultiHeadAttention(8, 2, batch_first=True, dtype=F64).eval()
    ref = torch.nn.MultiheadAttention(8, 2, batch_first=True, dtype=F64).eval()
    ref.load_state_dict(ours.state_dict())
    x = torch.randn(2, 4, 8, generator=g, dtype=F64)
    pad = torch.tensor([[False, False, True, False], [True, True, True, True]])
    out, w = ours(x, x, x, key_padding_mask=pad)
    out_ref, w_ref = ref(x, x, x, key_padding_mask=pad)
    torch_nan_rows = int(out_ref.isnan().any(-1).sum())
    evidence.metric("torch_mha_nan_rows", torch_nan_rows)
    evidence.metric("our_mha_nan_rows", int(out.isnan().any(-1).sum()), threshold=0, direction="lower", key=True)
    evidence.text("Fully masked query rows: our attention returns zero weights and a zero context (the output "
                  "is then out_proj's bias), like F.scaled_dot_product_attention; nn.MultiheadAttention returns "
                  f"NaN ({torch_nan_rows} NaN rows in this case).")
    assert torch.isfinite(out).all() and w[1].abs().max() == 0
    assert max_abs_diff(out[1], ours.out_proj.bias.expand(4, 8)) == 0.0
    assert max_abs_diff(out[0], out_ref[0]) <= TOL and max_abs_diff(w[0], w_ref[0]) <= TOL
    assert torch_nan_rows == 4, "torch's behaviour changed: revisit the documented difference"


def test_dropout_on_weights():
    """Dropout hits the attention weights: p=1 leaves nothing; p=0.3 is unbiased on average."""
    g = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(1, 6, 4, generator=g, dtype=F64) for _ in range(3))
    assert scaled_dot_product_attention(q, k, v, dropout_p=1.0).abs().max() == 0
    exact = scaled_dot_product_attention(q, k, v)
    torch.manual_seed(0)
    draws = scaled_dot_product_attention(q.expand(4000, 6, 4), k, v, dropout_p=0.3)  # 4000 independent masks
    mean = draws.mean(0, keepdim=True)
    assert max_abs_diff(mean, exact) < 0.05, "inverted dropout should keep the expected output"
    assert max_abs_diff(scaled_dot_product_attention(q, k, v, dropout_p=0.3), exact) > 1e-3

    mha = MultiHeadAttention(4, 2, dropout=0.5, batch_first=True, dtype=F64)
    x = torch.randn(1, 6, 4, generator=g, dtype=F64)
    mha.eval()
    assert max_abs_diff(mha(x, x, x)[0], mha(x, x, x)[0]) == 0.0, "no dropout in eval mode"
    mha.train()
    assert max_abs_diff(mha(x, x, x)[0], mha(x, x, x)[0]) > 0.0, "dropout in training mode"


@pytest.mark.parametrize("call, message", [
    (lambda: scaled_dot_product_attention(torch.ones(2, 3), torch.ones(2, 4), torch.ones(2, 4)), "feature size"),
    (lambda: scaled_dot_product_attention(torch.ones(2, 3), torch.ones(5, 3), torch.ones(4, 3)), "same length"),
    (lambda: scaled_dot_product_attention(torch.ones(3), torch.ones(3), torch.ones(3)), "at least 2 dims"),
    (lambda: scaled_dot_product_attention(torch.ones(2, 3), torch.ones(4, 3), torch.ones(4, 3),
                                          attn_mask=torch.ones(3, 4, dtype=torch.bool)), "does not broadcast"),
    (lambda: scaled_dot_product_attention(torch.ones(2, 3), torch.ones(4, 3), torch.ones(4, 3),
                                          attn_mask=torch.ones(2, 4, dtype=torch.int64)), "bool or floating"),
    (lambda: scaled_dot_product_attention(torch.ones(2, 3), torch.ones(2, 3), torch.ones(2, 3), is_causal=True,
                                          attn_mask=torch.ones(2, 2, dtype=torch.bool)), "not both"),
    (lambda: scaled_dot_product_attention(torch.ones(2, 3), torch.ones(2, 3), torch.ones(2, 3), dropout_p=1.5),
     "dropout_p"),
    (lambda: MultiHeadAttention(10, 3), "divisible"),
    (lambda: MultiHeadAttention(8, 2)(torch.ones(3, 2, 6), torch.ones(3, 2, 6), torch.ones(3, 2, 6)),
     "feature sizes"),
    (lambda: MultiHeadAttention(8, 2)(torch.ones(3, 2, 8), torch.ones(4, 3, 8), torch.ones(4, 3, 8)), "batch"),
    (lambda: MultiHeadAttention(8, 2)(torch.ones(3, 2, 8), torch.ones(3, 2, 8), torch.ones(3, 2, 8),
                                      key_padding_mask=torch.ones(3, 2, dtype=torch.bool)), "key_padding_mask"),
    (lambda: MultiHeadAttention(8, 2)(torch.ones(3, 2, 8), torch.ones(3, 2, 8), torch.ones(3, 2, 8),
                                      attn_mask=torch.ones(2, 3, dtype=torch.bool)), "attn_mask"),
    (lambda: MultiHeadAttention(8, 2)(torch.ones(3, 8), torch.ones(3, 2, 8), torch.ones(3, 2, 8)), "3-D"),
])
def test_bad_input_raises_value_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()
