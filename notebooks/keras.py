# %% [markdown]
# # Keras 3: a custom attention layer, a short fit with callbacks, and a `.keras` round trip
#
# This notebook uses `implementations/frameworks/keras/` (TensorFlow backend):
#
# 1. check our `MultiHeadSelfAttention` (written with `keras.ops` only) against Keras' own
#    `keras.layers.MultiHeadAttention` given the same weights, and look at what a causal mask does,
# 2. train the row transformer (each image row is a token) on a small Fashion-MNIST subset with
#    `EarlyStopping`, read the `History`, and beat a nearest-centroid baseline,
# 3. save the model as `.keras`, load it back, and get the same predictions.
#
# `assessments/keras/` proves these claims at full strength (float64 parity on every backend,
# every callback, serving); this notebook shows them on a tiny budget.

# %%
# %matplotlib inline
import os

os.environ["KERAS_BACKEND"] = "tensorflow"  # before keras is first imported: the backend is fixed then
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tempfile
from pathlib import Path

import keras
import matplotlib.pyplot as plt
import numpy as np

from implementations.config import load_experiment
from implementations.frameworks.keras.callbacks import expected_early_stop
from implementations.frameworks.keras.layers import MultiHeadSelfAttention
from implementations.frameworks.keras.models import row_transformer
from implementations.frameworks.keras.training import compile_classifier, fashion_arrays
from implementations.viz.curves import plot_curves

cfg = load_experiment("notebooks", "keras", os.environ.get("MILESTONE_BUDGET", "smoke"))
keras.utils.set_random_seed(0)
rng = np.random.default_rng(0)
print("Keras", keras.__version__, "on", keras.backend.backend())
cfg

# %% [markdown]
# ## 1. Our attention layer against Keras' own
#
# `MultiHeadSelfAttention` keeps the three input projections fused in one (E, 3E) matrix
# `[W_q | W_k | W_v]`, like PyTorch. Keras' `MultiHeadAttention` stores one (E, heads, head_dim)
# kernel per projection. We give ours random weights (biases too), copy them into Keras' layer
# reshaped to its layout, and compare the outputs in float64.

# %%
E, H, L = cfg["embed_dim"], cfg["num_heads"], cfg["seq_len"]
d = E // H
x = rng.standard_normal((3, L, E))
ours = MultiHeadSelfAttention(E, H, dtype="float64")
ours.build(x.shape)
ours.set_weights([w + 0.3 * rng.standard_normal(w.shape) for w in ours.get_weights()])

ref = keras.layers.MultiHeadAttention(num_heads=H, key_dim=d, dtype="float64")
ref(x, x)  # builds its query/key/value/output projections
w_qkv, b_qkv = np.split(ours.in_proj_kernel.numpy(), 3, axis=1), np.split(ours.in_proj_bias.numpy(), 3)
for dense, w, b in zip((ref._query_dense, ref._key_dense, ref._value_dense), w_qkv, b_qkv):
    dense.kernel.assign(w.reshape(E, H, d))
    dense.bias.assign(b.reshape(H, d))
ref._output_dense.kernel.assign(ours.out_proj_kernel.numpy().reshape(H, d, E))
ref._output_dense.bias.assign(ours.out_proj_bias.numpy())

errors = {}
for name, kw in {"no mask": {}, "causal mask": {"use_causal_mask": True}}.items():
    a, b = np.asarray(ours(x, **kw)), np.asarray(ref(x, x, **kw))
    errors[name] = float(np.abs(a - b).max())
print({k: f"{v:.1e}" for k, v in errors.items()})
assert max(errors.values()) <= cfg["max_parity_error"]

# %% [markdown]
# **What the causal mask means**: token i may only look at tokens j <= i. So changing the *last*
# token must leave every earlier output exactly as it was; without the mask, every output moves.

# %%
x2 = x.copy()
x2[:, -1] += 1.0
change = {name: np.abs(np.asarray(ours(x2, **kw)) - np.asarray(ours(x, **kw))).max(axis=(0, 2))
          for name, kw in {"no mask": {}, "causal mask": {"use_causal_mask": True}}.items()}
print({k: np.round(v, 3) for k, v in change.items()})
assert (change["causal mask"][:-1] == 0).all() and change["causal mask"][-1] > 0
assert (change["no mask"] > 0).all()

fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(10, 3.6))
ax0.scatter(np.asarray(ref(x, x)).ravel(), np.asarray(ours(x)).ravel(), s=6)
ax0.set(title=f"Same weights, same outputs (max diff {errors['no mask']:.0e})",
        xlabel="keras.layers.MultiHeadAttention", ylabel="our MultiHeadSelfAttention")
pos = np.arange(1, L + 1)
ax1.bar(pos - 0.2, change["no mask"], 0.4, label="no mask")
ax1.bar(pos + 0.2, change["causal mask"], 0.4, label="causal mask")
ax1.set(title="Output change when only the last token changes", xlabel="position", ylabel="max |change|")
ax1.legend()
fig.tight_layout()
plt.close(fig)  # shown once, as the cell's value
fig

