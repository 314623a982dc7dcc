"""Fine-tuning all-MiniLM-L6-v2 for text classification the library's way: `transformers.Trainer`.

The model is `BertForSequenceClassification` (the encoder, BERT's pooler on [CLS] and a linear
head) built from the local all-MiniLM-L6-v2 folder; `TrainingArguments` evaluate every epoch,
keep the best checkpoint by validation macro-F1 (`load_best_model_at_end`), stop early with an
`EarlyStoppingCallback`, run on the CPU and are seeded. Sampling "group_by_length" batches
snippets of similar length, so dynamic padding (`DataCollatorWithPadding`) adds few pad tokens:
on a CPU the cost is per token. `compute_metrics` reports accuracy and macro-F1 from scikit-learn.
Texts are tokenised once; no `datasets` dependency (a plain list of encodings is a Dataset).

The hand-written LP-FT loop of the transformers area (`architectures/transformers/finetune.py`)
is the other way to do the same job; its TF-IDF baseline is reused here.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import accuracy_score, f1_score

__all__ = ["load_classifier", "EncodedTexts", "compute_metrics", "train_classifier", "predict_logits",
           "encoder_change"]


def load_classifier(num_labels: int, id2label: dict[int, str] | None = None, path: str | Path | None = None):
    """(tokenizer, BertForSequenceClassification) from all-MiniLM-L6-v2's local folder (no network).

    The encoder and pooler are pretrained; the head (hidden_size -> num_labels) is new."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from implementations.data.weights import minilm_model_path

    if num_labels < 2:
        raise ValueError(f"num_labels must be >= 2, got {num_labels}")
    id2label = id2label or {i: f"LABEL_{i}" for i in range(num_labels)}
    folder = minilm_model_path(path)
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    model = AutoModelForSequenceClassification.from_pretrained(
        folder, local_files_only=True, use_safetensors=True, num_labels=num_labels,
        id2label=dict(id2label), label2id={v: k for k, v in id2label.items()})
    return tokenizer, model


class EncodedTexts(torch.utils.data.Dataset):
    """Texts tokenised once (truncated to `max_length`, unpadded) with optional integer labels:
    item i is {"input_ids", "attention_mask", "token_type_ids"[, "labels"]} as lists."""

    def __init__(self, tokenizer, texts: Sequence[str], labels: Sequence[int] | None = None,
                 max_length: int = 64) -> None:
        texts = list(texts)
        if not texts:
            raise ValueError("no texts")
        if labels is not None and len(labels) != len(texts):
            raise ValueError(f"{len(texts)} texts but {len(labels)} labels")
        self.encodings = tokenizer(texts, truncation=True, max_length=max_length)
        self.labels = None if labels is None else [int(v) for v in labels]

    def __len__(self) -> int:
        return len(self.encodings["input_ids"])

    def __getitem__(self, i: int) -> dict:
        item = {k: v[i] for k, v in self.encodings.items()}
        if self.labels is not None:
            item["labels"] = self.labels[i]
        return item


def compute_metrics(eval_pred) -> dict[str, float]:
    """Trainer hook: (logits (N, C), labels (N,)) -> accuracy and macro-F1 (scikit-learn)."""
    logits, labels = eval_pred
    pred = np.asarray(logits).argmax(-1)
    return {"accuracy": float(accuracy_score(labels, pred)),
            "macro_f1": float(f1_score(labels, pred, average="macro"))}


def train_classifier(model, tokenizer, train: EncodedTexts, val: EncodedTexts, output_dir: str | Path, *,
                     epochs: float = 2.0, batch_size: int = 32, lr: float = 5e-5, weight_decay: float = 0.01,
                     warmup_ratio: float = 0.1, patience: int = 1, seed: int = 0):
    """Fine-tune `model` with `transformers.Trainer`; returns the trainer, its model the best
    epoch's (by validation macro-F1). Checkpoints go to `output_dir` (one kept besides the best)."""
    from transformers import DataCollatorWithPadding, EarlyStoppingCallback, Trainer, TrainingArguments

    if epochs <= 0:
        raise ValueError(f"epochs must be positive, got {epochs}")
    args = TrainingArguments(
        output_dir=str(output_dir), num_train_epochs=epochs, per_device_train_batch_size=batch_size,
        per_device_eval_batch_size=2 * batch_size, learning_rate=lr, weight_decay=weight_decay,
        warmup_steps=warmup_ratio, lr_scheduler_type="linear", eval_strategy="epoch", save_strategy="epoch",
        save_total_limit=1, load_best_model_at_end=True, metric_for_best_model="macro_f1",
        greater_is_better=True, logging_strategy="steps", logging_steps=5, seed=seed, data_seed=seed,
        use_cpu=True, report_to=[], disable_tqdm=True, dataloader_num_workers=0, save_only_model=True,
        train_sampling_strategy="group_by_length")
    trainer = Trainer(model=model, args=args, train_dataset=train, eval_dataset=val, processing_class=tokenizer,
                      data_collator=DataCollatorWithPadding(tokenizer), compute_metrics=compute_metrics,
                      callbacks=[EarlyStoppingCallback(early_stopping_patience=patience)])
    trainer.train()
    return trainer


@torch.no_grad()
def predict_logits(model, tokenizer, texts: Sequence[str], max_length: int = 64, batch_size: int = 64) -> np.ndarray:
    """Logits (N, num_labels) float32 in eval mode, texts batched in their given order."""
    texts = list(texts)
    if not texts:
        raise ValueError("no texts")
    model.eval()
    out = []
    for i in range(0, len(texts), batch_size):
        enc = tokenizer(texts[i:i + batch_size], padding=True, truncation=True, max_length=max_length,
                        return_tensors="pt")
        out.append(model(**enc).logits.float().numpy())
    return np.concatenate(out)


def encoder_change(model, reference) -> dict[str, float]:
    """Per encoder weight matrix, ||W - W_ref|| / ||W_ref||, for two models of the same architecture
    (`reference` e.g. the pretrained one). Only 2-D encoder weights (attention, feed-forward)."""
    ref = dict(reference.base_model.encoder.named_parameters())
    out = {}
    for name, w in model.base_model.encoder.named_parameters():
        if w.ndim == 2:
            r = ref[name].detach()
            out[name] = float((w.detach() - r).norm() / r.norm())
    if not out:
        raise ValueError("no 2-D encoder weights found")
    return out
