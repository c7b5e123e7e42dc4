"""A stratified, seeded validation split carved from the training set.

>>> y = np.array([0] * 10 + [1] * 20)
>>> train_idx, val_idx = train_val_split(y, 0.1, random.key(0))
>>> len(train_idx), len(val_idx), int((y[val_idx] == 1).sum())
(27, 3, 2)
"""

from __future__ import annotations

import numpy as np

from fnn import random


def train_val_split(y, fraction: float, key) -> tuple:
    """Indices ``(train_idx, val_idx)`` into the *training* labels ``y``, both sorted int64.

    Each class gives ``round(fraction * its count)`` examples to validation,
    chosen by the explicit ``key`` (same key, same split), so every class
    keeps its share. Record ``val_idx`` (or the key) to repeat a run exactly.

    Args:
      y: ``(n,)`` integer labels of the training split (never the test split).
      fraction: share of each class that goes to validation, in (0, 1).
      key: a key from :func:`fnn.random.key`.
    """
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"y must be 1-D labels, got shape {y.shape}")
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must lie strictly between 0 and 1, got {fraction}")
    if key is None:
        raise TypeError("train_val_split needs an explicit key, e.g. fnn.random.key(0)")
    order = random.permutation(key, len(y))
    shuffled = y[order]
    val = [order[shuffled == c][: int(np.floor(fraction * np.sum(shuffled == c) + 0.5))] for c in np.unique(y)]
    is_val = np.zeros(len(y), bool)
    is_val[np.concatenate(val) if val else []] = True
    return np.flatnonzero(~is_val), np.flatnonzero(is_val)
