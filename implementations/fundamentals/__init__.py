"""NumPy-only neural-network fundamentals (CS231n-style layers, torch-style names).

Every layer follows one protocol (see `layers.Layer`): `forward(x, training=True)` caches what
`backward(dout)` needs; `backward` returns the input gradient and fills `grads`, parallel to
`params` (dicts of name -> ndarray). Nothing here imports anything but NumPy.

layers (Dense, Dropout, BatchNorm1d), activations, losses (MSE, cross-entropy, BCE, focal),
quantile_loss (pinball loss for forecast intervals), init, mlp, optimizers (SGD, Adam, AdamW),
clipping, regularization (L1, L2), schedules (torch's LR schedulers), gradcheck, training.
"""
