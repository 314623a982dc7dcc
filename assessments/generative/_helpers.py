"""Shared machinery of the generative assessments: train each model once per run, on disk.

`make test` runs `pytest -n 2 --dist loadfile`, so the VAE, GAN and diffusion modules and the
comparison module can land on different workers at the same time. `ModelStore` trains a model
at most once per (model, settings, budget, seed): the first process to take the model's file
lock trains it and writes the state_dict and history under `<run-dir>/artifacts/generative/
models/`; every other process waits on the lock and loads (torch.load, weights_only=True).
Samples go the same way to the audit artifacts `<run-dir>/artifacts/generative/<model>_samples.npy`
with a sidecar JSON of the sampler settings and the measured throughput.

Training runs on one thread, so the same seed gives the same weights (and the same FID)
whether the suite runs under xdist or not.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from assessments.threads import single_thread
from implementations.architectures.generative import training
from implementations.architectures.generative.digit_features import DigitClassifier, digit_features
from implementations.architectures.generative.metrics import (class_histogram, fid_from_features,
                                                              histogram_entropy, mean_confidence, precision_recall)
from implementations.config import load_experiment
from implementations.data.images import mnist_5k_split

# the settings of experiments/generative.toml that determine a trained model's weights
TRAINING_KEYS = ("latent_dim", "hidden_dim", "channels", "emb_dim", "schedule", "num_timesteps", "lr",
                 "batch_size", "steps", "ema_decay")
MODEL_LABELS = {"vae": "VAE", "gan": "GAN", "diffusion": "DDPM (DDIM sampler)"}


def digits(cfg: dict) -> tuple[torch.Tensor, np.ndarray, np.ndarray, np.ndarray]:
    """MNIST-5k seeded split: train pixels (N, 28, 28) float32 tensor in [0, 1], train labels,
    held-out pixels (M, 28, 28) float64 in [0, 1], held-out labels."""
    s = mnist_5k_split(test_size=cfg["test_size"], seed=cfg["split_seed"])
    return (torch.tensor(s.X_train / 255.0, dtype=torch.float32), s.y_train, s.X_test / 255.0, s.y_test)


@contextmanager
def file_lock(path: Path):
    """An exclusive advisory lock on `path` (created), released on exit."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


