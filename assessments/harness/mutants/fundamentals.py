"""Wrong implementations of the NumPy fundamentals' model side (losses, activations, layers in
implementations/fundamentals), each the original with one realistic bug. Each runs with its target
module's globals (np, math, sigmoid, _reduce, ... are the target's own). The training side
(optimizers, penalties, clipping, init, schedules) is in optimization.py."""
from __future__ import annotations

# ruff: noqa: F821  -- names resolve in the target module once planted

from assessments.harness.mutants import Mutant

F = "implementations.fundamentals"
T = "assessments/fundamentals"
LOSS_PARITY = f"{T}/test_torch_parity_activations_losses.py::test_loss_value_and_gradient_match_torch"
ACT_PARITY = f"{T}/test_torch_parity_activations_losses.py::test_activation_value_and_gradient_match_torch"
BN_PARITY = f"{T}/test_torch_parity_batchnorm.py::test_batchnorm_matches_torch_over_steps"
MLP_PARITY = f"{T}/test_mlp_torch_parity.py::test_loss_and_every_gradient_match_torch"


# ---------------------------------------------------------------- losses
def log_softmax_without_max_subtraction(logits):
    return logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))


def log_softmax_as_log_of_softmax(logits):
    shifted = logits - logits.max(axis=1, keepdims=True)
    probs = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore"):
        return np.log(probs)  # probabilities that underflow to 0 give -inf


def bce_forward_naive(self, logits, target):
    target = np.asarray(target)
    _check_binary(logits, target)
    self._logits, self._target = logits, target.astype(logits.dtype)
    p = sigmoid(logits)
    with np.errstate(divide="ignore", invalid="ignore"):
        values = -(self._target * np.log(p) + (1.0 - self._target) * np.log(1.0 - p))
    return _reduce(values, self.reduction)


def mse_backward_without_the_two(self):
    grad = self._diff
    return grad / self._diff.size if self.reduction == "mean" else grad


def cross_entropy_backward_without_mean(self):
    eps = self.label_smoothing
    grad = self._probs - eps / self._probs.shape[1]
    grad[np.arange(len(self._target)), self._target] -= 1.0 - eps
    return grad  # forgot to divide by N for reduction="mean"


def label_smoothing_over_other_classes(self, logits, target):
    target = np.asarray(target)
    _check_classification(logits, target)
    logp = log_softmax(logits)
    self._probs = np.exp(logp)
    self._target = target
    rows = np.arange(len(target))
    per_sample = -logp[rows, target]
    eps = self.label_smoothing
    if eps:  # eps spread over the C - 1 wrong classes only (torch spreads it over all C)
        others = (logp.sum(axis=1) - logp[rows, target]) / (logp.shape[1] - 1)
        per_sample = (1.0 - eps) * per_sample - eps * others
    return _reduce(per_sample, self.reduction)


def focal_forward_gamma_on_pt(self, logits, target):
    target = np.asarray(target)
    binary = logits.ndim == 1
    if binary:
        _check_binary(logits, target)
        y = target.astype(logits.dtype)
        logpt = log_sigmoid(logits) - (1.0 - y) * logits
        self._dlogpt_dlogits = y - sigmoid(logits)
    else:
        _check_classification(logits, target)
        logp = log_softmax(logits)
        rows = np.arange(len(target))
        logpt = logp[rows, target]
        dlogpt = -np.exp(logp)
        dlogpt[rows, target] += 1.0
        self._dlogpt_dlogits = dlogpt
    alpha_t = self._alpha_t(target, binary, 1 if binary else logits.shape[1])
    pt = np.exp(logpt)
    g = self.gamma
    modulator = pt**g  # should be (1 - p_t)^gamma: this up-weights the easy examples
    self._dloss_dlogpt = -alpha_t * (modulator + g * modulator * logpt)
    self._n = len(target)
    return _reduce(-alpha_t * modulator * logpt, self.reduction)


# ---------------------------------------------------------------- activations and layers
def relu_backward_passes_everything(self, dout):
    return dout


def sigmoid_backward_with_tanh_derivative(self, dout):
    return dout * (1.0 - self._out**2)


