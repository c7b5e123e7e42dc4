"""The layer protocol, ``serial`` composition and the registry that rebuilds layers from their specs.

A layer is a :class:`Layer` tuple of pure functions:

- ``init(key, in_shape) -> (out_shape, params)``; the batch dimension stays ``-1``.
  ``key=None`` gives shape-only placeholders (no memory), for checking files.
- ``apply(params, x, key=None) -> y``: inference. ``key`` switches on
  randomness (dropout); ``key=None`` is deterministic.
- ``vjp(params, x, key=None, ws=FRESH, need_dx=True) -> (y, backward)``: the
  training forward pass, and ``backward(dy) -> (dparams, dx)``, the
  vector-Jacobian product at ``x`` of the upstream gradient ``dy = dL/dy``.
  Results go into arrays asked of the workspace ``ws`` (:mod:`fnn.workspace`):
  new ones by default, a loop's own buffers when it passes its workspace; the
  parameter gradients into ``ws.grads_like(params)``.
  ``need_dx=False`` says nobody uses ``dx`` (a first layer's): the layer may skip it (``backward`` returns None for it).
- ``spec``: a JSON-able description; :func:`build` turns it back into the layer.

``layer.grad(params, x, dy, key=None)`` is ``vjp`` followed by its ``backward``:
the one place a gradient is derived from a layer's own backward pass.

**State.** Some layers keep numbers that are neither parameters nor gradients
(BatchNorm's running mean and variance). Such a layer has ``state_init(in_shape)
-> state`` (a tree; stateless layers have ``state_init=None``), and takes the
state as a keyword: ``apply(params, x, key=None, state=...)`` reads it
(inference), and ``vjp(..., state=...)`` returns it updated as a third value,
``(y, backward, new_state)``. ``serial`` is stateful when a child is; its
state is keyed like its params (``{}`` for stateless children). Callers that
take any model use :func:`apply_model` and :func:`vjp_model`, which thread
``{}`` through stateless ones, as Haiku's ``transform_with_state`` does.

>>> import numpy as np
>>> from fnn.layers import Dense, Relu
>>> model = serial(Dense(8), Relu, Dense(2))
>>> out_shape, params = model.init(random.key(0), (-1, 4))
>>> out_shape
(-1, 2)
>>> model.apply(params, np.ones((3, 4), np.float32)).shape
(3, 2)
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import NamedTuple

from fnn import random
from fnn.tree import tree_leaves, tree_map
from fnn.workspace import FRESH


class Layer(NamedTuple):
    init: Callable
    apply: Callable
    vjp: Callable
    spec: dict
    uses_key: bool = False
    children: tuple = ()
    state_init: Callable | None = None

    @property
    def stateful(self) -> bool:
        return self.state_init is not None

    def grad(self, params, x, dy, key=None, state=None):
        """``(dparams, dx)``: the gradient of ``sum(y * dy)`` at ``x``, from one forward and one backward pass."""
        return vjp_model(self, params, x, key, state=state)[1](dy)


def layer(init, apply, vjp, spec, uses_key=False, children=(), state_init=None) -> Layer:
    """Assemble a :class:`Layer` (``vjp`` must accept ``ws`` and ``need_dx``; it may ignore them)."""
    return Layer(init, apply, vjp, spec, uses_key, tuple(children), state_init)


def whole_number(value, what: str, low: int = 1) -> int:
    """``value`` as an int >= ``low``: an int (a NumPy one too) or a float with no fraction; not a bool or a string.

    ``what`` names the argument in the one-line error, e.g. ``"Dense units"``.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{what} must be a whole number >= {low}, got {value!r:.60}")
    if not (math.isfinite(value) and value == int(value) and value >= low):
        raise ValueError(f"{what} must be a whole number >= {low}, got {value!r}")
    return int(value)


def real_number(value, what: str) -> float:
    """``value`` as a finite float (an int, a float or a NumPy number; not a bool or a string), else an error naming ``what``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{what} must be a finite number, got {value!r:.60}")
    if not math.isfinite(value):
        raise ValueError(f"{what} must be a finite number, got {value!r}")
    return float(value)


def apply_model(model, params, x, key=None, state=None):
    """``model.apply``, with ``state`` passed to a stateful model (and refused when it is missing)."""
    if not model.stateful:
        return model.apply(params, x, key)
    if state is None:
        raise ValueError("this model keeps state (e.g. BatchNorm's running averages): pass state=, from fit's result or the model file")
    return model.apply(params, x, key, state=state)


def vjp_model(model, params, x, key=None, ws=FRESH, need_dx=True, state=None):
    """``(y, backward, new_state)`` for any model: a stateless one gives back ``state`` (``{}`` by default) unchanged."""
    if not model.stateful:
        return (*model.vjp(params, x, key, ws=ws, need_dx=need_dx), {} if state is None else state)
    if state is None:
        raise ValueError("this model keeps state (e.g. BatchNorm's running averages): pass state=, e.g. init_state(model, in_shape)")
    return model.vjp(params, x, key, ws=ws, need_dx=need_dx, state=state)


def init_state(model, in_shape):
    """The model's initial state (``{}`` for a stateless model)."""
    return model.state_init(tuple(in_shape)) if model.stateful else {}


