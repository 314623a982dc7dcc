"""Fashion-MNIST for Keras, and one `model.fit` run with every callback, saved to a folder.

`fashion_arrays` gives seeded, stratified train/val/test arrays (N, 28, 28) float32 in [0, 1].
`fit_fashion` trains the functional row transformer with EarlyStopping(restore_best_weights),
ModelCheckpoint (best model as .keras and every epoch's weights), a StepLR schedule, CSVLogger,
TensorBoard (scalars and weight histograms every epoch), `SampleImages` and `NaNStopper`, then
writes the History and the restored model next to them. Everything a later check needs is on
disk, so another process can read the run instead of training again.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from implementations.data import fashion_mnist_split
from implementations.data.splits import stratified_subsample

from .callbacks import NaNStopper, SampleImages, step_lr
from .models import row_transformer

__all__ = ["FashionArrays", "fashion_arrays", "fit_fashion", "compile_classifier"]


@dataclass
class FashionArrays:
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: list[str]


def fashion_arrays(n_train: int, n_val: int, n_test: int, seed: int = 0) -> FashionArrays:
    """Stratified Fashion-MNIST subsets: train and val drawn disjointly from the official training
    set, test from the official test set. Images (N, 28, 28) float32 / 255, labels int64."""
    split = fashion_mnist_split(n_train=n_train + n_val, n_test=n_test, seed=seed)
    val = stratified_subsample(split.y_train, n_val, seed + 1)
    train = np.setdiff1d(np.arange(len(split.y_train)), val)
    scale = lambda x: (x.astype(np.float32) / 255.0)  # noqa: E731
    return FashionArrays(scale(split.X_train[train]), split.y_train[train], scale(split.X_train[val]),
                         split.y_train[val], scale(split.X_test), split.y_test, list(split.class_names))


def compile_classifier(model: keras.Model, lr: float, optimizer: str = "adam") -> keras.Model:
    """Sparse categorical cross-entropy on logits, accuracy metric."""
    opt = keras.optimizers.Adam(lr) if optimizer == "adam" else keras.optimizers.SGD(lr)
    model.compile(optimizer=opt, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")])
    return model


def fit_fashion(data: FashionArrays, folder: Path, cfg: dict, seed: int = 0) -> dict:
    """Train with every callback; write the run to `folder` and return its summary.

    `cfg` keys: d_model, num_heads, num_layers, dim_feedforward, lr, step_size, gamma, batch_size,
    max_epochs, patience, min_delta, n_sample_images. Files written:
    history.json, log.csv, best.keras (ModelCheckpoint, best val_loss), weights/epoch_NN.weights.h5
    (every epoch), restored.keras (after EarlyStopping restored the best weights), tensorboard/,
    summary.json (stop epoch, NaN stopper state, schedule).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    # A file at once: a folder is never left empty (a run-folder cleaner may remove empty ones).
    (folder / "config.json").write_text(json.dumps(cfg))
    keras.utils.set_random_seed(seed)
    model = compile_classifier(row_transformer(d_model=cfg["d_model"], num_heads=cfg["num_heads"],
                                               num_layers=cfg["num_layers"],
                                               dim_feedforward=cfg["dim_feedforward"]), cfg["lr"])
    early = keras.callbacks.EarlyStopping(monitor="val_loss", patience=cfg["patience"],
                                          min_delta=cfg["min_delta"], restore_best_weights=True)
    nan_stopper = NaNStopper()
    schedule = step_lr(cfg["lr"], cfg["step_size"], cfg["gamma"])
    tb_dir = folder / "tensorboard"
    samples = data.x_val[: cfg["n_sample_images"]]
    callbacks = [
        keras.callbacks.LearningRateScheduler(schedule),
        keras.callbacks.ModelCheckpoint(str(folder / "best.keras"), monitor="val_loss", save_best_only=True),
        keras.callbacks.ModelCheckpoint(str(folder / "weights" / "epoch_{epoch:02d}.weights.h5"),
                                        save_weights_only=True),
        keras.callbacks.CSVLogger(str(folder / "log.csv")),
        keras.callbacks.TensorBoard(str(tb_dir), histogram_freq=1, write_graph=False),
        SampleImages(str(tb_dir), samples, name="val_samples", epoch=0),
        nan_stopper,
        early,  # last: it restores the best weights in on_train_end, after the others have run
    ]
    history = model.fit(data.x_train, data.y_train, batch_size=cfg["batch_size"], epochs=cfg["max_epochs"],
                        validation_data=(data.x_val, data.y_val), callbacks=callbacks, shuffle=True, verbose=0)
    model.save(folder / "restored.keras")
    hist = {k: [float(v) for v in vals] for k, vals in history.history.items()}
    (folder / "history.json").write_text(json.dumps(hist))
    summary = {"epochs_run": len(hist["loss"]), "stopped_epoch": int(early.stopped_epoch),
               "best_epoch": int(early.best_epoch), "nan_stopped_at": nan_stopper.stopped_at,
               "schedule": [schedule(e) for e in range(len(hist["loss"]))], "seed": seed,
               "n_sample_images": len(samples), "cfg": cfg}
    (folder / "summary.json").write_text(json.dumps(summary))
    return summary
