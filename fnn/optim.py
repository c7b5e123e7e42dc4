"""Optimizers as ``(init, update)`` pairs over parameter pytrees, in the style of optax.

An :class:`Optimizer` is

- ``init(params) -> state``: plain data, a nested dict of arrays;
- ``update(grads, state, params=None) -> (updates, new_state)``;
- ``fused(u, state, params, ws) -> new_state`` (optional): the same update on
  flat float32 vectors, for the fast training step of :mod:`fnn.fast`. ``u``
  holds all gradients in one vector and is overwritten with the updates;
  ``params`` and the params-shaped entries of ``state`` are flat vectors it
  reads and never writes; ``ws.new()`` gives a vector for each new state entry,
  ``ws.tmp`` is scratch, and ``ws.leaves(*vectors)`` yields ``(path, view, ...)``
  per parameter. Each kernel runs the same float32 operations in the same order
  as its ``update``, so both give bit-identical results.

``apply_updates(params, updates)`` adds the updates. Nothing is mutated: every
call returns new arrays. Small transforms compose with :func:`chain`, and the
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


class Optimizer(NamedTuple):
    init: Callable
    update: Callable
    fused: Callable | None = None


def apply_updates(params, updates):
    """``params + updates``, leafwise, keeping each parameter's dtype."""
    return tree_map(lambda p, u: (p + u).astype(p.dtype, copy=False), params, updates)


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


def scale_by_learning_rate(lr):
    """``u = -lr_t * g``; ``lr`` is a number or a schedule. State: ``count``, ``lr`` (the last rate used)."""
    schedule = lr if callable(lr) else constant(lr)

    def init(params):
        return {"count": np.asarray(0, np.int64), "lr": np.asarray(schedule(0), np.float32)}

    def next_state(state):
        rate = schedule(int(state["count"]))
        return rate, {"count": _count(state), "lr": np.asarray(rate, np.float32)}

    def update(grads, state, params=None):
        rate, new_state = next_state(state)
        return tree_map(lambda g: g * g.dtype.type(-rate), grads), new_state

    def fused(u, state, params, ws):
        rate, new_state = next_state(state)
        u *= u.dtype.type(-rate)
        return new_state

    return Optimizer(init, update, fused)


def scale(factor):
    """``u = factor * g`` (stateless)."""

    def fused(u, state, params, ws):
        u *= u.dtype.type(factor)
        return state

    return Optimizer(lambda params: {}, lambda g, s, p=None: (tree_map(lambda x: x * x.dtype.type(factor), g), s), fused)


def trace(decay=0.9, nesterov=False):
    """Momentum: ``v = decay * v + g``; ``u = v``, or ``u = g + decay * v`` with Nesterov."""

    def init(params):
        return {"trace": zeros_like(params)}

    def update(grads, state, params=None):
        v = tree_map(lambda g, t: decay * t + g, grads, state["trace"])
        updates = tree_map(lambda g, t: g + decay * t, grads, v) if nesterov else v
        return updates, {"trace": v}

    def fused(u, state, params, ws):
        v = np.multiply(state["trace"], decay, out=ws.new())
        v += u
        if nesterov:
            u += np.multiply(v, decay, out=ws.tmp)
        else:
            np.copyto(u, v)
        return {"trace": v}

    return Optimizer(init, update, fused)


def scale_by_rms(decay=0.9, eps=1e-8):
    """RMSprop (Hinton, 2012): ``n = decay * n + (1 - decay) g**2``; ``u = g / (sqrt(n) + eps)``."""

    def init(params):
        return {"nu": zeros_like(params)}

    def update(grads, state, params=None):
        nu = tree_map(lambda g, n: decay * n + (1 - decay) * (g * g), grads, state["nu"])
        return tree_map(lambda g, n: g / (np.sqrt(n) + eps), grads, nu), {"nu": nu}

    def fused(u, state, params, ws):
        nu, t = np.multiply(state["nu"], decay, out=ws.new()), ws.tmp
        nu += np.multiply(np.multiply(u, u, out=t), 1 - decay, out=t)
        u /= np.add(np.sqrt(nu, out=t), eps, out=t)
        return {"nu": nu}

    return Optimizer(init, update, fused)


