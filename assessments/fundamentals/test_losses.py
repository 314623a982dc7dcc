"""Losses: gradient checks, the focal loss's defining properties, stability at extreme logits.

Requirement actloss.3 (MSE, cross-entropy, focal loss). Torch parity is in
test_torch_parity_activations_losses.py; this file needs NumPy only.
"""
import warnings

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from implementations.fundamentals.gradcheck import eval_numerical_gradient, rel_error
from implementations.fundamentals.losses import BCEWithLogitsLoss, CrossEntropyLoss, FocalLoss, MSELoss

LOSSES = {
    "mse": (MSELoss, "regression"),
    "cross_entropy": (CrossEntropyLoss, "multiclass"),
    "cross_entropy_smoothing": (lambda: CrossEntropyLoss(label_smoothing=0.2), "multiclass"),
    "bce_with_logits": (BCEWithLogitsLoss, "binary"),
    "focal": (FocalLoss, "multiclass"),
    "focal_alpha_gamma3": (lambda: FocalLoss(gamma=3.0, alpha=[0.5, 1.0, 2.0, 1.0]), "multiclass"),
    "focal_gamma_half": (lambda: FocalLoss(gamma=0.5), "multiclass"),
    "focal_binary_alpha": (lambda: FocalLoss(alpha=0.25), "binary"),
}


def case(kind: str, rng: np.random.Generator, n: int = 6, scale: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    if kind == "multiclass":
        return rng.normal(scale=scale, size=(n, 4)), rng.integers(0, 4, size=n)
    if kind == "binary":
        return rng.normal(scale=scale, size=n), rng.integers(0, 2, size=n)
    return rng.normal(size=(n, 3)), rng.normal(size=(n, 3))


@pytest.mark.parametrize("name", list(LOSSES))
def test_loss_gradient_matches_central_differences(name):
    make, kind = LOSSES[name]
    loss = make()
    logits, target = case(kind, np.random.default_rng(0))
    loss.forward(logits, target)
    analytic = loss.backward()
    numeric = eval_numerical_gradient(lambda z: loss.forward(z, target), logits.copy())
    assert rel_error(analytic, numeric) <= 1e-7


logit_rows = st.lists(st.lists(st.floats(-30, 30), min_size=3, max_size=3), min_size=1, max_size=8)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(rows=logit_rows, data=st.data())
def test_focal_with_gamma_zero_is_cross_entropy(rows, data):
    """gamma=0, alpha=None: focal loss and its gradient are exactly cross-entropy's (and BCE's)."""
    logits = np.array(rows)
    target = np.array(data.draw(st.lists(st.integers(0, 2), min_size=len(rows), max_size=len(rows))))
    focal, ce = FocalLoss(gamma=0.0), CrossEntropyLoss()
    assert focal.forward(logits, target) == pytest.approx(ce.forward(logits, target), rel=1e-12, abs=1e-14)
    np.testing.assert_allclose(focal.backward(), ce.backward(), rtol=1e-10, atol=1e-14)
    z, y = logits[:, 0], target % 2
    bce = BCEWithLogitsLoss()
    assert focal.forward(z, y) == pytest.approx(bce.forward(z, y), rel=1e-12, abs=1e-14)
    np.testing.assert_allclose(focal.backward(), bce.backward(), rtol=1e-10, atol=1e-14)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(rows=logit_rows, gamma=st.floats(0.0, 5.0), data=st.data())
def test_focal_down_weights_every_example(rows, gamma, data):
    """(1 - p_t)^gamma <= 1: per example, focal <= cross-entropy, and larger gamma never adds loss."""
    logits = np.array(rows)
    target = np.array(data.draw(st.lists(st.integers(0, 2), min_size=len(rows), max_size=len(rows))))
    ce = CrossEntropyLoss(reduction="sum").forward(logits, target)
    focal = FocalLoss(gamma=gamma, reduction="sum").forward(logits, target)
    sharper = FocalLoss(gamma=gamma + 1.0, reduction="sum").forward(logits, target)
    assert sharper <= focal * (1 + 1e-12) + 1e-300 and focal <= ce * (1 + 1e-12) + 1e-300


@pytest.mark.parametrize("name", [n for n in LOSSES if LOSSES[n][1] != "regression"])
@settings(max_examples=30, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**16), magnitude=st.sampled_from([1e2, 1e3, 1e4]))
def test_classification_losses_stable_at_extreme_logits(name, seed, magnitude):
    """Logits of magnitude up to 1e4: finite loss and gradient, no overflow or invalid-value warning."""
    make, kind = LOSSES[name]
    rng = np.random.default_rng(seed)
    logits, target = case(kind, rng, n=8)
    logits = np.sign(logits) * magnitude * rng.uniform(0.5, 1.0, size=logits.shape)
    loss = make()
    with np.errstate(over="raise", invalid="raise", divide="raise"), warnings.catch_warnings():
        warnings.simplefilter("error")
        value = loss.forward(logits, target)
        grad = loss.backward()
    assert np.isfinite(value) and value >= 0.0
    assert np.all(np.isfinite(grad))


