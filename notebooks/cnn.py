# %% [markdown]
# # Convolutional networks: train a CNN, then ask it what it looks at
#
# This notebook uses `implementations/architectures/cnn/` and `implementations/interpretability/`:
#
# 1. train `SmallCNN` (conv-BN-ReLU stages) on a small Fashion-MNIST subset,
# 2. look at its first-layer filters,
# 3. explain single predictions with gradient saliency, integrated gradients (IG), Grad-CAM
#    and HiResCAM, and check IG's completeness axiom and a deletion test on the numbers.
#
# The assessments in `assessments/cnn/` and `assessments/validation/test_interpretability.py`
# prove these claims at full strength; this notebook shows them on a tiny budget.

# %%
# %matplotlib inline
import os

import numpy as np
import torch

from implementations.architectures.cnn.classifier import SmallCNN
from implementations.architectures.cnn.training import accuracy, fit, images_to_tensor, predict
from implementations.config import load_experiment
from implementations.data.images import fashion_mnist_split
from implementations.interpretability.deletion import curve_area, deletion_curve, random_scores
from implementations.interpretability.grad_cam import grad_cam, hires_cam, upsample
from implementations.interpretability.integrated_gradients import completeness_gap, integrated_gradients
from implementations.interpretability.saliency import saliency
from implementations.viz.attribution import plot_attribution_maps, plot_deletion_curves
from implementations.viz.curves import plot_curves
from implementations.viz.filters import plot_filters

cfg = load_experiment("notebooks", "cnn", os.environ.get("MILESTONE_BUDGET", "smoke"))
torch.manual_seed(0)
cfg

# %% [markdown]
# ## 1. Train SmallCNN on Fashion-MNIST
#
# Ten classes of 28x28 clothing images. Pixels are standardised with the training set's mean
# and standard deviation.

# %%
split = fashion_mnist_split(cfg["n_train"], cfg["n_test"], seed=0)
mean, std = float(split.X_train.mean() / 255), float(split.X_train.std() / 255)
X_train, X_test = images_to_tensor(split.X_train, mean, std), images_to_tensor(split.X_test, mean, std)
y_train, y_test = torch.from_numpy(split.y_train), torch.from_numpy(split.y_test)
model = SmallCNN(widths=cfg["widths"])
w_init = model.first_conv.weight.detach().clone()
history = fit(model, X_train, y_train, epochs=cfg["epochs"], batch_size=cfg["batch_size"], lr=cfg["lr"],
              X_val=X_test, y_val=y_test)
test_acc = accuracy(model, X_test, y_test)
print(f"test accuracy: {test_acc:.3f} on {len(y_test)} images (chance 0.10)")
assert test_acc >= cfg["min_test_accuracy"]
plot_curves({"training loss": history.step_loss}, "SmallCNN training loss", "step", "cross-entropy")

# %% [markdown]
# ## 2. First-layer filters before and after training

# %%
plot_filters({"at initialisation": w_init, "after training": model.first_conv.weight},
             "SmallCNN first-layer 3x3 filters")

# %% [markdown]
# ## 3. What does the network look at?
#
# For one test image per class we explain the **predicted** class:
#
# - **saliency**: |d logit / d pixel|, how sensitive the score is to each pixel;
# - **integrated gradients**: gradients averaged along a path from a black image to the input,
#   times the pixel's change; red pixels push towards the class, blue ones against it;
# - **Grad-CAM** / **HiResCAM**: maps from the last convolutional layer (7x7, upsampled).
#   Grad-CAM averages the gradient over positions; HiResCAM keeps it per position, which is
#   what a flatten + linear head like SmallCNN's actually uses.

# %%
idx = np.array([np.flatnonzero(split.y_test == c)[0] for c in range(10)])
x, target = X_test[idx], predict(model, X_test[idx]).argmax(1)
fill = (0.0 - mean) / std                                  # a black pixel
layer = dict(model.named_modules())[cfg["layer"]]
ig = integrated_gradients(model, x, target, baselines=fill, n_steps=cfg["ig_steps"])
maps = {"saliency": saliency(model, x, target)[:, 0], "integrated gradients": ig[:, 0],
        "Grad-CAM": upsample(grad_cam(model, layer, x, target), (28, 28))[:, 0],
        "HiResCAM": upsample(hires_cam(model, layer, x, target), (28, 28))[:, 0]}
labels = [f"{split.class_names[c]} -> {split.class_names[int(t)]}" for c, t in zip(range(10), target)]
plot_attribution_maps(x[:, 0], maps, "true -> predicted class", labels)

# %% [markdown]
# **Completeness**: IG's attributions add up to the change of the class score between the
# black image and the input. We check it on the numbers.

# %%
with torch.no_grad():
    delta = (model(x) - model(torch.full_like(x, fill))).gather(1, target[:, None])[:, 0]
gap = completeness_gap(model, x, target, ig, baselines=fill)
rel = float((gap.abs() / delta.abs()).max())
print(f"sum of IG vs F(x) - F(black): worst relative gap {rel:.4f}")
assert rel <= cfg["max_completeness_rel_error"]

# %% [markdown]
# **Deletion test**: black out the pixels a map ranks highest and watch the predicted class's
# probability. A faithful map makes it fall faster than a random order does. IG's map does so
# even for this briefly trained network; `assessments/validation/test_interpretability.py`
# measures all four methods on a better-trained one, against several random orders and a
# randomly re-initialised copy of the network.

# %%
fractions = np.linspace(0, 1, 11)
curves = {name: deletion_curve(model, x, target, m, fractions, fill) for name, m in maps.items()}
curves["random order"] = torch.stack([deletion_curve(model, x, target, random_scores((10, 28, 28), s),
                                                     fractions, fill) for s in range(3)]).mean(0)
areas = {k: float(curve_area(v, fractions).mean()) for k, v in curves.items()}
print({k: round(v, 3) for k, v in areas.items()})
assert areas["integrated gradients"] < areas["random order"]
plot_deletion_curves(fractions, curves, "Deletion curves (lower = more faithful)")
