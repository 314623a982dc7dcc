"""Learning-rate schedules, torch.optim.lr_scheduler's twins for one parameter group.

    opt = SGD(model.parameters(), lr=0.1)
    sched = CosineAnnealingLR(opt, T_max=100)     # sets opt.lr at construction (step 0)
    for step in range(100):
        opt.step(grads); sched.step()            # after the optimizer, as in torch

The mechanics copy torch's exactly, so the learning rate agrees at every step: construction
performs an initial step (`last_epoch` -1 -> 0), most schedules update the current lr
recursively (StepLR multiplies by gamma at multiples of step_size, CosineAnnealingLR uses the
SGDR ratio recursion), and SequentialLR hands over to the next schedule at each milestone by
restarting it at its closed form for epoch 0. OneCycleLR also cycles momentum (SGD's
`momentum`, Adam's beta1) inversely to the learning rate. Linear warmup is LinearLR followed
by another schedule in a SequentialLR (`warmup_cosine`).
"""
from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Sequence

from implementations.fundamentals.optimizers import Optimizer


class LRScheduler:
    """Base: holds the optimizer, base_lr and last_epoch; subclasses define get_lr()."""

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1) -> None:
        if not isinstance(optimizer, Optimizer):
            raise ValueError(f"a scheduler needs an implementations.fundamentals Optimizer, got {type(optimizer).__name__}")
        self.optimizer = optimizer
        if last_epoch == -1:
            if optimizer.initial_lr is None:
                optimizer.initial_lr = optimizer.lr
        elif optimizer.initial_lr is None:
            raise ValueError("resuming a scheduler (last_epoch >= 0) needs optimizer.initial_lr to be set")
        self.base_lr = optimizer.initial_lr
        self.last_epoch = last_epoch
        self._is_initial = False
        self._initial_step()

    def _initial_step(self) -> None:
        self._step_count = 0
        self._is_initial = True
        try:
            self.step()
        finally:
            self._is_initial = False

    def get_lr(self) -> float:
        raise NotImplementedError

    def step(self) -> None:
        """Advance one step (an epoch or a batch, as the caller counts) and set optimizer.lr."""
        self._step_count += 1
        self._update_lr()

    def _update_lr(self, epoch: int | None = None) -> None:
        if epoch is None:
            self.last_epoch += 1
            lr = self.get_lr()
        else:
            self.last_epoch = epoch
            closed_form = getattr(self, "_get_closed_form_lr", None)
            lr = closed_form() if closed_form else self.get_lr()
        self.optimizer.lr = lr
        self._last_lr = lr

    def get_last_lr(self) -> float:
        return self._last_lr


