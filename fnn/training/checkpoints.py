"""Training checkpoints: everything :func:`fnn.fit` needs to go on exactly where it stopped.

A checkpoint is an fnn ``.npz`` file (:mod:`fnn.serialization`: no pickle,
atomic writes) holding the arrays of :class:`TrainState` (params, optimizer
state, model state) and of the callbacks that keep some (EarlyStopping's best
weights), and a JSON manifest with the rest: the root key, the epoch and the
batch cursor within it, the epoch's running sums, the history so far, the
first batch loss, the training seconds, each callback's state and the
caller's ``info`` (``fnn-cli fit`` keeps its config there).

>>> import numpy as np, tempfile, os
>>> s = TrainState(params={"w": np.ones(2, np.float32)}, opt_state={}, state={}, key=[1, 2, 3, 4])
>>> path = os.path.join(tempfile.mkdtemp(), "ckpt.npz")
>>> save(path, s, info={"run": "demo"})
>>> back = load(path)
>>> back.state.params["w"].tolist(), back.info
([1.0, 1.0], {'run': 'demo'})
"""

from __future__ import annotations

import math
from typing import NamedTuple

import attrs

from fnn import serialization
from fnn.serialization import ModelFileError

FORMAT = "fnn.checkpoint"
VERSION = 2


@attrs.define
class TrainState:
    """Where a training run stands: what a checkpoint holds and a resumed run starts from."""

    params: dict
    opt_state: dict
    state: dict  # the model's own state (BatchNorm's running averages); {} for most models
    key: list  # the root key's words: every shuffle order and dropout mask derives from it
    epoch: int = 0  # epochs finished
    cursor: int = 0  # batches finished in the current epoch
    sums: dict = attrs.Factory(dict)  # the current epoch's running sums of loss and metrics, times batch sizes
    count: int = 0  # examples those sums cover
    history: list = attrs.Factory(list)  # one record per finished epoch
    first_loss: float | None = None  # the run's first batch loss (the divergence guard compares against it)
    train_seconds: float = 0.0


class Loaded(NamedTuple):
    state: TrainState
    callbacks: list  # each callback's state (JSON values plus an "arrays" tree), in the order they were given
    info: dict


def save(path, s: TrainState, callbacks=(), info=None) -> None:
    """Write ``s`` (and the callbacks' states, and ``info``) to ``path`` atomically."""
    trees = {"params": s.params, "opt_state": s.opt_state, "state": s.state}
    states = []
    for i, cb in enumerate(callbacks):
        cb = dict(cb)
        if cb.get("arrays") is not None:
            trees[f"callback{i}"] = cb.pop("arrays")
            cb["arrays"] = True
        states.append(cb)
    manifest = {
        "format": FORMAT,
        "version": VERSION,
        "key": [int(w) for w in s.key],
        "epoch": s.epoch,
        "cursor": s.cursor,
        "sums": s.sums,
        "count": s.count,
        "history": s.history,
        "first_loss": s.first_loss,
        "train_seconds": s.train_seconds,
        "callbacks": states,
        "info": info or {},
    }
    serialization.save_arrays(path, trees, manifest)


def load(path) -> Loaded:
    """Read a checkpoint written by :func:`save`; :class:`fnn.serialization.ModelFileError` for anything else."""
    trees, m = serialization.load_arrays(path)
    if m.get("format") != FORMAT:
        raise ModelFileError(f"{path}: not an fnn checkpoint")
    if m.get("version") != VERSION:
        raise ModelFileError(f"{path}: checkpoint format version {m.get('version')!r}; this fnn reads version {VERSION}")
    try:
        _check_fields(m)
        callbacks = []
        for i, cb in enumerate(m["callbacks"]):
            cb = dict(cb)
            if cb.get("arrays"):
                cb["arrays"] = trees.get(f"callback{i}", {})
            callbacks.append(cb)
        s = TrainState(
            params=trees.get("params", {}),
            opt_state=trees.get("opt_state", {}),
            state=trees.get("state", {}),
            key=list(m["key"]),
            epoch=m["epoch"],
            cursor=m["cursor"],
            sums=dict(m["sums"]),
            count=m["count"],
            history=m["history"],
            first_loss=m["first_loss"],
            train_seconds=float(m["train_seconds"]),
        )
        return Loaded(s, callbacks, dict(m["info"]))
    except (KeyError, TypeError, ValueError) as e:
        raise ModelFileError(f"{path}: checkpoint is incomplete or malformed ({str(e):.200})") from None


def _check_fields(m) -> None:
    """Raise ValueError unless the manifest's training state has the types the loop relies on."""

    def number(v, none_ok=False):
        return (v is None and none_ok) or (isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v))

    def count(v):
        return type(v) is int and v >= 0

    key = m["key"]
    checks = {
        "key": isinstance(key, list) and len(key) == 4 and all(type(w) is int and 0 <= w < 1 << 32 for w in key),
        "epoch": count(m["epoch"]),
        "cursor": count(m["cursor"]),
        "count": count(m["count"]),
        "sums": isinstance(m["sums"], dict) and all(isinstance(k, str) and number(v) for k, v in m["sums"].items()),
        "history": isinstance(m["history"], list) and all(isinstance(r, dict) for r in m["history"]),
        "first_loss": number(m["first_loss"], True),
        "train_seconds": number(m["train_seconds"]),
        "callbacks": isinstance(m["callbacks"], list) and all(isinstance(c, dict) for c in m["callbacks"]),
        "info": isinstance(m["info"], dict),
    }
    bad = [k for k, ok in checks.items() if not ok]
    if bad:
        raise ValueError(f"bad {', '.join(bad)}")
