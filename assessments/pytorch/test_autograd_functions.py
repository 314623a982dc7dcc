"""Custom autograd Functions (requirement pytorch.2): gradcheck and gradgradcheck in float64,
equality with autograd of the plain formula, the memory the activations save (measured with
saved_tensors_hooks), a stable logsumexp where the naive formula overflows, sparsemax's
clear refusal of double backward, and a quantised-activation net that trains only thanks to
the straight-through estimator."""
from __future__ import annotations

import pytest
import torch
from torch.autograd import gradcheck, gradgradcheck

import implementations.frameworks.torch.autograd as autograd_module
from assessments.forbidden import TwinCalled, forbid
from implementations.data.images import digits_split
from implementations.frameworks.torch.autograd import (GELU, LogSumExp, QuantizeSTE, SiLU, Sparsemax,
                                                       gelu, logsumexp, quantize_ste, saved_tensor_bytes,
                                                       silu, sparsemax)
from implementations.frameworks.torch.quantized_mlp import train_quantized_mlp
from implementations.viz.bars import plot_bars

pytestmark = [pytest.mark.torch, pytest.mark.usefixtures("single_thread")]
F64 = torch.float64

# name -> (custom op, the plain formula autograd differentiates, supports double backward)
OPS = {
    "silu": (silu, SiLU.forward, True),
    "gelu": (gelu, GELU.forward, True),
    "logsumexp_dim1": (lambda x: logsumexp(x, 1), lambda x: LogSumExp.forward(x, 1, False), True),
    "logsumexp_dim0_keepdim": (lambda x: logsumexp(x, 0, True), lambda x: LogSumExp.forward(x, 0, True), True),
    "sparsemax_dim1": (lambda x: sparsemax(x, 1), lambda x: Sparsemax.forward(x, 1), False),
    "sparsemax_dim0": (lambda x: sparsemax(x, 0), lambda x: Sparsemax.forward(x, 0), False),
}


def _inputs(seed: int = 0, shape=(5, 7)) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (2 * torch.randn(*shape, generator=g, dtype=F64)).requires_grad_()


def _jacobian_error(op, x: torch.Tensor, eps: float = 1e-6) -> float:
    """Max |J_backward - J_central_differences| (CS231n's check, whole Jacobian, float64)."""
    analytic = torch.autograd.functional.jacobian(op, x).reshape(-1, x.numel())
    flat = x.detach().reshape(-1)
    numeric = torch.empty_like(analytic)
    for j in range(flat.numel()):
        step = torch.zeros_like(flat)
        step[j] = eps
        plus, minus = op((flat + step).reshape(x.shape)), op((flat - step).reshape(x.shape))
        numeric[:, j] = ((plus - minus) / (2 * eps)).reshape(-1)
    return (analytic - numeric).abs().max().item()


@pytest.mark.parametrize("name", OPS)
def test_gradcheck_and_gradgradcheck(name, evidence, experiment):
    """Central differences in float64 agree with backward; double backward too, or it raises
    clearly (sparsemax)."""
    op, _, double = OPS[name]
    x = _inputs()
    err = _jacobian_error(op, x)
    tol = experiment("autograd_parity")["max_jacobian_error"]
    evidence.metric("max_abs_jacobian_error_vs_central_differences", err, threshold=tol, direction="lower", key=True)
    assert err <= tol
    assert gradcheck(op, (x,), eps=1e-6, atol=1e-7, rtol=1e-5)
    if double:
        assert gradgradcheck(op, (x,), eps=1e-6, atol=1e-7, rtol=1e-5)
    else:
        with pytest.raises(RuntimeError, match="does not support double backward"):
            gradgradcheck(op, (x,))
    evidence.text(f"{name}: torch.autograd.gradcheck passed; gradgradcheck "
                  f"{'passed' if double else 'raises the documented RuntimeError (no double backward)'}.")


