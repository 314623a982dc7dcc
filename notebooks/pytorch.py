# %% [markdown]
# # PyTorch: custom autograd functions
#
# This notebook uses `implementations/frameworks/torch/autograd.py`: operations written as
# `torch.autograd.Function`s with a hand-written `backward`. We
#
# 1. check every backward against finite differences with `torch.autograd.gradcheck` (float64),
# 2. see why a custom log-sum-exp is worth having (the naive formula overflows),
# 3. compare sparsemax with softmax: both give probabilities, sparsemax gives exact zeros.

# %%
# %matplotlib inline
import matplotlib.pyplot as plt
import torch
from torch.autograd import gradcheck

from implementations.frameworks.torch.autograd import gelu, logsumexp, silu, sparsemax

torch.manual_seed(0)

# %% [markdown]
# ## 1. Hand-written backward passes agree with finite differences

# %%
x = torch.randn(4, 6, dtype=torch.float64, requires_grad=True)
checks = {"silu": silu, "gelu": gelu, "logsumexp": lambda t: logsumexp(t, 1), "sparsemax": lambda t: sparsemax(t, 1)}
results = {name: gradcheck(f, (x,), eps=1e-6, atol=1e-8) for name, f in checks.items()}
print(results)
assert all(results.values())
assert torch.allclose(silu(x), torch.nn.functional.silu(x)) and torch.allclose(gelu(x), torch.nn.functional.gelu(x))

# %% [markdown]
# ## 2. A numerically stable log-sum-exp
#
# log(e^1000 + e^1000) = 1000 + log 2, but e^1000 overflows to infinity in floating point.

# %%
big = torch.tensor([[1000.0, 1000.0]], dtype=torch.float64)
naive = torch.log(torch.exp(big).sum(1))
ours = logsumexp(big, 1)
print(f"naive: {naive.item()}, ours: {ours.item():.6f}, exact: {1000 + torch.log(torch.tensor(2.0)).item():.6f}")
assert torch.isinf(naive).all() and torch.isclose(ours, torch.tensor([1000.0], dtype=torch.float64) + torch.log(torch.tensor(2.0, dtype=torch.float64))).all()

# %% [markdown]
# ## 3. Sparsemax vs softmax
#
# For scores (t, 0), softmax gives the first class a probability that never reaches 0 or 1;
# sparsemax is exactly 0 for t <= -1 and exactly 1 for t >= 1.

# %%
t = torch.linspace(-3, 3, 121, dtype=torch.float64)
scores = torch.stack([t, torch.zeros_like(t)], dim=1)
p_soft, p_sparse = torch.softmax(scores, 1)[:, 0], sparsemax(scores, 1)[:, 0]
assert torch.allclose(sparsemax(scores, 1).sum(1), torch.ones_like(t))
assert (p_sparse[t <= -1] == 0).all() and (p_sparse[t >= 1] == 1).all() and (p_soft > 0).all()
fig, ax = plt.subplots(figsize=(6, 3.4))
ax.plot(t, p_soft, label="softmax")
ax.plot(t, p_sparse, label="sparsemax")
ax.set(title="Probability of class 1 for scores (t, 0)", xlabel="t", ylabel="probability")
ax.legend()
plt.close(fig)  # shown once, as the cell's value
fig

# %%
probs = sparsemax(torch.randn(5, 8, dtype=torch.float64) * 2, 1)
fig, ax = plt.subplots(figsize=(6, 2.6))
ax.imshow(probs, cmap="viridis", aspect="auto")
ax.set(title="Sparsemax of random scores: most entries are exactly 0", xlabel="class", ylabel="row")
print("share of exact zeros:", float((probs == 0).double().mean()))
assert (probs == 0).any()
plt.close(fig)  # shown once, as the cell's value
fig
