"""ResNet: torchvision's layout and published parameter counts, blocks that start as the
identity, and a small CIFAR-style ResNet trained on Fashion-MNIST against a same-run baseline.

Requirement cnn.2 (popular architectures: ResNet).
"""
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from implementations.architectures.cnn.resnet import (BasicBlock, Bottleneck, ResNet, cifar_resnet,
                                                      resnet18, resnet34, resnet50)
from implementations.architectures.cnn.training import accuracy, fit
from implementations.viz.curves import plot_curves

from ._helpers import (fashion_tensors, hf_resnet, hf_resnet_key, n_params, nearest_centroid_accuracy,
                       pixel_baselines)

pytestmark = pytest.mark.torch
BUILDERS = {"resnet18": resnet18, "resnet34": resnet34, "resnet50": resnet50}


@pytest.mark.parametrize("name", list(BUILDERS))
def test_parameter_count_matches_published(name, evidence, experiment):
    published = experiment("published_parameters")[name]
    count = n_params(BUILDERS[name]())
    evidence.metric(f"{name}_parameters", count, threshold=published, direction="none", key=True)
    evidence.metric(f"{name}_published", published)
    assert count == published


def test_torchvision_layout_resnet50():
    """Module names and shapes torchvision's checkpoints use, stride on the 3x3 (v1.5)."""
    model = resnet50()
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    expected = {"conv1.weight": (64, 3, 7, 7), "bn1.running_var": (64,),
                "layer1.0.downsample.0.weight": (256, 64, 1, 1), "layer1.0.downsample.1.weight": (256,),
                "layer2.0.conv2.weight": (128, 128, 3, 3), "layer3.5.conv3.weight": (1024, 256, 1, 1),
                "layer4.2.bn3.num_batches_tracked": (), "fc.weight": (1000, 2048), "fc.bias": (1000,)}
    for key, shape in expected.items():
        assert shapes.get(key) == shape, f"{key}: {shapes.get(key)} != {shape}"
    assert len(shapes) == 320  # 53 convs + 53 BNs x 5 buffers/params + fc
    assert model.layer2[0].conv2.stride == (2, 2) and model.layer2[0].conv1.stride == (1, 1)
    assert "layer1.0.downsample.0.weight" not in resnet18().state_dict()  # 64 -> 64: identity


def max_rel_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max())


@pytest.mark.parametrize("name", list(BUILDERS))
def test_forward_matches_transformers_resnet_float64(name, evidence, experiment):
    """Forward parity with an independent implementation: Hugging Face transformers'
    ResNetForImageClassification (v1.5: stride on the 3x3 of a Bottleneck, projection shortcut
    conv1x1 + BN), random init with randomised BatchNorm statistics, every tensor copied into ours
    by name, eval mode, float64. Negative controls: the same weights in our model without the stem
    max-pool, and (ResNet-50) with the stride moved to the 1x1 conv (v1), must differ."""
    cfg = experiment("resnet_parity")
    reference = hf_resnet(name, cfg["num_classes"])
    theirs = reference.state_dict()
    with torch.device("meta"):  # no init: every tensor comes from the reference
        ours = BUILDERS[name](num_classes=cfg["num_classes"]).eval()
    mapped = {hf_resnet_key(k): v for k, v in theirs.items()}
    assert len(mapped) == len(theirs) == len(ours.state_dict())
    ours.load_state_dict(mapped, strict=True, assign=True)
    assert not any(t.is_meta for t in ours.state_dict().values())
    assert all(p.dtype == torch.float64 for p in ours.parameters())
    x = torch.randn(cfg["batch"], 3, cfg["input_size"], cfg["input_size"], dtype=torch.float64,
                    generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = reference(pixel_values=x).logits
        err = max_rel_error(ours(x), expected)
        spread = float(expected.std(0).mean() / expected.abs().mean())  # not a constant output
        controls = {}
        maxpool, ours.maxpool = ours.maxpool, torch.nn.Identity()
        controls["no stem max-pool"] = max_rel_error(ours(x), expected)
        ours.maxpool = maxpool
        if name == "resnet50":  # ResNet v1: the stride on the first 1x1 conv instead of the 3x3
            for layer in (ours.layer2, ours.layer3, ours.layer4):
                layer[0].conv1.stride, layer[0].conv2.stride = (2, 2), (1, 1)
            controls["stride on the 1x1 (v1)"] = max_rel_error(ours(x), expected)
    evidence.metric(f"{name}_max_rel_error_vs_transformers", err, threshold=cfg["max_rel_error"],
                    direction="lower", key=True)
    for control, value in controls.items():
        evidence.metric(f"{name}_control_{control.replace(' ', '_')}", value,
                        threshold=cfg["min_control_error"], direction="higher")
    evidence.table(f"{name}_parity", [{"model": f"ours ({name})", "max rel error": err}] +
                   [{"model": f"ours, {c}", "max rel error": v} for c, v in controls.items()])
    assert err <= cfg["max_rel_error"], f"{name}: {err:.2e} from transformers' ResNet"
    assert spread >= cfg["min_logit_spread"], "the reference logits barely depend on the input"
    assert min(controls.values()) >= cfg["min_control_error"], controls


@pytest.mark.parametrize("block, channels", [(BasicBlock, 32), (Bottleneck, 128)])
def test_zero_init_residual_blocks_start_as_identity(block, channels):
    """With the last BN of each block at 0, a block maps post-ReLU inputs to themselves."""
    torch.manual_seed(0)
    b = block(channels, channels // block.expansion).eval()
    torch.nn.init.zeros_(b.bn2.weight if block is BasicBlock else b.bn3.weight)
    x = torch.relu(torch.randn(2, channels, 8, 8, dtype=torch.float64))
    assert torch.equal(b.double()(x), x)
    model = resnet18(zero_init_residual=True)
    assert all(not blk.bn2.weight.detach().any() for blk in model.modules() if isinstance(blk, BasicBlock))


@settings(max_examples=12, deadline=None)
@given(depth=st.sampled_from([8, 14]), in_channels=st.integers(1, 3), classes=st.integers(2, 11),
       size=st.integers(8, 40), residual=st.booleans())
def test_cifar_resnet_shapes_and_finite(depth, in_channels, classes, size, residual):
    torch.manual_seed(0)
    model = cifar_resnet(depth, classes, in_channels, width=4, residual=residual).eval()
    out = model(torch.randn(2, in_channels, size, size) * 50)
    assert out.shape == (2, classes) and torch.isfinite(out).all()
    assert len(model.convs()) == depth - 1  # + the fc layer = depth weighted layers


def test_resnet_forward_on_imagenet_and_grayscale_input():
    torch.manual_seed(0)
    model = resnet18(num_classes=7, in_channels=1).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 1, 64, 64))
    assert out.shape == (2, 7) and torch.isfinite(out).all()


