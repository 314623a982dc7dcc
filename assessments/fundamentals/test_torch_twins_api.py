"""The fundamentals are torch's twins in their API too, not only in their arithmetic.

The parity files pin values and gradients to torch for the arguments they pass; a twin must
also agree where callers pass nothing or something unusual. Each test here was written for a
mutant that survived `make mutation` (mutmut over implementations/fundamentals):
- default arguments equal torch's (BatchNorm1d's affine, the optimizers' betas, reductions...);
- calling a layer is `forward(x, training=True)`, as a torch module is in train mode;
- `dtype=np.float32` is honoured by parameters, buffers, outputs and gradients;
- boundary values torch accepts work (BatchNorm1d(1), momentum 0 and 1, dropout p 0 and 1);
- binary losses reject mismatched shapes, and `reduction="sum"` is N times the mean, with the
  same gradient scaling, for every loss;
- a model's repr names its sizes (what a user prints to check what was built).
"""
import numpy as np
import pytest

from implementations.fundamentals.activations import GELU, LeakyReLU, ReLU, Sigmoid, Swish, Tanh
from implementations.fundamentals.layers import BatchNorm1d, Dense, Dropout
from implementations.fundamentals.losses import BCEWithLogitsLoss, CrossEntropyLoss, FocalLoss, MSELoss
from implementations.fundamentals.mlp import MLP
from implementations.fundamentals.optimizers import SGD, Adam, AdamW

from ._helpers import parity_error, to_torch

torch = pytest.importorskip("torch", reason="the torch reference is not installed in this environment")
pytestmark = [pytest.mark.torch, pytest.mark.usefixtures("single_thread")]
TOL = 1e-12


def test_default_arguments_match_torch():
    bn, ref = BatchNorm1d(3), torch.nn.BatchNorm1d(3)
    assert (bn.eps, bn.momentum, bn.affine, bn.track_running_stats) == (
        ref.eps, ref.momentum, ref.affine, ref.track_running_stats)
    assert set(bn.params) == {"weight", "bias"}
    assert Dropout().p == torch.nn.Dropout().p
    assert ("bias" in Dense(3, 2).params) == (torch.nn.Linear(3, 2).bias is not None)
    assert LeakyReLU().negative_slope == torch.nn.LeakyReLU().negative_slope
    assert GELU().approximate == torch.nn.GELU().approximate
    for ours, theirs in ((MSELoss(), torch.nn.MSELoss()), (CrossEntropyLoss(), torch.nn.CrossEntropyLoss()),
                         (BCEWithLogitsLoss(), torch.nn.BCEWithLogitsLoss())):
        assert ours.reduction == theirs.reduction
    assert CrossEntropyLoss().label_smoothing == torch.nn.CrossEntropyLoss().label_smoothing
    focal = FocalLoss()  # no torch module: Lin et al.'s gamma, no class weights, the mean like the others
    assert (focal.gamma, focal.alpha, focal.reduction) == (2.0, None, "mean")
    params, tparams = [np.zeros(2)], [torch.zeros(2, requires_grad=True)]
    sgd, tsgd = SGD(params, lr=0.1), torch.optim.SGD(tparams, lr=0.1)
    for name in ("momentum", "dampening", "nesterov", "weight_decay"):
        assert getattr(sgd, name) == tsgd.defaults[name], name
    for ours, theirs in ((Adam(params), torch.optim.Adam(tparams)), (AdamW(params), torch.optim.AdamW(tparams))):
        for name in ("lr", "betas", "eps", "weight_decay", "amsgrad"):
            assert getattr(ours, name) == theirs.defaults[name], (type(ours).__name__, name)


def test_calling_a_layer_is_forward_in_training_mode():
    x = np.random.default_rng(0).normal(size=(16, 3))
    called = Dropout(0.5, rng=np.random.default_rng(1))(x)
    assert np.array_equal(called, Dropout(0.5, rng=np.random.default_rng(1)).forward(x, training=True))
    assert not np.array_equal(called, x)
    ref = torch.nn.BatchNorm1d(3).double()  # a new torch module is in train mode
    assert parity_error(BatchNorm1d(3)(x), ref(to_torch(x)).detach().numpy()) <= TOL
    dense = Dense(3, 2, rng=np.random.default_rng(0))
    assert np.array_equal(dense(x), dense.forward(x))


