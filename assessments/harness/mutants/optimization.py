"""Wrong implementations of the NumPy fundamentals' training side (optimizers, penalties, clipping,
init, schedules in implementations/fundamentals), each the original with one realistic bug. Each runs
with its target module's globals. The model side (losses, activations, layers) is in fundamentals.py."""
from __future__ import annotations

# ruff: noqa: F821  -- names resolve in the target module once planted

from assessments.harness.mutants import Mutant

F = "implementations.fundamentals"
T = "assessments/fundamentals"
OPT_PARITY = f"{T}/test_torch_parity_optimizers.py::test_trajectory_matches_torch_on_random_gradients"
SCHED_PARITY = f"{T}/test_torch_parity_schedules.py::test_schedule_matches_torch_for_300_steps"
INIT_TESTS = (f"{T}/test_torch_parity_init.py::test_every_scheme_matches_torch_nn_init", f"{T}/test_initialization.py")


# ---------------------------------------------------------------- optimizers
def adam_step_without_bias_correction(self, grads):
    self._check(grads)
    self.steps += 1
    beta1, beta2 = self.betas
    for i, (p, g) in enumerate(zip(self.params, grads)):
        if self.weight_decay:
            if self.decoupled_weight_decay:
                p *= 1 - self.lr * self.weight_decay
            else:
                g = g + self.weight_decay * p
        m, v = self.exp_avg[i], self.exp_avg_sq[i]
        m += (1 - beta1) * (g - m)
        v *= beta2
        v += (1 - beta2) * g * g
        if self.amsgrad:
            np.maximum(self.max_exp_avg_sq[i], v, out=self.max_exp_avg_sq[i])
            v = self.max_exp_avg_sq[i]
        p -= self.lr * m / (np.sqrt(v) + self.eps)  # m and v are biased towards 0 early on


def adam_step_eps_inside_sqrt(self, grads):
    self._check(grads)
    self.steps += 1
    beta1, beta2 = self.betas
    step_size = self.lr / (1 - beta1**self.steps)
    bias_correction2_sqrt = (1 - beta2**self.steps) ** 0.5
    for i, (p, g) in enumerate(zip(self.params, grads)):
        if self.weight_decay:
            if self.decoupled_weight_decay:
                p *= 1 - self.lr * self.weight_decay
            else:
                g = g + self.weight_decay * p
        m, v = self.exp_avg[i], self.exp_avg_sq[i]
        m += (1 - beta1) * (g - m)
        v *= beta2
        v += (1 - beta2) * g * g
        if self.amsgrad:
            np.maximum(self.max_exp_avg_sq[i], v, out=self.max_exp_avg_sq[i])
            v = self.max_exp_avg_sq[i]
        p -= step_size * m / np.sqrt(v / bias_correction2_sqrt**2 + self.eps)


def sgd_step_dampening_on_first_step(self, grads):
    self._check(grads)
    for i, (p, g) in enumerate(zip(self.params, grads)):
        if self.weight_decay:
            g = g + self.weight_decay * p
        if self.momentum:
            buf = self.momentum_buffers[i]
            if buf is None:
                buf = self.momentum_buffers[i] = (1 - self.dampening) * np.array(g, copy=True)
            else:
                buf *= self.momentum
                buf += (1 - self.dampening) * g
            g = g + self.momentum * buf if self.nesterov else buf
        p -= self.lr * g


def sgd_step_nesterov_as_plain_momentum(self, grads):
    self._check(grads)
    for i, (p, g) in enumerate(zip(self.params, grads)):
        if self.weight_decay:
            g = g + self.weight_decay * p
        if self.momentum:
            buf = self.momentum_buffers[i]
            if buf is None:
                buf = self.momentum_buffers[i] = np.array(g, copy=True)
            else:
                buf *= self.momentum
                buf += (1 - self.dampening) * g
            g = buf
        p -= self.lr * g


# ---------------------------------------------------------------- penalties, clipping, init
def l1_penalty_wrong_sign(params, alpha):
    alpha = _check_alpha(alpha)
    value = alpha * sum(float(np.abs(p).sum()) for p in params)
    return value, [-alpha * np.sign(p) for p in params]


def l2_penalty_gradient_twice(params, alpha):
    alpha = _check_alpha(alpha)
    value = 0.5 * alpha * sum(float(np.sum(p * p)) for p in params)
    return value, [2 * alpha * p for p in params]  # d/dw of alpha/2 w^2 is alpha w


def clip_grad_norm_per_tensor(grads, max_norm, norm_type=2.0, error_if_nonfinite=False):
    if max_norm <= 0:
        raise ValueError(f"max_norm must be positive, got {max_norm}")
    norm = total_norm(grads, norm_type)
    for g in grads:  # each gradient clipped on its own norm: the update's direction changes
        own = float(np.linalg.norm(np.ravel(g), ord=float(norm_type)))
        g *= min(float(max_norm) / (own + 1e-6), 1.0)
    return norm


def xavier_uniform_fan_in_only(shape, rng, gain=1.0, dtype=None):
    fan_in, fan_out = _fans(shape)
    bound = gain * math.sqrt(3.0 / fan_in)
    return rng.uniform(-bound, bound, size=shape).astype(dtype)


def xavier_normal_fan_in_only(shape, rng, gain=1.0, dtype=None):
    fan_in, fan_out = _fans(shape)
    return rng.normal(0.0, gain * math.sqrt(1.0 / fan_in), size=shape).astype(dtype)


