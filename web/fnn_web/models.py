"""The models the pad serves: loaded once at start, then only read (so requests share them safely).

``init_app(app)`` loads every path in ``app.config["MODELS"]`` (run folders or
``.npz`` model files) into ``app.extensions["fnn"]``, a :class:`Registry`.
Each model keeps its :class:`fnn.serving.pipelines.Pipeline` (how images become
its input, by the data it was trained on), its summary and where its test
images are. Prediction is a pure function of a model and an input; the one
thing computed after start, a model's confusion matrix (:func:`details`), is
computed once under a lock and then only read.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np

import fnn
from fnn.serialization import ModelFileError
from fnn.serving import pipelines
from fnn.training import runs

MAX_CONFUSION_IMAGES = 10000  # test images a confusion matrix is computed from, when the run has none


class ModelLoadError(ValueError):
    """A model path that cannot be served: missing, corrupt, or not a classifier of images the pad can read."""


class ServedModel(NamedTuple):
    name: str
    model: fnn.layers.Layer
    params: dict
    classes: list
    test_accuracy: float | None
    dataset: str | None
    pipeline: pipelines.Pipeline
    state: dict | None = None  # a stateful model's state (BatchNorm's running averages)
    summary: dict | None = None  # fnn.summary(model, input_shape).to_dict()
    trained: str | None = None  # when the model file was written (ISO 8601, local time)
    data: str | None = None  # where its test images are: a dataset name or path, for samples and the confusion matrix
    run: str | None = None  # the run folder, when the model is one's

    @property
    def kind(self) -> str:
        return self.pipeline.kind

    def describe(self) -> dict:
        """What ``GET /api/models`` shows of this model."""
        return {"name": self.name, "classes": self.classes, "test_accuracy": self.test_accuracy, "dataset": self.dataset,
                **self.pipeline.describe(), "summary": self.summary, "trained": self.trained}


class Registry(NamedTuple):
    models: dict  # name -> ServedModel, in the order given
    default: str
    details: dict  # name -> details(), filled on first request

    def get(self, name=None) -> ServedModel:
        return self.models[self.default if name is None else name]

    def group(self, served: ServedModel) -> list:
        """The models that take the same preprocessed input as ``served`` (itself included), in order."""
        return [m for m in self.models.values() if m.pipeline.group == served.pipeline.group]


_details_lock = threading.Lock()


def model_name(path: Path, taken) -> str:
    """A short unique name: the run folder's name, or the file's stem."""
    name = path.parent.name if path.name == runs.MODEL and path.parent.name else path.stem
    base, i = name, 2
    while name in taken:
        name, i = f"{base}-{i}", i + 1
    return name


def load_one(path, taken=()) -> ServedModel:
    """Load one run folder or model file; :class:`ModelLoadError` names the problem."""
    try:
        file = runs.model_path(path)
        model, params, input_shape, meta, state = fnn.serialization.load_model(file)
    except (runs.RunError, ModelFileError) as e:
        raise ModelLoadError(str(e)) from None
    try:
        pipeline = pipelines.pipeline_for(meta, input_shape)
    except pipelines.PipelineError as e:
        raise ModelLoadError(f"{file}: {e}") from None
    if pipeline.image_shape is None:
        raise ModelLoadError(f"{file}: the pad needs a model of images (28x28 digits or clothing, 32x32 colour photos, or "
                             f"metadata preprocessing.image_shape); the model takes {tuple(input_shape)}")
    out_shape, _ = model.init(None, tuple(input_shape))
    n = out_shape[-1]
    if len(out_shape) != 2 or n < 2:
        raise ModelLoadError(f"{file}: the pad serves classifiers of 2 or more classes; the model outputs {tuple(out_shape)}")
    classes = meta.get("classes", [str(i) for i in range(n)])
    if not isinstance(classes, list) or len(classes) != n:
        raise ModelLoadError(f"{file}: metadata 'classes' must list {n} names, one per output")
    run = file.parent if file.name == runs.MODEL else None
    try:
        summary = runs.read_summary(run) if run else {}
    except runs.RunError as e:
        raise ModelLoadError(str(e)) from None
    accuracy = meta.get("test_accuracy", summary.get("test_accuracy"))
    dataset = meta.get("dataset", summary.get("dataset"))
    return ServedModel(
        model_name(file, taken),
        model,
        params,
        [str(c) for c in classes],
        float(accuracy) if isinstance(accuracy, (int, float)) and not isinstance(accuracy, bool) else None,
        dataset if isinstance(dataset, str) else None,
        pipeline,
        state if model.stateful else None,
        fnn.summary(model, input_shape).to_dict(),
        time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(os.stat(file).st_mtime)),
        test_data(run, dataset),
        None if run is None else str(run),
    )


def test_data(run, dataset) -> str | None:
    """Where a model's test images are: the run's ``config.yaml`` dataset (a name, or a path that exists), else its
    metadata's dataset when that is a name fnn knows or a path that exists; None when neither is."""
    from fnn import datasets

    candidates = [dataset]
    if run is not None and (run / runs.CONFIG).is_file():
        from fnn.training.config import ConfigError, load_config

        try:
            candidates.insert(0, load_config(run / runs.CONFIG).dataset)
        except ConfigError:
            pass
    for c in candidates:
        if isinstance(c, str) and (c in datasets.REGISTRY or (c and os.path.exists(c))):
            return c
    return None


