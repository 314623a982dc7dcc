"""Wrong implementations of the framework skills (implementations/frameworks), each the original
with one realistic bug. Each runs with its target module's globals (torch, math, ...)."""
from __future__ import annotations

# ruff: noqa: F821  -- names resolve in the target module once planted

from assessments.harness.mutants import Mutant

AUTOGRAD = "implementations.frameworks.torch.autograd"
T = "assessments/pytorch/test_autograd_functions.py"
NEEDS = ("torch", AUTOGRAD)


def ste_backward_not_clipped(ctx, grad_output):
    (inside,) = ctx.saved_tensors
    return grad_output, None  # the clamp's derivative forgotten: gradient flows where x is outside [0, 1]


def logsumexp_forward_without_max(x, dim, keepdim):
    out = torch.log(torch.exp(x).sum(dim=dim, keepdim=True))  # exp(1e4) overflows
    return out if keepdim else out.squeeze(dim)


def sparsemax_backward_without_projection(ctx, grad_output):
    if torch.is_grad_enabled():
        raise RuntimeError("Sparsemax does not support double backward (create_graph=True)")
    (p,) = ctx.saved_tensors
    return grad_output * (p > 0), None  # the Jacobian's -1/|S| term is missing


MUTANTS = [
    Mutant("ste_gradient_not_clipped", "pytorch", "straight-through estimator passes gradient outside [0, 1]",
           f"{AUTOGRAD}:QuantizeSTE.backward", ste_backward_not_clipped,
           (f"{T}::test_straight_through_gradient_is_the_clipped_identity",), needs=NEEDS),
    Mutant("logsumexp_without_max", "pytorch", "logsumexp without subtracting the max (overflow)",
           f"{AUTOGRAD}:LogSumExp.forward", logsumexp_forward_without_max,
           (f"{T}::test_logsumexp_is_stable_where_the_naive_formula_overflows",), needs=NEEDS),
    Mutant("sparsemax_backward_without_projection", "pytorch", "sparsemax backward masks but does not centre",
           f"{AUTOGRAD}:Sparsemax.backward", sparsemax_backward_without_projection,
           (f"{T}::test_gradcheck_and_gradgradcheck",), needs=NEEDS),
]
