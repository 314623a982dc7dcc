"""Weight initialisation schemes, with torch.nn.init's names, gains and fan conventions.

Weights use torch's layout (out_features, in_features): fan_in = shape[1], fan_out = shape[0].
Each function returns a new array drawn from `rng` (a numpy Generator) so runs are seeded.
"""
from __future__ import annotations

import math

import numpy as np

SCHEMES = ("zeros", "normal", "xavier_uniform", "xavier_normal", "kaiming_uniform",
           "kaiming_normal", "torch_default")


LINEAR_LIKE = ("linear", "identity", "sigmoid", "conv1d", "conv2d", "conv3d", "conv_transpose1d",
               "conv_transpose2d", "conv_transpose3d")


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """torch.nn.init.calculate_gain: the std scale that keeps activations stable."""
    if nonlinearity in LINEAR_LIKE:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4  # torch's choice for self-normalising nets
    raise ValueError(f"unknown nonlinearity {nonlinearity!r}; expected one of {', '.join(LINEAR_LIKE)}, "
                     "tanh, relu, leaky_relu or selu")


def _fans(shape: tuple[int, ...]) -> tuple[int, int]:
    if len(shape) < 2:
        raise ValueError(f"fan in/out need a weight of at least 2 dims, got shape {shape}")
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return shape[1] * receptive, shape[0] * receptive


def zeros(shape: tuple[int, ...], rng: np.random.Generator | None = None, dtype=np.float64) -> np.ndarray:
    return np.zeros(shape, dtype=dtype)


def normal(shape: tuple[int, ...], rng: np.random.Generator, mean: float = 0.0, std: float = 1.0,
           dtype=np.float64) -> np.ndarray:
    return rng.normal(mean, std, size=shape).astype(dtype)


def xavier_uniform(shape: tuple[int, ...], rng: np.random.Generator, gain: float = 1.0,
                   dtype=np.float64) -> np.ndarray:
    fan_in, fan_out = _fans(shape)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-bound, bound, size=shape).astype(dtype)


def xavier_normal(shape: tuple[int, ...], rng: np.random.Generator, gain: float = 1.0,
                  dtype=np.float64) -> np.ndarray:
    fan_in, fan_out = _fans(shape)
    return rng.normal(0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), size=shape).astype(dtype)


def _fan(shape: tuple[int, ...], mode: str) -> int:
    """fan_in (preserves the forward pass's variance) or fan_out (the backward pass's)."""
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = _fans(shape)
    return fan_in if mode == "fan_in" else fan_out


def kaiming_uniform(shape: tuple[int, ...], rng: np.random.Generator, a: float = 0.0, mode: str = "fan_in",
                    nonlinearity: str = "leaky_relu", dtype=np.float64) -> np.ndarray:
    bound = math.sqrt(3.0) * calculate_gain(nonlinearity, a) / math.sqrt(_fan(shape, mode))
    return rng.uniform(-bound, bound, size=shape).astype(dtype)


def kaiming_normal(shape: tuple[int, ...], rng: np.random.Generator, a: float = 0.0, mode: str = "fan_in",
                   nonlinearity: str = "leaky_relu", dtype=np.float64) -> np.ndarray:
    std = calculate_gain(nonlinearity, a) / math.sqrt(_fan(shape, mode))
    return rng.normal(0.0, std, size=shape).astype(dtype)


def initialize(scheme: str, shape: tuple[int, ...], rng: np.random.Generator,
               nonlinearity: str = "relu", dtype=np.float64) -> np.ndarray:
    """A weight of `shape` drawn by name. `torch_default` is nn.Linear's (kaiming_uniform, a=sqrt(5)).

    `nonlinearity` picks the gain for the Xavier/Kaiming schemes (Xavier uses it too, as
    torch users do with `gain=calculate_gain(...)`).
    """
    if scheme == "zeros":
        return zeros(shape, dtype=dtype)
    if scheme == "normal":
        return normal(shape, rng, dtype=dtype)
    if scheme == "torch_default":
        return kaiming_uniform(shape, rng, a=math.sqrt(5), dtype=dtype)
    gain_name = "linear" if nonlinearity in ("swish", "gelu") else nonlinearity
    if scheme == "xavier_uniform":
        return xavier_uniform(shape, rng, gain=calculate_gain(gain_name), dtype=dtype)
    if scheme == "xavier_normal":
        return xavier_normal(shape, rng, gain=calculate_gain(gain_name), dtype=dtype)
    if scheme == "kaiming_uniform":
        return kaiming_uniform(shape, rng, nonlinearity=gain_name, dtype=dtype)
    if scheme == "kaiming_normal":
        return kaiming_normal(shape, rng, nonlinearity=gain_name, dtype=dtype)
    raise ValueError(f"unknown init scheme {scheme!r}; expected one of {', '.join(SCHEMES)}")
