"""WNUT-16 named-entity recognition with the LSTM tagger: encoding, loaders, entity-level F1.

Batches come from the data layer's ``pad_collate`` (token ids padded with ``<pad>`` = 0, tags
with -100). ``matched_hidden_size`` picks the unidirectional hidden size whose tagger has as many
parameters as a bidirectional one, so the comparison is at an equal parameter budget.
"""
from __future__ import annotations

from collections import Counter
from typing import Sequence

import torch
from seqeval.metrics import classification_report, f1_score
from torch import Tensor
from torch.utils.data import DataLoader, Sampler

from implementations.data.ner import NER_TAGS, TAG_TO_ID, Vocab
from implementations.data.torch_datasets import SequenceDataset, pad_collate

from .tagger import LSTMTagger, predict_tags, word_shape

__all__ = ["encode", "ner_collate", "BucketBatchSampler", "ner_loader", "entity_f1", "per_type_report",
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
