"""The fundamentals at their edges: where a torch twin's contract is decided by one comparison.

Written for the mutants of layers, activations, losses, optimizers and mlp that survived
`make mutation`: each test pins a behaviour that the value/gradient parity files never reach.
- argument checks raise exactly where torch's raise (lr 0, beta 0, eps 0 are legal; beta 1 is not);
- the kinks of ReLU and LeakyReLU at exactly 0 take torch's gradient;
- Dense draws its bias like nn.Linear, takes its gain from its nonlinearity, and checks its sizes;
- MLP passes bias, nonlinearity and dropout on to its layers, is seeded by default, and returns
  the input gradient unless asked not to;
- optimizer state holds what torch's holds (Adam keeps no AMSGrad buffer unless asked);
- errors name what was wrong and what was expected.
"""
import re

import numpy as np
import pytest

from implementations.fundamentals.activations import GELU, LeakyReLU, ReLU, Sigmoid, Swish, Tanh, make_activation
from implementations.fundamentals.gradcheck import eval_numerical_gradient_array, rel_error
from implementations.fundamentals.layers import Dense, Dropout
from implementations.fundamentals.losses import CrossEntropyLoss
from implementations.fundamentals.mlp import MLP
from implementations.fundamentals.optimizers import SGD, Adam, AdamW

from ._helpers import parity_error, to_torch

torch = pytest.importorskip("torch", reason="the torch reference is not installed in this environment")
pytestmark = [pytest.mark.torch, pytest.mark.usefixtures("single_thread")]
TOL = 1e-12


def _raises(make) -> bool:
    try:
        make()
    except ValueError:
        return True
    return False


# (ours, torch's, keyword arguments to try one at a time)
OPTIMIZER_ARGUMENTS = {
    "Adam": (Adam, torch.optim.Adam, [{"lr": v} for v in (-1e-3, 0.0)] + [{"eps": v} for v in (-1e-8, 0.0)]
             + [{"weight_decay": v} for v in (-0.1, 0.0)]
             + [{"betas": (b, 0.999)} for b in (-0.1, 0.0, 0.9, 1.0, 1.5)]
             + [{"betas": (0.9, b)} for b in (-0.1, 0.0, 0.999, 1.0, 1.5)]),
    "AdamW": (AdamW, torch.optim.AdamW, [{"betas": (b, 0.0)} for b in (0.0, 1.0)] + [{"eps": 0.0}]),
    "SGD": (SGD, torch.optim.SGD, [{"lr": v} for v in (-0.1, 0.0)] + [{"momentum": v} for v in (-0.5, 0.0, 0.9)]
            + [{"weight_decay": v} for v in (-0.1, 0.0)]
            + [{"nesterov": True, "momentum": m, "dampening": d} for m, d in ((0.0, 0.0), (0.9, 0.1), (0.9, 0.0))]),
}


@pytest.mark.parametrize("name", list(OPTIMIZER_ARGUMENTS))
def test_optimizer_arguments_are_rejected_exactly_where_torch_rejects_them(name, evidence):
    ours, theirs, cases = OPTIMIZER_ARGUMENTS[name]
    evidence.metric("argument_cases_compared_with_torch", len(cases))
    for kwargs in cases:
        kwargs = {"lr": 0.1, **kwargs}
        expected = _raises(lambda: theirs([torch.zeros(2, requires_grad=True)], **kwargs))
        assert _raises(lambda: ours([np.zeros(2)], **kwargs)) == expected, (name, kwargs, "torch raises" if expected else "torch accepts")


def test_label_smoothing_of_one_matches_torch():
    """torch allows label_smoothing in the closed interval [0, 1]; 1 is the uniform target."""
    rng = np.random.default_rng(0)
    logits, target = rng.normal(size=(5, 4)), rng.integers(0, 4, size=5)
    ours = CrossEntropyLoss(label_smoothing=1.0)
    t = to_torch(logits, requires_grad=True)
    ref = torch.nn.CrossEntropyLoss(label_smoothing=1.0)(t, to_torch(target))
    ref.backward()
    assert abs(ours(logits, target) - ref.item()) <= TOL
    assert parity_error(ours.backward(), t.grad.numpy()) <= TOL


