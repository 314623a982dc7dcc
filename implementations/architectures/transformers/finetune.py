"""Fine-tuning a pretrained BERT (all-MiniLM-L6-v2, a 6-layer BertModel) for text classification.

The classifier is the encoder, mean pooling over real tokens (how MiniLM was trained to embed
sentences) and a linear head. Training is LP-FT (Kumar et al., 2022, "Fine-Tuning can Distort
Pretrained Features"): first a linear probe on the frozen features (logistic regression, copied
into the head), then the whole network fine-tuned from there with a small learning rate. The
probe on its own is the "frozen encoder + linear head" model the fine-tuned one is compared with.
Word embeddings stay frozen: with a few thousand snippets most of the 30k rows are never seen,
and leaving them out of AdamW halves the optimiser's work on CPU.

The encoder loads offline with `transformers` from the installed package folder
(`implementations.data.weights.minilm_model_path`), safetensors weights only.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from torch import Tensor, nn

from implementations.architectures.transformers.training import warmup_cosine

__all__ = ["load_minilm", "mean_pool", "SentenceClassifier", "token_batches", "embed_texts", "fit_linear_probe",
           "finetune", "predict", "tfidf_logreg"]


def load_minilm(path: str | Path | None = None):
    """(tokenizer, BertModel) of all-MiniLM-L6-v2 from its local folder; never touches the network."""
    from transformers import AutoModel, AutoTokenizer  # the Hugging Face library (not this package)

    from implementations.data.weights import minilm_model_path

    folder = minilm_model_path(path)
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    encoder = AutoModel.from_pretrained(folder, local_files_only=True, use_safetensors=True)
    return tokenizer, encoder


def mean_pool(hidden: Tensor, attention_mask: Tensor) -> Tensor:
    """hidden (N, T, H), attention_mask (N, T) of 0/1 -> mean over real tokens (N, H)."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp_min(1.0)


class SentenceClassifier(nn.Module):
    """encoder (a BertModel) -> mean pooling -> dropout -> Linear(hidden_size, num_labels)."""

    def __init__(self, encoder: nn.Module, num_labels: int, dropout: float = 0.1) -> None:
        super().__init__()
        if num_labels < 2:
            raise ValueError(f"num_labels must be >= 2, got {num_labels}")
        self.encoder = encoder
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(encoder.config.hidden_size, num_labels)

    def embed(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        """(N, T) token ids and mask -> pooled features (N, hidden_size)."""
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return mean_pool(hidden, attention_mask)

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        return self.head(self.dropout(self.embed(input_ids, attention_mask)))


def token_batches(tokenizer, texts: Sequence[str], batch_size: int, max_length: int,
                  order: np.ndarray | None = None) -> Iterator[tuple[np.ndarray, dict[str, Tensor]]]:
    """Yield (row indices, tokenised batch) over `texts` in `order` (default: by length, so each
    batch pads to similar lengths; callers scatter results back by the indices)."""
    if not len(texts):
        raise ValueError("no texts")
    if order is None:
        order = np.argsort([len(t) for t in texts], kind="stable")
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        enc = tokenizer([texts[i] for i in idx], padding=True, truncation=True, max_length=max_length,
                        return_tensors="pt")
        yield idx, {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}


@torch.no_grad()
def embed_texts(model: SentenceClassifier, tokenizer, texts: Sequence[str], batch_size: int = 64,
                max_length: int = 64) -> np.ndarray:
    """Pooled encoder features (N, hidden_size) as float64, model in eval mode."""
    model.eval()
    out = np.zeros((len(texts), model.head.in_features))
    for idx, batch in token_batches(tokenizer, texts, batch_size, max_length):
        out[idx] = model.embed(**batch).double().numpy()
    return out


@torch.no_grad()
def predict(model: SentenceClassifier, tokenizer, texts: Sequence[str], batch_size: int = 64,
            max_length: int = 64) -> np.ndarray:
    """Predicted labels (N,) int64, model in eval mode."""
    model.eval()
    out = np.zeros(len(texts), dtype=np.int64)
    for idx, batch in token_batches(tokenizer, texts, batch_size, max_length):
        out[idx] = model(**batch).argmax(-1).numpy()
    return out


def fit_linear_probe(model: SentenceClassifier, features: np.ndarray, labels: np.ndarray, C: float = 1.0,
                     seed: int = 0) -> LogisticRegression:
    """Logistic regression on frozen features, copied into `model.head` (same decision function)."""
    labels = np.asarray(labels)
    n_classes = model.head.out_features
    if features.shape != (len(labels), model.head.in_features):
        raise ValueError(f"features must be ({len(labels)}, {model.head.in_features}), got {features.shape}")
    if set(np.unique(labels)) != set(range(n_classes)):
        raise ValueError(f"labels must cover 0..{n_classes - 1}, got {np.unique(labels)}")
    probe = LogisticRegression(C=C, max_iter=5000, random_state=seed).fit(features, labels)
    coef, intercept = probe.coef_, probe.intercept_
    if n_classes == 2:  # sklearn's binary model is one logit z; softmax over (-z/2, z/2) = sigmoid(z)
        coef, intercept = np.vstack([-coef / 2, coef / 2]), np.concatenate([-intercept / 2, intercept / 2])
    with torch.no_grad():
        model.head.weight.copy_(torch.as_tensor(coef, dtype=model.head.weight.dtype))
        model.head.bias.copy_(torch.as_tensor(intercept, dtype=model.head.bias.dtype))
    return probe


def finetune(model: SentenceClassifier, tokenizer, texts: Sequence[str], labels: np.ndarray, epochs: float = 1.0,
             batch_size: int = 32, lr: float = 5e-5, weight_decay: float = 0.01, warmup_ratio: float = 0.1,
             max_length: int = 64, freeze_word_embeddings: bool = True, seed: int = 0) -> list[float]:
    """End-to-end cross-entropy fine-tuning; `epochs` may be fractional. Returns per-step losses."""
    if len(texts) != len(labels):
        raise ValueError(f"{len(texts)} texts but {len(labels)} labels")
    if epochs <= 0:
        raise ValueError(f"epochs must be positive, got {epochs}")
    word_embeddings = model.encoder.get_input_embeddings().weight
    word_embeddings.requires_grad_(not freeze_word_embeddings)
    params = [p for p in model.parameters() if p.requires_grad]
    steps = max(1, int(round(epochs * len(texts) / batch_size)))
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    sched = warmup_cosine(opt, steps, max(1, int(warmup_ratio * steps)))
    rng = np.random.default_rng(seed)
    y = torch.as_tensor(np.asarray(labels), dtype=torch.int64)
    order = np.concatenate([rng.permutation(len(texts)) for _ in range(int(np.ceil(epochs)) + 1)])
    losses = []
    model.train()
    for idx, batch in token_batches(tokenizer, texts, batch_size, max_length, order=order[: steps * batch_size]):
        loss = F.cross_entropy(model(**batch), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        losses.append(loss.item())
    model.eval()
    return losses


def tfidf_logreg(texts: Sequence[str], labels: np.ndarray, C: float = 10.0, seed: int = 0) -> Pipeline:
    """The classical baseline: word 1-2-gram TF-IDF (sublinear tf) + logistic regression, fitted."""
    pipe = make_pipeline(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1),
                         LogisticRegression(C=C, max_iter=5000, random_state=seed))
    return pipe.fit(list(texts), np.asarray(labels))