def swish_backward_without_beta(self, dout):
    s = self._s
    return dout * s * (1.0 + self._x * (1.0 - s))


def gelu_forward_tanh_for_exact(self, x, training=True):
    self._x = x
    self._t = np.tanh(_SQRT_2_OVER_PI * (x + _GELU_KAPPA * x**3))
    self._cdf = 0.5 * (1.0 + self._t)
    return 0.5 * x * (1.0 + self._t)


def dense_backward_bias_mean(self, dout, input_grad=True):
    if self._x is None:
        raise RuntimeError("Dense.backward called before forward")
    self.grads["weight"] = dout.T @ self._x
    if "bias" in self.params:
        self.grads["bias"] = dout.mean(axis=0)
    return dout @ self.params["weight"] if input_grad else None


def dropout_forward_not_inverted(self, x, training=True):
    if not training or self.p == 0.0:
        self._mask = None
        return x
    self._mask = (self.rng.random(x.shape) >= self.p).astype(x.dtype)
    return x * self._mask


def dropout_forward_ignores_eval(self, x, training=True):
    if self.p == 0.0:
        self._mask = None
        return x
    if self.p == 1.0:
        self._mask = np.zeros_like(x)
    else:
        keep = self.rng.random(x.shape) >= self.p
        self._mask = keep.astype(x.dtype) / x.dtype.type(1.0 - self.p)
    return x * self._mask


def batchnorm_forward_batch_stats_in_eval(self, x, training=True):
    axes, bshape, spec = self._shape(x)
    use_batch = True  # eval mode should use the running statistics
    n = x.size // self.num_features
    mean = x.mean(axis=axes)
    x_hat = x - mean.reshape(bshape)
    var = np.einsum(spec, x_hat, x_hat) / n
    if training and self.track_running_stats:
        self._update_running(mean, var * (n / (n - 1)))
    inv_std = (1.0 / np.sqrt(var + self.eps)).astype(x_hat.dtype, copy=False)
    x_hat *= inv_std.reshape(bshape)
    self._cache = (x_hat, inv_std, axes, bshape, spec, use_batch)
    if not self.affine:
        return x_hat
    return x_hat * self.params["weight"].reshape(bshape) + self.params["bias"].reshape(bshape)


def batchnorm_forward_tracks_biased_var(self, x, training=True):
    axes, bshape, spec = self._shape(x)
    use_batch = training or not self.track_running_stats
    if use_batch:
        n = x.size // self.num_features
        if n <= 1:
            raise ValueError(f"expected more than 1 value per channel when training, got input {x.shape}")
        mean = x.mean(axis=axes)
        x_hat = x - mean.reshape(bshape)
        var = np.einsum(spec, x_hat, x_hat) / n
        if training and self.track_running_stats:
            self._update_running(mean, var)  # torch tracks the unbiased n/(n-1) variance
    else:
        mean, var = self.running_mean, self.running_var
        x_hat = x - mean.reshape(bshape)
    inv_std = (1.0 / np.sqrt(var + self.eps)).astype(x_hat.dtype, copy=False)
    x_hat *= inv_std.reshape(bshape)
    self._cache = (x_hat, inv_std, axes, bshape, spec, use_batch)
    if not self.affine:
        return x_hat
    return x_hat * self.params["weight"].reshape(bshape) + self.params["bias"].reshape(bshape)


def batchnorm_backward_treats_stats_as_constants(self, dout):
    x_hat, inv_std, axes, bshape, spec, use_batch = self._cache
    sum_dout = dout.sum(axis=axes)
    sum_dout_x_hat = np.einsum(spec, dout, x_hat)
    if self.affine:
        self.grads["weight"], self.grads["bias"] = sum_dout_x_hat, sum_dout
        scale = self.params["weight"] * inv_std
    else:
        scale = inv_std
    return dout * scale.reshape(bshape)  # ignores that mean and var depend on x


