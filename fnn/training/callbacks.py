"""Callbacks for :func:`fnn.fit`: they watch training and steer it between epochs, as in Keras.

A callback is an object with any of these methods (subclass :class:`Callback`
for the defaults); ``logs`` is a dict of figures:

- ``on_train_begin(logs)``, ``on_train_end(logs)``;
- ``on_epoch_begin(epoch, logs)``; ``on_epoch_end(epoch, logs)``, where
  ``logs`` holds the epoch's ``loss``, metrics, ``val_*``, ``lr`` and
  ``seconds``: return True to stop training after this epoch;
- ``on_batch_end(batch, logs)`` with the batch's ``loss`` and metrics;
- ``on_warning(text)``: a training problem found by a diagnostics callback.

``epoch`` and ``batch`` count from 0. Before training, ``fit`` sets
``callback.loop``: the :class:`fnn.training.fit.Loop` in progress, through
which a callback reads and changes training: ``loop.stop_training = True``
(the run still finishes cleanly: the result, a model file and a summary are
written), ``loop.learning_rate = 1e-4`` or ``loop.scale_learning_rate(0.5)``
(from the next step on), ``loop.params`` (the step's own buffers: copy what
you keep, ``fnn.tree.tree_copy``). Raising :class:`StopTraining` stops as
cleanly. A callback that keeps state across epochs gives it through
``state()`` and takes it back in ``restore(state)``, so a resumed run goes on
exactly (JSON values, plus arrays under ``"arrays"``).

>>> stopper = EarlyStopping("val_loss", patience=2)
>>> [stopper.on_epoch_end(e, {"val_loss": v}) for e, v in enumerate([1.0, 0.9, 0.95, 0.97])]
[None, None, None, True]
>>> stopper.best_epoch
2
"""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path

from fnn.tree import tree_copy


class StopTraining(Exception):
    """Raised by a callback to end training cleanly after the current epoch (or batch)."""


class Callback:
    """A callback that does nothing: override what you need."""

    loop = None

    def on_train_begin(self, logs=None):
        pass

    def on_epoch_begin(self, epoch, logs=None):
        pass

    def on_batch_end(self, batch, logs=None):
        pass

    def on_epoch_end(self, epoch, logs=None):
        pass

    def on_train_end(self, logs=None):
        pass

    def on_warning(self, text):
        pass

    def state(self) -> dict:
        return {}

    def restore(self, state: dict) -> None:
        pass


def _monitored(logs, monitor):
    """``logs[monitor]``; for a ``val_`` figure missing (no validation data), the training figure instead."""
    if monitor in logs:
        return logs[monitor]
    if monitor.startswith("val_") and monitor[4:] in logs:
        return logs[monitor[4:]]
    raise KeyError(f"callback monitors {monitor!r}, which the epoch's logs do not have (they have {', '.join(sorted(logs))})")


def _better(mode, monitor):
    """``(is_better(value, best, min_delta))`` for ``mode`` "min", "max" or "auto" (max for accuracies and R², else min)."""
    if mode == "auto":
        mode = "max" if monitor.endswith(("accuracy", "r2")) else "min"
    if mode == "min":
        return lambda v, best, d: best is None or v < best - d
    if mode == "max":
        return lambda v, best, d: best is None or v > best + d
    raise ValueError(f"mode must be 'min', 'max' or 'auto', got {mode!r}")


