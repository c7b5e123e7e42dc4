"""Run folders: where a training run keeps its config, metrics, model and checkpoints.

A run folder (``runs/<dataset>-<arch>-<timestamp>/`` by default) holds:

- ``config.yaml``: the fully resolved configuration;
- ``metrics.jsonl``: one JSON object per epoch;
- ``model.npz``: the final model (:func:`fnn.serialization.save_model`);
- ``checkpoint.npz``: the latest checkpoint (params, optimizer state, key, cursor, history);
- ``train.log``: the log;
- ``summary.json``: test accuracy and loss, epochs, seconds, params, seed, dataset digests, versions;
- ``diagnostics.jsonl``: per-layer statistics per epoch, with ``diagnostics`` on (:mod:`fnn.training.diagnostics`);
- ``status.json``: only while a run is stopped unfinished by something fnn saw (the loss diverged, Ctrl-C):
  ``{"state": "diverged" | "interrupted", "epoch": ..., "step": ..., "message": ...}``;
- ``.lock``: locked (``fcntl.flock``) by the process training in the folder, and holding its pid (:func:`lock`).

:func:`run_status` tells a finished run from an unfinished one (diverged, interrupted, or killed: a
checkpoint but no summary and no ``status.json``) and from a damaged one.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
import stat
from pathlib import Path

CONFIG = "config.yaml"
METRICS = "metrics.jsonl"
MODEL = "model.npz"
CHECKPOINT = "checkpoint.npz"
LOG = "train.log"
SUMMARY = "summary.json"
DIAGNOSTICS = "diagnostics.jsonl"
STATUS = "status.json"
LOCK = ".lock"
DEFAULT_ROOT = "runs"
#: The files training writes into a run folder (what ``overwrite`` removes first).
FILES = (CONFIG, METRICS, MODEL, CHECKPOINT, LOG, SUMMARY, DIAGNOSTICS, STATUS)
#: The largest ``summary.json`` / ``status.json`` and ``metrics.jsonl`` / ``diagnostics.jsonl`` read back.
MAX_JSON_BYTES = 1 << 20
MAX_JSONL_BYTES = 64 << 20


class RunError(ValueError):
    """A path is neither a run folder nor a model file, or a run folder's summary or metrics are damaged."""


class RunExistsError(RunError):
    """Training was asked to start afresh in a folder that holds a run (``path``; ``text``: how it stands)."""

    def __init__(self, path, text):
        super().__init__(f"{path} already holds a run ({text}); resume it or overwrite it")
        self.path, self.text = Path(path), text


class RunLockedError(RunError):
    """Another process is training in the run folder ``path`` (``holder``: its pid and host, when known)."""

    def __init__(self, path, holder):
        by = f"another process ({holder})" if holder else "another process"
        super().__init__(f"{path} is in use: {by} is training in it")
        self.path, self.holder = Path(path), holder


