"""Experiment tracking: the runs under a folder as flat records, filtered, sorted, and the keys they vary.

:func:`read_records` reads every run folder (:mod:`fnn.training.runs`) directly under a root, and one level
down (a sweep's folder holds run folders), into one flat dict each::

    {"run": "sweep-1/adam_lr0.01", "path": "runs/sweep-1/adam_lr0.01", "state": "finished", "status": "finished",
     "arch": "784-128-64-10", "optimizer": "adam", "lr": 0.01, ..., "epochs": 3,       # config.yaml
     "test_accuracy": 0.97, "val_accuracy": 0.968, "params": 109386, ...,              # summary.json
     "epochs_done": 3}

Config keys keep their meaning (``epochs``: planned); the summary's scalar keys are added (its ``epochs``
becomes ``epochs_done``). A damaged run (a file that cannot be read back) keeps only ``run``, ``path``,
``state`` ("damaged") and ``status`` (naming the file).

>>> where = parse_where("lr<0.01", FIELDS)
>>> where({"lr": 0.003}), where({"lr": 0.1}), where({})
(True, False, False)
>>> parse_where("arch=784,128,10", FIELDS)({"arch": "784-128-10"})
True
>>> sort_records([{"run": "a", "lr": 0.1}, {"run": "b"}, {"run": "c", "lr": 0.01}], parse_sort("-lr", FIELDS))
[{'run': 'a', 'lr': 0.1}, {'run': 'c', 'lr': 0.01}, {'run': 'b'}]
"""

from __future__ import annotations

import difflib
import operator
import os
import re
from pathlib import Path

from fnn.training import runs
from fnn.training.config import ConfigError, FitConfig, read_mapping, suggest_key

#: Keys every record has.
META = ("run", "path", "state", "status", "epochs_done")
#: The scalar keys ``summary.json`` holds (:func:`fnn.training.experiment.fit_config`), besides the config keys it repeats.
SUMMARY_KEYS = ("test_accuracy", "test_loss", "val_accuracy", "best_epoch", "stopped_early", "train_seconds", "params",
                "data_source", "val_indices_sha256", "fnn_version", "numpy_version", "python_version")
#: The keys a query may name though no run holds them yet.
FIELDS = tuple(dict.fromkeys((*META, *FitConfig.keys(), *SUMMARY_KEYS)))
#: Short names for summary keys.
ALIASES = {"val_acc": "val_accuracy", "test_acc": "test_accuracy", "acc": "val_accuracy", "accuracy": "val_accuracy",
           "seconds": "train_seconds", "time": "train_seconds", "name": "run", "folder": "path"}
