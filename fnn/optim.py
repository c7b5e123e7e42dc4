"""Optimizers as ``(init, update)`` pairs over parameter pytrees, in the style of optax.

An :class:`Optimizer` is

- ``init(params) -> state``: plain data, a nested dict of arrays;
- ``update(grads, state, params=None, ws=FRESH) -> (updates, new_state)``.

``apply_updates(params, updates)`` adds the updates. Without a workspace
nothing is mutated: every call returns new arrays. With one (a training
loop's :class:`fnn.workspace.Workspace`) the results land in its buffers, so a
loop that passes the state it got back updates it in place. Small transforms compose with :func:`chain`, and the
familiar optimizers are one expression each, e.g.
``adam(lr) = chain(scale_by_adam(), scale_by_learning_rate(lr))``.

A learning rate is a number or a schedule ``step -> lr`` (see below); the rate
used by the last update is ``learning_rate(state)``.

>>> opt = sgd(0.1)
>>> params = {"w": np.array([1.0], np.float32)}
>>> updates, state = opt.update({"w": np.array([2.0], np.float32)}, opt.init(params))
>>> apply_updates(params, updates)["w"]
array([0.8], dtype=float32)
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple

import numpy as np

from fnn.losses import weights_only
from fnn.tree import global_norm, tree_map, tree_map_with_path, zeros_like
from fnn.workspace import FRESH


class Optimizer(NamedTuple):
    init: Callable
    update: Callable
    #: True when ``update`` treats every scalar alike (no per-parameter masks, no per-leaf sums), so that
    #: it may run on all parameters laid out as one flat vector (:func:`fnn.train.make_inplace_train_step` does).
    elementwise: bool = False


def apply_updates(params, updates, ws=FRESH):
    """``params + updates``, leafwise, keeping each parameter's dtype; into ``ws.like("params", params)``."""
    return tree_map(lambda p, u, o: np.add(p, u, out=o, casting="same_kind"), params, updates, ws.like("params", params))


def _stateless(params):
    return {}


def _count(state):
    return np.asarray(state["count"] + 1, dtype=np.int64)


# ---------------------------------------------------------------- schedules
# A schedule maps the 0-based step number to a learning rate.


def constant(lr):
    """``lr`` at every step."""
    return lambda step: lr


