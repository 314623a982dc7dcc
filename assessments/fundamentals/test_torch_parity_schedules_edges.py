"""The learning-rate schedules at their edges, step for step against torch.optim.lr_scheduler.

Written for the mutants of schedules.py that survived `make mutation`: the 300-step parity file
runs each schedule fresh from its defaults, so these paths were never decided by a test:
- resuming (last_epoch=k with the optimizer's initial_lr set, torch's param_groups' initial_lr),
  including get_lr() called right after construction, which CosineAnnealingLR answers in
  closed form on its first step;
- CosineAnnealingLR stepped several periods past T_max (torch's recursion climbs back up) with
  eta_min > 0, and the closed forms against torch's and against the recursion at every epoch;
- SequentialLR with every scheduler as a later stage, several milestones, a milestone at 1,
  and nested;
- the smallest arguments torch accepts (step_size=1, T_max=1, total_steps=1, pct_start 0 and 1,
  start_factor 1, end_factor 0, epochs=1, steps_per_epoch=1, warmup_steps=1), arguments rejected
  exactly where torch rejects them, and our own error messages, word for word;
- OneCycleLR reaching max_lr and base_momentum exactly at the end of its warm-up.
The schedules copy torch's arithmetic operation for operation, so lrs are compared exactly (==).
"""
import re
import warnings

import numpy as np
import pytest

from implementations.fundamentals import schedules as ours
from implementations.fundamentals.optimizers import SGD, Adam, Optimizer

torch = pytest.importorskip("torch", reason="the torch reference is not installed in this environment")
pytestmark = [pytest.mark.torch, pytest.mark.usefixtures("single_thread")]
S = torch.optim.lr_scheduler


def pair(kind="sgd", lr=0.1):
    if kind == "sgd":
        return SGD([np.zeros(2)], lr=lr, momentum=0.9), torch.optim.SGD([torch.zeros(2, dtype=torch.float64)],
                                                                        lr=lr, momentum=0.9)
    return Adam([np.zeros(2)], lr=lr), torch.optim.Adam([torch.zeros(2, dtype=torch.float64)], lr=lr)


def state(opt, sched):
    """(lr, momentum, last_lr, last_epoch, initial_lr) of ours or torch's, comparable with ==."""
    if isinstance(opt, torch.optim.Optimizer):
        g = opt.param_groups[0]
        mom = g["betas"][0] if "betas" in g else g["momentum"]
        return g["lr"], mom, sched.get_last_lr()[0], sched.last_epoch, g.get("initial_lr")
    mom = opt.betas[0] if hasattr(opt, "betas") else opt.momentum
    return opt.lr, mom, sched.get_last_lr(), sched.last_epoch, opt.initial_lr


def assert_same_trajectory(opt, sched, t_opt, t_sched, steps):
    """Equal state after construction and after each step; returns our lrs."""
    lrs = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch warns that we never step its optimizer
        for step in range(steps + 1):
            if step:
                sched.step()
                t_sched.step()
            assert state(opt, sched) == state(t_opt, t_sched), f"after {step} steps"
            lrs.append(opt.lr)
    return lrs


def full(message):
    return "^" + re.escape(message) + "$"


# name: (optimizer kind, factory(module, optimizer, last_epoch)); module is `ours` or torch's S
SCHEDULES = {
    "StepLR": ("sgd", lambda m, o, e: m.StepLR(o, step_size=3, gamma=0.5, last_epoch=e)),
    "ExponentialLR": ("sgd", lambda m, o, e: m.ExponentialLR(o, gamma=0.9, last_epoch=e)),
    "LinearLR": ("sgd", lambda m, o, e: m.LinearLR(o, start_factor=0.25, end_factor=0.75, total_iters=6, last_epoch=e)),
    "CosineAnnealingLR": ("sgd", lambda m, o, e: m.CosineAnnealingLR(o, T_max=5, eta_min=0.01, last_epoch=e)),
    "OneCycleLR_sgd": ("sgd", lambda m, o, e: m.OneCycleLR(o, max_lr=0.5, total_steps=20, last_epoch=e)),
    "OneCycleLR_adam": ("adam", lambda m, o, e: m.OneCycleLR(o, max_lr=0.5, epochs=4, steps_per_epoch=5,
                                                             three_phase=True, last_epoch=e)),
}


