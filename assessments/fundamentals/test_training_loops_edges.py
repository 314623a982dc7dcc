"""The training loops and the pinball loss at their edges.

Written for the mutants that survived `make mutation` in training.py and quantile_loss.py: the
assessments that train real models reach these functions only through their happy path.
- train_classifier / train_regressor equal a hand-written loop step for step (seed 0 by
  default, every sample once per epoch, training mode, the per-epoch mean of batch losses);
- the scheduler steps per batch or per epoch, validation and train accuracy appear only when
  asked, divergence stops cleanly without numpy warnings, bad arguments name what was wrong;
- PinballLoss matches torch's autograd of max(tau * e, (tau - 1) * e) in float64, ties included,
  accepts an (N, 1) target and rejects quantiles outside (0, 1);
- interval_coverage counts the interval's ends as covered; lag_windows at n_lags = 1.
"""
import warnings

import numpy as np
import pytest

from implementations.fundamentals.losses import CrossEntropyLoss, MSELoss
from implementations.fundamentals.mlp import MLP
from implementations.fundamentals.optimizers import SGD
from implementations.fundamentals.quantile_loss import PinballLoss, interval_coverage, lag_windows
from implementations.fundamentals.schedules import StepLR
from implementations.fundamentals.training import accuracy, evaluate, train_classifier, train_regressor

from ._helpers import parity_error, to_torch

torch = pytest.importorskip("torch", reason="the torch reference is not installed in this environment")
pytestmark = [pytest.mark.torch, pytest.mark.usefixtures("single_thread")]
N, D, C, BATCH = 10, 4, 3, 4  # 10 samples in batches of 4: two full batches and a short one of 2


def _data(seed: int = 0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(N, D)), rng.integers(0, C, size=N), rng.normal(size=(6, D)), rng.integers(0, C, size=6)


def _model(dropout: float = 0.0, out: int = C) -> MLP:
    return MLP([D, 8, out], activation="tanh", seed=3, dropout=dropout)


def _weights(model: MLP) -> list[np.ndarray]:
    return [p.copy() for p in model.parameters()]


class RecordingLoss(CrossEntropyLoss):
    """Cross-entropy that records the size of every batch it is given."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.sizes: list[int] = []

    def forward(self, logits, target):
        self.sizes.append(len(target))
        return super().forward(logits, target)


def _reference_loop(model: MLP, loss, x: np.ndarray, y: np.ndarray, lr: float, epochs: int = 3):
    """Shuffled minibatch SGD written out by hand with seed 0: (per-epoch mean losses, per-step
    weight-gradient norms of every Dense)."""
    rng, opt = np.random.default_rng(0), SGD(model.parameters(), lr=lr)
    curve, norms = [], []
    for _ in range(epochs):
        order, losses = rng.permutation(N), []
        for start in range(0, N, BATCH):
            idx = order[start:start + BATCH]
            losses.append(loss.forward(model.forward(x[idx], training=True), y[idx]))
            model.backward(loss.backward())
            norms.append([float(np.linalg.norm(d.grads["weight"])) for d in model.dense_layers])
            opt.step(model.gradients())
        curve.append(float(np.mean(losses)))
    return curve, norms


def test_classifier_equals_a_hand_written_loop_with_seed_0_by_default():
    x, y, _, _ = _data()
    model = _model(dropout=0.3)
    history = train_classifier(model, SGD(model.parameters(), lr=0.2), x, y, epochs=3, batch_size=BATCH)
    ref = _model(dropout=0.3)
    curve, norms = _reference_loop(ref, CrossEntropyLoss(), x, y, lr=0.2)
    assert history.train_loss == curve
    assert history.grad_norms == norms and len(norms) == 9 and all(v > 0 for row in norms for v in row)
    assert history.lr == [0.2] * 9
    assert all(np.array_equal(a, b) for a, b in zip(model.parameters(), ref.parameters()))
    assert history.diverged is False and history.train_accuracy == [] and history.val_loss == []


def test_classifier_seed_decides_the_order():
    x, y, _, _ = _data()
    runs = {}
    for seed in (0, 0, 1):
        model = _model()
        runs.setdefault(seed, []).append(
            train_classifier(model, SGD(model.parameters(), lr=0.2), x, y, epochs=2, batch_size=BATCH, seed=seed).train_loss)
    assert runs[0][0] == runs[0][1]
    assert runs[0][0] != runs[1][0]


@pytest.mark.parametrize("drop_last, sizes", [(False, [4, 4, 2]), (True, [4, 4])])
def test_every_epoch_visits_every_batch(drop_last, sizes):
    x, y, _, _ = _data()
    model, loss = _model(), RecordingLoss()
    history = train_classifier(model, SGD(model.parameters(), lr=0.1), x, y, epochs=2, batch_size=BATCH,
                               loss_fn=loss, drop_last=drop_last)
    assert loss.sizes == sizes * 2
    assert len(history.grad_norms) == len(history.lr) == 2 * len(sizes)


@pytest.mark.parametrize("interval, expected", [
    ("step", [1.0, 0.5, 0.25, 0.125, 0.0625, 0.03125]),
    ("epoch", [1.0, 1.0, 1.0, 0.5, 0.5, 0.5]),
])
def test_scheduler_steps_after_every_batch_or_every_epoch(interval, expected):
    """torch's convention: the lr a step used is recorded, then scheduler.step() follows it."""
    x, y, _, _ = _data()
    model = _model()
    opt = SGD(model.parameters(), lr=1.0)
    sched = StepLR(opt, step_size=1, gamma=0.5)
    history = train_classifier(model, opt, x, y, epochs=2, batch_size=BATCH, scheduler=sched,
                               scheduler_interval=interval)
    assert history.lr == expected
    assert opt.lr == expected[-1] * 0.5


