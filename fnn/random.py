"""Explicit random keys, split purely.

A key is a small ``uint32`` array (4 words). Nothing here reads or writes global
random state: the same key always gives the same numbers, and ``split`` derives
children with ``np.random.SeedSequence`` spawn keys, so splitting never
consumes anything.

>>> k = key(0)
>>> a, b = split(k)
>>> bool(np.array_equal(normal(a, (3,)), normal(a, (3,))))
True
>>> bool(np.array_equal(normal(a, (3,)), normal(b, (3,))))
False
"""

from __future__ import annotations

import numpy as np

_WORDS = 4


def key(seed: int) -> np.ndarray:
    """The root key for an integer ``seed`` (>= 0)."""
    seed = int(seed)
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    return np.random.SeedSequence(seed).generate_state(_WORDS, dtype=np.uint32)


def _check(k) -> list[int]:
    k = np.asarray(k)
    if k.shape != (_WORDS,) or k.dtype != np.uint32:
        raise TypeError(f"expected a key (uint32 array of shape ({_WORDS},)), got {k.dtype}{k.shape}")
    return k.tolist()


def split(k, num: int = 2) -> np.ndarray:
    """``num`` independent child keys, shape ``(num, 4)``; ``k`` is not consumed.

    ``None`` splits into ``num`` Nones: ``init(None, shape)`` is a shape-only init.
    """
    if k is None:
        return [None] * num
    words = _check(k)
    return np.stack(
        [np.random.SeedSequence(words, spawn_key=(i,)).generate_state(_WORDS, dtype=np.uint32) for i in range(num)]
    )


def fold_in(k, data: int) -> np.ndarray:
    """A new key mixing ``k`` with the integer ``data`` (e.g. an epoch number)."""
    words = _check(k)
    return np.random.SeedSequence(words + [int(data) & 0xFFFFFFFF, int(data) >> 32]).generate_state(
        _WORDS, dtype=np.uint32
    )


def generator(k) -> np.random.Generator:
    """A fresh ``np.random.Generator`` seeded by ``k`` (only ever used locally)."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(_check(k))))


def uniform(k, shape, low=0.0, high=1.0, dtype=np.float32) -> np.ndarray:
    """Uniform samples in ``[low, high)`` of ``shape`` and ``dtype``."""
    g = generator(k)
    dtype = np.dtype(dtype)
    if dtype in (np.float32, np.float64):
        u = g.random(shape, dtype=dtype)
    else:
        u = g.random(shape).astype(dtype)
    return (u * dtype.type(high - low) + dtype.type(low)).astype(dtype, copy=False)


def normal(k, shape, dtype=np.float32) -> np.ndarray:
    """Standard normal samples of ``shape`` and ``dtype``."""
    g = generator(k)
    dtype = np.dtype(dtype)
    if dtype in (np.float32, np.float64):
        return g.standard_normal(shape, dtype=dtype)
    return g.standard_normal(shape).astype(dtype)


def truncated_normal(k, shape, dtype=np.float32) -> np.ndarray:
    """Standard normal samples redrawn until they fall inside ``[-2, 2]``."""
    g = generator(k)
    out = g.standard_normal(shape)
    bad = np.abs(out) > 2
    while bad.any():
        out[bad] = g.standard_normal(int(bad.sum()))
        bad = np.abs(out) > 2
    return out.astype(dtype)


def bernoulli(k, p: float, shape) -> np.ndarray:
    """Boolean array, each entry True with probability ``p``."""
    return generator(k).random(shape, dtype=np.float32) < np.float32(p)


def permutation(k, n: int) -> np.ndarray:
    """A permutation of ``range(n)`` (int64)."""
    return generator(k).permutation(n)
