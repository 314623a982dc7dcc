# %% [markdown]
# # Neural-network fundamentals: an MLP from scratch in NumPy
#
# This notebook walks through `implementations/fundamentals/`: a multilayer perceptron whose
# forward and backward passes are written by hand in NumPy. We
#
# 1. check backpropagation against central differences (the CS231n gradient check),
# 2. train the MLP on scikit-learn's 8x8 handwritten digits with our own Adam,
# 3. look at the learning curves and at how the gradient norm of each layer evolves.
#
# Settings come from `experiments/notebooks.toml` (`MILESTONE_BUDGET=smoke|full`). Every
# section ends with an `assert`, so a broken implementation makes the notebook fail.

# %%
# %matplotlib inline
import os

import numpy as np

from implementations.config import load_experiment
from implementations.data.images import digits_split
from implementations.fundamentals.gradcheck import eval_numerical_gradient, tensor_rel_error
from implementations.fundamentals.losses import CrossEntropyLoss
from implementations.fundamentals.mlp import MLP
from implementations.fundamentals.optimizers import Adam
from implementations.fundamentals.training import accuracy, train_classifier
from implementations.viz.curves import plot_curves, plot_layer_series

cfg = load_experiment("notebooks", "fundamentals", os.environ.get("MILESTONE_BUDGET", "smoke"))
cfg

# %% [markdown]
# ## 1. Does backpropagation compute the right gradient?
#
# For every weight and bias we compare the gradient from our `backward()` with a numerical
# derivative (fourth-order central differences, float64). A relative error around 1e-10 means
# the two agree to ten digits; a wrong backward gives 1e-2 or worse.

# %%
rng = np.random.default_rng(0)
small = MLP([64, 16, 10], activation="tanh", seed=0)
xb, yb = rng.normal(size=(cfg["gradcheck_batch"], 64)), rng.integers(0, 10, cfg["gradcheck_batch"])
loss = CrossEntropyLoss()
loss.forward(small.forward(xb), yb)
small.backward(loss.backward())
errors = [tensor_rel_error(g, eval_numerical_gradient(lambda _: loss.forward(small.forward(xb), yb), p))
          for p, g in zip(small.parameters(), small.gradients())]
print("relative error per parameter tensor:", [f"{e:.1e}" for e in errors])
assert max(errors) <= cfg["max_gradcheck_rel_error"], errors

# %% [markdown]
# ## 2. Train on real handwritten digits
#
# 1797 images of 8x8 pixels, a fixed stratified split. The MLP has one hidden layer of
# `hidden` ReLU units and is trained with minibatch Adam (our NumPy implementation).

# %%
split = digits_split(seed=0)
model = MLP([64, cfg["hidden"], 10], activation="relu", seed=0)
history = train_classifier(model, Adam(model.parameters(), lr=cfg["lr"]), split.X_train, split.y_train,
                           epochs=cfg["epochs"], batch_size=cfg["batch_size"], seed=0,
                           x_val=split.X_test, y_val=split.y_test, track_train_accuracy=True)
test_acc = accuracy(model, split.X_test, split.y_test)
print(f"test accuracy after {cfg['epochs']} epochs: {test_acc:.3f} (chance: 0.10)")
assert test_acc >= cfg["min_test_accuracy"]

# %%
plot_curves({"train accuracy": history.train_accuracy, "test accuracy": history.val_accuracy},
            "NumPy MLP on digits", "epoch", "accuracy")

# %% [markdown]
# ## 3. Gradient flow
#
# The norm of each layer's weight gradient at every step. Both layers receive gradients of
# similar size (no vanishing), and the norms shrink as the loss falls.

# %%
norms = np.asarray(history.grad_norms)
assert np.isfinite(norms).all() and norms.shape[1] == 2
assert norms[-20:].mean() < norms[:20].mean(), "gradients should shrink as training converges"
plot_layer_series(norms, "Weight-gradient norm per layer", "L2 norm")
