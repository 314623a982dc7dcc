"""Wrong implementations of the PyTorch architectures (cnn, rnn, transformers), each the original
with one realistic bug. Each runs with its target module's globals (torch, F, math, ...)."""
from __future__ import annotations

# ruff: noqa: F821  -- names resolve in the target module once planted

from assessments.harness.mutants import Mutant

A = "implementations.architectures"
LSTM_CELL = "assessments/rnn/test_lstm_parity.py::test_lstm_cell_matches_torch"
LSTM_PARITY = "assessments/rnn/test_lstm_parity.py::test_unbatched_and_default_state_match_torch"
SDPA = "assessments/transformers/test_attention_parity.py::test_sdpa_matches_torch"
MHA = "assessments/transformers/test_attention_parity.py::test_multihead_matches_torch"
SINUSOIDAL = "assessments/transformers/test_positional.py::test_sinusoidal_matches_the_formula"
ROPE_HF = "assessments/transformers/test_positional.py::test_rope_matches_complex_rotation_and_hugging_face"
RESNET = "assessments/cnn/test_resnet.py::test_forward_matches_transformers_resnet_float64"
SE_SD = "assessments/cnn/test_efficientnet.py::test_stochastic_depth_and_se_behave"
SAME = "assessments/cnn/test_efficientnet.py::test_conv2d_same_matches_tensorflow"


# ---------------------------------------------------------------- rnn
def lstm_cell_output_gate_tanh(gates_x, h, c, weight_hh):
    gates = torch.addmm(gates_x, h, weight_hh.t())
    i, f, _, _ = torch.sigmoid(gates).chunk(4, dim=1)
    H = c.shape[1]
    g = torch.tanh(gates[:, 2 * H:3 * H])
    o = torch.tanh(gates[:, 3 * H:])  # a gate must lie in (0, 1): sigmoid, not tanh
    c = f * c + i * g
    return o * torch.tanh(c), c


def lstm_cell_gate_order_ifog(gates_x, h, c, weight_hh):
    gates = torch.addmm(gates_x, h, weight_hh.t())
    i, f, o, _ = torch.sigmoid(gates).chunk(4, dim=1)  # torch's order is i, f, g, o
    g = torch.tanh(gates[:, 3 * c.shape[1]:])
    c = f * c + i * g
    return o * torch.tanh(c), c


def lstm_cell_without_tanh_on_cell(gates_x, h, c, weight_hh):
    gates = torch.addmm(gates_x, h, weight_hh.t())
    i, f, _, o = torch.sigmoid(gates).chunk(4, dim=1)
    g = torch.tanh(gates[:, 2 * c.shape[1]:3 * c.shape[1]])
    c = f * c + i * g
    return o * c, c


def input_gates_one_bias(x, weight_ih, bias_ih, bias_hh):
    gx = x @ weight_ih.t()
    if bias_ih is not None:
        gx = gx + bias_ih  # torch's LSTM has two biases; b_hh is dropped here
    return gx


# ---------------------------------------------------------------- transformers
def attend_mask_after_softmax(query, key, value, attn_mask, dropout_p, scale):
    scores = torch.matmul(query * scale, key.transpose(-2, -1))
    weights = torch.softmax(scores, dim=-1)
    if attn_mask is not None:  # masked weights zeroed after the softmax: rows no longer sum to 1
        if attn_mask.dtype == torch.bool:
            weights = weights.masked_fill(~attn_mask, 0.0)
        else:
            weights = weights * torch.exp(attn_mask)
    if dropout_p > 0.0:
        weights = F.dropout(weights, p=dropout_p, training=True)
    return torch.matmul(weights, value), weights


def attend_unscaled(query, key, value, attn_mask, dropout_p, scale):
    scores = torch.matmul(query, key.transpose(-2, -1))  # the 1/sqrt(d_k) forgotten
    if attn_mask is not None:
        if attn_mask.dtype == torch.bool:
            scores = scores.masked_fill(~attn_mask, float("-inf"))
        else:
            scores = scores + attn_mask
    weights = masked_softmax(scores) if attn_mask is not None else torch.softmax(scores, dim=-1)
    if dropout_p > 0.0:
        weights = F.dropout(weights, p=dropout_p, training=True)
    return torch.matmul(weights, value), weights


