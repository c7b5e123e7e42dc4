"""The JSON API: ``POST /api/predict``, ``GET /api/models``, ``GET /api/sample``.

Every client error is a JSON 4xx naming the problem (see ``fnn_web.create_app``
for the handlers): 400 for a malformed body, 413 for a body over
``MAX_CONTENT_LENGTH``, 415 for a content type other than ``application/json``.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
import time

import numpy as np
from flask import Blueprint, current_app, jsonify, request
from werkzeug.exceptions import BadRequest, NotFound, RequestEntityTooLarge, UnsupportedMediaType

from fnn.serving import images
from fnn_web import models, samples

bp = Blueprint("api", __name__, url_prefix="/api")

FIELDS = ("image", "pixels", "model", "compare")
PIXELS = images.SIDE * images.SIDE
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


def pixels_field(value) -> np.ndarray:
    """784 numbers in [0, 1] (flat, or 28 rows of 28) -> float32 ``(784,)``."""
    rows = value if isinstance(value, list) and len(value) == images.SIDE and isinstance(value[0], list) else [value]
    if not all(isinstance(r, list) for r in rows):
        raise BadRequest("'pixels' must be a list of 784 numbers (or 28 lists of 28)")
    flat = [v for r in rows for v in r]
    if len(flat) != PIXELS or len(rows) not in (1, images.SIDE) or any(len(r) != len(rows[0]) for r in rows):
        raise BadRequest(f"'pixels' must hold {PIXELS} numbers (flat, or 28 rows of 28); got {len(flat)}")
    if not all(type(v) in (int, float) for v in flat):
        raise BadRequest("'pixels' must hold only numbers")
    try:
        x = np.array(flat, np.float64)
    except OverflowError:
        raise BadRequest("'pixels' holds a number too large") from None
    if not (np.isfinite(x).all() and x.min() >= 0 and x.max() <= 1):
        raise BadRequest("'pixels' must lie in 0..1")
    return x.astype(np.float32)


def read_input(body):
    """``(x (784,) float32, info)`` from the body's ``image`` or ``pixels``."""
    if ("image" in body) == ("pixels" in body):
        raise BadRequest("send exactly one of 'image' (a PNG or JPEG data URL) or 'pixels' (784 numbers in 0..1)")
    if "image" in body:
        try:
            return images.image_to_mnist(decode_image_field(body["image"]))
        except images.ImageError as e:
            raise BadRequest(f"'image': {e}") from None
    x = pixels_field(body["pixels"])  # already the network's input: used as given
    reason = images.blank_reason(x)
    return x, {"blank": reason is not None, "reason": reason}


def pick_model(name):
    """The loaded model called ``name`` (None: the default); 400 names the loaded ones."""
    reg = models.registry(current_app)
    if name is not None and (not isinstance(name, str) or name not in reg.models):
        raise BadRequest(f"unknown model {name!r:.80}; loaded: {', '.join(reg.models)}")
    return reg.get(name)


def respond(served, x, info, start, compare=False, **extra):
    """The JSON answer: the model's answer, ``blank``/``reason``, ``preview`` (28×28), ``ms``; all models' if ``compare``."""
    blank = info["blank"]
    out = models.blank_answer(served) if blank else models.answer(served, x)
    out.update(blank=blank, reason=info["reason"], preview=np.round(x.reshape(28, 28), 3).tolist(), **extra)
    if compare:
        out["compare"] = [
            dict(models.blank_answer(m) if blank else models.answer(m, x), test_accuracy=m.test_accuracy)
            for m in models.registry(current_app).models.values()
        ]
    out["ms"] = round((time.perf_counter() - start) * 1000, 2)
    return jsonify(out)


@bp.post("/predict")
def predict():
    """Classify a drawing: ``{"image": data URL}`` or ``{"pixels": [...]}``, optional ``"model"``, ``"compare": true``."""
    start = time.perf_counter()
    body = read_body()
    served = pick_model(body.get("model"))
    compare = body.get("compare", False)
    if not isinstance(compare, bool):
        raise BadRequest("'compare' must be true or false")
    x, info = read_input(body)
    return respond(served, x, info, start, compare)


@bp.get("/models")
def list_models():
    """Every loaded model with its classes and test accuracy; the first is the default."""
    reg = models.registry(current_app)
    return jsonify(models=[m.describe() for m in reg.models.values()], default=reg.default)


@bp.get("/sample")
def sample():
    """A test image (``?index=``, else random) with its true label and the model's (``?model=``) answer."""
    start = time.perf_counter()
    served = pick_model(request.args.get("model"))
    dataset = served.dataset or "mnist"
    try:
        x_test, y_test = samples.test_split(dataset)
    except samples.SampleError as e:
        raise NotFound(str(e)) from None
    index = request.args.get("index")
    if index is None:
        index = secrets.randbelow(len(x_test))
    elif not (re.fullmatch(r"[0-9]{1,9}", index) and int(index) < len(x_test)):
        raise BadRequest(f"'index' must be an integer in 0..{len(x_test) - 1}, got {index!r:.40}")
    index = int(index)
    x = x_test[index].reshape(-1).astype(np.float32) * np.float32(1 / 255)
    truth = int(y_test[index])
    info = {"blank": False, "reason": None}
    return respond(served, x, info, start, request.args.get("compare") == "1", index=index, dataset=dataset,
                   true_label=truth, true_class=served.classes[truth] if truth < len(served.classes) else str(truth))
