"""``fnn.fit``: train any model on arrays, with a history, callbacks that steer, checkpoints and exact resume.

>>> import fnn
>>> x = fnn.random.normal(fnn.random.key(0), (200, 2))
>>> y = (x[:, 0] * x[:, 1] > 0).astype(np.int64)                     # a binary task
>>> result = fnn.fit(fnn.mlp([2, 16, 1]), x, y, loss=fnn.losses.binary_cross_entropy,
...                  optimizer=fnn.optim.adam(1e-2), epochs=3, batch_size=32, verbose=0)
>>> sorted(result.history)
['accuracy', 'cpu_seconds', 'epoch', 'loss', 'lr', 'peak_rss_mb', 'seconds']
>>> len(result.history["loss"]), result.params["0"]["w"].shape
(3, (2, 16))

A run is a pure function of its data, model, optimizer and key: every
shuffle order and dropout mask derives from ``seed`` (or ``key``), so the
same seed gives bit-identical weights, and a run resumed from a checkpoint
ends exactly where an uninterrupted one does. Training runs through
:func:`fnn.make_inplace_train_step` in buffers the loop owns.
"""

from __future__ import annotations

import math
import resource
import signal
import threading
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np

from fnn import batching, losses, optim, random, serialization, tasks
from fnn.layers.base import init_state
from fnn.train import NonFiniteLoss, evaluate, make_inplace_train_step
from fnn.training import checkpoints
from fnn.training.callbacks import StopTraining, verbose_callbacks
from fnn.tree import tree_flatten
from fnn.workspace import Workspace

#: Training stops when the loss is NaN/Inf or exceeds this multiple of the run's first batch loss.
DIVERGENCE_FACTOR = 1e6


class TrainingDiverged(RuntimeError):
    """The loss became NaN/Inf or exploded; the message names the epoch, step and the layer to blame."""

    def __init__(self, message, epoch, step):
        super().__init__(message)
        self.epoch, self.step = epoch, step


class Interrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM stopped training between two steps; ``path`` is the checkpoint written (or None)."""

    def __init__(self, path, signum, result):
        super().__init__(str(path))
        self.path, self.signum, self.result = path, signum, result


class FitResult(NamedTuple):
    """What :func:`fit` returns: the trained ``params`` (and model ``state``), the ``opt_state`` to go on from, and the history."""

    params: dict
    opt_state: dict
    state: dict
    history: dict  # name -> per-epoch list: loss, metrics, val_*, lr, seconds, ...
    records: list  # the same, one dict per epoch
    stopped_early: bool
    task: tasks.Task
    in_shape: tuple
    train_seconds: float


class Loop:
    """The training in progress, as callbacks see it (``callback.loop``).

    Read: ``model``, ``in_shape``, ``task``, ``epoch`` (from 0), ``epochs``,
    ``steps_per_epoch``, ``batch_size``, ``train_examples``, ``val_examples``,
    ``history`` / ``records``, ``info`` (what the caller passed). Read and
    change between epochs: ``params``, ``opt_state``, ``state``,
    ``learning_rate``, ``stop_training``.
    """

    def __init__(self, model, in_shape, task, epochs, batch_size, steps_per_epoch, train_examples, val_examples, info):
        self.model, self.in_shape, self.task, self.epochs, self.batch_size = model, in_shape, task, epochs, batch_size
        self.steps_per_epoch, self.train_examples, self.val_examples, self.info = steps_per_epoch, train_examples, val_examples, info
        self.params = self.opt_state = self.state = None
        self.records, self.epoch, self.stop_training, self.callbacks = [], 0, False, []

    @property
    def history(self) -> dict:
        return _columns(self.records)

    @property
    def learning_rate(self) -> float:
        return optim.learning_rate(self.opt_state)

    @learning_rate.setter
    def learning_rate(self, lr):
        self.opt_state = optim.set_learning_rate(self.opt_state, float(lr))

    def scale_learning_rate(self, factor):
        self.opt_state = optim.scale_learning_rate(self.opt_state, factor)

    def warn(self, text):
        """Tell every callback about a training problem (``on_warning``)."""
        self.call("on_warning", text)

    def call(self, name, *args):
        """Call ``name`` on every callback that has it; True when one of them asks to stop."""
        stop = False
        for cb in self.callbacks:
            method = getattr(cb, name, None)
            if method is not None and method(*args) is True:
                stop = True
        return stop


def _columns(records) -> dict:
    names = list(dict.fromkeys(k for r in records for k in r))
    return {k: [r.get(k) for r in records] for k in names}


class _DeferredSignals:
    """Turn Ctrl-C and SIGTERM into a flag checked between steps, so a checkpoint never lands mid-update."""

    def __init__(self):
        self.pending, self.old = None, {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.old[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum, frame):
        if self.pending is not None:  # a second one stops at once
            raise KeyboardInterrupt
        self.pending = signum

    def restore(self):
        for sig, old in self.old.items():
            signal.signal(sig, old)


def _peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _whole(name, value, least):
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < least:
        raise ValueError(f"{name} must be a whole number >= {least}, got {value!r}")
    return int(value)


def blame_layer(model, params, x, state=None) -> str:
    """Which layer of a serial ``model`` broke on ``x``: the first with a non-finite output, else the largest output."""
    from fnn.layers.base import apply_model

    largest = (-1.0, None, None)
    children = model.children or (model,)
    for i, child in enumerate(children):
        p = params[str(i)] if model.children else params
        s = (state or {}).get(str(i), {}) if model.children else state
        with np.errstate(all="ignore"):
            x = apply_model(child, p, x, state=s if child.stateful else None)
            peak = float(np.max(np.abs(x))) if x.size else 0.0
        if not np.isfinite(x).all():
            return f"first non-finite output: layer {i} ({child.spec['type']})"
        largest = max(largest, (peak, i, child.spec["type"]), key=lambda t: t[0])
    return f"no layer output is non-finite; the largest is layer {largest[1]} ({largest[2]}), max |x| = {largest[0]:.3g}"


def _example_weights(y, n, class_weight, sample_weight):
    """Per-example weights ``(n,)`` (``sample_weight`` times ``class_weight[label]``), or None."""
    if class_weight is None and sample_weight is None:
        return None
    w = np.ones(n, np.float64)
    if sample_weight is not None:
        sw = np.asarray(sample_weight, np.float64)
        if sw.shape != (n,) or not np.isfinite(sw).all() or (sw < 0).any():
            raise ValueError(f"sample_weight must hold {n} finite numbers >= 0, one per example; got shape {sw.shape}")
        w *= sw
    if class_weight is not None:
        labels = y.argmax(axis=1) if y.ndim == 2 else y
        if not np.issubdtype(labels.dtype, np.integer):
            raise ValueError("class_weight needs integer class labels")
        table = dict(class_weight) if isinstance(class_weight, dict) else dict(enumerate(np.asarray(class_weight, np.float64).tolist()))
        bad = [v for v in table.values() if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0)]
        if bad:
            raise ValueError(f"class weights must be finite numbers >= 0, got {bad[:3]}")
        missing = sorted(set(np.unique(labels).tolist()) - set(table))
        if missing:
            raise ValueError(f"class_weight has no weight for classes {missing[:5]}")
        w *= np.vectorize(table.__getitem__, otypes=[np.float64])(labels) if len(labels) else 1.0
    return w.astype(np.float32)


def _check_layout(params, expected):
    got, want = dict(tree_flatten(params)), dict(tree_flatten(expected))
    if got.keys() != want.keys():
        raise ValueError(f"params {sorted(got)[:6]} do not fit the model, which has {sorted(want)[:6]}")
    for p, w in want.items():
        if np.shape(got[p]) != np.shape(w):
            raise ValueError(f"params {p} is shaped {np.shape(got[p])}; the model needs {np.shape(w)}")


def _check_targets(task, y, outputs, where):
    """Refuse labels or targets that do not fit the task and the model's output width, naming what is wrong."""
    if task.kind == "multiclass":
        if y.ndim == 2 and y.shape[1] == outputs:
            return
        if y.ndim == 2 and y.shape[1] == 1:
            raise ValueError(f"{where} labels are shaped {y.shape}: pass them as a vector, y.ravel()")
        if y.ndim != 1:
            raise ValueError(f"{where} labels must be (n,) class numbers or (n, {outputs}) one-hot rows, got shape {y.shape}")
        if not np.issubdtype(y.dtype, np.integer):
            raise ValueError(f"{where} labels must be whole class numbers, got dtype {y.dtype}")
        if len(y) and (y.min() < 0 or y.max() >= outputs):
            raise ValueError(f"{where} labels must lie in 0..{outputs - 1} (the model has {outputs} outputs), found {y.min()}..{y.max()}")
    elif task.kind in ("binary", "multilabel"):
        if y.size != len(y) * outputs:
            raise ValueError(f"{where} targets shaped {y.shape} do not fit the model's {outputs} output(s)")
        if len(y) and not np.isin(y, (0, 1)).all():
            raise ValueError(f"{where} targets of a binary cross-entropy must be 0 or 1")
    elif y.size != len(y) * outputs:
        raise ValueError(f"{where} targets shaped {y.shape} do not fit the model's {outputs} output(s)")


