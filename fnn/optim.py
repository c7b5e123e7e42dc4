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

Hyperparameters are checked when an optimizer or schedule is made (a rate is a
finite number > 0 or a schedule; ``b1``, ``b2``, ``beta``, ``decay`` lie in
``[0, 1)``; ``eps`` and ``clip_norm`` are > 0; ``weight_decay`` >= 0), so a bad
one fails at once, naming itself, rather than training to NaN; ``update`` given
the state of another optimizer says so.

>>> adam(b1=1.5)
Traceback (most recent call last):
ValueError: adam(b1=1.5): b1 must be a number in [0, 1)

>>> opt = sgd(0.1)
>>> params = {"w": np.array([1.0], np.float32)}
>>> updates, state = opt.update({"w": np.array([2.0], np.float32)}, opt.init(params))
>>> apply_updates(params, updates)["w"]
array([0.8], dtype=float32)
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from fnn.losses import weights_only
from fnn.tree import global_norm, tree_flatten, tree_map, tree_map_with_path, zeros_like
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


# ---------------------------------------------------------------- checking hyperparameters (once, when made)


def _real(who, name, value) -> float:
    """``value`` as a float if it is a finite real number (not a bool, not a string), else a one-line error naming it."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{who}({name}={value!r:.60}): {name} must be a number")
    if not math.isfinite(value):
        raise ValueError(f"{who}({name}={value!r}): {name} must be a finite number")
    return float(value)


def _positive(who, name, value):
    if _real(who, name, value) <= 0:
        raise ValueError(f"{who}({name}={value!r}): {name} must be a number > 0")


def _non_negative(who, name, value):
    if _real(who, name, value) < 0:
        raise ValueError(f"{who}({name}={value!r}): {name} must be a number >= 0")


def _fraction(who, name, value, top_included=False):
    """``value`` in ``[0, 1)`` (``[0, 1]`` with ``top_included``)."""
    v = _real(who, name, value)
    if not (0 <= v <= 1 if top_included else 0 <= v < 1):
        raise ValueError(f"{who}({name}={value!r}): {name} must be a number in [0, {'1]' if top_included else '1)'}")


def _steps(who, name, value, low=1):
    """A whole number of steps >= ``low`` (an int, or a float with no fraction)."""
    v = _real(who, name, value)
    if v != int(v) or v < low:
        raise ValueError(f"{who}({name}={value!r}): {name} must be a whole number >= {low}")


def _rate(who, lr):
    """A learning rate: a finite number > 0, or a schedule (a callable ``step -> rate``)."""
    if not callable(lr):
        if isinstance(lr, bool) or not isinstance(lr, (numbers.Real, np.ndarray)):
            raise TypeError(f"{who}(lr={lr!r:.60}): lr must be a number > 0 or a schedule (step -> rate)")
        _positive(who, "lr", lr)


def _hyper(who, lr, weight_decay, mask, clip_norm):
    """The checks every familiar optimizer shares: its rate, weight decay, mask and clipping norm."""
    _rate(who, lr)
    _non_negative(who, "weight_decay", weight_decay)
    if not callable(mask):
        raise TypeError(f"{who}(mask={mask!r:.60}): mask must be a function (path, param) -> bool")
    if clip_norm is not None:
        _positive(who, "clip_norm", clip_norm)


# ---------------------------------------------------------------- schedules
# A schedule maps the 0-based step number to a learning rate.


def constant(lr):
    """``lr`` at every step."""
    _positive("constant", "lr", lr)
    return lambda step: lr


def step_decay(lr, step_size, gamma=0.1):
    """``lr * gamma ** floor(step / step_size)``; ``step_size`` >= 1 steps, ``gamma`` > 0."""
    _positive("step_decay", "lr", lr)
    _steps("step_decay", "step_size", step_size)
    _positive("step_decay", "gamma", gamma)
    return lambda step: lr * gamma ** (step // step_size)


def exponential_decay(lr, decay_rate, decay_steps):
    """``lr * decay_rate ** (step / decay_steps)``; ``decay_rate`` > 0, ``decay_steps`` >= 1."""
    _positive("exponential_decay", "lr", lr)
    _positive("exponential_decay", "decay_rate", decay_rate)
    _steps("exponential_decay", "decay_steps", decay_steps)
    return lambda step: lr * decay_rate ** (step / decay_steps)


def cosine_decay(lr, decay_steps, alpha=0.0):
    """``lr * ((1 - alpha) * (1 + cos(pi * min(step, T) / T)) / 2 + alpha)`` (Loshchilov & Hutter, 2017).

    ``decay_steps`` >= 1, ``alpha`` in ``[0, 1]``.
    """
    _positive("cosine_decay", "lr", lr)
    _steps("cosine_decay", "decay_steps", decay_steps)
    _fraction("cosine_decay", "alpha", alpha, top_included=True)
    return lambda step: lr * ((1 - alpha) * 0.5 * (1 + math.cos(math.pi * min(step, decay_steps) / decay_steps)) + alpha)


def warmup(schedule, warmup_steps):
    """Linear warm-up from ``lr / warmup_steps`` to the schedule over ``warmup_steps`` steps (>= 0), then the schedule."""
    _rate("warmup", schedule)
    _steps("warmup", "warmup_steps", warmup_steps, 0)
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
    _rate("scale_by_learning_rate", lr)
    schedule = lr if callable(lr) else constant(lr)

    def init(params):
        first = schedule(0)
        if isinstance(first, bool) or not isinstance(first, (numbers.Real, np.ndarray)) or np.ndim(first) != 0:
            raise TypeError(f"the learning-rate schedule gave {first!r:.60} at step 0: a schedule returns a number")
        if not (math.isfinite(first) and first >= 0):
            raise ValueError(f"the learning rate at step 0 is {first}: a schedule must give finite rates >= 0")
        return {"count": np.asarray(0, np.int64), "lr": np.asarray(first, np.float32), "scale": np.asarray(1.0, np.float64)}

    def update(grads, state, params=None, ws=FRESH):
        rate = schedule(int(state["count"])) * float(state["scale"])
        if not math.isfinite(rate) or rate < 0:
            raise ValueError(f"the learning rate at step {int(state['count'])} is {rate}: a schedule must give finite rates >= 0")
        u = tree_map(lambda g, o: np.multiply(g, g.dtype.type(-rate), out=o), grads, ws.like("u", grads))
        return u, {"count": _count(state), "lr": np.asarray(rate, np.float32), "scale": state["scale"]}

    return Optimizer(init, update, elementwise=True)


def scale(factor):
    """``u = factor * g`` (stateless)."""
    _real("scale", "factor", factor)

    def update(grads, state, params=None, ws=FRESH):
        return tree_map(lambda g, o: np.multiply(g, g.dtype.type(factor), out=o), grads, ws.like("u", grads)), state

    return Optimizer(_stateless, update, elementwise=True)


def flush_subnormals(a, scratch, headroom=1.0):
    """Zero, in place, the entries of ``a`` smaller in magnitude than its dtype's least normal number; returns ``a``.

    ``headroom`` >= 1 zeroes those below ``headroom`` times that number instead: what a
    caller that flushes only every few steps uses to stay clear of the range in between.

    A moment that decays while its gradient is 0 (the weights of a pixel that
    is nearly always black, a dead ReLU unit) falls through the subnormal
    range (below 1.2e-38 in float32) on its way to 0, and x86 arithmetic on
    subnormals is many times slower: with Adam at 3e-3 on MNIST, 7000 such
    entries of the first moment after 4 epochs made an epoch 70% slower.
    Compiled frameworks set the CPU to flush them (XLA on CPU does); NumPy
    cannot, so this costs three passes (``|a|``, the comparison into
    ``scratch`` as 0/1, a multiply, exact for every other entry). A flushed
    entry would have moved its parameter by less than ``headroom`` * 1e-30:
    the weights are the same unless a parameter is itself that close to 0.
    """
    floor = np.finfo(a.dtype).tiny * headroom
    return np.multiply(a, np.greater_equal(np.abs(a, out=scratch), floor, out=scratch), out=a)


def flush_interval(decay, most=32):
    """How many steps apart a moment decaying by ``decay`` each step may be flushed, and the headroom that takes.

    ``(n, decay**-n)``: an entry at least ``decay**-n`` times the least normal
    number stays normal through ``n`` steps of pure decay, so flushing those
    below it every ``n`` steps keeps the moment out of the subnormal range as
    flushing every step does, for ``3 / n`` passes a step instead of 3. ``n``
    is at most ``most`` and keeps the headroom under 2**20 (below 1.3e-32 in
    float32). ``(0, 1.0)`` for ``decay == 0``: nothing decays, nothing to flush.
    """
    if decay == 0:
        return 0, 1.0
    n = max(1, min(most, int(math.log(2.0**20) / math.log(1 / decay))))
    return n, float(decay) ** -n


def trace(decay=0.9, nesterov=False):
    """Momentum: ``v = decay * v + g``; ``u = v``, or ``u = g + decay * v`` with Nesterov; ``decay`` in ``[0, 1)``."""
    _fraction("trace", "decay", decay)

    def init(params):
        return {"trace": zeros_like(params)}

    def leaf(g, t, v, u):  # u is scratch, then the update with Nesterov
        np.multiply(t, decay, out=v)
        v += g
        flush_subnormals(v, u)
        if not nesterov:
            return v
        np.multiply(v, decay, out=u)
        u += g
        return u

    def update(grads, state, params=None, ws=FRESH):
        v = ws.like("trace", grads)
        u = tree_map(leaf, grads, state["trace"], v, ws.like("u", grads))
        return u, {"trace": v}

    return Optimizer(init, update, elementwise=True)


def scale_by_rms(decay=0.9, eps=1e-8):
    """RMSprop (Hinton, 2012): ``n = decay * n + (1 - decay) g**2``; ``u = g / (sqrt(n) + eps)``."""
    _fraction("scale_by_rms", "decay", decay)
    _positive("scale_by_rms", "eps", eps)

    def init(params):
        return {"nu": zeros_like(params)}

    def leaf(g, n_old, n, u):
        np.multiply(n_old, decay, out=n)
        n += np.multiply(np.multiply(g, g, out=u), 1 - decay, out=u)
        flush_subnormals(n, u)
        return np.divide(g, np.add(np.sqrt(n, out=u), eps, out=u), out=u)

    def update(grads, state, params=None, ws=FRESH):
        nu = ws.like("nu", grads)
        return tree_map(leaf, grads, state["nu"], nu, ws.like("u", grads)), {"nu": nu}

    return Optimizer(init, update, elementwise=True)


def scale_by_adagrad(initial_accumulator=0.1, eps=1e-7):
    """Adagrad (Duchi et al., 2011): ``a = a + g**2``; ``u = g / (sqrt(a) + eps)``."""
    _non_negative("scale_by_adagrad", "initial_accumulator", initial_accumulator)
    _positive("scale_by_adagrad", "eps", eps)

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
    ``m`` is kept out of the subnormal range by :func:`flush_subnormals` every
    few steps (:func:`flush_interval`: every 32nd with ``b1 = 0.9``), not every step.
    ``b1``, ``b2`` in ``[0, 1)``; ``eps`` > 0.
    """
    _fraction("scale_by_adam", "b1", b1)
    _fraction("scale_by_adam", "b2", b2)
    _positive("scale_by_adam", "eps", eps)
    every, headroom = flush_interval(b1)  # m only: v decays 100x slower (b2), some 60,000 steps of zero gradient to get there

    def init(params):
        return {"count": np.asarray(0, np.int64), "mu": zeros_like(params), "nu": zeros_like(params)}

    def update(grads, state, params=None, ws=FRESH):
        count = _count(state)
        c1, c2 = 1 - b1 ** int(count), 1 - b2 ** int(count)
        k, e = c1 / math.sqrt(c2), eps * c1
        flush = every and int(count) % every == 0  # Adam counts its steps: every few is enough (flush_interval)

        def leaf(g, m_old, v_old, m, v, u):  # u is scratch until its last line
            np.multiply(m_old, b1, out=m)
            m += np.multiply(g, 1 - b1, out=u)
            if flush:
                flush_subnormals(m, u, headroom)
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
    _non_negative("add_decayed_weights", "weight_decay", weight_decay)
    if not callable(mask):
        raise TypeError(f"add_decayed_weights(mask={mask!r:.60}): mask must be a function (path, param) -> bool")

    def leaf(path, u, p, o):
        return np.add(u, np.multiply(p, p.dtype.type(weight_decay), out=o), out=o) if mask(path, p) else u

    def update(updates, state, params=None, ws=FRESH):
        if params is None:
            raise ValueError("add_decayed_weights needs params: call update(grads, state, params)")
        return tree_map_with_path(leaf, updates, params, ws.like("u", updates)), state

    return Optimizer(_stateless, update)


