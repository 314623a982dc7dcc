"""A small transformer on a sequence task, against an LSTM on the same task and budget
(requirement transformers.2), and what its trained attention looks at (transformers.1, q.4).

Task: reverse a sequence of 16 symbols; metric: exact match of the greedy-decoded sequence.
"""
import numpy as np
import pytest
import torch

from assessments.threads import single_thread
from assessments.transformers._helpers import F64, max_abs_diff
from implementations.architectures.transformers.lstm_baseline import LSTM, LSTMSeq2Seq
from implementations.architectures.transformers.model import POSITIONAL_KINDS, Seq2SeqTransformer
from implementations.architectures.transformers.tasks import BOS, PAD, reversal_task
from implementations.architectures.transformers.training import exact_match, train_seq2seq
from implementations.config import load_experiment
from implementations.viz.attention import plot_attention_maps
from implementations.viz.curves import plot_curves

pytestmark = [pytest.mark.torch, pytest.mark.usefixtures("single_thread")]


def transformer_for(cfg: dict, vocab: int) -> Seq2SeqTransformer:
    return Seq2SeqTransformer(vocab, vocab, d_model=cfg["d_model"], nhead=cfg["nhead"],
                              num_encoder_layers=cfg["num_encoder_layers"],
                              num_decoder_layers=cfg["num_decoder_layers"], dim_feedforward=cfg["dim_feedforward"],
                              dropout=0.0, max_len=cfg["seq_len"])


@pytest.fixture(scope="module")
def trained(request):
    cfg = load_experiment("transformers", "sequence_task", request.config.getoption("--budget"))
    train = reversal_task(cfg["n_train"], cfg["seq_len"], cfg["n_symbols"], seed=0)
    test = reversal_task(cfg["n_test"], cfg["seq_len"], cfg["n_symbols"], seed=1)
    vocab = 2 + cfg["n_symbols"]
    torch.manual_seed(0)
    models = {"transformer": transformer_for(cfg, vocab),
              "lstm": LSTMSeq2Seq(vocab, vocab, embed_dim=cfg["lstm_embed_dim"], hidden_size=cfg["lstm_hidden_size"],
                                  num_layers=cfg["lstm_num_layers"])}
    histories, scores = {}, {}
    with single_thread():  # small ops: a second thread only waits (assessments/threads.py)
        for name, model in models.items():
            torch.manual_seed(0)
            histories[name] = train_seq2seq(model, *train, steps=cfg["steps"], batch_size=cfg["batch_size"],
                                            lr=cfg["lr"], warmup=cfg["warmup"], seed=0, eval_every=cfg["eval_every"],
                                            val=(test.src, test.tgt_out), bos_id=BOS)
            scores[name] = exact_match(model, test.src, test.tgt_out, BOS)
    return cfg, test, models, histories, scores


def test_transformer_solves_reversal_and_beats_the_lstm(trained, evidence):
    cfg, test, models, histories, scores = trained
    params = {name: sum(p.numel() for p in m.parameters()) for name, m in models.items()}
    (tf_exact, tf_token), (lstm_exact, lstm_token) = scores["transformer"], scores["lstm"]
    evidence.metric("transformer_exact_match", tf_exact, threshold=cfg["min_exact_match"], direction="higher", key=True)
    evidence.metric("transformer_token_accuracy", tf_token)
    evidence.metric("lstm_exact_match", lstm_exact)
    evidence.metric("lstm_token_accuracy", lstm_token)
    evidence.metric("chance_token_accuracy", 1.0 / cfg["n_symbols"])
    evidence.figure("exact_match_curves", plot_curves(
        {f"{n} ({params[n] / 1e3:.0f}k params)": h.eval_metric for n, h in histories.items()},
        f"Reversing {cfg['seq_len']} symbols: held-out exact match", f"evaluation (every {cfg['eval_every']} steps)",
        "exact match"))
    evidence.figure("training_loss", plot_curves(
        {n: h.loss for n, h in histories.items()}, "Teacher-forced training loss", "step", "cross-entropy", logy=True))
    evidence.table("sequence_task", [{"model": n, "params": params[n], "exact match": scores[n][0],
                                      "token accuracy": scores[n][1]} for n in models])
    evidence.text(f"Both models: same {cfg['n_train']} training sequences, {cfg['steps']} AdamW steps of "
                  f"{cfg['batch_size']}, lr {cfg['lr']} with warm-up and cosine decay, gradient clipping 1.0; "
                  f"{cfg['n_test']} held-out sequences decoded greedily. The LSTM encoder-decoder "
                  f"({LSTM.__module__}.{LSTM.__name__}) must squeeze the sequence through its final state; "
                  "the transformer's cross-attention reads any source position directly.")
    assert tf_exact >= cfg["min_exact_match"]
    assert tf_exact >= lstm_exact, "within the same budget the transformer should do at least as well"
    assert histories["transformer"].loss[-1] < 0.1 * histories["transformer"].loss[0]