OPS = {"=": operator.eq, "==": operator.eq, "!=": operator.ne,
       "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
_WHERE = re.compile(r"\s*([^\s=<>!]+)\s*(==|!=|<=|>=|=|<|>)\s*([^\s=<>!].*?)\s*", re.S)
FORMS = "KEY=VALUE, KEY!=VALUE, KEY<V, KEY<=V, KEY>V or KEY>=V"


class QueryError(ValueError):
    """A filter, sort or column names an unknown key or is malformed; the message says which and why."""


# ---------------------------------------------------------------------------------------------- reading


def find_runs(root=runs.DEFAULT_ROOT) -> list[tuple[str, Path]]:
    """``[(name, folder), ...]``: the run folders directly under ``root`` (named ``x``) and one level down
    (``sweep-1/x``), oldest first; ``[(root's name, root)]`` when ``root`` is itself a run folder."""
    root = Path(root)
    if runs.is_run(root):
        return [(root.name, root)]
    found = []
    for folder in _folders(root):
        if runs.is_run(folder):
            found.append((folder.name, folder))
        else:
            found += [(f"{folder.name}/{sub.name}", sub) for sub in _folders(folder) if runs.is_run(sub)]
    return sorted(found, key=lambda item: (_mtime(item[1]), item[0]))


def _folders(path) -> list[Path]:
    try:
        return [p for p in Path(path).iterdir() if p.is_dir() and not p.name.startswith(".")]
    except OSError:  # not a folder, or unreadable: nothing to list there
        return []


def _mtime(path) -> float:
    try:
        return os.path.getmtime(path)
    except OSError:
        return 0.0


def _scalars(mapping) -> dict:
    """The keys of ``mapping`` holding a string, number, bool or null; ``arch`` (a list of sizes) as ``784-128-10``."""
    flat = {}
    for key, value in mapping.items():
        if key == "arch" and isinstance(value, list):
            flat[key] = "-".join(str(v) for v in value)
        elif value is None or isinstance(value, (str, int, float, bool)):
            flat[key] = value
    return flat


def read_record(run, name=None) -> dict:
    """The flat record of the run folder ``run`` (see the module's docstring); never raises for a damaged run."""
    run = Path(run)
    status = runs.run_status(run)
    record = {"run": name or run.name, "path": str(run), "state": status["state"], "status": status["text"]}
    if status["state"] == "damaged":
        return record
    config = {}
    if (run / runs.CONFIG).is_file():
        try:
            config = runs._check_record(run / runs.CONFIG, read_mapping(run / runs.CONFIG))
        except (ConfigError, runs.RunError) as e:
            return {**record, "state": "damaged", "status": f"damaged: {e}"}
    # the summary's figures go over the config's keys, but a null there (a damaged summary) hides nothing
    summary = {k: v for k, v in status["summary"].items() if k != "epochs" and not (v is None and k in config)}
    return {**record, **_scalars(config), **_scalars(summary), "epochs_done": status["epochs_done"]}


def read_records(root=runs.DEFAULT_ROOT) -> list[dict]:
    """The records of every run :func:`find_runs` finds under ``root``, oldest first."""
    return [read_record(path, name) for name, path in find_runs(root)]


def fields(records=()) -> list[str]:
    """The keys a query may name: :data:`FIELDS`, then any other key a record holds."""
    return list(dict.fromkeys([*FIELDS, *(k for r in records for k in r)]))


def check_key(key, known) -> str:
    """``key`` if it is one of ``known``; else :class:`QueryError` naming it and the nearest known key."""
    if key in known:
        return key
    near = ALIASES.get(key.lower()) or suggest_key(key)
    if near not in known:
        close = difflib.get_close_matches(key.lower(), known, n=1, cutoff=0.6)
        near = close[0] if close else None
    hint = f"did you mean {near!r}?" if near else f"valid keys: {', '.join(known)}"
    raise QueryError(f"unknown key {key!r}; {hint}")


# ---------------------------------------------------------------------------------------------- queries


def _arch(value) -> str:
    """``784,128,10``, ``784-128-10`` or ``784x128x10`` -> ``784-128-10``; a layer list ``conv32x3,pool2,10`` (or
    ``conv32x3-pool2-10``) -> its run-name form ``conv32x3-pool2-10`` (the value itself when it is neither)."""
    from fnn.training import arch

    parts = re.split(r"\s*[,x-]\s*", value.strip())
    if all(p.isdigit() for p in parts):
        return "-".join(parts)
    for text in (value, value.replace("-", ",")):  # commas, or the run name's dashes (a preset may hold a dash)
        try:
            return arch.name(arch.parse(text))
        except arch.ArchError:
            pass
    return value


class Where:
    """One filter, ``KEY OP VALUE``: called on a record, True when the record's value satisfies it.

    A number is compared as a number (``lr<0.01``, ``epochs>=3``, ``lr=3e-3``), a bool as ``true``/``false``,
    anything else as a string; ``arch`` accepts ``784,128,10`` and ``784-128-10``. A record without a value
    for ``KEY`` (or null) does not match, whatever the operator.
    """

    def __init__(self, key, op, value):
        self.key, self.op, self.value = key, op, _arch(value) if key == "arch" else value
        self._compare = OPS[op]
        try:
            self._number = float(value)
        except ValueError:
            self._number = None

    def __call__(self, record) -> bool:
        have = record.get(self.key)
        if have is None:
            return False
        if isinstance(have, bool):
            return self._compare(str(have).lower(), self.value.lower())
        if isinstance(have, (int, float)):
            if self._number is None:
                raise QueryError(f"{self.key} holds numbers; {self.value!r} is not one")
            return self._compare(have, self._number)
        return self._compare(str(have), self.value)

    def __repr__(self):
        return f"Where({self.key}{self.op}{self.value})"


def parse_where(expr, known=FIELDS) -> Where:
    """``"lr<0.01"`` -> a :class:`Where`; :class:`QueryError` (the message does not repeat ``expr``) for a malformed
    expression or a key not in ``known``."""
    m = _WHERE.fullmatch(expr)
    if not m:
        raise QueryError(f"not {FORMS}")
    key, op, value = m.groups()
    check_key(key, known)
    if key == "arch" and op not in ("=", "==", "!="):
        raise QueryError(f"arch compares with = and != only, not {op}")
    return Where(key, op, value)


def filter_records(records, wheres) -> list[dict]:
    """The records every one of ``wheres`` holds for (all of them: ``--where a --where b`` is a and b)."""
    return [r for r in records if all(w(r) for w in wheres)]


def parse_sort(spec, known=FIELDS) -> list[tuple[str, bool]]:
    """``"-val_accuracy,params"`` -> ``[("val_accuracy", True), ("params", False)]``: (key, descending) pairs."""
    keys = []
    for part in spec.split(","):
        part = part.strip()
        desc = part.startswith("-")
        key = part[1:].strip() if desc else part
        if not re.fullmatch(r"[^\s=<>!,-][^\s=<>!,]*", key):
            raise QueryError("not KEY, -KEY (descending) or a comma-separated list of them")
        keys.append((check_key(key, known), desc))
    return keys


def _order(value):
    """Numbers (and bools) before strings; None is 'no value'."""
    if isinstance(value, (int, float)):
        return (0, value, "")
    return (1, 0, str(value))


def sort_records(records, keys) -> list[dict]:
    """``records`` ordered by ``keys`` (from :func:`parse_sort`), the first the most significant; a record without
    a value for a key goes last, ascending or descending; ties keep their order (oldest first)."""
    records = list(records)
    for key, desc in reversed(keys):
        present = [r for r in records if r.get(key) is not None]
        present.sort(key=lambda r: _order(r[key]), reverse=desc)
        records = present + [r for r in records if r.get(key) is None]
    return records


def parse_columns(spec, known) -> list[str]:
    """``"optimizer,lr,val_accuracy"`` -> the keys, each checked against ``known``."""
    keys = [part.strip() for part in spec.split(",")]
    if not all(keys):
        raise QueryError("not a comma-separated list of keys")
    return [check_key(k, known) for k in keys]


# ---------------------------------------------------------------------------------------------- varied keys


def sweep_grid(folder) -> list[str]:
    """The grid keys of the sweep recorded in ``folder/sweep.yaml`` (:func:`fnn.training.sweep.run_sweep`), or []."""
    from fnn.training.sweep import SPEC

    path = Path(folder) / SPEC
    if not path.is_file():
        return []
    try:
        grid = read_mapping(path).get("grid")
    except ConfigError:
        return []
    return [k for k in grid if k in FitConfig.keys()] if isinstance(grid, dict) else []


def varied_keys(records) -> list[str]:
    """The config keys the ``records``' runs vary: the grids recorded by the sweeps that hold them, then every
    other config key whose value differs between two readable runs (the key a sweep varied, when none is recorded)."""
    keys = [k for parent in dict.fromkeys(Path(r["path"]).parent for r in records) for k in sweep_grid(parent)]
    readable = [r for r in records if r["state"] != "damaged"]
    keys += [k for k in FitConfig.keys() if len({repr(r.get(k)) for r in readable}) > 1]
    return list(dict.fromkeys(keys))


__all__ = ["QueryError", "Where", "find_runs", "read_record", "read_records", "fields", "check_key", "parse_where",
           "filter_records", "parse_sort", "sort_records", "parse_columns", "sweep_grid", "varied_keys"]