def clip_by_global_norm(max_norm):
    """Rescale all gradients by ``min(1, max_norm / global_norm(g))``; ``max_norm`` > 0."""
    _positive("clip_by_global_norm", "max_norm", max_norm)

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
        g, new_state = grads, {}
        try:
            for i, t in enumerate(transforms):
                g, new_state[str(i)] = t.update(g, state[str(i)], params, ws.child(str(i)))
        except (KeyError, TypeError, ValueError, IndexError, AttributeError):  # only on failure: say if the state is another's
            problem = _state_mismatch(init, grads, state)
            if problem is None:
                raise
            raise OptStateError(problem) from None
        return g, new_state

    return Optimizer(init, update, elementwise=all(t.elementwise for t in transforms))


def _keys(node):
    return sorted(node) if isinstance(node, dict) else type(node).__name__


class OptStateError(ValueError):
    """``update`` was given an optimizer state that this optimizer's ``init`` would not have made."""


def _state_mismatch(init, grads, state):
    """A one-line account of how ``state`` differs from ``init(grads)``'s layout (keys, then shapes), or None when it does not."""
    try:
        expected = init(grads)
    except Exception:  # the gradients themselves are at fault: let the first error speak
        return None
    if not isinstance(state, dict):
        return f"opt_state must be the dict optimizer.init(params) gives, got {type(state).__name__}"
    fix = "start from optimizer.init(params)"
    if state.keys() != expected.keys():
        return f"opt_state has parts {_keys(state)}, this optimizer's has {_keys(expected)}: it was made by another optimizer; {fix}"
    for k, want in expected.items():
        got = state[k]
        if isinstance(want, dict) and not (isinstance(got, dict) and got.keys() == want.keys()):
            gone = sorted(set(want) - set(got)) if isinstance(got, dict) else []
            lead = f"{gone[0]!r} missing from opt_state part {k}" if gone else f"opt_state part {k} does not fit"
            return f"{lead}: this opt_state was made by another optimizer (part {k} has {_keys(got)}, this one needs {_keys(want)}); {fix}"
    got, want = dict(tree_flatten(state)), dict(tree_flatten(expected))
    if got.keys() != want.keys():
        return f"opt_state holds {sorted(got)[:6]}, this one needs {sorted(want)[:6]}: it was made for other params or optimizer; {fix}"
    for p, w in want.items():
        if np.shape(got[p]) != np.shape(w):
            return f"opt_state {p} is shaped {np.shape(got[p])}, the params need {np.shape(w)}: it was made for other params; {fix}"
    return None


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
    """``clip -> scaler -> decoupled weight decay -> -lr``, each part only when asked for (``clip_norm=None``: no clipping)."""
    return chain(
        *([clip_by_global_norm(clip_norm)] if clip_norm is not None else []),
        *([scaler] if scaler is not None else []),
        *([add_decayed_weights(weight_decay, mask)] if weight_decay else []),
        scale_by_learning_rate(lr),
    )


