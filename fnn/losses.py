"""Losses and penalties with hand-written gradients.

A :class:`Loss` holds three pure functions of a prediction ``z`` (batch first)
and a target ``t``:

- ``apply(z, t, weights=None) -> float``: the loss, averaged over the batch;
- ``grad(z, t, weights=None) -> dz``: ``dL/dz``, same shape and dtype as ``z``;
- ``value_and_grad(z, t, weights=None) -> (float, dz)``: both from one pass.

``weights`` (one number per example, e.g. from ``class_weight`` or
``sample_weight`` in :func:`fnn.fit`) weigh each example's loss: the sum of
``w_i l_i`` divided by the batch size, as Keras reduces them.

A :class:`Penalty` is the same over a parameter pytree: ``apply(params) -> float``,
``grad(params) -> tree``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from fnn.layers import log_softmax, softmax
from fnn.tree import tree_add, tree_leaves, tree_map_with_path


class Loss(NamedTuple):
    apply: Callable
    grad: Callable
    value_and_grad: Callable
    name: str
    #: what the model's outputs are for this loss, and so which metrics and predictions follow (:mod:`fnn.tasks`):
    #: "classification" (logits), "probabilities" (a Softmax output), "binary" (logits of 0/1 targets), "regression".
    task: str = "classification"


def loss(name, value_and_grad, task="classification") -> Loss:
    """A :class:`Loss` from its fused ``value_and_grad(z, t, weights=None)``."""
    return Loss(
        lambda z, t, weights=None: value_and_grad(z, t, weights)[0],
        lambda z, t, weights=None: value_and_grad(z, t, weights)[1],
        value_and_grad,
        name,
        task,
    )


def _row_weights(weights, z):
    """Per-example weights ``(batch,)`` as a column ``(batch, 1, ...)`` broadcasting against ``z``."""
    w = np.asarray(weights, dtype=z.dtype)
    if w.shape != (len(z),):
        raise ValueError(f"weights must hold one number per example, shape ({len(z)},); got {w.shape}")
    return w.reshape((len(z),) + (1,) * (z.ndim - 1))


def _batch(z):
    """``len(z)``, refusing an empty batch (every loss averages over it)."""
    if not len(z):
        raise ValueError(f"the batch is empty (outputs shaped {z.shape}): a loss averages over at least one example")
    return len(z)


def _targets(t, z):
    """Targets ``t`` as ``z``'s dtype and shape (``(n,)`` for ``(n, 1)`` outputs is fine), or an error naming both shapes."""
    t = np.asarray(t, dtype=z.dtype)
    _batch(z)
    try:
        return t.reshape(z.shape)
    except ValueError:
        raise ValueError(f"targets shaped {t.shape} do not fit the model's outputs, shaped {z.shape}") from None


_UNSIGNED = {np.dtype(f"i{n}"): np.dtype(f"u{n}") for n in (1, 2, 4, 8)}


def _check_labels(t, classes, batch):
    """Refuse class labels ``t`` that are not ``batch`` whole numbers in ``0..classes-1``.

    One reduction (about 2 us for a batch of 128, next to a step of about 1 ms): a signed label
    seen as unsigned is huge when negative, so the max catches -1 as well as ``classes``.
    """
    unsigned = _UNSIGNED.get(t.dtype)
    if unsigned is None and t.dtype.kind not in "iu":
        raise ValueError(f"labels must be whole class numbers 0..{classes - 1}, got dtype {t.dtype} (y.astype(int) if they are)")
    if len(t) != batch:
        raise ValueError(f"{len(t)} labels for a batch of {batch} examples")
    if (t if unsigned is None else t.view(unsigned)).max() >= classes or (t.dtype.kind == "i" and unsigned is None and t.min() < 0):
        raise ValueError(f"labels must lie in 0..{classes - 1} (the model has {classes} outputs), found {t.min()}..{t.max()}")


def _class_targets(t, z):
    """``t`` as ``(batch,)`` checked labels or ``(batch, classes)`` rows, for a classification loss on ``z: (batch, classes)``."""
    t, batch = np.asarray(t), _batch(z)
    if t.ndim == 1:
        _check_labels(t, z.shape[1], batch)
    elif t.shape != z.shape:
        hint = ": pass labels as a vector, y.ravel()" if t.ndim == 2 and t.shape[1] == 1 else ""
        raise ValueError(f"labels must be ({batch},) class numbers or ({batch}, {z.shape[1]}) one-hot rows, got shape {t.shape}{hint}")
    return t


def _mse(z, t, weights=None):
    """``L = mean((z - t)**2)`` over all elements; ``dz = 2 (z - t) / z.size``.

    With per-example ``weights`` ``w``: ``L = sum(w_i (z_i - t_i)**2) / z.size``, ``dz_i = 2 w_i (z_i - t_i) / z.size``.
    """
    d = z - _targets(t, z)
    if weights is None:
        return float(np.vdot(d, d)) / d.size, d * z.dtype.type(2.0 / d.size)
    w = _row_weights(weights, z)
    return float((w * d * d).sum()) / d.size, d * w * z.dtype.type(2.0 / d.size)


mse = loss("mse", _mse, "regression")


