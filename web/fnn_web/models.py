"""The models the pad serves: loaded once at start, then only read (so requests share them safely).

``init_app(app)`` loads every path in ``app.config["MODELS"]`` (run folders or
``.npz`` model files) into ``app.extensions["fnn"]``, a :class:`Registry`.
Prediction is a pure function of a model and an input.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np

import fnn
from fnn.training import runs
from fnn.serialization import ModelFileError, standardization

INPUT_SHAPE = (-1, 784)


class ModelLoadError(ValueError):
    """A model path that cannot be served: missing, corrupt, or not a 784-input classifier."""


class ServedModel(NamedTuple):
    name: str
    model: fnn.layers.Layer
    params: dict
    classes: list
    test_accuracy: float | None
    dataset: str | None
    mean: np.ndarray | None = None  # the standardization the model was trained with, (784,) or ()
    std: np.ndarray | None = None
    state: dict | None = None  # a stateful model's state (BatchNorm's running averages), from the model file

    def describe(self) -> dict:
        """What ``GET /api/models`` shows of this model."""
        return {"name": self.name, "classes": self.classes, "test_accuracy": self.test_accuracy, "dataset": self.dataset}


class Registry(NamedTuple):
    models: dict  # name -> ServedModel, in the order given
    default: str

    def get(self, name=None) -> ServedModel:
        return self.models[self.default if name is None else name]


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
    if tuple(input_shape) != INPUT_SHAPE:
        raise ModelLoadError(f"{file}: the pad needs 28x28 inputs {INPUT_SHAPE}, the model takes {tuple(input_shape)}")
    out_shape, _ = model.init(None, INPUT_SHAPE)
    n = out_shape[-1]
    classes = meta.get("classes", [str(i) for i in range(n)])
    if not isinstance(classes, list) or len(classes) != n:
        raise ModelLoadError(f"{file}: metadata 'classes' must list {n} names, one per output")
    classes = [str(c) for c in classes]
    mean, std = standardization(meta)  # vetted by load_model: finite, std > 0, one or 784 numbers
    try:
        summary = runs.read_summary(file.parent) if file.name == runs.MODEL else {}
    except runs.RunError as e:
        raise ModelLoadError(str(e)) from None
    accuracy = meta.get("test_accuracy", summary.get("test_accuracy"))
    dataset = meta.get("dataset", summary.get("dataset"))
    return ServedModel(
        model_name(file, taken),
        model,
        params,
        classes,
        float(accuracy) if isinstance(accuracy, (int, float)) else None,
        dataset if isinstance(dataset, str) else None,
        mean,
        std,
        state if model.stateful else None,
    )


def load_all(paths) -> Registry:
    """Load every path once; the first is the default model."""
    if not paths:
        raise ModelLoadError("no models to serve")
    models = {}
    for p in paths:
        m = load_one(p, models)
        models[m.name] = m
    return Registry(models, next(iter(models)))


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


def answer(served: ServedModel, x) -> dict:
    """The model's answer for one input ``x`` ``(784,)``: ``label`` (index), ``class``, ``confidence``, ``probabilities``."""
    x = x.reshape(1, -1)
    if served.mean is not None:
        x = (x - served.mean) / served.std
    p = fnn.predict_proba(served.model, served.params, x, state=served.state)[0]
    label = int(p.argmax())
    return {
        "model": served.name,
        "label": label,
        "class": served.classes[label],
        "confidence": round(float(p[label]), 6),
        "probabilities": np.round(p.astype(np.float64), 6).tolist(),
    }


def blank_answer(served: ServedModel) -> dict:
    """The answer when nothing is drawn: no label, no probabilities."""
    return {"model": served.name, "label": None, "class": None, "confidence": None, "probabilities": None}
