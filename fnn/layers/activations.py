"""Activations: parameterless elementwise layers, and softmax.

Each backward is ``dx = dy * f'(x)``; sigmoid and tanh compute ``f'`` from
their output ``y``, which is cheaper.
"""

from __future__ import annotations

import numpy as np

from fnn.layers.base import Layer, layer, real_number, register
from fnn.workspace import FRESH


def _no_params(key, in_shape):
    return tuple(in_shape), {}


def elementwise(name: str, fn, dfn, from_output=False) -> Layer:
    """A parameterless layer ``y = fn(x)`` with local derivative ``dfn``.

    ``dx = dy * dfn(x)``, or ``dy * dfn(y)`` when ``from_output``.
    """

    def apply(params, x, key=None):
        return fn(x)

    def vjp(params, x, key=None, ws=FRESH, need_dx=True):
        y = fn(x)
        return y, lambda dy: ({}, np.multiply(dy, dfn(y if from_output else x), out=ws.array("dx", x.shape, dy.dtype)))

    return layer(_no_params, apply, vjp, {"type": name})


#: ``np.maximum(x, ZEROS.get(x.dtype, 0))``: a zero of x's own dtype spares NumPy promoting a Python ``0`` on every call.
ZEROS = {np.dtype(t): t(0) for t in (np.float16, np.float32, np.float64)}


def _relu_layer() -> Layer:
    """ReLU ``y = max(x, 0)``; ``dx = dy * [x > 0]`` (the subgradient at 0 is taken as 0)."""

    def apply(params, x, key=None):
        return np.maximum(x, ZEROS.get(x.dtype, 0))

    def vjp(params, x, key=None, ws=FRESH, need_dx=True):
        y = np.maximum(x, ZEROS.get(x.dtype, 0), out=ws.array("y", x.shape, x.dtype))
        return y, lambda dy: ({}, np.multiply(dy, x > 0, out=ws.array("dx", x.shape, dy.dtype)))

    return layer(_no_params, apply, vjp, {"type": "Relu"})


def _sigmoid(x):
    """``1 / (1 + exp(-x))``, written as ``0.5 * (1 + tanh(x / 2))``: no overflow."""
    y = np.tanh(x * x.dtype.type(0.5))
    y += 1
    y *= 0.5
    return y


Relu = register("Relu", _relu_layer())
#: Sigmoid ``y = 1 / (1 + exp(-x))``, ``dx = dy * y * (1 - y)``.
Sigmoid = register("Sigmoid", elementwise("Sigmoid", _sigmoid, lambda y: y * (1 - y), from_output=True))
#: Tanh ``y = tanh(x)``, ``dx = dy * (1 - y**2)``.
Tanh = register("Tanh", elementwise("Tanh", np.tanh, lambda y: 1 - y * y, from_output=True))
#: Identity ``y = x``, ``dx = dy``.
Identity = register("Identity", elementwise("Identity", lambda x: x, np.ones_like))


@register("LeakyRelu")
def LeakyRelu(alpha: float = 0.01) -> Layer:
    """``y = x`` where ``x > 0`` else ``alpha * x``; ``dx = dy * (1 or alpha)``."""
    alpha = real_number(alpha, "LeakyRelu alpha")

    def fn(x):
        return np.where(x > 0, x, x * x.dtype.type(alpha))

    def dfn(x):
        return np.where(x > 0, x.dtype.type(1), x.dtype.type(alpha))

    return elementwise("LeakyRelu", fn, dfn)._replace(spec={"type": "LeakyRelu", "alpha": alpha})


def softmax(x, axis=-1):
    """``exp(x - max) / sum(exp(x - max))`` along ``axis``: shift-invariant, no overflow."""
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    e /= e.sum(axis=axis, keepdims=True)
    return e


def log_softmax(x, axis=-1):
    """``x - logsumexp(x)`` along ``axis``."""
    z = x - x.max(axis=axis, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=axis, keepdims=True))


def _softmax_layer() -> Layer:
    """Softmax over the last axis; ``dx = y * (dy - sum(dy * y, axis=-1))``."""

    def apply(params, x, key=None):
        return softmax(x)

    def vjp(params, x, key=None, ws=FRESH, need_dx=True):
        y = softmax(x)
        return y, lambda dy: ({}, y * (dy - (dy * y).sum(axis=-1, keepdims=True)))

    return layer(_no_params, apply, vjp, {"type": "Softmax"})


Softmax = register("Softmax", _softmax_layer())
