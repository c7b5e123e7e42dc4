"""Losses and penalties with hand-written gradients.

A :class:`Loss` holds three pure functions of a prediction ``z`` (batch first)
and a target ``t``:

- ``apply(z, t) -> float``: the loss, averaged over the batch;
- ``grad(z, t) -> dz``: ``dL/dz``, same shape and dtype as ``z``;
- ``value_and_grad(z, t) -> (float, dz)``: both from one pass.

A :class:`Penalty` is the same over a parameter pytree: ``apply(params) -> float``,
``grad(params) -> tree``.
"""

from __future__ import annotations

import functools
from typing import Callable, NamedTuple

import numpy as np

from fnn.layers import log_softmax, softmax
from fnn.tree import tree_add, tree_leaves, tree_map_with_path


class Loss(NamedTuple):
    apply: Callable
    grad: Callable
    value_and_grad: Callable
    name: str


def loss(name, value_and_grad) -> Loss:
    """A :class:`Loss` from its fused ``value_and_grad``."""
    return Loss(lambda z, t: value_and_grad(z, t)[0], lambda z, t: value_and_grad(z, t)[1], value_and_grad, name)


def _mse(z, t):
    """``L = mean((z - t)**2)`` over all elements; ``dz = 2 (z - t) / z.size``."""
    d = z - np.asarray(t, dtype=z.dtype).reshape(z.shape)
    return float(np.vdot(d, d)) / d.size, d * z.dtype.type(2.0 / d.size)


mse = loss("mse", _mse)


def _bce_logits(z, t):
    """Binary cross-entropy from logits, averaged over all elements.

    ``L = mean(max(z, 0) - z t + log(1 + exp(-|z|)))`` (stable for any ``z``);
    ``dz = (sigmoid(z) - t) / z.size``.
    """
    t = np.asarray(t, dtype=z.dtype).reshape(z.shape)
    value = np.maximum(z, 0) - z * t + np.log1p(np.exp(-np.abs(z)))
    s = np.tanh(z * z.dtype.type(0.5)) * z.dtype.type(0.5) + z.dtype.type(0.5)
    return float(value.sum()) / z.size, (s - t) * z.dtype.type(1.0 / z.size)


binary_cross_entropy = loss("binary_cross_entropy", _bce_logits)


def one_hot(labels, classes: int, dtype=np.float32):
    """Integer labels ``(n,)`` -> ``(n, classes)`` rows with a single 1; labels outside ``0..classes-1`` are refused."""
    labels = np.asarray(labels).ravel()
    if labels.size and (labels.min() < 0 or labels.max() >= classes):
        raise ValueError(f"labels must lie in 0..{classes - 1}, found {labels.min()}..{labels.max()}")
    out = np.zeros((labels.size, classes), dtype)
    out[np.arange(labels.size), labels] = 1
    return out


def _rows(z):
    return np.arange(len(z))


def _softmax_ce(z, t):
    """Softmax cross-entropy from logits ``z: (batch, classes)``.

    ``t`` is ``(batch,)`` integer labels or ``(batch, classes)`` one-hot/soft labels.
    ``L = mean over batch of (logsumexp(z) - sum(t * z))``, computed with the
    max shifted out; ``dz = (softmax(z) * sum(t) - t) / batch``, which for
    labels is ``(softmax(z) - onehot) / batch``.
    """
    batch = len(z)
    m = z.max(axis=1, keepdims=True)
    e = np.exp(z - m)
    s = e.sum(axis=1, keepdims=True)
    lse = np.log(s) + m  # (batch, 1)
    p = e
    p /= s
    inv = z.dtype.type(1.0 / batch)
    t = np.asarray(t)
    if t.ndim == 1:
        rows = _rows(z)
        value = float((lse[:, 0] - z[rows, t]).sum()) / batch  # row-wise first: no cancellation between huge sums
        p[rows, t] -= 1
        p *= inv
        return value, p
    t = t.astype(z.dtype, copy=False)
    tsum = t.sum(axis=1, keepdims=True)
    value = float((lse * tsum - (t * z).sum(axis=1, keepdims=True)).sum()) / batch
    return value, (p * tsum - t) * inv


softmax_cross_entropy = loss("softmax_cross_entropy", _softmax_ce)


def _categorical_ce(p, t, eps=1e-7):
    """Cross-entropy of probabilities ``p: (batch, classes)`` (e.g. a Softmax layer's output).

    ``L = -mean over batch of sum(t * log(clip(p, eps, 1)))``;
    ``dp = -t / (p * batch)`` where ``p`` is inside the clip range, 0 where clipped.
    Prefer :data:`softmax_cross_entropy` on logits: it is exact and cheaper.
    """
    t = np.asarray(t)
    if t.ndim == 1:
        t = one_hot(t, p.shape[1], p.dtype)
    t = t.astype(p.dtype, copy=False)
    batch = len(p)
    pc = np.clip(p, eps, 1.0)
    value = -float((t * np.log(pc)).sum()) / batch
    inside = (p >= eps) & (p <= 1.0)
    return value, np.where(inside, -t / (pc * batch), 0).astype(p.dtype)


categorical_cross_entropy = loss("categorical_cross_entropy", _categorical_ce)

LOSSES = {
    "mse": mse,
    "binary_cross_entropy": binary_cross_entropy,
    "softmax_cross_entropy": softmax_cross_entropy,
    "categorical_cross_entropy": categorical_cross_entropy,
}


# ---------------------------------------------------------------- penalties


class Penalty(NamedTuple):
    apply: Callable
    grad: Callable


def weights_only(path: str, x) -> bool:
    """Default penalty / weight-decay mask: matrices yes, biases (1-D) no."""
    return np.ndim(x) >= 2


def l2(coef: float, mask=weights_only) -> Penalty:
    """``P = coef * sum(w**2)`` over masked leaves; ``dw = 2 coef w`` (0 elsewhere)."""

    def apply(params):
        return coef * sum(float(np.vdot(w, w)) for w in _masked(params, mask))

    def grad(params):
        return tree_map_with_path(lambda p, w: w * w.dtype.type(2 * coef) if mask(p, w) else np.zeros_like(w), params)

    return Penalty(apply, grad)


def l1(coef: float, mask=weights_only) -> Penalty:
    """``P = coef * sum(|w|)`` over masked leaves; ``dw = coef * sign(w)`` (0 elsewhere)."""

    def apply(params):
        return coef * sum(float(np.abs(w).sum()) for w in _masked(params, mask))

    def grad(params):
        return tree_map_with_path(lambda p, w: np.sign(w) * w.dtype.type(coef) if mask(p, w) else np.zeros_like(w), params)

    return Penalty(apply, grad)


def penalties(*parts: Penalty) -> Penalty | None:
    """The sum of several penalties (e.g. ``penalties(l1(1e-5), l2(1e-4))``); None when given none."""
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    return Penalty(
        lambda params: sum(p.apply(params) for p in parts),
        lambda params: functools.reduce(tree_add, (p.grad(params) for p in parts)),
    )


def _masked(params, mask):
    flags = tree_map_with_path(lambda p, w: mask(p, w), params)
    return [w for w, keep in zip(tree_leaves(params), tree_leaves(flags)) if keep]


__all__ = [
    "Loss",
    "Penalty",
    "loss",
    "mse",
    "binary_cross_entropy",
    "softmax_cross_entropy",
    "categorical_cross_entropy",
    "one_hot",
    "l1",
    "l2",
    "penalties",
    "softmax",
    "log_softmax",
    "LOSSES",
]
