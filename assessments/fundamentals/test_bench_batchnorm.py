"""Benchmark: BatchNorm1d forward + backward in train mode, NumPy vs torch CPU, float32.

Batch 256 x 512 features. The report shows NumPy's time as a ratio of torch's (target <= 2).
Both run on one thread: NumPy's elementwise kernels are single-threaded anyway, and on a
loaded 2-core machine torch's second OpenMP thread made its median 1000x worse than its best.
"""
import numpy as np
import pytest

from implementations.fundamentals.layers import BatchNorm1d


pytestmark = [pytest.mark.benchmark, pytest.mark.usefixtures("single_thread")]
BATCH, FEATURES, GROUP = 256, 512, "batchnorm1d-fwd-bwd"
# Fixed rounds with a warm-up: torch's first calls are slow, which otherwise skews calibration.
TIMING = dict(rounds=200, iterations=5, warmup_rounds=20)


def batch(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(loc=2.0, scale=3.0, size=(BATCH, FEATURES)).astype(np.float32)
    return x, rng.normal(size=(BATCH, FEATURES)).astype(np.float32)


def test_numpy_batchnorm_fwd_bwd(benchmark):
    x, dout = batch()
    bn = BatchNorm1d(FEATURES, dtype=np.float32)

    def step() -> np.ndarray:
        bn.forward(x, training=True)
        return bn.backward(dout)

    benchmark.group = GROUP
    benchmark.extra_info.update(role="candidate", target_ratio=2.0)
    dx = benchmark.pedantic(step, **TIMING)
    assert dx.dtype == np.float32 and bn.grads["weight"].dtype == np.float32, "the pass must stay in float32"
    assert np.all(np.isfinite(dx)) and abs(float(dx.sum())) < 1e-2 * float(np.abs(dx).sum())  # sum(dx) ~ 0


@pytest.mark.torch
def test_torch_batchnorm_fwd_bwd(benchmark):
    torch = pytest.importorskip("torch", reason="the torch reference is not installed in this environment")
    x, dout = batch()
    bn = torch.nn.BatchNorm1d(FEATURES)
    tx, tdout = torch.from_numpy(x).requires_grad_(), torch.from_numpy(dout)

    def step():
        tx.grad = None
        bn.weight.grad = bn.bias.grad = None
        bn(tx).backward(tdout)
        return tx.grad

    benchmark.group = GROUP
    benchmark.extra_info.update(role="reference")
    dx = benchmark.pedantic(step, **TIMING)
    assert dx.dtype == torch.float32 and bool(torch.isfinite(dx).all())