# %% [markdown]
# ## 2. Fashion-MNIST: a baseline first
#
# Ten classes of 28x28 clothing images, pixels in [0, 1]; a validation split (for EarlyStopping)
# and a test split. The baseline is **nearest centroid**: predict the class whose mean training
# image is closest. A model worth training must beat it.

# %%
data = fashion_arrays(cfg["n_train"], cfg["n_val"], cfg["n_test"], seed=0)
flat = lambda a: a.reshape(len(a), -1)  # noqa: E731
centroids = np.stack([flat(data.x_train)[data.y_train == c].mean(0) for c in range(10)])
nearest = ((flat(data.x_test)[:, None, :] - centroids[None]) ** 2).sum(-1).argmin(1)
baseline = float((nearest == data.y_test).mean())
print(f"{len(data.y_train)} train, {len(data.y_val)} val, {len(data.y_test)} test images; "
      f"nearest-centroid test accuracy {baseline:.3f} (chance 0.10)")

# %% [markdown]
# ## 3. A short `fit` with EarlyStopping
#
# `EarlyStopping` watches `val_loss`: it stops after `patience` epochs without improvement and,
# with `restore_best_weights=True`, puts back the weights of the best epoch. `fit` returns a
# `History` whose `.history` dict holds one value per epoch for every loss and metric.
# On the smoke budget the curve may still be falling when the epochs run out; the best epoch's
# weights are restored either way, and we check both against EarlyStopping's rule.

# %%
keras.utils.set_random_seed(0)  # the weights' initialisation, and fit's shuffling
model = compile_classifier(row_transformer(d_model=cfg["d_model"], num_heads=cfg["model_heads"],
                                           num_layers=cfg["num_layers"], dim_feedforward=cfg["dim_feedforward"]),
                           cfg["lr"])
early = keras.callbacks.EarlyStopping(monitor="val_loss", patience=cfg["patience"], restore_best_weights=True)
history = model.fit(data.x_train, data.y_train, batch_size=cfg["batch_size"], epochs=cfg["epochs"],
                    validation_data=(data.x_val, data.y_val), callbacks=[early], verbose=0)
hist = history.history
print({k: np.round(v, 3).tolist() for k, v in hist.items()})

# EarlyStopping did what its rule says on the recorded curve, and restored the best epoch's weights.
stop, best = expected_early_stop(hist["val_loss"], cfg["patience"])
assert (early.stopped_epoch or None) == stop and early.best_epoch == best, (early.stopped_epoch, early.best_epoch)
val = model.evaluate(data.x_val, data.y_val, verbose=0, return_dict=True)
assert np.isclose(val["loss"], hist["val_loss"][best], rtol=1e-5), (val["loss"], hist["val_loss"][best])

test_acc = model.evaluate(data.x_test, data.y_test, verbose=0, return_dict=True)["accuracy"]
print(f"epochs run: {len(hist['loss'])}, best epoch: {best + 1}; "
      f"test accuracy {test_acc:.3f} vs nearest centroid {baseline:.3f}")
assert test_acc >= cfg["min_test_accuracy"] and test_acc - baseline >= cfg["min_margin_over_baseline"]

fig = plot_curves({"train loss": hist["loss"], "val loss": hist["val_loss"]},
                  "Row transformer on Fashion-MNIST (History)", "epoch", "cross-entropy")
fig.axes[0].axvline(best + 1, color="grey", ls="--", label="restored (best) epoch")
fig.axes[0].xaxis.set_major_locator(plt.MaxNLocator(integer=True))
fig.axes[0].legend(fontsize=8)
plt.close(fig)  # shown once, as the cell's value
fig

# %% [markdown]
# ## 4. Save as `.keras`, load, predict
#
# A `.keras` file is a zip of the architecture (each layer's `get_config`), the weights and the
# optimizer state. Our layers are registered with `keras.saving.register_keras_serializable`,
# so `load_model` needs no `custom_objects`. The loaded model must predict exactly the same.

# %%
with tempfile.TemporaryDirectory() as tmp:
    path = Path(tmp) / "row_transformer.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    print(f"{path.name}: {path.stat().st_size / 1024:.0f} KiB")
logits, logits_loaded = np.asarray(model(data.x_test)), np.asarray(loaded(data.x_test))
print("max |difference| of test logits:", np.abs(logits - logits_loaded).max())
assert np.array_equal(logits, logits_loaded)
assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), loaded.get_weights()))

fig, axes = plt.subplots(2, 5, figsize=(10, 5.4))
for c, ax in enumerate(axes.ravel()):
    i = int(np.flatnonzero(data.y_test == c)[0])
    p = int(logits_loaded[i].argmax())
    ax.imshow(data.x_test[i], cmap="gray_r")
    ax.set_title(f"{data.class_names[c]}\n-> {data.class_names[p]}", fontsize=9, color="k" if p == c else "r")
    ax.axis("off")
fig.suptitle("Loaded model: true -> predicted class (red = wrong)")
fig.tight_layout()
plt.close(fig)  # shown once, as the cell's value
fig
