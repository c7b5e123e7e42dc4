"""The JSON API: ``POST /api/predict``, ``GET /api/models``, ``GET /api/models/NAME``, ``GET /api/sample``.

Every client error is a JSON 4xx naming the problem (see ``fnn_web.create_app``
for the handlers): 400 for a malformed body, 413 for a body over
``MAX_CONTENT_LENGTH``, 415 for a content type other than ``application/json``.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import time

import numpy as np
from flask import Blueprint, current_app, jsonify, request
from werkzeug.exceptions import BadRequest, NotFound, RequestEntityTooLarge, UnsupportedMediaType

from fnn.serving import images, pipelines
from fnn_web import models, samples

bp = Blueprint("api", __name__, url_prefix="/api")

FIELDS = ("image", "pixels", "model", "compare")
_DATA_URL = re.compile(r"data:image/(png|jpeg|jpg);base64,", re.I)


def _reject_constant(name):
    raise ValueError(f"{name} is not a number JSON allows")


def read_body() -> dict:
    """The request's JSON object; 415 for another content type, 400 for anything but a JSON object."""
    if request.mimetype != "application/json":
        raise UnsupportedMediaType(f"Content-Type must be application/json, got {request.mimetype or 'none'!r:.60}")
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    if request.content_length is not None and request.content_length > limit:
        raise RequestEntityTooLarge(f"the body is {request.content_length} bytes; the limit is {limit}")
    data = request.get_data(cache=False)  # also 413 past the limit when no length was declared
    try:
        body = json.loads(data, parse_constant=_reject_constant)
    except RecursionError:
        raise BadRequest("the JSON body is nested too deeply") from None
    except ValueError as e:  # JSONDecodeError, UnicodeDecodeError, huge integers
        raise BadRequest(f"the body is not valid JSON: {str(e):.200}") from None
    if not isinstance(body, dict):
        raise BadRequest(f"the body must be a JSON object, got {type(body).__name__}")
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        raise BadRequest(f"unknown field {unknown[0]!r:.60}; fields are {', '.join(FIELDS)}")
    return body


def decode_image_field(value) -> bytes:
    """``"data:image/png;base64,..."`` (or bare base64) -> the image bytes."""
    if not isinstance(value, str):
        raise BadRequest(f"'image' must be a string (a PNG or JPEG data URL), got {type(value).__name__}")
    if value.startswith("data:"):
        match = _DATA_URL.match(value)
        if not match:
            raise BadRequest("'image' must be a PNG or JPEG data URL (data:image/png;base64,... or data:image/jpeg;base64,...)")
        value = value[match.end() :]
    try:
        data = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest("'image' is not valid base64") from None
    if not data:
        raise BadRequest("'image' is empty")
    return data


def pixels_field(value, pipeline) -> np.ndarray:
    """The model's preprocessed input as numbers in [0, 1] -> float32 ``pipeline.image_shape``.

    Flat or nested as the image is (784 numbers or 28 rows of 28; 3072 or 32 rows of 32 of 3); a
    colour model also takes a gray image (1024 numbers or 32 rows of 32), seen as R = G = B.
    """
    shape = tuple(pipeline.image_shape)
    shapes = [shape] + ([shape[:2]] if len(shape) == 3 else [])
    want = _shape_words(shape) + "".join(f"; or {_shape_words(s)} (gray)" for s in shapes[1:])
    if not isinstance(value, list):
        raise BadRequest(f"'pixels' must be a list of {want}")
    flat = None
    for s in shapes:
        flat = _flatten(value, (math.prod(s),)) or _flatten(value, s)
        if flat is not None:
            break
    if flat is None:
        raise BadRequest(f"'pixels' must hold {want}; got a list of {len(value)}")
    if not all(type(v) in (int, float) for v in flat):
        raise BadRequest("'pixels' must hold only numbers")
    try:
        x = np.array(flat, np.float64)
    except OverflowError:
        raise BadRequest("'pixels' holds a number too large") from None
    if not (np.isfinite(x).all() and x.min() >= 0 and x.max() <= 1):
        raise BadRequest("'pixels' must lie in 0..1")
    x = x.astype(np.float32).reshape(s)
    return np.repeat(x[..., None], 3, axis=2) if len(s) < len(shape) else x


def _shape_words(shape) -> str:
    """``(28, 28)`` -> "784 numbers (flat, or 28 rows of 28)"."""
    nested = " of ".join(f"{d} rows" if i == 0 else str(d) for i, d in enumerate(shape))
    return f"{math.prod(shape)} numbers (flat, or {nested})" if len(shape) > 1 else f"{shape[0]} numbers"


def _flatten(value, shape):
    """``value`` as a flat list when it is lists nested exactly as ``shape``, else None."""
    if not isinstance(value, list) or len(value) != shape[0]:
        return None
    if len(shape) == 1:
        return None if any(isinstance(v, list) for v in value) else value
    out = []
    for v in value:
        part = _flatten(v, shape[1:])
        if part is None:
            return None
        out.extend(part)
    return out


