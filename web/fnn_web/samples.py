"""Test images for ``GET /api/sample``: each dataset's test split, read once on first use."""

from __future__ import annotations

import threading

_lock = threading.Lock()
_cache = {}


class SampleError(LookupError):
    """No test images for a dataset."""


def test_split(name: str):
    """``(x_test, y_test)`` of dataset ``name`` via :func:`fnn.datasets.load`, cached for the process."""
    with _lock:
        if name not in _cache:
            from fnn import datasets

            try:
                data = datasets.load(name)
            except (ValueError, KeyError, OSError) as e:
                raise SampleError(f"no test images for dataset {name!r:.60} ({str(e):.200})") from None
            if len(data.x_test) == 0 or data.x_test.shape[1:] != (28, 28):
                raise SampleError(f"dataset {name!r:.60} has no 28x28 test images")
            _cache[name] = (data.x_test, data.y_test)
        return _cache[name]
