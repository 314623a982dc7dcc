"""A custom pipeline registered with Hugging Face: calibrated sentiment with an abstain band
(requirement huggingface.2).

`pipeline("calibrated-sentiment", model=...)` wraps the shared fine-tuned MiniLM; its temperature
is fitted on the validation split. Proofs on the held-out test split: answering only when confident
beats TF-IDF + LR answering its own most confident snippets at the same coverage; it is calibrated
(ECE); its scores are softmax(logits / T) of the model; batched calls equal single calls; bad
inputs raise clear errors, over-long ones are truncated as documented; it saves and loads.
"""
import numpy as np
import pytest

pytest.importorskip("transformers", reason="transformers (hf extra) is not installed")
from transformers import pipeline  # noqa: E402
from transformers.pipelines import PIPELINE_REGISTRY  # noqa: E402

from implementations.architectures.transformers.finetune import tfidf_logreg  # noqa: E402
from implementations.frameworks.huggingface.pipeline import (ABSTAIN, TASK,  # noqa: E402
                                                             CalibratedSentimentPipeline, calibrate,
                                                             expected_calibration_error, fit_temperature,
                                                             register, softmax)
from implementations.viz.calibration import plot_reliability  # noqa: E402

pytestmark = [pytest.mark.torch]


@pytest.fixture(scope="module")
def calibrated(sentiment_run, sentiment_cfg, request):
    """(pipeline, test outputs, calibration) on a fresh copy of the fine-tuned model."""
    from implementations.config import load_experiment

    cfg = load_experiment("huggingface", "calibrated_pipeline", request.config.getoption("--budget"))
    tokenizer, model = sentiment_run.load()
    cal = calibrate(model, sentiment_run.val_logits, sentiment_run.split.y_val, cfg["abstain_below"],
                    sentiment_cfg["max_length"])
    register()
    pipe = pipeline(TASK, model=model, tokenizer=tokenizer, device="cpu")
    outputs = pipe(sentiment_run.split.X_test, batch_size=32)
    return pipe, outputs, cal


def _probs(outputs, pipe) -> np.ndarray:
    labels = [pipe.model.config.id2label[i] for i in range(pipe.model.config.num_labels)]
    return np.array([[o["probabilities"][k] for k in labels] for o in outputs])


def test_registered_and_built_by_pipeline(calibrated):
    pipe, _, _ = calibrated
    assert TASK in PIPELINE_REGISTRY.get_supported_tasks()
    assert type(pipe) is CalibratedSentimentPipeline
    out = pipe("A moving, beautifully acted film.")
    assert set(out) == {"label", "score", "abstained", "probabilities"}


def test_abstaining_pipeline_beats_tfidf_at_same_coverage(calibrated, sentiment_run, experiment, evidence):
    cfg = experiment("calibrated_pipeline")
    pipe, outputs, cal = calibrated
    split = sentiment_run.split
    y = split.y_test
    answered = np.array([not o["abstained"] for o in outputs])
    pred = _probs(outputs, pipe).argmax(1)
    coverage = float(answered.mean())
    ours = float(np.mean(pred[answered] == y[answered]))
    tfidf = tfidf_logreg(split.X_train, split.y_train, C=cfg["tfidf_C"])
    p_tfidf = tfidf.predict_proba(split.X_test)
    top = np.argsort(-p_tfidf.max(1), kind="stable")[:answered.sum()]
    baseline = float(np.mean(p_tfidf[top].argmax(1) == y[top]))
    abstained_acc = float(np.mean(pred[~answered] == y[~answered])) if (~answered).any() else float("nan")
    evidence.metric("selective_accuracy", ours, key=True, threshold=baseline + cfg["min_selective_gain_over_tfidf"],
                    direction="higher")
    evidence.metric("tfidf_selective_accuracy", baseline)
    evidence.metric("coverage", coverage, threshold=cfg["min_coverage"], direction="higher")
    evidence.metric("accuracy_on_abstained", abstained_acc)
    evidence.metric("accuracy_all", float(np.mean(pred == y)))
    evidence.table("selective", [
        {"model": "calibrated-sentiment pipeline", "coverage": coverage, "answered_accuracy": ours},
        {"model": "TF-IDF + LR, its most confident", "coverage": coverage, "answered_accuracy": baseline},
        {"model": "pipeline, abstained snippets", "coverage": 1 - coverage, "answered_accuracy": abstained_acc}])
    evidence.text(f"Temperature {cal['temperature']:.3f} fitted on {len(split.y_val)} validation snippets; the "
                  f"pipeline abstains below calibrated confidence {cal['abstain_below']}, answering {coverage:.0%} "
                  f"of {len(y)} test snippets.")
    assert coverage >= cfg["min_coverage"], coverage
    assert ours >= baseline + cfg["min_selective_gain_over_tfidf"], (ours, baseline)
    assert ours > float(np.mean(pred == y)), "abstaining should remove more errors than correct answers"


