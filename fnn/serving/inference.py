"""Predictions for files: images (PNG/JPEG, preprocessed as the model's data were: :mod:`fnn.serving.pipelines`) and ``.npy`` arrays.

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
    """Input width of a loaded model: the numbers in one example (``prod(input_shape[1:])``)."""
    import math

    return math.prod(int(d) for d in loaded.input_shape[1:])


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


def pipeline_of(loaded):
    """The model's :class:`fnn.serving.pipelines.Pipeline`; :class:`InputError` when its metadata declares one that does not fit."""
    from fnn.serving import pipelines

    try:
        return pipelines.pipeline_for(loaded.metadata, loaded.input_shape)
    except pipelines.PipelineError as e:
        raise InputError(f"the model's preprocessing: {e}") from None


def read_inputs(path, loaded):
    """``(x (n, ...) float32, info)`` for one file, as the model takes it: images get the model's preprocessing
    (the pad's, :mod:`fnn.serving.pipelines`), arrays its stored standardization."""
    from fnn.serving import images, pipelines

    path = os.fspath(path)
    features = features_of(loaded)
    if path.lower().endswith(IMAGE_SUFFIXES):
        pipeline = pipeline_of(loaded)
        try:
            data = images.read_image_file(path)
            x, info = pipeline.preprocess(data)
        except images.ImageError as e:
            raise InputError(str(e) if str(e).startswith(path) else f"{path}: {e}") from None
        except pipelines.PipelineError as e:
            raise InputError(f"{path}: {e}; give .npy arrays") from None
        return pipeline.to_model(x[None]), [info]
    if path.lower().endswith(".npy"):
        x = read_npy(path, features)
        infos = [{"blank": r is not None, "reason": r} for r in blank_rows(x, loaded.metadata, loaded.input_shape)]
        return standardize(x, loaded.metadata).reshape(len(x), *loaded.input_shape[1:]), infos
    raise InputError(f"{path}: unsupported file type; give PNG/JPEG images or .npy arrays")


def blank_rows(x, metadata, input_shape=None) -> list:
    """Why each row of ``x`` ``(n, features)`` (before standardization) is blank, or None, as the pad judges.

    The model's pipeline (:mod:`fnn.serving.pipelines`, from its metadata and ``input_shape``, by
    default ``(-1, features)``) decides: digits get the pad's ink test (nothing drawn, or too little
    ink to read), clothing the same test, photos a test for one flat colour; any other model only
    calls an all-zero row blank.
    """
    from fnn.serving import pipelines

    try:
        pipeline = pipelines.pipeline_for(metadata, input_shape or (-1, x.shape[1]))
    except pipelines.PipelineError:
        pipeline = pipelines.Pipeline("none", None, (-1, x.shape[1]))
    return pipeline.blank_reasons(x)


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