def test_float32_layers_keep_float32():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 4)).astype(np.float32)
    bn = BatchNorm1d(4, dtype=np.float32)
    assert {a.dtype for a in (*bn.params.values(), bn.running_mean, bn.running_var)} == {np.dtype(np.float32)}
    assert bn(x).dtype == bn.backward(np.ones_like(x)).dtype == np.float32
    assert bn(x, training=False).dtype == bn.backward(np.ones_like(x)).dtype == np.float32  # running stats
    model = MLP([4, 5, 3], dtype=np.float32, batch_norm=True)
    assert {p.dtype for p in model.parameters()} == {np.dtype(np.float32)}
    assert model(x).dtype == np.float32
    for act in (ReLU(), LeakyReLU(), Sigmoid(), Tanh(), Swish(), GELU(), GELU("tanh")):
        assert act(x).dtype == act.backward(np.ones_like(x)).dtype == np.float32, type(act).__name__


FLOAT32_LOSSES = {
    "mse": (MSELoss, "same"), "cross_entropy": (lambda: CrossEntropyLoss(label_smoothing=0.1), "labels"),
    "bce_with_logits": (BCEWithLogitsLoss, "binary"), "focal": (FocalLoss, "labels"),
    "focal_binary_alpha": (lambda: FocalLoss(alpha=0.25), "binary"),
    "focal_class_weights": (lambda: FocalLoss(alpha=[0.1, 0.2, 0.3, 0.4]), "labels"),
}


@pytest.mark.parametrize("name", list(FLOAT32_LOSSES))
def test_float32_losses_give_float32_gradients(name):
    make, kind = FLOAT32_LOSSES[name]
    x = np.random.default_rng(0).normal(size=(8, 4)).astype(np.float32)
    logits, target = {"same": (x, 2 * x), "labels": (x, np.arange(8) % 4),
                      "binary": (x[:, 0], (np.arange(8) % 2).astype(np.int64))}[kind]
    loss = make()
    loss(logits, target)
    assert loss.backward().dtype == np.float32


def test_boundary_arguments_torch_accepts():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 1))
    one, ref = BatchNorm1d(1), torch.nn.BatchNorm1d(1).double()
    assert parity_error(one(x), ref(to_torch(x)).detach().numpy()) <= TOL
    pair = x[:2]  # two values per channel: the fewest torch normalises in training
    assert parity_error(BatchNorm1d(1)(pair), torch.nn.BatchNorm1d(1).double()(to_torch(pair)).detach().numpy()) <= TOL
    for momentum in (0.0, 1.0):
        ours, theirs = BatchNorm1d(2, momentum=momentum), torch.nn.BatchNorm1d(2, momentum=momentum).double()
        for _ in range(3):
            batch = rng.normal(loc=3.0, size=(6, 2))
            ours(batch)
            theirs(to_torch(batch))
        assert parity_error(ours.running_mean, theirs.running_mean.numpy()) <= TOL, momentum
        assert parity_error(ours.running_var, theirs.running_var.numpy()) <= TOL, momentum
    x = rng.normal(size=(4, 5))
    assert np.array_equal(Dropout(0.0)(x), x)
    assert np.array_equal(Dropout(1.0)(x), torch.nn.functional.dropout(to_torch(x), 1.0).numpy())
    for bad in (0, -1):
        with pytest.raises(ValueError, match="num_features"):
            BatchNorm1d(bad)
    for bad in (-0.1, 1.1):
        with pytest.raises(ValueError, match="momentum"):
            BatchNorm1d(2, momentum=bad)


@pytest.mark.parametrize("loss", [BCEWithLogitsLoss(), FocalLoss(alpha=0.25)], ids=["bce", "focal"])
def test_binary_losses_reject_mismatched_shapes(loss):
    with pytest.raises(ValueError, match=r"logits \(N,\) and targets \(N,\), got \(4,\) and \(3,\)"):
        loss(np.zeros(4), np.zeros(3, dtype=np.int64))
    with pytest.raises(ValueError, match="binary targets must be 0 or 1"):
        loss(np.zeros(3), np.array([0, 1, 2]))


# name: (loss with a reduction, input shape, target from a generator)
LOSSES = {
    "mse": (MSELoss, (6, 3), lambda rng: rng.normal(size=(6, 3))),
    "cross_entropy": (CrossEntropyLoss, (6, 3), lambda rng: rng.integers(0, 3, size=6)),
    "bce_with_logits": (BCEWithLogitsLoss, (6,), lambda rng: rng.integers(0, 2, size=6)),
    "focal": (FocalLoss, (6, 3), lambda rng: rng.integers(0, 3, size=6)),
    "focal_binary": (lambda reduction: FocalLoss(alpha=0.25, reduction=reduction), (6,),
                     lambda rng: rng.integers(0, 2, size=6)),
}


