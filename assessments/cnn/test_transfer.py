"""Transfer learning: ImageNet EfficientNet-Lite0 as a frozen feature extractor (linear probe)
and fine-tuned, vs the same architecture from random init with the same training budget, on a
few hundred labelled Fashion-MNIST images, all measured in the same run.

Requirement cnn.4 (transfer learning with pre-trained models).
"""
import numpy as np
import pytest
import torch

from implementations.architectures.cnn import transfer
from implementations.data.images import fashion_mnist_split
from implementations.viz.bars import plot_bars
from implementations.viz.curves import plot_curves

pytestmark = pytest.mark.torch


@pytest.mark.slow
def test_pretrained_beats_scratch_on_few_labels(evidence, experiment, seed):
    cfg = experiment("transfer")
    split = fashion_mnist_split(cfg["n_train"], cfg["n_test"], seed=seed)
    X_train = transfer.to_lite_input(split.X_train, cfg["image_size"])
    X_test = transfer.to_lite_input(split.X_test, cfg["image_size"])
    y_train, y_test = torch.from_numpy(split.y_train), torch.from_numpy(split.y_test)
    budget = dict(epochs=cfg["epochs"], batch_size=cfg["batch_size"], lr=cfg["lr"],
                  weight_decay=cfg["weight_decay"])

    probe = transfer.linear_probe(X_train, y_train, X_test, y_test, C=cfg["probe_C"])
    tuned = transfer.fine_tuned(X_train, y_train, X_test, y_test, 10, seed=seed, **budget)
    scratch = transfer.scratch(X_train, y_train, X_test, y_test, 10, seed=seed, **budget)

    chance = float(np.bincount(split.y_test).max() / len(split.y_test))
    for key, r in (("probe", probe), ("finetuned", tuned), ("scratch", scratch)):
        evidence.metric(f"{key}_test_accuracy", r.test_accuracy)
    margin_probe = probe.test_accuracy - scratch.test_accuracy
    margin_tuned = tuned.test_accuracy - scratch.test_accuracy
    evidence.metric("probe_margin_over_scratch", margin_probe, threshold=cfg["min_margin"],
                    direction="higher")
    evidence.metric("finetune_margin_over_scratch", margin_tuned, threshold=cfg["min_margin"],
                    direction="higher", key=True)
    evidence.metric("majority_class_rate", chance)
    evidence.table("variants", [{"variant": r.name, "test_accuracy": r.test_accuracy,
                                 "trainable_parameters": r.trainable_params}
                                for r in (probe, tuned, scratch)])
    evidence.figure("accuracy_per_epoch", plot_curves(
        {"fine-tuned (ImageNet init)": tuned.history.val_accuracy,
         "from scratch (random init)": scratch.history.val_accuracy,
         "linear probe (frozen)": [probe.test_accuracy] * len(tuned.history.val_accuracy)},
        f"EfficientNet-Lite0 on {cfg['n_train']} Fashion-MNIST images ({cfg['image_size']} px)",
        "epoch", "test accuracy"))
    evidence.figure("transfer_bars", plot_bars(
        {r.name: r.test_accuracy for r in (probe, tuned, scratch)},
        "Same network, same budget, different init", "test accuracy",
        lines={"majority class": chance}, ylim=(0, 1)))
    evidence.text(f"{cfg['n_train']} labelled training images ({cfg['n_train'] // 10} per class), "
                  f"{cfg['n_test']} test images, upsampled to {cfg['image_size']} px and replicated to RGB. "
                  f"Fine-tuning and scratch share the budget: {cfg['epochs']} epochs of AdamW, "
                  f"batch {cfg['batch_size']}, one-cycle peak lr {cfg['lr']}, BatchNorm statistics "
                  "re-estimated after each epoch. The probe caches the frozen backbone's 1280-d "
                  "features once and fits a logistic regression.")
    assert margin_probe >= cfg["min_margin"]
    assert margin_tuned >= cfg["min_margin"]
    assert scratch.test_accuracy > chance, "the scratch baseline must itself learn something"


def test_to_lite_input_rejects_bad_input():
    with pytest.raises(ValueError, match="uint8 grayscale"):
        transfer.to_lite_input(np.zeros((2, 28, 28), dtype=np.float32), 64)
    with pytest.raises(ValueError, match="size must be >= 32"):
        transfer.to_lite_input(np.zeros((2, 28, 28), dtype=np.uint8), 16)
    x = transfer.to_lite_input(np.full((1, 28, 28), 255, dtype=np.uint8), 32)
    assert x.shape == (1, 3, 32, 32) and torch.allclose(x, torch.full_like(x, 1.0))
