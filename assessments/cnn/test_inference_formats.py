"""The benchmarked inference variants compute the same function: channels_last (NHWC) vs
contiguous (NCHW) logits of resnet18 and efficientnet_b0 agree to float32 round-off, so the
benchmark's speed ratio compares like with like (test_bench_cnn_inference.py)."""
import pytest
import torch

from implementations.architectures.cnn.efficientnet import efficientnet_b0
from implementations.architectures.cnn.resnet import resnet18

pytestmark = pytest.mark.torch


@pytest.mark.parametrize("builder", [resnet18, efficientnet_b0], ids=["resnet18", "efficientnet_b0"])
def test_channels_last_matches_contiguous(builder, evidence, experiment):
    cfg = experiment("inference_formats")
    torch.manual_seed(0)
    model = builder().eval()
    x = torch.randn(2, 3, cfg["size"], cfg["size"])
    with torch.inference_mode():
        ref = model(x)
        model = model.to(memory_format=torch.channels_last)
        out = model(x.contiguous(memory_format=torch.channels_last))
    err = float((out - ref).abs().max() / ref.abs().max())
    evidence.metric(f"{builder.__name__}_channels_last_rel_error", err, threshold=cfg["max_rel_error"],
                    direction="lower")
    assert out.shape == ref.shape == (2, 1000)
    assert err <= cfg["max_rel_error"]
