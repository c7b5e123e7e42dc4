"""Preprocessing applied per batch: scale to [0, 1], grayscale, flatten, standardize.

Data stays uint8 in memory; :func:`make_transform` builds the function that
turns one drawn batch into float32, ``transform(x, ws=FRESH)`` (pass it to
:func:`fnn.batching.iterate_batches`, which gives it a workspace of its own). Standardization statistics come from
the training split only (:func:`standardize_stats`, read in chunks).

>>> x = np.full((2, 2, 2), 255, np.uint8)
>>> make_transform()(x)
array([[1., 1., 1., 1.],
       [1., 1., 1., 1.]], dtype=float32)
"""

from __future__ import annotations

import numpy as np

from fnn.workspace import FRESH

LUMA = np.array([0.299, 0.587, 0.114], np.float32)  # ITU-R BT.601 weights of R, G, B
MIN_STD = 1e-6


def scale(x, out=None) -> np.ndarray:
    """uint8 ``x`` -> float32 in [0, 1]; any other dtype -> float32 as it is. Same shape; into ``out`` when given."""
    out = np.empty(np.shape(x), np.float32) if out is None else out
    np.copyto(out, x, casting="unsafe")
    if x.dtype == np.uint8:
        out *= np.float32(1 / 255)
    return out


def rgb_to_gray(x) -> np.ndarray:
    """``(n, h, w, 3)`` RGB -> ``(n, h, w)`` float32 luma, in the input's units."""
    if x.ndim != 4 or x.shape[-1] != 3:
        raise ValueError(f"grayscale needs (n, h, w, 3) colour images, got shape {x.shape}")
    return x @ LUMA


def flatten(x) -> np.ndarray:
    """``(n, ...)`` -> ``(n, features)``."""
    return x.reshape(len(x), -1)


def make_transform(flatten: bool = True, grayscale: bool = False, mean=None, std=None):
    """A function from one stored batch ``(n, ...)`` to float32 ``(n, features)`` (or ``(n, ...)``).

    Steps, in order: scale to [0, 1], grayscale (CIFAR), flatten, then
    ``(x - mean) / std`` when statistics from :func:`standardize_stats` are given.
    """
    if (mean is None) != (std is None):
        raise ValueError("give both mean and std, or neither")

    def transform(x, ws=FRESH):
        """One batch -> float32, into ``ws.array("x", ...)`` (new by default)."""
        out = scale(x, out=ws.array("x", np.shape(x), np.float32))
        if grayscale:
            out = rgb_to_gray(out)
        if flatten:
            out = out.reshape(len(out), -1)
        if mean is not None:
            out -= mean
            out /= std
        return out

    return transform


def standardize_stats(x, flatten: bool = True, grayscale: bool = False, chunk: int = 4096) -> tuple:
    """Per-feature ``(mean, std)`` (float32) of ``make_transform(flatten, grayscale)(x)``.

    Computed from the training split only, ``chunk`` rows at a time in float64
    (never a float copy of the whole set). A constant feature gets std 1.
    """
    transform = make_transform(flatten, grayscale)
    n, mean, m2 = 0, 0.0, 0.0
    for start in range(0, len(x), chunk):
        c = transform(x[start : start + chunk]).astype(np.float64)
        k, c_mean = len(c), c.mean(axis=0)
        c_m2 = ((c - c_mean) ** 2).sum(axis=0)
        delta, total = c_mean - mean, n + k
        mean = mean + delta * (k / total)
        m2 = m2 + c_m2 + delta**2 * (n * k / total)
        n = total
    if n == 0:
        raise ValueError("standardize_stats needs at least one example")
    std = np.sqrt(m2 / n)
    std[std < MIN_STD] = 1.0
    return mean.astype(np.float32), std.astype(np.float32)