@pytest.mark.parametrize("last_epoch", [-1, 0, 4])
@pytest.mark.parametrize("name", list(SCHEDULES))
def test_fresh_and_resumed_schedules_match_torch(name, last_epoch, evidence):
    """Resuming from a checkpoint: the optimizer holds initial_lr (0.1) and its current lr (0.05)."""
    kind, make = SCHEDULES[name]
    opt, t_opt = pair(kind)
    if last_epoch >= 0:
        if name.startswith("OneCycleLR"):  # the checkpoint's param group holds OneCycleLR's own keys
            make(ours, opt, -1), make(S, t_opt, -1)
        else:
            opt.initial_lr = t_opt.param_groups[0]["initial_lr"] = 0.1
        opt.lr = t_opt.param_groups[0]["lr"] = 0.05
    sched, t_sched = make(ours, opt, last_epoch), make(S, t_opt, last_epoch)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch warns when get_lr() is called outside step()
        assert sched.get_lr() == t_sched.get_lr()[0]  # CosineAnnealingLR: the closed form on the first step
    lrs = assert_same_trajectory(opt, sched, t_opt, t_sched, 12)
    evidence.metric("steps_equal_to_torch", len(lrs))


@pytest.mark.parametrize("T_max", [1, 2, 3, 7])
@pytest.mark.parametrize("eta_min", [0.0, 0.01])
def test_cosine_annealing_past_T_max_matches_torch(T_max, eta_min, evidence):
    """torch's recursion keeps following the cosine through troughs at T_max, 3 T_max, 5 T_max, ..."""
    opt, t_opt = pair()
    sched = ours.CosineAnnealingLR(opt, T_max=T_max, eta_min=eta_min)
    t_sched = S.CosineAnnealingLR(t_opt, T_max=T_max, eta_min=eta_min)
    lrs = assert_same_trajectory(opt, sched, t_opt, t_sched, 8 * T_max + 2)
    evidence.metric("steps_equal_to_torch", len(lrs))
    assert lrs[5 * T_max + 1] == pytest.approx(lrs[T_max + 1], rel=1e-9)  # period 2 T_max, past the third trough
    assert min(lrs) == pytest.approx(eta_min, abs=1e-12) and max(lrs) == pytest.approx(0.1, rel=1e-12)


CLOSED_FORMS = {
    "StepLR": lambda m, o: m.StepLR(o, step_size=3, gamma=0.5),
    "ExponentialLR": lambda m, o: m.ExponentialLR(o, gamma=0.9),
    "LinearLR": lambda m, o: m.LinearLR(o, start_factor=0.25, end_factor=0.75, total_iters=6),
    "CosineAnnealingLR": lambda m, o: m.CosineAnnealingLR(o, T_max=5, eta_min=0.01),
}


@pytest.mark.parametrize("name", list(CLOSED_FORMS))
def test_closed_forms_match_torch_and_the_recursion_at_every_epoch(name):
    opt, t_opt = pair()
    sched, t_sched = CLOSED_FORMS[name](ours, opt), CLOSED_FORMS[name](S, t_opt)
    for epoch in range(16):
        if epoch:
            sched.step()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # torch warns that we never step its optimizer
                t_sched.step()
        assert sched.last_epoch == epoch
        closed = sched._get_closed_form_lr()
        assert closed == t_sched._get_closed_form_lr()[0], f"epoch {epoch}"
        assert closed == pytest.approx(opt.lr, rel=1e-12), f"epoch {epoch}: closed form vs recursion"