def kaiming_normal_fan_out(shape, rng, a=0.0, mode="fan_in", nonlinearity="leaky_relu", dtype=None):
    _, fan_out = _fans(shape)  # mode ignored: fan_out always
    std = calculate_gain(nonlinearity, a) / math.sqrt(fan_out)
    return rng.normal(0.0, std, size=shape).astype(dtype)


def calculate_gain_tanh_as_linear(nonlinearity, param=None):
    if nonlinearity in LINEAR_LIKE or nonlinearity == "tanh":  # tanh's gain is 5/3
        return 1.0
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"unknown nonlinearity {nonlinearity!r}")


# ---------------------------------------------------------------- schedules
def steplr_off_by_one(self):
    if (self.last_epoch + 1) % self.step_size != 0:
        return self.optimizer.lr
    return self.optimizer.lr * self.gamma


def cosine_ignores_eta_min_in_recursion(self):
    lr, t, T, eta_min = self.optimizer.lr, self.last_epoch, self.T_max, self.eta_min
    if self._is_initial:
        return lr
    if self._step_count == 1 and t > 0:
        return eta_min + (self.base_lr - eta_min) * (1 + math.cos(t * math.pi / T)) / 2
    if (t - 1 - T) % (2 * T) == 0:
        return lr + (self.base_lr - eta_min) * (1 - math.cos(math.pi / T)) / 2
    return (1 + math.cos(math.pi * t / T)) / (1 + math.cos(math.pi * (t - 1) / T)) * lr


def onecycle_momentum_same_direction(self, optimizer, value):
    value = self.momenta["max"] + self.momenta["base"] - value  # momentum rises with the lr
    if self.use_beta1:
        optimizer.betas = (value, *optimizer.betas[1:])
    else:
        optimizer.momentum = value


MUTANTS = [
    Mutant("adam_without_bias_correction", "fundamentals", "Adam divides neither moment by (1 - beta^t)",
           f"{F}.optimizers:Adam.step", adam_step_without_bias_correction, (OPT_PARITY,)),
    Mutant("adam_eps_inside_sqrt", "fundamentals", "Adam adds eps under the square root (sqrt(v_hat + eps))",
           f"{F}.optimizers:Adam.step", adam_step_eps_inside_sqrt, (OPT_PARITY,)),
    Mutant("adamw_decay_as_l2", "fundamentals", "AdamW adds weight decay to the gradient (L2) instead of decoupling it",
           f"{F}.optimizers:AdamW.decoupled_weight_decay", False, (OPT_PARITY,)),
    Mutant("sgd_dampening_on_first_step", "fundamentals",
           "SGD momentum dampens the first gradient (torch starts the buffer at g)",
           f"{F}.optimizers:SGD.step", sgd_step_dampening_on_first_step, (OPT_PARITY,)),
    Mutant("sgd_nesterov_as_plain_momentum", "fundamentals", "nesterov=True silently runs classical momentum",
           f"{F}.optimizers:SGD.step", sgd_step_nesterov_as_plain_momentum, (OPT_PARITY,)),
    Mutant("l1_gradient_wrong_sign", "fundamentals", "L1 subgradient -alpha*sign(w): pushes weights away from 0",
           f"{F}.regularization:l1_penalty", l1_penalty_wrong_sign,
           (f"{T}/test_regularization.py::test_penalty_gradient_matches_central_differences",)),
    Mutant("l2_gradient_doubled", "fundamentals", "L2 gradient 2*alpha*w for the value alpha/2 * w^2",
           f"{F}.regularization:l2_penalty", l2_penalty_gradient_twice,
           (f"{T}/test_regularization.py::test_penalty_gradient_matches_central_differences",)),
    Mutant("clip_grad_norm_per_tensor", "fundamentals", "clip_grad_norm_ clips each tensor by its own norm",
           f"{F}.clipping:clip_grad_norm_", clip_grad_norm_per_tensor,
           (f"{T}/test_torch_parity_optimizers.py::test_clip_grad_norm_matches_torch",)),
    Mutant("xavier_uniform_fan_in_only", "fundamentals", "Xavier-uniform bound from fan_in only",
           f"{F}.init:xavier_uniform", xavier_uniform_fan_in_only, INIT_TESTS),
    Mutant("xavier_normal_fan_in_only", "fundamentals", "Xavier-normal std from fan_in only",
           f"{F}.init:xavier_normal", xavier_normal_fan_in_only, INIT_TESTS),
    Mutant("kaiming_normal_fan_out", "fundamentals", "He-normal std from fan_out whatever the mode",
           f"{F}.init:kaiming_normal", kaiming_normal_fan_out, INIT_TESTS),
    Mutant("tanh_gain_one", "fundamentals", "calculate_gain('tanh') = 1 instead of 5/3",
           f"{F}.init:calculate_gain", calculate_gain_tanh_as_linear,
           (f"{T}/test_torch_parity_init.py::test_calculate_gain_matches_torch",) + INIT_TESTS),
    Mutant("steplr_off_by_one", "fundamentals", "StepLR decays one step early",
           f"{F}.schedules:StepLR.get_lr", steplr_off_by_one, (SCHED_PARITY,)),
    Mutant("cosine_ignores_eta_min", "fundamentals", "cosine annealing recursion forgets eta_min",
           f"{F}.schedules:CosineAnnealingLR.get_lr", cosine_ignores_eta_min_in_recursion, (SCHED_PARITY,)),
    Mutant("onecycle_momentum_not_inverted", "fundamentals", "OneCycle momentum moves with the lr, not against it",
           f"{F}.schedules:OneCycleLR._set_momentum", onecycle_momentum_same_direction, (SCHED_PARITY,)),
]
