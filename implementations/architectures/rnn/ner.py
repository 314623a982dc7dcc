"""WNUT-16 named-entity recognition with the LSTM tagger: encoding, loaders, entity-level F1.

Batches come from the data layer's ``pad_collate`` (token ids padded with ``<pad>`` = 0, tags
with -100). ``matched_hidden_size`` picks the unidirectional hidden size whose tagger has as many
parameters as a bidirectional one, so the comparison is at an equal parameter budget.
"""
from __future__ import annotations

from collections import Counter
from typing import Sequence

import numpy as np
import torch
from seqeval.metrics import classification_report, f1_score
from torch import Tensor
from torch.utils.data import DataLoader, Sampler

from implementations.data.ner import NER_TAGS, TAG_TO_ID, Vocab
from implementations.data.torch_datasets import SequenceDataset, pad_collate

from .tagger import LSTMTagger, predict_tags, word_shape

__all__ = ["encode", "ner_collate", "BucketBatchSampler", "ner_loader", "entity_f1", "predicted_tags",
           "entity_counts", "paired_bootstrap_f1", "per_type_report",
           "matched_hidden_size", "tagger_parameters", "most_frequent_tag_baseline"]


def encode(tokens: Sequence[Sequence[str]], tags: Sequence[Sequence[str]], vocab: Vocab
           ) -> list[tuple[Tensor, Tensor, Tensor]]:
    """Sentences -> [(token ids (T,), word-shape ids (T,), tag ids (T,))]; unknown tags are a ValueError."""
    out = []
    for i, (sent, sent_tags) in enumerate(zip(tokens, tags, strict=True)):
        if len(sent) != len(sent_tags) or not sent:
            raise ValueError(f"sentence {i}: {len(sent)} tokens and {len(sent_tags)} tags (need equal, >= 1)")
        unknown = set(sent_tags) - TAG_TO_ID.keys()
        if unknown:
            raise ValueError(f"sentence {i}: tags {sorted(unknown)} are not WNUT-16 tags {NER_TAGS}")
        out.append((torch.tensor(vocab.encode(sent)), torch.tensor([word_shape(t) for t in sent]),
                    torch.tensor([TAG_TO_ID[t] for t in sent_tags])))
    return out


def ner_collate(batch: Sequence[tuple[Tensor, Tensor, Tensor]]
                ) -> tuple[tuple[Tensor, Tensor], Tensor, Tensor]:
    """Pad (ids, shapes, tags) items with the data layer's ``pad_collate``: returns
    ((ids (B, T), shapes (B, T)), lengths (B,), tags (B, T) with -100 at padding)."""
    ids, lengths, tags = pad_collate([(i, t) for i, _, t in batch])
    shapes, _, _ = pad_collate([(s, t) for _, s, t in batch])
    return (ids, shapes), lengths, tags


class _Items(SequenceDataset):
    """SequenceDataset (ids, tags) that also carries each sentence's word-shape ids."""

    def __init__(self, items: list[tuple[Tensor, Tensor, Tensor]]) -> None:
        super().__init__([i for i, _, _ in items], [t for _, _, t in items])
        self.shapes = [s for _, s, _ in items]

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor, Tensor]:
        ids, tags = super().__getitem__(i)
        return ids, self.shapes[i], tags