@pytest.mark.parametrize("name", list(LOSSES))
def test_sum_reduction_is_n_times_the_mean(name):
    make, shape, targets = LOSSES[name]
    rng = np.random.default_rng(0)
    target, logits = targets(rng), rng.normal(size=shape)
    mean, total = make(reduction="mean"), make(reduction="sum")
    value_mean, value_sum = mean(logits, target), total(logits, target)
    n = logits.size if name == "mse" else len(target)
    assert abs(value_sum - n * value_mean) <= 1e-12 * max(1.0, abs(value_sum))
    assert parity_error(total.backward(), n * mean.backward()) <= TOL
    if name == "bce_with_logits":  # and torch agrees on the sum itself
        t = to_torch(logits, requires_grad=True)
        ref = torch.nn.BCEWithLogitsLoss(reduction="sum")(t, to_torch(target.astype(np.float64)))
        ref.backward()
        assert abs(value_sum - ref.item()) <= 1e-12 * max(1.0, abs(value_sum))
        assert parity_error(total.backward(), t.grad.numpy()) <= TOL


def test_repr_names_the_sizes():
    assert repr(Dense(3, 2)) == "Dense(weight=(2, 3), bias=(2,))"
    assert repr(ReLU()) == "ReLU()"
    assert repr(MLP([4, 8, 3])).startswith("MLP(4 -> 8 -> 3, layers=[Dense(weight=(8, 4), bias=(8,)), ReLU()")
    assert repr(BatchNorm1d(5)) == "BatchNorm1d(5, eps=1e-05, momentum=0.1, affine=True)"
    assert repr(Dropout(0.3)) == "Dropout(p=0.3)"


def test_binary_focal_alpha_is_a_weight_in_the_closed_unit_interval():
    """torchvision's sigmoid_focal_loss takes alpha in [0, 1] (both ends put all weight on one class)."""
    logits, target = np.array([0.3, -1.2, 2.0]), np.array([1, 0, 1])
    for alpha in (0.0, 1.0):
        weighted = FocalLoss(alpha=alpha, reduction="sum")(logits, target)
        on_positives = FocalLoss(reduction="sum")(logits[target == 1], target[target == 1])
        assert abs(weighted - (on_positives if alpha == 1.0 else FocalLoss(reduction="sum")(
            logits[target == 0], target[target == 0]))) <= 1e-12
    for alpha in (1.5, -0.1, [0.2, 0.8]):
        with pytest.raises(ValueError, match=r"scalar alpha in \[0, 1\]"):
            FocalLoss(alpha=alpha)(logits, target)


def test_predict_is_the_eval_mode_argmax():
    """predict() must switch dropout and BatchNorm to inference: deterministic, running statistics."""
    rng = np.random.default_rng(0)
    model = MLP([4, 16, 3], dropout=0.5, batch_norm=True, seed=0)
    model.forward(rng.normal(loc=2.0, size=(32, 4)))  # move the running statistics off their start
    x = rng.normal(size=(64, 4))
    assert np.array_equal(model.predict(x), model.forward(x, training=False).argmax(axis=1))
    assert np.array_equal(model.predict(x), model.predict(x))


def test_erf_helper_matches_math_erf_for_ints_and_floats():
    import math

    from implementations.fundamentals.activations import erf

    ints = np.array([-2, 0, 1, 3])
    assert erf(ints).dtype == np.float64
    assert np.array_equal(erf(ints), [math.erf(v) for v in ints])
    assert erf(ints.astype(np.float32)).dtype == np.float32


def test_dropout_without_an_rng_and_in_float32():
    x = np.random.default_rng(0).normal(size=(16, 8)).astype(np.float32)
    dropped = Dropout(0.5)(x)  # its own generator when none is given
    assert dropped.dtype == np.float32 and 0 < np.count_nonzero(dropped) < x.size
    zeros = Dropout(1.0)(x)
    assert zeros.dtype == np.float32 and not zeros.any()


def test_sgd_checks_each_argument_and_leaves_the_gradients_alone():
    params = [np.zeros(3)]
    for kwargs, message in (({"momentum": -0.1}, "momentum"), ({"weight_decay": -0.1}, "weight_decay"),
                            ({"nesterov": True}, "Nesterov")):
        with pytest.raises(ValueError, match=message):
            SGD(params, lr=0.1, **kwargs)
    grad = np.array([1.0, -2.0, 0.5])
    opt = SGD(params, lr=0.1, momentum=0.9)
    for _ in range(3):  # the same gradient array every step, as a caller may pass it
        opt.step([grad])
    assert np.array_equal(grad, [1.0, -2.0, 0.5])
    t = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    ref = torch.optim.SGD([t], lr=0.1, momentum=0.9)
    for _ in range(3):
        t.grad = to_torch(grad)
        ref.step()
    assert parity_error(params[0], t.detach().numpy()) <= TOL
