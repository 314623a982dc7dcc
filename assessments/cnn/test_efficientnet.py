"""EfficientNet: torchvision's parameter counts under compound scaling, float64 parity of the
whole B0 (MBConv + SE + swish) and of TF-SAME padding against TensorFlow/Keras, and the real
ImageNet EfficientNet-Lite0 weights (strict, weights_only) naming two real photos correctly.

Requirement cnn.2 (popular architectures: EfficientNet).
"""
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from implementations.architectures.cnn import efficientnet as effnet
from implementations.architectures.cnn.imagenet_classes import imagenet_classes, top_k
from implementations.data.images import load_sample_photos
from implementations.data.weights import efficientnet_lite0_weights_path

from ._helpers import n_params

pytestmark = pytest.mark.torch
BUILDERS = {"efficientnet_b0": effnet.efficientnet_b0, "efficientnet_b1": effnet.efficientnet_b1,
            "efficientnet_b2": effnet.efficientnet_b2, "efficientnet_b3": effnet.efficientnet_b3}


@pytest.mark.parametrize("name", list(BUILDERS))
def test_parameter_count_matches_torchvision(name, evidence, experiment):
    published = experiment("published_parameters")[name]
    model = BUILDERS[name]()
    count = n_params(model)
    evidence.metric(f"{name}_parameters", count, key=True)
    evidence.metric(f"{name}_published", published)
    evidence.table("stages", [{"stage": i + 1, "expand": c.expand_ratio, "kernel": c.kernel,
                               "stride": c.stride, "out_channels": c.out_channels, "layers": c.num_layers}
                              for i, c in enumerate(model.stages)])
    assert count == published


def test_compound_scaling_rules():
    """Width rounds to multiples of 8 (never below 90%), depth rounds up."""
    b3 = effnet.EfficientNet.scaled_stages(1.2, 1.4)
    assert [c.out_channels for c in b3] == [24, 32, 48, 96, 136, 232, 384]
    assert [c.num_layers for c in b3] == [2, 3, 3, 5, 5, 6, 2]
    assert effnet.make_divisible(32 * 1.1) == 32 and effnet.make_divisible(16 * 1.1) == 16
    assert effnet.efficientnet_b3().last_channel == 1536
    # Lite keeps stem, head and the first/last repeats when scaled
    lite = effnet.EfficientNet.scaled_stages(1.2, 1.4, fix_head_stem=True)
    assert lite[0].in_channels == 32 and lite[0].num_layers == 1 and lite[-1].num_layers == 1


def test_stochastic_depth_and_se_behave():
    torch.manual_seed(0)
    x = torch.ones(20000, 4, 1, 1, dtype=torch.float64)
    dropped = effnet.stochastic_depth(x, 0.3, training=True)
    assert set(dropped.unique().tolist()) == {0.0, 1 / 0.7}  # whole samples kept or dropped
    assert torch.all(dropped.amin(dim=(1, 2, 3)) == dropped.amax(dim=(1, 2, 3)))
    assert abs(float(dropped.mean()) - 1.0) < 0.03  # expectation preserved
    assert torch.equal(effnet.stochastic_depth(x, 0.3, training=False), x)
    se = effnet.SqueezeExcitation(8, 2)
    y = torch.randn(3, 8, 5, 5)
    gated = se(y)
    ratio = gated / y  # one gate in (0, 1) per (sample, channel), shared across positions
    assert torch.all((ratio > 0) & (ratio < 1))
    assert torch.allclose(ratio, ratio[..., :1, :1].expand_as(ratio), atol=1e-5)


@pytest.mark.tensorflow
@settings(max_examples=25, deadline=None)
@given(h=st.integers(5, 17), w=st.integers(5, 17), k=st.integers(1, 5), stride=st.integers(1, 3),
       depthwise=st.booleans())