class BucketBatchSampler(Sampler[list[int]]):
    """Batches of similar lengths: shuffle, cut into pools of ``pool`` batches, sort each pool by
    length, split it into batches and shuffle the batches. The recurrence runs as many steps as
    a batch's longest sequence, so less padding means fewer steps. Seeded; each epoch differs."""

    def __init__(self, lengths: Sequence[int], batch_size: int, pool: int = 20, seed: int = 0) -> None:
        if batch_size < 1 or pool < 1:
            raise ValueError(f"batch_size and pool must be >= 1, got {batch_size}, {pool}")
        self.lengths = torch.as_tensor(list(lengths))
        self.batch_size, self.pool = batch_size, pool
        self.generator = torch.Generator().manual_seed(seed)

    def __iter__(self):
        order = torch.randperm(len(self.lengths), generator=self.generator)
        batches = []
        for chunk in order.split(self.batch_size * self.pool):
            chunk = chunk[torch.argsort(self.lengths[chunk], stable=True)]
            batches.extend(b.tolist() for b in chunk.split(self.batch_size))
        for i in torch.randperm(len(batches), generator=self.generator).tolist():
            yield batches[i]

    def __len__(self) -> int:
        return -(-len(self.lengths) // self.batch_size)


def ner_loader(items: list[tuple[Tensor, Tensor, Tensor]], batch_size: int, shuffle: bool,
               seed: int = 0) -> DataLoader:
    """A DataLoader over ``encode``d items: length-bucketed, seeded batches when shuffling,
    the items in order otherwise."""
    if shuffle:
        sampler = BucketBatchSampler([len(i[0]) for i in items], batch_size, seed=seed)
        return DataLoader(_Items(items), batch_sampler=sampler, collate_fn=ner_collate)
    return DataLoader(_Items(items), batch_size=batch_size, shuffle=False, collate_fn=ner_collate)


def _to_tags(ids: Sequence[Sequence[int]]) -> list[list[str]]:
    return [[NER_TAGS[i] for i in seq] for seq in ids]


def entity_f1(model: LSTMTagger, loader: DataLoader, gold: Sequence[Sequence[str]]) -> float:
    """seqeval entity-level micro F1 (conlleval semantics) of the model's tags over a loader
    that was built without shuffling from the sentences whose gold tags are ``gold``."""
    return float(f1_score([list(g) for g in gold], _to_tags(predict_tags(model, loader))))


def predicted_tags(model: LSTMTagger, loader: DataLoader) -> list[list[str]]:
    """The model's tag strings per sentence, in loader order (a loader built without shuffling)."""
    return _to_tags(predict_tags(model, loader))


def entity_counts(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> np.ndarray:
    """Per sentence (true positives, predicted entities, gold entities), shape (n, 3): entity
    spans as seqeval reads them (conlleval), so summed counts give seqeval's micro F1."""
    from seqeval.metrics.sequence_labeling import get_entities

    if len(gold) != len(pred):
        raise ValueError(f"{len(gold)} gold sentences but {len(pred)} predicted")
    rows = []
    for g, p in zip(gold, pred):
        ge, pe = set(get_entities(list(g))), set(get_entities(list(p)))
        rows.append((len(ge & pe), len(pe), len(ge)))
    return np.asarray(rows, dtype=np.int64).reshape(-1, 3)


def paired_bootstrap_f1(gold: Sequence[Sequence[str]], preds_a: Sequence[Sequence[Sequence[str]]],
                        preds_b: Sequence[Sequence[Sequence[str]]], n_boot: int = 2000,
                        seed: int = 0) -> dict[str, float]:
    """Paired bootstrap over sentences (Koehn 2004; Berg-Kirkpatrick et al. 2012) of the micro
    entity F1 difference A - B, each side averaged over its runs (seeds): the same resampled
    sentences score every run of both taggers. preds_a, preds_b: one list of per-sentence tags
    per run. Returns the observed difference, a 95% interval and the one-sided P(diff <= 0)."""
    a = np.stack([entity_counts(gold, p) for p in preds_a])  # (runs, n, 3)
    b = np.stack([entity_counts(gold, p) for p in preds_b])
    idx = np.random.default_rng(seed).integers(0, a.shape[1], size=(n_boot, a.shape[1]))

    def f1(counts: np.ndarray) -> np.ndarray:  # counts (..., 3) summed over sentences
        tp, npred, ngold = counts[..., 0], counts[..., 1], counts[..., 2]
        return np.where(npred + ngold > 0, 2 * tp / np.maximum(npred + ngold, 1), 0.0)

    def mean_f1(c: np.ndarray, rows: np.ndarray | slice) -> np.ndarray:
        return f1(c[:, rows].sum(-2)).mean(0)  # averaged over runs

    diffs = np.array([mean_f1(a, r) - mean_f1(b, r) for r in idx])
    return {"diff": float(mean_f1(a, slice(None)) - mean_f1(b, slice(None))),
            "low": float(np.quantile(diffs, 0.025)), "high": float(np.quantile(diffs, 0.975)),
            "p_value": float(np.mean(diffs <= 0))}


def per_type_report(model: LSTMTagger, loader: DataLoader, gold: Sequence[Sequence[str]]) -> dict[str, dict]:
    """seqeval's per-entity-type precision/recall/F1/support, plus micro/macro averages."""
    return classification_report([list(g) for g in gold], _to_tags(predict_tags(model, loader)),
                                 output_dict=True, zero_division=0)


def tagger_parameters(input_size: int, hidden_size: int, num_tags: int, bidirectional: bool) -> int:
    """Parameters of a 1-layer tagger's LSTM and head (embeddings excluded: equal for both)."""
    d = 2 if bidirectional else 1
    lstm = d * (4 * hidden_size * (input_size + hidden_size) + 8 * hidden_size)
    return lstm + d * hidden_size * num_tags + num_tags


def matched_hidden_size(input_size: int, bi_hidden_size: int, num_tags: int) -> int:
    """The unidirectional hidden size whose 1-layer tagger has the parameter count closest to
    a bidirectional tagger with ``bi_hidden_size`` per direction."""
    target = tagger_parameters(input_size, bi_hidden_size, num_tags, bidirectional=True)
    return min(range(1, 4 * bi_hidden_size + 1),
               key=lambda h: abs(tagger_parameters(input_size, h, num_tags, False) - target))



def most_frequent_tag_baseline(train_tokens: Sequence[Sequence[str]], train_tags: Sequence[Sequence[str]],
                               tokens: Sequence[Sequence[str]], lower: bool = True) -> list[list[str]]:
    """Tag each token with its most frequent training tag ('O' for unseen tokens): the
    memorisation baseline a sequence model has to beat."""
    counts: dict[str, Counter] = {}
    for sent, tags in zip(train_tokens, train_tags, strict=True):
        for tok, tag in zip(sent, tags, strict=True):
            counts.setdefault(tok.lower() if lower else tok, Counter())[tag] += 1
    # most_common breaks ties by first insertion: deterministic for a fixed training order.
    best = {tok: c.most_common(1)[0][0] for tok, c in counts.items()}
    return [[best.get(t.lower() if lower else t, "O") for t in sent] for sent in tokens]