# ---------------------------------------------------------------- steering


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs; keep the best epoch's weights.

    ``patience=None`` never stops (it only tracks the best epoch). With
    ``restore_best_weights`` the result holds the best epoch's params (and
    model state). ``best_epoch`` counts from 1; ``stopped_epoch`` is where it stopped.
    """

    def __init__(self, monitor="val_loss", patience=5, min_delta=0.0, mode="auto", restore_best_weights=True):
        if patience is not None and (not isinstance(patience, int) or isinstance(patience, bool) or patience < 1):
            raise ValueError(f"patience must be a whole number >= 1 (or None), got {patience!r}")
        if not (isinstance(min_delta, (int, float)) and math.isfinite(min_delta) and min_delta >= 0):
            raise ValueError(f"min_delta must be a finite number >= 0, got {min_delta!r}")
        self.monitor, self.patience, self.min_delta, self.restore_best_weights = monitor, patience, float(min_delta), restore_best_weights
        self.better = _better(mode, monitor)
        self.best = self.best_epoch = self.stopped_epoch = None
        self.wait, self.best_params, self.best_state = 0, None, None

    def on_epoch_end(self, epoch, logs=None):
        value = _monitored(logs, self.monitor)
        if self.better(value, self.best, self.min_delta):
            self.best, self.best_epoch, self.wait = value, epoch + 1, 0
            if self.restore_best_weights and self.loop is not None:
                self.best_params, self.best_state = tree_copy(self.loop.params), tree_copy(self.loop.state)
            return None
        self.wait += 1
        if self.patience is not None and self.wait >= self.patience:
            self.stopped_epoch = epoch + 1
            return True
        return None

    def on_train_end(self, logs=None):
        if self.restore_best_weights and self.best_params is not None and self.loop is not None:
            self.loop.params, self.loop.state = self.best_params, self.best_state

    def state(self):
        arrays = {"params": self.best_params, "state": self.best_state} if self.best_params is not None else None
        return {"best": self.best, "best_epoch": self.best_epoch, "wait": self.wait, "arrays": arrays}

    def restore(self, state):
        best, best_epoch, wait = state.get("best"), state.get("best_epoch"), state.get("wait", 0)
        if not (best is None or isinstance(best, (int, float))) or not (best_epoch is None or type(best_epoch) is int) \
                or type(wait) is not int:
            raise ValueError(f"best {best!r:.20}, best_epoch {best_epoch!r:.20}, wait {wait!r:.20}")
        self.best, self.best_epoch, self.wait = best, best_epoch, wait
        arrays = state.get("arrays")
        if arrays:
            self.best_params, self.best_state = arrays.get("params"), arrays.get("state", {})


class ReduceLROnPlateau(Callback):
    """Multiply the learning rate by ``factor`` when ``monitor`` has not improved for ``patience`` epochs.

    After a reduction it waits ``cooldown`` epochs; the rate never goes below ``min_lr``.
    """

    def __init__(self, monitor="val_loss", factor=0.1, patience=3, min_delta=1e-4, cooldown=0, min_lr=0.0, mode="auto"):
        if not (isinstance(factor, (int, float)) and 0 < factor < 1):
            raise ValueError(f"factor must be a number in (0, 1), got {factor!r}")
        if not isinstance(patience, int) or isinstance(patience, bool) or patience < 1:
            raise ValueError(f"patience must be a whole number >= 1, got {patience!r}")
        self.monitor, self.factor, self.patience, self.min_delta = monitor, float(factor), patience, float(min_delta)
        self.cooldown, self.min_lr = int(cooldown), float(min_lr)
        self.better = _better(mode, monitor)
        self.best, self.wait, self.cooling = None, 0, 0
        self.reductions = []  # (epoch counted from 1, new rate)

    def on_epoch_end(self, epoch, logs=None):
        value = _monitored(logs, self.monitor)
        if self.cooling:
            self.cooling -= 1
            self.wait = 0
        if self.better(value, self.best, self.min_delta):
            self.best, self.wait = value, 0
            return None
        self.wait += 1
        if self.wait >= self.patience and not self.cooling:
            lr = self.loop.learning_rate
            new = max(lr * self.factor, self.min_lr)
            if new < lr:
                self.loop.learning_rate = new
                self.reductions.append((epoch + 1, new))
            self.wait, self.cooling = 0, self.cooldown
        return None

    def state(self):
        return {"best": self.best, "wait": self.wait, "cooling": self.cooling, "reductions": self.reductions}

    def restore(self, state):
        self.best, self.wait, self.cooling = state.get("best"), int(state.get("wait", 0)), int(state.get("cooling", 0))
        self.reductions = [tuple(r) for r in state.get("reductions", [])]


class LearningRateScheduler(Callback):
    """Set the learning rate at the start of every epoch to ``schedule(epoch, lr)`` (``epoch`` from 0, ``lr`` the current rate).

    The rate scales the optimizer's own schedule from the next step on; with a constant optimizer rate it is exactly the rate used.
    """

    def __init__(self, schedule):
        if not callable(schedule):
            raise TypeError(f"schedule must be a function (epoch, lr) -> lr, got {schedule!r}")
        self.schedule = schedule

    def on_epoch_begin(self, epoch, logs=None):
        lr = float(self.schedule(epoch, self.loop.learning_rate))
        if not (math.isfinite(lr) and lr > 0):
            raise ValueError(f"the learning-rate schedule gave {lr} for epoch {epoch}; rates must be finite and > 0")
        self.loop.learning_rate = lr


# ---------------------------------------------------------------- recording


class ModelCheckpoint(Callback):
    """Save the model (``fnn.save_model``) after every epoch, or only when ``monitor`` improves (``save_best_only``).

    ``path`` may hold ``{epoch}`` (from 1) and the logs' names, e.g. ``"model-{epoch:02d}-{val_loss:.3f}.npz"``.
    """

    def __init__(self, path, monitor="val_loss", save_best_only=False, mode="auto", metadata=None):
        self.path, self.monitor, self.save_best_only, self.metadata = str(path), monitor, save_best_only, metadata or {}
        self.better = _better(mode, monitor)
        self.best, self.saved = None, []

    def on_epoch_end(self, epoch, logs=None):
        if self.save_best_only:
            value = _monitored(logs, self.monitor)
            if not self.better(value, self.best, 0.0):
                return None
            self.best = value
        from fnn.serialization import save_model

        path = self.path.format(**{**logs, "epoch": epoch + 1})
        loop = self.loop
        save_model(path, loop.model, loop.params, loop.in_shape, {**self.metadata, "epoch": epoch + 1}, state=loop.state)
        self.saved.append(path)
        return None

    def state(self):
        return {"best": self.best, "saved": self.saved}

    def restore(self, state):
        self.best, self.saved = state.get("best"), list(state.get("saved", []))


class JSONLogger(Callback):
    """One JSON object per epoch appended to ``path`` (JSON lines); with ``append=False`` the file is started afresh."""

    def __init__(self, path, append=False):
        self.path, self.append = Path(path), append

    def on_train_begin(self, logs=None):
        if not self.append:
            self._rewrite(self.loop.records if self.loop is not None else [])

    def _rewrite(self, records):
        from fnn.serialization import atomic_write

        text = "".join(json.dumps(r) + "\n" for r in records)
        atomic_write(self.path, lambda f: f.write(text.encode()))

    def on_epoch_end(self, epoch, logs=None):
        from fnn.serialization import open_append

        with open_append(self.path) as f:
            f.write(json.dumps(logs) + "\n")


class CSVLogger(Callback):
    """One CSV row per epoch in ``path``; the columns are the first epoch's figures."""

    def __init__(self, path, append=False):
        self.path, self.append, self.columns = Path(path), append, None

    def on_train_begin(self, logs=None):
        if not self.append and self.path.exists():
            self.path.unlink()

    def on_epoch_end(self, epoch, logs=None):
        new = not self.path.exists() or self.path.stat().st_size == 0
        if self.columns is None:
            self.columns = list(logs)
        from fnn.serialization import open_append

        with open_append(self.path) as f:
            w = csv.DictWriter(f, self.columns, extrasaction="ignore")
            if new:
                w.writeheader()
            w.writerow(logs)


