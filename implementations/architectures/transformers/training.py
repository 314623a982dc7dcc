"""Training loops and metrics for the token models: classifiers and seq2seq (teacher forcing).

A seq2seq model here is any module with `model(src, tgt) -> logits (N, T, V)` and
`model.generate(src, max_new_tokens, bos_id) -> (N, max_new_tokens)` (the transformer and the
LSTM baseline both have them).

Both loops sample minibatches with their own seeded Generator and use AdamW with a linear
warm-up and cosine decay, so the same seed replays the same run.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["History", "warmup_cosine", "train_classifier", "classifier_accuracy", "train_seq2seq", "exact_match"]


@dataclass
class History:
    """Per-step training loss and periodic held-out metric (step, value)."""

    loss: list[float] = field(default_factory=list)
    eval_steps: list[int] = field(default_factory=list)
    eval_metric: list[float] = field(default_factory=list)


def warmup_cosine(optimizer: torch.optim.Optimizer, steps: int, warmup: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up over `warmup` steps, then cosine decay to 0 at `steps`."""
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, steps - warmup))))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _check_steps(steps: int, batch_size: int, n: int) -> None:
    if steps <= 0 or batch_size <= 0:
        raise ValueError(f"steps and batch_size must be positive, got {steps} and {batch_size}")
    if n == 0:
        raise ValueError("no training examples")


@torch.no_grad()
def classifier_accuracy(model: nn.Module, x: Tensor, y: Tensor, batch_size: int = 512) -> float:
    """Fraction of argmax(model(x)) == y; the model is put in eval mode."""
    model.eval()
    correct = sum((model(x[i:i + batch_size]).argmax(-1) == y[i:i + batch_size]).sum().item()
                  for i in range(0, len(x), batch_size))
    return correct / len(x)


def train_classifier(model: nn.Module, x: Tensor, y: Tensor, steps: int, batch_size: int = 64, lr: float = 1e-3,
                     weight_decay: float = 0.01, warmup: int = 50, seed: int = 0, eval_every: int = 0,
                     x_val: Tensor | None = None, y_val: Tensor | None = None) -> History:
    """Cross-entropy training of `model` (x (N, T) -> logits (N, C)) for `steps` minibatches."""
    _check_steps(steps, batch_size, len(x))
    if len(x) != len(y):
        raise ValueError(f"x has {len(x)} rows but y has {len(y)}")
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    sched = warmup_cosine(opt, steps, warmup)
    history = History()
    for step in range(steps):
        model.train()
        idx = torch.randint(0, len(x), (batch_size,), generator=g)
        loss = F.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        history.loss.append(loss.item())
        if eval_every and x_val is not None and ((step + 1) % eval_every == 0 or step + 1 == steps):
            history.eval_steps.append(step + 1)
            history.eval_metric.append(classifier_accuracy(model, x_val, y_val))
    return history


@torch.no_grad()
def exact_match(model: nn.Module, src: Tensor, tgt_out: Tensor, bos_id: int, batch_size: int = 512
                ) -> tuple[float, float]:
    """Greedy-decode every source; (fraction of sequences exactly right, fraction of tokens right)."""
    model.eval()
    preds = torch.cat([model.generate(src[i:i + batch_size], tgt_out.shape[1], bos_id)
                       for i in range(0, len(src), batch_size)])
    right = preds == tgt_out
    return right.all(dim=1).float().mean().item(), right.float().mean().item()


def train_seq2seq(model: nn.Module, src: Tensor, tgt_in: Tensor, tgt_out: Tensor, steps: int, batch_size: int = 64,
                  lr: float = 1e-3, weight_decay: float = 0.01, warmup: int = 50, seed: int = 0,
                  eval_every: int = 0, val: tuple[Tensor, Tensor] | None = None, bos_id: int = 1,
                  max_grad_norm: float = 1.0) -> History:
    """Teacher-forced cross-entropy for `steps` minibatches; `val` = (src, tgt_out) for exact match."""
    _check_steps(steps, batch_size, len(src))
    if not len(src) == len(tgt_in) == len(tgt_out):
        raise ValueError(f"src, tgt_in, tgt_out lengths differ: {len(src)}, {len(tgt_in)}, {len(tgt_out)}")
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    sched = warmup_cosine(opt, steps, warmup)
    history = History()
    for step in range(steps):
        model.train()
        idx = torch.randint(0, len(src), (batch_size,), generator=g)
        logits = model(src[idx], tgt_in[idx])
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt_out[idx].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        # Clipping keeps the LSTM baseline stable at the shared learning rate.
        nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
        opt.step()
        sched.step()
        history.loss.append(loss.item())
        if eval_every and val is not None and ((step + 1) % eval_every == 0 or step + 1 == steps):
            history.eval_steps.append(step + 1)
            history.eval_metric.append(exact_match(model, val[0], val[1], bos_id)[0])
    return history
