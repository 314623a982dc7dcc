"""Benchmark: one MLP training step (forward + backward + SGD), NumPy vs torch CPU, float32.

784-256-256-10, batch 256. The report shows NumPy's time as a ratio of torch's (target <= 1.5).
"""
import numpy as np
import pytest

from implementations.fundamentals.losses import CrossEntropyLoss
from implementations.fundamentals.mlp import MLP
from implementations.fundamentals.optimizers import SGD

# One thread for both sides: on a 2-core machine a second BLAS/torch thread mostly measures
# whatever else is running, and the ratio is what the report is about.
pytestmark = [pytest.mark.benchmark, pytest.mark.usefixtures("single_thread")]
SIZES, BATCH, GROUP = [784, 256, 256, 10], 256, "mlp-train-step"


def batch(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(BATCH, SIZES[0])).astype(np.float32), rng.integers(0, 10, size=BATCH)


def test_numpy_mlp_step(benchmark):
    x, y = batch()
    model = MLP(SIZES, activation="relu", seed=0, dtype=np.float32)
    opt, loss_fn = SGD(model.parameters(), lr=0.01), CrossEntropyLoss()

    def step() -> float:
        loss = loss_fn.forward(model.forward(x), y)
        model.backward(loss_fn.backward(), input_grad=False)
        opt.step(model.gradients())
        return loss

    benchmark.group = GROUP
    benchmark.extra_info.update(role="candidate", target_ratio=1.5)
    loss = benchmark(step)
    assert np.isfinite(loss)
    assert all(p.dtype == np.float32 for p in model.parameters()), "the step must stay in float32"


@pytest.mark.torch
def test_torch_mlp_step(benchmark):
    torch = pytest.importorskip("torch", reason="the torch reference is not installed in this environment")
    x, y = batch()
    layers = []
    for i, (n_in, n_out) in enumerate(zip(SIZES[:-1], SIZES[1:])):
        layers.append(torch.nn.Linear(n_in, n_out))
        if i < len(SIZES) - 2:
            layers.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*layers)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)

    def step() -> float:
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(tx), ty)
        loss.backward()
        opt.step()
        return loss.item()

    benchmark.group = GROUP
    benchmark.extra_info.update(role="reference")
    assert np.isfinite(benchmark(step))
