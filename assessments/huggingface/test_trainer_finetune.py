"""Fine-tuning all-MiniLM-L6-v2 with transformers.Trainer (requirement huggingface.1).

The run is shared (conftest `sentiment_run`): Rotten Tomatoes, TrainingArguments evaluating every
epoch, the best epoch kept by validation macro-F1, early stopping, CPU, seeded. Proofs: it beats
TF-IDF + logistic regression on the same split by more than the noise (paired bootstrap interval
and McNemar's exact test); the trainer kept its best epoch; save/load gives the same logits; the
encoder's weights moved; the same seed gives the same metrics.
"""
import numpy as np
import pytest
import torch
from sklearn.metrics import f1_score

from implementations.architectures.transformers.finetune import tfidf_logreg
from implementations.data.text import ROTTEN_CLASSES, rotten_split
from implementations.frameworks.huggingface.significance import mcnemar, paired_bootstrap
from implementations.frameworks.huggingface.trainer import (EncodedTexts, compute_metrics, encoder_change,
                                                            load_classifier, predict_logits, train_classifier)
from implementations.viz.bars import plot_bars
from implementations.viz.curves import plot_curves

pytestmark = [pytest.mark.torch]


def test_trainer_beats_tfidf_beyond_noise(sentiment_run, experiment, evidence):
    cfg = experiment("trainer_finetune")
    split = sentiment_run.split
    y = split.y_test
    ours = sentiment_run.test_logits.argmax(1)
    tfidf = tfidf_logreg(split.X_train, split.y_train, C=cfg["tfidf_C"]).predict(split.X_test)
    gain, lo, hi = paired_bootstrap(ours, tfidf, y, cfg["bootstrap_resamples"], cfg["confidence"])
    b, c, p = mcnemar(ours, tfidf, y)
    acc = {"Trainer fine-tune": float(np.mean(ours == y)), "TF-IDF + LR": float(np.mean(tfidf == y)),
           "majority class": float(np.mean(y == np.bincount(split.y_train).argmax()))}
    f1 = {"Trainer fine-tune": f1_score(y, ours, average="macro"), "TF-IDF + LR": f1_score(y, tfidf, average="macro")}
    evidence.metric("finetuned_accuracy", acc["Trainer fine-tune"], key=True)
    evidence.metric("tfidf_accuracy", acc["TF-IDF + LR"])
    evidence.metric("finetuned_macro_f1", f1["Trainer fine-tune"])
    evidence.metric("tfidf_macro_f1", f1["TF-IDF + LR"])
    evidence.metric("gain_lower_bound", lo, threshold=cfg["min_gain_lower_bound"], direction="higher")
    evidence.metric("mcnemar_p", p, threshold=cfg["mcnemar_alpha"], direction="lower")
    evidence.figure("accuracy", plot_bars(acc, f"Rotten Tomatoes, {len(y)} held-out snippets", "accuracy",
                                          ylim=(0.4, 1.0)))
    evidence.table("accuracy_with_interval", [
        {"model": "Trainer fine-tune", "accuracy": acc["Trainer fine-tune"], "macro_f1": f1["Trainer fine-tune"]},
        {"model": "TF-IDF + LR", "accuracy": acc["TF-IDF + LR"], "macro_f1": f1["TF-IDF + LR"]},
        {"model": "gain (paired bootstrap)", "accuracy": gain, "ci_low": lo, "ci_high": hi,
         "mcnemar_b": b, "mcnemar_c": c, "mcnemar_p": p}])
    n = sentiment_run.info["n"]
    evidence.text(f"Split {n['train']} train / {n['val']} validation / {n['test']} test (stratified, seed 0, "
                  f"duplicates removed). Gain {gain:+.3f}, {cfg['confidence']:.0%} paired-bootstrap interval "
                  f"[{lo:+.3f}, {hi:+.3f}] over {cfg['bootstrap_resamples']} resamples; McNemar exact: {b} snippets "
                  f"only the fine-tune gets right, {c} only TF-IDF, p = {p:.2g}.")
    assert lo > cfg["min_gain_lower_bound"], (gain, lo, hi, acc)
    assert p < cfg["mcnemar_alpha"], (b, c, p)