def test_pipeline_is_calibrated(calibrated, sentiment_run, experiment, evidence):
    cfg = experiment("calibrated_pipeline")
    pipe, outputs, cal = calibrated
    y = sentiment_run.split.y_test
    probs = _probs(outputs, pipe)
    raw = softmax(sentiment_run.test_logits)
    ece, ece_raw = expected_calibration_error(probs, y), expected_calibration_error(raw, y)
    evidence.metric("ece_calibrated", ece, threshold=cfg["max_ece"], direction="lower", key=True)
    evidence.metric("ece_uncalibrated", ece_raw)
    evidence.metric("temperature", cal["temperature"])
    evidence.figure("reliability", plot_reliability({f"T = {cal['temperature']:.2f}": (probs, y),
                                                     "raw softmax": (raw, y)}, "Rotten Tomatoes test split"))
    evidence.text(f"Temperature {cal['temperature']:.3f} fitted on the validation split (NLL); test ECE "
                  f"{ece_raw:.3f} before, {ece:.3f} after. A temperature near 1 says the fine-tune was already close "
                  "to calibrated; the ECE bound is what the abstain band relies on.")
    assert ece <= cfg["max_ece"], (ece, ece_raw)


def test_scores_are_tempered_softmax_of_the_model(calibrated, sentiment_run, experiment, evidence):
    cfg = experiment("calibrated_pipeline")
    pipe, outputs, cal = calibrated
    expected = softmax(sentiment_run.test_logits, cal["temperature"])
    diff = float(np.max(np.abs(_probs(outputs, pipe) - expected)))
    evidence.metric("max_diff_vs_manual", diff, threshold=cfg["max_manual_diff"], direction="lower")
    assert diff <= cfg["max_manual_diff"]
    labels = [ABSTAIN if expected[i].max() < cal["abstain_below"] else pipe.model.config.id2label[int(k)]
              for i, k in enumerate(expected.argmax(1))]
    assert [o["label"] for o in outputs] == labels


def test_fit_temperature_recovers_a_known_temperature():
    """Labels drawn from softmax(z); the model reports 3z (overconfident): the fitted T is ~3, and
    ECE after dividing by it is far below ECE before."""
    rng = np.random.default_rng(0)
    z = rng.normal(scale=1.5, size=(20000, 2))
    y = (rng.random(len(z)) < softmax(z)[:, 1]).astype(int)
    t = fit_temperature(3 * z, y)
    assert t == pytest.approx(3.0, rel=0.05)
    assert expected_calibration_error(softmax(3 * z, t), y) < 0.2 * expected_calibration_error(softmax(3 * z), y)


def test_batched_equals_single(calibrated, sentiment_run, experiment, evidence):
    cfg = experiment("calibrated_pipeline")
    pipe, _, _ = calibrated
    texts = sorted(sentiment_run.split.X_test[:24], key=len)[::3]  # short and long mixed in one batch
    batched = pipe(texts, batch_size=cfg["batch_size"])
    single = [pipe(t) for t in texts]
    diff = max(abs(a["probabilities"][k] - b["probabilities"][k]) for a, b in zip(batched, single)
               for k in a["probabilities"])
    evidence.metric("max_batched_vs_single_diff", diff, threshold=cfg["max_batch_vs_single_diff"],
                    direction="lower", key=True)
    assert [o["label"] for o in batched] == [o["label"] for o in single]
    assert diff <= cfg["max_batch_vs_single_diff"]


@pytest.mark.parametrize("bad, message", [(None, "got None"), ("", "got ''"), ("   ", "got '   '"),
                                          (42, "got int")])
def test_bad_input_raises_clear_error(calibrated, bad, message):
    pipe, _, _ = calibrated
    with pytest.raises(ValueError, match=message):
        pipe(bad)


def test_over_long_input_is_truncated_as_documented(calibrated):
    pipe, _, cal = calibrated
    head = "A tender, funny and beautifully acted film that earns every one of its tears. "
    long_text = head + "The plot wanders. " * 200  # far past max_length tokens
    n_tokens = len(pipe.tokenizer(long_text)["input_ids"])
    assert n_tokens > cal["max_length"]
    a, b = pipe(long_text), pipe(long_text + " A dreadful, boring mess.")
    assert a == b, "words after max_length tokens must not change the answer"
    with pytest.raises(ValueError, match=f"max_length={cal['max_length']}"):
        pipe(long_text, truncation=False)
    assert pipe(head, truncation=False) == pipe(head)


def test_saves_and_loads(calibrated, sentiment_run, tmp_path):
    """save_pretrained writes weights, tokenizer, the calibration (config) and the pipeline's code;
    pipeline(TASK, model=folder, trust_remote_code=True) rebuilds it from the folder alone."""
    pipe, _, cal = calibrated
    folder = tmp_path / "calibrated"
    pipe.save_pretrained(folder)
    loaded = pipeline(TASK, model=str(folder), device="cpu", trust_remote_code=True)
    texts = sentiment_run.split.X_test[:8]
    assert (folder / "pipeline.py").is_file()
    assert loaded.model.config.custom_pipelines[TASK]["impl"] == "pipeline.CalibratedSentimentPipeline"
    assert type(loaded).__name__ == "CalibratedSentimentPipeline"
    assert loaded.model.config.calibration == cal
    assert loaded(texts) == pipe(texts)
