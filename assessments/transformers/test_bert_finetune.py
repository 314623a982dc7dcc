"""Fine-tuning a pretrained BERT, all-MiniLM-L6-v2, for sentiment on Rotten Tomatoes (requirement
transformers.3), against TF-IDF + logistic regression and the frozen encoder + linear head, all
fitted on the same split in the same run.
"""
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from assessments.threads import single_thread
from implementations.architectures.transformers.finetune import (SentenceClassifier, embed_texts, finetune,
                                                                 fit_linear_probe, load_minilm, predict,
                                                                 tfidf_logreg, token_batches)
from implementations.config import load_experiment
from implementations.data.text import rotten_split
from implementations.viz.bars import plot_bars
from implementations.viz.curves import plot_curves

pytestmark = [pytest.mark.torch, pytest.mark.usefixtures("single_thread")]
PARAPHRASES = [("A man is playing a guitar.", "Someone plays an acoustic guitar."),
               ("The stock market fell sharply today.", "Shares dropped steeply on Wall Street."),
               ("The cat sleeps on the warm windowsill.", "A kitten is napping in the sun by the window.")]


@pytest.fixture(scope="module")
def finetuned(request):
    # One thread: what each worker gets under `pytest -n 2`; on shared cores two threads made
    # this fine-tune 4x slower (they wait on each other).
    with single_thread():
        return run_lp_ft(load_experiment("transformers", "bert_finetune", request.config.getoption("--budget")))


def run_lp_ft(cfg: dict):
    """TF-IDF, frozen probe and LP-FT fine-tune on one split: (cfg, split, accuracies, losses, copy error,
    {probe / fine-tuned per-example predictions, encoder weight changes})."""
    split = rotten_split(test_size=cfg["test_size"], seed=0, n=cfg.get("n_total"))
    y_test = split.y_test
    tfidf = tfidf_logreg(split.X_train, split.y_train, C=cfg["tfidf_C"])
    acc = {"majority class": float(np.mean(y_test == np.bincount(split.y_train).argmax())),
           "TF-IDF + LR": float(np.mean(tfidf.predict(split.X_test) == y_test))}
    tokenizer, encoder = load_minilm()
    torch.manual_seed(0)
    model = SentenceClassifier(encoder, num_labels=2)
    kw = {"max_length": cfg["max_length"]}
    f_train = embed_texts(model, tokenizer, split.X_train, **kw)
    f_test = embed_texts(model, tokenizer, split.X_test, **kw)
    probe = fit_linear_probe(model, f_train, split.y_train, C=cfg["probe_C"])
    probe_pred = probe.predict(f_test)
    acc["frozen + linear"] = float(np.mean(probe_pred == y_test))
    with torch.no_grad():  # the head as copied, on the same features: its logit margin is the probe's
        logits = F.linear(torch.from_numpy(f_test), model.head.weight.double(), model.head.bias.double())
    copy_error = float(np.max(np.abs((logits[:, 1] - logits[:, 0]).numpy() - probe.decision_function(f_test))))
    before = {k: v.detach().clone() for k, v in model.encoder.named_parameters()}
    losses = finetune(model, tokenizer, split.X_train, split.y_train, epochs=cfg["epochs"],
                      batch_size=cfg["batch_size"], lr=cfg["lr"], weight_decay=cfg["weight_decay"],
                      warmup_ratio=cfg["warmup_ratio"], seed=0, **kw)
    ft_pred = predict(model, tokenizer, split.X_test, **kw)
    acc["fine-tuned"] = float(np.mean(ft_pred == y_test))
    word = "embeddings.word_embeddings.weight"
    change = {k: float((p.detach() - before[k]).norm() / before[k].norm().clamp_min(1e-12))
              for k, p in model.encoder.named_parameters()}
    paired = {"probe": probe_pred, "fine-tuned": ft_pred, "change": change, "word_embeddings": word}
    return cfg, split, acc, losses, copy_error, paired


