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


def check_pair(x, y, where: str, num_classes: int | None = None) -> None:
    """Raise :class:`DatasetError` unless ``x`` and ``y`` have one label per example in range."""
    if y.ndim != 1:
        raise DatasetError(f"{where}: labels must be 1-D, got shape {y.shape}")
    if len(x) != len(y):
        raise DatasetError(f"{where}: {len(x)} examples but {len(y)} labels")
    if y.dtype.kind not in "iu":
        raise DatasetError(f"{where}: labels must be integers, got {y.dtype}")
    if len(y) and (y.min() < 0 or (num_classes is not None and y.max() >= num_classes)):
        raise DatasetError(f"{where}: labels must lie in 0..{(num_classes or 1) - 1}, found {y.min()}..{y.max()}")


MAX_CLASSES = 1 << 16  # labels beyond this are a broken file, not a classification problem
FLOAT32_MAX = float(np.finfo(np.float32).max)


def check_features(x, where: str) -> None:
    """Raise :class:`DatasetError` unless ``x`` is ``(n, ...)`` real numbers that float32 holds (finite, in range)."""
    if not isinstance(x, np.ndarray) or x.ndim < 1:
        raise DatasetError(f"{where}: examples must be an array (n, ...), got {type(x).__name__} of shape {np.shape(x)}")
    if x.dtype.kind not in "biuf":
        raise DatasetError(f"{where}: examples must hold real numbers, got dtype {x.dtype}")
    if x.dtype.kind == "f" and x.size:
        for start in range(0, len(x), 4096):  # in chunks: no full-size temporary
            chunk = x[start : start + 4096]
            if not np.isfinite(chunk).all():
                raise DatasetError(f"{where}: examples hold NaN or Inf")
            if np.abs(chunk).max() > FLOAT32_MAX:
                raise DatasetError(f"{where}: examples hold values beyond float32's range (|x| > {FLOAT32_MAX:.3g})")


def class_names(y, where: str) -> list:
    """``["0", "1", ...]`` up to the largest label in ``y``; at most :data:`MAX_CLASSES`."""
    if not len(y):
        return []
    top = int(y.max())
    if top >= MAX_CLASSES:
        raise DatasetError(f"{where}: labels go up to {top}; at most {MAX_CLASSES} classes")
    return [str(i) for i in range(top + 1)]
