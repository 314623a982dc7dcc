"""Our attention is built from scratch, not borrowed (requirement transformers.1).

Parity with torch (test_attention_parity.py) would also pass if our functions called torch's.
Here every torch twin (`F.scaled_dot_product_attention`, `nn.MultiheadAttention`, the fused
multi-head and encoder-layer kernels, `nn.Transformer*` layers) is patched to raise, and our
scaled dot-product attention, multi-head attention and both transformer models still run,
forward and backward, giving exactly what they gave before the patch; the attention results
equal torch's own, computed before patching, in float64.
"""
import pytest
import torch
import torch.nn.functional as F

from assessments.forbidden import TwinCalled, forbid, forward_backward, max_difference, package_modules
from implementations.architectures.transformers.attention import MultiHeadAttention, scaled_dot_product_attention
from implementations.architectures.transformers.model import POSITIONAL_KINDS, Seq2SeqTransformer, SequenceClassifier

pytestmark = [pytest.mark.torch, pytest.mark.usefixtures("single_thread")]
F64 = torch.float64
TWINS = ["torch.nn.functional.scaled_dot_product_attention", "torch._C._nn.scaled_dot_product_attention",
         "torch._fused_sdp_choice", "torch.nn.functional.multi_head_attention_forward",
         "torch._native_multi_head_attention", "torch.nn.MultiheadAttention.forward",
         "torch._transformer_encoder_layer_fwd", "torch.nn.TransformerEncoderLayer.forward",
         "torch.nn.TransformerDecoderLayer.forward", "torch.nn.TransformerEncoder.forward",
         "torch.nn.TransformerDecoder.forward", "torch.nn.Transformer.forward"]


def guarded():
    return forbid(TWINS, package_modules("implementations.architectures.transformers"))


def randn(*shape: int, seed: int) -> torch.Tensor:
    return torch.randn(*shape, dtype=F64, generator=torch.Generator().manual_seed(seed)).requires_grad_()


def test_the_guard_has_teeth():
    """Inside the guard each twin raises; outside it works again."""
    q = torch.zeros(1, 2, 4)
    with guarded():
        with pytest.raises(TwinCalled, match="scaled_dot_product_attention"):
            F.scaled_dot_product_attention(q, q, q)
        with pytest.raises(TwinCalled, match="MultiheadAttention"):
            torch.nn.MultiheadAttention(4, 2)(q, q, q)
    assert F.scaled_dot_product_attention(q, q, q).shape == (1, 2, 4)


@pytest.mark.parametrize("mask", ["none", "bool", "float", "causal"])
def test_sdpa_runs_without_torchs_sdpa(mask, evidence):
    q, k, v = randn(2, 3, 5, 8, seed=1), randn(2, 3, 7, 8, seed=2), randn(2, 3, 7, 6, seed=3)
    L, S = 5, (5 if mask == "causal" else 7)
    if mask == "causal":
        k, v = randn(2, 3, 5, 8, seed=2), randn(2, 3, 5, 6, seed=3)
    attn_mask = {"none": None, "causal": None,
                 "bool": torch.rand(L, S, generator=torch.Generator().manual_seed(4)) > 0.3,
                 "float": torch.randn(2, 1, L, S, dtype=F64, generator=torch.Generator().manual_seed(4))}[mask]
    if mask == "bool":
        attn_mask[:, 0] = True  # every query may attend somewhere
    kw = dict(attn_mask=attn_mask, is_causal=mask == "causal")
    leaves = {"q": q, "k": k, "v": v}
    theirs = forward_backward(lambda: F.scaled_dot_product_attention(q, k, v, **kw), leaves)
    with guarded():
        ours = forward_backward(lambda: scaled_dot_product_attention(q, k, v, **kw), leaves)
    err = max_difference(ours, theirs)
    evidence.metric(f"guarded_sdpa_{mask}_max_abs_error_vs_torch", err, threshold=1e-12, direction="lower")
    assert err <= 1e-12


@pytest.mark.parametrize("batch_first", [True, False])
def test_multihead_runs_without_torchs_multihead(batch_first, evidence):
    torch.manual_seed(0)
    ref = torch.nn.MultiheadAttention(8, 2, batch_first=batch_first, dtype=F64)
    ours = MultiHeadAttention(8, 2, batch_first=batch_first, dtype=F64)
    ours.load_state_dict(ref.state_dict())
    shape = (3, 6, 8) if batch_first else (6, 3, 8)
    x, mem = randn(*shape, seed=1), randn(*shape, seed=2)
    pad = torch.zeros(3, 6, dtype=torch.bool)
    pad[1, 4:] = True
    causal = torch.ones(6, 6, dtype=torch.bool).triu(1)
    kw = dict(key_padding_mask=pad, attn_mask=causal, need_weights=True)
    theirs = forward_backward(lambda: ref(x, mem, mem, **kw), {"x": x, "mem": mem, **dict(ref.named_parameters())})
    with guarded():
        mine = forward_backward(lambda: ours(x, mem, mem, **kw),
                                {"x": x, "mem": mem, **dict(ours.named_parameters())})
    err = max_difference(mine, theirs)
    evidence.metric(f"guarded_multihead_batch_first_{batch_first}_max_abs_error_vs_torch", err,
                    threshold=1e-12, direction="lower", key=batch_first)
    assert err <= 1e-12


@pytest.mark.parametrize("positional", [p for p in POSITIONAL_KINDS if p != "none"])
def test_transformer_models_run_without_torchs_layers(positional):
    """Both models (encoder classifier; encoder-decoder with causal self- and cross-attention)
    give bit-for-bit what they gave before torch's attention and transformer layers were patched."""
    torch.manual_seed(0)
    clf = SequenceClassifier(20, 3, d_model=16, nhead=2, num_layers=2, dim_feedforward=32,
                             positional=positional).double()
    s2s = Seq2SeqTransformer(20, 15, d_model=16, nhead=2, num_encoder_layers=2, num_decoder_layers=2,
                             dim_feedforward=32, dropout=0.0, positional=positional).double()
    g = torch.Generator().manual_seed(1)
    src, tgt = torch.randint(1, 20, (3, 9), generator=g), torch.randint(1, 15, (3, 7), generator=g)
    src[0, 6:] = 0  # padding

    def run() -> dict:
        a = forward_backward(lambda: clf(src), dict(clf.named_parameters()))
        b = forward_backward(lambda: s2s(src, tgt), dict(s2s.named_parameters()))
        return {**{f"clf_{k}": t for k, t in a.items()}, **{f"s2s_{k}": t for k, t in b.items()}}

    before = run()
    with guarded():
        inside = run()
    assert max_difference(inside, before) <= 1e-12
