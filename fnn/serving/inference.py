"""Predictions for files: images (PNG/JPEG, preprocessed like MNIST) and ``.npy`` arrays.

>>> import fnn, numpy as np
>>> model = fnn.mlp([4, 3])
>>> _, params = model.init(fnn.random.key(0), (-1, 4))
>>> rows = top_k(fnn.predict_proba(model, params, np.ones((1, 4), np.float32)), 2, ["a", "b", "c"])
>>> [len(r) for r in rows]
[2]
"""

from __future__ import annotations

import os

import numpy as np

from fnn import layers

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
MAX_NPY_BYTES = 1 << 30


class InputError(ValueError):
    """An input file cannot be used with this model; the message names the file."""


def features_of(loaded) -> int:
    """Input width of a loaded model (``input_shape[-1]``)."""
    return int(loaded.input_shape[-1])


def standardize(x, metadata):
    """Apply the model's stored standardization (``preprocessing.mean/std``), if any."""
    from fnn.serialization import standardization

    mean, std = standardization(metadata)
    if mean is not None:
        x = (x - mean) / std
    return x.astype(np.float32, copy=False)


def read_npy(path, features: int):
    """A ``.npy`` file as float32 ``(n, features)``: one example or a batch, flat or as images.

    uint8 arrays are scaled by 1/255. Object arrays are refused (never unpickled);
    a header declaring other than the data the file holds is refused before
    anything is allocated.
    """
    from fnn.serialization import npy_header, open_regular

    try:
        with open_regular(path, InputError, "a .npy file") as f:
            size = os.fstat(f.fileno()).st_size
            if size > MAX_NPY_BYTES:
                raise InputError(f"{path}: larger than {MAX_NPY_BYTES >> 20} MB")
            shape, dtype, data = npy_header(f)
            if dtype.hasobject:
                raise InputError(f"{path}: holds Python objects, which are never unpickled; expected numbers")
            if f.tell() + data != size:
                raise InputError(f"{path}: its header declares {dtype}{list(shape)} ({data} bytes), the file holds {size - f.tell()}")
            f.seek(0)
            a = np.load(f, allow_pickle=False)
    except InputError:
        raise
    except (ValueError, OSError, EOFError) as e:
        reason = (str(e).splitlines() or [type(e).__name__])[0] if not isinstance(e, OSError) or not e.strerror else e.strerror
        raise InputError(f"{path}: not a readable .npy array ({reason})") from None
    if not isinstance(a, np.ndarray) or a.dtype.kind not in "uif":
        raise InputError(f"{path}: holds {getattr(a, 'dtype', type(a).__name__)}, expected numbers")
    if a.size % features or a.size == 0:
        raise InputError(f"{path}: shape {a.shape} does not hold examples of {features} features")
    if a.dtype.kind == "f" and not (np.isfinite(a).all() and np.abs(a).max() <= np.finfo(np.float32).max):
        raise InputError(f"{path}: holds NaN or Inf, or values beyond float32's range")
    x = np.array(a, np.float32).reshape(-1, features)
    if a.dtype == np.uint8:
        x *= np.float32(1 / 255)
    return x


def read_inputs(path, loaded):
    """``(x (n, features) float32, info)`` for one file; images get MNIST-style preprocessing."""
    from fnn.serving import images

    path = os.fspath(path)
    features = features_of(loaded)
    if path.lower().endswith(IMAGE_SUFFIXES):
        if features != 784:
            raise InputError(f"{path}: images are preprocessed to 28x28 = 784 features, but the model takes {features}")
        try:
            x, info = images.load_image_file(path)
        except images.ImageError as e:
            raise InputError(str(e)) from None
        return standardize(x[None, :], loaded.metadata), [info]
    if path.lower().endswith(".npy"):
        x = read_npy(path, features)
        infos = [{"blank": r is not None, "reason": r} for r in blank_rows(x, loaded.metadata)]
        return standardize(x, loaded.metadata), infos
    raise InputError(f"{path}: unsupported file type; give PNG/JPEG images or .npy arrays")


def blank_rows(x, metadata) -> list:
    """Why each row of ``x`` ``(n, features)`` (before standardization) is blank, or None, as the pad judges.

    A model of grayscale images (``preprocessing.image_shape`` ``(H, W)``, or 784 features)
    gets the pad's ink test (:func:`fnn.serving.images.blank_reasons`: nothing drawn, or too
    little ink to read); any other model only calls an all-zero row blank.
    """
    from fnn.serving import images

    shape = (metadata.get("preprocessing") or {}).get("image_shape") or ([28, 28] if x.shape[1] == 784 else None)
    if shape is not None and len(shape) == 2 and shape[0] * shape[1] == x.shape[1]:
        return images.blank_reasons(x.reshape(len(x), *shape))
    return ["all zeros" if z else None for z in (~x.any(axis=1)).tolist()]


def top_k(probs, k, classes=None):
    """For each row of ``probs (n, C)``: the ``k`` most likely ``{"label", "class", "probability"}``."""
    k = min(k, probs.shape[1])
    order = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    names = classes or [str(i) for i in range(probs.shape[1])]
    return [
        [{"label": int(j), "class": names[j], "probability": float(p[j])} for j in row] for p, row in zip(probs, order)
    ]


def predict_files(loaded, paths, k=3):
    """Predictions for every file: a list of ``{"file", "index", "blank", "reason", "top": [...]}``.

    A blank input (``reason`` says why: ``"nothing drawn"``, ``"too little ink to read"``,
    ``"all zeros"``) gets no labels (``top`` is ``[]``) rather than a confident guess.
    """
    out = []
    for path in paths:
        x, infos = read_inputs(path, loaded)
        probs = layers.softmax(layers.apply_model(loaded.model, loaded.params, x, state=loaded.state if loaded.model.stateful else None))
        for i, (info, top) in enumerate(zip(infos, top_k(probs, k, loaded.metadata.get("classes")))):
            blank = bool(info.get("blank"))
            out.append({"file": os.fspath(path), "index": i, "blank": blank, "reason": info.get("reason"),
                        "top": [] if blank else top})
    return out