def fit(model, x, y, *, loss=losses.softmax_cross_entropy, optimizer=None, epochs=10, batch_size=128,
        validation_data=None, validation_split=0.0, callbacks=(), seed=0, key=None, params=None, opt_state=None,
        state=None, in_shape=None, penalty=None, class_weight=None, sample_weight=None, transform=None, shuffle=True,
        verbose=None, checkpoint=None, resume=False, diverge_factor=DIVERGENCE_FACTOR, info=None, threads=None,
        augment=None) -> FitResult:
    """Train ``model`` on ``(x, y)``; returns a :class:`FitResult` (params, optimizer and model state, history).

    Args:
      model: any :class:`fnn.layers.Layer`, fnn's or your own.
      x, y: the training data, ``(n, ...)`` and ``(n,)`` labels (or ``(n, k)`` one-hot or targets).
        ``x`` as float32 features, or stored as it is (uint8 images) with ``transform``.
      loss: a :class:`fnn.losses.Loss`; it sets the task and its metrics (:mod:`fnn.tasks`):
        softmax cross-entropy (default) and categorical cross-entropy: accuracy; binary
        cross-entropy: accuracy at threshold 0.5; MSE/MAE: mse, mae (and r2 on validation).
      optimizer: an :class:`fnn.optim.Optimizer` (default Adam 1e-3).
      epochs, batch_size: passes over the data; rows per step (the last batch of an epoch is smaller).
      validation_data: ``(x_val, y_val)``, evaluated after every epoch (``val_*`` in the history);
        or ``validation_split``: that share of ``(x, y)``, drawn with the key (stratified by class).
      callbacks: see :mod:`fnn.training.callbacks` (EarlyStopping, ReduceLROnPlateau, ...).
      seed / key: the run's randomness: init, the split, shuffle orders, dropout masks.
      params, opt_state, state: start from these instead of ``model.init`` / ``optimizer.init``.
      in_shape: the model's input shape (default: ``(-1,) + x.shape[1:]``, after ``transform``).
      penalty: an L1/L2 :class:`fnn.losses.Penalty`; class_weight (dict or list by class) and
        sample_weight (one per example) weigh the loss.
      transform: ``transform(batch, ws)`` turning stored batches into float32 (e.g. :func:`fnn.batching.to_float`).
      shuffle: a new seeded order each epoch (else the stored order).
      augment: ``augment(batch, key) -> batch`` on each stored training batch before ``transform``
        (e.g. :func:`fnn.datasets.augment.affine`); its keys derive from the run's key, epoch and step.
      verbose: None shows progress on a terminal and nothing when piped; 0 never; 1 bar and lines; 2 lines.
      checkpoint, resume: a path where the whole training state is written after every epoch
        (atomically, and on Ctrl-C or SIGTERM); with ``resume`` training goes on from it, bit for bit.
      diverge_factor: stop with :class:`TrainingDiverged` when the loss exceeds this multiple of the
        first batch's (a NaN/Inf loss always stops); None turns the check off.
      info: a JSON-able dict kept in the checkpoint and shown to callbacks (``loop.info``).
      threads: cap BLAS threads for the run (threadpoolctl).

    Raises :class:`TrainingDiverged` (nothing after the last good epoch is lost), :class:`Interrupted`
    on Ctrl-C or SIGTERM (after writing the checkpoint), ``ValueError`` for arguments that do not fit.
    """
    if threads is not None:
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=_whole("threads", threads, 1)):
            return fit(model, x, y, loss=loss, optimizer=optimizer, epochs=epochs, batch_size=batch_size,
                       validation_data=validation_data, validation_split=validation_split, callbacks=callbacks, seed=seed,
                       key=key, params=params, opt_state=opt_state, state=state, in_shape=in_shape, penalty=penalty,
                       class_weight=class_weight, sample_weight=sample_weight, transform=transform, shuffle=shuffle,
                       verbose=verbose, checkpoint=checkpoint, resume=resume, diverge_factor=diverge_factor, info=info,
                       augment=augment)
    epochs, batch_size = _whole("epochs", epochs, 1), _whole("batch_size", batch_size, 1)
    if not (isinstance(validation_split, (int, float)) and 0 <= validation_split < 1):
        raise ValueError(f"validation_split must be a fraction in [0, 1), got {validation_split!r}")
    optimizer = optim.adam(1e-3) if optimizer is None else optimizer
    tasks.check_model_fits_loss(model, loss)
    root = random.key(_whole("seed", seed, 0)) if key is None else np.asarray(key, np.uint32)
    k_init, k_split, k_shuffle, k_dropout = random.split(root, 4)
    k_augment = random.fold_in(root, 0xA06)  # its own stream: the other keys stay as they were

    x, y = np.asarray(x), np.asarray(y)
    if len(x) != len(y):
        raise ValueError(f"x has {len(x)} examples but y has {len(y)}")
    if len(x) == 0:
        raise ValueError("x holds no examples")
    weights = _example_weights(y, len(y), class_weight, sample_weight)
    if validation_data is None and validation_split:
        integer_labels = y.ndim == 1 and np.issubdtype(y.dtype, np.integer)
        if integer_labels:
            from fnn.datasets import train_val_split

            train_idx, val_idx = train_val_split(y, validation_split, k_split)
        else:
            order = random.permutation(k_split, len(y))
            cut = int(round(validation_split * len(y)))
            train_idx, val_idx = np.sort(order[cut:]), np.sort(order[:cut])
        validation_data = (x[val_idx], y[val_idx])
        x, y = x[train_idx], y[train_idx]
        weights = None if weights is None else weights[train_idx]
    convert = transform if transform is not None else (lambda xb, ws=None: xb)
    if in_shape is None:
        in_shape = (-1,) + np.shape(convert(x[:1]))[1:]
    in_shape = tuple(in_shape)
    if params is None:
        out_shape, params = model.init(k_init, in_shape)
    else:
        out_shape, expected = model.init(None, in_shape)  # shape only: nothing allocated
        _check_layout(params, expected)
    outputs = int(out_shape[-1])
    task = tasks.for_loss(loss, outputs)
    _check_targets(task, y, outputs, "training")
    x_val = y_val = None
    if validation_data is not None:
        x_val, y_val = (np.asarray(a) for a in validation_data)
        if len(x_val) != len(y_val):
            raise ValueError(f"validation x has {len(x_val)} examples but y has {len(y_val)}")
        _check_targets(task, y_val, outputs, "validation")
        x_val = convert(x_val) if len(x_val) else None  # converted once, not every epoch
    state = init_state(model, in_shape) if state is None else state
    opt_state = optimizer.init(params) if opt_state is None else opt_state

    steps_per_epoch = batching.num_batches(len(y), batch_size)
    loop = Loop(model, in_shape, task, epochs, batch_size, steps_per_epoch, len(y), 0 if x_val is None else len(y_val), dict(info or {}))
    callbacks = list(callbacks)  # their states go into checkpoints; the progress printer's does not
    loop.callbacks = callbacks + verbose_callbacks(verbose)
    for cb in loop.callbacks:
        cb.loop = loop
    run = checkpoints.TrainState(params, opt_state, state, [int(w) for w in root])
    checkpoint = None if checkpoint is None else Path(checkpoint)
    resumed = bool(resume and checkpoint is not None and checkpoint.is_file())
    if resumed:
        run = _resume(checkpoint, run, callbacks)
    loop.params, loop.opt_state, loop.state, loop.records = run.params, run.opt_state, run.state, run.history
    names = ("loss",) + task.metric_names

    def save():
        if checkpoint is not None:
            run.params, run.opt_state, run.state, run.history = loop.params, loop.opt_state, loop.state, loop.records
            checkpoints.save(checkpoint, run, _callback_states(callbacks), loop.info)

    if not resumed:
        save()  # from the start there is always a good checkpoint to go back to
    ws = Workspace()  # the loop's buffers: batches, activations, gradients, optimizer state, parameters
    step_fn = make_inplace_train_step(model, loss, optimizer, penalty, ws.child("step"))
    signals = _DeferredSignals()
    stopped = False
    try:
        loop.call("on_train_begin", {})
        for epoch in range(run.epoch, epochs):
            loop.epoch = epoch
            t0, c0 = time.perf_counter(), time.process_time()
            loop.call("on_epoch_begin", epoch, {})
            ek_drop = random.fold_in(k_dropout, epoch) if model.uses_key else None
            batches = batching.iterate_batches(x, y, batch_size, random.fold_in(k_shuffle, epoch) if shuffle else None,
                                               transform=transform, start=run.cursor, ws=ws.child("batches"), weights=weights,
                                               augment=augment, augment_key=random.fold_in(k_augment, epoch))
            for step, batch in enumerate(batches, start=run.cursor):
                key = random.fold_in(ek_drop, step) if ek_drop is not None else None
                try:  # in place: params and opt_state are the step's own buffers from the second step on
                    out = step_fn(loop.params, loop.opt_state, batch, key, state=loop.state) if model.stateful else \
                        step_fn(loop.params, loop.opt_state, batch, key)
                except NonFiniteLoss:  # nothing was updated: blame the parameters that gave it
                    raise _diverged(epoch, step, "NaN/Inf", model, loop.params, batch[0], loop.state, checkpoint) from None
                loop.params, loop.opt_state, metrics = out[:3]
                if model.stateful:
                    loop.state = out[3]
                if run.first_loss is None:
                    run.first_loss = metrics["loss"]
                if diverge_factor is not None and metrics["loss"] > diverge_factor * max(run.first_loss, 1e-3):
                    what = f"{metrics['loss']:.3g}, over {diverge_factor:g} times its first value"
                    raise _diverged(epoch, step, what, model, loop.params, batch[0], loop.state, checkpoint)
                n = len(batch[1])
                for name in names:
                    run.sums[name] = run.sums.get(name, 0.0) + metrics[name] * n
                run.count += n
                run.cursor = step + 1
                try:
                    stop_now = loop.call("on_batch_end", step, metrics)
                except StopTraining:
                    stop_now = True
                if signals.pending is not None:
                    run.train_seconds += time.perf_counter() - t0
                    save()
                    raise Interrupted(checkpoint, signals.pending, _result(loop, run, False))
                if stop_now:
                    loop.stop_training = True
                    break
            record = {"epoch": epoch + 1, **{k: run.sums[k] / max(1, run.count) for k in names}}
            if x_val is not None:
                val = evaluate(model, loop.params, x_val, y_val, loss, state=loop.state if model.stateful else None)
                record.update({f"val_{k}": v for k, v in val.items()})
            record["lr"] = optim.learning_rate(loop.opt_state)
            seconds = time.perf_counter() - t0
            run.train_seconds += seconds
            record.update(seconds=seconds, cpu_seconds=time.process_time() - c0, peak_rss_mb=_peak_rss_mb())
            loop.records.append(record)
            run.epoch, run.cursor, run.sums, run.count = epoch + 1, 0, {}, 0
            try:
                stop = loop.call("on_epoch_end", epoch, record) or loop.stop_training
            except StopTraining:
                stop = True
            save()
            if stop:
                stopped = True
                break
        loop.call("on_train_end", {"epochs": len(loop.records), "stopped_early": stopped})
    finally:
        signals.restore()
    return _result(loop, run, stopped)


