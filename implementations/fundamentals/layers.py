"""Layers with one protocol (CS231n's, as objects): forward caches, backward fills `grads`.

    out = layer.forward(x, training=True)   # caches what backward needs
    dx = layer.backward(dout)               # fills layer.grads, parallel to layer.params

Parameters use torch's names and layouts (`weight` is (out_features, in_features)), so a
torch module's state can be copied in and compared.
"""
from __future__ import annotations

import numpy as np

from implementations.fundamentals.init import initialize


class Layer:
    """Base: no parameters, identity. Subclasses override forward/backward."""

    def __init__(self) -> None:
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}

    def forward(self, x: np.ndarray, training: bool = True) -> np.ndarray:
        return x

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return dout

    def __call__(self, x: np.ndarray, training: bool = True) -> np.ndarray:
        return self.forward(x, training)

    def __repr__(self) -> str:
        shapes = ", ".join(f"{k}={v.shape}" for k, v in self.params.items())
        return f"{type(self).__name__}({shapes})"


class Dense(Layer):
    """Fully connected layer, torch.nn.Linear's twin: y = x @ weight.T + bias.

    Inputs:  x (N, in_features)
    Returns: y (N, out_features)
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 init: str = "torch_default", nonlinearity: str = "relu",
                 rng: np.random.Generator | None = None, dtype=np.float64) -> None:
        super().__init__()
        if in_features < 1 or out_features < 1:
            raise ValueError(f"Dense needs positive sizes, got in={in_features}, out={out_features}")
        rng = rng if rng is not None else np.random.default_rng()
        self.in_features, self.out_features = in_features, out_features
        self.params["weight"] = initialize(init, (out_features, in_features), rng, nonlinearity, dtype)
        if bias:
            # Zero bias except for torch's default scheme, which draws it like nn.Linear.
            bound = 1.0 / np.sqrt(in_features) if init == "torch_default" else 0.0
            self.params["bias"] = rng.uniform(-bound, bound, size=out_features).astype(dtype)
        self._x: np.ndarray | None = None

    def forward(self, x: np.ndarray, training: bool = True) -> np.ndarray:
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise ValueError(f"Dense expected input of shape (N, {self.in_features}), got {x.shape}")
        self._x = x
        out = x @ self.params["weight"].T
        if "bias" in self.params:
            out += self.params["bias"]
        return out

    def backward(self, dout: np.ndarray, input_grad: bool = True) -> np.ndarray | None:
        """Fills grads; returns dx (N, in_features), or None when `input_grad=False`.

        The first layer of a network needs no dx (the data is not a parameter): skipping it
        saves a third of that layer's backward, as torch does for inputs without requires_grad.
        """
        if self._x is None:
            raise RuntimeError("Dense.backward called before forward")
        self.grads["weight"] = dout.T @ self._x
        if "bias" in self.params:
            self.grads["bias"] = dout.sum(axis=0)
        return dout @ self.params["weight"] if input_grad else None


class Dropout(Layer):
    """Inverted dropout, torch.nn.Dropout's twin: in training, zero each entry with probability
    p and scale the survivors by 1 / (1 - p), so the expected activation is unchanged; in eval
    mode, the identity.

    Inputs:  x (N, ...)
    Returns: same shape as x
    """

    def __init__(self, p: float = 0.5, rng: np.random.Generator | None = None) -> None:
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability has to be between 0 and 1, got {p}")
        self.p = p
        self.rng = rng if rng is not None else np.random.default_rng()
        self._mask: np.ndarray | None = None

    def forward(self, x: np.ndarray, training: bool = True) -> np.ndarray:
        if not training or self.p == 0.0:
            self._mask = None
            return x
        if self.p == 1.0:  # torch returns zeros; 1 / (1 - p) would divide by zero
            self._mask = np.zeros_like(x)
        else:
            keep = self.rng.random(x.shape) >= self.p
            self._mask = keep.astype(x.dtype) / x.dtype.type(1.0 - self.p)
        return x * self._mask

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return dout if self._mask is None else dout * self._mask

    def __repr__(self) -> str:
        return f"Dropout(p={self.p})"


class BatchNorm1d(Layer):
    """Batch normalisation (Ioffe & Szegedy 2015), torch.nn.BatchNorm1d's twin.

    Training: normalise with the batch mean and biased variance, then y = weight * x_hat + bias;
    update running_mean and the *unbiased* running_var as
    running = (1 - momentum) * running + momentum * batch_stat (momentum=None: cumulative average).
    Eval: normalise with the running statistics (or the batch's, if track_running_stats=False).

    Inputs:  x (N, C) or (N, C, L); statistics are per channel C, over N (and L)
    Returns: y, same shape as x
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True, dtype=np.float64) -> None:
        super().__init__()
        if num_features < 1:
            raise ValueError(f"BatchNorm1d needs num_features >= 1, got {num_features}")
        if momentum is not None and not 0.0 <= momentum <= 1.0:
            raise ValueError(f"momentum must be in [0, 1] or None, got {momentum}")
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        if affine:
            self.params["weight"] = np.ones(num_features, dtype=dtype)
            self.params["bias"] = np.zeros(num_features, dtype=dtype)
        if track_running_stats:
            self.running_mean = np.zeros(num_features, dtype=dtype)
            self.running_var = np.ones(num_features, dtype=dtype)
            self.num_batches_tracked = 0

    def _shape(self, x: np.ndarray) -> tuple[tuple[int, ...], tuple[int, ...], str]:
        """(axes to reduce, shape that broadcasts a (C,) vector against x, einsum spec of a
        per-channel sum of products)."""
        if x.ndim not in (2, 3) or x.shape[1] != self.num_features:
            raise ValueError(f"BatchNorm1d expected input of shape (N, {self.num_features}) or "
                             f"(N, {self.num_features}, L), got {x.shape}")
        return ((0,), (1, -1), "nc,nc->c") if x.ndim == 2 else ((0, 2), (1, -1, 1), "ncl,ncl->c")

    def forward(self, x: np.ndarray, training: bool = True) -> np.ndarray:
        axes, bshape, spec = self._shape(x)
        use_batch = training or not self.track_running_stats
        if use_batch:
            n = x.size // self.num_features
            if n <= 1:
                raise ValueError(f"expected more than 1 value per channel when training, got input {x.shape}")
            mean = x.mean(axis=axes)
            x_hat = x - mean.reshape(bshape)
            var = np.einsum(spec, x_hat, x_hat) / n  # biased: what normalises this batch
            if training and self.track_running_stats:
                self._update_running(mean, var * (n / (n - 1)))
        else:
            mean, var = self.running_mean, self.running_var
            x_hat = x - mean.reshape(bshape)
        inv_std = (1.0 / np.sqrt(var + self.eps)).astype(x_hat.dtype, copy=False)
        x_hat *= inv_std.reshape(bshape)  # in place: x_hat was the centred copy
        self._cache = (x_hat, inv_std, axes, bshape, spec, use_batch)
        if not self.affine:
            return x_hat
        out = x_hat * self.params["weight"].reshape(bshape)
        out += self.params["bias"].reshape(bshape)
        return out

    def _update_running(self, mean: np.ndarray, unbiased_var: np.ndarray) -> None:
        self.num_batches_tracked += 1
        m = 1.0 / self.num_batches_tracked if self.momentum is None else self.momentum
        self.running_mean *= 1.0 - m
        self.running_mean += m * mean
        self.running_var *= 1.0 - m
        self.running_var += m * unbiased_var

    def backward(self, dout: np.ndarray) -> np.ndarray:
        x_hat, inv_std, axes, bshape, spec, use_batch = self._cache
        sum_dout = dout.sum(axis=axes)
        sum_dout_x_hat = np.einsum(spec, dout, x_hat)
        if self.affine:
            self.grads["weight"], self.grads["bias"] = sum_dout_x_hat, sum_dout
            scale = self.params["weight"] * inv_std
        else:
            scale = inv_std
        if not use_batch:  # fixed statistics: a per-channel affine map
            return dout * scale.reshape(bshape)
        # The batch statistics depend on x too, which projects out the mean and the x_hat direction:
        # dx = weight * inv_std * (dout - mean(dout) - x_hat * mean(dout * x_hat)).
        n = dout.size // self.num_features
        dx = x_hat * (sum_dout_x_hat / n).reshape(bshape)
        np.subtract(dout, dx, out=dx)
        dx -= (sum_dout / n).reshape(bshape)
        dx *= scale.reshape(bshape)
        return dx

    def __repr__(self) -> str:
        return f"BatchNorm1d({self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine})"