class ModelStore:
    """Trained models, their histories and samples for one run (budget, seed), cached on disk."""

    def __init__(self, folder: Path, budget: str, seed: int) -> None:
        self.folder, self.budget, self.seed = folder, budget, seed
        self.data_cfg = load_experiment("generative", "data", budget)
        self._models: dict[str, tuple[torch.nn.Module, dict]] = {}

    def cfg(self, name: str) -> dict:
        return load_experiment("generative", name, self.budget)

    def _key(self, name: str) -> str:
        """Cache key: model, budget, seed and a hash of the settings that shape the weights
        (thresholds can change without retraining)."""
        shaping = {k: v for k, v in self.cfg(name).items() if k in TRAINING_KEYS}
        data = {k: self.data_cfg[k] for k in ("test_size", "split_seed")}
        blob = json.dumps([shaping, data], sort_keys=True).encode()
        return f"{name}-{self.budget}-seed{self.seed}-{hashlib.sha256(blob).hexdigest()[:10]}"

    def _busy(self, name: str) -> bool:
        """Whether another process holds this model's training lock right now."""
        path = self.folder / "models" / f"{self._key(name)}.lock"
        if not path.exists():
            return False
        with open(path, "a") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(f, fcntl.LOCK_UN)
            return False

    def all_samples(self, names: tuple[str, ...]) -> dict[str, tuple[np.ndarray, dict]]:
        """Samples of every model, taking first the models no other worker is training now,
        so two workers that need the same models train them side by side, not in turn."""
        todo, out = list(names), {}
        while todo:
            name = next((n for n in todo if not self._busy(n)), todo[0])
            out[name] = self.samples(name)
            todo.remove(name)
        return {n: out[n] for n in names}

    def trained(self, name: str) -> tuple[torch.nn.Module, dict]:
        """(model in eval mode, {"curves": ..., "train_seconds": ...}); trains on first use."""
        if name in self._models:
            return self._models[name]
        cfg, key = self.cfg(name), self._key(name)
        weights, meta = self.folder / "models" / f"{key}.pt", self.folder / "models" / f"{key}.json"
        torch.manual_seed(self.seed)
        model = training.build(name, cfg)
        with file_lock(self.folder / "models" / f"{key}.lock"):
            if not weights.exists():
                info = self._train(name, model, cfg)
                torch.save(model.state_dict(), weights)
                meta.write_text(json.dumps(info))
        model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
        self._models[name] = (model.eval(), json.loads(meta.read_text()))
        return self._models[name]

    def _train(self, name: str, model: torch.nn.Module, cfg: dict) -> dict:
        x_train = digits(self.data_cfg)[0]
        start = time.perf_counter()
        with single_thread():
            torch.manual_seed(self.seed)
            if name == "vae":
                hist = training.train_vae(model, x_train, cfg["steps"], cfg["batch_size"], cfg["lr"], self.seed)
            elif name == "gan":
                hist = training.train_gan(model, x_train, cfg["steps"], cfg["batch_size"], cfg["lr"], self.seed)
            else:
                hist, ema = training.train_diffusion(model, x_train, cfg["steps"], cfg["batch_size"], cfg["lr"],
                                                     self.seed, cfg["ema_decay"])
                model.load_state_dict(ema.state_dict())
        return {"curves": hist.curves, "train_seconds": time.perf_counter() - start}

    def sampler_settings(self, name: str) -> dict:
        cfg = self.cfg(name)
        if name == "diffusion":
            return {"sampler": "ddim", "num_steps": cfg["ddim_steps"], "eta": 0.0,
                    "schedule": cfg["schedule"], "num_timesteps": cfg["num_timesteps"]}
        return {"sampler": "decoder mean sigmoid(logits), z ~ N(0, I)" if name == "vae" else "G(z), z ~ N(0, I)"}

    def _same_draw(self, side: Path, name: str, settings: dict) -> bool:
        """Whether saved samples came from this model, seed, budget and sampler (else redraw)."""
        if not side.exists():
            return False
        saved = json.loads(side.read_text())
        return (saved.get("model_key") == self._key(name) and saved.get("num_samples") == self.data_cfg["num_samples"]
                and all(saved.get(k) == v for k, v in settings.items()))

    def samples(self, name: str) -> tuple[np.ndarray, dict]:
        """(samples (N, 28, 28) float32 in [0, 1], sidecar dict); the artifact files are the cache."""
        npy, side = self.folder / f"{name}_samples.npy", self.folder / f"{name}_samples.json"
        model, _ = self.trained(name)
        settings = self.sampler_settings(name)
        with file_lock(self.folder / "models" / f"{name}_samples.lock"):
            if not (npy.exists() and self._same_draw(side, name, settings)):
                n = self.data_cfg["num_samples"]
                kwargs = {"num_steps": settings["num_steps"], "eta": 0.0} if name == "diffusion" else {}
                sample_seed = self.seed + self.data_cfg["sample_seed_offset"]
                with single_thread():
                    start = time.perf_counter()
                    x = training.sample(name, model, n, sample_seed, self.data_cfg["sample_batch_size"], **kwargs)
                    seconds = time.perf_counter() - start
                np.save(npy, x.numpy().astype(np.float32))
                side.write_text(json.dumps({
                    "model": name, "model_key": self._key(name), "num_samples": n, "shape": [n, 28, 28],
                    "dtype": "float32", "range": [0.0, 1.0],
                    "seed": sample_seed, "train_seed": self.seed, "budget": self.budget, **settings,
                    "batch_size": self.data_cfg["sample_batch_size"], "threads": 1,
                    "seconds": seconds, "images_per_second": n / seconds,
                    "parameters": sum(p.numel() for p in model.parameters())}, indent=1))
        return np.load(npy), json.loads(side.read_text())


def quality(clf: DigitClassifier, samples: np.ndarray, real_features: np.ndarray, k: int) -> dict:
    """FID, precision, recall, mean confidence, class histogram and its entropy of samples
    against held-out real features, all in the classifier's 256-d feature space."""
    feats, probs = digit_features(clf, samples)
    precision, recall = precision_recall(real_features, feats, k=k)
    hist = class_histogram(probs)
    return {"fid": fid_from_features(feats, real_features), "precision": precision, "recall": recall,
            "confidence": mean_confidence(probs), "class_entropy": histogram_entropy(hist),
            "class_histogram": hist, "features": feats}


def nearest_distances(queries: np.ndarray, reference: np.ndarray, chunk: int = 500) -> np.ndarray:
    """Euclidean pixel distance from each query image (N, 28, 28) to its nearest reference image."""
    q = queries.reshape(len(queries), -1).astype(np.float64)
    r = reference.reshape(len(reference), -1).astype(np.float64)
    rr = (r * r).sum(1)
    out = [np.sqrt(np.maximum((c * c).sum(1)[:, None] + rr[None, :] - 2 * c @ r.T, 0).min(1))
           for c in (q[i:i + chunk] for i in range(0, len(q), chunk))]
    return np.concatenate(out)


def image_grid(images: np.ndarray, nrow: int) -> np.ndarray:
    """(N, 28, 28) -> one (nrow*30, ncol*30) mosaic with 2-pixel gaps (N padded up to a full grid)."""
    n = len(images)
    ncol = -(-n // nrow)
    grid = np.ones((nrow * 30, ncol * 30))
    for i, im in enumerate(images):
        r, c = divmod(i, ncol)
        grid[r * 30 + 1:r * 30 + 29, c * 30 + 1:c * 30 + 29] = im
    return grid