def read_input(body, served):
    """``(x, info)`` from the body's ``image`` or ``pixels``: ``x`` float32 ``served.pipeline.image_shape``."""
    pipeline = served.pipeline
    if ("image" in body) == ("pixels" in body):
        raise BadRequest(f"send exactly one of 'image' (a PNG or JPEG data URL) or 'pixels' ({_shape_words(pipeline.image_shape)} "
                         "in 0..1)")
    if "image" in body:
        try:
            return pipeline.preprocess(decode_image_field(body["image"]))
        except images.ImageError as e:
            raise BadRequest(f"'image': {e}") from None
    x = pixels_field(body["pixels"], pipeline)  # already the network's input: used as given
    reason = pipeline.blank_reasons(x[None])[0]
    return x, {"blank": reason is not None, "reason": reason}


def pick_model(name):
    """The loaded model called ``name`` (None: the default); 400 names the loaded ones."""
    reg = models.registry(current_app)
    if name is not None and (not isinstance(name, str) or name not in reg.models):
        raise BadRequest(f"unknown model {name!r:.80}; loaded: {', '.join(reg.models)}")
    return reg.get(name)


def rounded(a) -> list:
    return np.round(np.asarray(a, np.float64), 3).tolist()


def respond(served, x, info, start, compare=False, **extra):
    """The JSON answer: the model's answer, ``blank``/``reason``, ``kind``, ``preview`` (what the model sees), ``ms``;
    with ``compare``, the answers of every model that takes the same input (its group)."""
    blank = info["blank"]
    out = models.blank_answer(served) if blank else models.answer(served, x)
    out.update(blank=blank, reason=info["reason"], kind=served.kind, preview=rounded(served.pipeline.view(x)), **extra)
    if compare:
        out["compare"] = [
            dict(models.blank_answer(m) if blank else models.answer(m, x), test_accuracy=m.test_accuracy)
            for m in models.registry(current_app).group(served)
        ]
    out["ms"] = round((time.perf_counter() - start) * 1000, 2)
    return jsonify(out)


@bp.post("/predict")
def predict():
    """Classify an image: ``{"image": data URL}`` or ``{"pixels": [...]}``, optional ``"model"``, ``"compare": true``."""
    start = time.perf_counter()
    body = read_body()
    served = pick_model(body.get("model"))
    compare = body.get("compare", False)
    if not isinstance(compare, bool):
        raise BadRequest("'compare' must be true or false")
    x, info = read_input(body, served)
    return respond(served, x, info, start, compare)


@bp.get("/models")
def list_models():
    """Every loaded model (classes, test accuracy, kind of input, summary); the first is the default."""
    reg = models.registry(current_app)
    kinds = [{"kind": k, "title": pipelines.TITLES[k]} for k in pipelines.KINDS]
    return jsonify(models=[m.describe() for m in reg.models.values()], default=reg.default, kinds=kinds)


@bp.get("/models/<name>")
def model_details(name):
    """One model as ``/api/models`` lists it, with its test ``confusion`` matrix (computed on first request)."""
    reg = models.registry(current_app)
    if name not in reg.models:
        raise NotFound(f"unknown model {name!r:.80}; loaded: {', '.join(reg.models)}")
    return jsonify(models.details(current_app, reg.models[name]))


def _whole(name, value, n):
    """A query parameter that must be a whole number in ``0..n-1``."""
    if not (re.fullmatch(r"[0-9]{1,9}", value) and int(value) < n):
        raise BadRequest(f"'{name}' must be an integer in 0..{n - 1}, got {value!r:.40}")
    return int(value)


@bp.get("/sample")
def sample():
    """A test image (``?index=``; else random, of class ``?class=`` if given) with its true label and the model's
    (``?model=``) answer; ``image`` is the test image itself as a PNG data URL."""
    start = time.perf_counter()
    served = pick_model(request.args.get("model"))
    try:
        x_test, y_test, _ = samples.split_of(served)
        index, label = request.args.get("index"), request.args.get("class")
        index = None if index is None else _whole("index", index, len(x_test))
        label = None if label is None else _whole("class", label, len(served.classes))
        index = samples.pick(served, index, label)
    except samples.SampleError as e:
        raise NotFound(str(e)) from None
    stored = x_test[index]
    x = samples.as_input(stored)
    truth = int(y_test[index])
    info = {"blank": False, "reason": None}  # a test image is always answered
    return respond(served, x, info, start, request.args.get("compare") == "1", index=index, dataset=served.dataset,
                   true_label=truth, true_class=served.classes[truth] if truth < len(served.classes) else str(truth),
                   image=samples.png_url(stored))
