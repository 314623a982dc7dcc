"""Build a TorchServe model archive (.mar) of the Fashion-MNIST SmallCNN.

`train_model` trains the CNN briefly (seeded; a few seconds on 2 cores) and `write_archive`
packs, with torch-model-archiver: the weights (safetensors), `classifier.py` (the model's own
source file from implementations/, not a copy), `handler.py` and `model_config.json`
(architecture, input statistics, class names, limits). `reference_predict` runs the same
weights in process, preprocessing exactly as the handler does, for served-vs-in-process checks.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from implementations.architectures.cnn import classifier
from implementations.architectures.cnn.classifier import SmallCNN

__all__ = ["ModelBundle", "train_model", "write_archive", "reference_model", "reference_predict",
           "save_bundle", "load_bundle", "MODEL_NAME", "TORCHSERVE_AVAILABLE"]

MODEL_NAME = "fashion_cnn"
HANDLER = Path(__file__).with_name("handler.py")
ARCHIVER = Path(sys.executable).with_name("torch-model-archiver")
# what serving needs besides this package: the two console scripts and a Java runtime
TORCHSERVE_AVAILABLE = (ARCHIVER.exists() and Path(sys.executable).with_name("torchserve").exists()
                        and shutil.which("java") is not None)


@dataclass
class ModelBundle:
    """What an archive holds: weights and the handler's configuration."""

    state_dict: dict[str, torch.Tensor]
    config: dict


def train_model(n_train: int = 4000, epochs: int = 1, seed: int = 0,
                widths: tuple[int, int, int] = (16, 32, 64)) -> ModelBundle:
    """SmallCNN trained on a stratified Fashion-MNIST subsample (AdamW, one-cycle)."""
    # imported here: archiving a saved bundle needs neither the data layer nor the trainer
    from implementations.architectures.cnn.training import fit, images_to_tensor
    from implementations.data.images import FASHION_MNIST_CLASSES, fashion_mnist_split

    split = fashion_mnist_split(n_train, None, seed=seed)
    pixels = split.X_train.astype(np.float64) / 255.0
    mean, std = float(pixels.mean()), float(pixels.std())
    torch.manual_seed(seed)
    arch = {"in_channels": 1, "num_classes": 10, "widths": list(widths), "input_size": 28, "dropout": 0.3}
    model = SmallCNN(**arch)
    fit(model, images_to_tensor(split.X_train, mean, std), torch.from_numpy(split.y_train),
        epochs=epochs, batch_size=128, lr=6e-3, seed=seed)
    state = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    config = {"architecture": arch, "mean": mean, "std": std, "class_names": list(FASHION_MNIST_CLASSES),
              "max_instances": 64, "threads": 1, "fault_injection": False,
              "trained_on": f"Fashion-MNIST train, {n_train} images, {epochs} epoch(s), seed {seed}"}
    return ModelBundle(state, config)


def write_archive(bundle: ModelBundle, store: Path, model_name: str = MODEL_NAME, version: str = "1.0",
                  fault_injection: bool = False) -> Path:
    """STORE/<model_name>_v<version>.mar via torch-model-archiver; returns its path."""
    store = Path(store)
    store.mkdir(parents=True, exist_ok=True)
    config = dict(bundle.config, fault_injection=fault_injection)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        save_file(bundle.state_dict, tmp / "model.safetensors", metadata={"version": version})
        (tmp / "model_config.json").write_text(json.dumps(config, indent=1))
        name = f"{model_name}_v{version.replace('.', '_')}"
        cmd = [str(ARCHIVER), "--model-name", name, "--version", version,
               "--model-file", classifier.__file__, "--serialized-file", str(tmp / "model.safetensors"),
               "--handler", str(HANDLER), "--extra-files", str(tmp / "model_config.json"),
               "--export-path", str(store), "--force"]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"torch-model-archiver failed ({done.returncode}): {done.stderr[-2000:]}")
    return store / f"{name}.mar"


def reference_model(bundle: ModelBundle) -> SmallCNN:
    model = SmallCNN(**bundle.config["architecture"])
    model.load_state_dict(bundle.state_dict, strict=True)
    return model.eval()


@torch.inference_mode()
def reference_predict(model: SmallCNN, bundle: ModelBundle, images: np.ndarray) -> torch.Tensor:
    """Probabilities (N, 10) for pixel images (N, 28, 28) in [0, 255], in process."""
    x = torch.as_tensor(np.asarray(images), dtype=torch.float32)
    x = ((x / 255.0 - bundle.config["mean"]) / bundle.config["std"]).unsqueeze(1)
    return torch.softmax(model(x), dim=1)


def save_bundle(bundle: ModelBundle, path: Path) -> None:
    save_file(bundle.state_dict, path, metadata={"config": json.dumps(bundle.config)})


def load_bundle(path: Path) -> ModelBundle:
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        config = json.loads(f.metadata()["config"])
    return ModelBundle(load_file(path), config)
