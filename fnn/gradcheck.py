"""Check hand-written gradients against float64 central differences.

For a layer, the scalar checked is ``f = sum(y * dy)`` for a random ``dy``,
where ``y`` is the training forward pass (``vjp``'s output); its exact
gradient is ``layer.grad(params, x, dy)``, the layer's own backward pass. Each input entry
``v`` is nudged: ``(f(v + h) - f(v - h)) / (2 h)``. The error reported is the
largest, over params and ``x``, of ``||a - n|| / (||a|| + ||n||)`` between the
analytic gradient ``a`` and the numerical one ``n``.

>>> from fnn import layers
>>> check_layer(layers.Dense(3), (2, 4)) < 1e-6
True
"""

from __future__ import annotations

import numpy as np

from fnn import random
from fnn.layers.base import init_state, vjp_model
from fnn.tree import tree_flatten, tree_map


def relative_error(a, n) -> float:
    """``||a - n|| / (||a|| + ||n||)``, and 0 when both are zero."""
    a, n = np.asarray(a, np.float64), np.asarray(n, np.float64)
    denom = np.linalg.norm(a) + np.linalg.norm(n)
    return float(np.linalg.norm(a - n) / denom) if denom > 0 else 0.0


def numeric_grad(f, x, h=1e-6):
    """Central-difference gradient of scalar ``f`` at float64 array ``x`` (x is restored)."""
    g = np.zeros_like(x)
    flat, gflat = x.reshape(-1), g.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + h
        up = f()
        flat[i] = old - h
        down = f()
        flat[i] = old
        gflat[i] = (up - down) / (2 * h)
    return g


def check_layer(layer, in_shape, key=None, x=None, params=None, h=1e-6, state=None) -> float:
    """Largest relative error of ``layer.grad`` (params and x) against central differences.

    ``in_shape`` is concrete (e.g. ``(1, 5)`` for batch size 1). ``key`` seeds
    init, the inputs and the layer's own randomness (dropout's mask). A
    stateful layer runs from ``state`` (its initial state by default).
    """
    key = random.key(0) if key is None else key
    k_init, k_x, k_dy, k_layer = random.split(key, 4)
    out_shape, p0 = layer.init(k_init, in_shape)
    params = tree_map(lambda a: np.array(a, np.float64), p0 if params is None else params)
    x = np.array(random.normal(k_x, in_shape, np.float64) if x is None else x, np.float64)
    state = tree_map(lambda a: np.array(a, np.float64), init_state(layer, in_shape) if state is None else state)
    dy = random.normal(k_dy, vjp_model(layer, params, x, k_layer, state=state)[0].shape, np.float64)

    def f():
        return float(np.sum(vjp_model(layer, params, x, k_layer, state=state)[0] * dy))

    dparams, dx = layer.grad(params, x, dy, k_layer, state=state)
    errors = [relative_error(dx, numeric_grad(f, x, h))]
    flat_d = dict(tree_flatten(dparams))
    for path, leaf in tree_flatten(params):
        errors.append(relative_error(flat_d[path], numeric_grad(f, leaf, h)))
    return max(errors)


def check_loss(loss, z, t, h=1e-6, weights=None) -> float:
    """Relative error of ``loss.grad(z, t, weights)`` (and of ``value_and_grad``) against central differences in ``z``."""
    z = np.array(z, np.float64)
    numeric = numeric_grad(lambda: loss.apply(z, t, weights), z, h)
    value, fused = loss.value_and_grad(z, t, weights)
    if not np.isclose(value, loss.apply(z, t, weights), rtol=1e-12):
        return float("inf")
    return max(relative_error(loss.grad(z, t, weights), numeric), relative_error(fused, numeric))


def check_penalty(penalty, params, h=1e-6) -> float:
    """Relative error of ``penalty.grad(params)`` against central differences."""
    params = tree_map(lambda a: np.array(a, np.float64), params)
    analytic = dict(tree_flatten(penalty.grad(params)))
    return max(
        relative_error(analytic[path], numeric_grad(lambda: penalty.apply(params), leaf, h))
        for path, leaf in tree_flatten(params)
    )


__all__ = ["check_layer", "check_loss", "check_penalty", "numeric_grad", "relative_error"]
