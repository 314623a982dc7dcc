"""Positional encodings: their defining properties, and an ablation showing why they matter
(requirement transformers.4).

Attention on its own is blind to order. On a task whose answer is carried only by order, the
same transformer without positional information stays at chance, while sinusoidal, learned and
rotary encodings each solve it.
"""
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from assessments.transformers._helpers import F64, ROPE, max_abs_diff
from implementations.architectures.transformers.model import POSITIONAL_KINDS, SequenceClassifier
from implementations.architectures.transformers.positional import (LearnedPositionalEmbedding, RotaryEmbedding,
                                                                   SinusoidalPositionalEncoding, sinusoidal_table)
from implementations.architectures.transformers.tasks import first_marker_task
from implementations.architectures.transformers.training import classifier_accuracy, train_classifier
from implementations.viz.bars import plot_bars
from implementations.viz.curves import plot_curves

pytestmark = [pytest.mark.torch, pytest.mark.usefixtures("single_thread")]
TOL = ROPE["max_abs_error"]
even = st.integers(1, 32).map(lambda h: 2 * h)


@settings(max_examples=ROPE["max_examples"], deadline=None, derandomize=True)
@given(d_model=even, max_len=st.integers(1, 300))
def test_sinusoidal_matches_the_formula(d_model, max_len):
    """PE[pos, 2i] = sin(pos / 10000^(2i/d)), PE[pos, 2i+1] = cos(same), evaluated with math.*."""
    table = sinusoidal_table(max_len, d_model).numpy()
    expected = np.array([[(math.sin if j % 2 == 0 else math.cos)(pos / 10000 ** ((j - j % 2) / d_model))
                          for j in range(d_model)] for pos in range(max_len)])
    assert np.max(np.abs(table - expected)) <= TOL
    x = torch.randn(2, max_len, d_model, dtype=F64)
    assert max_abs_diff(SinusoidalPositionalEncoding(d_model, max_len)(x), x + torch.from_numpy(expected)) <= TOL


@settings(max_examples=ROPE["max_examples"], deadline=None, derandomize=True)
@given(d_model=even, pos=st.integers(0, 500), other=st.integers(0, 500), k=st.integers(-200, 200))
def test_sinusoidal_offset_is_one_rotation_for_every_position(d_model, pos, other, k):
    """PE[p + k] = M_k PE[p] with M_k a block rotation that depends on k only (not on p)."""
    k = max(k, -min(pos, other))
    inv_freq = 10000.0 ** (-np.arange(0, d_model, 2) / d_model)
    M = np.zeros((d_model, d_model))
    for i, w in enumerate(inv_freq):  # [sin(w(p+k)), cos(w(p+k))] from [sin(wp), cos(wp)]
        c, s = math.cos(w * k), math.sin(w * k)
        M[2 * i:2 * i + 2, 2 * i:2 * i + 2] = [[c, s], [-s, c]]
    table = sinusoidal_table(max(pos, other) + max(k, 0) + 1, d_model).numpy()
    for p in (pos, other):
        assert np.max(np.abs(table[p + k] - M @ table[p])) <= TOL


@settings(max_examples=ROPE["max_examples"], deadline=None, derandomize=True)
@given(head_dim=even, m=st.integers(0, 1000), n=st.integers(0, 1000), shift=st.integers(0, 1000),
       seed=st.integers(0, 2**31 - 1))
def test_rope_score_depends_only_on_relative_offset(head_dim, m, n, shift, seed):
    """<R_m q, R_n k> = <R_(m+s) q, R_(n+s) k> for every shift s, and rotations keep norms."""
    g = torch.Generator().manual_seed(seed)
    q, k = torch.randn(2, 1, head_dim, generator=g, dtype=F64)
    rope = RotaryEmbedding(head_dim)
    at = lambda x, p: rope(x, positions=torch.tensor([p]))[0]  # noqa: E731
    assert abs(at(q, m) @ at(k, n) - at(q, m + shift) @ at(k, n + shift)) <= TOL * (1 + q.norm() * k.norm())
    assert abs(at(q, m).norm() - q.norm()) <= TOL


