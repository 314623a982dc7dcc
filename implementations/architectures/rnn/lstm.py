"""LSTM from tensor ops: ``LSTMCell`` and a multi-layer, optionally bidirectional ``LSTM``.

Reproduces ``torch.nn.LSTMCell`` / ``torch.nn.LSTM`` (Hochreiter & Schmidhuber 1997, with the
forget gate of Gers et al. 2000) with explicit gates and no ``nn.LSTM`` inside:

    i = sigmoid(W_ii x + b_ii + W_hi h + b_hi)        input gate
    f = sigmoid(W_if x + b_if + W_hf h + b_hf)        forget gate
    g = tanh(W_ig x + b_ig + W_hg h + b_hg)           candidate cell
    o = sigmoid(W_io x + b_io + W_ho h + b_ho)        output gate
    c' = f * c + i * g,   h' = o * tanh(c')

Parameter names, shapes, gate order (i, f, g, o), initialisation U(-1/sqrt(H), 1/sqrt(H)) and
the ``forward(input, hx)`` contract match torch's, so ``load_state_dict(nn_lstm.state_dict())``
copies weights in either direction. ``input`` may be a ``PackedSequence``: the recurrence then
runs on the packed data itself, shrinking (forward) or growing (reverse) the active batch at
each step as cuDNN does, so padded positions are never read and never receive gradient.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence

__all__ = ["lstm_cell", "input_gates", "LSTMCell", "LSTM"]


def lstm_cell(gates_x: Tensor, h: Tensor, c: Tensor, weight_hh: Tensor) -> tuple[Tensor, Tensor]:
    """One LSTM step given the input part of the gates.

    Inputs:  gates_x (B, 4H) = x W_ih^T + b_ih + b_hh, computed for the whole sequence at once
             (one big matmul instead of T small ones); h, c (B, H); weight_hh (4H, H)
    Returns: h', c' (B, H)
    """
    gates = torch.addmm(gates_x, h, weight_hh.t())
    # One sigmoid over all four gates (g's is discarded) costs less than three calls.
    i, f, _, o = torch.sigmoid(gates).chunk(4, dim=1)
    g = torch.tanh(gates[:, 2 * c.shape[1]:3 * c.shape[1]])
    c = f * c + i * g
    return o * torch.tanh(c), c


def input_gates(x: Tensor, weight_ih: Tensor, bias_ih: Tensor | None, bias_hh: Tensor | None) -> Tensor:
    """x (N, I) -> x W_ih^T + b_ih + b_hh (N, 4H): the part of the gates that does not recur."""
    gx = x @ weight_ih.t()
    if bias_ih is not None:
        gx = gx + (bias_ih + bias_hh)
    return gx


def _init_uniform(params: list[Tensor], hidden_size: int) -> None:
    """torch's RNN init: every weight and bias ~ U(-1/sqrt(H), 1/sqrt(H))."""
    bound = 1.0 / math.sqrt(hidden_size) if hidden_size > 0 else 0.0
    with torch.no_grad():
        for p in params:
            p.uniform_(-bound, bound)


