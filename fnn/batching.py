"""Minibatches: a seeded shuffle, every example exactly once per epoch.

Data stays as stored (MNIST as uint8: 47 MB rather than 188 MB as float32); each
batch is gathered with ``np.take`` and converted on the way out by ``transform``.
Given a workspace (:mod:`fnn.workspace`), batches are gathered and converted
into its buffers: a loop that owns one makes no batch-sized array after the first
(fresh 400 KB arrays every step page-fault); each batch is then valid until the next.

>>> x, y = np.arange(10, dtype=np.uint8).reshape(5, 2), np.arange(5)
>>> [len(yb) for _, yb in iterate_batches(x, y, 2, key=random.key(0))]
[2, 2, 1]
"""

from __future__ import annotations

import math

import numpy as np

from fnn import random
from fnn.workspace import FRESH


def num_batches(n: int, batch_size: int, drop_last: bool = False) -> int:
    """How many batches one epoch over ``n`` examples has."""
    return n // batch_size if drop_last else math.ceil(n / batch_size)


def epoch_order(n: int, key=None) -> np.ndarray:
    """The order of one epoch: a permutation drawn from ``key``, or ``0..n-1`` without one."""
    return random.permutation(key, n) if key is not None else np.arange(n)


def iterate_batches(x, y, batch_size, key=None, drop_last=False, transform=None, start=0, ws=FRESH, weights=None,
                    augment=None, augment_key=None):
    """Yield ``(transform(x[idx], ws), y[idx])`` for consecutive slices ``idx`` of the epoch's order.

    Args:
      x, y: arrays with the same first dimension ``n``.
      batch_size: rows per batch; the last batch is smaller unless ``drop_last``.
      key: shuffles the order (same key, same order); None keeps the stored order.
      transform: ``transform(xb, ws)`` applied to each gathered batch (e.g. :func:`to_float`).
      start: index of the first batch to yield (to resume mid-epoch).
      ws: where batches are gathered and converted; new arrays by default.
      weights: one weight per example: batches are then ``(x, y, weights[idx])``.
      augment: ``augment(xb, key) -> xb`` applied to each gathered batch before ``transform``
        (random shifts, rotations, ...), with ``key = fold_in(augment_key, b)`` for batch ``b``.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if start < 0:
        raise ValueError(f"start must be >= 0, got {start}")
    n = len(x)
    if len(y) != n or (weights is not None and len(weights) != n):
        raise ValueError(f"x has {n} rows but y has {len(y)}" + ("" if weights is None else f" and weights {len(weights)}"))
    order, x = epoch_order(n, key), np.asarray(x)
    for b in range(start, num_batches(n, batch_size, drop_last)):
        idx = order[b * batch_size : (b + 1) * batch_size]
        xb = np.take(x, idx, axis=0, out=ws.array("gathered", (len(idx),) + x.shape[1:], x.dtype), mode="clip")  # idx is in range
        if augment is not None:
            xb = augment(xb, random.fold_in(augment_key, b))
        xb = transform(xb, ws.child("transform")) if transform is not None else xb
        yield (xb, np.take(y, idx, axis=0)) if weights is None else (xb, np.take(y, idx, axis=0), np.take(weights, idx))


def to_float(x, ws=FRESH, scale=1.0 / 255.0, dtype=np.float32):
    """uint8 pixels -> ``dtype`` in [0, 1], flattened to ``(batch, features)``: ``dtype(x) * dtype(scale)``."""
    x = np.asarray(x)
    out = ws.array("float", (len(x), x[:1].size), dtype)
    np.copyto(out, x.reshape(len(x), -1), casting="unsafe")  # a plain cast: faster than casting inside multiply
    return np.multiply(out, dtype(scale), out=out)
