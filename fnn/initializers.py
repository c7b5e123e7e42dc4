"""Weight initializers: ``init(key, shape, dtype=float32) -> array``.

For a dense weight of shape ``(fan_in, fan_out)``:

- Glorot/Xavier (Glorot & Bengio, 2010): ``Var = 2 / (fan_in + fan_out)``; for sigmoid/tanh.
- He/Kaiming (He et al., 2015): ``Var = 2 / fan_in``; for ReLU.
- LeCun (LeCun et al., 1998): ``Var = 1 / fan_in``; for SELU/tanh.

A uniform ``U(-a, a)`` has variance ``a**2 / 3``, so ``a = sqrt(3 * Var)``.

With ``key=None`` every initializer returns a read-only zero-stride array of
the right shape and dtype that takes no memory: ``model.init(None, in_shape)``
gives the parameter shapes alone (used to check model files before trusting them).
"""

from __future__ import annotations

import math

import numpy as np

from fnn import random


def _fans(shape):
    if len(shape) < 1:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = math.prod(shape[:-2]) if len(shape) > 2 else 1
    return shape[-2] * receptive, shape[-1] * receptive


def shape_only(shape, dtype=np.float32):
    """A zero-stride, read-only placeholder of ``shape`` and ``dtype`` (no memory)."""
    return np.broadcast_to(np.zeros((), dtype), shape)


def is_shape_only(x) -> bool:
    """True for a :func:`shape_only` placeholder (read-only, every stride 0): ``init(None, ...)`` output, never trainable."""
    return isinstance(x, np.ndarray) and x.ndim > 0 and x.size > 0 and not x.flags.writeable and not any(x.strides)


def _shaped(init):
    """Wrap ``init`` so that ``key=None`` returns a :func:`shape_only` placeholder."""

    def wrapped(key, shape, dtype=np.float32):
        return shape_only(shape, dtype) if key is None else init(key, shape, dtype)

    wrapped.__doc__ = init.__doc__
    wrapped.__name__ = init.__name__
    return wrapped


@_shaped
def zeros(key, shape, dtype=np.float32):
    """All zeros (biases; a deliberately broken weight init for teaching)."""
    return np.zeros(shape, dtype)


@_shaped
def ones(key, shape, dtype=np.float32):
    """All ones."""
    return np.ones(shape, dtype)


def variance_scaling(scale, mode, distribution):
    """General form: ``Var = scale / n`` with ``n`` from ``mode`` (fan_in, fan_out, fan_avg)."""

    @_shaped
    def init(key, shape, dtype=np.float32):
        fan_in, fan_out = _fans(shape)
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]
        var = scale / max(1.0, n)
        if distribution == "uniform":
            a = math.sqrt(3.0 * var)
            return random.uniform(key, shape, -a, a, dtype)
        if distribution == "truncated_normal":
            # std of a standard normal truncated to [-2, 2] is 0.87962566.
            return (random.truncated_normal(key, shape, np.float64) * (math.sqrt(var) / 0.87962566)).astype(dtype)
        return (random.normal(key, shape, np.float64) * math.sqrt(var)).astype(dtype)

    return init


def normal(stddev=0.01):
    """``N(0, stddev**2)``: the classic "small random numbers" init."""

    @_shaped
    def init(key, shape, dtype=np.float32):
        return (random.normal(key, shape, np.float64) * stddev).astype(dtype)

    return init


glorot_uniform = variance_scaling(1.0, "fan_avg", "uniform")
glorot_normal = variance_scaling(1.0, "fan_avg", "truncated_normal")
he_uniform = variance_scaling(2.0, "fan_in", "uniform")
he_normal = variance_scaling(2.0, "fan_in", "truncated_normal")
lecun_uniform = variance_scaling(1.0, "fan_in", "uniform")
lecun_normal = variance_scaling(1.0, "fan_in", "truncated_normal")

INITIALIZERS = {
    "zeros": zeros,
    "ones": ones,
    "normal": normal(0.01),
    "glorot_uniform": glorot_uniform,
    "glorot_normal": glorot_normal,
    "xavier_uniform": glorot_uniform,
    "xavier_normal": glorot_normal,
    "he_uniform": he_uniform,
    "he_normal": he_normal,
    "kaiming_uniform": he_uniform,
    "kaiming_normal": he_normal,
    "lecun_uniform": lecun_uniform,
    "lecun_normal": lecun_normal,
}


def get(name):
    """Look up an initializer by name (see ``INITIALIZERS``)."""
    if not isinstance(name, str):
        raise TypeError(f"an initializer is given by name ({', '.join(INITIALIZERS)}), got {name!r:.60}")
    try:
        return INITIALIZERS[name]
    except KeyError:
        raise ValueError(f"unknown initializer {name!r}; choose from {', '.join(INITIALIZERS)}") from None