def test_finetuned_minilm_beats_tfidf(finetuned, evidence):
    cfg, split, acc, losses, *_ = finetuned
    gain = acc["fine-tuned"] - acc["TF-IDF + LR"]
    evidence.metric("finetuned_accuracy", acc["fine-tuned"], key=True,
                    threshold=acc["TF-IDF + LR"] + cfg["min_gain_over_tfidf"], direction="higher")
    evidence.metric("tfidf_logreg_accuracy", acc["TF-IDF + LR"])
    evidence.metric("majority_class_accuracy", acc["majority class"])
    evidence.metric("gain_over_tfidf", gain, threshold=cfg["min_gain_over_tfidf"], direction="higher")
    evidence.figure("accuracy_comparison", plot_bars(
        acc, f"Rotten Tomatoes, {len(split.y_test)} held-out snippets", "accuracy", ylim=(0.4, 1.0),
        lines={"TF-IDF + LR + required gain": acc["TF-IDF + LR"] + cfg["min_gain_over_tfidf"]}))
    evidence.figure("finetune_loss", plot_curves(
        {"train loss (per step)": losses}, "Fine-tuning all-MiniLM-L6-v2 (after the linear probe)", "step",
        "cross-entropy"))
    evidence.table("accuracies", [{"model": k, "accuracy": v} for k, v in acc.items()])
    evidence.text(f"all-MiniLM-L6-v2 (6-layer BertModel, 22.7M parameters), mean pooling + linear head; LP-FT: "
                  f"logistic-regression probe on frozen features (C={cfg['probe_C']}), then {cfg['epochs']} epoch(s) "
                  f"of AdamW (lr {cfg['lr']}, batch {cfg['batch_size']}, max_length {cfg['max_length']}, word "
                  f"embeddings frozen). Split: {len(split.y_train)} train / {len(split.y_test)} test, stratified, "
                  f"seed 0, duplicates removed. TF-IDF: word 1-2-grams, sublinear tf, LR C={cfg['tfidf_C']}.")
    assert gain >= cfg["min_gain_over_tfidf"], acc
    assert np.mean(losses[-5:]) < np.log(2), "fine-tuning loss should sit below chance level"


def test_gain_over_frozen_encoder(finetuned, evidence):
    """Fine-tuning beats its own starting point, the frozen encoder + linear probe, on the same
    test snippets, and the gain is above the noise: an exact one-sided McNemar test on the paired
    predictions (snippets only one model gets right). A fine-tune that never steps predicts exactly
    what the probe predicts (the head is the probe) and has p = 1."""
    from scipy.stats import binomtest

    cfg, split, acc, _, _, paired = finetuned
    y = split.y_test
    gain = acc["fine-tuned"] - acc["frozen + linear"]
    wins = int(np.sum((paired["fine-tuned"] == y) & (paired["probe"] != y)))
    broken = int(np.sum((paired["fine-tuned"] != y) & (paired["probe"] == y)))
    p_value = binomtest(wins, wins + broken, 0.5, alternative="greater").pvalue if wins + broken else 1.0
    evidence.metric("frozen_linear_accuracy", acc["frozen + linear"])
    evidence.metric("gain_over_frozen", gain, threshold=cfg["min_gain_over_frozen"], direction="higher", key=True)
    evidence.metric("mcnemar_one_sided_p", p_value, threshold=cfg["max_mcnemar_p"], direction="lower")
    evidence.table("paired_predictions", [
        {"outcome": "only fine-tuned right", "snippets": wins},
        {"outcome": "only frozen probe right", "snippets": broken},
        {"outcome": "both right", "snippets": int(np.sum((paired["fine-tuned"] == y) & (paired["probe"] == y)))},
        {"outcome": "both wrong", "snippets": int(np.sum((paired["fine-tuned"] != y) & (paired["probe"] != y)))}])
    evidence.text("Gain of end-to-end fine-tuning over a linear head on the frozen encoder (same features, same "
                  f"split, the probe fitted to convergence), {len(y)} test snippets. Budget {cfg['budget']}: "
                  f"required gain {cfg['min_gain_over_frozen']:+.2f} and McNemar p <= {cfg['max_mcnemar_p']} "
                  f"({wins} snippets fixed, {broken} broken).")
    assert gain >= cfg["min_gain_over_frozen"], acc
    assert p_value <= cfg["max_mcnemar_p"], f"gain within noise: {wins} fixed vs {broken} broken, p={p_value:.3f}"