def attend_softmax_over_queries(query, key, value, attn_mask, dropout_p, scale):
    scores = torch.matmul(query * scale, key.transpose(-2, -1))
    if attn_mask is not None:
        if attn_mask.dtype == torch.bool:
            scores = scores.masked_fill(~attn_mask, float("-inf"))
        else:
            scores = scores + attn_mask
    weights = torch.softmax(scores, dim=-2).nan_to_num(0.0)  # normalised over queries, not keys
    if dropout_p > 0.0:
        weights = F.dropout(weights, p=dropout_p, training=True)
    return torch.matmul(weights, value), weights


def project_q_and_k_swapped(self, query, key, value):
    E = self.embed_dim
    b = self.in_proj_bias
    bq, bk, bv = (None, None, None) if b is None else (b[E:2 * E], b[:E], b[2 * E:])
    if self._packed:
        wk, wq, wv = self.in_proj_weight.chunk(3, dim=0)  # packed rows are q, k, v in that order
    else:
        wq, wk, wv = self.q_proj_weight, self.k_proj_weight, self.v_proj_weight
    return F.linear(query, wq, bq), F.linear(key, wk, bk), F.linear(value, wv, bv)


def sinusoidal_forward_added_twice(self, x):
    if x.dim() != 3 or x.shape[-1] != self.d_model:
        raise ValueError(f"expected (N, T, {self.d_model}), got {tuple(x.shape)}")
    _check_length(x.shape[1], self.max_len)
    pe = sinusoidal_table(x.shape[1], self.d_model).to(x.device, x.dtype)
    return self.dropout(x + pe) + pe  # once in the embedding, once again after it


def sinusoidal_table_sin_cos_swapped(max_len, d_model, dtype=None):  # the original keeps its own defaults
    _check_even("d_model", d_model)
    pos = torch.arange(max_len, dtype=torch.float64)[:, None]
    inv_freq = 10000.0 ** (-torch.arange(0, d_model, 2, dtype=torch.float64) / d_model)
    table = torch.empty(max_len, d_model, dtype=torch.float64)
    table[:, 0::2] = torch.cos(pos * inv_freq)
    table[:, 1::2] = torch.sin(pos * inv_freq)
    return table.to(dtype)


def rotate_half_wrong_way(x):
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((x2, -x1), dim=-1)  # still a rotation, by -m*theta: relative, but not RoPE's


# ---------------------------------------------------------------- cnn
def resnet_forward_without_maxpool(self, x):
    _check_input(x, self.in_channels, "ResNet")
    x = self.relu(self.bn1(self.conv1(x)))
    x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
    return self.fc(torch.flatten(self.avgpool(x), 1))


def basic_block_without_relu_after_add(self, x):
    out = self.relu(self.bn1(self.conv1(x)))
    out = self.bn2(self.conv2(out))
    if self.residual:
        out = out + (x if self.downsample is None else self.downsample(x))
    return out


def bottleneck_relu_before_add(self, x):
    out = self.relu(self.bn1(self.conv1(x)))
    out = self.relu(self.bn2(self.conv2(out)))
    out = self.relu(self.bn3(self.conv3(out)))
    if self.residual:
        out = out + (x if self.downsample is None else self.downsample(x))
    return out


