"""Variable-length sequences: packing in the LSTM and tagger, masking in the loss (requirement rnn.3).

Properties over hypothesis-generated batches: a sequence's outputs, final states, loss and
gradient contributions are the same whether it runs alone or padded in a batch with longer
sequences; padded positions never receive gradient (and NaN written into them changes nothing).
A control shows that without packing and masking these properties fail.
"""
import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from implementations.architectures.rnn.lstm import LSTM
from implementations.architectures.rnn.ner import BucketBatchSampler
from implementations.architectures.rnn.tagger import (NUM_SHAPES, LSTMTagger, length_mask, masked_cross_entropy,
                                                      sequence_losses, word_shape)
from implementations.config import load_experiment
from implementations.data.torch_datasets import pad_collate

pytestmark = pytest.mark.torch
CFG = load_experiment("rnn", "variable_length")
TOL = CFG["max_abs_error"]


@st.composite
def ragged_batches(draw):
    """Lengths with at least one sequence shorter than the longest, and which one to isolate."""
    lengths = draw(st.lists(st.integers(1, 9), min_size=2, max_size=5))
    if min(lengths) == max(lengths):
        lengths[0] = max(lengths) + 1
    i = draw(st.sampled_from([k for k, n in enumerate(lengths) if n < max(lengths)]))
    return lengths, i, draw(st.integers(0, 2**16))


def _padded(lengths: list[int], features: int, seed: int) -> torch.Tensor:
    """(B, T_max, F) float64 with NaN in every padded position: if anything read them, it would show."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(len(lengths), max(lengths), features, generator=g, dtype=torch.float64)
    return x.masked_fill(~length_mask(torch.tensor(lengths))[..., None], float("nan"))


@settings(max_examples=CFG["max_examples"], deadline=None, derandomize=True)
@given(case=ragged_batches(), bidirectional=st.booleans(), num_layers=st.integers(1, 2))
def test_lstm_sequence_alone_equals_sequence_in_padded_batch(case, bidirectional, num_layers):
    lengths, i, seed = case
    torch.manual_seed(seed)
    lstm = LSTM(3, 4, num_layers=num_layers, bidirectional=bidirectional, batch_first=True, dtype=torch.float64)
    x = _padded(lengths, 3, seed).requires_grad_()
    packed = pack_padded_sequence(x, torch.tensor(lengths), batch_first=True, enforce_sorted=False)
    out, (h, c) = lstm(packed)
    out, _ = pad_packed_sequence(out, batch_first=True)
    out.sum().backward()
    n = lengths[i]
    alone, (h1, c1) = lstm(x.detach()[i:i + 1, :n])  # a plain (1, n, 3) tensor: no padding at all
    assert (out[i, :n] - alone[0]).abs().max() <= TOL
    assert (h[:, i] - h1[:, 0]).abs().max() <= TOL and (c[:, i] - c1[:, 0]).abs().max() <= TOL
    pad = ~length_mask(torch.tensor(lengths))
    assert torch.all(out[pad] == 0), "pad_packed_sequence fills padded outputs with zeros"
    assert torch.isfinite(x.grad).all() and torch.all(x.grad[pad] == 0), "a padded position received gradient"


@settings(max_examples=CFG["max_examples"], deadline=None, derandomize=True)
@given(case=ragged_batches())
def test_tagger_loss_and_gradients_do_not_depend_on_the_batch(case):
    """Per-sequence loss alone == in the batch; the batch's summed loss has exactly the sum of the
    sequences' own parameter gradients; padded embeddings get zero gradient."""
    lengths, i, seed = case
    torch.manual_seed(seed)
    tagger = LSTMTagger(vocab_size=12, num_tags=5, embedding_dim=4, hidden_size=3, bidirectional=True).double()
    g = torch.Generator().manual_seed(seed)
    items = [(torch.randint(1, 12, (n,), generator=g), torch.randint(0, 5, (n,), generator=g)) for n in lengths]
    tokens, lens, tags = pad_collate(items)  # the data layer's collate: <pad>=0, tags -100
    x = tagger.embed(tokens).masked_fill(tokens[..., None] == 0, float("nan"))
    x.retain_grad()
    logits = tagger.tag(x, lens)
    per_seq = sequence_losses(logits, tags, lens)
    per_seq.sum().backward()
    batch_grads = [p.grad.clone() for p in tagger.parameters()]
    assert torch.isfinite(x.grad).all() and torch.all(x.grad[tokens == 0] == 0)

    summed = [torch.zeros_like(p) for p in tagger.parameters()]
    for k, (ids, tg) in enumerate(items):
        tagger.zero_grad()
        alone = tagger(ids[None], torch.tensor([len(ids)]))
        loss = sequence_losses(alone, tg[None])[0]
        loss.backward()
        summed = [s + p.grad for s, p in zip(summed, tagger.parameters())]
        assert abs(loss.item() - per_seq[k].item()) <= TOL
        if k == i:
            assert (alone[0] - logits[k, : len(ids)]).abs().max() <= TOL
    assert max(float((a - b).abs().max()) for a, b in zip(batch_grads, summed)) <= TOL


