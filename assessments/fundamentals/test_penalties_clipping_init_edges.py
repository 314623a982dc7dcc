"""Penalties, gradient clipping and initialisers at their edges, where the parity files do not look.

Written for mutants that survived the complete `make mutation` run: torch's defaults when an
argument is left out, the smallest legal arguments, exact zeros, non-finite gradients, float32,
and errors that name the problem.
"""
import re

import numpy as np
import pytest

from implementations.fundamentals import init
from implementations.fundamentals.clipping import clip_grad_norm_, clip_grad_value_, total_norm
from implementations.fundamentals.regularization import L1, L2, l1_penalty, l2_penalty, near_zero_fraction

from ._helpers import to_torch

torch = pytest.importorskip("torch", reason="the torch reference is not installed in this environment")
pytestmark = [pytest.mark.torch, pytest.mark.usefixtures("single_thread")]
SHAPES = [(3, 4), (5,)]


def torch_params(grads: list[np.ndarray]) -> list:
    params = [to_torch(np.zeros(g.shape), requires_grad=True) for g in grads]
    for p, g in zip(params, grads):
        p.grad = to_torch(g)
    return params


def test_non_finite_gradients_are_scaled_like_torch_unless_asked_to_raise():
    """torch's default (error_if_nonfinite=False) returns the inf norm and scales by 0 (inf * 0 = nan)."""
    grads = [np.ones(s) for s in SHAPES]
    grads[0][1, 2] = np.inf
    ref = torch_params(grads)
    with np.errstate(invalid="ignore"):  # inf * 0, as in torch
        norm = clip_grad_norm_(grads, 1.0)
    t_norm = torch.nn.utils.clip_grad_norm_(ref, 1.0)
    assert norm == t_norm.item() == np.inf
    for g, p in zip(grads, ref):
        np.testing.assert_array_equal(g, p.grad.numpy())
    with pytest.raises(ValueError, match="pass error_if_nonfinite=False to scale anyway"):
        clip_grad_norm_([np.array([np.nan, 1.0])], 1.0, error_if_nonfinite=True)
    finite = [np.array([3.0, 4.0])]
    assert clip_grad_norm_(finite, 1.0, error_if_nonfinite=True) == 5.0  # finite: no error


def test_clipping_edges_match_torch():
    assert clip_grad_norm_([], 1.0) == total_norm([]) == 0.0 == torch.nn.utils.clip_grad_norm_([], 1.0).item()
    rng = np.random.default_rng(0)
    for clip_value in (0.0, 0.5):  # 0 is legal for torch: every entry becomes 0
        grads = [rng.normal(size=s) for s in SHAPES]
        ref = torch_params(grads)
        clip_grad_value_(grads, clip_value)
        torch.nn.utils.clip_grad_value_(ref, clip_value)
        assert all(np.array_equal(g, p.grad.numpy()) for g, p in zip(grads, ref)), clip_value
    with pytest.raises(ValueError, match="clip_value must be >= 0, got -1"):
        clip_grad_value_([np.ones(2)], -1)


def test_total_norm_combines_float32_norms_in_float64():
    """Norms 1 and 1e-4: 1 + 1e-8 is 1 in float32, so only a float64 combination sees the small one."""
    grads = [np.ones(1, dtype=np.float32), np.full(1, 1e-4, dtype=np.float32)]
    exact = np.sqrt(1.0 + float(np.float32(1e-4)) ** 2)
    assert isinstance(total_norm(grads), float)
    assert abs(total_norm(grads) - exact) <= 1e-15
    assert total_norm(grads) > 1.0


def test_penalties_at_zero_strength_and_zero_weights():
    weights = [np.array([[-2.0, 0.0], [0.5, 0.0]]), np.array([0.0, 3.0])]
    for penalty in (l1_penalty, l2_penalty):
        value, grads = penalty(weights, 0.0)  # alpha 0 is legal: no penalty
        assert value == 0.0 and all(not g.any() for g in grads), penalty.__name__
    value, grads = l1_penalty(weights, 0.5)
    assert value == 0.5 * 5.5
    # the subgradient at exactly 0 is 0, as torch's abs gives
    t = [to_torch(w, requires_grad=True) for w in weights]
    (0.5 * sum(w.abs().sum() for w in t)).backward()
    for g, w in zip(grads, t):
        np.testing.assert_array_equal(g, w.grad.numpy())
    with pytest.raises(ValueError, match="penalty strength alpha must be >= 0, got -0.1"):
        L2(-0.1)
    assert (repr(L1(0.01)), repr(L2(0.5))) == ("L1(alpha=0.01)", "L2(alpha=0.5)")


