"""Teaching data: small 2-D problems to fit, and 2-D loss surfaces to minimize.

Datasets (NumPy only; every random number comes from ``key``, an int seed or
an :mod:`fnn.random` key, so the same key gives the same bits):

- :func:`spiral`: ``classes`` interleaved spiral arms (the nnfs.io classic);
- :func:`moons`: two interleaving half circles (labels 0 and 1);
- :func:`circles`: a small circle inside a large one (labels 0 and 1);
- :func:`curve`: 1-D regression, ``y = sin(2 pi x) + noise`` on ``[0, 1)``.

Classification returns ``x: (n, 2) float32`` and ``y: (n,) int64`` labels,
rows in a seeded shuffled order; regression returns ``x, y: (n, 1) float32``.

>>> from fnn.datasets import toy
>>> x, y = toy.spiral(n_per_class=100, classes=3, key=0)
>>> x.shape, x.dtype, y.shape, y.dtype, np.bincount(y).tolist()
((300, 2), dtype('float32'), (300,), dtype('int64'), [100, 100, 100])
>>> bool(np.array_equal(x, toy.spiral(key=0)[0]))
True

Surfaces (:data:`SURFACES`): :func:`quadratic` and :func:`rosenbrock` with
their hand-written gradients, and :func:`trajectories`, the paths the
:mod:`fnn.optim` optimizers take on them from the same start.

>>> paths = trajectories("quadratic", steps=300)
>>> sorted(paths) == sorted(optim.OPTIMIZERS)
True
>>> bool(np.abs(paths["adam"][-1] - QUADRATIC.minimum).max() < 0.05)
True
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from fnn import optim, random

# ---------------------------------------------------------------- arguments


def _key(key):
    """An fnn key from an int seed or a key."""
    if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
        return random.key(int(key))
    random.split(key, 1)  # validates: TypeError for anything that is not a key
    return np.asarray(key)


def _count(name, value, least=1):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
        raise ValueError(f"{name} must be an integer >= {least}, got {value!r}")
    return int(value)


def _noise(noise):
    if isinstance(noise, bool) or not isinstance(noise, (int, float, np.integer, np.floating)) or not (
        math.isfinite(noise) and noise >= 0
    ):
        raise ValueError(f"noise must be a finite number >= 0, got {noise!r}")
    return float(noise)


def _shuffled(k, x, y):
    order = random.permutation(k, len(y))
    return np.ascontiguousarray(x[order], np.float32), np.ascontiguousarray(y[order], np.int64)


# ---------------------------------------------------------------- datasets


def spiral(n_per_class=100, classes=3, noise=0.2, key=0):
    """``classes`` spiral arms of ``n_per_class`` points each (nnfs.io's ``spiral_data``).

    Point ``i`` of arm ``c`` has radius ``r = i / (n_per_class - 1)`` (0 to 1)
    and angle ``2.5 (4 c + 4 r + noise * N(0, 1))`` radians; ``x = (r sin, r cos)``.
    Returns ``x: (n_per_class * classes, 2) float32`` in ``[-1, 1]`` and ``y`` int64 labels.

    >>> x, y = spiral(50, classes=2, noise=0.0, key=1)
    >>> x.shape, sorted(set(y.tolist())), bool(np.abs(x).max() <= 1)
    ((100, 2), [0, 1], True)
    """
    n, classes, noise = _count("n_per_class", n_per_class), _count("classes", classes, 2), _noise(noise)
    k_angle, k_order = random.split(_key(key))
    r = np.linspace(0.0, 1.0, n)
    angle = (4.0 * np.arange(classes)[:, None] + 4.0 * r + noise * random.normal(k_angle, (classes, n), np.float64)) * 2.5
    x = np.stack([r * np.sin(angle), r * np.cos(angle)], axis=-1).reshape(-1, 2)
    return _shuffled(k_order, x, np.repeat(np.arange(classes), n))


def moons(n=200, noise=0.1, key=0):
    """Two interleaving half circles (scikit-learn's ``make_moons``), ``n // 2`` points labelled 0.

    Label 0: ``(cos t, sin t)``, label 1: ``(1 - cos t, 0.5 - sin t)``, ``t`` evenly
    spaced in ``[0, pi]``, plus Gaussian noise of standard deviation ``noise``.
    Returns ``x: (n, 2) float32``, ``y: (n,) int64``.

    >>> x, y = moons(200, key=0)
    >>> x.shape, np.bincount(y).tolist()
    ((200, 2), [100, 100])
    """
    n, noise = _count("n", n), _noise(noise)
    k_noise, k_order = random.split(_key(key))
    n0 = n // 2
    t0, t1 = np.linspace(0, np.pi, n0), np.linspace(0, np.pi, n - n0)
    x = np.concatenate([np.stack([np.cos(t0), np.sin(t0)], 1), np.stack([1 - np.cos(t1), 0.5 - np.sin(t1)], 1)])
    x = x + noise * random.normal(k_noise, x.shape, np.float64)
    return _shuffled(k_order, x, np.repeat([0, 1], [n0, n - n0]))


def circles(n=200, noise=0.05, factor=0.5, key=0):
    """A circle of radius ``factor`` (label 1) inside one of radius 1 (label 0): scikit-learn's ``make_circles``.

    ``n // 2`` points on the outer circle, the rest on the inner one, evenly
    spaced in angle, plus Gaussian noise of standard deviation ``noise``.
    ``factor`` is in ``(0, 1)``. Returns ``x: (n, 2) float32``, ``y: (n,) int64``.

    >>> x, y = circles(100, noise=0.0, key=0)
    >>> np.round(np.hypot(*x[y == 1].T).max(), 6), np.round(np.hypot(*x[y == 0].T).min(), 6)
    (np.float32(0.5), np.float32(1.0))
    """
    n, noise = _count("n", n), _noise(noise)
    if isinstance(factor, bool) or not isinstance(factor, (int, float, np.integer, np.floating)) or not 0 < factor < 1:
        raise ValueError(f"factor must be a number in (0, 1), got {factor!r}")
    k_noise, k_order = random.split(_key(key))
    n0 = n // 2
    t0, t1 = (np.linspace(0, 2 * np.pi, m, endpoint=False) for m in (n0, n - n0))
    x = np.concatenate([np.stack([np.cos(t0), np.sin(t0)], 1), factor * np.stack([np.cos(t1), np.sin(t1)], 1)])
    x = x + noise * random.normal(k_noise, x.shape, np.float64)
    return _shuffled(k_order, x, np.repeat([0, 1], [n0, n - n0]))


def curve(n=200, noise=0.1, key=0):
    """1-D regression: ``x`` uniform in ``[0, 1)``, ``y = sin(2 pi x) + noise * N(0, 1)``.

    Returns ``x, y: (n, 1) float32`` (in random order, as drawn).

    >>> x, y = curve(100, noise=0.0, key=0)
    >>> x.shape, y.dtype, bool(np.allclose(y, np.sin(2 * np.pi * x), atol=1e-6))
    ((100, 1), dtype('float32'), True)
    """
    n, noise = _count("n", n), _noise(noise)
    k_x, k_noise = random.split(_key(key))
    x = random.uniform(k_x, (n, 1), dtype=np.float64)
    y = np.sin(2 * np.pi * x) + noise * random.normal(k_noise, (n, 1), np.float64)
    return x.astype(np.float32), y.astype(np.float32)


# ---------------------------------------------------------------- loss surfaces
# Each takes points ``xy: (..., 2)`` (any leading shape: one point, or a grid for a contour plot).

QUADRATIC_SCALE, QUADRATIC_CENTRE = (1.0, 10.0), (3.0, -2.0)


def quadratic(xy):
    """``f(x, y) = (a (x - c)**2 + b (y - d)**2) / 2`` with ``a, b = 1, 10`` and ``c, d = 3, -2``:
    a valley ten times steeper across than along; the minimum is ``f(3, -2) = 0``."""
    xy = np.asarray(xy)
    d = xy - np.asarray(QUADRATIC_CENTRE, xy.dtype)
    return 0.5 * (QUADRATIC_SCALE[0] * d[..., 0] ** 2 + QUADRATIC_SCALE[1] * d[..., 1] ** 2)


def quadratic_grad(xy):
    """``df = (a (x - c), b (y - d))``, shaped and typed like ``xy``."""
    xy = np.asarray(xy)
    return np.asarray(QUADRATIC_SCALE, xy.dtype) * (xy - np.asarray(QUADRATIC_CENTRE, xy.dtype))


def rosenbrock(xy):
    """Rosenbrock's banana ``f(x, y) = (1 - x)**2 + 100 (y - x**2)**2``; the minimum is ``f(1, 1) = 0``
    at the end of a long, curved, flat-bottomed valley."""
    xy = np.asarray(xy)
    x, y = xy[..., 0], xy[..., 1]
    return (1 - x) ** 2 + 100 * (y - x * x) ** 2


def rosenbrock_grad(xy):
    """``df = (-2 (1 - x) - 400 x (y - x**2), 200 (y - x**2))``, shaped and typed like ``xy``."""
    xy = np.asarray(xy)
    x, y = xy[..., 0], xy[..., 1]
    return np.stack([-2 * (1 - x) - 400 * x * (y - x * x), 200 * (y - x * x)], axis=-1).astype(xy.dtype, copy=False)


class Surface(NamedTuple):
    """A 2-D loss surface: its function and gradient, where to start and how to show it.

    ``lrs`` holds a learning rate per :data:`fnn.optim.OPTIMIZERS` name at which
    that optimizer makes visible progress in ``steps`` steps from ``start``.
    """

    name: str
    value: Callable
    grad: Callable
    minimum: tuple
    start: tuple
    bounds: tuple  # ((x_low, x_high), (y_low, y_high)) of the picture
    steps: int
    lrs: dict
    log_levels: bool  # contour levels spaced logarithmically


QUADRATIC = Surface("quadratic", quadratic, quadratic_grad, QUADRATIC_CENTRE, (-1.0, 0.8), ((-1.5, 4.5), (-3.0, 1.5)), 200,
                    {"sgd": 0.15, "momentum": 0.02, "nesterov": 0.02, "rmsprop": 0.05, "adagrad": 1.0, "adam": 0.2,
                     "adamw": 0.2}, False)
ROSENBROCK = Surface("rosenbrock", rosenbrock, rosenbrock_grad, (1.0, 1.0), (-1.2, 1.0), ((-1.6, 1.6), (-0.6, 1.8)), 1000,
                     {"sgd": 2e-3, "momentum": 5e-4, "nesterov": 5e-4, "rmsprop": 1e-2, "adagrad": 0.5, "adam": 0.1,
                      "adamw": 0.1}, True)
SURFACES = {s.name: s for s in (QUADRATIC, ROSENBROCK)}


def surface(name_or_surface) -> Surface:
    """:data:`SURFACES` ``[name]``, or the :class:`Surface` given."""
    if isinstance(name_or_surface, Surface):
        return name_or_surface
    if name_or_surface not in SURFACES:
        raise ValueError(f"unknown surface {name_or_surface!r}; choose from {', '.join(SURFACES)}")
    return SURFACES[name_or_surface]


def descend(optimizer, surf, start=None, steps=None):
    """The path ``(steps + 1, 2) float32`` of ``optimizer`` (an :class:`fnn.optim.Optimizer`) on a surface.

    The parameters are ``{"xy": float32 array (2,)}``; each step feeds the
    surface's gradient to ``optimizer.update`` and applies the update. Row 0 is ``start``.
    """
    surf = surface(surf)
    steps = _count("steps", surf.steps if steps is None else steps, 0)
    params = {"xy": np.array(surf.start if start is None else start, np.float32).reshape(2)}
    state = optimizer.init(params)
    path = np.empty((steps + 1, 2), np.float32)
    path[0] = params["xy"]
    for i in range(steps):
        updates, state = optimizer.update({"xy": surf.grad(params["xy"])}, state, params)
        params = optim.apply_updates(params, updates)
        path[i + 1] = params["xy"]
    return path


def _everything(path, x):
    return True


def trajectories(surf, optimizers=None, start=None, steps=None):
    """``{name: path (steps + 1, 2)}``: :func:`descend` for each optimizer from the same start.

    ``optimizers``: ``{name: Optimizer}``; by default every :data:`fnn.optim.OPTIMIZERS`
    entry at the surface's learning rate (``Surface.lrs``), with its other defaults,
    except that AdamW decays ``xy`` too: its default mask skips 1-D parameters
    (biases), which would make it Adam here.
    """
    surf = surface(surf)
    if optimizers is None:
        optimizers = {name: make(surf.lrs[name], **({"mask": _everything} if name == "adamw" else {}))
                      for name, make in optim.OPTIMIZERS.items()}
    return {name: descend(opt, surf, start, steps) for name, opt in optimizers.items()}


__all__ = [
    "spiral",
    "moons",
    "circles",
    "curve",
    "quadratic",
    "quadratic_grad",
    "rosenbrock",
    "rosenbrock_grad",
    "Surface",
    "QUADRATIC",
    "ROSENBROCK",
    "SURFACES",
    "surface",
    "descend",
    "trajectories",
]