class StepLR(LRScheduler):
    """lr = base_lr * gamma ** (epoch // step_size)."""

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1) -> None:
        if step_size < 1:
            raise ValueError(f"step_size must be a positive integer, got {step_size}")
        self.step_size, self.gamma = step_size, gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> float:
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return self.optimizer.lr
        return self.optimizer.lr * self.gamma

    def _get_closed_form_lr(self) -> float:
        return self.base_lr * self.gamma ** (self.last_epoch // self.step_size)


class ExponentialLR(LRScheduler):
    """lr = base_lr * gamma ** epoch."""

    def __init__(self, optimizer: Optimizer, gamma: float, last_epoch: int = -1) -> None:
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> float:
        return self.optimizer.lr if self._is_initial else self.optimizer.lr * self.gamma

    def _get_closed_form_lr(self) -> float:
        return self.base_lr * self.gamma**self.last_epoch


class LinearLR(LRScheduler):
    """Multiply base_lr by a factor going linearly from start_factor to end_factor over total_iters
    steps, then hold it: with start_factor < 1 and end_factor = 1 this is linear warmup."""

    def __init__(self, optimizer: Optimizer, start_factor: float = 1.0 / 3, end_factor: float = 1.0,
                 total_iters: int = 5, last_epoch: int = -1) -> None:
        if not 0 < start_factor <= 1:
            raise ValueError(f"start_factor must be in (0, 1], got {start_factor}")
        if not 0 <= end_factor <= 1:
            raise ValueError(f"end_factor must be in [0, 1], got {end_factor}")
        self.start_factor, self.end_factor, self.total_iters = start_factor, end_factor, total_iters
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> float:
        lr = self.optimizer.lr
        if self.last_epoch == 0:
            return lr * self.start_factor
        if self._is_initial or self.last_epoch > self.total_iters:
            return lr
        delta = self.end_factor - self.start_factor
        return lr * (1.0 + delta / (self.total_iters * self.start_factor + (self.last_epoch - 1) * delta))

    def _get_closed_form_lr(self) -> float:
        frac = min(self.total_iters, self.last_epoch) / self.total_iters
        return self.base_lr * (self.start_factor + (self.end_factor - self.start_factor) * frac)


class CosineAnnealingLR(LRScheduler):
    """lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2, by torch's recursion
    (which keeps following the cosine past T_max rather than restarting)."""

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1) -> None:
        if T_max < 1:
            raise ValueError(f"T_max must be a positive integer, got {T_max}")
        self.T_max, self.eta_min = T_max, eta_min
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> float:
        lr, t, T, eta_min = self.optimizer.lr, self.last_epoch, self.T_max, self.eta_min
        if self._is_initial:
            return lr
        if self._step_count == 1 and t > 0:
            return eta_min + (self.base_lr - eta_min) * (1 + math.cos(t * math.pi / T)) / 2
        if (t - 1 - T) % (2 * T) == 0:  # leaving the trough: the ratio below would be 0/0
            return lr + (self.base_lr - eta_min) * (1 - math.cos(math.pi / T)) / 2
        return (1 + math.cos(math.pi * t / T)) / (1 + math.cos(math.pi * (t - 1) / T)) * (lr - eta_min) + eta_min

    def _get_closed_form_lr(self) -> float:
        return self.eta_min + (self.base_lr - self.eta_min) * (1 + math.cos(math.pi * self.last_epoch / self.T_max)) / 2


class SequentialLR(LRScheduler):
    """Run schedulers one after another, switching at the milestones (torch.optim.lr_scheduler.SequentialLR)."""

    def __init__(self, optimizer: Optimizer, schedulers: Sequence[LRScheduler], milestones: Sequence[int],
                 last_epoch: int = -1) -> None:
        if not schedulers:
            raise ValueError("SequentialLR expects at least one scheduler")
        if len(milestones) != len(schedulers) - 1:
            raise ValueError(f"SequentialLR needs one milestone fewer than schedulers, got "
                             f"{len(schedulers)} schedulers and {len(milestones)} milestones")
        if any(s.optimizer is not optimizer for s in schedulers):
            raise ValueError("SequentialLR expects all schedulers to belong to the same optimizer")
        self._schedulers, self._milestones = list(schedulers), list(milestones)
        self.optimizer, self.last_epoch = optimizer, last_epoch + 1
        self.base_lr = optimizer.initial_lr
        # Undo the initial step each scheduler took at construction; restart the one for step 0.
        optimizer.lr = optimizer.initial_lr
        _undo_initial_steps(self)
        idx = bisect_right(self._milestones, 0)
        self._schedulers[idx]._initial_step()
        self._last_lr = self._schedulers[idx].get_last_lr()

    def step(self) -> None:
        self.last_epoch += 1
        idx = bisect_right(self._milestones, self.last_epoch)
        scheduler = self._schedulers[idx]
        if idx > 0 and self._milestones[idx - 1] == self.last_epoch:
            scheduler._update_lr(0)
        else:
            scheduler.step()
        self._last_lr = scheduler.get_last_lr()


def _undo_initial_steps(scheduler: LRScheduler) -> None:
    """torch's SequentialLR.recursive_undo: a nested SequentialLR passes the undo to its own
    schedulers (its own last_epoch is left as is, as torch leaves it)."""
    if isinstance(scheduler, SequentialLR):
        for inner in scheduler._schedulers:
            _undo_initial_steps(inner)
    else:
        scheduler.last_epoch -= 1


