"""Sequence prediction with our LSTM on real text (requirement rnn.1): next-character prediction.

A character LSTM trained on BBC News articles (seeded article split) must predict held-out
articles better than smoothed bigram and trigram models fitted on the same training text in the
same run (by the fractions in experiments/rnn.toml). Unigram and 4-gram scores are reported
beside it, unasserted.
"""
import numpy as np
import pytest
import torch

from implementations.architectures.rnn.language_model import (CharLSTM, CharVocab, lm_cross_entropy,
                                                              ngram_cross_entropy, train_char_lm)
from implementations.data.text import bbc_split
from implementations.viz.curves import plot_curves

pytestmark = pytest.mark.torch


def test_char_lstm_beats_ngram_baselines(evidence, experiment, seed):
    cfg = experiment("char_lm")
    split = bbc_split(cfg["test_size"], seed=0, n=cfg["n_articles"])
    train_text, test_text = "\n".join(split.X_train), "\n".join(split.X_test)
    vocab = CharVocab(train_text)
    train_ids, test_ids = vocab.encode(train_text), vocab.encode(test_text)
    torch.manual_seed(seed)
    model = CharLSTM(len(vocab), cfg["embedding_dim"], cfg["hidden_size"])
    history = train_char_lm(model, train_ids, test_ids[: cfg["val_chars"]], cfg["steps"], cfg["seq_len"],
                            cfg["batch_size"], lr=cfg["lr"], eval_every=cfg["eval_every"], seed=seed)
    lstm_ce = lm_cross_entropy(model, test_ids, cfg["seq_len"])
    ngram = {order: ngram_cross_entropy(train_ids, test_ids, len(vocab), order, cfg["ngram_alpha"])
             for order in (1, 2, 3, 4)}
    names = {1: "unigram", 2: "bigram", 3: "trigram", 4: "4-gram"}

    evidence.figure("learning_curve", plot_curves(
        {"train loss": history.train_loss, "held-out loss": history.val_loss,
         "bigram (held-out)": [ngram[2]] * len(history.step), "trigram (held-out)": [ngram[3]] * len(history.step)},
        f"Character LSTM on BBC News (x = {cfg['eval_every']} steps)", "evaluation", "nats per character"))
    evidence.table("held_out_cross_entropy", [
        {"model": "char LSTM", "nats/char": lstm_ce, "bits/char": lstm_ce / np.log(2)}] + [
        {"model": f"{names[o]} (add-{cfg['ngram_alpha']})", "nats/char": v, "bits/char": v / np.log(2)}
        for o, v in ngram.items()])
    threshold = min(cfg["max_fraction_of_bigram"] * ngram[2], cfg["max_fraction_of_trigram"] * ngram[3])
    evidence.metric("lstm_held_out_nats_per_char", lstm_ce, threshold=threshold, direction="lower", key=True)
    evidence.metric("lstm_over_trigram", lstm_ce / ngram[3], threshold=cfg["max_fraction_of_trigram"],
                    direction="lower")
    for o, v in ngram.items():
        evidence.metric(f"{names[o]}_held_out_nats_per_char", v)
    evidence.text(f"{len(split.X_train)} training / {len(split.X_test)} held-out articles "
                  f"({len(train_ids)} / {len(test_ids)} characters, {len(vocab)} symbols); LSTM hidden "
                  f"{cfg['hidden_size']}, {cfg['steps']} Adam steps on random {cfg['seq_len']}-character "
                  "windows. Held-out windows start from a zero state; the n-grams read context across "
                  "window borders, which favours them.")
    # A greedy continuation, for the reader: what the model has learned of English.
    evidence.text("Greedy continuation of 'The government ': " + greedy(model, vocab, "The government ", 60))
    assert lstm_ce <= cfg["max_fraction_of_bigram"] * ngram[2], f"LSTM {lstm_ce:.3f} vs bigram {ngram[2]:.3f}"
    assert lstm_ce <= cfg["max_fraction_of_trigram"] * ngram[3], f"LSTM {lstm_ce:.3f} vs trigram {ngram[3]:.3f}"
    assert history.val_loss[-1] < history.val_loss[0]


def greedy(model: CharLSTM, vocab: CharVocab, prompt: str, n: int) -> str:
    ids = list(vocab.encode(prompt))
    model.eval()
    with torch.no_grad():
        for _ in range(n):
            ids.append(int(model(torch.tensor([ids]))[0, -1].argmax()))
    return vocab.decode(ids[len(prompt):])


@pytest.mark.parametrize("order", [1, 2, 3])
def test_ngram_baseline_is_a_distribution(order):
    """The baseline is a proper model: for any context its next-symbol probabilities sum to 1."""
    rng = np.random.default_rng(order)
    V, train = 5, rng.integers(0, 5, size=300)
    context = list(rng.integers(0, V, size=order - 1))
    probs = [np.exp(-ngram_cross_entropy(train, np.array(context + [s]), V, order)) for s in range(V)]
    assert abs(sum(probs) - 1) <= 1e-12


def test_char_vocab_maps_unseen_characters_to_unknown():
    vocab = CharVocab("aaaaabbbbbc", min_count=5)
    assert vocab.itos == ["\ufffd", "a", "b"]
    assert vocab.encode("abcz").tolist() == [1, 2, 0, 0]
    assert vocab.decode([1, 2, 0]) == "ab\ufffd"
