"""The drawing pad: a Flask app on top of :mod:`fnn` (installed as ``fnn_web``).

``create_app(test_config=None)`` builds the app (flaskr style): defaults, then
``FNN_*`` environment variables (``FNN_MODELS='["runs/a", "b.npz"]'``) or
``test_config``; the models load once, here. ``flask --app fnn_web run`` serves
it for development, ``fnn-cli serve`` through waitress.
"""

from __future__ import annotations

import json

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException, InternalServerError

MAX_BODY = 1 << 20  # bytes; larger request bodies get 413

CSP = (
    "default-src 'self'; img-src 'self' data: blob:; script-src 'self'; style-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def create_app(test_config=None) -> Flask:
    """The pad's app. Config: ``MODELS`` (run folders or ``.npz`` files; the first is the default;
    empty: the latest MNIST run under ``RUNS``), ``RUNS`` (``"runs"``), ``MAX_CONTENT_LENGTH`` (1 MB)."""
    app = Flask(__name__)
    app.config.from_mapping(MODELS=[], RUNS="runs", MAX_CONTENT_LENGTH=MAX_BODY)
    if test_config is None:
        app.config.from_prefixed_env("FNN")
    else:
        app.config.from_mapping(test_config)

    from fnn_web import api, models, pages

    models.init_app(app)
    app.register_blueprint(pages.bp)
    app.register_blueprint(api.bp)
    app.register_error_handler(HTTPException, json_error)
    app.register_error_handler(Exception, internal_error)
    app.after_request(security_headers)
    return app


def json_error(e: HTTPException):
    """Any HTTP error as JSON: ``{"error": name, "message": what was wrong, "status": code}``."""
    response = e.get_response()
    response.data = json.dumps({"error": e.name, "message": e.description, "status": e.code})
    response.content_type = "application/json"
    return response


def internal_error(e: Exception):
    """A bug, not the client's fault: logged, answered as a JSON 500."""
    from flask import current_app

    current_app.logger.exception("unhandled error")
    err = InternalServerError()
    return jsonify(error=err.name, message="internal error; see the server log", status=500), 500


def security_headers(response):
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    return response