def same_pad_extra_pixel_first(size, kernel, stride, dilation):
    total = max((math.ceil(size / stride) - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total - total // 2, total // 2  # TF puts the odd pixel bottom/right


def stochastic_depth_not_rescaled(x, p, training):
    if not training or p == 0.0:
        return x
    keep = torch.empty((x.shape[0],) + (1,) * (x.ndim - 1), dtype=x.dtype, device=x.device)
    keep.bernoulli_(1.0 - p)
    return x * keep


def stochastic_depth_per_element(x, p, training):
    if not training or p == 0.0:
        return x
    keep = torch.empty_like(x).bernoulli_(1.0 - p)  # drops single activations, not whole branches
    return x * keep / (1.0 - p)


def squeeze_excitation_without_sigmoid(self, x):
    scale = self.fc2(self.activation(self.fc1(self.avgpool(x))))
    return x * scale


MUTANTS = [
    Mutant("lstm_output_gate_tanh", "rnn", "LSTM output gate through tanh instead of sigmoid",
           f"{A}.rnn.lstm:lstm_cell", lstm_cell_output_gate_tanh, (LSTM_CELL,)),
    Mutant("lstm_gate_order_ifog", "rnn", "LSTM gates chunked as i, f, o, g (torch: i, f, g, o)",
           f"{A}.rnn.lstm:lstm_cell", lstm_cell_gate_order_ifog, (LSTM_CELL,)),
    Mutant("lstm_no_tanh_on_cell", "rnn", "LSTM hidden state o * c instead of o * tanh(c)",
           f"{A}.rnn.lstm:lstm_cell", lstm_cell_without_tanh_on_cell, (LSTM_CELL,)),
    Mutant("lstm_one_bias", "rnn", "LSTM adds b_ih but forgets b_hh",
           f"{A}.rnn.lstm:input_gates", input_gates_one_bias, (LSTM_CELL, LSTM_PARITY)),
    Mutant("attention_mask_after_softmax", "transformers",
           "attention mask applied to the weights after the softmax (rows no longer sum to 1)",
           f"{A}.transformers.attention:_attend", attend_mask_after_softmax, (SDPA,)),
    Mutant("attention_unscaled", "transformers", "scores not scaled by 1/sqrt(d_k)",
           f"{A}.transformers.attention:_attend", attend_unscaled, (SDPA,)),
    Mutant("attention_softmax_over_queries", "transformers", "softmax taken over the query axis",
           f"{A}.transformers.attention:_attend", attend_softmax_over_queries, (SDPA,)),
    Mutant("mha_q_k_projections_swapped", "transformers", "packed in_proj rows read as k, q, v",
           f"{A}.transformers.attention:MultiHeadAttention._project", project_q_and_k_swapped, (MHA,)),
    Mutant("positional_encoding_added_twice", "transformers", "sinusoidal encoding added twice",
           f"{A}.transformers.positional:SinusoidalPositionalEncoding.forward", sinusoidal_forward_added_twice,
           (SINUSOIDAL,)),
    Mutant("sinusoidal_sin_cos_swapped", "transformers", "cos on even dimensions, sin on odd",
           f"{A}.transformers.positional:sinusoidal_table", sinusoidal_table_sin_cos_swapped, (SINUSOIDAL,)),
    Mutant("rope_rotates_the_wrong_way", "transformers", "rotate_half gives (x2, -x1): RoPE by -m*theta",
           f"{A}.transformers.positional:rotate_half", rotate_half_wrong_way, (ROPE_HF,),
           needs=("torch", "transformers")),
    Mutant("resnet_without_stem_maxpool", "cnn", "ResNet stem skips the 3x3/2 max-pool",
           f"{A}.cnn.resnet:ResNet.forward", resnet_forward_without_maxpool, (f"{RESNET}[resnet18]",),
           needs=("torch", "transformers")),
    Mutant("basic_block_no_relu_after_add", "cnn", "BasicBlock returns the sum without the final ReLU",
           f"{A}.cnn.resnet:BasicBlock.forward", basic_block_without_relu_after_add, (f"{RESNET}[resnet18]",),
           needs=("torch", "transformers")),
    Mutant("bottleneck_relu_before_add", "cnn", "Bottleneck applies ReLU to the branch before the addition",
           f"{A}.cnn.resnet:Bottleneck.forward", bottleneck_relu_before_add, (f"{RESNET}[resnet50]",),
           needs=("torch", "transformers")),
    Mutant("conv2d_same_padding_wrong_side", "cnn", "TF-SAME odd padding pixel put top/left",
           f"{A}.cnn.efficientnet:Conv2dSame.same_pad", same_pad_extra_pixel_first, (SAME,),
           needs=("torch", "tensorflow")),
    Mutant("stochastic_depth_not_rescaled", "cnn", "stochastic depth keeps branches without 1/(1-p)",
           f"{A}.cnn.efficientnet:stochastic_depth", stochastic_depth_not_rescaled, (SE_SD,)),
    Mutant("stochastic_depth_per_element", "cnn", "stochastic depth drops elements, not whole samples",
           f"{A}.cnn.efficientnet:stochastic_depth", stochastic_depth_per_element, (SE_SD,)),
    Mutant("squeeze_excitation_without_sigmoid", "cnn", "SE gate used without its sigmoid",
           f"{A}.cnn.efficientnet:SqueezeExcitation.forward", squeeze_excitation_without_sigmoid, (SE_SD,)),
]
