"""Benchmark: CPU inference of resnet18 and efficientnet_b0, batch 8, 224x224, float32.

Reference: eager, contiguous (NCHW) tensors under torch.inference_mode. Candidate: the same
model and input in channels_last (NHWC) memory format, which lets oneDNN pick blocked
convolution kernels without reorders. torch.compile is not benchmarked here: on this 2-core
CPU its first call (Inductor + a C++ compile) costs minutes, more than the whole area's
benchmark budget. The report shows channels_last time / contiguous time per model.
"""
import pytest
import torch

from implementations.architectures.cnn.efficientnet import efficientnet_b0
from implementations.architectures.cnn.resnet import resnet18
from implementations.config import load_experiment

pytestmark = [pytest.mark.benchmark, pytest.mark.torch]
MODELS = {"resnet18": resnet18, "efficientnet_b0": efficientnet_b0}


def _run(benchmark, name: str, channels_last: bool, budget: str) -> tuple[torch.Tensor, int]:
    """Time `name`'s inference; returns the logits and the batch size they must cover."""
    cfg = load_experiment("cnn", "inference_benchmark", budget)
    torch.manual_seed(0)
    model = MODELS[name]().eval()
    x = torch.randn(cfg["batch"], 3, cfg["size"], cfg["size"])
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)

    def infer() -> torch.Tensor:
        with torch.inference_mode():
            return model(x)

    infer()  # warm-up: oneDNN primitive creation is not what we measure
    benchmark.group = f"cnn-inference {name} b{cfg['batch']} {cfg['size']}px"
    benchmark.extra_info.update(role="candidate" if channels_last else "reference",
                                memory_format="channels_last" if channels_last else "contiguous",
                                **({"target_ratio": cfg["target_ratio"]} if channels_last else {}))
    return benchmark.pedantic(infer, rounds=cfg["rounds"], iterations=1), cfg["batch"]


@pytest.mark.parametrize("name", list(MODELS))
def test_inference_contiguous(benchmark, name, budget):
    out, batch = _run(benchmark, name, channels_last=False, budget=budget)
    assert out.shape == (batch, 1000) and torch.isfinite(out).all()


@pytest.mark.parametrize("name", list(MODELS))
def test_inference_channels_last(benchmark, name, budget):
    out, batch = _run(benchmark, name, channels_last=True, budget=budget)
    assert out.shape == (batch, 1000) and torch.isfinite(out).all()