def warmup_cosine(optimizer: Optimizer, warmup_steps: int, total_steps: int, start_factor: float = 0.1,
                  eta_min: float = 0.0) -> SequentialLR:
    """Linear warmup from start_factor * lr to lr over warmup_steps, then cosine annealing to eta_min."""
    if not 0 < warmup_steps < total_steps:
        raise ValueError(f"need 0 < warmup_steps < total_steps, got {warmup_steps} and {total_steps}")
    warmup = LinearLR(optimizer, start_factor=start_factor, total_iters=warmup_steps)
    cosine = CosineAnnealingLR(optimizer, T_max=total_steps - warmup_steps, eta_min=eta_min)
    return SequentialLR(optimizer, [warmup, cosine], milestones=[warmup_steps])


class OneCycleLR(LRScheduler):
    """The 1cycle policy (Smith & Topsoe 2017): lr rises from max_lr/div_factor to max_lr over
    pct_start of total_steps, then anneals to max_lr/(div_factor*final_div_factor); momentum
    moves the opposite way between max_momentum and base_momentum. Step it every batch."""

    def __init__(self, optimizer: Optimizer, max_lr: float, total_steps: int | None = None,
                 epochs: int | None = None, steps_per_epoch: int | None = None, pct_start: float = 0.3,
                 anneal_strategy: str = "cos", cycle_momentum: bool = True, base_momentum: float = 0.85,
                 max_momentum: float = 0.95, div_factor: float = 25.0, final_div_factor: float = 1e4,
                 three_phase: bool = False, last_epoch: int = -1) -> None:
        if total_steps is None:
            if epochs is None or steps_per_epoch is None or epochs < 1 or steps_per_epoch < 1:
                raise ValueError("OneCycleLR needs total_steps, or positive epochs and steps_per_epoch")
            total_steps = epochs * steps_per_epoch
        if total_steps < 1:
            raise ValueError(f"total_steps must be a positive integer, got {total_steps}")
        if not 0.0 <= pct_start <= 1.0:
            raise ValueError(f"pct_start must be in [0, 1], got {pct_start}")
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"anneal_strategy must be 'cos' or 'linear', got {anneal_strategy!r}")
        self.total_steps, self.anneal_strategy = total_steps, anneal_strategy
        initial_lr = max_lr / div_factor
        self.lrs = {"initial": initial_lr, "max": max_lr, "min": initial_lr / final_div_factor}
        self.momenta = {"max": max_momentum, "base": base_momentum}
        p = float(pct_start * total_steps)
        # (end_step, lr from, lr to, momentum from, momentum to), as torch's _schedule_phases.
        if three_phase:
            self.phases = [(p - 1, "initial", "max", "max", "base"), (2 * p - 2, "max", "initial", "base", "max"),
                           (total_steps - 1, "initial", "min", "max", "max")]
        else:
            self.phases = [(p - 1, "initial", "max", "max", "base"), (total_steps - 1, "max", "min", "base", "max")]
        self.cycle_momentum = cycle_momentum
        if cycle_momentum:
            self.use_beta1 = hasattr(optimizer, "betas")
            if not self.use_beta1 and not hasattr(optimizer, "momentum"):
                raise ValueError("cycle_momentum needs an optimizer with momentum or betas")
            self._set_momentum(optimizer, max_momentum)
        if last_epoch == -1:
            optimizer.initial_lr = initial_lr
        super().__init__(optimizer, last_epoch)

    def _set_momentum(self, optimizer: Optimizer, value: float) -> None:
        if self.use_beta1:
            optimizer.betas = (value, *optimizer.betas[1:])
        else:
            optimizer.momentum = value

    def _anneal(self, start: float, end: float, pct: float) -> float:
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def get_lr(self) -> float:
        step = self.last_epoch
        if step > self.total_steps:
            raise ValueError(f"tried to step {step} times; total_steps is {self.total_steps}")
        start = 0.0
        for phase in self.phases:  # the phase holding this step (the last one also covers step == total_steps)
            if step <= phase[0] or phase is self.phases[-1]:
                break
            start = phase[0]
        end, lr_from, lr_to, m_from, m_to = phase
        pct = (step - start) / (end - start)
        if self.cycle_momentum:
            self._set_momentum(self.optimizer, self._anneal(self.momenta[m_from], self.momenta[m_to], pct))
        return self._anneal(self.lrs[lr_from], self.lrs[lr_to], pct)