@contextlib.contextmanager
def lock(run):
    """Hold the run folder's lock while training in it: ``run/.lock``, locked with ``fcntl.flock``.

    A second process (or a second call in this one) gets :class:`RunLockedError` naming the folder and the
    holder's pid at once, never waits. The kernel drops the lock when its holder ends, however it ends
    (``kill -9`` too), so a lock never outlives its process and the next ``--resume`` just takes it; the
    file is removed on leaving (a killed holder leaves it, unlocked). Without ``fcntl`` (Windows)
    nothing is locked.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on POSIX
        yield
        return
    path = Path(run) / LOCK
    while True:
        fd = _lock_file(path, fcntl, run)
        try:  # the file may have been removed by a holder leaving just before we locked it: lock the new one
            same = os.path.samestat(os.fstat(fd), os.lstat(path))
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
        yield
    finally:
        try:
            os.unlink(path)  # while still locked: whoever opened it before retries on the next file
        except FileNotFoundError:
            pass
        os.close(fd)  # releases the lock


def _lock_file(path, fcntl, run) -> int:
    """A descriptor of the lock file ``path``, locked; :class:`RunLockedError` when another holds it."""
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags, 0o644)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise RunError(f"{path}: is a symbolic link; fnn locks only a regular file there") from None
        raise
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise RunError(f"{path}: is not a regular file; fnn locks only a regular file there")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise
            raise RunLockedError(run, _holder(fd)) from None
    except BaseException:
        os.close(fd)
        raise
    return fd


def _holder(fd) -> str:
    """What the lock file says of its holder (``pid 123 on host``), or "" (it may be writing it)."""
    try:
        text = os.pread(fd, 200, 0).decode("utf-8", "replace").strip()
    except OSError:
        return ""
    return text if text.startswith("pid ") and "\n" not in text else ""


def is_run(path) -> bool:
    """True when ``path`` is a run folder, finished or not: it holds a ``summary.json``, ``model.npz`` or ``checkpoint.npz``."""
    p = Path(path)
    return p.is_dir() and any((p / name).is_file() for name in (SUMMARY, MODEL, CHECKPOINT))


def is_finished(path) -> bool:
    """True when ``path`` is a run folder whose training finished: it holds a ``summary.json`` or a ``model.npz``."""
    p = Path(path)
    return p.is_dir() and ((p / SUMMARY).is_file() or (p / MODEL).is_file())


def list_runs(root=DEFAULT_ROOT) -> list[Path]:
    """Run folders (finished or not, see :func:`is_run`) directly under ``root``, oldest first (by modification time)."""
    root = Path(root)
    if not root.is_dir():
        return []
    runs = [p for p in root.iterdir() if is_run(p)]
    return sorted(runs, key=lambda p: (os.path.getmtime(p), p.name))


#: What the readers below check: keys that must hold a number (or null), an integer, a name, an arch (sizes or layers).
NUMBERS = ("test_accuracy", "test_loss", "val_accuracy", "train_seconds", "lr", "loss", "accuracy", "val_loss",
           "seconds", "cpu_seconds", "peak_rss_mb")
INTEGERS = ("epochs", "params", "batch_size", "seed", "best_epoch", "epoch")
NAMES = ("dataset", "optimizer")


def _check_record(path, record, where=""):
    """Raise :class:`RunError` unless ``record`` is an object whose known keys have their types."""
    if not isinstance(record, dict):
        raise RunError(f"{path}{where}: expected a JSON object, found {type(record).__name__}")
    for key, value in record.items():
        ok = (value is None
              or (key in NUMBERS and isinstance(value, (int, float)) and not isinstance(value, bool))
              or (key in INTEGERS and type(value) is int)
              or (key in NAMES and isinstance(value, str))
              or (key == "arch" and isinstance(value, list) and all(type(v) in (int, str) for v in value))
              or key not in NUMBERS + INTEGERS + NAMES + ("arch",))
        if not ok:
            raise RunError(f"{path}{where}: {key!r} holds {value!r:.40}, not what fnn writes there")
    return record


def _read_json(path, what):
    """The JSON value in ``path`` (a regular file of at most :data:`MAX_JSON_BYTES`); :class:`RunError` naming it."""
    from fnn.serialization import read_regular

    try:
        return json.loads(read_regular(path, MAX_JSON_BYTES, RunError, what).decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as e:
        if isinstance(e, RunError):
            raise
        raise RunError(f"{path}: not a readable {what} ({type(e).__name__})") from None


def read_summary(run) -> dict:
    """The run's ``summary.json`` as a dict ({} when it has none yet); :class:`RunError` if it is damaged."""
    path = Path(run) / SUMMARY
    if not path.is_file():
        return {}
    return _check_record(path, _read_json(path, "summary"))


def read_metrics(run) -> list[dict]:
    """The run's ``metrics.jsonl``: one dict per finished epoch (a torn last line is skipped).

    :class:`RunError` names the line when one is not such a record.
    """
    path = Path(run) / METRICS
    return [_check_record(path, row, f" line {i}") for i, row in enumerate(read_jsonl(path), 1)]


