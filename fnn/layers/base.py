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
  ``need_dx=False`` lets a first layer skip ``dx`` (``backward`` returns None for it).
- ``spec``: a JSON-able description; :func:`build` turns it back into the layer.

``layer.grad(params, x, dy, key=None)`` is ``vjp`` followed by its ``backward``:
the one place a gradient is derived from a layer's own backward pass.

>>> from fnn.layers import Dense, Relu
>>> model = serial(Dense(8), Relu, Dense(2))
>>> out_shape, params = model.init(random.key(0), (-1, 4))
>>> out_shape
(-1, 2)
>>> model.apply(params, np.ones((3, 4), np.float32)).shape
(3, 2)
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np

from fnn import random
from fnn.workspace import FRESH


class Layer(NamedTuple):
    init: Callable
    apply: Callable
    vjp: Callable
    spec: dict
    uses_key: bool = False
    children: tuple = ()

    def grad(self, params, x, dy, key=None):
        """``(dparams, dx)``: the gradient of ``sum(y * dy)`` at ``x``, from one forward and one backward pass."""
        return self.vjp(params, x, key)[1](dy)


def layer(init, apply, vjp, spec, uses_key=False, children=()) -> Layer:
    """Assemble a :class:`Layer` (``vjp`` must accept ``ws`` and ``need_dx``; it may ignore them)."""
    return Layer(init, apply, vjp, spec, uses_key, tuple(children))


def child_keys(layers, key):
    """One key per child of a combinator: ``split(key, n)`` when any child uses keys, else Nones."""
    n = len(layers)
    return random.split(key, n) if key is not None and any(lyr.uses_key for lyr in layers) else [None] * n


def serial(*layers: Layer) -> Layer:
    """Compose layers left to right; params are keyed by position ``"0"``, ``"1"``, ...

    ``vjp`` keeps each child's backward closure, so a training step runs
    exactly one forward and one backward pass; child ``i`` writes into ``ws.child("i")``.
    """
    names = [str(i) for i in range(len(layers))]
    uses_key = any(lyr.uses_key for lyr in layers)

    def init(key, in_shape):
        params, shape = {}, tuple(in_shape)
        for name, lyr, k in zip(names, layers, random.split(key, len(layers))):
            shape, params[name] = lyr.init(k, shape)
        return shape, params

    def apply(params, x, key=None):
        for name, lyr, k in zip(names, layers, child_keys(layers, key)):
            x = lyr.apply(params[name], x, k)
        return x

    def vjp(params, x, key=None, ws=FRESH, need_dx=True):
        backwards = []
        for i, (name, lyr, k) in enumerate(zip(names, layers, child_keys(layers, key))):
            x, back = lyr.vjp(params[name], x, k, ws=ws.child(name), need_dx=need_dx or i > 0)
            backwards.append(back)

        def backward(dy):
            grads = {}
            for name, back in zip(reversed(names), reversed(backwards)):
                grads[name], dy = back(dy)
            return {name: grads[name] for name in names}, dy

        return x, backward

    spec = {"type": "serial", "layers": [lyr.spec for lyr in layers]}
    return layer(init, apply, vjp, spec, uses_key, children=layers)


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


def register(name: str, factory=None):
    """Make a layer (or a layer factory) buildable from specs of type ``name``, so its models save and load.

    Use as ``register("Scale", Scale)`` or as a decorator ``@register("Scale")``.
    """

    def add(obj):
        REGISTRY[name] = obj
        return obj

    return add(factory) if factory is not None else add