class LSTMCell(nn.Module):
    """``torch.nn.LSTMCell``: one step. Input (B, input_size) or (input_size,); hx = (h, c),
    each (B, hidden_size) or (hidden_size,), zeros when None. Returns (h', c')."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        if input_size <= 0 or hidden_size <= 0:
            raise ValueError(f"input_size and hidden_size must be positive, got {input_size}, {hidden_size}")
        kw = {"device": device, "dtype": dtype}
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        self.weight_ih = nn.Parameter(torch.empty(4 * hidden_size, input_size, **kw))
        self.weight_hh = nn.Parameter(torch.empty(4 * hidden_size, hidden_size, **kw))
        self.bias_ih = nn.Parameter(torch.empty(4 * hidden_size, **kw)) if bias else None
        self.bias_hh = nn.Parameter(torch.empty(4 * hidden_size, **kw)) if bias else None
        _init_uniform(list(self.parameters()), hidden_size)

    def forward(self, input: Tensor, hx: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, Tensor]:
        if input.dim() not in (1, 2) or input.shape[-1] != self.input_size:
            raise ValueError(f"LSTMCell expects input (B, {self.input_size}) or ({self.input_size},), "
                             f"got {tuple(input.shape)}")
        batched = input.dim() == 2
        x = input if batched else input.unsqueeze(0)
        if hx is None:
            h = c = x.new_zeros(x.shape[0], self.hidden_size)
        else:
            h, c = (t if batched else t.unsqueeze(0) for t in hx)
            if h.shape != (x.shape[0], self.hidden_size) or c.shape != h.shape:
                raise ValueError(f"hx must be two tensors of shape ({x.shape[0]}, {self.hidden_size}), "
                                 f"got {tuple(h.shape)} and {tuple(c.shape)}")
        h, c = lstm_cell(input_gates(x, self.weight_ih, self.bias_ih, self.bias_hh), h, c, self.weight_hh)
        return (h, c) if batched else (h.squeeze(0), c.squeeze(0))


def _run_direction(gx: Tensor, batch_sizes: list[int], h0: Tensor, c0: Tensor, weight_hh: Tensor,
                   reverse: bool) -> tuple[Tensor, Tensor, Tensor]:
    """Run one direction over packed, time-major data.

    gx (N, 4H): input gates of every valid step, time-major, batch sorted by length (longest
    first); batch_sizes[t] rows are active at step t. h0, c0 (B, H) in the same sorted order.
    Returns the outputs (N, H) in gx's row order and the final h, c (B, H): for each sequence,
    the state after its own last step (forward) or its first step (reverse).
    """
    # split() once, not gx[a:b] per step: each slice's backward would allocate a zero
    # gradient the size of all of gx, T times over.
    steps = gx.split(batch_sizes)
    outs: list[Tensor] = [gx.new_empty(0)] * len(batch_sizes)
    if not reverse:
        h, c = h0, c0
        done_h, done_c = [], []
        for t, bs in enumerate(batch_sizes):
            if bs < h.shape[0]:  # the shortest sequences have ended: set their final state aside
                done_h.append(h[bs:])
                done_c.append(c[bs:])
                h, c = h[:bs], c[:bs]
            h, c = lstm_cell(steps[t], h, c, weight_hh)
            outs[t] = h
        h_n = torch.cat([h] + done_h[::-1]) if done_h else h
        c_n = torch.cat([c] + done_c[::-1]) if done_c else c
    else:
        h, c = h0[:0], c0[:0]
        for t in range(len(batch_sizes) - 1, -1, -1):
            bs = batch_sizes[t]
            if bs > h.shape[0]:  # sequences whose last step is t start here from their h0, c0
                h, c = torch.cat([h, h0[h.shape[0]:bs]]), torch.cat([c, c0[c.shape[0]:bs]])
            h, c = lstm_cell(steps[t], h, c, weight_hh)
            outs[t] = h
        h_n, c_n = h, c
    return torch.cat(outs), h_n, c_n


class LSTM(nn.Module):
    """``torch.nn.LSTM`` (without ``proj_size``): a stack of ``num_layers`` LSTM layers.

    input: (T, B, input_size), (B, T, input_size) if batch_first, (T, input_size) unbatched,
           or a PackedSequence.
    hx:    (h_0, c_0), each (D * num_layers, B, hidden_size), D = 2 if bidirectional else 1;
           zeros when None. Layer l's forward direction is row D*l, its reverse row D*l + 1.
    Returns output (same layout as input, last dim D * hidden_size; a PackedSequence for a
    packed input) and (h_n, c_n), each (D * num_layers, B, hidden_size).
    ``dropout`` is applied to every layer's output but the last, in training mode only.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        if input_size <= 0 or hidden_size <= 0 or num_layers <= 0:
            raise ValueError("input_size, hidden_size and num_layers must be positive, got "
                             f"{input_size}, {hidden_size}, {num_layers}")
        if not 0.0 <= dropout <= 1.0:
            raise ValueError(f"dropout must be in [0, 1], got {dropout}")
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout = bias, batch_first, float(dropout)
        self.bidirectional = bidirectional
        self.num_directions = 2 if bidirectional else 1
        kw = {"device": device, "dtype": dtype}
        for layer in range(num_layers):
            layer_in = input_size if layer == 0 else hidden_size * self.num_directions
            for suffix in ("", "_reverse")[: self.num_directions]:
                name = f"l{layer}{suffix}"
                setattr(self, f"weight_ih_{name}", nn.Parameter(torch.empty(4 * hidden_size, layer_in, **kw)))
                setattr(self, f"weight_hh_{name}", nn.Parameter(torch.empty(4 * hidden_size, hidden_size, **kw)))
                if bias:
                    setattr(self, f"bias_ih_{name}", nn.Parameter(torch.empty(4 * hidden_size, **kw)))
                    setattr(self, f"bias_hh_{name}", nn.Parameter(torch.empty(4 * hidden_size, **kw)))
        _init_uniform(list(self.parameters()), hidden_size)

    def _weights(self, layer: int, reverse: bool) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
        name = f"l{layer}{'_reverse' if reverse else ''}"
        w_ih, w_hh, b_ih, b_hh = (getattr(self, f"{kind}_{name}", None)
                                  for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
        return w_ih, w_hh, b_ih, b_hh

    def _check_hx(self, hx: tuple[Tensor, Tensor], batch: int) -> None:
        shape = (self.num_directions * self.num_layers, batch, self.hidden_size)
        if not isinstance(hx, (tuple, list)) or len(hx) != 2:
            raise ValueError("hx must be a tuple (h_0, c_0)")
        if tuple(hx[0].shape) != shape or tuple(hx[1].shape) != shape:
            raise ValueError(f"h_0 and c_0 must have shape {shape}, got {tuple(hx[0].shape)} "
                             f"and {tuple(hx[1].shape)}")

    def forward(self, input: Tensor | PackedSequence, hx: tuple[Tensor, Tensor] | None = None
                ) -> tuple[Tensor | PackedSequence, tuple[Tensor, Tensor]]:
        packed = isinstance(input, PackedSequence)
        unbatched = False
        if packed:
            data, batch_sizes = input.data, [int(b) for b in input.batch_sizes]
            batch = batch_sizes[0]
            sorted_idx, unsorted_idx = input.sorted_indices, input.unsorted_indices
        else:
            if input.dim() not in (2, 3):
                raise ValueError(f"LSTM expects a 2-D (unbatched) or 3-D input, got shape {tuple(input.shape)}")
            unbatched = input.dim() == 2
            x = input.unsqueeze(1) if unbatched else (input.transpose(0, 1) if self.batch_first else input)
            steps, batch = x.shape[0], x.shape[1]
            if steps == 0 or batch == 0:
                raise ValueError(f"LSTM needs at least one step and one sequence, got shape {tuple(input.shape)}")
            data, batch_sizes = x.reshape(steps * batch, x.shape[2]), [batch] * steps
            sorted_idx = unsorted_idx = None
        if data.shape[-1] != self.input_size:
            raise ValueError(f"input has {data.shape[-1]} features, expected input_size={self.input_size}")

        if hx is None:
            zeros = data.new_zeros(self.num_directions * self.num_layers, batch, self.hidden_size)
            h0, c0 = zeros, zeros
        else:
            if unbatched:
                hx = (hx[0].unsqueeze(1), hx[1].unsqueeze(1))
            self._check_hx(hx, batch)
            h0, c0 = hx
            if sorted_idx is not None:  # the packed batch is sorted by length; so must the states be
                h0, c0 = h0.index_select(1, sorted_idx), c0.index_select(1, sorted_idx)

        h_n, c_n = [], []
        for layer in range(self.num_layers):
            outs = []
            for d in range(self.num_directions):
                w_ih, w_hh, b_ih, b_hh = self._weights(layer, reverse=d == 1)
                gx = input_gates(data, w_ih, b_ih, b_hh)
                k = self.num_directions * layer + d
                out, h, c = _run_direction(gx, batch_sizes, h0[k], c0[k], w_hh, reverse=d == 1)
                outs.append(out)
                h_n.append(h)
                c_n.append(c)
            data = torch.cat(outs, dim=1) if len(outs) > 1 else outs[0]
            if self.dropout > 0 and self.training and layer < self.num_layers - 1:
                data = nn.functional.dropout(data, self.dropout, training=True)
        h_n, c_n = torch.stack(h_n), torch.stack(c_n)
        if unsorted_idx is not None:
            h_n, c_n = h_n.index_select(1, unsorted_idx), c_n.index_select(1, unsorted_idx)

        if packed:
            return PackedSequence(data, input.batch_sizes, sorted_idx, unsorted_idx), (h_n, c_n)
        out = data.reshape(len(batch_sizes), batch, -1)
        if unbatched:
            return out.squeeze(1), (h_n.squeeze(1), c_n.squeeze(1))
        return (out.transpose(0, 1) if self.batch_first else out), (h_n, c_n)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}"
        if self.batch_first:
            s += ", batch_first=True"
        if self.bidirectional:
            s += ", bidirectional=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        return s
