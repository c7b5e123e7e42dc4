"""The fully connected layer: ``y = x w + b``."""

from __future__ import annotations

import numpy as np

from fnn import initializers, random
from fnn.layers.base import Layer, layer, register, whole_number
from fnn.workspace import FRESH


@register("Dense")
def Dense(units: int, w_init="glorot_uniform", b_init="zeros") -> Layer:
    """Fully connected layer ``y = x @ w + b``.

    Shapes: ``x: (batch, in)``, ``w: (in, units)``, ``b: (units,)``, ``y: (batch, units)``.
    ``w_init``/``b_init`` name an initializer in :mod:`fnn.initializers`.

    Backward: ``dw = x.T @ dy``, ``db = dy.sum(0)``, ``dx = dy @ w.T``.
    ``units`` is a whole number >= 1 (``10``, ``np.int64(10)`` or ``10.0``; not ``2.7``, ``"10"`` or ``True``).
    An input whose feature count differs from the one ``init`` saw is refused, naming both.
    """
    units = whole_number(units, "Dense units")
    w_fn, b_fn = initializers.get(w_init), initializers.get(b_init)

    def misfit(x, w):
        """The error for an input ``x`` that ``x @ w`` refused, or None (looked for only once the product has failed)."""
        shape, features = np.shape(x), np.shape(w)[0]
        if len(shape) == 0:
            return ValueError(f"Dense({units}) takes a batch shaped (n, {features}), got a scalar")
        if shape[-1] != features:
            hint = ": put Flatten before it" if len(shape) > 2 else ""
            return ValueError(f"Dense({units}) expects {features} input features, got {shape[-1]} (input shape {shape}){hint}")
        if len(shape) != 2:
            return ValueError(f"Dense({units}) trains on batches shaped (n, {features}), got an input of shape {shape}")
        return None

    def init(key, in_shape):
        kw, kb = random.split(key)
        return (*in_shape[:-1], units), {"w": w_fn(kw, (in_shape[-1], units)), "b": b_fn(kb, (units,))}

    def apply(params, x, key=None):
        w = params["w"]
        try:  # np.dot is x @ w for a 2-D x, with less overhead per call (matmul is a generalized ufunc)
            y = np.dot(x, w) if getattr(x, "ndim", 0) == 2 else x @ w
        except ValueError:  # free on the good path; the error names what does not fit
            error = misfit(x, w)
            if error is None:
                raise
            raise error from None
        y += params["b"]  # y is this call's own array
        return y

    def vjp(params, x, key=None, ws=FRESH, need_dx=True):
        w, b = params["w"], params["b"]
        try:
            y = np.dot(x, w, out=ws.array("y", (len(x), units), np.result_type(x, w)))  # apply's routine: the same bits
        except (ValueError, TypeError):
            error = misfit(x, w)
            if error is None:
                raise
            raise error from None
        y += b

        def backward(dy):
            g = ws.grads_like(params)
            np.matmul(x.T, dy, out=g["w"])
            np.sum(dy, axis=0, out=g["b"])
            return g, (np.matmul(dy, w.T, out=ws.array("dx", x.shape, dy.dtype)) if need_dx else None)

        return y, backward

    return layer(init, apply, vjp, {"type": "Dense", "units": units, "w_init": w_init, "b_init": b_init})