@pytest.mark.parametrize("name", OPS)
def test_equals_autograd_of_the_plain_formula(name, evidence, experiment):
    """Forward and backward (for a random upstream gradient) equal autograd of the same formula."""
    tol = experiment("autograd_parity")["max_abs_error"]
    op, plain, _ = OPS[name]
    worst = 0.0
    for seed in range(5):
        x = _inputs(seed, (16, 9))
        out = op(x)
        g = torch.randn(out.shape, generator=torch.Generator().manual_seed(100 + seed), dtype=F64)
        (dx,) = torch.autograd.grad(out, x, g)
        ref = plain(x)
        (dx_ref,) = torch.autograd.grad(ref, x, g)
        worst = max(worst, (out - ref).abs().max().item(), (dx - dx_ref).abs().max().item())
    evidence.metric("max_abs_error_vs_plain_autograd", worst, threshold=tol, direction="lower", key=True)
    assert worst <= tol


def test_references_outside_our_formulas():
    """Independent references: torch's own silu, gelu, logsumexp; sparsemax's defining
    properties (on the simplex, and the KKT conditions of the Euclidean projection)."""
    x = _inputs(3, (64, 10))
    torch.testing.assert_close(silu(x), torch.nn.functional.silu(x), rtol=0, atol=1e-12)
    torch.testing.assert_close(gelu(x), torch.nn.functional.gelu(x), rtol=0, atol=1e-12)
    torch.testing.assert_close(logsumexp(x, 1), torch.logsumexp(x, 1), rtol=0, atol=1e-12)
    p = sparsemax(x, 1)
    assert (p >= 0).all() and torch.allclose(p.sum(1), torch.ones(64, dtype=F64), atol=1e-12)
    # KKT: z_i - p_i = tau on the support, z_i <= tau off it
    tau = (x - p)[p > 0]
    rows = torch.nonzero(p > 0)[:, 0]
    for r in range(64):
        t = tau[rows == r]
        assert torch.allclose(t, t[0].expand_as(t), atol=1e-12)
        assert (x[r][p[r] == 0] <= t[0] + 1e-12).all()
    assert (p == 0).any(), "sparsemax should give exact zeros on spread-out logits"


def test_logsumexp_is_stable_where_the_naive_formula_overflows(evidence):
    x = torch.tensor([[1e4, 1e4 - 1.0, -1e4], [-1e4, -1e4, -1e4]], dtype=torch.float32, requires_grad=True)
    naive = torch.log(torch.exp(x).sum(1))
    assert not torch.isfinite(naive).all(), "the test input must overflow the naive formula"
    out = logsumexp(x, 1)
    expected = torch.tensor([1e4 + torch.log1p(torch.exp(torch.tensor(-1.0))).item(),
                             -1e4 + torch.log(torch.tensor(3.0)).item()])
    torch.testing.assert_close(out.detach(), expected, rtol=1e-6, atol=1e-3)
    out.sum().backward()
    torch.testing.assert_close(x.grad, torch.softmax(x.detach(), 1), rtol=1e-6, atol=1e-7)
    assert torch.isfinite(x.grad).all()
    evidence.metric("max_abs_error_at_1e4", (out.detach() - expected).abs().max().item(), unit="nats")


@pytest.mark.parametrize("name", ["silu", "gelu"])
def test_memory_saved_for_backward(name, evidence, experiment):
    """saved_tensors_hooks count the bytes autograd keeps: only x for ours."""
    cfg = experiment("autograd_parity")
    op, plain, _ = OPS[name]
    x = torch.randn(cfg["n_elements"], requires_grad=True)
    ours, theirs = saved_tensor_bytes(op, x), saved_tensor_bytes(plain, x)
    ratio = ours / theirs
    evidence.metric(f"{name}_saved_bytes", ours, unit="B")
    evidence.metric(f"{name}_plain_formula_saved_bytes", theirs, unit="B")
    evidence.metric("saved_bytes_ratio", ratio, threshold=cfg["max_saved_ratio"], direction="lower", key=True)
    evidence.figure("saved_for_backward", plot_bars(
        {f"custom {name}": ours / 2**20, "plain formula": theirs / 2**20},
        f"Memory kept for backward, {name} of {x.numel():,} floats", "MiB"))
    assert ours == x.numel() * x.element_size(), "the custom op should save exactly its input"
    assert ratio <= cfg["max_saved_ratio"]


