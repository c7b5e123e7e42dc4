"""What a model's outputs mean, and so which metrics and predictions follow from them.

A :class:`Task` is one of

- ``multiclass``: one output per class; labels ``(n,)`` or one-hot ``(n, k)``;
- ``binary``: one output, targets 0/1;
- ``multilabel``: ``k`` independent 0/1 outputs;
- ``regression``: real-valued outputs; no accuracy, but MSE, MAE and R².

and its outputs are ``logits`` (the model ends in a Dense layer), ``probabilities``
(it ends in Softmax or Sigmoid) or ``values`` (regression). The loss says
which (:func:`for_loss`); a saved model records it; for a model alone,
:func:`for_model` reads its last layer and output width.

>>> from fnn import losses
>>> task = for_loss(losses.binary_cross_entropy, outputs=1)
>>> task
Task(kind='binary', outputs='logits')
>>> task.predict(np.array([[-2.0], [0.5]], np.float32))
array([0, 1])
>>> task.metrics(np.array([[-2.0], [0.5]], np.float32), np.array([0, 0]))
{'accuracy': 0.5}
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

KINDS = ("multiclass", "binary", "multilabel", "regression")


def _sigmoid(z):
    return 0.5 * (1 + np.tanh(z * z.dtype.type(0.5)))


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


class Task(NamedTuple):
    kind: str  # one of KINDS
    outputs: str  # "logits", "probabilities" or "values"

    @property
    def metric_names(self) -> tuple:
        return ("mse", "mae") if self.kind == "regression" else ("accuracy",)

    def proba(self, outputs):
        """Probabilities: ``(n, k)`` for multiclass and multilabel, ``(n,)`` of class 1 for binary."""
        if self.kind == "regression":
            raise ValueError("a regression model predicts values, not probabilities: use fnn.predict")
        p = outputs if self.outputs == "probabilities" else (_softmax(outputs) if self.kind == "multiclass" else _sigmoid(outputs))
        return p.reshape(len(p)) if self.kind == "binary" else p

    def predict(self, outputs):
        """Labels ``(n,)`` (multiclass, binary), 0/1 rows ``(n, k)`` (multilabel), or the values themselves."""
        if self.kind == "multiclass":  # the common case first: predict on one row is mostly bookkeeping
            return outputs.argmax(1)
        if self.kind == "regression":
            return outputs
        threshold = 0.5 if self.outputs == "probabilities" else 0.0
        hits = (outputs > threshold).astype(np.int64)
        return hits.reshape(len(hits)) if self.kind == "binary" else hits

    def metrics(self, outputs, y) -> dict:
        """The batch metrics: ``accuracy`` (the share of right labels, or of right 0/1 outputs), or ``mse`` and ``mae``."""
        n = len(outputs)
        if self.kind == "regression":
            d = outputs - np.asarray(y, outputs.dtype).reshape(outputs.shape)
            return {"mse": float(np.vdot(d, d)) / d.size, "mae": float(np.abs(d).sum()) / d.size} if n else {"mse": np.nan, "mae": np.nan}
        y = np.asarray(y)
        if self.kind == "multiclass":
            labels = y.argmax(axis=1) if y.ndim == 2 else y
            return {"accuracy": float(np.count_nonzero(outputs.argmax(axis=1) == labels)) / n if n else float("nan")}
        hits = self.predict(outputs)
        return {"accuracy": float(np.mean(hits == y.reshape(hits.shape))) if n else float("nan")}

    def evaluate(self, outputs, y) -> dict:
        """Whole-set metrics: those of :meth:`metrics`, and for regression ``r2`` = 1 - SSE / SST."""
        out = self.metrics(outputs, y)
        if self.kind == "regression":
            t = np.asarray(y, np.float64).reshape(outputs.shape)
            sst = float(((t - t.mean(axis=0)) ** 2).sum())
            sse = float(((outputs.astype(np.float64) - t) ** 2).sum())
            out["r2"] = 1.0 - sse / sst if sst > 0 else float("nan")
        return out


#: The tasks, made once: ``fnn.predict`` asks for one on every call, and making a NamedTuple costs more than the rest of its bookkeeping.
MULTICLASS_LOGITS, MULTICLASS_PROBABILITIES = Task("multiclass", "logits"), Task("multiclass", "probabilities")
BINARY_LOGITS, BINARY_PROBABILITIES = Task("binary", "logits"), Task("binary", "probabilities")
MULTILABEL_LOGITS, MULTILABEL_PROBABILITIES = Task("multilabel", "logits"), Task("multilabel", "probabilities")
REGRESSION = Task("regression", "values")


def for_loss(loss, outputs: int | None = None) -> Task:
    """The task a loss trains: ``outputs`` (the model's output width) tells binary from multilabel."""
    kind = getattr(loss, "task", "classification")
    if kind == "regression":
        return REGRESSION
    if kind == "binary":
        return BINARY_LOGITS if outputs in (None, 1) else MULTILABEL_LOGITS
    if kind == "probabilities":
        return MULTICLASS_PROBABILITIES
    return MULTICLASS_LOGITS


def last_layer(model):
    """The layer that produces the model's output (the last child of nested ``serial`` layers)."""
    while model.children:
        model = model.children[-1]
    return model


def for_model(model, outputs: int) -> Task:
    """The task a model's last layer and output width suggest, without a loss: Softmax and Sigmoid give probabilities."""
    last = last_layer(model).spec.get("type")
    if last == "Softmax":
        return MULTICLASS_PROBABILITIES
    if last == "Sigmoid":
        return BINARY_PROBABILITIES if outputs == 1 else MULTILABEL_PROBABILITIES
    return BINARY_LOGITS if outputs == 1 else MULTICLASS_LOGITS


def check_model_fits_loss(model, loss) -> None:
    """Refuse a model whose last layer already applies what a loss from logits applies (softmax or sigmoid twice)."""
    last = last_layer(model).spec.get("type")
    kind = getattr(loss, "task", "classification")
    if last == "Softmax" and kind == "classification":
        raise ValueError(
            f"the model ends in Softmax, but {loss.name} takes logits (it applies the softmax itself): "
            "drop the final Softmax, or use losses.categorical_cross_entropy on probabilities"
        )
    if last == "Sigmoid" and kind == "binary":
        raise ValueError(
            f"the model ends in Sigmoid, but {loss.name} takes logits (it applies the sigmoid itself): drop the final Sigmoid"
        )
    if last in ("Softmax", "Sigmoid") and kind == "regression":
        raise ValueError(f"the model ends in {last}, which squashes outputs into (0, 1): a regression model ends in Dense")


def from_name(name: str) -> Task:
    """A task recorded in a model file as ``"kind/outputs"`` (e.g. ``"binary/logits"``)."""
    kind, _, outputs = str(name).partition("/")
    if kind not in KINDS or outputs not in ("logits", "probabilities", "values"):
        raise ValueError(f"unknown task {name!r}; expected e.g. 'multiclass/logits' or 'regression/values'")
    return Task(kind, outputs)


def name_of(task: Task) -> str:
    return f"{task.kind}/{task.outputs}"
