"""Dropout: randomness in training, the identity at inference."""

from __future__ import annotations

import numpy as np

from fnn import random
from fnn.layers.base import Layer, layer, real_number, register
from fnn.workspace import FRESH


@register("Dropout")
def Dropout(rate: float) -> Layer:
    """Inverted dropout: with a key, ``y = x * mask / (1 - rate)``, mask ~ Bernoulli(1 - rate).

    Without a key it is the identity. The mask comes from the key alone, so
    backward uses the same one: ``dx = dy * mask / (1 - rate)``.
    """
    rate = real_number(rate, "dropout rate")
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"dropout rate must be in [0, 1), got {rate}")

    def init(key, in_shape):
        return tuple(in_shape), {}

    def scaled_mask(key, x):
        keep = random.bernoulli(key, 1.0 - rate, x.shape)
        return keep.astype(x.dtype) * x.dtype.type(1.0 / (1.0 - rate))

    def apply(params, x, key=None):
        return x if key is None or rate == 0.0 else x * scaled_mask(key, x)

    def vjp(params, x, key=None, ws=FRESH, need_dx=True):
        if key is None or rate == 0.0:
            return x, lambda dy: ({}, dy)
        m = scaled_mask(key, x)
        y = np.multiply(x, m, out=ws.array("y", x.shape, x.dtype))
        return y, lambda dy: ({}, np.multiply(dy, m, out=ws.array("dx", x.shape, dy.dtype)))

    return layer(init, apply, vjp, {"type": "Dropout", "rate": rate}, uses_key=True)
