"""A custom Hugging Face pipeline: sentiment with calibrated confidence and an abstain band.

`pipeline("calibrated-sentiment", model=folder)` (after `register()`) tokenises a text, runs a
sequence classifier, divides its logits by a temperature fitted on validation data (Guo et al.,
2017, "On Calibration of Modern Neural Networks") and answers
    {"label": "fresh" | "rotten" | "abstain", "score": calibrated confidence, "abstained": bool,
     "probabilities": {label: p}}
abstaining when the calibrated confidence is below `abstain_below`: a review the model is unsure
about goes to a person instead of being labelled. The temperature, the band and the maximum length
live in `model.config.calibration`, so `save_pretrained` keeps them with the weights; the saved
folder also holds this file (`custom_pipelines` in its config), so
`pipeline("calibrated-sentiment", model=folder, trust_remote_code=True)` rebuilds the pipeline from
the folder alone.

Inputs: a non-empty string (None, non-strings and blank strings raise ValueError naming what was
given). Texts longer than `max_length` tokens are truncated to their first `max_length` tokens
(documented behaviour, the default); with `truncation=False` they raise ValueError instead.
"""
from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import minimize_scalar
from transformers import AutoModelForSequenceClassification, Pipeline
from transformers.pipelines import PIPELINE_REGISTRY

__all__ = ["TASK", "CalibratedSentimentPipeline", "register", "fit_temperature", "softmax", "calibrate",
           "expected_calibration_error"]

TASK = "calibrated-sentiment"
ABSTAIN = "abstain"


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of logits (N, C) / temperature, in float64."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The T > 0 minimising the negative log-likelihood of softmax(logits / T) on (logits, labels)."""
    logits, labels = np.asarray(logits, dtype=np.float64), np.asarray(labels)
    if logits.ndim != 2 or len(logits) != len(labels) or not len(labels):
        raise ValueError(f"logits must be (N, C) with N = len(labels) > 0, got {logits.shape} and {labels.shape}")

    def nll(log_t: float) -> float:
        p = softmax(logits, np.exp(log_t))
        return float(-np.mean(np.log(p[np.arange(len(labels)), labels] + 1e-12)))

    res = minimize_scalar(nll, bounds=(np.log(0.05), np.log(20.0)), method="bounded")
    return float(np.exp(res.x))


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, n_bins: int = 10) -> float:
    """ECE: sum over equal-width confidence bins of |accuracy - mean confidence| x bin weight."""
    probs = np.asarray(probs)
    conf, pred = probs.max(axis=1), probs.argmax(axis=1)
    correct = pred == np.asarray(labels)
    bins = np.minimum((conf * n_bins).astype(int), n_bins - 1)
    ece = 0.0
    for b in range(n_bins):
        m = bins == b
        if m.any():
            ece += m.mean() * abs(correct[m].mean() - conf[m].mean())
    return float(ece)


def calibrate(model, val_logits: np.ndarray, val_labels: np.ndarray, abstain_below: float,
              max_length: int) -> dict:
    """Fit the temperature on validation logits and store the calibration in `model.config`."""
    if not 0.0 <= abstain_below < 1.0:
        raise ValueError(f"abstain_below must be in [0, 1), got {abstain_below}")
    model.config.calibration = {"temperature": fit_temperature(val_logits, val_labels),
                                "abstain_below": float(abstain_below), "max_length": int(max_length)}
    return model.config.calibration


class CalibratedSentimentPipeline(Pipeline):
    """Text -> calibrated sentiment or "abstain" (see the module docstring)."""

    def _sanitize_parameters(self, temperature: float | None = None, abstain_below: float | None = None,
                             max_length: int | None = None, truncation: bool | None = None, **kwargs):
        if kwargs:
            raise TypeError(f"{TASK} got unexpected arguments {sorted(kwargs)}; it takes temperature, "
                            "abstain_below, max_length, truncation")
        cal = getattr(self.model.config, "calibration", None) or {}
        if temperature is not None and temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        pre = {"max_length": max_length or cal.get("max_length", 128),
               "truncation": True if truncation is None else truncation}
        post = {"temperature": temperature or cal.get("temperature", 1.0),
                "abstain_below": cal.get("abstain_below", 0.0) if abstain_below is None else abstain_below}
        return pre, {}, post

    def preprocess(self, text, max_length: int = 128, truncation: bool = True):
        if text is None:
            raise ValueError(f"{TASK} needs a non-empty string, got None")
        if not isinstance(text, str):
            raise ValueError(f"{TASK} needs a non-empty string, got {type(text).__name__}")
        if not text.strip():
            raise ValueError(f"{TASK} needs a non-empty string, got {text!r}")
        if not truncation:
            n = len(self.tokenizer(text)["input_ids"])
            if n > max_length:
                raise ValueError(f"text is {n} tokens long, more than max_length={max_length}; "
                                 "pass truncation=True to keep its first max_length tokens")
        return self.tokenizer(text, truncation=True, max_length=max_length, return_tensors="pt")

    def _forward(self, model_inputs):
        return {"logits": self.model(**model_inputs).logits}

    def postprocess(self, model_outputs, temperature: float = 1.0, abstain_below: float = 0.0):
        logits = model_outputs["logits"].to(torch.float64).numpy().reshape(-1)
        probs = softmax(logits[None], temperature)[0]
        k = int(probs.argmax())
        labels = self.model.config.id2label
        abstained = bool(probs[k] < abstain_below)
        return {"label": ABSTAIN if abstained else labels[k], "score": float(probs[k]), "abstained": abstained,
                "probabilities": {labels[i]: float(p) for i, p in enumerate(probs)}}


def register() -> None:
    """Make `pipeline("calibrated-sentiment", model=...)` build a CalibratedSentimentPipeline."""
    PIPELINE_REGISTRY.register_pipeline(TASK, pipeline_class=CalibratedSentimentPipeline,
                                        pt_model=AutoModelForSequenceClassification, type="text")