def scale_by_adagrad(initial_accumulator=0.1, eps=1e-7):
    """Adagrad (Duchi et al., 2011): ``a = a + g**2``; ``u = g / (sqrt(a) + eps)``."""

    def init(params):
        return {"sum_sq": tree_map(lambda p: np.full_like(p, initial_accumulator), params)}

    def update(grads, state, params=None):
        acc = tree_map(lambda g, a: a + g * g, grads, state["sum_sq"])
        return tree_map(lambda g, a: g / (np.sqrt(a) + eps), grads, acc), {"sum_sq": acc}

    def fused(u, state, params, ws):
        acc, t = np.multiply(u, u, out=ws.new()), ws.tmp
        acc += state["sum_sq"]
        u /= np.add(np.sqrt(acc, out=t), eps, out=t)
        return {"sum_sq": acc}

    return Optimizer(init, update, fused)


def scale_by_adam(b1=0.9, b2=0.999, eps=1e-8):
    """Adam (Kingma & Ba, 2015) with bias correction, at step ``t = count + 1``:

    ``m = b1 m + (1 - b1) g``, ``v = b2 v + (1 - b2) g**2``,
    ``u = (m / (1 - b1**t)) / (sqrt(v / (1 - b2**t)) + eps)``,
    computed as ``m / (sqrt(v) k + e)`` with ``k = c1 / sqrt(c2)``, ``e = eps c1``
    (``c1 = 1 - b1**t``, ``c2 = 1 - b2**t``): the same value, one pass fewer.
    """

    def init(params):
        return {"count": np.asarray(0, np.int64), "mu": zeros_like(params), "nu": zeros_like(params)}

    def corrections(count):
        c1, c2 = 1 - b1 ** int(count), 1 - b2 ** int(count)
        return c1 / math.sqrt(c2), eps * c1

    def update(grads, state, params=None):
        count = _count(state)
        k, e = corrections(count)
        mu = tree_map(lambda g, m: b1 * m + (1 - b1) * g, grads, state["mu"])
        nu = tree_map(lambda g, v: b2 * v + (1 - b2) * (g * g), grads, state["nu"])
        updates = tree_map(lambda m, v: m / (np.sqrt(v) * k + e), mu, nu)
        return updates, {"count": count, "mu": mu, "nu": nu}

    def fused(u, state, params, ws):
        count, t = _count(state), ws.tmp
        k, e = corrections(count)
        mu = np.multiply(state["mu"], b1, out=ws.new())
        mu += np.multiply(u, 1 - b1, out=t)
        nu = np.multiply(state["nu"], b2, out=ws.new())
        nu += np.multiply(np.multiply(u, u, out=t), 1 - b2, out=t)
        np.divide(mu, np.add(np.multiply(np.sqrt(nu, out=t), k, out=t), e, out=t), out=u)
        return {"count": count, "mu": mu, "nu": nu}

    return Optimizer(init, update, fused)


def add_decayed_weights(weight_decay, mask=weights_only):
    """Decoupled weight decay (Loshchilov & Hutter, 2019): ``u = u + wd * p`` where ``mask(path, p)``.

    The default mask decays matrices and leaves biases alone.
    """

    def update(updates, state, params=None):
        if params is None:
            raise ValueError("add_decayed_weights needs params: call update(grads, state, params)")
        return (
            tree_map_with_path(
                lambda path, u, p: u + p * p.dtype.type(weight_decay) if mask(path, p) else u, updates, params
            ),
            state,
        )

    def fused(u, state, params, ws):
        for path, u_leaf, p, t in ws.leaves(u, params, ws.tmp):
            if mask(path, p):
                u_leaf += np.multiply(p, p.dtype.type(weight_decay), out=t)
        return state

    return Optimizer(lambda params: {}, update, fused)


def clip_by_global_norm(max_norm):
    """Rescale all gradients by ``min(1, max_norm / global_norm(g))``."""

    def update(grads, state, params=None):
        norm = global_norm(grads)
        if norm <= max_norm or norm == 0:
            return grads, state
        return tree_map(lambda g: g * g.dtype.type(max_norm / norm), grads), state

    def fused(u, state, params, ws):
        norm = math.sqrt(sum(float(np.vdot(g, g)) for _, g in ws.leaves(u)))  # as global_norm, leaf by leaf
        if norm > max_norm and norm != 0:
            u *= u.dtype.type(max_norm / norm)
        return state

    return Optimizer(lambda params: {}, update, fused)


