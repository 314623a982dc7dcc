"""SGD, Adam, AdamW and gradient clipping vs torch, step by step in float64 (requirement optreg.1).

For every flag combination, 200 steps on random gradients and 200 steps of a real loss
(an MLP on digits minibatches, gradients from our backward vs torch autograd): every parameter
after every step must equal torch.optim's within traj_tol.
"""
import itertools

import numpy as np
import pytest

from implementations.fundamentals.clipping import clip_grad_norm_, clip_grad_value_
from implementations.fundamentals.losses import CrossEntropyLoss
from implementations.fundamentals.mlp import MLP
from implementations.fundamentals.optimizers import SGD, Adam, AdamW

from ._helpers import digits_data, parity_error, to_torch

torch = pytest.importorskip("torch", reason="the torch reference is not installed in this environment")
pytestmark = [pytest.mark.torch, pytest.mark.usefixtures("single_thread")]

SHAPES = [(5, 3), (3,), (2, 2, 2)]


def sgd_flags() -> list[dict]:
    out = []
    for momentum, dampening, nesterov, weight_decay in itertools.product((0.0, 0.9), (0.0, 0.3), (False, True),
                                                                         (0.0, 0.01)):
        if nesterov and (momentum == 0 or dampening != 0):
            continue  # torch rejects these too
        out.append(dict(lr=0.05, momentum=momentum, dampening=dampening, nesterov=nesterov, weight_decay=weight_decay))
    return out


def adam_flags(weight_decays=(0.0, 0.1)) -> list[dict]:
    return [dict(lr=0.01, betas=betas, eps=1e-8, weight_decay=wd, amsgrad=amsgrad)
            for betas, wd, amsgrad in itertools.product(((0.9, 0.999), (0.5, 0.9)), weight_decays, (False, True))]


CASES = ([("SGD", SGD, torch.optim.SGD, f) for f in sgd_flags()]
         + [("Adam", Adam, torch.optim.Adam, f) for f in adam_flags()]
         + [("AdamW", AdamW, torch.optim.AdamW, f) for f in adam_flags()])


def case_id(case) -> str:
    name, _, _, flags = case
    return name + "-" + "-".join(f"{k}={v}" for k, v in flags.items() if k != "lr")


@pytest.mark.parametrize("case", CASES, ids=[case_id(c) for c in CASES])
def test_trajectory_matches_torch_on_random_gradients(case, evidence, experiment):
    cfg = experiment("optimizer_parity")
    _, ours_cls, torch_cls, flags = case
    rng = np.random.default_rng(0)
    params = [rng.normal(size=s) for s in SHAPES]
    t_params = [to_torch(p, requires_grad=True) for p in params]
    ours, theirs = ours_cls(params, **flags), torch_cls(t_params, **flags)
    worst = 0.0
    for _ in range(cfg["steps"]):
        grads = [rng.normal(size=s) * rng.uniform(0.1, 10.0) for s in SHAPES]
        ours.step(grads)
        for tp, g in zip(t_params, grads):
            tp.grad = to_torch(g)
        theirs.step()
        worst = max(worst, max(parity_error(p, tp.detach().numpy()) for p, tp in zip(params, t_params)))
    evidence.metric("max_trajectory_error", worst, threshold=cfg["traj_tol"], direction="lower", key=True)
    assert worst <= cfg["traj_tol"]


REAL_CASES = {"SGD-nesterov-wd": (SGD, torch.optim.SGD, dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3)),
              "SGD-dampening": (SGD, torch.optim.SGD, dict(lr=0.05, momentum=0.9, dampening=0.5)),
              "Adam-amsgrad-wd": (Adam, torch.optim.Adam, dict(lr=3e-3, weight_decay=1e-3, amsgrad=True)),
              "AdamW": (AdamW, torch.optim.AdamW, dict(lr=3e-3))}


@pytest.mark.parametrize("name", list(REAL_CASES))
def test_trajectory_matches_torch_on_a_real_loss(name, evidence, experiment):
    """200 minibatch steps of an MLP on digits: our backward + optimizer vs autograd + torch.optim."""
    cfg = experiment("optimizer_parity")
    ours_cls, torch_cls, flags = REAL_CASES[name]
    X, y, _, _ = digits_data()
    model = MLP([64, 32, 10], activation="tanh", seed=0)
    twin = torch.nn.Sequential(torch.nn.Linear(64, 32, dtype=torch.float64), torch.nn.Tanh(),
                               torch.nn.Linear(32, 10, dtype=torch.float64))
    with torch.no_grad():
        for p, tp in zip(model.parameters(), twin.parameters()):
            tp.copy_(to_torch(p))
    ours, theirs, loss_fn = ours_cls(model.parameters(), **flags), torch_cls(twin.parameters(), **flags), CrossEntropyLoss()
    rng, worst, losses = np.random.default_rng(0), 0.0, []
    for _ in range(cfg["steps"]):
        idx = rng.choice(len(X), size=32, replace=False)
        losses.append(loss_fn.forward(model.forward(X[idx]), y[idx]))
        model.backward(loss_fn.backward())
        ours.step(model.gradients())
        theirs.zero_grad()
        torch.nn.functional.cross_entropy(twin(to_torch(X[idx])), to_torch(y[idx])).backward()
        theirs.step()
        worst = max(worst, max(parity_error(p, tp.detach().numpy())
                               for p, tp in zip(model.parameters(), twin.parameters())))
    evidence.metric("max_trajectory_error", worst, threshold=cfg["traj_tol"], direction="lower", key=True)
    evidence.metric("loss_first_10_steps", float(np.mean(losses[:10])))
    evidence.metric("loss_last_10_steps", float(np.mean(losses[-10:])))
    assert np.mean(losses[-10:]) < 0.5 * np.mean(losses[:10]), "the real loss should actually be optimised"
    assert worst <= cfg["traj_tol"]


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, float("inf")])
@pytest.mark.parametrize("max_norm", [0.5, 1e3])
def test_clip_grad_norm_matches_torch(norm_type, max_norm, experiment):
    tol = experiment("optimizer_parity")["traj_tol"]
    rng = np.random.default_rng(3)
    grads = [rng.normal(size=s) * 4 for s in SHAPES]
    t_params = [to_torch(np.zeros(s), requires_grad=True) for s in SHAPES]
    for tp, g in zip(t_params, grads):
        tp.grad = to_torch(g)
    norm = clip_grad_norm_(grads, max_norm, norm_type=norm_type)
    t_norm = torch.nn.utils.clip_grad_norm_(t_params, max_norm, norm_type=norm_type)
    assert parity_error(norm, t_norm.item()) <= tol
    assert max(parity_error(g, tp.grad.numpy()) for g, tp in zip(grads, t_params)) <= tol


def test_clip_grad_value_matches_torch():
    rng = np.random.default_rng(4)
    grads = [rng.normal(size=s) * 4 for s in SHAPES]
    t_params = [to_torch(np.zeros(s), requires_grad=True) for s in SHAPES]
    for tp, g in zip(t_params, grads):
        tp.grad = to_torch(g)
    clip_grad_value_(grads, 1.5)
    torch.nn.utils.clip_grad_value_(t_params, 1.5)
    assert all(np.array_equal(g, tp.grad.numpy()) for g, tp in zip(grads, t_params))