def _result(loop, run, stopped) -> FitResult:
    return FitResult(loop.params, loop.opt_state, loop.state, loop.history, list(loop.records), stopped, loop.task,
                     loop.in_shape, run.train_seconds)


def _diverged(epoch, step, what, model, params, xb, state, checkpoint) -> TrainingDiverged:
    where = f"the last good checkpoint is {checkpoint} (try a smaller learning rate)" if checkpoint else "try a smaller learning rate"
    message = f"loss became {what} at epoch {epoch + 1}, step {step + 1}; {blame_layer(model, params, xb, state)}; {where}"
    return TrainingDiverged(message, epoch + 1, step + 1)


def _callback_states(callbacks) -> list:
    """The states of the callbacks that keep one (``state()`` not empty), each tagged with its class name."""
    states = []
    for cb in callbacks:
        state = cb.state() if hasattr(cb, "state") else {}
        if state:
            states.append({"class": type(cb).__name__, **state})
    return states


def _resume(path, fresh: checkpoints.TrainState, callbacks) -> checkpoints.TrainState:
    """The training state in ``path``, checked against the run's fresh one (same layouts, same key)."""
    loaded = checkpoints.load(path)
    s = loaded.state
    if list(s.key) != list(fresh.key):
        raise serialization.ModelFileError(f"{path}: the checkpoint was trained with another seed or key")
    s.params = serialization.check_params(path, s.params, fresh.params, "checkpoint params")
    s.opt_state = serialization.check_params(path, s.opt_state, fresh.opt_state, "checkpoint opt_state")
    s.state = serialization.check_params(path, s.state, fresh.state, "checkpoint model state")
    unused = list(callbacks)
    for saved in loaded.callbacks:  # each saved state goes to the next given callback of its class
        match = next((cb for cb in unused if type(cb).__name__ == saved.get("class")), None)
        if match is None:
            raise serialization.ModelFileError(f"{path}: the checkpoint holds the state of a {saved.get('class')!r:.60} callback; "
                                               "give the same callbacks to resume")
        unused.remove(match)
        try:
            match.restore({k: v for k, v in saved.items() if k != "class"})
        except (KeyError, TypeError, ValueError) as e:
            raise serialization.ModelFileError(f"{path}: the {saved['class']} callback's state is malformed ({e})") from None
    return s


__all__ = ["fit", "FitResult", "Loop", "TrainingDiverged", "Interrupted", "blame_layer", "DIVERGENCE_FACTOR"]
