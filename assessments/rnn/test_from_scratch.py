"""Our LSTM is built from tensor ops, not borrowed (requirement rnn.1).

Parity with torch.nn.LSTM (test_lstm_parity.py) would also pass if our module called torch's
fused kernel. Here every torch twin of a recurrent layer (`torch._VF.lstm`/`lstm_cell`,
`torch.lstm`, `nn.LSTM`/`nn.LSTMCell`/`nn.RNNBase.forward`, GRU and RNN alike) is patched to
raise, and our LSTM, LSTMCell and the three models built on them (tagger, character model,
forecaster) still run forward and backward; the LSTM results equal torch's own, computed before
patching, in float64; the models give exactly what they gave before the patch.
"""
import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from assessments.forbidden import TwinCalled, forbid, forward_backward, max_difference, package_modules
from assessments.rnn._helpers import lstm_twins
from implementations.architectures.rnn.forecasting import LSTMForecaster
from implementations.architectures.rnn.language_model import CharLSTM
from implementations.architectures.rnn.lstm import LSTMCell
from implementations.architectures.rnn.tagger import LSTMTagger

pytestmark = pytest.mark.torch
F64 = torch.float64
TWINS = ["torch._VF.lstm", "torch._VF.lstm_cell", "torch.lstm", "torch.lstm_cell", "torch._VF.gru",
         "torch._VF.gru_cell", "torch._VF.rnn_tanh", "torch._VF.rnn_relu", "torch.nn.LSTM.forward",
         "torch.nn.LSTMCell.forward", "torch.nn.GRU.forward", "torch.nn.GRUCell.forward", "torch.nn.RNN.forward",
         "torch.nn.RNNCell.forward", "torch.nn.modules.rnn.RNNBase.forward"]


def guarded():
    return forbid(TWINS, package_modules("implementations.architectures.rnn"))


def test_the_guard_has_teeth():
    x = torch.zeros(4, 1, 2)
    with guarded():
        with pytest.raises(TwinCalled, match="(?i)lstm"):
            torch.nn.LSTM(2, 3)(x)
        with pytest.raises(TwinCalled, match="LSTMCell"):
            torch.nn.LSTMCell(2, 3)(x[0])
    assert torch.nn.LSTM(2, 3)(x)[0].shape == (4, 1, 3)


@pytest.mark.parametrize("packed", [False, True])
def test_lstm_runs_without_torchs_lstm(packed, evidence):
    """2 layers, bidirectional, batch_first, initial states; packed or padded input."""
    ours, ref = lstm_twins(5, 7, num_layers=2, bidirectional=True, batch_first=True, seed=0)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, 6, 5, dtype=F64, generator=g).requires_grad_()
    hx = tuple(torch.randn(4, 3, 7, dtype=F64, generator=g).requires_grad_() for _ in range(2))
    lengths = torch.tensor([6, 2, 4])

    def call(model):
        def run():
            inp = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False) if packed else x
            out, (h, c) = model(inp, hx)
            if packed:
                out = pad_packed_sequence(out, batch_first=True, total_length=6)[0]
            return out, h, c
        return run

    leaves = lambda m: {"x": x, "h0": hx[0], "c0": hx[1], **dict(m.named_parameters())}  # noqa: E731
    theirs = forward_backward(call(ref), leaves(ref))
    with guarded():
        mine = forward_backward(call(ours), leaves(ours))
    err = max_difference(mine, theirs)
    evidence.metric(f"guarded_lstm_packed_{packed}_max_abs_error_vs_torch", err, threshold=1e-10,
                    direction="lower", key=packed)
    assert err <= 1e-10


def test_lstm_cell_runs_without_torchs_cell():
    torch.manual_seed(0)
    ref, ours = torch.nn.LSTMCell(4, 6, dtype=F64), LSTMCell(4, 6, dtype=F64)
    ours.load_state_dict(ref.state_dict())
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, 4, dtype=F64, generator=g).requires_grad_()
    hx = tuple(torch.randn(3, 6, dtype=F64, generator=g) for _ in range(2))
    theirs = forward_backward(lambda: ref(x, hx), {"x": x, **dict(ref.named_parameters())})
    with guarded():
        mine = forward_backward(lambda: ours(x, hx), {"x": x, **dict(ours.named_parameters())})
    assert max_difference(mine, theirs) <= 1e-10


def test_lstm_models_run_without_torchs_lstm():
    """The tagger (packed BiLSTM), the character model and the forecaster give bit-for-bit what
    they gave before torch's recurrent layers were patched."""
    torch.manual_seed(0)
    tagger = LSTMTagger(30, 5, embedding_dim=8, hidden_size=6, bidirectional=True).double()
    char = CharLSTM(20, embedding_dim=8, hidden_size=12).double()
    forecaster = LSTMForecaster([0.1, 0.5, 0.9], hidden_size=6).double()
    g = torch.Generator().manual_seed(1)
    tokens, lengths = torch.randint(1, 30, (3, 7), generator=g), torch.tensor([7, 3, 5])
    tokens[1, 3:], tokens[2, 5:] = 0, 0
    ids, windows = torch.randint(0, 20, (2, 9), generator=g), torch.randn(4, 10, dtype=F64, generator=g)

    def run() -> dict:
        res = {}
        for name, model, fn in (("tagger", tagger, lambda: tagger(tokens, lengths)), ("char", char, lambda: char(ids)),
                                ("forecaster", forecaster, lambda: forecaster(windows))):
            res.update({f"{name}_{k}": t for k, t in forward_backward(fn, dict(model.named_parameters())).items()})
        return res

    before = run()
    with guarded():
        inside = run()
    assert max_difference(inside, before) == 0.0