def test_masked_loss_matches_torch_ignore_index(evidence):
    """masked_cross_entropy == F.cross_entropy(ignore_index=-100) on a pad_collate batch, float64."""
    g = torch.Generator().manual_seed(0)
    items = [(torch.randint(1, 9, (n,), generator=g), torch.randint(0, 6, (n,), generator=g)) for n in (7, 2, 5)]
    _, lengths, tags = pad_collate(items)
    logits = torch.randn(3, 7, 6, generator=g, dtype=torch.float64)
    ours = masked_cross_entropy(logits, tags, lengths)
    ref = torch.nn.functional.cross_entropy(logits.flatten(0, 1), tags.flatten(), ignore_index=-100)
    err = abs(ours.item() - ref.item())
    evidence.metric("masked_loss_abs_error_vs_torch", err, threshold=TOL, direction="lower")
    assert err <= TOL
    assert masked_cross_entropy(logits, tags, lengths, reduction="none")[tags == -100].abs().max() == 0


def test_without_packing_and_masking_the_batch_leaks_in(evidence):
    """Control: run the same bidirectional LSTM on the padded tensor (no packing) and score with an
    unmasked loss: the short sequence's outputs and loss now depend on its padding."""
    torch.manual_seed(0)
    lstm = LSTM(3, 4, bidirectional=True, batch_first=True, dtype=torch.float64).requires_grad_(False)
    lengths = [8, 3]
    x = _padded(lengths, 3, seed=0).nan_to_num(0.0)  # zero padding, as a naive pipeline would feed
    naive, _ = lstm(x)
    alone, _ = lstm(x[1:2, :3])
    leak = float((naive[1, :3] - alone[0]).abs().max())
    packed, _ = lstm(pack_padded_sequence(x, torch.tensor(lengths), batch_first=True, enforce_sorted=False))
    packed, _ = pad_packed_sequence(packed, batch_first=True)
    exact = float((packed[1, :3] - alone[0]).abs().max())
    evidence.metric("unpacked_bidirectional_output_error", leak, threshold=1e-3, direction="higher")
    evidence.metric("packed_bidirectional_output_error", exact, threshold=TOL, direction="lower", key=True)
    assert leak > 1e-3, "the reverse direction should read the padding when nothing is packed"
    assert exact <= TOL

    logits = torch.randn(2, 8, 5, dtype=torch.float64)
    tags = torch.tensor([[1] * 8, [2, 0, 4] + [-100] * 5])
    masked = sequence_losses(logits, tags)[1]
    unmasked = torch.nn.functional.cross_entropy(logits[1], tags[1].clamp_min(0))  # padding scored as tag 0
    assert abs(masked.item() - torch.nn.functional.cross_entropy(logits[1, :3], tags[1, :3]).item()) <= TOL
    assert abs(masked.item() - unmasked.item()) > 1e-3


def test_bad_lengths_and_shapes_raise():
    tagger = LSTMTagger(vocab_size=5, num_tags=3, embedding_dim=2, hidden_size=2)
    with pytest.raises(ValueError, match="lengths must lie in 1..4"):
        tagger(torch.ones(2, 4, dtype=torch.long), torch.tensor([5, 2]))
    with pytest.raises(ValueError, match="lengths must lie in 1..4"):
        tagger(torch.ones(2, 4, dtype=torch.long), torch.tensor([0, 2]))
    with pytest.raises(ValueError, match=r"expected logits \(B, T, C\) and tags \(B, T\)"):
        masked_cross_entropy(torch.zeros(2, 4, 3), torch.zeros(2, 5, dtype=torch.long))
    with pytest.raises(ValueError, match="reduction"):
        masked_cross_entropy(torch.zeros(2, 4, 3), torch.zeros(2, 4, dtype=torch.long), reduction="max")


def test_bucket_batches_cover_every_sequence_once_with_less_padding():
    """Length bucketing (used for WNUT-16 training): each epoch is a permutation of the data,
    seeded, and the recurrence runs fewer steps than with random batches of the same size."""
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 40, size=500).tolist()
    sampler = BucketBatchSampler(lengths, batch_size=16, seed=3)
    epochs = [list(sampler), list(sampler)]
    for batches in epochs:
        assert sorted(i for b in batches for i in b) == list(range(500)) and len(batches) == len(sampler)
    assert epochs[0] != epochs[1], "each epoch reshuffles"
    assert epochs[0] == list(BucketBatchSampler(lengths, batch_size=16, seed=3)), "same seed, same batches"
    steps = sum(max(lengths[i] for i in b) for b in epochs[0])
    random_steps = sum(max(lengths[i] for i in b) for b in np.array_split(rng.permutation(500), len(sampler)))
    assert steps < 0.8 * random_steps


def test_word_shapes():
    shapes = [word_shape(t) for t in ["http://t.co/x", "@bob", "#nlp", "3:30", "!!", "NASA", "Paris", "the", "iPhone"]]
    assert shapes == list(range(1, 10)) and max(shapes) < NUM_SHAPES
