"""Run folders: where a training run keeps its config, metrics, model and checkpoints.

A run folder (``runs/<dataset>-<arch>-<timestamp>/`` by default) holds:

- ``config.yaml``: the fully resolved configuration;
- ``metrics.jsonl``: one JSON object per epoch;
- ``model.npz``: the final model (:func:`fnn.io.save_model`);
- ``checkpoint.npz``: the latest checkpoint (params, optimizer state, key, cursor, history);
- ``train.log``: the log;
- ``summary.json``: test accuracy and loss, epochs, seconds, params, seed, dataset digests, versions;
- ``diagnostics.jsonl``: per-layer statistics per epoch, with ``diagnostics`` on (:mod:`fnn.diagnostics`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

CONFIG = "config.yaml"
METRICS = "metrics.jsonl"
MODEL = "model.npz"
CHECKPOINT = "checkpoint.npz"
LOG = "train.log"
SUMMARY = "summary.json"
DIAGNOSTICS = "diagnostics.jsonl"
DEFAULT_ROOT = "runs"


class RunError(ValueError):
    """A path is neither a run folder nor a model file."""


def is_run(path) -> bool:
    """True when ``path`` is a folder holding a ``summary.json`` or a ``model.npz``."""
    p = Path(path)
    return p.is_dir() and ((p / SUMMARY).is_file() or (p / MODEL).is_file())


def list_runs(root=DEFAULT_ROOT) -> list[Path]:
    """Run folders directly under ``root``, oldest first (by modification time)."""
    root = Path(root)
    if not root.is_dir():
        return []
    runs = [p for p in root.iterdir() if is_run(p)]
    return sorted(runs, key=lambda p: (os.path.getmtime(p), p.name))


def read_summary(run) -> dict:
    """The run's ``summary.json`` as a dict ({} when it has none yet)."""
    path = Path(run) / SUMMARY
    if not path.is_file():
        return {}
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def read_metrics(run) -> list[dict]:
    """The run's ``metrics.jsonl``: one dict per finished epoch (a torn last line is skipped)."""
    return read_jsonl(Path(run) / METRICS)


def read_jsonl(path) -> list[dict]:
    """One dict per line of a JSON-lines file, stopping at a torn line; [] when there is no file."""
    path, rows = Path(path), []
    if path.is_file():
        with open(path, encoding="utf-8") as f:
            for line in f:
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    break
    return rows


def latest_run(root=DEFAULT_ROOT, dataset=None) -> Path | None:
    """The most recent run under ``root`` that has a model (of ``dataset``, when given), or None."""
    for run in reversed(list_runs(root)):
        if (run / MODEL).is_file() and (dataset is None or read_summary(run).get("dataset") == dataset):
            return run
    return None


def model_path(run_or_model) -> Path:
    """``model.npz`` of a run folder, or the given ``.npz`` file itself."""
    p = Path(run_or_model)
    if p.is_dir():
        if (p / MODEL).is_file():
            return p / MODEL
        raise RunError(f"{p}: run folder has no {MODEL} (is training finished?)")
    if p.is_file():
        return p
    raise RunError(f"{p}: no such run folder or model file")
