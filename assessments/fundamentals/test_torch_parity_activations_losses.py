"""Activations, losses and weight penalties vs torch autograd, float64 (requirements actloss.1, actloss.3).

Every value and every gradient must agree within parity_tol (parity_error: absolute below 1,
relative above), on ordinary inputs and on logits of magnitude 1e4. The focal loss has no
torch module: its reference is the formula written below in torch, differentiated by autograd.
"""
import numpy as np
import pytest

from implementations.fundamentals.activations import GELU, LeakyReLU, ReLU, Sigmoid, Swish, Tanh
from implementations.fundamentals.losses import BCEWithLogitsLoss, CrossEntropyLoss, FocalLoss, MSELoss
from implementations.fundamentals.regularization import l1_penalty, l2_penalty

from ._helpers import parity_error, to_torch

torch = pytest.importorskip("torch", reason="the torch reference is not installed in this environment")
pytestmark = [pytest.mark.torch, pytest.mark.usefixtures("single_thread")]
F = torch.nn.functional

ACTIVATIONS = {
    "relu": (ReLU, F.relu),
    "leaky_relu": (lambda: LeakyReLU(0.01), lambda t: F.leaky_relu(t, 0.01)),
    "leaky_relu_0.2": (lambda: LeakyReLU(0.2), lambda t: F.leaky_relu(t, 0.2)),
    "sigmoid": (Sigmoid, torch.sigmoid),
    "tanh": (Tanh, torch.tanh),
    "swish": (Swish, F.silu),
    # torch has no Swish with beta != 1: the reference is the formula itself.
    "swish_beta1.5": (lambda: Swish(beta=1.5), lambda t: t * torch.sigmoid(1.5 * t)),
    "gelu": (GELU, F.gelu),
    "gelu_tanh": (lambda: GELU("tanh"), lambda t: F.gelu(t, approximate="tanh")),
}


def activation_inputs() -> np.ndarray:
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(scale=3.0, size=500), np.linspace(-40, 40, 801),
                        [-1e4, -700.0, -50.0, 50.0, 700.0, 1e4]])
    return x[x != 0.0]  # 0 is a kink for the ReLUs, where subgradient conventions may differ


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_activation_value_and_gradient_match_torch(name, evidence, experiment):
    tol = experiment("loss_parity")["parity_tol"]
    make, reference = ACTIVATIONS[name]
    x = activation_inputs()
    dout = np.random.default_rng(1).normal(size=x.shape)
    layer = make()
    out = layer.forward(x)
    dx = layer.backward(dout)
    tx = to_torch(x, requires_grad=True)
    t_out = reference(tx)
    t_out.backward(to_torch(dout))
    value_err, grad_err = parity_error(out, t_out.detach().numpy()), parity_error(dx, tx.grad.numpy())
    evidence.metric("value_parity_error", value_err, threshold=tol, direction="lower")
    evidence.metric("gradient_parity_error", grad_err, threshold=tol, direction="lower", key=True)
    assert value_err <= tol and grad_err <= tol, f"{name}: value {value_err:.1e}, gradient {grad_err:.1e}"


def torch_focal(logits, target, gamma: float, alpha):
    """Lin et al.'s focal loss written in torch (mean reduction), the reference for FocalLoss."""
    if logits.ndim == 1:
        y = target.to(logits.dtype)
        logpt = -F.binary_cross_entropy_with_logits(logits, y, reduction="none")
        alpha_t = 1.0 if alpha is None else alpha * y + (1 - alpha) * (1 - y)
    else:
        logpt = F.log_softmax(logits, dim=1).gather(1, target[:, None])[:, 0]
        alpha_t = 1.0 if alpha is None else to_torch(np.asarray(alpha))[target]
    return (-alpha_t * (-torch.expm1(logpt)) ** gamma * logpt).mean()


