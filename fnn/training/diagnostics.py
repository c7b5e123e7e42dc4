"""Training diagnostics: per-layer statistics each epoch, warnings in plain words, input saliency.

A *layer* here is what a learner calls one: a ``Dense`` with the activation
(and dropout) after it, numbered 1, 2, ... from the input. In
``mlp([784, 256, 10])`` = ``serial(Dense(256), Relu, Dense(10))`` layer 1 is
children 0-1 and layer 2 (the logits) is child 2.

The probe. The statistics are measured on a fixed sample of the training split
drawn once per run with a seeded key: ``PROBE_SIZE`` (4096) examples for the
forward statistics and the first ``GRAD_BATCHES`` (4) training-size batches
of them for the gradients. That is how "on the epoch's data" is realised: the
same examples every epoch, so epochs compare like with like, at a cost of
about 3.5% of an MNIST epoch (measured by
``experiments/bench/diagnostics_overhead.py``; the bar is 10%). The
forward passes run in inference mode (no dropout).

Per layer and epoch (one JSON line per epoch in ``diagnostics.jsonl``; epoch 0
is the initialization):

- ``act_mean``, ``act_std``: mean and standard deviation of the layer's output
  over all probe examples and units;
- ``dead``: ReLU layers, the fraction of units never positive on the probe
  (``max over examples of y[:, u] <= 0``);
- ``saturated``: sigmoid/tanh layers, the fraction of units within
  ``SATURATION_MARGIN`` (0.01) of an asymptote (sigmoid ``y < 0.01`` or
  ``y > 0.99``, tanh ``|y| > 0.99``) on at least ``SATURATED_SHARE`` (90%) of
  the probe examples, where the local derivative is under 0.02;
- ``grad_norm``: ``||dL/dW||`` (``w`` and ``b`` together), the mean over the
  gradient batches of the training loss (penalties excluded);
- ``update_ratio``: ``||W_end - W_start|| / ||W_start||`` over the epoch, from
  the weights (``w``) at its start and end; ``None`` at epoch 0 or when
  ``W_start`` is all zeros;
- ``hist``: a histogram of the layer's output on the first 1024 probe
  examples, ``HIST_BINS`` equal bins from ``lo`` to ``hi`` (sigmoid [0, 1],
  tanh [-1, 1], otherwise the range seen).

>>> from fnn import layers, random
>>> model = layers.mlp([4, 8, 3])
>>> _, params = model.init(random.key(0), (-1, 4))
>>> x, y = random.normal(random.key(1), (64, 4)), np.arange(64) % 3
>>> row = Diagnostics(model, x, y, batch_size=16).measure(params, epoch=0)
>>> [(l["layer"], l["name"]) for l in row["layers"]]
[(1, 'Dense 8, relu'), (2, 'Dense 3')]
>>> saliency(model, params, x[0], 1).shape
(4,)
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from fnn import losses, random

PROBE_SIZE = 4096
GRAD_BATCHES = 4
CHUNK = 1024
HIST_BINS = 40
SATURATION_MARGIN = 0.01
SATURATED_SHARE = 0.9

#: Vanishing gradients: the first layer's gradient norm under this fraction of the largest layer's.
VANISHING_RATIO = 1e-3
#: Dead ReLUs: a layer with at least this fraction of its units dead.
DEAD_FRACTION = 0.4
#: Saturation: a layer with at least this fraction of its units saturated.
SATURATED_FRACTION = 0.4
#: Overfitting: validation loss rising this many epochs in a row while training loss falls.
OVERFIT_EPOCHS = 3

ACTIVATIONS = {"Relu": "relu", "LeakyRelu": "relu", "Sigmoid": "sigmoid", "Tanh": "tanh"}


# ---------------------------------------------------------------- layers


def layer_groups(model) -> list[dict]:
    """Group a ``serial`` model's children into layers: each child with a ``w`` parameter starts one.

    Returns one dict per layer: ``layer`` (1-based), ``param`` (index of the
    child holding ``w``, ``b``), ``out`` (index of the child whose output is
    the layer's activation: the activation if there is one, else the Dense),
    ``activation`` (``"relu"``, ``"sigmoid"``, ``"tanh"`` or None) and ``name``.
    """
    specs = model.spec.get("layers")
    if specs is None:
        raise ValueError("diagnostics need a serial model (what fnn.mlp builds)")
    groups = []
    for i, spec in enumerate(specs):
        if spec["type"] == "Dense":
            groups.append({"layer": len(groups) + 1, "param": i, "out": i, "activation": None,
                           "name": f"Dense {spec['units']}"})
        elif spec["type"] in ACTIVATIONS and groups and groups[-1]["activation"] is None:
            g = groups[-1]
            g.update(out=i, activation=ACTIVATIONS[spec["type"]], name=f"{g['name']}, {spec['type'].lower()}")
    return groups


def _hist_range(activation, lo, hi):
    if activation == "sigmoid":
        return 0.0, 1.0
    if activation == "tanh":
        return -1.0, 1.0
    return (lo, hi) if hi > lo else (lo - 0.5, lo + 0.5)


def _saturated_mask(y, activation):
    m = SATURATION_MARGIN
    return np.abs(y) > 1 - m if activation == "tanh" else (y < m) | (y > 1 - m)


class _Stats:
    """Running statistics of one layer's output over probe chunks."""

    def __init__(self, activation):
        self.activation, self.n, self.s, self.ss = activation, 0, 0.0, 0.0
        self.max = self.sat = self.hist = None

    def add(self, y):
        self.n += len(y)
        self.s += float(np.sum(y, dtype=np.float64))
        self.ss += float(np.vdot(y, y))
        peak = y.max(axis=0)
        self.max = peak if self.max is None else np.maximum(self.max, peak)
        if self.activation in ("sigmoid", "tanh"):
            sat = np.count_nonzero(_saturated_mask(y, self.activation), axis=0)
            self.sat = sat if self.sat is None else self.sat + sat
        if self.hist is None:
            lo, hi = _hist_range(self.activation, float(y.min()), float(y.max()))
            counts, _ = np.histogram(y, HIST_BINS, (lo, hi))
            self.hist = {"lo": lo, "hi": hi, "counts": counts.tolist()}

    def result(self):
        count = self.n * len(self.max)
        mean = self.s / count
        out = {"act_mean": mean, "act_std": max(self.ss / count - mean * mean, 0.0) ** 0.5,
               "dead": float(np.mean(self.max <= 0)) if self.activation == "relu" else None,
               "saturated": float(np.mean(self.sat >= SATURATED_SHARE * self.n)) if self.sat is not None else None}
        return out


def _norm(tree):
    return float(np.sqrt(sum(float(np.vdot(v, v)) for v in tree.values())))


# ---------------------------------------------------------------- the recorder


class Diagnostics:
    """Per-layer statistics of a ``serial`` model on a fixed probe, and warnings when they look wrong.

    Args:
      model: a ``serial`` model (e.g. :func:`fnn.layers.mlp`).
      x: ``(n, features)`` float32 probe inputs; y: ``(n,)`` integer labels.
      loss: the training loss (for the gradients).
      batch_size: the gradient batches' size (the training batch size).
      path: a ``diagnostics.jsonl`` to append each row to (or None).
      history: earlier epochs' metric records (when resuming).
      rows: earlier rows (when resuming): their warnings are not given again.

    Use: ``measure`` at the start, then per epoch ``epoch_begin(params)`` and
    ``epoch_end(epoch, params, record) -> [new warnings]``. ``fnn.fit`` does this
    when ``FitConfig(diagnostics=True)``; a hand-written loop can do the same.
    """

    def __init__(self, model, x, y, *, loss=losses.softmax_cross_entropy, batch_size=128,
                 grad_batches=GRAD_BATCHES, path=None, history=(), rows=()):
        self.model, self.loss, self.x, self.y = model, loss, x, np.asarray(y)
        self.batch_size, self.grad_batches = int(batch_size), int(grad_batches)
        self.groups = layer_groups(model)
        self.path = None if path is None else Path(path)
        self.history, self.rows = list(history), list(rows)
        self.warned = {kind for r in self.rows for kind in r.get("warning_kinds", [])}
        self.start = None

    @classmethod
    def probe(cls, model, x_stored, y, transform, key, size=PROBE_SIZE, **kwargs):
        """A :class:`Diagnostics` on ``size`` examples of ``(x_stored, y)`` drawn with ``key``, sorted by index."""
        idx = np.sort(random.generator(key).permutation(len(y))[:size])
        return cls(model, transform(x_stored[idx]), np.asarray(y)[idx], **kwargs)

    def measure(self, params, epoch) -> dict:
        """One row: the statistics of every layer on the probe at ``params`` (see the module docstring)."""
        t0 = time.perf_counter()
        children = self.model.children
        stats = {g["out"]: _Stats(g["activation"]) for g in self.groups}
        for lo in range(0, len(self.x), CHUNK):
            h = self.x[lo:lo + CHUNK]
            for i, child in enumerate(children):
                h = child.apply(params[str(i)], h)
                if i in stats:
                    stats[i].add(h)
        norms = {g["param"]: 0.0 for g in self.groups}
        batches = [slice(b * self.batch_size, (b + 1) * self.batch_size) for b in range(self.grad_batches)]
        batches = [s for s in batches if s.start < len(self.y)]
        for s in batches:
            out, backward = self.model.vjp(params, self.x[s], None, need_dx=False)
            grads, _ = backward(self.loss.grad(out, self.y[s]))
            for i in norms:
                norms[i] += _norm(grads[str(i)]) / len(batches)
        layers = []
        for g in self.groups:
            w = params[str(g["param"])]["w"]
            ratio = None
            if self.start is not None and np.any(self.start[g["param"]]):
                ratio = float(np.linalg.norm(w - self.start[g["param"]]) / np.linalg.norm(self.start[g["param"]]))
            layers.append({"layer": g["layer"], "name": g["name"], "activation": g["activation"],
                           **stats[g["out"]].result(), "grad_norm": norms[g["param"]], "update_ratio": ratio,
                           "hist": stats[g["out"]].hist})
        return {"epoch": epoch, "probe": len(self.y), "layers": layers, "seconds": time.perf_counter() - t0}

    def epoch_begin(self, params) -> None:
        """Keep a copy of each layer's weights, for the update ratio at the epoch's end."""
        self.start = {g["param"]: np.array(params[str(g["param"])]["w"], copy=True) for g in self.groups}

    def epoch_end(self, epoch, params, record=None) -> list[str]:
        """Measure, append the row to ``path``, and return the warnings that are new.

        ``record``: the epoch's metrics (``loss``, ``val_loss``), for the overfitting check.
        ``epoch`` 0 with no ``epoch_begin`` measures the initialization.
        """
        if record is not None:
            self.history.append(record)
        row = self.measure(params, epoch)
        self.start = None
        found = check(row, self.history)
        new = [(kind, text) for kind, text in found if kind not in self.warned]
        self.warned.update(kind for kind, _ in new)
        row["warnings"], row["warning_kinds"] = [t for _, t in new], [k for k, _ in new]
        self.rows.append(row)
        if self.path is not None:
            from fnn.serialization import open_append

            with open_append(self.path) as f:
                f.write(json.dumps(row) + "\n")
        return row["warnings"]


# ---------------------------------------------------------------- warnings


def check(row, history=()) -> list[tuple[str, str]]:
    """The problems one row (and the metric ``history``) shows: ``[(kind, text), ...]``.

    Vanishing gradients: layer 1's gradient norm under :data:`VANISHING_RATIO` of the largest layer's
    (with 3 layers or more, and no dead or saturated layer, whose own warning explains small gradients).
    ``kind`` identifies the problem (``"vanishing"``, ``"dead:2"``, ``"saturated:3"``,
    ``"overfitting"``), so a recorder can say each one once.
    """
    found = []
    layers = row["layers"]
    for layer in layers:
        if layer["dead"] is not None and layer["dead"] >= DEAD_FRACTION:
            found.append((f"dead:{layer['layer']}",
                          f"{layer['dead']:.0%} of layer {layer['layer']}'s ReLUs are dead (never positive on the probe): "
                          f"they no longer learn; try a smaller learning rate, He init or LeakyReLU"))
        if layer["saturated"] is not None and layer["saturated"] >= SATURATED_FRACTION:
            found.append((f"saturated:{layer['layer']}",
                          f"{layer['saturated']:.0%} of layer {layer['layer']}'s {layer['activation']} units "
                          f"are saturated: their gradients vanish; try Glorot init, smaller inputs or ReLU"))
    norms = [layer["grad_norm"] for layer in layers]
    if len(layers) >= 3 and max(norms) > 0 and not found:  # dead layers stop gradients too: that warning says why
        top = int(np.argmax(norms))
        if norms[0] < VANISHING_RATIO * norms[top]:
            found.append(("vanishing", f"layer 1 gradient norm fell below {VANISHING_RATIO:g} of layer {top + 1}'s "
                                       f"({norms[0]:.2g} against {norms[top]:.2g}): vanishing gradients; try ReLU or He init"))
    start = overfitting_epoch(history)
    if start is not None:
        found.append(("overfitting", f"validation loss has risen for {OVERFIT_EPOCHS} epochs while training loss falls "
                                     f"(lowest at epoch {start}): overfitting; try dropout, weight decay or early stopping"))
    return found


def overfitting_epoch(history, epochs=OVERFIT_EPOCHS):
    """Where overfitting began, once it shows; or None.

    It shows when validation loss has risen ``epochs`` times in a row while
    training loss fell over those epochs; it began at the epoch with the lowest
    validation loss up to then (the best epoch to stop at).
    ``history``: per-epoch records with ``loss`` and ``val_loss`` (as in ``metrics.jsonl``).
    """
    rows = [r for r in history if all(isinstance(r.get(k), (int, float)) for k in ("loss", "val_loss"))]
    for t in range(epochs, len(rows)):
        w = rows[t - epochs:t + 1]
        if all(b["val_loss"] > a["val_loss"] for a, b in zip(w, w[1:])) and w[-1]["loss"] < w[0]["loss"]:
            best = min(range(t + 1), key=lambda i: rows[i]["val_loss"])
            epoch = rows[best].get("epoch")
            return epoch if type(epoch) is int else history.index(rows[best]) + 1
    return None


# ---------------------------------------------------------------- saliency


def saliency(model, params, x, label, loss=losses.softmax_cross_entropy):
    """``dL/dx``: how the loss of ``label`` changes with each input value, from the hand-written backward pass.

    ``x``: one input ``(features,)`` or a batch ``(n, features)``; ``label``: an
    int or ``(n,)`` labels. Returns an array shaped like ``x``; row ``i`` is the
    gradient of example ``i``'s own loss (the batch mean times ``n``). Negative
    entries are pixels whose increase would make ``label`` more likely.
    """
    single = np.ndim(x) == 1
    xb = np.asarray(x)[None] if single else np.asarray(x)
    y = np.atleast_1d(np.asarray(label))
    out, backward = model.vjp(params, xb, None, need_dx=True)
    _, dx = backward(loss.grad(out, y))
    dx = dx * dx.dtype.type(len(xb))
    return dx[0] if single else dx


# ---------------------------------------------------------------- files


LAYER_NUMBERS = ("act_mean", "act_std", "dead", "saturated", "grad_norm", "update_ratio")


def read(path) -> list[dict]:
    """The rows of a ``diagnostics.jsonl`` (a run folder or the file itself); [] when there is none.

    :class:`fnn.training.runs.RunError` names the first line that is not a row as :class:`Diagnostics` writes it.
    """
    from fnn.training import runs

    path = Path(path)
    path = path / runs.DIAGNOSTICS if path.is_dir() else path
    rows = runs.read_jsonl(path)
    for i, row in enumerate(rows, 1):
        problem = _row_problem(row)
        if problem is None and len(row["layers"]) != len(rows[0]["layers"]):
            problem = f"{len(row['layers'])} layers, line 1 has {len(rows[0]['layers'])}"
        if problem:
            raise runs.RunError(f"{path} line {i}: {problem}; not what fnn writes there")
    return rows


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _row_problem(row) -> str | None:
    """What makes ``row`` not a diagnostics row (the keys the report and pictures read), or None."""
    if not isinstance(row, dict):
        return f"a {type(row).__name__}, not an object"
    if type(row.get("epoch")) is not int or type(row.get("probe")) is not int:
        return "'epoch' and 'probe' must be whole numbers"
    warnings = row.get("warnings", [])
    if not isinstance(warnings, list) or not all(isinstance(w, str) for w in warnings):
        return "'warnings' must be a list of texts"
    layers = row.get("layers")
    if not isinstance(layers, list) or not all(isinstance(lay, dict) for lay in layers):
        return "'layers' must be a list of objects"
    for lay in layers:
        if type(lay.get("layer")) is not int or not isinstance(lay.get("name"), str):
            return "each layer needs a whole-number 'layer' and a 'name'"
        if not (lay.get("activation") is None or isinstance(lay["activation"], str)):
            return "a layer's 'activation' must be a name or null"
        if not all(lay.get(k) is None or _number(lay[k]) for k in LAYER_NUMBERS):
            return f"a layer's {', '.join(LAYER_NUMBERS)} must be numbers or null"
        hist = lay.get("hist")
        if hist is None and not lay.get("activation"):
            continue
        if not (isinstance(hist, dict) and _number(hist.get("lo")) and _number(hist.get("hi"))
                and isinstance(hist.get("counts"), list) and all(_number(c) for c in hist["counts"])):
            return "a layer's 'hist' must hold numbers 'lo', 'hi' and a list of 'counts'"
    return None


class Recorder:
    """A :func:`fnn.fit` callback that runs a :class:`Diagnostics` every epoch and passes its warnings on (``loop.warn``)."""

    def __init__(self, diag: Diagnostics, measure_init: bool):
        self.diag, self.measure_init, self.loop = diag, measure_init, None

    def on_train_begin(self, logs=None):
        if self.measure_init:  # epoch 0: the initialization
            for text in self.diag.epoch_end(0, self.loop.params):
                self.loop.warn(text)

    def on_epoch_begin(self, epoch, logs=None):
        self.diag.epoch_begin(self.loop.params)

    def on_epoch_end(self, epoch, logs=None):
        for text in self.diag.epoch_end(epoch + 1, self.loop.params, logs):
            self.loop.warn(text)


def recorder(model, loss, data, config, path, history, resume_epoch, resumed=False) -> Recorder:
    """The recorder ``fnn-cli fit --diagnostics`` uses: a probe of the run's training split;
    ``path`` keeps the rows up to ``resume_epoch``."""
    rows = [r for r in read(path) if r["epoch"] <= resume_epoch] if resume_epoch else []  # read() checked each row
    text = "".join(json.dumps(r) + "\n" for r in rows)
    from fnn.serialization import atomic_write

    atomic_write(path, lambda f: f.write(text.encode("utf-8")))
    key = random.fold_in(random.key(config.seed), 0xD1A6)
    diag = Diagnostics.probe(model, data["x_train"], data["y_train"], data["transform"], key, loss=loss,
                             batch_size=config.batch_size, path=path, history=history, rows=rows)
    return Recorder(diag, measure_init=not resumed)


__all__ = ["Diagnostics", "layer_groups", "check", "overfitting_epoch", "saliency", "read", "recorder", "Recorder",
           "PROBE_SIZE", "GRAD_BATCHES", "VANISHING_RATIO", "DEAD_FRACTION", "SATURATED_FRACTION", "OVERFIT_EPOCHS"]
