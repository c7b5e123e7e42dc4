"""Test images for ``GET /api/sample`` and the confusion matrix: each dataset's test split, read once on first use.

A model's test images come from its dataset (``ServedModel.data``: a name fnn
knows, or the path of the user's data its run was trained on) and must have the
shape its pipeline gives (28×28 gray, 32×32×3 colour).
"""

from __future__ import annotations

import base64
import io
import threading

import numpy as np

_lock = threading.Lock()
_cache = {}  # dataset -> (x_test, y_test, {class: indices})


class SampleError(LookupError):
    """No test images for a model (or none of a class)."""


def test_split(name: str):
    """``(x_test, y_test, by_class)`` of dataset ``name`` via :func:`fnn.datasets.load`, cached for the process;
    ``by_class[k]`` holds the indices of class ``k``."""
    with _lock:
        if name not in _cache:
            from fnn import datasets

            try:
                data = datasets.load(name)
            except (ValueError, KeyError, OSError) as e:
                raise SampleError(f"no test images for dataset {name!r:.60} ({str(e):.200})") from None
            if len(data.x_test) == 0:
                raise SampleError(f"dataset {name!r:.60} has no test split")
            y = np.asarray(data.y_test).reshape(-1)
            by_class = {int(k): np.flatnonzero(y == k) for k in np.unique(y)}
            _cache[name] = (data.x_test, y, by_class)
        return _cache[name]


def test_images(served):
    """``(x_test, y_test)`` of ``served``'s dataset; :class:`SampleError` when it has none of the model's input shape."""
    x, y, _ = split_of(served)
    return x, y


def split_of(served):
    """``test_split`` of the model's dataset, checked against its pipeline's image shape."""
    if served.data is None:
        raise SampleError(f"no test images for model {served.name!r}: its dataset {served.dataset!r:.60} cannot be found")
    x, y, by_class = test_split(served.data)
    shape = served.pipeline.image_shape
    if x.shape[1:] != tuple(shape):
        raise SampleError(f"the test images of {served.data!r:.60} are {'x'.join(map(str, x.shape[1:]))}; "
                          f"model {served.name!r} reads {'x'.join(map(str, shape))} images")
    return x, y, by_class


def pick(served, index=None, label=None, rng=None) -> int:
    """A test image's index: ``index`` itself (checked by the caller), else a random one, of class ``label`` if given."""
    x, y, by_class = split_of(served)
    if index is not None:
        return index
    pool = by_class.get(label, np.arange(0)) if label is not None else None
    if label is not None and len(pool) == 0:
        raise SampleError(f"no test image of class {served.classes[label]!r} in {served.data!r:.60}")
    import secrets

    return int(pool[secrets.randbelow(len(pool))]) if pool is not None else secrets.randbelow(len(x))


def as_input(stored) -> np.ndarray:
    """Stored test images (uint8, or floats in [0, 1]) -> float32 in [0, 1], as training scaled them."""
    from fnn.datasets.transforms import scale

    return scale(np.asarray(stored))


def png_url(stored) -> str:
    """One stored test image ``(H, W)`` or ``(H, W, 3)`` as a PNG data URL, at its own size."""
    from PIL import Image

    a = np.asarray(stored)
    if a.dtype != np.uint8:
        a = np.round(np.clip(np.asarray(a, np.float64), 0, 1) * 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