def step_decay(lr, step_size, gamma=0.1):
    """``lr * gamma ** floor(step / step_size)``."""
    return lambda step: lr * gamma ** (step // step_size)


def exponential_decay(lr, decay_rate, decay_steps):
    """``lr * decay_rate ** (step / decay_steps)``."""
    return lambda step: lr * decay_rate ** (step / decay_steps)


def cosine_decay(lr, decay_steps, alpha=0.0):
    """``lr * ((1 - alpha) * (1 + cos(pi * min(step, T) / T)) / 2 + alpha)`` (Loshchilov & Hutter, 2017)."""
    return lambda step: lr * ((1 - alpha) * 0.5 * (1 + math.cos(math.pi * min(step, decay_steps) / decay_steps)) + alpha)


def warmup(schedule, warmup_steps):
    """Linear warm-up from ``lr / warmup_steps`` to the schedule over ``warmup_steps`` steps, then the schedule."""
    schedule = schedule if callable(schedule) else constant(schedule)
    return lambda step: schedule(step) * min(1.0, (step + 1) / warmup_steps) if warmup_steps else schedule(step)


# ---------------------------------------------------------------- transforms
# Each ``update`` writes its results into arrays asked of ``ws`` (fnn.workspace): new ones by
# default; a training loop's own buffers, updated in place, when the loop passes its workspace.


def scale_by_learning_rate(lr):
    """``u = -lr_t * g`` with ``lr_t = schedule(count) * scale``; ``lr`` is a number or a schedule.

    State: ``count``, ``lr`` (the last rate used) and ``scale`` (1 unless
    changed between steps, e.g. by :func:`scale_learning_rate` from a
    ReduceLROnPlateau callback).
    """
    schedule = lr if callable(lr) else constant(lr)

    def init(params):
        return {"count": np.asarray(0, np.int64), "lr": np.asarray(schedule(0), np.float32), "scale": np.asarray(1.0, np.float64)}

    def update(grads, state, params=None, ws=FRESH):
        rate = schedule(int(state["count"])) * float(state["scale"])
        if not math.isfinite(rate) or rate < 0:
            raise ValueError(f"the learning rate at step {int(state['count'])} is {rate}: a schedule must give finite rates >= 0")
        u = tree_map(lambda g, o: np.multiply(g, g.dtype.type(-rate), out=o), grads, ws.like("u", grads))
        return u, {"count": _count(state), "lr": np.asarray(rate, np.float32), "scale": state["scale"]}

    return Optimizer(init, update, elementwise=True)


def scale(factor):
    """``u = factor * g`` (stateless)."""

    def update(grads, state, params=None, ws=FRESH):
        return tree_map(lambda g, o: np.multiply(g, g.dtype.type(factor), out=o), grads, ws.like("u", grads)), state

    return Optimizer(_stateless, update, elementwise=True)


def trace(decay=0.9, nesterov=False):
    """Momentum: ``v = decay * v + g``; ``u = v``, or ``u = g + decay * v`` with Nesterov."""

    def init(params):
        return {"trace": zeros_like(params)}

    def leaf(g, t, v, u):
        np.multiply(t, decay, out=v)
        v += g
        if not nesterov:
            return v
        np.multiply(v, decay, out=u)
        u += g
        return u

    def update(grads, state, params=None, ws=FRESH):
        v = ws.like("trace", grads)
        u = tree_map(leaf, grads, state["trace"], v, ws.like("u", grads) if nesterov else v)
        return u, {"trace": v}

    return Optimizer(init, update, elementwise=True)


def scale_by_rms(decay=0.9, eps=1e-8):
    """RMSprop (Hinton, 2012): ``n = decay * n + (1 - decay) g**2``; ``u = g / (sqrt(n) + eps)``."""

    def init(params):
        return {"nu": zeros_like(params)}

    def leaf(g, n_old, n, u):
        np.multiply(n_old, decay, out=n)
        n += np.multiply(np.multiply(g, g, out=u), 1 - decay, out=u)
        return np.divide(g, np.add(np.sqrt(n, out=u), eps, out=u), out=u)

    def update(grads, state, params=None, ws=FRESH):
        nu = ws.like("nu", grads)
        return tree_map(leaf, grads, state["nu"], nu, ws.like("u", grads)), {"nu": nu}

    return Optimizer(init, update, elementwise=True)


def scale_by_adagrad(initial_accumulator=0.1, eps=1e-7):
    """Adagrad (Duchi et al., 2011): ``a = a + g**2``; ``u = g / (sqrt(a) + eps)``."""

    def init(params):
        return {"sum_sq": tree_map(lambda p: np.full_like(p, initial_accumulator), params)}

    def leaf(g, a_old, a, u):  # a may be a_old itself (in place): read it before writing
        np.add(a_old, np.multiply(g, g, out=u), out=a)
        return np.divide(g, np.add(np.sqrt(a, out=u), eps, out=u), out=u)

    def update(grads, state, params=None, ws=FRESH):
        acc = ws.like("sum_sq", grads)
        return tree_map(leaf, grads, state["sum_sq"], acc, ws.like("u", grads)), {"sum_sq": acc}

    return Optimizer(init, update, elementwise=True)


def scale_by_adam(b1=0.9, b2=0.999, eps=1e-8):
    """Adam (Kingma & Ba, 2015) with bias correction, at step ``t = count + 1``:

    ``m = b1 m + (1 - b1) g``, ``v = b2 v + (1 - b2) g**2``,
    ``u = (m / (1 - b1**t)) / (sqrt(v / (1 - b2**t)) + eps)``,
    computed as ``m / (sqrt(v) k + e)`` with ``k = c1 / sqrt(c2)``, ``e = eps c1``
    (``c1 = 1 - b1**t``, ``c2 = 1 - b2**t``): the same value, one pass fewer.
    """

    def init(params):
        return {"count": np.asarray(0, np.int64), "mu": zeros_like(params), "nu": zeros_like(params)}

    def update(grads, state, params=None, ws=FRESH):
        count = _count(state)
        c1, c2 = 1 - b1 ** int(count), 1 - b2 ** int(count)
        k, e = c1 / math.sqrt(c2), eps * c1

        def leaf(g, m_old, v_old, m, v, u):  # u is scratch until its last line
            np.multiply(m_old, b1, out=m)
            m += np.multiply(g, 1 - b1, out=u)
            np.multiply(v_old, b2, out=v)
            v += np.multiply(np.multiply(g, g, out=u), 1 - b2, out=u)
            return np.divide(m, np.add(np.multiply(np.sqrt(v, out=u), k, out=u), e, out=u), out=u)

        mu, nu = ws.like("mu", grads), ws.like("nu", grads)
        u = tree_map(leaf, grads, state["mu"], state["nu"], mu, nu, ws.like("u", grads))
        return u, {"count": count, "mu": mu, "nu": nu}

    return Optimizer(init, update, elementwise=True)


def add_decayed_weights(weight_decay, mask=weights_only):
    """Decoupled weight decay (Loshchilov & Hutter, 2019): ``u = u + wd * p`` where ``mask(path, p)``.

    The default mask decays matrices and leaves biases alone.
    """

    def leaf(path, u, p, o):
        return np.add(u, np.multiply(p, p.dtype.type(weight_decay), out=o), out=o) if mask(path, p) else u

    def update(updates, state, params=None, ws=FRESH):
        if params is None:
            raise ValueError("add_decayed_weights needs params: call update(grads, state, params)")
        return tree_map_with_path(leaf, updates, params, ws.like("u", updates)), state

    return Optimizer(_stateless, update)


def clip_by_global_norm(max_norm):
    """Rescale all gradients by ``min(1, max_norm / global_norm(g))``."""

    def update(grads, state, params=None, ws=FRESH):
        norm = global_norm(grads)
        if norm <= max_norm or norm == 0:
            return grads, state
        return tree_map(lambda g, o: np.multiply(g, g.dtype.type(max_norm / norm), out=o), grads, ws.like("u", grads)), state

    return Optimizer(_stateless, update)


def chain(*transforms):
    """Apply ``transforms`` in order; the state is ``{"0": state0, "1": state1, ...}``; transform ``i`` writes into ``ws.child("i")``."""

    def init(params):
        return {str(i): t.init(params) for i, t in enumerate(transforms)}

    def update(grads, state, params=None, ws=FRESH):
        new_state = {}
        for i, t in enumerate(transforms):
            grads, new_state[str(i)] = t.update(grads, state[str(i)], params, ws.child(str(i)))
        return grads, new_state

    return Optimizer(init, update, elementwise=all(t.elementwise for t in transforms))


def _rate_states(state, path=()):
    """Paths of the :func:`scale_by_learning_rate` states inside an optimizer state."""
    if not isinstance(state, dict):
        return []
    if "lr" in state and "scale" in state and not isinstance(state["lr"], dict):
        return [path]
    return [p for k, v in state.items() for p in _rate_states(v, path + (k,))]


def learning_rate(state):
    """The learning rate the last update used (the first one before any update), or None."""
    paths = _rate_states(state)
    if not paths:
        return None
    for k in paths[0]:
        state = state[k]
    return float(state["lr"])


def scale_learning_rate(state, factor: float):
    """A copy of the optimizer ``state`` whose learning rates are ``factor`` times what they would be (from the next step on)."""
    factor = float(factor)
    if not (math.isfinite(factor) and factor > 0):
        raise ValueError(f"a learning-rate factor must be a finite number > 0, got {factor}")

    def scaled(node, path):
        if not path:
            return {**node, "scale": np.asarray(float(node["scale"]) * factor, np.float64)}
        return {**node, path[0]: scaled(node[path[0]], path[1:])}

    for path in _rate_states(state):
        state = scaled(state, path)
    return state


def set_learning_rate(state, lr: float):
    """A copy of ``state`` whose next rate is ``lr``, relative to the last one used (exact for a constant schedule)."""
    last = learning_rate(state)
    if last is None:
        raise ValueError("this optimizer state has no learning rate (no scale_by_learning_rate in the chain)")
    if not (math.isfinite(lr) and lr > 0):
        raise ValueError(f"a learning rate must be a finite number > 0, got {lr}")
    return scale_learning_rate(state, lr / last) if last > 0 else state


# ---------------------------------------------------------------- the familiar optimizers


def _recipe(scaler, lr, weight_decay, mask, clip_norm):
    """``clip -> scaler -> decoupled weight decay -> -lr``, each part only when asked for."""
    return chain(
        *([clip_by_global_norm(clip_norm)] if clip_norm else []),
        *([scaler] if scaler is not None else []),
        *([add_decayed_weights(weight_decay, mask)] if weight_decay else []),
        scale_by_learning_rate(lr),
    )


def sgd(lr, weight_decay=0.0, mask=weights_only, clip_norm=None):
    """Plain gradient descent: ``p = p - lr * g``."""
    return _recipe(None, lr, weight_decay, mask, clip_norm)


def momentum(lr, beta=0.9, nesterov=False, weight_decay=0.0, mask=weights_only, clip_norm=None):
    """Heavy-ball momentum (Polyak, 1964): ``v = beta v + g``, ``p = p - lr v``.

    With ``nesterov=True`` (Sutskever et al., 2013): ``p = p - lr (g + beta v)``.
    """
    return _recipe(trace(beta, nesterov), lr, weight_decay, mask, clip_norm)


def nesterov(lr, beta=0.9, weight_decay=0.0, mask=weights_only, clip_norm=None):
    """Momentum with Nesterov's look-ahead; see :func:`momentum`."""
    return momentum(lr, beta, True, weight_decay, mask, clip_norm)


def rmsprop(lr, decay=0.9, eps=1e-8, weight_decay=0.0, mask=weights_only, clip_norm=None):
    """RMSprop: ``n = decay n + (1 - decay) g**2``, ``p = p - lr g / (sqrt(n) + eps)``."""
    return _recipe(scale_by_rms(decay, eps), lr, weight_decay, mask, clip_norm)


def adagrad(lr, initial_accumulator=0.1, eps=1e-7, weight_decay=0.0, mask=weights_only, clip_norm=None):
    """Adagrad: ``a = a + g**2``, ``p = p - lr g / (sqrt(a) + eps)``."""
    return _recipe(scale_by_adagrad(initial_accumulator, eps), lr, weight_decay, mask, clip_norm)


def adam(lr=1e-3, b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.0, mask=weights_only, clip_norm=None):
    """Adam: ``p = p - lr m_hat / (sqrt(v_hat) + eps)``; see :func:`scale_by_adam`."""
    return _recipe(scale_by_adam(b1, b2, eps), lr, weight_decay, mask, clip_norm)


def adamw(lr=1e-3, b1=0.9, b2=0.999, eps=1e-8, weight_decay=1e-2, mask=weights_only, clip_norm=None):
    """AdamW: ``p = p - lr (m_hat / (sqrt(v_hat) + eps) + wd p)``, decay masked to weights."""
    return adam(lr, b1, b2, eps, weight_decay, mask, clip_norm)


OPTIMIZERS = {
    "sgd": sgd,
    "momentum": momentum,
    "nesterov": nesterov,
    "rmsprop": rmsprop,
    "adagrad": adagrad,
    "adam": adam,
    "adamw": adamw,
}


def by_name(name, lr, weight_decay=None, clip_norm=None, mask=weights_only):
    """``OPTIMIZERS[name](lr, ...)`` with its default hyperparameters and the given extras.

    ``weight_decay=None`` keeps the optimizer's own default (``1e-2`` for AdamW, none otherwise).
    """
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; choose from {', '.join(OPTIMIZERS)}")
    extras = {"mask": mask, "clip_norm": clip_norm}
    if weight_decay is not None:
        extras["weight_decay"] = weight_decay
    return OPTIMIZERS[name](lr, **extras)


def schedule_by_name(name, lr, total_steps, warmup_steps=0, floor=0.0):
    """The schedule ``name`` over ``total_steps`` steps from the peak rate ``lr``, after a linear warm-up.

    ``constant``; ``step`` (x0.1 at each third); ``exponential`` (to 1% at the
    end); ``cosine`` (to ``floor * lr`` at the end: optax's
    ``cosine_decay_schedule`` with ``alpha=floor``). ``floor`` is a fraction
    of the peak in ``[0, 1)``: the cosine ends there, and ``step`` and
    ``exponential`` never go below it (optax's ``end_value``); ``constant``
    ignores it. Warm-up steps count towards ``total_steps``.

    >>> s = schedule_by_name("cosine", 0.01, 100, floor=0.1)
    >>> round(s(0), 6), round(s(50), 6), round(s(99), 6), round(s(100), 6)
    (0.01, 0.0055, 0.001002, 0.001)
    """
    if not 0 <= floor < 1:
        raise ValueError(f"schedule floor must be a fraction of the peak rate in [0, 1), got {floor!r}")
    total_steps = max(1, int(total_steps))
    low = lr * floor

    def clipped(schedule):
        return (lambda step: max(schedule(step), low)) if floor else schedule

    schedules = {
        "constant": constant(lr),
        "step": clipped(step_decay(lr, max(1, total_steps // 3), 0.1)),
        "exponential": clipped(exponential_decay(lr, 0.01, total_steps)),
        "cosine": cosine_decay(lr, total_steps, floor),
    }
    if name not in schedules:
        raise ValueError(f"unknown schedule {name!r}; choose from {', '.join(schedules)}")
    return warmup(schedules[name], warmup_steps) if warmup_steps else schedules[name]
