"""The drawing pad page and the health check."""

from flask import Blueprint, current_app, jsonify, render_template

from fnn_web import models

bp = Blueprint("pages", __name__)


@bp.get("/")
def index():
    """The drawing pad: canvas, live prediction, models, samples, upload (static JS, no build step)."""
    return render_template("index.html")


@bp.get("/healthz")
def healthz():
    """``{"status": "ok", "models": n}`` once the models are loaded."""
    return jsonify(status="ok", models=len(models.registry(current_app).models))