def test_finetuning_moved_the_encoder(finetuned, evidence):
    """The optimiser stepped the encoder itself (not only the head), and left the frozen word
    embeddings alone: relative change ||W_after - W_before|| / ||W_before|| per tensor. (BERT's
    pooler is not in the graph: the classifier mean-pools the last hidden states.)"""
    cfg, *_, paired = finetuned
    change, word = paired["change"], paired["word_embeddings"]
    trained = {k: v for k, v in change.items() if k != word and not k.startswith("pooler.")}
    evidence.metric("median_encoder_relative_change", float(np.median(list(trained.values()))),
                    threshold=cfg["min_encoder_change"], direction="higher", key=True)
    evidence.metric("min_encoder_relative_change", min(trained.values()))
    evidence.metric("word_embedding_change", change[word], threshold=0.0, direction="lower")
    assert np.median(list(trained.values())) >= cfg["min_encoder_change"], sorted(trained.items())[:5]
    assert sum(v > 0 for v in trained.values()) == len(trained), "some encoder tensors never moved"
    assert change[word] == 0.0, "the frozen word embeddings changed"


def test_linear_probe_is_copied_into_the_head(finetuned, evidence):
    """LP-FT starts from the probe: the head's logit margin equals sklearn's decision function."""
    copy_error = finetuned[4]
    evidence.metric("probe_copy_max_abs_error", copy_error, threshold=1e-5, direction="lower")
    assert copy_error <= 1e-5  # the head is float32: copying rounds the coefficients


def test_pretrained_minilm_embeds_meaning(evidence):
    """Real weights give the right answer: our mean-pooled embeddings equal sentence-transformers'
    for the same model, and paraphrases are closer than unrelated sentences."""
    st = pytest.importorskip("sentence_transformers", reason="sentence-transformers (hf extra) is not installed")
    from implementations.data.weights import minilm_model_path

    tokenizer, encoder = load_minilm()
    model = SentenceClassifier(encoder, num_labels=2)
    texts = [t for pair in PARAPHRASES for t in pair]
    ours = embed_texts(model, tokenizer, texts, max_length=128)
    ours /= np.linalg.norm(ours, axis=1, keepdims=True)
    reference = st.SentenceTransformer(str(minilm_model_path()), device="cpu", local_files_only=True)
    theirs = reference.encode(texts, convert_to_numpy=True)
    err = float(np.max(np.abs(ours - theirs)))
    sims = ours @ ours.T
    pair_sims = [sims[2 * i, 2 * i + 1] for i in range(len(PARAPHRASES))]
    cross = [sims[i, j] for i in range(len(texts)) for j in range(len(texts)) if i // 2 != j // 2]
    evidence.metric("max_abs_error_vs_sentence_transformers", err, threshold=1e-5, direction="lower")
    evidence.metric("min_paraphrase_cosine", min(pair_sims))
    evidence.metric("max_unrelated_cosine", max(cross))
    assert err <= 1e-5
    assert min(pair_sims) > max(cross) + 0.2, (pair_sims, max(cross))


def test_transformers_name_is_not_shadowed():
    """Our package folder is called transformers too: `import transformers` must still be Hugging Face's."""
    import transformers

    import implementations.architectures.transformers as ours

    assert hasattr(transformers, "BertModel") and hasattr(transformers, "AutoTokenizer")
    assert "site-packages" in Path(transformers.__file__).parts
    assert ours.__name__ == "implementations.architectures.transformers" and ours is not transformers
    assert sys.modules["transformers"] is transformers


def tiny_classifier() -> SentenceClassifier:
    """A randomly initialised 1-layer BERT: enough to exercise the argument checks."""
    from transformers import BertConfig, BertModel

    config = BertConfig(vocab_size=30, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=16, max_position_embeddings=16)
    return SentenceClassifier(BertModel(config), num_labels=2)


@pytest.mark.parametrize("call, message", [
    (lambda: SentenceClassifier(tiny_classifier().encoder, 1), "num_labels"),
    (lambda: list(token_batches(None, [], 4, 8)), "no texts"),
    (lambda: fit_linear_probe(tiny_classifier(), np.zeros((4, 5)), np.array([0, 1, 0, 1])), "features must be"),
    (lambda: fit_linear_probe(tiny_classifier(), np.zeros((4, 8)), np.array([0, 0, 0, 0])), "labels must cover"),
    (lambda: finetune(tiny_classifier(), None, ["a", "b"], np.array([0])), "2 texts but 1 labels"),
    (lambda: finetune(tiny_classifier(), None, ["a"], np.array([0]), epochs=0), "epochs"),
])
def test_bad_input_raises_value_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()