def test_trainer_evaluates_every_epoch_and_keeps_the_best(sentiment_run, evidence):
    """TrainingArguments(eval_strategy="epoch", load_best_model_at_end=True): one evaluation per
    epoch, and the model that was saved scores the best epoch's validation macro-F1."""
    history = sentiment_run.log_history
    evals = [r for r in history if "eval_macro_f1" in r]
    losses = [r["loss"] for r in history if "loss" in r]
    epochs = [r["epoch"] for r in evals]
    best = max(r["eval_macro_f1"] for r in evals)
    val_pred = sentiment_run.val_logits.argmax(1)
    saved_f1 = f1_score(sentiment_run.split.y_val, val_pred, average="macro")
    evidence.metric("best_val_macro_f1", best)
    evidence.metric("saved_model_val_macro_f1", saved_f1, key=True)
    evidence.figure("training", plot_curves({"train loss (every 5 steps)": losses}, "Trainer fine-tuning", "log step",
                                            "cross-entropy"))
    evidence.table("evaluations", [{k: r[k] for k in ("epoch", "eval_loss", "eval_accuracy", "eval_macro_f1")}
                                   for r in evals])
    assert len(evals) >= 1 and np.allclose(epochs, np.arange(1, len(evals) + 1)), epochs
    assert sentiment_run.info["best_metric"] == pytest.approx(best)
    assert saved_f1 == pytest.approx(best, abs=1e-9), "the saved model is not the best epoch's"
    assert np.mean(losses[-3:]) < losses[0], losses


def test_save_pretrained_from_pretrained_same_logits(sentiment_run, sentiment_model, experiment, evidence):
    cfg = experiment("trainer_finetune")
    tokenizer, model = sentiment_model
    n = cfg["roundtrip_n"]
    logits = predict_logits(model, tokenizer, sentiment_run.split.X_test[:n], max_length=cfg["max_length"])
    diff = float(np.max(np.abs(logits - sentiment_run.test_logits[:n])))
    evidence.metric("roundtrip_max_abs_logit_diff", diff, threshold=cfg["max_roundtrip_logit_diff"],
                    direction="lower", key=True)
    assert model.config.id2label == dict(enumerate(ROTTEN_CLASSES))
    assert diff <= cfg["max_roundtrip_logit_diff"]


def test_encoder_weights_moved(sentiment_model, experiment, evidence):
    """Fine-tuning changed the pretrained encoder itself, not only the new head (a no-op or
    head-only trainer fails here)."""
    cfg = experiment("trainer_finetune")
    _, model = sentiment_model
    _, pretrained = load_classifier(2)
    change = encoder_change(model, pretrained)
    median = float(np.median(list(change.values())))
    evidence.metric("median_encoder_weight_change", median, threshold=cfg["min_median_encoder_change"],
                    direction="higher", key=True)
    per_layer = {}
    for name, v in change.items():
        layer = name.split(".")[1]
        per_layer.setdefault(f"layer {layer}", []).append(v)
    evidence.figure("encoder_change", plot_bars({k: float(np.mean(v)) for k, v in per_layer.items()},
                                                "||W - W_pretrained|| / ||W_pretrained||", "relative change"))
    assert median > cfg["min_median_encoder_change"], change
    assert min(change.values()) > 0, "some encoder weight matrix never changed"


def _tiny_trainer(cfg: dict, seed: int, folder, epochs: float | None = None, lr: float | None = None):
    """The same train_classifier on a randomly initialised 2-layer BERT with MiniLM's tokenizer:
    determinism and early stopping are properties of the Trainer set-up (seeded initialisation, data
    order, dropout, checkpoints), and a small model makes four runs cost seconds, not minutes."""
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from implementations.data.weights import minilm_model_path

    split = rotten_split(test_size=cfg["n_val"], seed=0, n=cfg["n_train"] + cfg["n_val"])
    tokenizer = AutoTokenizer.from_pretrained(minilm_model_path(), local_files_only=True)
    torch.manual_seed(seed)  # the model's initialisation (before Trainer exists)
    h = cfg["tiny_hidden_size"]
    model = BertForSequenceClassification(BertConfig(
        vocab_size=tokenizer.vocab_size, hidden_size=h, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=4 * h, max_position_embeddings=cfg["max_length"], num_labels=2))
    kw = {"max_length": cfg["max_length"]}
    return train_classifier(model, tokenizer, EncodedTexts(tokenizer, split.X_train, split.y_train, **kw),
                            EncodedTexts(tokenizer, split.X_test, split.y_test, **kw), folder,
                            epochs=epochs or cfg["epochs"], batch_size=cfg["batch_size"],
                            lr=cfg["lr"] if lr is None else lr, seed=seed, patience=1)


