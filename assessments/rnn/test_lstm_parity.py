"""Our LSTM (tensor ops, explicit gates) vs torch.nn.LSTM / nn.LSTMCell with copied weights, float64.

Requirement rnn.1 (an LSTM network): outputs, final states and every gradient (parameters,
input, initial states) agree within 1e-10 over hypothesis-generated sizes, layouts, depths,
directions, packed and unpacked inputs.
"""
import pytest
import torch
from hypothesis import given, settings, strategies as st

from assessments.rnn._helpers import lstm_parity_errors, lstm_twins
from implementations.architectures.rnn.lstm import LSTM, LSTMCell
from implementations.config import load_experiment

pytestmark = pytest.mark.torch
TOL = load_experiment("rnn", "lstm_parity")["max_abs_error"]
MAX_EXAMPLES = load_experiment("rnn", "lstm_parity")["max_examples"]


@st.composite
def lstm_cases(draw):
    batch, steps = draw(st.integers(1, 4)), draw(st.integers(1, 6))
    packed = draw(st.booleans())
    lengths = [draw(st.integers(1, steps)) for _ in range(batch)] if packed else None
    if lengths is not None:
        lengths[draw(st.integers(0, batch - 1))] = steps  # pad_packed restores the full length
    return dict(input_size=draw(st.integers(1, 6)), hidden_size=draw(st.integers(1, 6)),
                num_layers=draw(st.integers(1, 3)), bidirectional=draw(st.booleans()),
                batch_first=draw(st.booleans()), bias=draw(st.booleans()), batch=batch, steps=steps,
                lengths=lengths, with_hx=draw(st.booleans()), seed=draw(st.integers(0, 2**16)))


@settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True)
@given(case=lstm_cases())
def test_lstm_matches_torch_over_generated_sizes(case):
    ours, ref = lstm_twins(case["input_size"], case["hidden_size"], case["num_layers"], case["bidirectional"],
                           case["batch_first"], case["bias"], seed=case["seed"])
    errors = lstm_parity_errors(ours, ref, case["batch"], case["steps"], case["lengths"], case["with_hx"],
                                seed=case["seed"])
    worst = max(errors, key=errors.get)
    assert errors[worst] <= TOL, f"{worst} differs from torch by {errors[worst]:.2e} in {case}"


def test_lstm_parity_reported(evidence, experiment):
    """A fixed, reportable case: 2 layers, bidirectional, batch_first, packed, with initial states."""
    tol = experiment("lstm_parity")["max_abs_error"]
    ours, ref = lstm_twins(10, 16, num_layers=2, bidirectional=True, batch_first=True, seed=0)
    errors = lstm_parity_errors(ours, ref, batch=5, steps=12, lengths=[12, 3, 7, 12, 1], with_hx=True, seed=1)
    for name, err in errors.items():
        evidence.metric(f"max_abs_error_{name}", err, threshold=tol, direction="lower",
                        key=name == "grad_params")
    evidence.table("parity", [{"quantity": k, "max |ours - torch|": v} for k, v in errors.items()])
    evidence.text("torch.nn.LSTM(10, 16, num_layers=2, bidirectional=True, batch_first=True) in float64, its "
                  "state_dict loaded into our LSTM; a packed batch of lengths [12, 3, 7, 12, 1] with random "
                  "(h_0, c_0); both backpropagate the same random linear functional of output, h_n and c_n.")
    assert max(errors.values()) <= tol


@pytest.mark.parametrize("batched", [True, False])
def test_lstm_cell_matches_torch(batched, experiment):
    tol = experiment("lstm_parity")["max_abs_error"]
    torch.manual_seed(0)
    ref = torch.nn.LSTMCell(5, 7, dtype=torch.float64)
    ours = LSTMCell(5, 7, dtype=torch.float64)
    ours.load_state_dict(ref.state_dict())
    shape = (3, 5) if batched else (5,)
    x = torch.randn(shape, dtype=torch.float64)
    hx = tuple(torch.randn(shape[:-1] + (7,), dtype=torch.float64) for _ in range(2))
    grads = []
    for model in (ours, ref):
        h, c = model(x, hx)
        (h.sum() + (c * c).sum()).backward()
        grads.append((h.detach(), c.detach(), [p.grad.clone() for p in model.parameters()]))
    (h1, c1, g1), (h2, c2, g2) = grads
    assert (h1 - h2).abs().max() <= tol and (c1 - c2).abs().max() <= tol
    assert max(float((a - b).abs().max()) for a, b in zip(g1, g2)) <= tol


def test_unbatched_and_default_state_match_torch(experiment):
    tol = experiment("lstm_parity")["max_abs_error"]
    ours, ref = lstm_twins(4, 6, num_layers=2, bidirectional=True, seed=3)
    x = torch.randn(9, 4, dtype=torch.float64)  # (T, input_size): no batch dimension
    with torch.no_grad():
        (o1, (h1, c1)), (o2, (h2, c2)) = ours(x), ref(x)
    assert o1.shape == o2.shape == (9, 12) and h1.shape == h2.shape == (4, 6)
    assert max(float((a - b).abs().max()) for a, b in ((o1, o2), (h1, h2), (c1, c2))) <= tol


def test_state_dict_round_trip_and_init_scale():
    """Our parameters load into torch.nn.LSTM (same names, shapes, gate order) and start in
    torch's range U(-1/sqrt(H), 1/sqrt(H))."""
    ours = LSTM(3, 25, num_layers=2, bidirectional=True)
    ref = torch.nn.LSTM(3, 25, num_layers=2, bidirectional=True)
    ref.load_state_dict(ours.state_dict())
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in ref.named_parameters()]
    bound = 1 / 25 ** 0.5
    for p in ours.parameters():
        assert p.abs().max() <= bound and p.abs().max() > 0.8 * bound


def test_bad_inputs_raise_clear_errors():
    lstm = LSTM(3, 4, num_layers=2)
    with pytest.raises(ValueError, match="input_size=3"):
        lstm(torch.randn(5, 2, 7))
    with pytest.raises(ValueError, match="2-D .* or 3-D"):
        lstm(torch.randn(5, 2, 3, 1))
    with pytest.raises(ValueError, match=r"h_0 and c_0 must have shape \(2, 2, 4\)"):
        lstm(torch.randn(5, 2, 3), (torch.zeros(1, 2, 4), torch.zeros(1, 2, 4)))
    with pytest.raises(ValueError, match="at least one step"):
        lstm(torch.randn(0, 2, 3))
    with pytest.raises(ValueError, match="positive"):
        LSTM(0, 4)
    with pytest.raises(ValueError, match="dropout"):
        LSTM(3, 4, dropout=1.5)
    with pytest.raises(ValueError, match=r"LSTMCell expects input"):
        LSTMCell(3, 4)(torch.randn(2, 5))


@pytest.mark.gpu
def test_lstm_matches_torch_on_cuda(experiment):
    """The same parity on a CUDA device (float64; torch's CUDA LSTM then runs without cuDNN)."""
    tol = experiment("lstm_parity")["max_abs_error"]
    ours, ref = lstm_twins(6, 8, num_layers=2, bidirectional=True, batch_first=True, seed=0)
    errors = lstm_parity_errors(ours.cuda(), ref.cuda(), batch=4, steps=9, lengths=[9, 2, 5, 9], with_hx=True,
                                seed=1, device="cuda")
    assert max(errors.values()) <= tol, errors