def test_resnet_rejects_bad_input():
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        resnet18()(torch.zeros(1, 1, 64, 64))
    with pytest.raises(ValueError, match="6n\\+2"):
        cifar_resnet(depth=10)
    with pytest.raises(ValueError, match="4 positive block counts"):
        ResNet(BasicBlock, [2, 2, 2])


@pytest.mark.slow
def test_small_resnet_learns_fashion_mnist(evidence, experiment, seed):
    cfg = experiment("small_resnet")
    data = fashion_tensors(cfg.get("n_train"), cfg.get("n_test"), seed=seed)
    baseline = nearest_centroid_accuracy(data)
    torch.manual_seed(seed)
    model = cifar_resnet(cfg["depth"], num_classes=10, in_channels=1, width=cfg["width"])
    hist = fit(model, data.X_train, data.y_train, epochs=cfg["epochs"], batch_size=cfg["batch_size"],
               lr=cfg["lr"], weight_decay=cfg["weight_decay"], seed=seed, X_val=data.X_test,
               y_val=data.y_test, channels_last=cfg["channels_last"])
    acc = accuracy(model, data.X_test, data.y_test, channels_last=cfg["channels_last"])
    pixels = pixel_baselines(data, cfg["logreg_weight_decay"], cfg["mlp_hidden"], cfg["mlp_epochs"], seed=seed)
    best_pixels = max(pixels, key=pixels.get)
    evidence.metric("test_accuracy", acc, threshold=cfg["min_test_accuracy"], direction="higher", key=True)
    evidence.metric("nearest_centroid_baseline", baseline)
    evidence.metric("logistic_regression_on_pixels", pixels["logistic regression"])
    evidence.metric("mlp_on_pixels", pixels["MLP"])
    evidence.metric("margin_over_best_pixel_model", acc - pixels[best_pixels],
                    threshold=cfg["min_margin_over_pixel_models"], direction="higher")
    evidence.table("small_resnet_vs_pixel_models", [
        {"model": f"ResNet-{cfg['depth']} (CIFAR-style)", "test accuracy": acc},
        {"model": "logistic regression on pixels (L-BFGS, L2)", "test accuracy": pixels["logistic regression"]},
        {"model": f"MLP on pixels ({cfg['mlp_hidden']} ReLU units, {cfg['mlp_epochs']} epochs)",
         "test accuracy": pixels["MLP"]},
        {"model": "nearest class mean on pixels", "test accuracy": baseline}])
    evidence.metric("margin_over_baseline", acc - baseline, threshold=cfg["min_margin_over_baseline"],
                    direction="higher")
    evidence.metric("parameters", n_params(model))
    evidence.figure("learning_curve", plot_curves(
        {"train loss (epoch mean)": hist.epoch_loss, "test error": [1 - a for a in hist.val_accuracy]},
        f"ResNet-{cfg['depth']} (CIFAR-style) on Fashion-MNIST", "epoch", "loss / error", logy=True))
    evidence.text(f"ResNet-{cfg['depth']}, width {cfg['width']}, {cfg['epochs']} epochs on "
                  f"{len(data.y_train)} train / {len(data.y_test)} test images of the fixed split.")
    assert acc >= cfg["min_test_accuracy"]
    assert acc - baseline >= cfg["min_margin_over_baseline"]
    assert acc - pixels[best_pixels] >= cfg["min_margin_over_pixel_models"], {"ResNet": acc, **pixels}
    assert np.all(np.isfinite(hist.step_loss)) and hist.epoch_loss[-1] < hist.epoch_loss[0]