def _tiny_run(cfg: dict, seed: int, folder) -> tuple[dict, torch.Tensor]:
    trainer = _tiny_trainer(cfg, seed, folder)
    history = trainer.state.log_history
    metrics = {k: v for r in history for k, v in r.items()
               if k.startswith("eval_") and "runtime" not in k and "per_second" not in k}
    metrics["train_loss"] = [r[k] for r in history for k in ("loss", "train_loss") if k in r]
    return metrics, trainer.model.classifier.weight.detach().clone()


def test_same_seed_same_metrics(experiment, evidence, tmp_path, seed):
    """Three tiny Trainer runs: seed s twice gives identical metrics and weights; seed s + 1
    differs (so the comparison can tell runs apart)."""
    cfg = experiment("trainer_determinism")
    first, w1 = _tiny_run(cfg, seed, tmp_path / "first")
    torch.rand(7)  # advance the global RNG between runs: only the seeds may matter
    second, w2 = _tiny_run(cfg, seed, tmp_path / "second")
    other, w3 = _tiny_run(cfg, seed + 1, tmp_path / "other")
    evidence.table("tiny_runs", [{"run": n, **{k: str(v) for k, v in m.items()}}
                                 for n, m in (("seed", first), ("seed again", second), ("seed + 1", other))])
    evidence.metric("max_weight_diff_same_seed", float((w1 - w2).abs().max()), threshold=0.0, direction="lower",
                    key=True)
    assert first["train_loss"] and "eval_macro_f1" in first, first
    assert first == second
    assert torch.equal(w1, w2)
    assert not torch.equal(w1, w3)


def test_early_stopping_stops_when_validation_stalls(experiment, tmp_path, seed, evidence):
    """With a learning rate of 0 the validation macro-F1 never improves: EarlyStoppingCallback
    (patience 1) must end training after the second epoch of the `stall_epochs` asked for."""
    cfg = experiment("trainer_determinism")
    trainer = _tiny_trainer(cfg, seed, tmp_path / "stall", epochs=cfg["stall_epochs"], lr=0.0)
    evaluated = [r["epoch"] for r in trainer.state.log_history if "eval_macro_f1" in r]
    evidence.metric("epochs_run", trainer.state.epoch, threshold=cfg["stall_epochs"], direction="lower", key=True)
    assert evaluated == [1.0, 2.0], evaluated


def test_compute_metrics_is_accuracy_and_macro_f1():
    # 6 of class 0, 2 of class 1; the model always says 0: accuracy 0.75 but macro-F1 (6/7 + 0)/2
    logits = np.array([[1.0, 0.0]] * 8)
    labels = np.array([0] * 6 + [1] * 2)
    m = compute_metrics((logits, labels))
    assert m["accuracy"] == pytest.approx(0.75)
    assert m["macro_f1"] == pytest.approx((2 * 6 / (2 * 6 + 2)) / 2)


def test_significance_tests_match_statsmodels():
    """McNemar against statsmodels' exact test; the bootstrap interval of identical models is 0."""
    from statsmodels.stats.contingency_tables import mcnemar as sm_mcnemar

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    a = np.where(rng.random(300) < 0.8, y, 1 - y)
    b = np.where(rng.random(300) < 0.7, y, 1 - y)
    nb, nc, p = mcnemar(a, b, y)
    ra, rb = a == y, b == y
    table = [[np.sum(ra & rb), np.sum(ra & ~rb)], [np.sum(~ra & rb), np.sum(~ra & ~rb)]]
    assert (nb, nc) == (table[0][1], table[1][0])
    assert p == pytest.approx(sm_mcnemar(table, exact=True).pvalue, rel=1e-9)
    assert paired_bootstrap(a, a, y) == (0.0, 0.0, 0.0)
    gain, lo, hi = paired_bootstrap(a, b, y)
    assert lo < gain < hi and gain == pytest.approx(ra.mean() - rb.mean())


@pytest.mark.parametrize("call, message", [
    (lambda: load_classifier(1), "num_labels"),
    (lambda: EncodedTexts(None, []), "no texts"),
    (lambda: EncodedTexts(None, ["a", "b"], [0]), "2 texts but 1 labels"),
    (lambda: paired_bootstrap(np.zeros(3), np.zeros(4), np.zeros(3)), "equal-length"),
    (lambda: predict_logits(None, None, []), "no texts"),
])
def test_bad_input_raises_value_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()
