# %% [markdown]
# # Transformers: attention from scratch, positions, and a model that needs them
#
# This notebook uses `implementations/architectures/transformers/`:
#
# 1. our scaled dot-product and multi-head attention against PyTorch's, in float64;
# 2. the sinusoidal positional encoding;
# 3. a small transformer classifier on an order-only task (which marker comes first?), with and
#    without positional information, and its attention weights.

# %%
# %matplotlib inline
import os

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

from implementations.architectures.transformers.attention import MultiHeadAttention, attention
from implementations.architectures.transformers.model import SequenceClassifier
from implementations.architectures.transformers.positional import sinusoidal_table
from implementations.architectures.transformers.tasks import first_marker_task
from implementations.architectures.transformers.training import classifier_accuracy, train_classifier
from implementations.config import load_experiment
from implementations.viz.attention import plot_attention_maps

cfg = load_experiment("notebooks", "transformers", os.environ.get("MILESTONE_BUDGET", "smoke"))
torch.manual_seed(0)
cfg

# %% [markdown]
# ## 1. Attention equals PyTorch's
#
# softmax(Q K^T / sqrt(d)) V, with a causal mask, against `F.scaled_dot_product_attention`;
# then multi-head attention with the weights of a `torch.nn.MultiheadAttention` copied in.

# %%
q, k, v = (torch.randn(2, 4, 10, 8, dtype=torch.float64) for _ in range(3))
out, weights = attention(q, k, v, is_causal=True)
err_sdpa = (out - F.scaled_dot_product_attention(q, k, v, is_causal=True)).abs().max().item()
ref = torch.nn.MultiheadAttention(16, 4, batch_first=True).double()
mha = MultiHeadAttention(16, 4, batch_first=True).double()
mha.load_state_dict(ref.state_dict())
x = torch.randn(3, 7, 16, dtype=torch.float64)
err_mha = (mha(x, x, x)[0] - ref(x, x, x)[0]).abs().max().item()
print(f"max |ours - torch|: attention {err_sdpa:.1e}, multi-head {err_mha:.1e}")
assert max(err_sdpa, err_mha) <= cfg["max_parity_error"]
assert torch.allclose(weights.sum(-1), torch.ones(2, 4, 10, dtype=torch.float64))
assert (weights.triu(1) == 0).all(), "causal: no query attends to a later key"
plot_attention_maps({"head 0 (causal)": weights[0, 0].numpy()}, "Causal attention weights")

# %% [markdown]
# ## 2. Sinusoidal positional encoding
#
# Each position gets a vector of sines and cosines at geometrically spaced frequencies; nearby
# positions get similar vectors, so dot products encode relative distance.

# %%
table = sinusoidal_table(64, 32)
assert torch.allclose(table[:, 0], torch.sin(torch.arange(64, dtype=torch.float64)))
fig, ax = plt.subplots(figsize=(6, 3))
ax.imshow(table.T, cmap="RdBu_r", aspect="auto")
ax.set(title="Sinusoidal positional encoding", xlabel="position", ylabel="dimension")
plt.close(fig)  # shown once, as the cell's value
fig

# %% [markdown]
# ## 3. Order matters: which marker comes first?
#
# Every sequence holds the same four markers among filler tokens; the label is the marker that
# appears first. Without positions a transformer sees a bag of tokens and sits at chance (1/4).

# %%
x_train, y_train = first_marker_task(cfg["n_train"], cfg["seq_len"], cfg["n_markers"], cfg["n_fillers"], seed=0)
x_test, y_test = first_marker_task(500, cfg["seq_len"], cfg["n_markers"], cfg["n_fillers"], seed=1)
vocab = 2 + cfg["n_markers"] + cfg["n_fillers"]
results, models = {}, {}
for positional in ("sinusoidal", "none"):
    torch.manual_seed(0)
    models[positional] = SequenceClassifier(vocab, cfg["n_markers"], d_model=cfg["d_model"], nhead=cfg["nhead"],
                                            num_layers=cfg["num_layers"], positional=positional)
    train_classifier(models[positional], x_train, y_train, steps=cfg["steps"], lr=cfg["lr"],
                     batch_size=cfg["batch_size"], seed=0)
    results[positional] = classifier_accuracy(models[positional], x_test, y_test)
print({k: round(v, 3) for k, v in results.items()}, "(chance 0.25)")
assert results["sinusoidal"] >= cfg["min_accuracy"]
assert results["none"] < 0.4, "a bag of tokens cannot know the order"

# %%
with torch.no_grad():
    _, layer_weights = models["sinusoidal"](x_test[:1], need_weights=True)
labels = [str(int(t)) for t in x_test[0]]
plot_attention_maps({f"layer {i + 1}, mean over heads": w[0].mean(0).numpy() for i, w in enumerate(layer_weights)},
                    f"Attention of the trained model (markers are tokens 2-{1 + cfg['n_markers']})",
                    labels, labels)