def test_epoch_interval_without_scheduler_trains():
    x, y, _, _ = _data()
    model = _model()
    history = train_classifier(model, SGD(model.parameters(), lr=0.1), x, y, epochs=2, batch_size=BATCH,
                               scheduler_interval="epoch")
    assert history.lr == [0.1] * 6 and len(history.train_loss) == 2


def test_bad_arguments_name_what_was_wrong():
    x, y, _, _ = _data()
    model = _model()
    opt = SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match=r"scheduler_interval must be 'step' or 'epoch', got 'batch'"):
        train_classifier(model, opt, x, y, epochs=1, batch_size=BATCH, scheduler_interval="batch")
    with pytest.raises(ValueError, match=r"x and y differ in length: 10 vs 9"):
        train_classifier(model, opt, x, y[:9], epochs=1, batch_size=BATCH)
    with pytest.raises(ValueError, match=r"drop_last with batch_size 11 leaves no batch of 10 samples"):
        train_classifier(model, opt, x, y, epochs=1, batch_size=11, drop_last=True)
    with pytest.raises(ValueError, match=r"x and y differ in length: 10 vs 9"):
        train_regressor(model, opt, MSELoss(), x, np.zeros((9, C)), epochs=1, batch_size=BATCH)


def test_drop_last_keeps_a_single_full_batch():
    x, y, _, _ = _data()
    model, loss = _model(), RecordingLoss()
    history = train_classifier(model, SGD(model.parameters(), lr=0.1), x[:1], y[:1], epochs=2, batch_size=1,
                               loss_fn=loss, drop_last=True)
    assert loss.sizes == [1, 1] and len(history.train_loss) == 2


def _diverging_run(**kwargs):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(24, D)) * 100, rng.integers(0, C, size=24)
    model = MLP([D, 8, C], activation="relu", seed=0)  # unbounded: lr 1e12 overflows to inf, then NaN
    return train_classifier(model, SGD(model.parameters(), lr=1e12), x, y, epochs=20, batch_size=8, **kwargs), x, y


def test_divergence_stops_cleanly_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # overflow on the way to NaN is detected, not warned about
        history, _, _ = _diverging_run()
    assert history is not None and history.diverged is True
    assert len(history.train_loss) < 20 and np.isnan(history.train_loss[-1])
    assert np.all(np.isfinite(history.train_loss[:-1]))
    finished = len(history.train_loss) - 1  # epochs that completed before the diverging batch
    assert len(history.grad_norms) == len(history.lr)  # per step, up to the diverging batch
    assert 3 * finished <= len(history.grad_norms) < 3 * (finished + 1)


def test_divergence_keeps_the_curves_of_the_finished_epochs():
    with np.errstate(over="ignore", invalid="ignore"):  # evaluating the exploding model overflows
        history, x, y = _diverging_run(x_val=np.zeros((2, D)), y_val=np.zeros(2, dtype=int), track_train_accuracy=True)
    assert history is not None and history.diverged is True
    finished = len(history.train_loss) - 1
    assert finished >= 1 and len(history.val_loss) == len(history.train_accuracy) == finished


def test_validation_and_train_accuracy_use_the_given_loss_in_eval_mode():
    x, y, xv, yv = _data()
    model, loss = _model(dropout=0.5), CrossEntropyLoss(label_smoothing=0.3)
    history = train_classifier(model, SGD(model.parameters(), lr=0.1), x, y, epochs=2, batch_size=BATCH,
                               x_val=xv, y_val=yv, loss_fn=loss, track_train_accuracy=True)
    assert len(history.val_loss) == len(history.val_accuracy) == len(history.train_accuracy) == 2
    val_loss, val_acc = evaluate(model, xv, yv, loss)
    assert (history.val_loss[-1], history.val_accuracy[-1]) == (val_loss, val_acc)
    assert val_loss != evaluate(model, xv, yv)[0]  # label smoothing changes the value
    assert history.train_accuracy[-1] == accuracy(model, x, y)


def test_validation_needs_both_x_val_and_y_val():
    x, y, xv, yv = _data()
    for kwargs in ({"x_val": xv}, {"y_val": yv}):
        model = _model()
        history = train_classifier(model, SGD(model.parameters(), lr=0.1), x, y, epochs=1, batch_size=BATCH, **kwargs)
        assert history.val_loss == [] and history.val_accuracy == [] and len(history.train_loss) == 1