def chain(*transforms):
    """Apply ``transforms`` in order; the state is ``{"0": state0, "1": state1, ...}``."""

    def init(params):
        return {str(i): t.init(params) for i, t in enumerate(transforms)}

    def update(grads, state, params=None):
        new_state = {}
        for i, t in enumerate(transforms):
            grads, new_state[str(i)] = t.update(grads, state[str(i)], params)
        return grads, new_state

    def fused(u, state, params, ws):
        return {str(i): t.fused(u, state[str(i)], params, ws) for i, t in enumerate(transforms)}

    return Optimizer(init, update, fused if all(t.fused for t in transforms) else None)


def learning_rate(state):
    """The learning rate the last update used (the first one before any update), or None."""
    if isinstance(state, dict):
        if "lr" in state and not isinstance(state["lr"], dict):
            return float(state["lr"])
        for sub in state.values():
            lr = learning_rate(sub)
            if lr is not None:
                return lr
    return None


# ---------------------------------------------------------------- the familiar optimizers


def _head(clip_norm):
    return [clip_by_global_norm(clip_norm)] if clip_norm else []


def sgd(lr, clip_norm=None):
    """Plain gradient descent: ``p = p - lr * g``."""
    return chain(*_head(clip_norm), scale_by_learning_rate(lr))


def momentum(lr, beta=0.9, nesterov=False, clip_norm=None):
    """Heavy-ball momentum (Polyak, 1964): ``v = beta v + g``, ``p = p - lr v``.

    With ``nesterov=True`` (Sutskever et al., 2013): ``p = p - lr (g + beta v)``.
    """
    return chain(*_head(clip_norm), trace(beta, nesterov), scale_by_learning_rate(lr))


def nesterov(lr, beta=0.9, clip_norm=None):
    """Momentum with Nesterov's look-ahead; see :func:`momentum`."""
    return momentum(lr, beta, True, clip_norm)


def rmsprop(lr, decay=0.9, eps=1e-8, clip_norm=None):
    """RMSprop: ``n = decay n + (1 - decay) g**2``, ``p = p - lr g / (sqrt(n) + eps)``."""
    return chain(*_head(clip_norm), scale_by_rms(decay, eps), scale_by_learning_rate(lr))


def adagrad(lr, initial_accumulator=0.1, eps=1e-7, clip_norm=None):
    """Adagrad: ``a = a + g**2``, ``p = p - lr g / (sqrt(a) + eps)``."""
    return chain(*_head(clip_norm), scale_by_adagrad(initial_accumulator, eps), scale_by_learning_rate(lr))


def adam(lr=1e-3, b1=0.9, b2=0.999, eps=1e-8, clip_norm=None):
    """Adam: ``p = p - lr m_hat / (sqrt(v_hat) + eps)``; see :func:`scale_by_adam`."""
    return chain(*_head(clip_norm), scale_by_adam(b1, b2, eps), scale_by_learning_rate(lr))


def adamw(lr=1e-3, b1=0.9, b2=0.999, eps=1e-8, weight_decay=1e-2, mask=weights_only, clip_norm=None):
    """AdamW: ``p = p - lr (m_hat / (sqrt(v_hat) + eps) + wd p)``, decay masked to weights."""
    return chain(
        *_head(clip_norm),
        scale_by_adam(b1, b2, eps),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(lr),
    )


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
    """Build optimizer ``name`` (a key of :data:`OPTIMIZERS`) with the given extras.

    ``weight_decay`` adds decoupled decay (masked; biases excluded by default)
    before the learning-rate scaling; ``None`` means the optimizer's default
    (``1e-2`` for AdamW, none otherwise). ``clip_norm`` clips first.
    """
    scalers = {
        "sgd": [],
        "momentum": [trace(0.9)],
        "nesterov": [trace(0.9, nesterov=True)],
        "rmsprop": [scale_by_rms()],
        "adagrad": [scale_by_adagrad()],
        "adam": [scale_by_adam()],
        "adamw": [scale_by_adam()],
    }
    if name not in scalers:
        raise ValueError(f"unknown optimizer {name!r}; choose from {', '.join(scalers)}")
    if weight_decay is None:
        weight_decay = 1e-2 if name == "adamw" else 0.0
    decay = [add_decayed_weights(weight_decay, mask)] if weight_decay else []
    return chain(*_head(clip_norm), *scalers[name], *decay, scale_by_learning_rate(lr))


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