def test_near_zero_fraction_counts_the_tolerance_itself():
    weights = [np.array([0.0, 1e-3, -1e-3, 0.5]), np.array([2e-3, -0.2])]
    assert near_zero_fraction(weights, 1e-3) == 3 / 6  # |w| <= tol, the bound included
    assert near_zero_fraction([np.array([0.0])], 1e-3) == 1.0  # a single entry is fine
    with pytest.raises(ValueError, match="near_zero_fraction got no entries"):
        near_zero_fraction([np.zeros(0)], 1e-3)


# our initialiser with its defaults left out, and torch's with its defaults left out
DEFAULTS = {
    "normal": (lambda shape, rng: init.normal(shape, rng), torch.nn.init.normal_),
    "xavier_uniform": (lambda shape, rng: init.xavier_uniform(shape, rng), torch.nn.init.xavier_uniform_),
    "xavier_normal": (lambda shape, rng: init.xavier_normal(shape, rng), torch.nn.init.xavier_normal_),
    "kaiming_uniform": (lambda shape, rng: init.kaiming_uniform(shape, rng), torch.nn.init.kaiming_uniform_),
    "kaiming_normal": (lambda shape, rng: init.kaiming_normal(shape, rng), torch.nn.init.kaiming_normal_),
}


@pytest.mark.parametrize("name", list(DEFAULTS))
def test_initialiser_defaults_are_torchs(name, evidence):
    ours, theirs = DEFAULTS[name]
    shape = (300, 500)  # 150k draws: the std's standard error is ~0.2%
    mine = ours(shape, np.random.default_rng(0))
    torch.manual_seed(0)
    ref = theirs(torch.empty(shape, dtype=torch.float64)).numpy()
    evidence.metric("std_ratio_to_torch", mine.std() / ref.std(), key=True)
    assert abs(mine.std() / ref.std() - 1.0) < 0.02
    assert abs(mine.mean()) < 0.02 * ref.std()  # its standard error is 0.003 std


def test_normal_takes_its_mean_and_std_like_torch():
    mine = init.normal((300, 500), np.random.default_rng(0), mean=2.0, std=0.5)
    ref = torch.nn.init.normal_(torch.empty(300, 500, dtype=torch.float64), mean=2.0, std=0.5).numpy()
    assert abs(mine.std() / ref.std() - 1.0) < 0.02 and abs(mine.mean() - ref.mean()) < 0.01


@pytest.mark.parametrize("name", ["zeros", "normal", "xavier_uniform", "xavier_normal", "kaiming_uniform",
                                  "kaiming_normal", "torch_default"])
def test_initialisers_honour_float32(name):
    weight = init.initialize(name, (4, 3), np.random.default_rng(0), dtype=np.float32)
    assert weight.dtype == np.float32
    if name == "zeros":
        assert init.zeros((2, 2)).dtype == np.float64 and not weight.any()


# initialize(name) with a tanh gain on a conv1d-shaped weight (fans = channels x kernel), vs torch
BY_NAME = {
    "xavier_uniform": lambda t: torch.nn.init.xavier_uniform_(t, gain=torch.nn.init.calculate_gain("tanh")),
    "xavier_normal": lambda t: torch.nn.init.xavier_normal_(t, gain=torch.nn.init.calculate_gain("tanh")),
    "kaiming_uniform": lambda t: torch.nn.init.kaiming_uniform_(t, nonlinearity="tanh"),
    "kaiming_normal": lambda t: torch.nn.init.kaiming_normal_(t, nonlinearity="tanh"),
}


@pytest.mark.parametrize("name", list(BY_NAME))
def test_initialize_by_name_passes_the_gain_and_counts_a_3d_kernel(name, evidence):
    shape = (64, 32, 5)  # conv1d: fan_in 32 * 5, fan_out 64 * 5
    mine = np.concatenate([init.initialize(name, shape, np.random.default_rng(i), nonlinearity="tanh").ravel()
                           for i in range(10)])
    torch.manual_seed(0)
    ref = np.concatenate([BY_NAME[name](torch.empty(shape, dtype=torch.float64)).numpy().ravel() for _ in range(10)])
    evidence.metric("std_ratio_to_torch", mine.std() / ref.std(), key=True)
    assert abs(mine.std() / ref.std() - 1.0) < 0.02


def test_unknown_names_list_what_is_known():
    with pytest.raises(ValueError, match=re.escape(
            "unknown nonlinearity 'elu'; expected one of linear, identity, sigmoid, conv1d, conv2d, conv3d, "
            "conv_transpose1d, conv_transpose2d, conv_transpose3d, tanh, relu, leaky_relu or selu")):
        init.calculate_gain("elu")
    with pytest.raises(ValueError, match=re.escape("unknown init scheme 'orthogonal'; expected one of "
                                                   + ", ".join(init.SCHEMES))):
        init.initialize("orthogonal", (2, 2), np.random.default_rng(0))