def test_straight_through_gradient_is_the_clipped_identity():
    x = torch.linspace(-0.5, 1.5, 41, requires_grad=True)
    q = quantize_ste(x, 4)
    torch.testing.assert_close(q * 3, torch.round(q * 3), rtol=0, atol=1e-6)  # 4 levels
    assert torch.unique(q).numel() == 4 and q.min() == 0 and q.max() == 1
    g = torch.randn(41)
    q.backward(g)
    torch.testing.assert_close(x.grad, g * ((x >= 0) & (x <= 1)), rtol=0, atol=0)
    with pytest.raises(ValueError, match="levels"):
        QuantizeSTE.apply(x, 1)


def test_ste_trains_a_binary_activation_net(evidence, experiment, seed):
    """Binary hidden activations: with the STE the net learns almost as well as the float
    one; with rounding's true (zero) gradient the hidden layers never move."""
    cfg = experiment("ste_experiment")
    s = digits_split(test_size=cfg["test_size"], seed=seed)
    X, Xt = (torch.tensor(a, dtype=torch.float32) for a in (s.X_train, s.X_test))
    y, yt = torch.tensor(s.y_train), torch.tensor(s.y_test)
    kw = dict(levels=cfg["levels"], hidden=cfg["hidden"], epochs=cfg["epochs"],
              batch_size=cfg["batch_size"], lr=cfg["lr"], seed=seed)
    results = {mode: train_quantized_mlp(X, y, Xt, yt, mode, **kw) for mode in ("float", "ste", "round")}
    acc = {mode: a for mode, (a, _) in results.items()}
    torch.manual_seed(seed)
    init = train_quantized_mlp(X[:1], y[:1], Xt[:1], yt[:1], "round", **(kw | {"epochs": 0}))[1]
    frozen = torch.equal(results["round"][1].hidden[0].weight, init.hidden[0].weight)
    moved = not torch.equal(results["ste"][1].hidden[0].weight, init.hidden[0].weight)
    for mode, a in acc.items():
        evidence.metric(f"test_accuracy_{mode}", a, key=mode == "ste",
                        threshold=cfg["min_ste_accuracy"] if mode == "ste" else None,
                        direction="higher" if mode == "ste" else "none")
    evidence.figure("binary_activation_accuracy", plot_bars(
        {"float": acc["float"], "binary + STE": acc["ste"], "binary, true gradient": acc["round"]},
        "Digits MLP with binary hidden activations", "test accuracy",
        lines={"STE floor": cfg["min_ste_accuracy"]}, ylim=(0.0, 1.0)))
    evidence.table("binary_activation_net", [
        {"training": "float activations (baseline)", "test_accuracy": acc["float"]},
        {"training": "binary, straight-through estimator", "test_accuracy": acc["ste"]},
        {"training": "binary, true gradient of round (zero)", "test_accuracy": acc["round"]}])
    evidence.text("Rounding has zero derivative almost everywhere: with autograd's true gradient "
                  "the hidden layers keep their initial weights and only the read-out learns "
                  "(random binary features). The straight-through estimator lets them learn.")
    assert frozen and moved
    assert acc["ste"] >= cfg["min_ste_accuracy"]
    assert acc["ste"] - acc["round"] >= cfg["min_margin_over_round"]
    assert acc["float"] - acc["ste"] <= cfg["max_gap_to_float"]


TWINS = ["torch.nn.functional.silu", "torch.nn.functional.gelu", "torch.logsumexp", "torch.Tensor.logsumexp",
         "torch.special.logsumexp", "torch.nn.SiLU.forward", "torch.nn.GELU.forward"]


def test_ops_are_ours_not_torchs_twins():
    """With torch's own silu, gelu and logsumexp patched to raise, ours still run forward and
    backward and give the same numbers (parity alone would pass a wrapper around torch's)."""
    x = _inputs(7, (6, 5))
    ops = {name: OPS[name][0] for name in ("silu", "gelu", "logsumexp_dim1")}
    before = {}
    for name, op in ops.items():
        before[name] = (op(x), torch.autograd.grad(op(x).sum(), x)[0])
    with forbid(TWINS, [autograd_module]):
        with pytest.raises(TwinCalled):
            torch.nn.functional.silu(x)
        for name, op in ops.items():
            out = op(x)
            (dx,) = torch.autograd.grad(out.sum(), x)
            assert torch.equal(out, before[name][0]) and torch.equal(dx, before[name][1]), name
