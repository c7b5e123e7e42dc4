"""Layers as pure functions with hand-written gradients.

A layer is a :class:`Layer` tuple of pure functions:

- ``init(key, in_shape) -> (out_shape, params)``; the batch dimension stays ``-1``.
- ``apply(params, x, key=None) -> y``. ``key`` switches on randomness (dropout);
  ``key=None`` is inference.
- ``grad(params, x, dy, key=None) -> (dparams, dx)``: the vector-Jacobian product
  of ``apply`` at ``x`` with the upstream gradient ``dy = dL/dy``.
- ``vjp(params, x, key=None, need_dx=True) -> (y, backward)`` with
  ``backward(dy) -> (dparams, dx)``: one forward pass whose intermediates the
  backward pass reuses. ``need_dx=False`` lets the first layer skip ``dx``.
- ``spec``: a JSON-able description; :func:`build` turns it back into the layer.
- ``children``: the layers a combinator holds (``serial``'s, in order); ``()`` otherwise.

>>> model = serial(Dense(8), Relu, Dense(2))
>>> out_shape, params = model.init(random.key(0), (-1, 4))
>>> out_shape
(-1, 2)
>>> model.apply(params, np.ones((3, 4), np.float32)).shape
(3, 2)
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple

import numpy as np

from fnn import initializers, random


class Layer(NamedTuple):
    init: Callable
    apply: Callable
    grad: Callable
    vjp: Callable
    spec: dict
    uses_key: bool = False
    children: tuple = ()


def layer(init, apply, grad, spec, vjp=None, uses_key=False, children=()) -> Layer:
    """Assemble a :class:`Layer`; without ``vjp``, backward calls ``grad`` on the saved input."""
    if vjp is None:

        def vjp(params, x, key=None, need_dx=True):
            return apply(params, x, key), lambda dy: grad(params, x, dy, key)

    return Layer(init, apply, grad, vjp, spec, uses_key, tuple(children))


# ---------------------------------------------------------------- Dense


def Dense(units: int, w_init="glorot_uniform", b_init="zeros") -> Layer:
    """Fully connected layer ``y = x @ w + b``.

    Shapes: ``x: (batch, in)``, ``w: (in, units)``, ``b: (units,)``, ``y: (batch, units)``.
    ``w_init``/``b_init`` name an initializer in :mod:`fnn.initializers`.
    """
    units = int(units)
    if units < 1:
        raise ValueError(f"Dense units must be >= 1, got {units}")
    w_fn, b_fn = initializers.get(w_init), initializers.get(b_init)

    def init(key, in_shape):
        kw, kb = random.split(key)
        return tuple(in_shape[:-1]) + (units,), {"w": w_fn(kw, (in_shape[-1], units)), "b": b_fn(kb, (units,))}

    def apply(params, x, key=None):
        return dense_forward(params, x)

    def grad(params, x, dy, key=None):
        """``dw = x.T @ dy``, ``db = sum over batch of dy``, ``dx = dy @ w.T``."""
        return dense_backward(params, x, dy, need_dx=True)

    def vjp(params, x, key=None, need_dx=True):
        return apply(params, x), lambda dy: dense_backward(params, x, dy, need_dx)

    return layer(init, apply, grad, {"type": "Dense", "units": units, "w_init": w_init, "b_init": b_init}, vjp)


def dense_forward(params, x, out=None):
    """``y = x @ w + b``, written into ``out`` (a ``(batch, units)`` array) when given."""
    y = np.matmul(x, params["w"], out=out)
    y += params["b"]
    return y


def dense_backward(params, x, dy, need_dx, out=None, dx=None, ones=None):
    """``({"w": x.T @ dy, "b": 1.T @ dy}, dy @ w.T)``; into ``out`` (a ``{"w", "b"}`` tree) and ``dx`` when given.

    The bias gradient, the batch sum of ``dy``, is a matrix-vector product: BLAS does it faster than a reduction.
    ``ones`` is that vector of ``len(dy)`` ones, if the caller keeps one.
    """
    out = out or {"w": None, "b": None}
    ones = np.ones(len(dy), dy.dtype) if ones is None else ones
    dparams = {"w": np.matmul(x.T, dy, out=out["w"]), "b": np.matmul(ones, dy, out=out["b"])}
    return dparams, (np.matmul(dy, params["w"].T, out=dx) if need_dx else None)


# ---------------------------------------------------------------- elementwise


def elementwise(name: str, fn, dfn, from_output=False) -> Layer:
    """A parameterless layer ``y = fn(x)`` with local derivative ``dfn``.

    ``grad`` is ``dx = dy * dfn(x)``, or ``dy * dfn(y)`` when ``from_output``
    (sigmoid and tanh have derivatives cheapest in terms of their output).
    """

    def init(key, in_shape):
        return tuple(in_shape), {}

    def apply(params, x, key=None):
        return fn(x)

    def grad(params, x, dy, key=None):
        return {}, dy * dfn(fn(x) if from_output else x)

    def vjp(params, x, key=None, need_dx=True):
        y = fn(x)
        return y, lambda dy: ({}, dy * dfn(y if from_output else x))

    return layer(init, apply, grad, {"type": name}, vjp)


def _relu(x):
    return np.maximum(x, 0, dtype=x.dtype)


def _drelu(x):
    """1 where x > 0, else 0 (the subgradient at 0 is taken as 0)."""
    return (x > 0).astype(x.dtype)


def _sigmoid(x):
    """``1 / (1 + exp(-x))``, written as ``0.5 * (1 + tanh(x / 2))``: no overflow."""
    y = np.tanh(x * x.dtype.type(0.5))
    y += 1
    y *= 0.5
    return y


def _dsigmoid(y):
    return y * (1 - y)


def _dtanh(y):
    return 1 - y * y


#: ReLU ``y = max(x, 0)``, ``dx = dy * [x > 0]``.
Relu = elementwise("Relu", _relu, _drelu)
#: Sigmoid ``y = 1 / (1 + exp(-x))``, ``dx = dy * y * (1 - y)``.
Sigmoid = elementwise("Sigmoid", _sigmoid, _dsigmoid, from_output=True)
#: Tanh ``y = tanh(x)``, ``dx = dy * (1 - y**2)``.
Tanh = elementwise("Tanh", np.tanh, _dtanh, from_output=True)
Identity = elementwise("Identity", lambda x: x, np.ones_like)


def LeakyRelu(alpha: float = 0.01) -> Layer:
    """``y = x`` where ``x > 0`` else ``alpha * x``; ``dx = dy * (1 or alpha)``."""
    alpha = float(alpha)
    if not math.isfinite(alpha):
        raise ValueError(f"LeakyRelu alpha must be a finite number, got {alpha}")

    def fn(x):
        return np.where(x > 0, x, x * x.dtype.type(alpha))

    def dfn(x):
        return np.where(x > 0, x.dtype.type(1), x.dtype.type(alpha))

    return elementwise("LeakyRelu", fn, dfn)._replace(spec={"type": "LeakyRelu", "alpha": alpha})


# ---------------------------------------------------------------- softmax


def softmax(x, axis=-1):
    """``exp(x - max) / sum(exp(x - max))`` along ``axis``: shift-invariant, no overflow."""
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    e /= e.sum(axis=axis, keepdims=True)
    return e


def log_softmax(x, axis=-1):
    """``x - logsumexp(x)`` along ``axis``."""
    z = x - x.max(axis=axis, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=axis, keepdims=True))


def _softmax_layer():
    def init(key, in_shape):
        return tuple(in_shape), {}

    def apply(params, x, key=None):
        return softmax(x)

    def grad(params, x, dy, key=None):
        """``dx = y * (dy - sum(dy * y, axis=-1))`` with ``y = softmax(x)``."""
        return _softmax_backward(softmax(x), dy)

    def vjp(params, x, key=None, need_dx=True):
        y = softmax(x)
        return y, lambda dy: _softmax_backward(y, dy)

    return layer(init, apply, grad, {"type": "Softmax"}, vjp)


def _softmax_backward(y, dy):
    return {}, y * (dy - (dy * y).sum(axis=-1, keepdims=True))


Softmax = _softmax_layer()


# ---------------------------------------------------------------- shape and regularization


def _flatten_layer():
    def init(key, in_shape):
        return (in_shape[0], math.prod(in_shape[1:])), {}

    def apply(params, x, key=None):
        """``(batch, d1, d2, ...) -> (batch, d1 * d2 * ...)``."""
        return x.reshape(len(x), -1)

    def grad(params, x, dy, key=None):
        return {}, dy.reshape(x.shape)

    return layer(init, apply, grad, {"type": "Flatten"})


Flatten = _flatten_layer()


def Dropout(rate: float) -> Layer:
    """Inverted dropout: with a key, ``y = x * mask / (1 - rate)``, mask ~ Bernoulli(1 - rate).

    Without a key (inference) it is the identity. The mask is derived from the
    key alone, so ``grad`` with the same key uses the same mask: ``dx = dy * mask / (1 - rate)``.
    """
    rate = float(rate)
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"dropout rate must be in [0, 1), got {rate}")

    def init(key, in_shape):
        return tuple(in_shape), {}

    def scaled_mask(key, x):
        keep = random.bernoulli(key, 1.0 - rate, x.shape)
        return keep.astype(x.dtype) * x.dtype.type(1.0 / (1.0 - rate))

    def apply(params, x, key=None):
        return x if key is None or rate == 0.0 else x * scaled_mask(key, x)

    def grad(params, x, dy, key=None):
        return {}, (dy if key is None or rate == 0.0 else dy * scaled_mask(key, x))

    def vjp(params, x, key=None, need_dx=True):
        if key is None or rate == 0.0:
            return x, lambda dy: ({}, dy)
        m = scaled_mask(key, x)
        return x * m, lambda dy: ({}, dy * m)

    return layer(init, apply, grad, {"type": "Dropout", "rate": rate}, vjp, uses_key=True)


# ---------------------------------------------------------------- combinators


def child_keys(layers, key):
    """One key per child of a combinator: ``split(key, n)`` when any child uses keys, else Nones."""
    n = len(layers)
    return random.split(key, n) if key is not None and any(lyr.uses_key for lyr in layers) else [None] * n


def serial(*layers: Layer) -> Layer:
    """Compose layers left to right; params are keyed by position ``"0"``, ``"1"``, ...

    The forward pass of ``vjp`` keeps each child's backward closure, so one
    training step runs exactly one forward and one backward pass.
    """
    n = len(layers)
    uses_key = any(lyr.uses_key for lyr in layers)

    def init(key, in_shape):
        params, shape = {}, tuple(in_shape)
        for i, (lyr, k) in enumerate(zip(layers, random.split(key, n))):
            shape, params[str(i)] = lyr.init(k, shape)
        return shape, params

    def apply(params, x, key=None):
        for i, (lyr, k) in enumerate(zip(layers, child_keys(layers, key))):
            x = lyr.apply(params[str(i)], x, k)
        return x

    def grad(params, x, dy, key=None):
        return vjp(params, x, key)[1](dy)

    def vjp(params, x, key=None, need_dx=True):
        backwards = []
        for i, (lyr, k) in enumerate(zip(layers, child_keys(layers, key))):
            x, back = lyr.vjp(params[str(i)], x, k, need_dx=need_dx or i > 0)
            backwards.append(back)

        def backward(dy):
            dparams = {}
            for i in reversed(range(n)):
                dparams[str(i)], dy = backwards[i](dy)
            return {str(i): dparams[str(i)] for i in range(n)}, dy

        return x, backward

    spec = {"type": "serial", "layers": [lyr.spec for lyr in layers]}
    return layer(init, apply, grad, spec, vjp, uses_key, children=layers)


# ---------------------------------------------------------------- builders

ACTIVATIONS = {"relu": Relu, "leaky_relu": LeakyRelu(), "sigmoid": Sigmoid, "tanh": Tanh}
DEFAULT_INIT = {"relu": "he_uniform", "leaky_relu": "he_uniform", "sigmoid": "glorot_uniform", "tanh": "glorot_uniform"}


def mlp(sizes, activation="relu", dropout=0.0, w_init=None) -> Layer:
    """A multilayer perceptron from layer sizes, e.g. ``mlp([784, 128, 64, 10])``.

    Gives ``serial(Dense(128), Relu, Dense(64), Relu, Dense(10))``: logits out,
    pair it with :func:`fnn.losses.softmax_cross_entropy`. ``sizes[0]`` is the
    input width (used by ``init``'s ``in_shape``), ``sizes[-1]`` the outputs.
    ``dropout > 0`` adds ``Dropout`` after every hidden activation. ``w_init``
    defaults to He for ReLU-like activations and Glorot for sigmoid/tanh.
    """
    sizes = [int(s) for s in sizes]
    if len(sizes) < 2 or min(sizes) < 1:
        raise ValueError(f"mlp needs at least two sizes, all >= 1; got {sizes}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; choose from {', '.join(ACTIVATIONS)}")
    w_init = w_init or DEFAULT_INIT[activation]
    hidden = []
    for units in sizes[1:-1]:
        hidden += [Dense(units, w_init), ACTIVATIONS[activation]]
        if dropout:
            hidden.append(Dropout(dropout))
    return serial(*hidden, Dense(sizes[-1], "glorot_uniform"))


REGISTRY = {
    "Dense": Dense,
    "Relu": Relu,
    "LeakyRelu": LeakyRelu,
    "Sigmoid": Sigmoid,
    "Tanh": Tanh,
    "Softmax": Softmax,
    "Identity": Identity,
    "Flatten": Flatten,
    "Dropout": Dropout,
    "serial": serial,
}


class SpecError(ValueError):
    """A layer spec names an unknown layer or carries bad arguments."""


def build(spec) -> Layer:
    """Rebuild a layer from its ``spec`` (as stored in a model manifest).

    Only names in :data:`REGISTRY` are accepted; nothing is imported or evaluated.
    """
    if not isinstance(spec, dict) or not isinstance(spec.get("type"), str):
        raise SpecError(f"a layer spec must be an object with a string 'type', got {spec!r:.80}")
    kind = spec["type"]
    if kind not in REGISTRY:
        raise SpecError(f"unknown layer type {kind!r:.80}; known: {', '.join(REGISTRY)}")
    args = {k: v for k, v in spec.items() if k != "type"}
    if kind == "serial":
        if set(args) != {"layers"} or not isinstance(args["layers"], list):
            raise SpecError("a serial spec must have exactly a 'layers' list")
        return serial(*(build(s) for s in args["layers"]))
    factory = REGISTRY[kind]
    if isinstance(factory, Layer):
        if args:
            raise SpecError(f"layer {kind} takes no arguments, got {sorted(args)}")
        return factory
    for name, value in args.items():
        if not isinstance(value, (int, float, str)) or isinstance(value, bool):
            raise SpecError(f"layer {kind} argument {name!r} must be a number or a name, got {value!r:.80}")
    try:
        return factory(**args)
    except (TypeError, ValueError) as e:
        raise SpecError(f"bad arguments for layer {kind}: {e}") from None