def child_keys(layers, key):
    """One key per child of a combinator: ``split(key, n)`` when any child uses keys, else Nones."""
    n = len(layers)
    return random.split(key, n) if key is not None and any(lyr.uses_key for lyr in layers) else [None] * n


def serial(*layers: Layer) -> Layer:
    """Compose layers left to right; params (and state) are keyed by position ``"0"``, ``"1"``, ...

    ``vjp`` keeps each child's backward closure, so a training step runs
    exactly one forward and one backward pass; child ``i`` writes into ``ws.child("i")``.
    A child is asked for its ``dx`` only when it is used: when the caller wants
    ``dx`` or a child before it has params (``Reshape`` then ``Conv2D`` first in a
    net: the convolution makes no ``dx``, and the backward passes of the
    parameterless children before it are not run).
    Each argument must be a :class:`Layer` (``Dense(10)``, ``Relu``), at least one.
    """
    if not layers:
        raise ValueError("serial() needs at least one layer, e.g. serial(Dense(128), Relu, Dense(10))")
    for i, lyr in enumerate(layers):
        if not isinstance(lyr, Layer):
            raise TypeError(f"serial takes layers, but argument {i} is {_describe(lyr)}")
    names = [str(i) for i in range(len(layers))]
    uses_key = any(lyr.uses_key for lyr in layers)
    stateful = any(lyr.stateful for lyr in layers)

    def init(key, in_shape):
        params, shape = {}, tuple(in_shape)
        for name, lyr, k in zip(names, layers, random.split(key, len(layers))):
            shape, params[name] = lyr.init(k, shape)
        return shape, params

    def state_init(in_shape):
        state, shape = {}, tuple(in_shape)
        for name, lyr in zip(names, layers):
            state[name] = init_state(lyr, shape)
            shape = lyr.init(None, shape)[0]  # shape only: nothing allocated
        return state

    applies = [lyr.apply for lyr in layers]
    nones = [None] * len(layers)

    def apply(params, x, key=None, state=None):
        if not stateful:  # the common case, kept lean: predict on one row is mostly this loop
            for name, f, k in zip(names, applies, nones if key is None or not uses_key else child_keys(layers, key)):
                x = f(params[name], x, k)
            return x
        for name, lyr, k in zip(names, layers, child_keys(layers, key)):
            x = apply_model(lyr, params[name], x, k, None if state is None else state[name])
        return x

    def vjp(params, x, key=None, ws=FRESH, need_dx=True, state=None):
        backwards, new_state = [], {}
        wanted = need_dx  # is child i's dx used: by the caller, or for the params of a child before it?
        for name, lyr, k in zip(names, layers, child_keys(layers, key)):
            if lyr.stateful:
                x, back, new_state[name] = lyr.vjp(params[name], x, k, ws=ws.child(name), need_dx=wanted, state=state[name])
            else:
                x, back = lyr.vjp(params[name], x, k, ws=ws.child(name), need_dx=wanted)
                new_state[name] = {} if state is None else state[name]
            backwards.append(back)
            wanted = wanted or bool(tree_leaves(params[name]))

        def backward(dy):
            grads = {}
            for name, back in zip(reversed(names), reversed(backwards)):
                if dy is None:  # a child made no dx: nothing before it has params, so its backward is not run
                    grads[name] = tree_map(None, params[name])  # its params' empty dicts
                else:
                    grads[name], dy = back(dy)
            return {name: grads[name] for name in names}, dy

        return x, backward, new_state

    spec = {"type": "serial", "layers": [lyr.spec for lyr in layers]}
    if stateful:
        return layer(init, apply, vjp, spec, uses_key, layers, state_init)

    def stateless_vjp(params, x, key=None, ws=FRESH, need_dx=True):
        return vjp(params, x, key, ws, need_dx)[:2]

    return layer(init, apply, stateless_vjp, spec, uses_key, layers)


def _describe(obj) -> str:
    """What a non-layer given to ``serial`` is, and what to pass instead."""
    name = getattr(obj, "__name__", None)
    if callable(obj) and name and REGISTRY.get(name) is obj:
        return f"the factory {name}, not a layer: call it, e.g. {name}(...) (Dense(10), Dropout(0.5))"
    if callable(obj) and name:
        return f"the function {name}, not a layer: pass a Layer, e.g. Dense(10) or Relu (call a factory to get one)"
    return f"{obj!r:.60} ({type(obj).__name__}), not a layer: pass a Layer, e.g. Dense(10) or Relu"


# ---------------------------------------------------------------- rebuilding layers from specs

#: Layer names a spec may use: a factory (``Dense``) or a layer (``Relu``). Nothing else is ever built.
REGISTRY: dict = {"serial": serial}


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
        children = [build(s) for s in args["layers"]]
        if not children:
            raise SpecError("a serial spec must list at least one layer")
        return serial(*children)
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


def register(name: str, factory=None):
    """Make a layer (or a layer factory) buildable from specs of type ``name``, so its models save and load.

    Use as ``register("Scale", Scale)`` or as a decorator ``@register("Scale")``.
    """

    def add(obj):
        REGISTRY[name] = obj
        return obj

    return add(factory) if factory is not None else add
