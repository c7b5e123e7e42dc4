"""The fully connected layer: ``y = x w + b``."""

from __future__ import annotations

import numpy as np

from fnn import initializers, random
from fnn.layers.base import Layer, layer, register
from fnn.workspace import FRESH


@register("Dense")
def Dense(units: int, w_init="glorot_uniform", b_init="zeros") -> Layer:
    """Fully connected layer ``y = x @ w + b``.

    Shapes: ``x: (batch, in)``, ``w: (in, units)``, ``b: (units,)``, ``y: (batch, units)``.
    ``w_init``/``b_init`` name an initializer in :mod:`fnn.initializers`.

    Backward: ``dw = x.T @ dy``, ``db = dy.sum(0)``, ``dx = dy @ w.T``.
    """
    units = int(units)
    if units < 1:
        raise ValueError(f"Dense units must be >= 1, got {units}")
    w_fn, b_fn = initializers.get(w_init), initializers.get(b_init)

    def init(key, in_shape):
        kw, kb = random.split(key)
        return (*in_shape[:-1], units), {"w": w_fn(kw, (in_shape[-1], units)), "b": b_fn(kb, (units,))}

    def apply(params, x, key=None):
        y = x @ params["w"]
        y += params["b"]  # y is this call's own array
        return y

    def vjp(params, x, key=None, ws=FRESH, need_dx=True):
        w, b = params["w"], params["b"]
        y = np.matmul(x, w, out=ws.array("y", (len(x), units), np.result_type(x, w)))
        y += b

        def backward(dy):
            g = ws.grads_like(params)
            np.matmul(x.T, dy, out=g["w"])
            np.sum(dy, axis=0, out=g["b"])
            return g, (np.matmul(dy, w.T, out=ws.array("dx", x.shape, dy.dtype)) if need_dx else None)

        return y, backward

    return layer(init, apply, vjp, {"type": "Dense", "units": units, "w_init": w_init, "b_init": b_init})
