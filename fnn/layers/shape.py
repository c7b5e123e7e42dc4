"""Layers that only change the shape of their input: ``Flatten`` and ``Reshape`` (each a reshape: a view when the input is contiguous).

>>> import numpy as np
>>> Reshape((28, 28, 1)).init(None, (-1, 784))[0]
(-1, 28, 28, 1)
>>> Reshape("2,-1").apply({}, np.zeros((5, 6))).shape
(5, 2, 3)
"""

from __future__ import annotations

import math

from fnn.layers.base import Layer, layer, register
from fnn.workspace import FRESH


def _flatten_layer() -> Layer:
    """``(batch, d1, d2, ...) -> (batch, d1 * d2 * ...)``; ``dx = dy`` reshaped back."""

    def init(key, in_shape):
        return (in_shape[0], math.prod(in_shape[1:])), {}

    def apply(params, x, key=None):
        return x.reshape(len(x), -1)

    def vjp(params, x, key=None, ws=FRESH, need_dx=True):
        return x.reshape(len(x), -1), lambda dy: ({}, dy.reshape(x.shape))

    return layer(init, apply, vjp, {"type": "Flatten"})


Flatten = register("Flatten", _flatten_layer())


@register("Reshape")
def Reshape(shape) -> Layer:
    """``(batch, ...) -> (batch, *shape)``, e.g. ``Reshape((28, 28, 1))`` turns flat MNIST rows into NHWC images.

    ``shape`` excludes the batch; it is a tuple of ints or a string ``"28,28,1"``
    (as the spec stores it), and one entry may be ``-1`` (inferred). ``dx = dy``
    reshaped back to the input's shape.
    """
    target = _shape_arg(shape)

    def out_shape(in_shape):
        size = math.prod(in_shape[1:])
        known = math.prod(d for d in target if d != -1)
        if -1 in target:
            if size % known:
                raise ValueError(f"Reshape {target} cannot take input shape {tuple(in_shape)}: "
                                 f"{size} values per row do not split into rows of {known}")
            return tuple(size // known if d == -1 else d for d in target)
        if known != size:
            raise ValueError(f"Reshape {target} needs {known} values per row, got input shape {tuple(in_shape)} ({size} values)")
        return target

    def init(key, in_shape):
        return (in_shape[0], *out_shape(in_shape)), {}

    def apply(params, x, key=None):
        return x.reshape(len(x), *out_shape(x.shape))

    def vjp(params, x, key=None, ws=FRESH, need_dx=True):
        return apply(params, x), lambda dy: ({}, dy.reshape(x.shape))

    return layer(init, apply, vjp, {"type": "Reshape", "shape": ",".join(map(str, target))})


def _shape_arg(shape) -> tuple:
    """A target shape from ``(28, 28, 1)``, ``[784]``, ``"28,28,1"`` or ``784``: ints >= 1, at most one -1."""
    parts = shape.split(",") if isinstance(shape, str) else shape if isinstance(shape, (tuple, list)) else [shape]
    try:
        dims = tuple(_dim(p) for p in parts)
    except (TypeError, ValueError):
        dims = ()
    if not dims or any(d < 1 and d != -1 for d in dims) or dims.count(-1) > 1:
        raise ValueError(f"Reshape shape must be whole numbers >= 1 (one may be -1), like (28, 28, 1) or '28,28,1'; got {shape!r}")
    return dims


def _dim(p) -> int:
    if isinstance(p, bool):
        raise TypeError("a bool is not a size")
    if isinstance(p, str):
        return int(p.strip())
    f = float(p)
    if not f.is_integer():
        raise ValueError(f"{p} is not a whole number")
    return int(f)