def sgd(lr, weight_decay=0.0, mask=weights_only, clip_norm=None):
    """Plain gradient descent: ``p = p - lr * g``."""
    _hyper("sgd", lr, weight_decay, mask, clip_norm)
    return _recipe(None, lr, weight_decay, mask, clip_norm)


def momentum(lr, beta=0.9, nesterov=False, weight_decay=0.0, mask=weights_only, clip_norm=None):
    """Heavy-ball momentum (Polyak, 1964): ``v = beta v + g``, ``p = p - lr v``.

    With ``nesterov=True`` (Sutskever et al., 2013): ``p = p - lr (g + beta v)``. ``beta`` in ``[0, 1)``.
    """
    who = "nesterov" if nesterov is True else "momentum"
    _hyper(who, lr, weight_decay, mask, clip_norm)
    _fraction(who, "beta", beta)
    return _recipe(trace(beta, nesterov), lr, weight_decay, mask, clip_norm)


def nesterov(lr, beta=0.9, weight_decay=0.0, mask=weights_only, clip_norm=None):
    """Momentum with Nesterov's look-ahead; see :func:`momentum`."""
    return momentum(lr, beta, True, weight_decay, mask, clip_norm)


def rmsprop(lr, decay=0.9, eps=1e-8, weight_decay=0.0, mask=weights_only, clip_norm=None):
    """RMSprop: ``n = decay n + (1 - decay) g**2``, ``p = p - lr g / (sqrt(n) + eps)``."""
    _hyper("rmsprop", lr, weight_decay, mask, clip_norm)
    _fraction("rmsprop", "decay", decay)
    _positive("rmsprop", "eps", eps)
    return _recipe(scale_by_rms(decay, eps), lr, weight_decay, mask, clip_norm)


