"""What the pretrained EfficientNet-Lite0 has learned, shown and measured: its first-layer
filters (vs a random init of the same layer) and the feature maps of a real photo at four
depths, with translation equivariance checked on exactly the maps drawn.

Requirement cnn.3 (visualise filters and feature maps); validation question q.7 (interpret
what a network has learned).
"""
import numpy as np
import pytest
import torch

from implementations.architectures.cnn import efficientnet as effnet
from implementations.architectures.cnn.probing import (capture, channel_coherence, shift_error,
                                                       shifted_crops)
from implementations.data.images import load_sample_photos
from implementations.viz.filters import filter_images, plot_feature_maps, plot_filters

pytestmark = pytest.mark.torch


@pytest.fixture(scope="module")
def lite0():
    return effnet.lite0_pretrained()


def test_pretrained_first_layer_filters(lite0, evidence, experiment, seed):
    """Learned stem filters are mostly colour-coherent (the same spatial pattern in R, G, B:
    luminance edge/blob detectors); random filters are not."""
    cfg = experiment("filters")
    torch.manual_seed(seed)
    random_stem = effnet.efficientnet_lite0().features[0][0].weight.detach()
    stem = lite0.features[0][0].weight.detach()
    learned, rand = channel_coherence(stem), channel_coherence(random_stem)
    evidence.metric("pretrained_channel_coherence", learned, key=True)
    evidence.metric("random_init_channel_coherence", rand)
    evidence.metric("coherence_gain", learned - rand, threshold=cfg["min_coherence_gain"], direction="higher")
    evidence.figure("stem_filters", plot_filters(
        {"EfficientNet-Lite0, ImageNet weights": stem, "same layer, random init": random_stem},
        "First-layer 3x3 RGB filters (each min-max scaled)"))
    drawn = filter_images(stem)
    assert drawn.shape == (32, 3, 3, 3) and drawn.min() >= 0 and drawn.max() <= 1
    assert learned - rand >= cfg["min_coherence_gain"]
    evidence.text("Most learned first-layer filters apply one spatial pattern to all three colour "
                  "channels (oriented edges and blobs of brightness); a few are colour-opponent. "
                  "Random filters mix channels arbitrarily (coherence near chance).")


def test_feature_maps_of_a_real_photo_shift_with_the_image(lite0, evidence, experiment):
    """Shift the photo by k pixels: the map of total stride s shifts by k/s cells, exactly,
    away from the padded borders; a wrong shift does not line up (negative control)."""
    cfg = experiment("feature_maps")
    photo = torch.from_numpy(load_sample_photos()["china"]).permute(2, 0, 1)
    big = effnet.lite0_preprocess(photo, size=cfg["canvas"], crop_fraction=1.0)[0]
    a, b = shifted_crops(big, cfg["size"], cfg["shift"])
    names, strides, margins = cfg["layers"], cfg["strides"], cfg["margins"]
    maps_a, maps_b = capture(lite0, a[None], names), capture(lite0, b[None], names)
    rows = []
    for name, s, margin in zip(names, strides, margins):
        fa, fb = maps_a[name], maps_b[name]
        assert fa.shape[-1] == cfg["size"] // s, f"{name}: expected stride {s}"
        err = shift_error(fa, fb, cfg["shift"] // s, margin)
        wrong = shift_error(fa, fb, cfg["shift"] // s + 1, margin)
        rows.append({"layer": name, "stride": s, "channels": fa.shape[1], "size": fa.shape[-1],
                     "margin": margin, "shift_error": err, "wrong_shift_error": wrong})
        evidence.metric(f"{name}_shift_error", err, threshold=cfg["max_shift_error"], direction="lower")
    evidence.table("equivariance", rows)
    image = ((a.permute(1, 2, 0) * effnet.LITE_STD + effnet.LITE_MEAN).clamp(0, 255) / 255).numpy()
    evidence.figure("feature_maps", plot_feature_maps(
        {f"{n} (stride {s})": maps_a[n][0] for n, s in zip(names, strides)},
        "EfficientNet-Lite0 feature maps of china.jpg (8 most active channels per depth)", image=image))
    worst = max(r["shift_error"] for r in rows)
    evidence.metric("worst_shift_error", worst, threshold=cfg["max_shift_error"], direction="lower", key=True)
    assert worst <= cfg["max_shift_error"]
    assert min(r["wrong_shift_error"] for r in rows) >= cfg["min_wrong_shift_error"]
    # deeper maps are coarser and wider, as drawn
    assert [r["size"] for r in rows] == sorted((r["size"] for r in rows), reverse=True)
    assert all(np.isfinite(r["shift_error"]) for r in rows)


def test_capture_and_shift_reject_bad_input(lite0):
    with pytest.raises(ValueError, match="no submodules named"):
        capture(lite0, torch.zeros(1, 3, 32, 32), ["features.99"])
    with pytest.raises(ValueError, match="do not fit"):
        shifted_crops(torch.zeros(3, 40, 40), 32, 16)
    with pytest.raises(ValueError, match="no interior"):
        shift_error(torch.zeros(1, 4, 4), torch.zeros(1, 4, 4), 1, 2)
    with pytest.raises(ValueError, match="C_in >= 2"):
        channel_coherence(torch.zeros(4, 1, 3, 3))