MUTANTS = [
    Mutant("softmax_without_max_subtraction", "fundamentals", "log-softmax exponentiates raw logits (overflow)",
           f"{F}.losses:log_softmax", log_softmax_without_max_subtraction, (LOSS_PARITY,)),
    Mutant("cross_entropy_without_log_sum_exp", "fundamentals",
           "cross-entropy as log(softmax): underflow gives -inf for confident logits",
           f"{F}.losses:log_softmax", log_softmax_as_log_of_softmax, (LOSS_PARITY,)),
    Mutant("bce_on_probabilities", "fundamentals", "BCE-with-logits computed as log(sigmoid(x)): inf at large |x|",
           f"{F}.losses:BCEWithLogitsLoss.forward", bce_forward_naive, (LOSS_PARITY,)),
    Mutant("mse_gradient_without_two", "fundamentals", "MSE gradient drops the factor 2",
           f"{F}.losses:MSELoss.backward", mse_backward_without_the_two,
           (f"{T}/test_losses.py::test_loss_gradient_matches_central_differences", LOSS_PARITY)),
    Mutant("cross_entropy_gradient_not_averaged", "fundamentals", "mean cross-entropy's gradient not divided by N",
           f"{F}.losses:CrossEntropyLoss.backward", cross_entropy_backward_without_mean, (LOSS_PARITY,)),
    Mutant("label_smoothing_over_other_classes", "fundamentals",
           "label smoothing spreads eps over the C-1 wrong classes (torch: over all C)",
           f"{F}.losses:CrossEntropyLoss.forward", label_smoothing_over_other_classes, (LOSS_PARITY,)),
    Mutant("focal_gamma_on_wrong_term", "fundamentals", "focal loss modulates by p_t^gamma instead of (1-p_t)^gamma",
           f"{F}.losses:FocalLoss.forward", focal_forward_gamma_on_pt, (LOSS_PARITY,)),
    Mutant("relu_backward_passes_negatives", "fundamentals", "ReLU backward passes the gradient of negative inputs",
           f"{F}.activations:ReLU.backward", relu_backward_passes_everything, (ACT_PARITY,)),
    Mutant("sigmoid_backward_tanh_derivative", "fundamentals", "sigmoid backward uses 1 - y^2 (tanh's derivative)",
           f"{F}.activations:Sigmoid.backward", sigmoid_backward_with_tanh_derivative, (ACT_PARITY,)),
    Mutant("swish_backward_without_beta", "fundamentals", "Swish derivative ignores beta (right only for SiLU)",
           f"{F}.activations:Swish.backward", swish_backward_without_beta, (ACT_PARITY,)),
    Mutant("gelu_tanh_for_exact", "fundamentals", "exact GELU computed with the tanh approximation",
           f"{F}.activations:GELU.forward", gelu_forward_tanh_for_exact, (ACT_PARITY,)),
    Mutant("dense_bias_gradient_mean", "fundamentals", "Dense bias gradient averages over the batch instead of summing",
           f"{F}.layers:Dense.backward", dense_backward_bias_mean, (MLP_PARITY,)),
    Mutant("dropout_without_inverted_scaling", "fundamentals", "dropout keeps survivors unscaled (no 1/(1-p))",
           f"{F}.layers:Dropout.forward", dropout_forward_not_inverted,
           (f"{T}/test_regularization.py::test_dropout_preserves_expected_activation",)),
    Mutant("dropout_active_in_eval", "fundamentals", "dropout still drops units in eval mode",
           f"{F}.layers:Dropout.forward", dropout_forward_ignores_eval,
           (f"{T}/test_regularization.py::test_dropout_eval_mode_and_backward",)),
    Mutant("batchnorm_batch_stats_in_eval", "fundamentals", "BatchNorm normalises with batch statistics in eval mode",
           f"{F}.layers:BatchNorm1d.forward", batchnorm_forward_batch_stats_in_eval, (BN_PARITY,)),
    Mutant("batchnorm_running_var_biased", "fundamentals", "BatchNorm tracks the biased (1/n) variance",
           f"{F}.layers:BatchNorm1d.forward", batchnorm_forward_tracks_biased_var, (BN_PARITY,)),
    Mutant("batchnorm_backward_stats_constant", "fundamentals",
           "BatchNorm backward ignores the batch statistics' dependence on x",
           f"{F}.layers:BatchNorm1d.backward", batchnorm_backward_treats_stats_as_constants,
           (f"{T}/test_batchnorm.py::test_batchnorm_gradients_match_central_differences",)),
]
