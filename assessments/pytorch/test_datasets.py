"""Custom torch Datasets, transforms and the padding collate over the offline data:
lengths, item shapes and dtypes, seeded shuffling, transform arithmetic, and padding that
keeps every sequence intact (a hypothesis property over random batches)."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402

from implementations.data import images, ner  # noqa: E402
from implementations.data.torch_datasets import (  # noqa: E402
    ArrayDataset, Compose, ImageDataset, Normalize, RandomShift, SequenceDataset, ToTensor,
    pad_collate)


@pytest.fixture(scope="module")
def mnist():
    X, y = images.load_mnist_5k()
    return X[::10], y[::10]  # 500 images, 50 per class (the file is sorted by class)


def test_array_dataset_items():
    X, y = images.load_digits()
    ds = ArrayDataset(X, y)
    assert len(ds) == 1797
    x0, y0 = ds[5]
    assert x0.shape == (64,) and x0.dtype == torch.float32 and y0.dtype == torch.int64
    np.testing.assert_allclose(x0.numpy(), X[5].astype(np.float32))
    assert int(y0) == y[5]
    doubled = ArrayDataset(X, y, transform=lambda t: 2 * t)
    np.testing.assert_allclose(doubled[5][0].numpy(), 2 * X[5].astype(np.float32))
    with pytest.raises(ValueError):
        ArrayDataset(X, y[:-1])


def test_image_dataset_items(mnist):
    X, y = mnist
    ds = ImageDataset(X, y)
    assert len(ds) == 500
    img, label = ds[7]
    assert img.shape == (1, 28, 28) and img.dtype == torch.float32
    assert label.dtype == torch.int64 and label.ndim == 0 and int(label) == y[7]
    np.testing.assert_allclose(img[0].numpy(), X[7] / 255.0, rtol=1e-6)
    photos = images.load_sample_photos()
    rgb = ImageDataset(np.stack([photos["china"], photos["flower"]]), np.array([0, 1]))
    assert rgb[1][0].shape == (3, 427, 640)
    np.testing.assert_allclose(rgb[1][0][2].numpy(), photos["flower"][..., 2] / 255.0, rtol=1e-6)


def _first_batch(ds, seed):
    g = torch.Generator().manual_seed(seed)
    return next(iter(DataLoader(ds, batch_size=32, shuffle=True, generator=g)))


def test_seeded_dataloader_repeats_its_first_batch(mnist):
    ds = ImageDataset(*mnist)
    x1, y1 = _first_batch(ds, 0)
    x2, y2 = _first_batch(ds, 0)
    assert x1.shape == (32, 1, 28, 28) and y1.shape == (32,)
    torch.testing.assert_close(x1, x2, rtol=0, atol=0)
    torch.testing.assert_close(y1, y2, rtol=0, atol=0)
    assert len(set(y1.tolist())) > 3  # shuffled: a class-sorted file would give one class
    _, y3 = _first_batch(ds, 1)
    assert not torch.equal(y1, y3)


def test_to_tensor_range_and_layout():
    img = np.array([[0, 128], [255, 1]], dtype=np.uint8)
    t = ToTensor()(img)
    assert t.shape == (1, 2, 2) and t.dtype == torch.float32
    assert t.min() == 0.0 and t.max() == 1.0
    torch.testing.assert_close(t[0], torch.tensor([[0, 128], [255, 1]]) / 255.0)
    hwc = np.arange(24, dtype=np.uint8).reshape(2, 4, 3)
    torch.testing.assert_close(ToTensor()(hwc)[1], torch.from_numpy(hwc[..., 1] / 255.0).float())


def test_normalize_matches_formula():
    x = torch.rand(3, 5, 6, generator=torch.Generator().manual_seed(0))
    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    out = Normalize(mean, std)(x)
    for c in range(3):
        torch.testing.assert_close(out[c], (x[c] - mean[c]) / std[c])
    mnist = Normalize(0.1307, 0.3081)(torch.ones(1, 2, 2))
    torch.testing.assert_close(mnist, torch.full((1, 2, 2), (1 - 0.1307) / 0.3081))
    with pytest.raises(ValueError):
        Normalize([0.0], [0.0])


def test_random_shift_moves_content_by_at_most_max_shift():
    x = torch.zeros(1, 9, 9)
    x[0, 4, 4] = 1.0
    a, b = RandomShift(2, seed=3), RandomShift(2, seed=3)
    moves = set()
    for _ in range(40):
        ya, yb = a(x), b(x)
        torch.testing.assert_close(ya, yb)  # same seed, same shifts
        assert ya.sum() == 1.0  # the centre pixel never leaves a 9x9 frame
        r, c = divmod(int(ya[0].argmax()), 9)
        assert abs(r - 4) <= 2 and abs(c - 4) <= 2
        moves.add((r, c))
    assert len(moves) > 5
    torch.testing.assert_close(RandomShift(0)(x), x)


def test_compose_applies_in_order(mnist):
    X, y = mnist
    tf = Compose([ToTensor(), Normalize(0.5, 0.5)])
    ds = ImageDataset(X, y, transform=tf)
    img = ds[0][0]
    torch.testing.assert_close(img, (torch.from_numpy(X[0]).float()[None] / 255 - 0.5) / 0.5)
    assert img.min() >= -1.0 and img.max() <= 1.0


def test_pad_collate_scalar_labels():
    batch = [([5, 6, 7], 1), ([8], 0), ([9, 10], 2)]
    padded, lengths, targets = pad_collate(batch)
    assert padded.shape == (3, 3) and padded.dtype == torch.int64
    assert lengths.tolist() == [3, 1, 2]
    assert padded.tolist() == [[5, 6, 7], [8, 0, 0], [9, 10, 0]]
    assert targets.tolist() == [1, 0, 2] and targets.shape == (3,)
    assert pad_collate(batch, padding_value=-1)[0][1].tolist() == [8, -1, -1]


def test_pad_collate_tag_sequences():
    batch = [(torch.tensor([3, 4]), torch.tensor([1, 2])), ([5, 6, 7, 8], [0, 0, 3, 4])]
    padded, lengths, tags = pad_collate(batch)
    assert padded.shape == tags.shape == (2, 4)
    assert lengths.tolist() == [2, 4]
    assert tags.tolist() == [[1, 2, -100, -100], [0, 0, 3, 4]]
    mask = torch.arange(4)[None, :] >= lengths[:, None]
    assert (tags[mask] == -100).all() and (padded[mask] == 0).all()
    with pytest.raises(ValueError, match="tags"):
        pad_collate([([1, 2, 3], [0, 0])])


@settings(max_examples=60, deadline=None, database=None)
@given(st.lists(st.lists(st.integers(1, 1000), min_size=1, max_size=12), min_size=1, max_size=8),
       st.booleans())
def test_pad_collate_keeps_every_sequence(seqs, tagged):
    targets = [[t % 21 for t in s] for s in seqs] if tagged else [len(s) % 3 for s in seqs]
    padded, lengths, out = pad_collate(list(zip(seqs, targets)))
    T = max(map(len, seqs))
    assert padded.shape == (len(seqs), T)
    assert lengths.tolist() == [len(s) for s in seqs]
    for i, s in enumerate(seqs):
        assert padded[i, : len(s)].tolist() == s
        assert (padded[i, len(s):] == 0).all()
        if tagged:
            assert out[i, : len(s)].tolist() == targets[i]
            assert (out[i, len(s):] == -100).all()
    if not tagged:
        assert out.tolist() == targets


def test_sequence_dataset_over_wnut16_packs_and_unpacks():
    split = ner.wnut16_split(0.2, seed=0)
    vocab = ner.Vocab.build(split.X_train, min_freq=1)
    seqs = [vocab.encode(s) for s in split.X_train]
    tags = [[ner.TAG_TO_ID[t] for t in g] for g in split.y_train]
    ds = SequenceDataset(seqs, tags)
    assert len(ds) == 1915
    tok, tag = ds[0]
    assert tok.dtype == tag.dtype == torch.int64 and tok.shape == tag.shape == (len(seqs[0]),)
    loader = DataLoader(ds, batch_size=16, shuffle=True, collate_fn=pad_collate,
                        generator=torch.Generator().manual_seed(0))
    padded, lengths, out = next(iter(loader))
    assert padded.shape == out.shape == (16, int(lengths.max()))
    assert lengths.min() < lengths.max()  # tweets really differ in length
    emb = torch.nn.functional.one_hot(padded, len(vocab)).float()
    packed = pack_padded_sequence(emb, lengths, batch_first=True, enforce_sorted=False)
    unpacked, back = pad_packed_sequence(packed, batch_first=True)
    torch.testing.assert_close(unpacked, emb * (padded != 0)[..., None].float())
    assert torch.equal(back, lengths)
    with pytest.raises(ValueError):
        SequenceDataset([[1, 2]], [[0]])
    labelled = SequenceDataset(seqs[:3], [0, 1, 2])
    assert labelled[2][1].ndim == 0 and int(labelled[2][1]) == 2