def test_trained_cross_attention_reads_the_mirrored_position(trained, evidence):
    """Output step i of a reversal must copy source position S-1-i: the trained cross-attention
    shows it as an anti-diagonal."""
    cfg, test, models, _, _ = trained
    model, S = models["transformer"].eval(), cfg["seq_len"]
    n = min(200, cfg["n_test"])
    with torch.no_grad():
        _, weights = model(test.src[:n], test.tgt_in[:n], need_weights=True)
    mirror = torch.arange(S - 1, -1, -1)
    per_layer = []
    for w in weights["cross"]:                      # (N, H, T, S) per decoder layer
        avg = w.mean(dim=1)                         # heads averaged
        per_layer.append((float((avg.argmax(-1) == mirror).float().mean()),
                          float(avg[:, torch.arange(S), mirror].mean())))
    best = int(np.argmax([f for f, _ in per_layer]))
    fraction, weight = per_layer[best]
    maps = {f"decoder layer {i + 1}": w[0].mean(0).numpy() for i, w in enumerate(weights["cross"])}
    evidence.figure("attention_heatmaps", plot_attention_maps(
        maps, "Cross-attention of the trained reversal model, one held-out example (heads averaged)",
        query_labels=[str(int(t) - 2) for t in test.tgt_out[0]], key_labels=[str(int(t) - 2) for t in test.src[0]],
        xlabel="source position (its symbol)", ylabel="output step (symbol emitted)"),
        caption="Rows: output steps, labelled with the symbol emitted; columns: source positions, labelled "
                "with their symbol. The mass sits on the anti-diagonal: output i reads source S-1-i.")
    evidence.metric("mirror_argmax_fraction", fraction, threshold=cfg["min_mirror_argmax_fraction"],
                    direction="higher", key=True)
    evidence.metric("mean_weight_on_mirrored_position", weight, threshold=cfg["min_mirror_weight"], direction="higher")
    evidence.metric("uniform_attention_weight", 1.0 / S)
    evidence.table("cross_attention_by_layer", [{"decoder layer": i + 1, "argmax on mirrored position": f,
                                                 "mean weight there": w} for i, (f, w) in enumerate(per_layer)])
    evidence.text("How attention works, seen in a trained model: each output step forms a query, scores it "
                  "against every source key (scaled dot products), and a softmax turns the scores into weights "
                  "over source positions; the output reads the weighted sum of values. For reversal the learnt "
                  f"weights of decoder layer {best + 1} put their mass on the mirrored source position.")
    assert fraction >= cfg["min_mirror_argmax_fraction"]
    assert weight >= cfg["min_mirror_weight"]


@pytest.mark.parametrize("positional", POSITIONAL_KINDS)
def test_decoder_is_causal_and_padding_is_invisible(positional):
    """Logits at step t never depend on target tokens after t; trailing source padding changes nothing."""
    torch.manual_seed(0)
    model = Seq2SeqTransformer(12, 12, d_model=16, nhead=2, num_encoder_layers=2, num_decoder_layers=2,
                               dim_feedforward=32, dropout=0.0, max_len=16, positional=positional).double().eval()
    g = torch.Generator().manual_seed(1)
    src, tgt = torch.randint(2, 12, (3, 8), generator=g), torch.randint(1, 12, (3, 6), generator=g)
    with torch.no_grad():
        logits = model(src, tgt)
        changed = tgt.clone()
        changed[:, 4:] = torch.randint(2, 12, (3, 2), generator=g)
        assert max_abs_diff(model(src, changed)[:, :4], logits[:, :4]) <= 1e-12
        assert max_abs_diff(model(src, changed)[:, 4:], logits[:, 4:]) > 1e-6
        padded = torch.cat([src, torch.full((3, 5), PAD)], dim=1)
        assert max_abs_diff(model(padded, tgt), logits) <= 1e-10
        assert logits.dtype == F64


def test_same_seed_same_metrics():
    data = reversal_task(256, 6, 5, seed=0)

    def run(seed: int) -> list[float]:
        torch.manual_seed(seed)
        model = Seq2SeqTransformer(7, 7, d_model=16, nhead=2, num_encoder_layers=1, num_decoder_layers=1,
                                   dim_feedforward=32, dropout=0.1, max_len=6)
        return train_seq2seq(model, *data, steps=15, batch_size=32, seed=seed).loss

    assert run(0) == run(0)
    assert run(0) != run(1)


@pytest.mark.parametrize("call, message", [
    (lambda m: m(torch.zeros(2, 5, dtype=torch.int64), torch.zeros(3, 5, dtype=torch.int64)), "batch sizes"),
    (lambda m: m(torch.zeros(2, 9, dtype=torch.int64), torch.zeros(2, 5, dtype=torch.int64)), "max_len"),
    (lambda m: m(torch.zeros(2, 5), torch.zeros(2, 5, dtype=torch.int64)), "int64"),
    (lambda m: m(torch.full((2, 5), 12), torch.zeros(2, 5, dtype=torch.int64)), "ids must be in"),
    (lambda m: reversal_task(0), "n > 0"),
    (lambda m: train_seq2seq(m, *reversal_task(8, 4, 4), steps=0), "positive"),
])
def test_bad_input_raises_value_error(call, message):
    model = Seq2SeqTransformer(12, 12, d_model=16, nhead=2, num_encoder_layers=1, num_decoder_layers=1,
                               dim_feedforward=32, max_len=8)
    with pytest.raises(ValueError, match=message):
        call(model)