def test_rope_matches_complex_rotation_and_hugging_face(evidence):
    """Two independent references: pairs (x_i, x_(i+d/2)) as complex numbers times e^(i m theta_i),
    and Hugging Face Llama's apply_rotary_pos_emb fed float64 cos/sin from the formula."""
    from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

    B, H, T, D = 2, 3, 50, 16
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(2, B, H, T, D, generator=g, dtype=F64)
    rope = RotaryEmbedding(D)
    theta = 10000.0 ** (-np.arange(0, D, 2) / D)
    angle = np.arange(T)[:, None] * theta                                     # (T, D/2)
    z = q.numpy()[..., : D // 2] + 1j * q.numpy()[..., D // 2:]
    rotated = z * np.exp(1j * angle)
    complex_ref = torch.from_numpy(np.concatenate([rotated.real, rotated.imag], axis=-1))
    cos = torch.from_numpy(np.cos(np.concatenate([angle, angle], -1)))[None].expand(B, T, D)
    sin = torch.from_numpy(np.sin(np.concatenate([angle, angle], -1)))[None].expand(B, T, D)
    hf_q, hf_k = apply_rotary_pos_emb(q, k, cos, sin)
    errors = {"complex": max_abs_diff(rope(q), complex_ref),
              "hf_q": max_abs_diff(rope(q), hf_q), "hf_k": max_abs_diff(rope(k), hf_k)}
    for name, err in errors.items():
        evidence.metric(f"rope_max_abs_error_{name}", err, threshold=TOL, direction="lower", key=name == "hf_q")
    assert max(errors.values()) <= TOL


def test_without_positions_the_model_is_permutation_invariant():
    """Why positions are needed: with none, permuting the tokens leaves the output unchanged."""
    g = torch.Generator().manual_seed(0)
    x = torch.randint(1, 20, (4, 10), generator=g)
    perm = torch.randperm(10, generator=g)
    for kind in POSITIONAL_KINDS:
        torch.manual_seed(0)
        model = SequenceClassifier(20, 3, d_model=16, nhead=2, num_layers=2, dim_feedforward=32,
                                   max_len=10, positional=kind).double().eval()
        with torch.no_grad():
            diff = max_abs_diff(model(x), model(x[:, perm]))
        if kind == "none":
            assert diff <= 1e-12, "without positions the model must not see order"
        else:
            assert diff > 1e-4, f"{kind}: the model must see order"


def test_positional_ablation(evidence, experiment):
    cfg = experiment("positional_ablation")
    task = dict(seq_len=cfg["seq_len"], n_markers=cfg["n_markers"], n_fillers=cfg["n_fillers"])
    x, y = first_marker_task(cfg["n_train"], seed=0, **task)
    x_test, y_test = first_marker_task(cfg["n_test"], seed=1, **task)
    chance = 1.0 / cfg["n_markers"]
    majority = float((y_test == y.bincount().argmax()).float().mean())
    curves, final = {}, {}
    for kind in POSITIONAL_KINDS:
        torch.manual_seed(0)
        model = SequenceClassifier(2 + cfg["n_markers"] + cfg["n_fillers"], cfg["n_markers"], d_model=cfg["d_model"],
                                   nhead=cfg["nhead"], num_layers=cfg["num_layers"],
                                   dim_feedforward=cfg["dim_feedforward"], dropout=0.0, max_len=cfg["seq_len"],
                                   positional=kind)
        history = train_classifier(model, x, y, steps=cfg["steps"], batch_size=cfg["batch_size"], lr=cfg["lr"],
                                   warmup=cfg["warmup"], seed=0, eval_every=cfg["eval_every"],
                                   x_val=x_test, y_val=y_test)
        curves[kind] = history.eval_metric
        final[kind] = classifier_accuracy(model, x_test, y_test)
    curves["chance (1/K)"] = [chance] * len(curves["none"])
    evidence.figure("ablation_curves", plot_curves(
        curves, "Which marker comes first? Held-out accuracy", f"evaluation (every {cfg['eval_every']} steps)",
        "accuracy"))
    evidence.figure("ablation_final", plot_bars(
        final, "Same transformer, different positional information", "held-out accuracy",
        lines={"chance": chance, "floor": cfg["min_accuracy"]}, ylim=(0, 1.05)))
    for kind, acc in final.items():
        if kind == "none":
            evidence.metric("accuracy_none", acc, threshold=cfg["max_accuracy_without"], direction="lower")
        else:
            evidence.metric(f"accuracy_{kind}", acc, threshold=cfg["min_accuracy"], direction="higher",
                            key=kind == "sinusoidal")
    evidence.metric("chance", chance)
    evidence.metric("majority_class_baseline", majority)
    evidence.table("ablation", [{"positional": k, "held-out accuracy": v} for k, v in final.items()])
    evidence.text(f"Each sequence holds {cfg['n_markers']} marker tokens once each among "
                  f"{cfg['seq_len'] - cfg['n_markers']} random fillers; the label is the marker that comes first, so the bag of tokens says nothing "
                  f"about it. {cfg['num_layers']}-layer transformer, d_model={cfg['d_model']}, {cfg['steps']} AdamW "
                  f"steps on {cfg['n_train']} sequences, {cfg['n_test']} held out.")
    assert final["none"] <= cfg["max_accuracy_without"], "without positions the model should stay at chance"
    for kind in ("sinusoidal", "learned", "rope"):
        assert final[kind] >= cfg["min_accuracy"], f"{kind} should solve the order task"


@pytest.mark.parametrize("call, message", [
    (lambda: SinusoidalPositionalEncoding(7), "even"),
    (lambda: RotaryEmbedding(5), "even"),
    (lambda: SinusoidalPositionalEncoding(8, max_len=4)(torch.zeros(1, 5, 8)), "max_len"),
    (lambda: LearnedPositionalEmbedding(4, 8)(torch.zeros(1, 5, 8)), "max_len"),
    (lambda: SinusoidalPositionalEncoding(8)(torch.zeros(1, 5, 6)), "expected"),
    (lambda: RotaryEmbedding(8)(torch.zeros(1, 5, 8), positions=torch.arange(4)), "positions"),
    (lambda: SequenceClassifier(10, 2, positional="alibi"), "positional must be one of"),
    (lambda: SequenceClassifier(10, 2, max_len=4)(torch.zeros(1, 5, dtype=torch.int64)), "max_len"),
    (lambda: SequenceClassifier(10, 2)(torch.full((1, 5), 10)), r"ids must be in"),
])
def test_bad_input_raises_value_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()
