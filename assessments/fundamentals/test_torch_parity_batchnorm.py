"""BatchNorm1d vs torch.nn.BatchNorm1d over several training steps, float64 (requirement optreg.3).

Each step: a new batch through both in train mode (outputs, input/weight/bias gradients, running
mean, unbiased running variance, batches tracked), an SGD update of weight and bias on both
sides, then an eval-mode pass with the running statistics. Everything within bn_tol.
"""
import itertools

import numpy as np
import pytest

from implementations.fundamentals.layers import BatchNorm1d

from ._helpers import parity_error, to_torch

torch = pytest.importorskip("torch", reason="the torch reference is not installed in this environment")
pytestmark = [pytest.mark.torch, pytest.mark.usefixtures("single_thread")]

CONFIGS = [dict(shape=shape, momentum=momentum, affine=affine, track_running_stats=track)
           for shape, momentum, affine, track in itertools.product(((16, 6), (8, 6, 5)), (0.1, None), (True, False),
                                                                   (True, False))
           if track or momentum is not None]  # momentum only matters when statistics are tracked


def config_id(c: dict) -> str:
    layout = "NCL" if len(c["shape"]) == 3 else "NC"
    return f"{layout}-momentum={c['momentum']}-affine={c['affine']}-track={c['track_running_stats']}"


@pytest.mark.parametrize("cfg", CONFIGS, ids=[config_id(c) for c in CONFIGS])
def test_batchnorm_matches_torch_over_steps(cfg, evidence, experiment):
    tol = experiment("batchnorm_parity")["bn_tol"]
    steps = experiment("batchnorm_parity")["steps"]
    shape, c = cfg["shape"], cfg["shape"][1]
    ours = BatchNorm1d(c, eps=1e-5, momentum=cfg["momentum"], affine=cfg["affine"],
                       track_running_stats=cfg["track_running_stats"])
    theirs = torch.nn.BatchNorm1d(c, eps=1e-5, momentum=cfg["momentum"], affine=cfg["affine"],
                                  track_running_stats=cfg["track_running_stats"], dtype=torch.float64)
    rng = np.random.default_rng(0)
    errors = {"train output": 0.0, "input gradient": 0.0, "param gradients": 0.0, "running stats": 0.0,
              "eval output": 0.0, "eval input gradient": 0.0}
    for _ in range(steps):
        for training in (True, False):
            theirs.train(training)
            x = rng.normal(loc=rng.normal(size=(1, c) + (1,) * (len(shape) - 2)) * 3, scale=2.0, size=shape)
            dout = rng.normal(size=shape)
            out = ours.forward(x, training)
            dx = ours.backward(dout)
            tx = to_torch(x, requires_grad=True)
            t_out = theirs(tx)
            t_out.backward(to_torch(dout))
            out_key, dx_key = ("train output", "input gradient") if training else ("eval output", "eval input gradient")
            errors[out_key] = max(errors[out_key], parity_error(out, t_out.detach().numpy()))
            errors[dx_key] = max(errors[dx_key], parity_error(dx, tx.grad.numpy()))
            if cfg["affine"]:
                for name, tp in (("weight", theirs.weight), ("bias", theirs.bias)):
                    errors["param gradients"] = max(errors["param gradients"],
                                                    parity_error(ours.grads[name], tp.grad.numpy()))
                    if training:  # the same SGD step on both sides, so later steps see moved parameters
                        ours.params[name] -= 0.1 * ours.grads[name]
                    with torch.no_grad():
                        if training:
                            tp -= 0.1 * tp.grad
                        tp.grad = None
            if cfg["track_running_stats"]:
                errors["running stats"] = max(errors["running stats"],
                                              parity_error(ours.running_mean, theirs.running_mean.numpy()),
                                              parity_error(ours.running_var, theirs.running_var.numpy()))
                assert ours.num_batches_tracked == int(theirs.num_batches_tracked)
    for name, err in errors.items():
        evidence.metric(f"max_{name.replace(' ', '_')}_error", err, threshold=tol, direction="lower",
                        key=name == "input gradient")
    assert max(errors.values()) <= tol, errors