def classification_case(binary: bool, scale: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    if binary:
        return rng.normal(scale=scale, size=40), rng.integers(0, 2, size=40)
    return rng.normal(scale=scale, size=(40, 5)), rng.integers(0, 5, size=40)


LOSSES = {
    # name: (our loss, torch reference(logits_t, target_t), binary?)
    "mse": (MSELoss(), lambda z, t: F.mse_loss(z, t.to(z.dtype)), True),
    "mse_sum": (MSELoss(reduction="sum"), lambda z, t: F.mse_loss(z, t.to(z.dtype), reduction="sum"), True),
    "cross_entropy": (CrossEntropyLoss(), F.cross_entropy, False),
    "cross_entropy_sum": (CrossEntropyLoss(reduction="sum"), lambda z, t: F.cross_entropy(z, t, reduction="sum"), False),
    "cross_entropy_smoothing": (CrossEntropyLoss(label_smoothing=0.1),
                                lambda z, t: F.cross_entropy(z, t, label_smoothing=0.1), False),
    "bce_with_logits": (BCEWithLogitsLoss(), lambda z, t: F.binary_cross_entropy_with_logits(z, t.to(z.dtype)), True),
    "focal": (FocalLoss(), lambda z, t: torch_focal(z, t, 2.0, None), False),
    "focal_alpha": (FocalLoss(gamma=1.5, alpha=[0.1, 0.3, 0.2, 0.25, 0.15]),
                    lambda z, t: torch_focal(z, t, 1.5, [0.1, 0.3, 0.2, 0.25, 0.15]), False),
    "focal_gamma_half": (FocalLoss(gamma=0.5), lambda z, t: torch_focal(z, t, 0.5, None), False),
    "focal_binary": (FocalLoss(), lambda z, t: torch_focal(z, t, 2.0, None), True),
    "focal_binary_alpha": (FocalLoss(gamma=2.0, alpha=0.25), lambda z, t: torch_focal(z, t, 2.0, 0.25), True),
}


@pytest.mark.parametrize("scale", [3.0, 1e4], ids=["ordinary", "logits_1e4"])
@pytest.mark.parametrize("name", list(LOSSES))
def test_loss_value_and_gradient_match_torch(name, scale, evidence, experiment):
    tol = experiment("loss_parity")["parity_tol"]
    loss, reference, binary = LOSSES[name]
    logits, target = classification_case(binary, scale)
    value = loss.forward(logits, target)
    grad = loss.backward()
    tz = to_torch(logits, requires_grad=True)
    t_value = reference(tz, to_torch(target))
    t_value.backward()
    t_grad = tz.grad.numpy()
    # With gamma < 1 the written formula's autograd meets (1 - p)^(gamma - 1) = inf at p == 1 and
    # returns NaN; the true derivative there is 0, which ours returns. Compare where torch is finite.
    finite = np.isfinite(t_grad)
    if not finite.all():
        assert name == "focal_gamma_half" and scale > 1e3, f"{name}: torch's gradient is not finite"
        evidence.metric("torch_nan_gradient_entries", int((~finite).sum()))
        assert np.all(grad[~finite] == 0.0)
    value_err, grad_err = parity_error(value, t_value.item()), parity_error(grad[finite], t_grad[finite])
    evidence.metric("value_parity_error", value_err, threshold=tol, direction="lower")
    evidence.metric("gradient_parity_error", grad_err, threshold=tol, direction="lower", key=True)
    assert np.isfinite(value) and np.all(np.isfinite(grad))
    assert value_err <= tol and grad_err <= tol, f"{name}: value {value_err:.1e}, gradient {grad_err:.1e}"


@pytest.mark.parametrize("kind", ["l1", "l2"])
def test_weight_penalties_match_torch(kind, experiment):
    """L1 = alpha * sum|w| and L2 = alpha/2 * sum w^2, with their gradients, vs autograd."""
    tol = experiment("loss_parity")["parity_tol"]
    rng = np.random.default_rng(2)
    weights = [rng.normal(size=(7, 5)), rng.normal(size=(3, 7))]
    value, grads = (l1_penalty if kind == "l1" else l2_penalty)(weights, 0.03)
    tw = [to_torch(w, requires_grad=True) for w in weights]
    t_value = sum(0.03 * (w.abs().sum() if kind == "l1" else 0.5 * (w**2).sum()) for w in tw)
    t_value.backward()
    assert parity_error(value, t_value.item()) <= tol
    assert max(parity_error(g, w.grad.numpy()) for g, w in zip(grads, tw)) <= tol
