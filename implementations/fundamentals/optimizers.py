"""Optimizers with torch.optim's names, defaults and update rules (single parameter group).

`params` is a list of ndarrays updated in place; `step(grads)` takes the parallel list of
gradients (e.g. `MLP.parameters()` / `MLP.gradients()`). Hyperparameters are plain attributes
(`lr`, `momentum`, `betas`) read at every step, so schedulers (schedules.py) can change them.

- SGD: weight decay, momentum with dampening, Nesterov (torch.optim.SGD).
- Adam: bias-corrected first and second moments, optional AMSGrad; weight_decay is L2 added
  to the gradient (torch.optim.Adam).
- AdamW: Adam with decoupled weight decay, p <- p * (1 - lr * weight_decay) before the Adam
  step (Loshchilov & Hutter 2019; torch.optim.AdamW).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class Optimizer:
    def __init__(self, params: Sequence[np.ndarray], lr: float) -> None:
        self.params = list(params)
        if not self.params:
            raise ValueError("optimizer got an empty parameter list")
        if lr < 0:
            raise ValueError(f"learning rate must be >= 0, got {lr}")
        self.lr = lr
        self.initial_lr: float | None = None  # set by the first scheduler attached (schedules.py)

    def _check(self, grads: Sequence[np.ndarray]) -> None:
        if len(grads) != len(self.params):
            raise ValueError(f"step() got {len(grads)} gradients for {len(self.params)} parameters")
        for i, (p, g) in enumerate(zip(self.params, grads)):
            if p.shape != g.shape:
                raise ValueError(f"gradient {i} has shape {g.shape}, parameter has {p.shape}")

    def step(self, grads: Sequence[np.ndarray]) -> None:
        raise NotImplementedError


class SGD(Optimizer):
    """torch.optim.SGD: weight decay, momentum with dampening, Nesterov."""

    def __init__(self, params: Sequence[np.ndarray], lr: float, momentum: float = 0.0,
                 dampening: float = 0.0, nesterov: bool = False, weight_decay: float = 0.0) -> None:
        super().__init__(params, lr)
        if momentum < 0 or weight_decay < 0:
            raise ValueError(f"momentum and weight_decay must be >= 0, got momentum={momentum}, weight_decay={weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        self.momentum, self.dampening, self.nesterov = momentum, dampening, nesterov
        self.weight_decay = weight_decay
        self.momentum_buffers: list[np.ndarray | None] = [None] * len(self.params)

    def step(self, grads: Sequence[np.ndarray]) -> None:
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
                g = g + self.momentum * buf if self.nesterov else buf
            p -= self.lr * g


class Adam(Optimizer):
    """torch.optim.Adam (Kingma & Ba 2015), with weight_decay as L2 added to the gradient."""

    decoupled_weight_decay = False

    def __init__(self, params: Sequence[np.ndarray], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, amsgrad: bool = False) -> None:
        super().__init__(params, lr)
        if not (0.0 <= betas[0] < 1.0 and 0.0 <= betas[1] < 1.0):
            raise ValueError(f"betas must lie in [0, 1), got {betas}")
        if eps < 0 or weight_decay < 0:
            raise ValueError(f"eps and weight_decay must be >= 0, got eps={eps}, weight_decay={weight_decay}")
        self.betas, self.eps, self.weight_decay, self.amsgrad = tuple(betas), eps, weight_decay, amsgrad
        self.steps = 0
        self.exp_avg = [np.zeros_like(p) for p in self.params]
        self.exp_avg_sq = [np.zeros_like(p) for p in self.params]
        self.max_exp_avg_sq = [np.zeros_like(p) for p in self.params] if amsgrad else []

    def step(self, grads: Sequence[np.ndarray]) -> None:
        self._check(grads)
        self.steps += 1
        beta1, beta2 = self.betas
        # Bias corrections use the current betas, so a scheduler cycling beta1 stays exact.
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
            p -= step_size * m / (np.sqrt(v) / bias_correction2_sqrt + self.eps)


class AdamW(Adam):
    """torch.optim.AdamW: Adam with decoupled weight decay (default 1e-2)."""

    decoupled_weight_decay = True

    def __init__(self, params: Sequence[np.ndarray], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2, amsgrad: bool = False) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad)