def adagrad(lr, initial_accumulator=0.1, eps=1e-7, weight_decay=0.0, mask=weights_only, clip_norm=None):
    """Adagrad: ``a = a + g**2``, ``p = p - lr g / (sqrt(a) + eps)``."""
    _hyper("adagrad", lr, weight_decay, mask, clip_norm)
    _non_negative("adagrad", "initial_accumulator", initial_accumulator)
    _positive("adagrad", "eps", eps)
    return _recipe(scale_by_adagrad(initial_accumulator, eps), lr, weight_decay, mask, clip_norm)


def adam(lr=1e-3, b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.0, mask=weights_only, clip_norm=None):
    """Adam: ``p = p - lr m_hat / (sqrt(v_hat) + eps)``; see :func:`scale_by_adam`."""
    return _adam("adam", lr, b1, b2, eps, weight_decay, mask, clip_norm)


def _adam(who, lr, b1, b2, eps, weight_decay, mask, clip_norm):
    _hyper(who, lr, weight_decay, mask, clip_norm)
    for name, value in (("b1", b1), ("b2", b2)):
        _fraction(who, name, value)
    _positive(who, "eps", eps)
    return _recipe(scale_by_adam(b1, b2, eps), lr, weight_decay, mask, clip_norm)


def adamw(lr=1e-3, b1=0.9, b2=0.999, eps=1e-8, weight_decay=1e-2, mask=weights_only, clip_norm=None):
    """AdamW: ``p = p - lr (m_hat / (sqrt(v_hat) + eps) + wd p)``, decay masked to weights."""
    return _adam("adamw", lr, b1, b2, eps, weight_decay, mask, clip_norm)


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
    if not (isinstance(floor, numbers.Real) and 0 <= floor < 1):
        raise ValueError(f"schedule floor must be a fraction of the peak rate in [0, 1), got {floor!r}")
    _positive("schedule_by_name", "lr", lr)
    _steps("schedule_by_name", "total_steps", total_steps)
    _steps("schedule_by_name", "warmup_steps", warmup_steps, 0)
    total_steps = int(total_steps)
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