# ---------------------------------------------------------------- progress


def _figures(logs, names):
    """``loss 0.1234  acc 0.9876  val_loss ...``: the training figures, then the validation ones."""
    keys = [n for n in names if n in logs] + [f"val_{n}" for n in names if f"val_{n}" in logs]
    return "  ".join(f"{k.replace('accuracy', 'acc')} {logs[k]:.4f}" for k in keys if isinstance(logs[k], (int, float)))


class ProgressBar(Callback):
    """What :func:`fnn.fit` shows with ``verbose``: one line per epoch; on a terminal a live bar while it runs.

    On a terminal (``tty``) each epoch draws one live line, a bar with the running loss, redrawn in
    place (``\\r`` + the text + ``\\x1b[K``, clear to end of line) at most every ``REDRAW`` seconds; at
    the epoch's end that line is erased and replaced by the epoch's summary, so one line stays per epoch.
    Piped, only the summary lines are written (no control characters).
    """

    REDRAW = 0.1  # seconds between redraws of the live line
    WIDTH = 24  # characters of the bar itself

    def __init__(self, file=None, tty=None, quiet=False):
        self.file, self.quiet = file, quiet
        self.tty = self._out().isatty() if tty is None else tty
        self.live = False  # a live line is on screen
        self.steps, self.drawn, self.epochs = 0, 0.0, 0

    def _out(self):
        return self.file if self.file is not None else sys.stdout

    def line(self, text):
        """A finished line; on a terminal it first erases the live one."""
        if self.quiet:
            return
        out = self._out()
        if self.live:
            out.write("\r\x1b[K")
            self.live = False
        out.write(text + "\n")
        out.flush()

    def on_train_begin(self, logs=None):
        loop = self.loop
        self.epochs = loop.epochs
        self.names = loop.task.metric_names if loop is not None else ("accuracy",)
        if loop is not None and not loop.info.get("header_shown"):
            self.line(f"fit: {loop.train_examples} train / {loop.val_examples} val examples, batch {loop.batch_size}, "
                      f"{loop.steps_per_epoch} steps an epoch")

    def on_epoch_begin(self, epoch, logs=None):
        self.steps, self.started, self.drawn = self.loop.steps_per_epoch if self.loop else 0, time.perf_counter(), 0.0

    def on_batch_end(self, batch, logs=None):
        if not self.tty or self.quiet:
            return
        now = time.perf_counter()
        if self.live and now - self.drawn < self.REDRAW and batch + 1 < self.steps:
            return
        self.drawn = now
        done = (batch + 1) / max(1, self.steps)
        filled = int(done * self.WIDTH)
        eta = (now - self.started) / done * (1 - done)
        epoch = self.loop.epoch if self.loop else 0
        text = (f"epoch {epoch + 1}/{self.epochs} loss {logs['loss']:.4f}  [{'#' * filled}{'-' * (self.WIDTH - filled)}]"
                f" {batch + 1}/{self.steps}  eta {eta:.0f}s")
        out = self._out()
        out.write("\r" + text[: max(20, shutil.get_terminal_size().columns - 1)] + "\x1b[K")  # never wraps: \r redraws it
        out.flush()
        self.live = True

    def on_epoch_end(self, epoch, logs=None):
        lr = f"  lr {logs['lr']:.2e}" if isinstance(logs.get("lr"), (int, float)) else ""
        self.line(f"epoch {epoch + 1:>3}/{self.epochs}  {_figures(logs, ('loss', *self.names))}{lr}  {logs['seconds']:.2f}s")

    def on_warning(self, text):
        self.line(f"warning: {text}")

    def close(self):
        """After an error or Ctrl-C: keep the live line (where training stopped) and end it."""
        if self.live:
            self._out().write("\n")
            self._out().flush()
            self.live = False


def verbose_callbacks(verbose, file=None) -> list:
    """The progress callbacks for ``fit(verbose=...)``: None shows progress on a terminal only, 0 nothing, 1 or 2 lines."""
    if verbose is None:
        out = file if file is not None else sys.stdout
        verbose = 1 if out.isatty() and not os.environ.get("FNN_QUIET") else 0
    if verbose not in (0, 1, 2, True, False):
        raise ValueError(f"verbose must be None, 0, 1 or 2, got {verbose!r}")
    return [ProgressBar(file=file, tty=None if verbose == 1 else False)] if verbose else []


__all__ = ["Callback", "StopTraining", "EarlyStopping", "ReduceLROnPlateau", "LearningRateScheduler", "ModelCheckpoint",
           "JSONLogger", "CSVLogger", "ProgressBar"]
