"""Learning-rate schedules vs torch.optim.lr_scheduler, 300 steps each (requirement optreg.4).

After construction and after every one of 300 steps, our optimizer's lr must equal torch's
param_group["lr"] within sched_tol (relative); for OneCycleLR the cycled momentum (SGD) or
beta1 (Adam) too. The parameters both optimizers step (with a varying gradient, so momentum and
the Adam moments matter) must agree within param_tol at every step: a scheduler that sets the
attribute while the optimizer keeps using its old lr or momentum fails here.
"""
import numpy as np
import pytest

from implementations.fundamentals import schedules as ours
from implementations.fundamentals.optimizers import SGD, Adam

from ._helpers import parity_error, to_torch

torch = pytest.importorskip("torch", reason="the torch reference is not installed in this environment")
pytestmark = [pytest.mark.torch, pytest.mark.usefixtures("single_thread")]
S = torch.optim.lr_scheduler
STEPS = 300


def torch_warmup_cosine(opt, warmup_steps, total_steps, start_factor=0.1, eta_min=0.0):
    warmup = S.LinearLR(opt, start_factor=start_factor, total_iters=warmup_steps)
    cosine = S.CosineAnnealingLR(opt, T_max=total_steps - warmup_steps, eta_min=eta_min)
    return S.SequentialLR(opt, [warmup, cosine], milestones=[warmup_steps])


# name: (optimizer kind, our scheduler factory, torch scheduler factory)
CASES = {
    "StepLR": ("sgd", lambda o: ours.StepLR(o, step_size=30, gamma=0.5), lambda o: S.StepLR(o, step_size=30, gamma=0.5)),
    "StepLR_7_0.1": ("sgd", lambda o: ours.StepLR(o, 7), lambda o: S.StepLR(o, 7)),
    "ExponentialLR": ("sgd", lambda o: ours.ExponentialLR(o, gamma=0.98), lambda o: S.ExponentialLR(o, gamma=0.98)),
    "CosineAnnealingLR_T100": ("sgd", lambda o: ours.CosineAnnealingLR(o, T_max=100, eta_min=1e-4),
                               lambda o: S.CosineAnnealingLR(o, T_max=100, eta_min=1e-4)),
    "CosineAnnealingLR_T300": ("sgd", lambda o: ours.CosineAnnealingLR(o, T_max=STEPS),
                               lambda o: S.CosineAnnealingLR(o, T_max=STEPS)),
    "LinearLR_warmup": ("sgd", lambda o: ours.LinearLR(o, start_factor=0.1, total_iters=50),
                        lambda o: S.LinearLR(o, start_factor=0.1, total_iters=50)),
    "LinearLR_defaults": ("sgd", ours.LinearLR, S.LinearLR),
    "warmup_cosine": ("sgd", lambda o: ours.warmup_cosine(o, 30, STEPS, start_factor=0.05, eta_min=1e-3),
                      lambda o: torch_warmup_cosine(o, 30, STEPS, start_factor=0.05, eta_min=1e-3)),
    "OneCycleLR_sgd": ("sgd", lambda o: ours.OneCycleLR(o, max_lr=0.5, total_steps=STEPS),
                       lambda o: S.OneCycleLR(o, max_lr=0.5, total_steps=STEPS)),
    "OneCycleLR_adam_three_phase_linear": (
        "adam", lambda o: ours.OneCycleLR(o, max_lr=0.01, epochs=10, steps_per_epoch=30, pct_start=0.25,
                                          anneal_strategy="linear", three_phase=True),
        lambda o: S.OneCycleLR(o, max_lr=0.01, epochs=10, steps_per_epoch=30, pct_start=0.25,
                               anneal_strategy="linear", three_phase=True)),
    "OneCycleLR_no_momentum_cycle": ("sgd", lambda o: ours.OneCycleLR(o, max_lr=0.2, total_steps=STEPS,
                                                                      cycle_momentum=False, div_factor=10.0),
                                     lambda o: S.OneCycleLR(o, max_lr=0.2, total_steps=STEPS, cycle_momentum=False,
                                                            div_factor=10.0)),
}


def relative_error(ours: list[float], ref: list[float]) -> float:
    """max |ours - ref| / |ref| (learning rates are small, so an absolute bound would say little)."""
    ours, ref = np.asarray(ours), np.asarray(ref)
    return float(np.max(np.abs(ours - ref) / np.maximum(np.abs(ref), 1e-300)))


def momentum_of(opt) -> float:
    if isinstance(opt, torch.optim.Optimizer):
        group = opt.param_groups[0]
        return group["betas"][0] if "betas" in group else group["momentum"]
    return opt.betas[0] if hasattr(opt, "betas") else opt.momentum


@pytest.mark.parametrize("name", list(CASES))
def test_schedule_matches_torch_for_300_steps(name, evidence, experiment):
    tol = experiment("schedule_parity")["sched_tol"]
    kind, make_ours, make_theirs = CASES[name]
    param_tol = experiment("schedule_parity")["param_tol"]
    param, t_param = np.zeros(2), to_torch(np.zeros(2), requires_grad=True)
    if kind == "sgd":
        opt, t_opt = SGD([param], lr=0.1, momentum=0.9), torch.optim.SGD([t_param], lr=0.1, momentum=0.9)
    else:
        opt, t_opt = Adam([param], lr=1e-3), torch.optim.Adam([t_param], lr=1e-3)
    sched, t_sched = make_ours(opt), make_theirs(t_opt)
    lrs, t_lrs, moms, t_moms = [opt.lr], [t_opt.param_groups[0]["lr"]], [momentum_of(opt)], [momentum_of(t_opt)]
    params, t_params = [], []
    for step in range(STEPS):
        grad = np.array([1.0 + np.sin(0.1 * step), -2.0 * np.cos(0.07 * step)])  # varies: momentum matters
        opt.step([grad])  # the optimizer steps first, as torch requires
        t_param.grad = to_torch(grad)
        t_opt.step()
        sched.step()
        t_sched.step()
        lrs.append(opt.lr)
        t_lrs.append(t_opt.param_groups[0]["lr"])
        moms.append(momentum_of(opt))
        t_moms.append(momentum_of(t_opt))
        params.append(param.copy())
        t_params.append(t_param.detach().numpy().copy())
    lr_err, mom_err = relative_error(lrs, t_lrs), parity_error(moms, t_moms)
    param_err = parity_error(np.array(params), np.array(t_params))
    evidence.metric("max_lr_error_over_300_steps", lr_err, threshold=tol, direction="lower", key=True)
    evidence.metric("max_momentum_error_over_300_steps", mom_err, threshold=tol, direction="lower")
    evidence.metric("max_parameter_error_over_300_steps", param_err, threshold=param_tol, direction="lower")
    assert np.ptp(t_lrs) > 0, "the schedule should actually change the lr"
    assert lr_err <= tol, f"lr differs from torch by {lr_err:.2e}"
    assert mom_err <= tol, f"momentum differs from torch by {mom_err:.2e}"
    assert param_err <= param_tol, f"the stepped parameters differ from torch's by {param_err:.2e}"
    assert np.abs(params[-1]).max() > 0.1, "the parameters barely moved: the comparison would be blind"
    assert sched.get_last_lr() == pytest.approx(t_sched.get_last_lr()[0], rel=tol)