@pytest.mark.parametrize("make, twin", [(ReLU, torch.nn.ReLU), (LeakyReLU, torch.nn.LeakyReLU),
                                        (Sigmoid, torch.nn.Sigmoid), (Tanh, torch.nn.Tanh),
                                        (Swish, torch.nn.SiLU), (GELU, torch.nn.GELU)],
                         ids=["relu", "leaky_relu", "sigmoid", "tanh", "swish", "gelu"])
def test_value_and_gradient_at_exactly_zero_match_torch(make, twin):
    """The parity files draw random inputs, which are never exactly 0: the kink is decided here
    (torch: ReLU's gradient at 0 is 0, LeakyReLU's is negative_slope)."""
    x = np.array([[-1.0, 0.0, 1.0], [0.0, -0.0, 2.5]])
    dout = np.array([[0.3, 0.7, -1.1], [1.3, -0.4, 0.9]])
    layer = make()
    t = to_torch(x, requires_grad=True)
    out = twin()(t)
    out.backward(to_torch(dout))
    assert parity_error(layer(x), out.detach().numpy()) <= TOL
    assert parity_error(layer.backward(dout), t.grad.numpy()) <= TOL


def test_dense_default_init_draws_like_nn_linear(evidence):
    """nn.Linear draws weight and bias from U(-1/sqrt(in), 1/sqrt(in)); the other schemes start the bias at 0."""
    n_in, n_out = 50, 20000
    ours = Dense(n_in, n_out, rng=np.random.default_rng(0))
    torch.manual_seed(0)
    ref = torch.nn.Linear(n_in, n_out, dtype=torch.float64)
    bound = 1.0 / np.sqrt(n_in)
    for name in ("weight", "bias"):
        mine, theirs = ours.params[name], getattr(ref, name).detach().numpy()
        assert mine.shape == theirs.shape, name
        assert np.abs(mine).max() <= bound and np.abs(theirs).max() <= bound, name
        assert mine.max() > 0.99 * bound and mine.min() < -0.99 * bound, f"{name} does not fill U(-b, b)"
        # 20000+ draws each: the std's standard error is ~0.5%
        evidence.metric(f"{name}_std_ratio_to_nn_linear", mine.std() / theirs.std())
        assert abs(mine.std() / theirs.std() - 1.0) < 0.03, name
    assert not Dense(4, 3, init="kaiming_normal", rng=np.random.default_rng(0)).params["bias"].any()


def test_dense_gain_comes_from_its_nonlinearity():
    n_in, n_out = 400, 300
    default = Dense(n_in, n_out, init="kaiming_normal", rng=np.random.default_rng(0)).params["weight"]
    tanh = Dense(n_in, n_out, init="kaiming_normal", nonlinearity="tanh", rng=np.random.default_rng(0)).params["weight"]
    for weight, nonlinearity in ((default, "relu"), (tanh, "tanh")):
        expected = torch.nn.init.calculate_gain(nonlinearity) / np.sqrt(n_in)
        assert abs(weight.std() / expected - 1.0) < 0.02, nonlinearity


def test_dense_checks_its_sizes_and_its_input():
    one = Dense(1, 1, rng=np.random.default_rng(0))  # the smallest legal layer
    x = np.array([[2.0], [-1.0]])
    assert parity_error(one(x), x @ one.params["weight"].T + one.params["bias"]) <= TOL
    for n_in, n_out in ((0, 3), (3, 0), (-1, -1)):
        with pytest.raises(ValueError, match=rf"Dense needs positive sizes, got in={n_in}, out={n_out}"):
            Dense(n_in, n_out)
    dense = Dense(3, 2)
    with pytest.raises(RuntimeError, match="Dense.backward called before forward"):
        dense.backward(np.ones((4, 2)))
    for bad in (np.zeros((4, 5)), np.zeros(3), np.zeros((2, 3, 1))):
        with pytest.raises(ValueError, match=re.escape(f"Dense expected input of shape (N, 3), got {bad.shape}")):
            dense(bad)


