"""Benchmark: our MultiHeadAttention (explicit matmuls + softmax) vs the same projections around
torch's fused F.scaled_dot_product_attention; self-attention forward, float32, no autograd.

Batch 8, sequence 256, embed_dim 256, 8 heads (experiments/transformers.toml [attention_benchmark]).
The report shows our median time as a ratio of the reference's (target <= 1.3). Both run on one
thread (the harness's `single_thread`), as every test of this area does.
"""
import pytest
import torch

from assessments.transformers._helpers import max_abs_diff, sdpa_multihead
from implementations.architectures.transformers.attention import MultiHeadAttention
from implementations.config import load_experiment

pytestmark = [pytest.mark.benchmark, pytest.mark.torch, pytest.mark.usefixtures("single_thread")]
CFG = load_experiment("transformers", "attention_benchmark")
GROUP = f"attention b{CFG['batch']} t{CFG['seq_len']} d{CFG['embed_dim']} h{CFG['num_heads']} float32"
ROUNDS = dict(rounds=30, iterations=1, warmup_rounds=3)


def setup_case() -> tuple[MultiHeadAttention, torch.Tensor]:
    torch.manual_seed(0)
    mha = MultiHeadAttention(CFG["embed_dim"], CFG["num_heads"], batch_first=True).eval()
    x = torch.randn(CFG["batch"], CFG["seq_len"], CFG["embed_dim"])
    return mha, x


def test_our_multihead_attention(benchmark):
    mha, x = setup_case()
    benchmark.group = GROUP
    benchmark.extra_info.update(role="candidate", target_ratio=CFG["target_ratio"], threads=torch.get_num_threads())
    with torch.inference_mode():
        out = benchmark.pedantic(lambda: mha(x, x, x, need_weights=False)[0], **ROUNDS)
        reference = sdpa_multihead(mha, x)
    assert out.dtype == torch.float32 and out.shape == x.shape
    # Same numbers as the fused kernel, to float32 rounding: the timing compares like with like.
    assert max_abs_diff(out, reference) <= 1e-5


def test_sdpa_multihead_attention(benchmark):
    mha, x = setup_case()
    benchmark.group = GROUP
    benchmark.extra_info.update(role="reference", threads=torch.get_num_threads())
    with torch.inference_mode():
        out = benchmark.pedantic(lambda: sdpa_multihead(mha, x), **ROUNDS)
    assert torch.isfinite(out).all() and out.shape == x.shape