def read_jsonl(path) -> list[dict]:
    """One dict per line of a JSON-lines file, stopping at a torn line; [] when there is no file."""
    from fnn.serialization import read_regular

    path, rows = Path(path), []
    if path.is_file():
        try:
            lines = read_regular(path, MAX_JSONL_BYTES, RunError, "a JSON-lines file").decode("utf-8").splitlines()
        except UnicodeDecodeError as e:
            raise RunError(f"{path}: not a readable JSON-lines file ({type(e).__name__})") from None
        for i, line in enumerate(lines, 1):
            try:
                rows.append(json.loads(line))
            except (ValueError, RecursionError):
                if i == len(lines):  # torn by a kill in the middle of an append
                    break
                raise RunError(f"{path}: line {i} is not JSON") from None
    return rows


def write_status(run, state: str, **info) -> None:
    """Record in ``run/status.json`` why training stopped unfinished (``state``: ``"diverged"`` or ``"interrupted"``)."""
    from fnn.serialization import atomic_write

    text = json.dumps({"state": state, **info})
    atomic_write(Path(run) / STATUS, lambda f: f.write(text.encode()))


def clear_status(run) -> None:
    """Forget a previous stop (training starts or resumes in ``run``)."""
    try:
        (Path(run) / STATUS).unlink()
    except FileNotFoundError:
        pass


def read_status(run) -> dict:
    """``run/status.json`` as a dict ({} when there is none); :class:`RunError` if it is damaged."""
    path = Path(run) / STATUS
    if not path.is_file():
        return {}
    status = _check_record(path, _read_json(path, "status"))
    if status.get("state") not in ("diverged", "interrupted"):
        raise RunError(f"{path}: 'state' holds {status.get('state')!r:.40}, not what fnn writes there")
    return status


def _planned_epochs(run):
    """``epochs`` from the run's ``config.yaml``, or None when it has none or it cannot be read."""
    from fnn.training.config import ConfigError, read_mapping

    if not (Path(run) / CONFIG).is_file():
        return None
    try:
        epochs = read_mapping(Path(run) / CONFIG).get("epochs")
    except ConfigError:
        return None
    return epochs if type(epochs) is int else None


def run_status(run) -> dict:
    """Where the run in folder ``run`` stands, read from its files (never raises for a damaged one).

    Returns a dict with ``state``: ``"finished"``, ``"diverged"``, ``"interrupted"`` (Ctrl-C, checkpoint
    written), ``"unfinished"`` (killed, or still training: a checkpoint but no summary) or ``"damaged"``
    (a file fnn wrote cannot be read back); ``epochs_done`` (finished epochs), ``epochs`` (planned, or
    None), ``summary`` (the summary, {} unless finished), and ``text``, e.g.
    ``"unfinished (killed or interrupted at epoch 3 of 10)"``.
    """
    run = Path(run)
    try:
        summary, metrics, status = read_summary(run), read_metrics(run), read_status(run)
    except RunError as e:
        return {"state": "damaged", "epochs_done": None, "epochs": None, "summary": {}, "text": f"damaged: {e}"}
    done, planned = len(metrics), _planned_epochs(run)
    of = f" of {planned}" if planned else ""
    if summary or (run / MODEL).is_file():
        state, text = "finished", "finished"
        done = summary["epochs"] if summary.get("epochs") is not None else done  # a null there: the metrics count
    elif status.get("state") == "diverged":
        state, text = "diverged", f"diverged at epoch {status.get('epoch', done + 1)}{of}"
    elif status.get("state") == "interrupted":
        state, text = "interrupted", f"interrupted at epoch {status.get('epoch', done + 1)}{of} (resume with fnn-cli fit --resume)"
    else:
        state, text = "unfinished", f"unfinished (killed or interrupted at epoch {done + 1}{of})"
    return {"state": state, "epochs_done": done, "epochs": planned, "summary": summary, "text": text}


def latest_run(root=DEFAULT_ROOT, dataset=None) -> Path | None:
    """The most recent run under ``root`` that has a model (of ``dataset``, when given), or None."""
    for run in reversed(list_runs(root)):
        try:
            if (run / MODEL).is_file() and (dataset is None or read_summary(run).get("dataset") == dataset):
                return run
        except RunError:  # a damaged summary: not a run to pick
            continue
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