def _mae(z, t, weights=None):
    """``L = mean(|z - t|)`` over all elements; ``dz = sign(z - t) / z.size`` (0 where ``z == t``).

    With per-example ``weights`` ``w``: ``L = sum(w_i |z_i - t_i|) / z.size``, ``dz_i = w_i sign(z_i - t_i) / z.size``.
    """
    d = z - _targets(t, z)
    w = 1 if weights is None else _row_weights(weights, z)
    return float((w * np.abs(d)).sum()) / d.size, np.sign(d) * w * z.dtype.type(1.0 / d.size)


mae = loss("mae", _mae, "regression")


def _bce_logits(z, t, weights=None):
    """Binary cross-entropy from logits, averaged over all elements.

    ``L = mean(max(z, 0) - z t + log(1 + exp(-|z|)))`` (stable for any ``z``);
    ``dz = (sigmoid(z) - t) / z.size``; per-example ``weights`` scale each row of both.
    """
    t = _targets(t, z)
    if t.min() < 0 or t.max() > 1:
        raise ValueError(f"binary cross-entropy targets must lie in [0, 1] (0/1 labels), found {t.min()}..{t.max()}")
    value = np.maximum(z, 0) - z * t + np.log1p(np.exp(-np.abs(z)))
    s = np.tanh(z * z.dtype.type(0.5)) * z.dtype.type(0.5) + z.dtype.type(0.5)
    if weights is None:
        return float(value.sum()) / z.size, (s - t) * z.dtype.type(1.0 / z.size)
    w = _row_weights(weights, z)
    return float((w * value).sum()) / z.size, (s - t) * w * z.dtype.type(1.0 / z.size)


binary_cross_entropy = loss("binary_cross_entropy", _bce_logits, "binary")


def one_hot(labels, classes: int, dtype=np.float32):
    """Integer labels ``(n,)`` -> ``(n, classes)`` rows with a single 1; labels outside ``0..classes-1`` are refused."""
    labels = np.asarray(labels).ravel()
    if labels.dtype.kind not in "iu":
        raise ValueError(f"labels must be whole class numbers 0..{classes - 1}, got dtype {labels.dtype} (y.astype(int) if they are)")
    if labels.size and (labels.min() < 0 or labels.max() >= classes):
        raise ValueError(f"labels must lie in 0..{classes - 1}, found {labels.min()}..{labels.max()}")
    out = np.zeros((labels.size, classes), dtype)
    out[np.arange(labels.size), labels] = 1
    return out


def _rows(z):
    return np.arange(len(z))


def _softmax_ce(z, t, weights=None):
    """Softmax cross-entropy from logits ``z: (batch, classes)``.

    ``t`` is ``(batch,)`` integer labels or ``(batch, classes)`` one-hot/soft labels.
    ``L = mean over batch of (logsumexp(z) - sum(t * z))``, computed with the
    max shifted out; ``dz = (softmax(z) * sum(t) - t) / batch``, which for
    labels is ``(softmax(z) - onehot) / batch``. Per-example ``weights`` ``w``:
    ``L = sum(w_i l_i) / batch``, each row of ``dz`` times ``w_i``.
    """
    t = _class_targets(t, z)
    batch = len(z)
    m = z.max(axis=1, keepdims=True)
    e = np.exp(z - m)
    s = e.sum(axis=1, keepdims=True)
    lse = np.log(s) + m  # (batch, 1)
    p = e
    p /= s
    inv = z.dtype.type(1.0 / batch)
    if t.ndim == 1:
        rows = _rows(z)
        per = lse[:, 0] - z[rows, t]
        p[rows, t] -= 1
    else:
        t = t.astype(z.dtype, copy=False)
        tsum = t.sum(axis=1, keepdims=True)
        per = (lse * tsum - (t * z).sum(axis=1, keepdims=True))[:, 0]
        p = p * tsum - t
    if weights is not None:
        w = _row_weights(weights, z)
        per = per * w[:, 0]
        p *= w
    p *= inv
    return float(per.sum()) / batch, p  # row-wise first: no cancellation between huge sums


softmax_cross_entropy = loss("softmax_cross_entropy", _softmax_ce)


def _categorical_ce(p, t, weights=None, eps=1e-7):
    """Cross-entropy of probabilities ``p: (batch, classes)`` (e.g. a Softmax layer's output).

    ``L = -mean over batch of sum(t * log(clip(p, eps, 1)))``;
    ``dp = -t / (p * batch)`` where ``p`` is inside the clip range, 0 where clipped;
    per-example ``weights`` scale each row of both.
    Prefer :data:`softmax_cross_entropy` on logits: it is exact and cheaper.
    """
    t = _class_targets(t, p)
    if t.ndim == 1:
        t = one_hot(t, p.shape[1], p.dtype)
    t = t.astype(p.dtype, copy=False)
    batch = len(p)
    pc = np.clip(p, eps, 1.0)
    w = 1 if weights is None else _row_weights(weights, p)
    value = -float((w * t * np.log(pc)).sum()) / batch
    inside = (p >= eps) & (p <= 1.0)
    return value, np.where(inside, -t * w / (pc * batch), 0).astype(p.dtype)


categorical_cross_entropy = loss("categorical_cross_entropy", _categorical_ce, "probabilities")

LOSSES = {
    "mse": mse,
    "mae": mae,
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
    "mae",
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
