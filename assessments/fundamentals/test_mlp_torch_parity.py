"""Our NumPy MLP vs torch autograd with the same weights and inputs, in float64 (micrograd-style)."""
import numpy as np
import pytest

from implementations.fundamentals.losses import CrossEntropyLoss
from implementations.fundamentals.mlp import MLP
from implementations.fundamentals.optimizers import SGD

torch = pytest.importorskip("torch", reason="the torch reference is not installed in this environment")
pytestmark = pytest.mark.torch

TORCH_ACT = {"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh, "sigmoid": torch.nn.Sigmoid}


def torch_twin(model: MLP, activation: str) -> torch.nn.Sequential:
    """The same network in torch, float64, with our weights copied in."""
    modules = []
    for i, dense in enumerate(model.dense_layers):
        linear = torch.nn.Linear(dense.in_features, dense.out_features, dtype=torch.float64)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(dense.params["weight"]))
            linear.bias.copy_(torch.from_numpy(dense.params["bias"]))
        modules.append(linear)
        if i < len(model.dense_layers) - 1:
            modules.append(TORCH_ACT[activation]())
    return torch.nn.Sequential(*modules)


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid"])
def test_loss_and_every_gradient_match_torch(activation, evidence, experiment):
    tol = experiment("torch_parity")["max_abs_error"]
    rng = np.random.default_rng(0)
    model = MLP([20, 32, 16, 5], activation=activation, seed=0)
    x, y = rng.normal(size=(12, 20)), rng.integers(0, 5, size=12)
    loss_fn = CrossEntropyLoss()
    loss = loss_fn.forward(model.forward(x), y)
    model.backward(loss_fn.backward())

    twin = torch_twin(model, activation)
    t_loss = torch.nn.functional.cross_entropy(twin(torch.from_numpy(x)), torch.from_numpy(y))
    t_loss.backward()
    t_grads = [p.grad.numpy() for p in twin.parameters()]

    loss_err = abs(loss - t_loss.item())
    grad_err = max(float(np.max(np.abs(g - tg))) for g, tg in zip(model.gradients(), t_grads))
    evidence.metric("loss_abs_error", loss_err, threshold=tol, direction="lower")
    evidence.metric("max_grad_abs_error", grad_err, threshold=tol, direction="lower", key=True)
    assert loss_err <= tol
    assert grad_err <= tol


def test_sgd_training_trajectory_matches_torch(evidence, experiment):
    """Ten SGD+momentum steps: every parameter stays equal to torch's."""
    tol = experiment("torch_parity")["max_abs_error"]
    rng = np.random.default_rng(1)
    model = MLP([10, 16, 3], activation="tanh", seed=1)
    twin = torch_twin(model, "tanh")
    opt = SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3)
    t_opt = torch.optim.SGD(twin.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3)
    loss_fn = CrossEntropyLoss()
    for _ in range(10):
        x, y = rng.normal(size=(8, 10)), rng.integers(0, 3, size=8)
        loss_fn.forward(model.forward(x), y)
        model.backward(loss_fn.backward())
        opt.step(model.gradients())
        t_opt.zero_grad()
        torch.nn.functional.cross_entropy(twin(torch.from_numpy(x)), torch.from_numpy(y)).backward()
        t_opt.step()
    err = max(float(np.max(np.abs(p - tp.detach().numpy()))) for p, tp in zip(model.parameters(), twin.parameters()))
    evidence.metric("max_param_abs_error_after_10_steps", err, threshold=tol, direction="lower")
    assert err <= tol
