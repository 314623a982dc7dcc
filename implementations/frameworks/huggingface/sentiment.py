"""The one fine-tuned sentiment model every Hugging Face, ONNX and optimisation experiment shares.

`finetuned_sentiment(folder, cfg, seed)` fine-tunes all-MiniLM-L6-v2 on a Rotten Tomatoes split
with `transformers.Trainer` once and caches it in `folder` (`save_pretrained` model and tokenizer,
the trainer's log history, validation and test logits of the in-memory model). Later callers, in
this process or another (pytest-xdist workers), load it: a file lock makes the second caller wait
for the first, and the folder appears by an atomic rename, so no one reads a half-written model.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from implementations.data.splits import stratified_split
from implementations.data.text import ROTTEN_CLASSES, rotten_split

__all__ = ["SentimentSplit", "sentiment_split", "SentimentRun", "finetuned_sentiment"]


@dataclass
class SentimentSplit:
    """Texts (lists of str) and labels (N,) int64 of train / validation / test."""

    X_train: list[str]
    y_train: np.ndarray
    X_val: list[str]
    y_val: np.ndarray
    X_test: list[str]
    y_test: np.ndarray


def sentiment_split(cfg: dict, seed: int = 0) -> SentimentSplit:
    """Rotten Tomatoes: `test_size` held out (stratified, `n_total` distinct snippets or all), then
    `val_size` of the rest for validation (early stopping, calibration)."""
    outer = rotten_split(test_size=cfg["test_size"], seed=seed, n=cfg.get("n_total"))
    inner = stratified_split(outer.X_train, outer.y_train, cfg["val_size"], seed)
    return SentimentSplit(inner.X_train, inner.y_train, inner.X_test, inner.y_test,
                          outer.X_test, outer.y_test)


@dataclass
class SentimentRun:
    """A cached fine-tune: `model_dir` (save_pretrained model + tokenizer), the split, the trainer's
    `log_history`, `val_logits`/`test_logits` (N, 2) of the model before it was saved, and timings."""

    model_dir: Path
    split: SentimentSplit
    log_history: list[dict]
    val_logits: np.ndarray
    test_logits: np.ndarray
    info: dict

    def load(self, attn_implementation: str | None = None):
        """(tokenizer, model in eval mode) from `model_dir`; `attn_implementation="eager"` spells
        attention out as matmul-softmax-matmul (the pattern ONNX Runtime's fusions recognise)
        instead of the default scaled_dot_product_attention: the same weights and the same math."""
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(self.model_dir, local_files_only=True)
        kw = {} if attn_implementation is None else {"attn_implementation": attn_implementation}
        model = AutoModelForSequenceClassification.from_pretrained(self.model_dir, local_files_only=True, **kw)
        return tokenizer, model.eval()


def _train(folder: Path, cfg: dict, seed: int) -> None:
    import torch

    from implementations.frameworks.huggingface.trainer import (EncodedTexts, load_classifier, predict_logits,
                                                                train_classifier)

    split = sentiment_split(cfg, seed)
    torch.manual_seed(seed)
    tokenizer, model = load_classifier(2, dict(enumerate(ROTTEN_CLASSES)))
    kw = {"max_length": cfg["max_length"]}
    start = time.perf_counter()
    trainer = train_classifier(model, tokenizer, EncodedTexts(tokenizer, split.X_train, split.y_train, **kw),
                               EncodedTexts(tokenizer, split.X_val, split.y_val, **kw), folder / "checkpoints",
                               epochs=cfg["epochs"], batch_size=cfg["batch_size"], lr=cfg["lr"],
                               weight_decay=cfg["weight_decay"], warmup_ratio=cfg["warmup_ratio"],
                               patience=cfg["patience"], seed=seed)
    seconds = time.perf_counter() - start
    model = trainer.model.eval()
    np.savez(folder / "logits.npz", val=predict_logits(model, tokenizer, split.X_val, **kw),
             test=predict_logits(model, tokenizer, split.X_test, **kw))
    model.save_pretrained(folder / "model")
    tokenizer.save_pretrained(folder / "model")
    state = trainer.state
    info = {"train_seconds": seconds, "global_step": state.global_step, "best_metric": state.best_metric,
            "best_model_checkpoint": Path(state.best_model_checkpoint).name if state.best_model_checkpoint else None,
            "seed": seed, "cfg": {k: v for k, v in cfg.items() if not isinstance(v, dict)},
            "n": {"train": len(split.y_train), "val": len(split.y_val), "test": len(split.y_test)}}
    (folder / "finetune.json").write_text(json.dumps({"info": info, "log_history": state.log_history}, indent=1))
    shutil.rmtree(folder / "checkpoints", ignore_errors=True)


def finetuned_sentiment(folder: str | Path, cfg: dict, seed: int = 0) -> SentimentRun:
    """Fine-tune into `folder` unless it already holds this run; return the cached run."""
    from filelock import FileLock

    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder) + ".lock"):
        if not (folder / "finetune.json").exists():
            tmp = folder.with_name(f"{folder.name}.tmp-{os.getpid()}")
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir()
            _train(tmp, cfg, seed)
            shutil.rmtree(folder, ignore_errors=True)
            os.replace(tmp, folder)
    saved = json.loads((folder / "finetune.json").read_text())
    if saved["info"]["seed"] != seed:
        raise ValueError(f"{folder} holds a run with seed {saved['info']['seed']}, not {seed}")
    logits = np.load(folder / "logits.npz")
    return SentimentRun(folder / "model", sentiment_split(cfg, seed), saved["log_history"], logits["val"],
                        logits["test"], saved["info"])