# name: (stages(module, optimizer), milestones, steps)
SEQUENCES = {
    "single_stage": (lambda m, o: [m.CosineAnnealingLR(o, T_max=4, eta_min=0.01)], [], 6),
    "then_StepLR": (lambda m, o: [m.LinearLR(o, 0.5, total_iters=3), m.StepLR(o, step_size=2, gamma=0.5)], [4], 12),
    "then_ExponentialLR": (lambda m, o: [m.LinearLR(o, 0.5, total_iters=3), m.ExponentialLR(o, gamma=0.8)], [4], 12),
    "then_LinearLR": (lambda m, o: [m.ExponentialLR(o, gamma=0.8), m.LinearLR(o, 0.2, 0.6, total_iters=4)], [3], 12),
    "then_CosineAnnealingLR": (lambda m, o: [m.StepLR(o, step_size=1, gamma=0.5),
                                             m.CosineAnnealingLR(o, T_max=4, eta_min=0.01)], [3], 14),
    "then_OneCycleLR": (lambda m, o: [m.LinearLR(o, 0.5, total_iters=3), m.OneCycleLR(o, max_lr=0.4, total_steps=8)],
                        [3], 11),
    "milestone_at_1": (lambda m, o: [m.LinearLR(o, 0.5, total_iters=3), m.ExponentialLR(o, gamma=0.8)], [1], 6),
    "three_stages": (lambda m, o: [m.LinearLR(o, 0.25, total_iters=2), m.StepLR(o, step_size=2, gamma=0.5),
                                   m.CosineAnnealingLR(o, T_max=3)], [2, 5], 12),
    "four_stages_from_1": (lambda m, o: [m.ExponentialLR(o, gamma=0.5), m.LinearLR(o, 0.5, total_iters=2),
                                         m.StepLR(o, step_size=1, gamma=0.9), m.CosineAnnealingLR(o, T_max=2)],
                           [1, 3, 6], 12),
    # torch's recursive_undo reaches into a nested SequentialLR's own stages
    "nested": (lambda m, o: [m.SequentialLR(o, [m.LinearLR(o, 0.5, total_iters=2), m.ExponentialLR(o, gamma=0.5)], [2]),
                             m.StepLR(o, step_size=1, gamma=0.9)], [5], 10),
}


@pytest.mark.parametrize("name", list(SEQUENCES))
def test_sequential_lr_hands_over_like_torch(name, evidence):
    """At a milestone torch restarts the next stage at its closed form for epoch 0 (get_lr() when
    it has none, as OneCycleLR); a milestone at 1 hands over after a single step; a single stage
    with no milestones is that scheduler alone."""
    stages, milestones, steps = SEQUENCES[name]
    opt, t_opt = pair()
    seq = ours.SequentialLR(opt, stages(ours, opt), milestones)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a nested SequentialLR steps at construction: torch warns
        t_seq = S.SequentialLR(t_opt, stages(S, t_opt), milestones)
    assert seq.base_lr == opt.initial_lr == t_opt.param_groups[0]["initial_lr"]
    lrs = assert_same_trajectory(opt, seq, t_opt, t_seq, steps)
    evidence.metric("steps_equal_to_torch", len(lrs))
    assert len(set(lrs)) > len(milestones) + 1, "every stage should change the lr"


def torch_warmup_cosine(opt, warmup_steps, total_steps):
    warmup = S.LinearLR(opt, start_factor=0.1, total_iters=warmup_steps)
    return S.SequentialLR(opt, [warmup, S.CosineAnnealingLR(opt, T_max=total_steps - warmup_steps)], [warmup_steps])


