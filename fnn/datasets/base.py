"""The :class:`Dataset` record every loader returns, and the errors loaders raise."""

from __future__ import annotations

import attrs
import numpy as np


class DatasetError(ValueError):
    """A data file is missing, corrupt, or not in the format its name promises.

    The message names the file and the problem.
    """


class ChecksumError(DatasetError):
    """A file's size or MD5 digest is not the pinned one."""


class DownloadError(DatasetError):
    """Every mirror failed; ``attempts`` holds ``(url, what it answered)`` for each."""

    def __init__(self, message, attempts=()):
        super().__init__(message)
        self.attempts = list(attempts)


@attrs.frozen(eq=False)
class Dataset:
    """One dataset, both splits, as stored (images stay uint8).

    Attributes:
      name: ``"mnist"``, ``"fashion-mnist"``, ``"cifar10"``, or the user file's name.
      x_train: ``(n_train, *shape)``, e.g. MNIST ``(60000, 28, 28)`` uint8, CIFAR-10 ``(50000, 32, 32, 3)``.
      y_train: ``(n_train,)`` integer labels in ``0 .. len(classes) - 1``.
      x_test, y_test: the same for the test split (empty when the user's data has none).
      classes: class names; label ``i`` is ``classes[i]``.
      source: which source served, e.g. ``"package copy /.../fnn/datasets/data/mnist"``.
      files: file name -> ``{"md5": ..., "size": ...}`` of its uncompressed contents.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: list
    source: str
    files: dict

    @property
    def features(self) -> int:
        """Values in one example: the product of ``x_train.shape[1:]`` (784 for MNIST)."""
        return int(np.prod(self.x_train.shape[1:], dtype=np.int64))

    def class_counts(self, split: str = "train") -> np.ndarray:
        """Examples per class in ``split`` (``"train"`` or ``"test"``), shape ``(len(classes),)``."""
        y = {"train": self.y_train, "test": self.y_test}[split]
        return np.bincount(y, minlength=len(self.classes))[: len(self.classes)]


MAX_CLASSES = 1 << 16  # labels beyond this are a broken file, not a classification problem
FLOAT32_MAX = float(np.finfo(np.float32).max)


def _show(v) -> str:
    """A label value as a person writes it: ``3`` for ``3.0``, ``0.5``, ``nan``."""
    v = v.item() if hasattr(v, "item") else v
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() and abs(v) < 1e15 else f"{v:g}"
    return str(v)


def check_labels(y, where: str, num_classes: int | None = None) -> np.ndarray:
    """``y`` as int64 class indices ``(n,)``; a :class:`DatasetError` naming the first problem otherwise.

    Accepted: any integer dtype; ``bool`` (``False``/``True`` are 0/1); floats holding whole numbers
    only (``1.0``, as ``np.loadtxt`` gives); shape ``(n,)`` or ``(n, 1)``. Refused: other shapes
    (one-hot ``(n, k)`` included), other dtypes, fractions, NaN or Inf, negative values, and values
    from ``num_classes`` on (without it, from :data:`MAX_CLASSES` on) -- all checked in ``y``'s own
    dtype, before the conversion, so a ``uint64`` of ``2**63`` cannot wrap to a negative index.
    """
    if not isinstance(y, np.ndarray):
        raise DatasetError(f"{where}: labels must be an array, got {type(y).__name__}")
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        hint = "; one-hot? pass y.argmax(1)" if y.ndim == 2 else ""
        raise DatasetError(f"{where}: labels must be a 1-D array of class indices (or (n, 1)), got shape {y.shape}{hint}")
    kind = y.dtype.kind
    if kind == "f":
        bad = ~np.isfinite(y) | (y != np.floor(y))
        if bad.any():
            raise DatasetError(f"{where}: labels must be integers, found {_show(y[bad][0])} ({y.dtype})")
    elif kind not in "biu":
        raise DatasetError(f"{where}: labels must be integers, got {y.dtype}")
    if len(y):
        low, high = y.min(), y.max()
        if low < 0:
            raise DatasetError(f"{where}: labels must be >= 0, found {_show(low)}")
        if num_classes is not None and high >= num_classes:
            raise DatasetError(f"{where}: labels must lie in 0..{num_classes - 1}, found {_show(low)}..{_show(high)}")
        if high >= MAX_CLASSES:
            raise DatasetError(f"{where}: labels go up to {_show(high)}; at most {MAX_CLASSES} classes")
    return y.astype(np.int64)


def check_pair(x, y, where: str, num_classes: int | None = None) -> np.ndarray:
    """:func:`check_labels` of ``y``, which must hold one label per example of ``x``; returns the labels."""
    y = check_labels(y, where, num_classes)
    if len(x) != len(y):
        raise DatasetError(f"{where}: {len(x)} examples but {len(y)} labels")
    return y


def check_features(x, where: str, allow_empty: bool = False) -> None:
    """Raise :class:`DatasetError` unless ``x`` is ``(n, ...)`` real numbers that float32 holds (finite, in range).

    Each example must hold at least one value; ``n`` may be 0 only with ``allow_empty`` (a test split).
    """
    if not isinstance(x, np.ndarray) or x.ndim < 1:
        raise DatasetError(f"{where}: examples must be an array (n, ...), got {type(x).__name__} of shape {np.shape(x)}")
    if 0 in x.shape[1:]:
        raise DatasetError(f"{where}: examples hold no values: shape {x.shape}")
    if not len(x) and not allow_empty:
        raise DatasetError(f"{where}: no examples: shape {x.shape}")
    if x.dtype.kind not in "biuf":
        raise DatasetError(f"{where}: examples must hold real numbers, got dtype {x.dtype}")
    if x.dtype.kind == "f" and x.size:
        for start in range(0, len(x), 4096):  # in chunks: no full-size temporary
            chunk = x[start : start + 4096]
            if not np.isfinite(chunk).all():
                raise DatasetError(f"{where}: examples hold NaN or Inf")
            if np.abs(chunk).max() > FLOAT32_MAX:
                raise DatasetError(f"{where}: examples hold values beyond float32's range (|x| > {FLOAT32_MAX:.3g})")


def class_names(y) -> list:
    """``["0", "1", ...]`` up to the largest label in ``y`` (labels checked by :func:`check_labels`)."""
    return [str(i) for i in range(int(y.max()) + 1)] if len(y) else []