def test_conv2d_same_matches_tensorflow(h, w, k, stride, depthwise):
    """TF "SAME" padding (odd totals put the extra pixel bottom/right), float64, vs tf.nn."""
    tf = pytest.importorskip("tensorflow", reason="tensorflow is the reference for SAME padding")
    rng = np.random.default_rng(h * 1000 + w * 100 + k * 10 + stride)
    c_in, c_out = 3, 3 if depthwise else 4
    conv = effnet.Conv2dSame(c_in, c_out, k, stride, groups=c_in if depthwise else 1, bias=False).double()
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(rng.normal(size=tuple(conv.weight.shape))))
    x = rng.normal(size=(2, c_in, h, w))
    ours = conv(torch.from_numpy(x)).detach().numpy()
    x_tf = tf.constant(x.transpose(0, 2, 3, 1))
    if depthwise:  # (C, 1, k, k) -> (k, k, C, 1)
        ref = tf.nn.depthwise_conv2d(x_tf, conv.weight.detach().numpy().transpose(2, 3, 0, 1),
                                     [1, stride, stride, 1], "SAME")
    else:
        ref = tf.nn.conv2d(x_tf, conv.weight.detach().numpy().transpose(2, 3, 1, 0), stride, "SAME")
    ref = ref.numpy().transpose(0, 3, 1, 2)
    assert ours.shape == ref.shape == (2, c_out, -(-h // stride), -(-w // stride))
    assert np.max(np.abs(ours - ref)) <= 1e-12


@pytest.mark.tensorflow
def test_b0_matches_keras_efficientnet_float64(evidence, experiment):
    """Our B0 built like Keras' (SAME padding, BN eps 1e-3) vs keras.applications.EfficientNetB0
    with our weights copied in: same logits in float64."""
    pytest.importorskip("keras", reason="keras is the reference implementation of EfficientNetB0")
    from ._keras_twin import calibrate_batchnorm, copy_into_keras, keras_efficientnet_b0

    cfg = experiment("keras_parity")
    torch.manual_seed(0)
    size = cfg["input_size"]
    ours = effnet.EfficientNet(num_classes=cfg["num_classes"], same_padding=True, bn_eps=1e-3).double()
    x = torch.rand(cfg["batch"], 3, size, size, dtype=torch.float64) * 2 - 1
    calibrate_batchnorm(ours, x, seed=0)
    kmodel = keras_efficientnet_b0(size, cfg["num_classes"])
    copy_into_keras(ours, kmodel)
    with torch.no_grad():
        logits = ours(x).numpy()
    ref = np.asarray(kmodel(x.numpy().transpose(0, 2, 3, 1), training=False))
    err = float(np.max(np.abs(logits - ref)) / np.max(np.abs(ref)))
    # the logits must depend on the image, or agreement would prove little
    spread = float(logits.std(axis=0).mean() / np.abs(logits).mean())
    # negative control: the same weights with PyTorch's symmetric padding must disagree
    symmetric = effnet.EfficientNet(num_classes=cfg["num_classes"], bn_eps=1e-3).double().eval()
    symmetric.load_state_dict(ours.state_dict())
    with torch.no_grad():
        control = float(np.max(np.abs(symmetric(x).numpy() - ref)) / np.max(np.abs(ref)))
    trainable = sum(int(np.prod(v.shape)) for v in kmodel.trainable_weights)
    evidence.metric("max_rel_logit_error_vs_keras", err, threshold=cfg["max_rel_error"],
                    direction="lower", key=True)
    evidence.metric("logit_spread_across_images", spread, threshold=cfg["min_logit_spread"],
                    direction="higher")
    evidence.metric("control_symmetric_padding_rel_error", control, threshold=cfg["min_control_error"],
                    direction="higher")
    evidence.metric("keras_trainable_parameters", trainable)
    evidence.metric("our_parameters", n_params(ours))
    assert trainable == n_params(ours)
    assert spread >= cfg["min_logit_spread"]
    assert control >= cfg["min_control_error"], "the comparison cannot tell padding rules apart"
    assert err <= cfg["max_rel_error"]


@pytest.fixture(scope="module")
def lite0():
    return effnet.lite0_pretrained()


def photo_batch() -> tuple[list[str], torch.Tensor, dict[str, np.ndarray]]:
    photos = load_sample_photos()
    names = sorted(photos)
    return names, torch.stack([torch.from_numpy(photos[n]).permute(2, 0, 1) for n in names]), photos


def test_lite0_weights_load_strict_and_classify_real_photos(lite0, evidence, experiment):
    cfg = experiment("lite0_photos")
    # strict=True from a weights_only load: every tensor of the checkpoint has its place
    fresh = effnet.load_lite0_weights(effnet.efficientnet_lite0(), efficientnet_lite0_weights_path())
    state = torch.load(efficientnet_lite0_weights_path(), map_location="cpu", weights_only=True)
    assert n_params(fresh) == sum(v.numel() for k, v in state.items()
                                  if not k.endswith(("running_mean", "running_var", "num_batches_tracked")))
    assert torch.equal(fresh.features[0][0].weight, state["_conv_stem.weight"])

    names, batch, photos = photo_batch()
    with torch.no_grad():
        logits = lite0(effnet.lite0_preprocess(batch, size=cfg["image_size"]))
    top5 = dict(zip(names, top_k(logits, 5)))
    rows = [{"photo": n, "rank": r + 1, "class": c, "probability": p}
            for n in names for r, (c, p) in enumerate(top5[n])]
    evidence.table("top5_predictions", rows)
    fig, axes = plt.subplots(1, len(names), figsize=(5 * len(names), 3.8))
    for ax, n in zip(axes, names):
        ax.imshow(photos[n])
        ax.set_axis_off()
        ax.set_title("\n".join(f"{c}: {p:.2f}" for c, p in top5[n]), fontsize=8)
    evidence.figure("photos_top5", fig, caption="EfficientNet-Lite0 (real ImageNet weights): top-5")
    for n in names:
        expected = set(cfg[f"expected_{n}"])
        hit = [c for c, _ in top5[n] if c in expected]
        evidence.metric(f"{n}_top1_probability", top5[n][0][1])
        evidence.metric(f"{n}_expected_in_top5", float(bool(hit)), threshold=1.0, direction="higher",
                        key=n == "flower")
        assert hit, f"{n}: none of {sorted(expected)} in the top 5 {top5[n]}"
    assert set(cfg["expected_china"]) <= set(imagenet_classes())
    assert "daisy" in cfg["expected_flower"]


def test_lite0_preprocess_and_rejects_bad_input():
    x = torch.full((3, 40, 60), 127.0)
    out = effnet.lite0_preprocess(x, size=32)
    assert out.shape == (1, 3, 32, 32) and float(out.abs().max()) < 1e-6  # (127 - 127) / 128
    with pytest.raises(ValueError, match=r"RGB images \(N, 3, H, W\)"):
        effnet.lite0_preprocess(torch.zeros(1, 1, 8, 8))
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        effnet.efficientnet_b0()(torch.zeros(1, 1, 32, 32))
    with pytest.raises(ValueError, match="width_mult"):
        effnet.EfficientNet(width_mult=0)
    with pytest.raises(KeyError, match="no place"):
        effnet.remap_lukemelas({"_blocks.99._se_reduce.weight": torch.zeros(1)},
                               effnet.efficientnet_lite0())
    with pytest.raises(ValueError, match=r"ImageNet logits \(N, 1000\)"):
        top_k(torch.zeros(2, 10))