# name: (optimizer kind, factory(module, optimizer), steps); torch accepts each of these
SMALLEST = {
    "StepLR_step_size_1": ("sgd", lambda m, o: m.StepLR(o, step_size=1, gamma=0.5), 5),
    "CosineAnnealingLR_T_max_1": ("sgd", lambda m, o: m.CosineAnnealingLR(o, T_max=1, eta_min=0.01), 6),
    "LinearLR_start_1_end_0": ("sgd", lambda m, o: m.LinearLR(o, start_factor=1.0, end_factor=0.0, total_iters=3), 6),
    "LinearLR_end_0": ("sgd", lambda m, o: m.LinearLR(o, start_factor=0.5, end_factor=0.0, total_iters=4), 6),
    "LinearLR_end_0.5": ("sgd", lambda m, o: m.LinearLR(o, start_factor=1.0, end_factor=0.5, total_iters=2), 4),
    "OneCycleLR_total_steps_1": ("sgd", lambda m, o: m.OneCycleLR(o, max_lr=0.5, total_steps=1), 1),
    "OneCycleLR_pct_start_0": ("sgd", lambda m, o: m.OneCycleLR(o, max_lr=0.5, total_steps=10, pct_start=0.0), 10),
    "OneCycleLR_pct_start_1": ("adam", lambda m, o: m.OneCycleLR(o, max_lr=0.5, total_steps=10, pct_start=1.0), 9),
    "OneCycleLR_epochs_1": ("sgd", lambda m, o: m.OneCycleLR(o, max_lr=0.5, epochs=1, steps_per_epoch=10), 10),
    "OneCycleLR_steps_per_epoch_1": ("sgd", lambda m, o: m.OneCycleLR(o, max_lr=0.5, epochs=10, steps_per_epoch=1), 10),
    "warmup_cosine_warmup_1": ("sgd", lambda m, o: ours.warmup_cosine(o, 1, 6) if m is ours else torch_warmup_cosine(o, 1, 6), 6),
}


@pytest.mark.parametrize("name", list(SMALLEST))
def test_smallest_legal_arguments_match_torch(name):
    kind, make, steps = SMALLEST[name]
    opt, t_opt = pair(kind)
    lrs = assert_same_trajectory(opt, make(ours, opt), t_opt, make(S, t_opt), steps)
    assert len(set(lrs)) > 1


# (ours, torch's, keyword arguments, our message); torch raises ValueError for each
REJECTED = [
    (ours.LinearLR, S.LinearLR, {"start_factor": 0.0}, "start_factor must be in (0, 1], got 0.0"),
    (ours.LinearLR, S.LinearLR, {"start_factor": 1.5}, "start_factor must be in (0, 1], got 1.5"),
    (ours.LinearLR, S.LinearLR, {"end_factor": -0.1}, "end_factor must be in [0, 1], got -0.1"),
    (ours.LinearLR, S.LinearLR, {"end_factor": 1.5}, "end_factor must be in [0, 1], got 1.5"),
    (ours.OneCycleLR, S.OneCycleLR, {"max_lr": 0.5, "total_steps": 0}, "total_steps must be a positive integer, got 0"),
    (ours.OneCycleLR, S.OneCycleLR, {"max_lr": 0.5, "total_steps": 10, "pct_start": 1.5},
     "pct_start must be in [0, 1], got 1.5"),
    (ours.OneCycleLR, S.OneCycleLR, {"max_lr": 0.5, "total_steps": 10, "pct_start": -0.1},
     "pct_start must be in [0, 1], got -0.1"),
    (ours.OneCycleLR, S.OneCycleLR, {"max_lr": 0.5, "total_steps": 10, "anneal_strategy": "exp"},
     "anneal_strategy must be 'cos' or 'linear', got 'exp'"),
] + [(ours.OneCycleLR, S.OneCycleLR, {"max_lr": 0.5, "epochs": e, "steps_per_epoch": s},
      "OneCycleLR needs total_steps, or positive epochs and steps_per_epoch")
     for e, s in ((0, 5), (5, 0), (None, 5), (5, None), (0, 0))]


@pytest.mark.parametrize("ours_cls, torch_cls, kwargs, message", REJECTED)
def test_arguments_are_rejected_where_torch_rejects_them(ours_cls, torch_cls, kwargs, message):
    opt, t_opt = pair()
    with pytest.raises(ValueError):
        torch_cls(t_opt, **kwargs)
    with pytest.raises(ValueError, match=full(message)):
        ours_cls(opt, **kwargs)


