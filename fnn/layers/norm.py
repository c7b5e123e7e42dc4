"""Batch normalization over the last axis: the features of ``(n, f)``, the channels of NHWC images ``(n, h, w, c)``.

Statistics run over every axis but the last, that is over the ``m`` rows of
``x.reshape(-1, c)`` (``m = n`` for ``(n, f)``, ``n*h*w`` for images)::

    mu = mean(x),  var = mean((x - mu)**2)            (biased, as both PyTorch and Keras normalize)
    xhat = (x - mu) / sqrt(var + eps),  y = scale * xhat + shift

Params ``scale`` (ones) and ``shift`` (zeros), shape ``(c,)``. State: the running
``mean`` (zeros) and ``var`` (ones), shape ``(c,)``.

- Training (``vjp``) normalizes with the batch statistics and returns the state
  ``mean' = momentum * mean + (1 - momentum) * mu`` and
  ``var' = momentum * var + (1 - momentum) * var_batch * m / (m - 1)``: the
  running variance takes the **unbiased** batch variance, as PyTorch does (Keras
  takes the biased one). So training needs ``m >= 2`` values per channel (PyTorch
  refuses one, too). PyTorch's ``momentum=0.1`` is this ``momentum=0.9``.
- Inference (``apply``) normalizes with the running averages: ``y = x * a + b``
  with ``a = scale / sqrt(var + eps)``, ``b = shift - mean * a``.

Backward, the compact formula (sums over the ``m`` rows)::

    dshift = sum(dy),  dscale = sum(dy * xhat)
    dx = scale / sqrt(var + eps) * (dy - dshift / m - xhat * dscale / m)

>>> from fnn import random
>>> from fnn.layers import init_state
>>> bn = BatchNorm()
>>> _, params = bn.init(random.key(0), (-1, 3))
>>> state = init_state(bn, (-1, 3))
>>> x = np.array([[1, 2, 3], [3, 6, 9]], np.float32)
>>> y, backward, new_state = bn.vjp(params, x, state=state)
>>> np.round(y, 3)
array([[-1., -1., -1.],
       [ 1.,  1.,  1.]], dtype=float32)
>>> new_state["mean"], new_state["var"]
(array([0.2, 0.4, 0.6], dtype=float32), array([1.1, 1.7, 2.7], dtype=float32))
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from fnn import initializers, random
from fnn.layers.base import Layer, layer, real_number, register
from fnn.workspace import FRESH


@register("BatchNorm")
def BatchNorm(momentum: float = 0.9, eps: float = 1e-5) -> Layer:
    """Batch normalization over the last axis (see the module docstring); ``0 <= momentum <= 1``, ``eps > 0``."""
    momentum, eps = real_number(momentum, "BatchNorm momentum"), real_number(eps, "BatchNorm eps")
    if not 0.0 <= momentum <= 1.0:
        raise ValueError(f"BatchNorm momentum must be in [0, 1], got {momentum}")
    if not (math.isfinite(eps) and eps > 0):
        raise ValueError(f"BatchNorm eps must be a finite number > 0, got {eps}")

    def channels(in_shape):
        if len(in_shape) < 2 or not isinstance(in_shape[-1], numbers.Integral) or in_shape[-1] < 1:
            raise ValueError(f"BatchNorm takes (batch, ..., channels) inputs, got input shape {tuple(in_shape)}")
        return in_shape[-1]

    def init(key, in_shape):
        c = channels(in_shape)
        k_scale, k_shift = random.split(key)
        return tuple(in_shape), {"scale": initializers.ones(k_scale, (c,)), "shift": initializers.zeros(k_shift, (c,))}

    def state_init(in_shape):
        c = channels(in_shape)
        return {"mean": np.zeros(c, np.float32), "var": np.ones(c, np.float32)}

    def apply(params, x, key=None, state=None):
        if state is None:
            raise ValueError("BatchNorm keeps state (its running mean and var): pass state=, e.g. fnn.layers.init_state(model, in_shape)")
        a = params["scale"] / np.sqrt(state["var"] + state["var"].dtype.type(eps))
        return x * a + (params["shift"] - state["mean"] * a)

    def vjp(params, x, key=None, ws=FRESH, need_dx=True, state=None):
        if state is None:
            raise ValueError("BatchNorm keeps state (its running mean and var): pass state=, e.g. fnn.layers.init_state(model, in_shape)")
        c = x.shape[-1]
        x2 = x.reshape(-1, c)
        m = len(x2)
        if m < 2:
            raise ValueError(f"BatchNorm training needs more than one value per channel, got input shape {x.shape}: "
                             "use a batch of 2 or more")
        dtype = np.result_type(x, params["scale"])
        ones = ws.array("ones", (m,), dtype)
        ones.fill(1)
        mu = np.matmul(ones, x2, out=ws.array("mu", (c,), dtype))  # column sums as a GEMV: an axis-0 sum is slower
        mu *= 1.0 / m
        xhat = ws.array("xhat", x.shape, dtype)
        xh2 = xhat.reshape(-1, c)
        np.subtract(x2, mu, out=xh2)
        var = np.einsum("ij,ij->j", xh2, xh2, out=ws.array("var", (c,), dtype))
        var *= 1.0 / m
        inv = np.sqrt(var + dtype.type(eps), out=ws.array("inv", (c,), dtype))
        np.divide(1, inv, out=inv)
        xh2 *= inv
        y = np.multiply(xhat, params["scale"], out=ws.array("y", x.shape, dtype))
        y += params["shift"]
        new_state = {"mean": _running(ws, "mean", state["mean"], mu, momentum),
                     "var": _running(ws, "var_running", state["var"], var * (m / (m - 1)), momentum)}

        def backward(dy):
            g = ws.grads_like(params)
            dy2 = dy.reshape(-1, c)
            np.matmul(ones, dy2, out=g["shift"])
            np.einsum("ij,ij->j", dy2, xh2, out=g["scale"])
            if not need_dx:
                return g, None
            dx = ws.array("dx", x.shape, np.result_type(dy, dtype))
            dx2 = dx.reshape(-1, c)
            np.multiply(xh2, g["scale"] / m, out=dx2)
            dx2 += g["shift"] / m
            np.subtract(dy2, dx2, out=dx2)
            dx2 *= params["scale"] * inv
            return g, dx

        return y, backward, new_state

    return layer(init, apply, vjp, {"type": "BatchNorm", "momentum": momentum, "eps": eps}, state_init=state_init)


def _running(ws, name, running, batch, momentum):
    """``momentum * running + (1 - momentum) * batch`` in the running average's dtype."""
    out = np.multiply(running, running.dtype.type(momentum), out=ws.array(name, running.shape, running.dtype))
    out += (running.dtype.type(1 - momentum) * batch).astype(running.dtype, copy=False)
    return out