def load_all(paths) -> Registry:
    """Load every path once; the first is the default model."""
    if not paths:
        raise ModelLoadError("no models to serve")
    models = {}
    for p in paths:
        m = load_one(p, models)
        models[m.name] = m
    return Registry(models, next(iter(models)), {})


def init_app(app) -> None:
    """Load ``app.config["MODELS"]`` (or the latest MNIST run under ``app.config["RUNS"]``) into the app."""
    paths = app.config.get("MODELS") or []
    if isinstance(paths, (str, Path)):
        paths = [paths]
    if not paths:
        latest = runs.latest_run(app.config.get("RUNS", runs.DEFAULT_ROOT), "mnist")
        if latest is None:
            raise ModelLoadError(
                f"no MNIST run under {app.config.get('RUNS', runs.DEFAULT_ROOT)!s}/; train one with "
                "`fnn-cli fit --arch 784,128,64,10`, or set MODELS (FNN_MODELS in the environment)"
            )
        paths = [latest]
    app.extensions["fnn"] = load_all(paths)


def registry(app) -> Registry:
    return app.extensions["fnn"]


# ---------------------------------------------------------------- answers


def probabilities(served: ServedModel, x) -> np.ndarray:
    """The model's class probabilities for a batch of preprocessed images ``x`` ``(n, *image_shape)``: ``(n, classes)``."""
    return fnn.predict_proba(served.model, served.params, served.pipeline.to_model(x), state=served.state)


def answer(served: ServedModel, x) -> dict:
    """The model's answer for one preprocessed image ``x``: ``label`` (index), ``class``, ``confidence``, ``probabilities``."""
    p = probabilities(served, x[None])[0]
    label = int(p.argmax())
    return {
        "model": served.name,
        "label": label,
        "class": served.classes[label],
        "confidence": round(float(p[label]), 6),
        "probabilities": np.round(p.astype(np.float64), 6).tolist(),
    }


def blank_answer(served: ServedModel) -> dict:
    """The answer when there is nothing to read: no label, no probabilities."""
    return {"model": served.name, "label": None, "class": None, "confidence": None, "probabilities": None}


# ---------------------------------------------------------------- details: the confusion matrix


def details(app, served: ServedModel) -> dict:
    """What ``GET /api/models/NAME`` adds to :meth:`ServedModel.describe`: ``confusion`` (computed once, then kept)."""
    reg = registry(app)
    with _details_lock:
        if served.name not in reg.details:
            reg.details[served.name] = {"confusion": confusion(served)}
        return {**served.describe(), **reg.details[served.name]}


def confusion(served: ServedModel) -> dict:
    """The model's test confusion matrix: ``{"matrix": counts (rows: true class), "n", "accuracy", "source"}``.

    From the run's ``eval/metrics.json`` when ``fnn-cli evaluate`` wrote one, else computed from
    the model's test split (at most ``MAX_CONFUSION_IMAGES`` images); ``{"matrix": None, "reason"}``
    when neither can be had.
    """
    k = len(served.classes)
    if served.run is not None:
        found = _evaluated(Path(served.run) / "eval" / "metrics.json", k)
        if found is not None:
            return found
    from fnn_web import samples

    try:
        x, y = samples.test_images(served)
    except samples.SampleError as e:
        return {"matrix": None, "n": 0, "accuracy": None, "source": None, "reason": str(e)}
    x, y = x[:MAX_CONFUSION_IMAGES], y[:MAX_CONFUSION_IMAGES]
    pred = np.concatenate([probabilities(served, samples.as_input(x[i : i + 1000])).argmax(axis=1)
                           for i in range(0, len(x), 1000)])
    y = np.asarray(y, np.int64)
    keep = (y >= 0) & (y < k)
    matrix = fnn.metrics.confusion_matrix(y[keep], pred[keep], k)
    n = int(matrix.sum())
    return {"matrix": matrix.tolist(), "n": n, "accuracy": round(float(np.trace(matrix)) / n, 6) if n else None,
            "source": f"the {served.dataset or Path(served.data).name} test split"}


def _evaluated(path: Path, k: int) -> dict | None:
    """The confusion matrix of an ``fnn-cli evaluate`` report, when it is a sound ``k``×``k`` table of counts."""
    if not path.is_file() or path.stat().st_size > 1 << 22:
        return None
    try:
        with open(path, encoding="utf-8") as f:
            report = json.load(f)
        matrix = report["confusion_matrix"]
        ok = (isinstance(matrix, list) and len(matrix) == k
              and all(isinstance(r, list) and len(r) == k and all(type(c) is int and c >= 0 for c in r) for r in matrix))
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        return None
    if not ok:
        return None
    n = sum(map(sum, matrix))
    return {"matrix": matrix, "n": n, "accuracy": round(sum(matrix[i][i] for i in range(k)) / n, 6) if n else None,
            "source": f"the run's fnn-cli evaluate report ({path.parent.name}/metrics.json)"}
