# %% [markdown]
# # Recurrent networks: an LSTM written gate by gate, then a forecast
#
# This notebook uses `implementations/architectures/rnn/`:
#
# 1. our LSTM (`lstm.py`, the four gates written out) against `torch.nn.LSTM` with the same
#    weights, in float64: outputs, final states and gradients;
# 2. a quantile LSTM forecaster on the airline-passengers series, compared with the
#    seasonal-naive forecast (same month last year).

# %%
# %matplotlib inline
import os

import matplotlib.pyplot as plt
import numpy as np
import torch

from implementations.architectures.rnn.forecasting import (LSTMForecaster, SeriesTransform, fit_forecaster,
                                                           lstm_quantiles, mae, make_windows,
                                                           seasonal_naive_one_step, to_levels)
from implementations.architectures.rnn.lstm import LSTM
from implementations.config import load_experiment
from implementations.data.series import load_airline
from implementations.viz.curves import plot_curves

cfg = load_experiment("notebooks", "rnn", os.environ.get("MILESTONE_BUDGET", "smoke"))
torch.manual_seed(0)
cfg

# %% [markdown]
# ## 1. Our LSTM equals `torch.nn.LSTM`
#
# Both modules share parameter names, so torch's weights load straight into ours. Two layers,
# bidirectional, float64: the largest difference should be at rounding level (~1e-16).

# %%
ref = torch.nn.LSTM(cfg["input_size"], cfg["hidden_size"], num_layers=2, bidirectional=True,
                    batch_first=True).double()
ours = LSTM(cfg["input_size"], cfg["hidden_size"], num_layers=2, bidirectional=True, batch_first=True).double()
ours.load_state_dict(ref.state_dict())
x = torch.randn(cfg["batch"], cfg["seq_len"], cfg["input_size"], dtype=torch.float64, requires_grad=True)
(out_ref, (h_ref, c_ref)), (out, (h, c)) = ref(x), ours(x)
g_ref = torch.autograd.grad(out_ref.square().sum(), [x, *ref.parameters()])
g = torch.autograd.grad(out.square().sum(), [x, *ours.parameters()])
errors = {"output": (out - out_ref).abs().max().item(), "h_n": (h - h_ref).abs().max().item(),
          "c_n": (c - c_ref).abs().max().item(),
          "gradients": max((a - b).abs().max().item() for a, b in zip(g, g_ref))}
print({k: f"{v:.1e}" for k, v in errors.items()})
assert max(errors.values()) <= cfg["max_parity_error"]

# %% [markdown]
# ## 2. Forecasting airline passengers
#
# Monthly passengers 1949-1960. The model sees log-differenced, standardised values in windows
# of `window` months and predicts the 10%, 50% and 90% quantiles of the next month. The last 24
# months are held out and forecast one step ahead.

# %%
series = load_airline()
y, start = series.values, len(series) - 24
transform = SeriesTransform(log=True, lag=1).fit(y[:start])
X, t = make_windows(transform.forward(y[:start]), cfg["window"])
model = LSTMForecaster([0.1, 0.5, 0.9], cfg["forecast_hidden"])
history = fit_forecaster(model, X, t, cfg["epochs"], seed=0)
q = to_levels(transform, lstm_quantiles(model, transform, y, start, cfg["window"])[0], y, start)
naive = seasonal_naive_one_step(y, start, series.period)
scores = {"LSTM median": mae(y[start:], q[:, 1]), "seasonal naive": mae(y[start:], naive)}
print({k: round(v, 1) for k, v in scores.items()}, "(MAE, thousands of passengers)")
assert history.train_loss[-1] < history.train_loss[0]
assert scores["LSTM median"] < scores["seasonal naive"]
plot_curves({"training pinball loss": history.train_loss}, "LSTM forecaster training", "epoch",
            "mean pinball loss (10/50/90%)")

# %%
fig, ax = plt.subplots(figsize=(7, 3.5))
ax.plot(series.index, y, color="k", lw=1, label="observed")
ax.plot(series.index[start:], q[:, 1], label="LSTM median")
ax.fill_between(series.index[start:], q[:, 0], q[:, 2], alpha=0.3, label="LSTM 10-90%")
ax.plot(series.index[start:], naive, ls="--", label="seasonal naive")
ax.set(title="Airline passengers: one-step forecasts of the last 24 months", ylabel="thousands")
ax.legend(fontsize=8)
plt.close(fig)  # shown once, as the cell's value
fig