def test_backward_returns_the_input_gradient_unless_told_not_to(evidence):
    rng = np.random.default_rng(0)
    x, dout = rng.normal(size=(6, 5)), rng.normal(size=(6, 3))
    model = MLP([5, 7, 3], activation="tanh", seed=0)
    model.forward(x)
    dx = model.backward(dout)
    grads = [g.copy() for g in model.gradients()]
    numeric = eval_numerical_gradient_array(lambda z: model.forward(z), x.copy(), dout)
    evidence.metric("input_gradient_rel_error", rel_error(dx, numeric), threshold=1e-7, direction="lower", key=True)
    assert rel_error(dx, numeric) < 1e-7
    model.forward(x)
    assert model.backward(dout, input_grad=False) is None
    assert all(np.array_equal(a, b) for a, b in zip(grads, model.gradients())), "parameter gradients must not change"
    dense = Dense(5, 3, rng=rng)
    dense(x)
    assert dense.backward(dout, input_grad=False) is None


def test_mlp_passes_its_arguments_to_its_layers():
    logistic = MLP([4, 3], seed=0)  # no hidden layer: a linear model
    assert [type(layer) for layer in logistic.layers] == [Dense]
    assert all(len(layer.params) == 1 for layer in MLP([4, 8, 3], bias=False).dense_layers)
    weight = MLP([400, 300, 10], activation="tanh", init="kaiming_normal", seed=0).dense_layers[0].params["weight"]
    assert abs(weight.std() / (torch.nn.init.calculate_gain("tanh") / np.sqrt(400)) - 1.0) < 0.02
    dropped = MLP([4, 8, 8, 3], dropout=0.3, seed=0)
    assert [layer.p for layer in dropped.layers if isinstance(layer, Dropout)] == [0.3, 0.3]
    with pytest.raises(ValueError, match=r"MLP needs at least input and output sizes, got \[4\]"):
        MLP([4])


def test_mlp_is_seeded_by_default_and_its_dropout_too():
    """Seed everything: MLP's documented default seed is 0, and its dropout masks follow the seed."""
    assert all(np.array_equal(a, b) for a, b in zip(MLP([4, 8, 3]).parameters(), MLP([4, 8, 3], seed=0).parameters()))
    x = np.random.default_rng(0).normal(size=(32, 4))
    first, second = (MLP([4, 64, 3], dropout=0.5, seed=7)(x) for _ in range(2))
    assert np.array_equal(first, second)


def test_optimizer_state_holds_what_torchs_holds(evidence):
    """Adam keeps two moment buffers per parameter (a third only with amsgrad), SGD one with momentum."""
    shapes, rows = [(3, 4), (4,)], []
    for ours_cls, theirs_cls, kwargs in ((Adam, torch.optim.Adam, {}), (Adam, torch.optim.Adam, {"amsgrad": True}),
                                         (SGD, torch.optim.SGD, {"momentum": 0.9}), (SGD, torch.optim.SGD, {})):
        params = [np.zeros(s) for s in shapes]
        tparams = [torch.zeros(s, dtype=torch.float64, requires_grad=True) for s in shapes]
        ours, theirs = ours_cls(params, lr=0.1, **kwargs), theirs_cls(tparams, lr=0.1, **kwargs)
        ours.step([np.ones(s) for s in shapes])
        for p in tparams:
            p.grad = torch.ones_like(p)
        theirs.step()
        ours_bytes = sum(a.nbytes for value in vars(ours).values() if isinstance(value, list)
                         for a in value if isinstance(a, np.ndarray) and not any(a is p for p in params))
        theirs_bytes = sum(v.nbytes for state in theirs.state.values() for k, v in state.items()
                           if k != "step" and isinstance(v, torch.Tensor))
        rows.append({"optimizer": ours_cls.__name__, "arguments": str(kwargs), "state_bytes": ours_bytes,
                     "torch_state_bytes": theirs_bytes})
        assert ours_bytes == theirs_bytes, (ours_cls.__name__, kwargs)
    evidence.table("optimizer_state_bytes", rows)


def test_errors_name_what_was_wrong_and_what_was_expected():
    loss = CrossEntropyLoss()
    with pytest.raises(ValueError, match=r"expected logits of shape \(N, C\), got \(4,\)"):
        loss(np.zeros(4), np.zeros(4, dtype=np.int64))
    with pytest.raises(ValueError, match=r"expected integer targets of shape \(4,\), got \(3,\)"):
        loss(np.zeros((4, 3)), np.zeros(3, dtype=np.int64))
    with pytest.raises(ValueError, match="unknown activation 'elu'; expected one of relu, leaky_relu, sigmoid, "
                                         "tanh, swish, gelu"):
        make_activation("elu")