def test_our_own_argument_checks_and_errors_say_what_was_wrong():
    """torch does not check these (it divides by zero later, or fails with a KeyError); we raise."""
    opt = SGD([np.zeros(2)], lr=0.1)
    with pytest.raises(ValueError, match=full("step_size must be a positive integer, got 0")):
        ours.StepLR(opt, step_size=0)
    with pytest.raises(ValueError, match=full("T_max must be a positive integer, got 0")):
        ours.CosineAnnealingLR(opt, T_max=0)
    with pytest.raises(ValueError, match=full("need 0 < warmup_steps < total_steps, got 0 and 10")):
        ours.warmup_cosine(opt, warmup_steps=0, total_steps=10)
    with pytest.raises(ValueError, match=full("a scheduler needs an implementations.fundamentals Optimizer, got object")):
        ours.StepLR(object(), step_size=2)
    with pytest.raises(ValueError, match=full("resuming a scheduler (last_epoch >= 0) needs optimizer.initial_lr to be set")):
        ours.ExponentialLR(SGD([np.zeros(2)], lr=0.1), gamma=0.9, last_epoch=3)
    with pytest.raises(ValueError, match=full("cycle_momentum needs an optimizer with momentum or betas")):
        ours.OneCycleLR(Optimizer([np.zeros(2)], lr=0.1), max_lr=0.5, total_steps=10)
    with pytest.raises(ValueError, match=full("SequentialLR expects at least one scheduler")):
        ours.SequentialLR(opt, [], [])
    first, second = ours.StepLR(opt, step_size=2), ours.StepLR(opt, step_size=3)
    with pytest.raises(ValueError, match=full("SequentialLR needs one milestone fewer than schedulers, "
                                              "got 2 schedulers and 2 milestones")):
        ours.SequentialLR(opt, [first, second], [2, 4])
    other = ours.StepLR(SGD([np.zeros(2)], lr=0.1), step_size=2)
    with pytest.raises(ValueError, match=full("SequentialLR expects all schedulers to belong to the same optimizer")):
        ours.SequentialLR(opt, [first, other], [2])


def test_one_cycle_lr_cannot_step_past_total_steps():
    opt, t_opt = pair()
    sched, t_sched = ours.OneCycleLR(opt, max_lr=0.5, total_steps=6), S.OneCycleLR(t_opt, max_lr=0.5, total_steps=6)
    assert_same_trajectory(opt, sched, t_opt, t_sched, 6)  # step total_steps itself is still defined
    with pytest.raises(ValueError, match="Tried to step 7 times"):
        t_sched.step()
    with pytest.raises(ValueError, match=full("tried to step 7 times; total_steps is 6")):
        sched.step()


@pytest.mark.parametrize("three_phase", [False, True])
def test_one_cycle_lr_reaches_its_peak_exactly(three_phase):
    """At the last warm-up step (pct_start * total_steps - 1 = 29) the lr is max_lr and the
    momentum base_momentum exactly, as in torch; three-phase returns to exactly max_lr/div_factor
    at step 58. (These values make end + (start - end) differ from start in the last bit.)"""
    opt, t_opt = pair()
    kwargs = dict(max_lr=0.87, total_steps=100, final_div_factor=7.0, three_phase=three_phase)
    sched, t_sched = ours.OneCycleLR(opt, **kwargs), S.OneCycleLR(t_opt, **kwargs)
    assert opt.initial_lr == t_opt.param_groups[0]["initial_lr"] == 0.87 / 25
    lrs = assert_same_trajectory(opt, sched, t_opt, t_sched, 100)
    assert lrs[29] == 0.87 and lrs[0] == pytest.approx(0.87 / 25, rel=1e-14)
    if three_phase:
        assert lrs[58] == 0.87 / 25
