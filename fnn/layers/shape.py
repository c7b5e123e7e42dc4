"""Layers that only change the shape of their input."""

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
