"""Shared machinery of the RNN assessments: LSTM twins with copied weights and their parity."""
from __future__ import annotations

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from implementations.architectures.rnn.lstm import LSTM
from implementations.config import load_experiment


def module_experiment(request: pytest.FixtureRequest, name: str) -> dict:
    """experiments/rnn.toml settings for a module-scoped fixture (the `experiment` fixture is per test)."""
    return load_experiment("rnn", name, request.config.getoption("--budget"))


def run_seed(request: pytest.FixtureRequest) -> int:
    return int(request.config.getoption("--seed"))


def lstm_twins(input_size: int, hidden_size: int, num_layers: int = 1, bidirectional: bool = False,
               batch_first: bool = False, bias: bool = True, seed: int = 0) -> tuple[LSTM, torch.nn.LSTM]:
    """Our LSTM and torch.nn.LSTM in float64, torch's weights copied into ours."""
    torch.manual_seed(seed)
    kw = dict(num_layers=num_layers, bidirectional=bidirectional, batch_first=batch_first, bias=bias,
              dtype=torch.float64)
    ref = torch.nn.LSTM(input_size, hidden_size, **kw)
    ours = LSTM(input_size, hidden_size, **kw)
    ours.load_state_dict(ref.state_dict())  # strict: the parameter names and shapes must agree
    return ours, ref


def _max_abs(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape, f"shape {tuple(a.shape)} != {tuple(b.shape)}"
    return float((a - b).abs().max()) if a.numel() else 0.0


def lstm_parity_errors(ours: LSTM, ref: torch.nn.LSTM, batch: int, steps: int, lengths: list[int] | None,
                       with_hx: bool, seed: int = 0, device: str = "cpu") -> dict[str, float]:
    """Run both on the same input (packed when ``lengths`` is given), backpropagate the same
    random linear functional of output, h_n and c_n, and return the worst absolute difference of
    output, h_n, c_n, d/d input, d/d (h_0, c_0) and d/d every parameter."""
    g = torch.Generator().manual_seed(seed)
    shape = (batch, steps, ours.input_size) if ours.batch_first else (steps, batch, ours.input_size)
    x = torch.randn(shape, generator=g, dtype=torch.float64).to(device)
    n_states = ours.num_directions * ours.num_layers
    hx = tuple(torch.randn(n_states, batch, ours.hidden_size, generator=g, dtype=torch.float64).to(device)
               for _ in range(2)) if with_hx else None
    weights: dict[str, torch.Tensor] = {}

    def run(model: torch.nn.Module) -> dict[str, torch.Tensor]:
        model.zero_grad()
        xi = x.clone().requires_grad_()
        hi = tuple(t.clone().requires_grad_() for t in hx) if hx is not None else None
        inp = xi if lengths is None else pack_padded_sequence(
            xi, torch.tensor(lengths), batch_first=ours.batch_first, enforce_sorted=False)
        out, (h, c) = model(inp, hi)
        if lengths is not None:
            out, _ = pad_packed_sequence(out, batch_first=ours.batch_first, total_length=steps)
        for name, t in (("out", out), ("h", h), ("c", c)):
            if name not in weights:  # the same random functional for both models
                weights[name] = torch.randn(t.shape, generator=g, dtype=torch.float64).to(device)
        loss = sum((t * weights[n]).sum() for n, t in (("out", out), ("h", h), ("c", c)))
        loss.backward()
        res = {"output": out.detach(), "h_n": h.detach(), "c_n": c.detach(), "grad_input": xi.grad}
        if hi is not None:
            res["grad_h0"], res["grad_c0"] = hi[0].grad, hi[1].grad
        res.update({f"grad_{n}": p.grad for n, p in model.named_parameters()})
        return res

    a, b = run(ours), run(ref)
    assert a.keys() == b.keys()
    errors = {k: _max_abs(a[k], b[k]) for k in ("output", "h_n", "c_n", "grad_input")}
    if hx is not None:
        errors["grad_hx"] = max(_max_abs(a["grad_h0"], b["grad_h0"]), _max_abs(a["grad_c0"], b["grad_c0"]))
    errors["grad_params"] = max(_max_abs(a[k], b[k]) for k in a if k.startswith("grad_") and k[5:] in
                                dict(ours.named_parameters()))
    return errors