def test_evaluate_is_in_eval_mode():
    x, y, _, _ = _data()
    model = _model(dropout=0.5)
    logits = model.forward(x, training=False)
    loss, acc = evaluate(model, x, y)
    assert loss == CrossEntropyLoss().forward(logits, y)
    assert acc == float((logits.argmax(axis=1) == y).mean())
    assert evaluate(model, x, y) == (loss, acc)  # no dropout mask: the same twice


def test_regressor_equals_a_hand_written_loop_with_seed_0_by_default():
    x, _, _, _ = _data()
    target = np.random.default_rng(5).normal(size=(N, 2))
    model = _model(dropout=0.3, out=2)
    curve = train_regressor(model, SGD(model.parameters(), lr=0.1), MSELoss(), x, target, epochs=3, batch_size=BATCH)
    ref = _model(dropout=0.3, out=2)
    expected, _ = _reference_loop(ref, MSELoss(), x, target, lr=0.1)
    assert curve == expected and all(np.isfinite(expected))
    assert all(np.array_equal(a, b) for a, b in zip(model.parameters(), ref.parameters()))
    other = _model(dropout=0.3, out=2)
    assert train_regressor(other, SGD(other.parameters(), lr=0.1), MSELoss(), x, target, epochs=3,
                           batch_size=BATCH, seed=1) != curve


# ---- pinball loss ----------------------------------------------------------------------------

def _torch_pinball(pred: np.ndarray, target: np.ndarray, quantiles) -> tuple[float, np.ndarray]:
    p = to_torch(pred, requires_grad=True)
    tau = to_torch(np.asarray(quantiles, dtype=np.float64))[None, :]
    e = to_torch(target)[:, None] - p
    value = torch.maximum(tau * e, (tau - 1.0) * e).mean()  # torch splits the gradient at a tie
    value.backward()
    return value.item(), p.grad.numpy()


def test_pinball_matches_torch_including_ties():
    """At y == q the documented subgradient 1/2 - tau is torch.maximum's: half of each side."""
    rng = np.random.default_rng(0)
    quantiles = (0.1, 0.5, 0.8)
    pred, target = rng.normal(size=(6, 3)), rng.normal(size=6)
    pred[:3, :] = target[:3, None]  # exact ties in half the rows, the rest at |e| > 0 on both sides
    pred[3, :] = target[3] - 0.5  # 0 < e < 1
    loss = PinballLoss(quantiles)
    value, grad = loss.forward(pred, target), loss.backward()
    ref_value, ref_grad = _torch_pinball(pred, target, quantiles)
    assert abs(value - ref_value) <= 1e-15
    assert parity_error(grad, ref_grad) <= 1e-15
    assert np.allclose(grad[:3] * pred.size, 0.5 - np.array(quantiles))


def test_pinball_takes_a_column_target():
    rng = np.random.default_rng(1)
    pred, target = rng.normal(size=(5, 2)), rng.normal(size=5)
    flat, column = PinballLoss((0.25, 0.75)), PinballLoss((0.25, 0.75))
    assert column.forward(pred, target[:, None]) == flat.forward(pred, target)
    assert np.array_equal(column.backward(), flat.backward())


def test_pinball_quantiles_are_float64_whatever_their_input():
    loss = PinballLoss(np.array([0.1, 0.9], dtype=np.float32))
    assert loss.quantiles.dtype == np.float64
    loss.forward(np.zeros((3, 2)), np.array([1.0, -1.0, 0.0]))
    assert loss.backward().dtype == np.float64


def test_pinball_quantile_validation():
    assert PinballLoss((0.5,)).quantiles.tolist() == [0.5]  # one quantile: the median regressor
    for bad in ((0.1, 1.0), (0.0,), (1.5,), (), ((0.1, 0.9),)):
        with pytest.raises(ValueError, match=r"quantiles must be a non-empty list of numbers in \(0, 1\)"):
            PinballLoss(bad)


def test_interval_coverage_counts_both_ends():
    lower, upper = np.array([0.0, 0.0, 0.0, 0.0]), np.array([1.0, 1.0, 1.0, 1.0])
    assert interval_coverage(lower, upper, np.array([0.0, 1.0, 0.5, 1.5])) == 0.75
    assert interval_coverage(lower, upper, np.array([0.0, 0.0, 0.0, 0.0])) == 1.0
    assert interval_coverage(lower, upper, np.array([1.0, 1.0, 1.0, -1.0])) == 0.75


def test_lag_windows_at_one_lag_and_int_input():
    X, y = lag_windows(np.array([3, 1, 4, 1]), 1)
    assert X.dtype == y.dtype == np.float64
    assert X.tolist() == [[3.0], [1.0], [4.0]] and y.tolist() == [1.0, 4.0, 1.0]
    X, y = lag_windows(np.arange(4), 3)
    assert X.tolist() == [[0.0, 1.0, 2.0]] and y.tolist() == [3.0]
    for n_lags in (0, -1, 4):
        with pytest.raises(ValueError, match=rf"got shape \(4,\) and n_lags={n_lags}"):
            lag_windows(np.arange(4.0), n_lags)