def test_cross_entropy_exact_at_huge_logits():
    """The log-sum-exp form is exact where a naive softmax gives inf/inf: loss = the logit gap."""
    logits = np.array([[1e4, -1e4, 0.0], [0.0, 5e3, -5e3]])
    loss = CrossEntropyLoss(reduction="sum")
    assert loss.forward(logits, np.array([1, 1])) == pytest.approx(2e4 + 0.0, rel=1e-15)
    np.testing.assert_allclose(loss.backward(), [[1.0, -1.0, 0.0], [0.0, 0.0, 0.0]], atol=1e-300)


def test_focal_loss_curves(evidence):
    """Lin et al.'s figure 1: loss against the probability of the true class for several gammas.
    gamma=0 is cross-entropy -log p_t; each larger gamma lies below; at p_t=0.9, gamma=2 is 100x smaller."""
    p_t = np.linspace(0.01, 0.99, 99)
    logits = np.log(p_t / (1 - p_t))  # binary logits whose sigmoid is p_t, with target 1
    curves = {}
    for gamma in (0.0, 0.5, 1.0, 2.0, 5.0):
        loss = FocalLoss(gamma=gamma, reduction="sum")
        curves[f"gamma={gamma}"] = np.array([loss.forward(logits[i:i + 1], np.ones(1)) for i in range(len(p_t))])
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6))
    for name, values in curves.items():
        ax.plot(p_t, values, label=name)
    ax.set(title="Focal loss vs probability of the true class", xlabel="p_t", ylabel="loss")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    evidence.figure("focal_loss_curves", fig)
    at_09 = curves["gamma=2.0"][np.argmin(np.abs(p_t - 0.9))] / curves["gamma=0.0"][np.argmin(np.abs(p_t - 0.9))]
    evidence.metric("focal_gamma2_over_ce_at_p0.9", at_09)
    np.testing.assert_allclose(curves["gamma=0.0"], -np.log(p_t), rtol=1e-12)
    values = list(curves.values())
    assert all(np.all(hi <= lo * (1 + 1e-12)) for lo, hi in zip(values, values[1:]))
    assert at_09 == pytest.approx(0.01, rel=1e-9)


def test_losses_reject_bad_input():
    ce, focal, mse = CrossEntropyLoss(), FocalLoss(), MSELoss()
    with pytest.raises(ValueError, match="integer targets of shape"):
        ce.forward(np.zeros((3, 4)), np.zeros(2, dtype=int))
    with pytest.raises(ValueError, match=r"lie in \[0, 3\]"):
        ce.forward(np.zeros((2, 4)), np.array([0, 4]))
    with pytest.raises(ValueError, match="integer class targets"):
        ce.forward(np.zeros((2, 4)), np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match="label_smoothing"):
        CrossEntropyLoss(label_smoothing=1.5)
    with pytest.raises(ValueError, match="reduction"):
        MSELoss(reduction="none")
    with pytest.raises(ValueError, match="same shape"):
        mse.forward(np.zeros((2, 3)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="0 or 1"):
        focal.forward(np.zeros(3), np.array([0, 2, 1]))
    with pytest.raises(ValueError, match="gamma"):
        FocalLoss(gamma=-1.0)
    with pytest.raises(ValueError, match=r"alpha of shape \(4,\)"):
        FocalLoss(alpha=[0.5, 0.5]).forward(np.zeros((2, 4)), np.array([0, 1]))
