"""The training loop: ``fit(config, out_dir)`` trains, checkpoints and writes a run folder.

Everything ``fnn-cli fit`` does happens here; the CLI only parses options and
draws progress. A run is a pure function of its :class:`~fnn.training.config.FitConfig`
and data: keys derive from ``config.seed`` (shuffle order from the epoch
number, dropout masks from epoch and step), so the same seed gives
bit-identical weights, and a run resumed from any checkpoint ends exactly
where an uninterrupted one does.

Callbacks are objects with any of these methods (all optional):
``on_train_begin(info)``, ``on_epoch_begin(epoch, steps)``,
``on_step_end(epoch, step, metrics)``, ``on_epoch_end(epoch, record)``,
``on_warning(text)`` (with ``config.diagnostics``: a training problem, said once),
``on_train_end(summary)``.
"""

from __future__ import annotations

import json
import math
import platform
import resource
import signal
import threading
import time
from pathlib import Path

import numpy as np

import fnn
from fnn import batching, layers, losses, optim, random
from fnn.training import diagnostics, runs
from fnn import serialization
from fnn.training.config import ConfigError, FitConfig, save_config
from fnn.train import NonFiniteLoss, accuracy, evaluate, make_inplace_train_step, predict_logits
from fnn.workspace import Workspace
from fnn.tree import tree_copy, tree_size

CHECKPOINT_FORMAT = "fnn.checkpoint"


class TrainingDiverged(RuntimeError):
    """The loss became NaN or Inf; the message names the epoch, step and first non-finite layer."""


class Interrupted(KeyboardInterrupt):
    """Training was interrupted (Ctrl-C) after writing a checkpoint at ``path``."""

    def __init__(self, path):
        super().__init__(str(path))
        self.path = path


# ---------------------------------------------------------------- data


def prepare_data(config: FitConfig, data_dir=None, dataset=None):
    """Load the dataset, split off validation, and check the architecture fits it.

    Returns a dict with uint8 ``x_train``/``x_val``/``x_test``, labels,
    ``transform`` (uint8 batch -> float32 features) and ``meta`` (classes,
    preprocessing, digests). ``dataset`` may be given directly (a loaded
    :class:`fnn.datasets.Dataset`), skipping the load.
    """
    from fnn import datasets

    if dataset is None and config.dataset in datasets.REGISTRY:  # check the architecture before any download
        spec = datasets.REGISTRY[config.dataset]
        features = int(np.prod(spec.shape)) // (3 if config.grayscale and spec.shape[-1:] == (3,) else 1)
        if config.arch[0] != features:
            raise ConfigError(
                f"arch {config.arch_name} starts with {config.arch[0]} inputs, but {spec.name} has {features} features per example"
            )
    ds = dataset if dataset is not None else datasets.load(config.dataset, data_dir=data_dir)
    if config.grayscale and (ds.x_train.ndim != 4 or ds.x_train.shape[-1] != 3):
        raise ConfigError(f"grayscale needs colour images; {ds.name} images are {ds.x_train.shape[1:]}")
    features = ds.features // 3 if config.grayscale else ds.features
    classes = len(ds.classes)
    if config.arch[0] != features:
        raise ConfigError(
            f"arch {config.arch_name} starts with {config.arch[0]} inputs, but {ds.name} has {features} features per example"
        )
    if config.arch[-1] != classes:
        raise ConfigError(f"arch {config.arch_name} ends with {config.arch[-1]} outputs, but {ds.name} has {classes} classes")
    _, k_split, _, _ = random.split(random.key(config.seed), 4)
    if config.val_split > 0:
        train_idx, val_idx = datasets.train_val_split(ds.y_train, config.val_split, k_split)
    else:
        train_idx, val_idx = np.arange(len(ds.y_train)), np.arange(0)
    x_tr, y_tr = ds.x_train[train_idx], ds.y_train[train_idx]
    mean = std = None
    if config.standardize:
        mean, std = datasets.standardize_stats(x_tr, grayscale=config.grayscale)
    transform = datasets.make_transform(grayscale=config.grayscale, mean=mean, std=std)
    x_test = ds.x_test
    return {
        "x_train": x_tr,
        "y_train": y_tr,
        "x_val": ds.x_train[val_idx],
        "y_val": ds.y_train[val_idx],
        "x_test": x_test,
        "y_test": ds.y_test,
        "transform": transform,
        "val_idx": val_idx,
        "meta": {
            "dataset": ds.name,
            "classes": list(ds.classes),
            "source": ds.source,
            "files": ds.files,
            "preprocessing": {
                "scale": 1 / 255,
                "mean": None if mean is None else mean.tolist(),
                "std": None if std is None else std.tolist(),
                "grayscale": config.grayscale,
                "image_shape": list(ds.x_train.shape[1:]),
            },
        },
    }


# ---------------------------------------------------------------- pieces from the config


def build_model(config: FitConfig):
    """The model ``config.arch`` describes, and its ``init`` input shape."""
    return layers.mlp(config.arch, config.activation, config.dropout, config.init), (-1, config.arch[0])


def build_optimizer(config: FitConfig, steps_per_epoch: int):
    """The optimizer with its schedule (down to ``lr_floor * lr``), warm-up, clipping and weight decay."""
    total = steps_per_epoch * config.epochs
    schedule = optim.schedule_by_name(config.schedule, config.lr, total, config.warmup * steps_per_epoch, config.lr_floor)
    return optim.by_name(config.optimizer, schedule, config.weight_decay, config.clip_norm)


def build_penalty(config: FitConfig):
    """The L1 + L2 penalty, or None."""
    return losses.penalties(*([losses.l1(config.l1)] if config.l1 else []), *([losses.l2(config.l2)] if config.l2 else []))


def blame_layer(model, params, x) -> str:
    """Which layer of a serial ``model`` broke on ``x``: the first with a non-finite output, else the largest output."""
    largest = (-1.0, None, None)
    for i, child in enumerate(model.children or (model,)):
        spec = child.spec
        with np.errstate(all="ignore"):
            x = child.apply(params[str(i)], x)
            peak = float(np.max(np.abs(x))) if x.size else 0.0
        if not np.isfinite(x).all():
            return f"first non-finite output: layer {i} ({spec['type']})"
        largest = max(largest, (peak, i, spec["type"]), key=lambda t: t[0])
    return f"no layer output is non-finite; the largest is layer {largest[1]} ({largest[2]}), max |x| = {largest[0]:.3g}"


#: Training stops when the loss is NaN/Inf or exceeds this multiple of the run's first batch loss.
DIVERGENCE_FACTOR = 1e6


def diverged(loss_value, first_loss) -> bool:
    """True when ``loss_value`` is NaN/Inf or has grown over :data:`DIVERGENCE_FACTOR` times ``first_loss``."""
    return not math.isfinite(loss_value) or loss_value > DIVERGENCE_FACTOR * max(first_loss, 1e-3)


# ---------------------------------------------------------------- checkpoints


def save_checkpoint(path, state: dict) -> None:
    """Write a training state atomically (params, optimizer state, best params, key, cursor, history)."""
    trees = {"params": state["params"], "opt_state": state["opt_state"]}
    if state.get("best_params") is not None:
        trees["best_params"] = state["best_params"]
    manifest = {
        "format": CHECKPOINT_FORMAT,
        "version": 1,
        "config": state["config"].to_dict(),
        "key": [int(w) for w in state["key"]],
        "epoch": state["epoch"],
        "cursor": state["cursor"],
        "history": state["history"],
        "epoch_sums": state["epoch_sums"],
        "best": state["best"],
        "train_seconds": state["train_seconds"],
        "first_loss": state["first_loss"],
    }
    serialization.save_arrays(path, trees, manifest)


def load_checkpoint(path) -> dict:
    """Read a checkpoint written by :func:`save_checkpoint`; raises :class:`fnn.serialization.ModelFileError`."""
    trees, manifest = serialization.load_arrays(path)
    if manifest.get("format") != CHECKPOINT_FORMAT:
        raise serialization.ModelFileError(f"{path}: not an fnn checkpoint")
    try:
        _check_fields(manifest)
        return {
            "params": trees["params"],
            "opt_state": trees.get("opt_state", {}),
            "best_params": trees.get("best_params"),
            "config": FitConfig.from_dict({"lr_floor": 0.0, **manifest["config"]}),  # older checkpoints: no floor
            "key": np.asarray(manifest["key"], np.uint32),
            "epoch": manifest["epoch"],
            "cursor": manifest["cursor"],
            "history": manifest["history"],
            "epoch_sums": dict(manifest["epoch_sums"]),
            "best": dict(manifest["best"]),
            "train_seconds": float(manifest["train_seconds"]),
            "first_loss": manifest["first_loss"],
        }
    except (KeyError, TypeError, ValueError) as e:
        raise serialization.ModelFileError(f"{path}: checkpoint is incomplete or malformed ({str(e):.200})") from None


def _check_fields(m) -> None:
    """Raise ValueError unless the checkpoint manifest's training state has the types the loop relies on."""

    def number(v, none_ok=False):
        return (v is None and none_ok) or (isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v))

    def count(v, none_ok=False):
        return (v is None and none_ok) or (type(v) is int and v >= 0)

    key = m["key"]
    checks = {
        "key": isinstance(key, list) and len(key) == len(random.key(0)) and all(type(w) is int and 0 <= w < 1 << 32 for w in key),
        "epoch": count(m["epoch"]),
        "cursor": count(m["cursor"]),
        "history": isinstance(m["history"], list) and all(isinstance(r, dict) for r in m["history"]),
        "epoch_sums": isinstance(m["epoch_sums"], dict) and set(m["epoch_sums"]) == {"loss", "correct", "count"}
        and all(number(v) for v in m["epoch_sums"].values()),
        "best": isinstance(m["best"], dict) and set(m["best"]) == {"epoch", "val_loss", "wait"}
        and count(m["best"]["epoch"], True) and number(m["best"]["val_loss"], True) and count(m["best"]["wait"]),
        "train_seconds": number(m["train_seconds"]),
        "first_loss": number(m["first_loss"], True),
    }
    bad = [k for k, ok in checks.items() if not ok]
    if bad:
        raise ValueError(f"bad {', '.join(bad)}")


def _restore_layout(path, loaded, template, what):
    """Put loaded leaves back into ``template``'s layout (empty dicts and scalar counts included).

    Raises :class:`fnn.serialization.ModelFileError` when the checkpoint's arrays do not fit the run's model
    and optimizer (other names or shapes) or hold NaN/Inf.
    """
    flat, want = dict(fnn.tree.tree_flatten(loaded)), dict(fnn.tree.tree_flatten(template))
    if flat.keys() != want.keys():
        raise serialization.ModelFileError(f"{path}: checkpoint {what} {sorted(flat)[:6]} do not fit this run, which needs {sorted(want)[:6]}")
    for p, t in want.items():
        if np.shape(flat[p]) != np.shape(t) or not np.isfinite(flat[p]).all():
            raise serialization.ModelFileError(f"{path}: checkpoint {what} {p} is {np.shape(flat[p])} or not finite; this run needs {np.shape(t)}")
    return fnn.tree.tree_map_with_path(lambda p, t: np.asarray(flat[p], dtype=np.asarray(t).dtype).reshape(np.shape(t)), template)


# ---------------------------------------------------------------- the loop


def default_run_dir(config: FitConfig, root=runs.DEFAULT_ROOT) -> Path:
    """``runs/<dataset>-<arch>-<timestamp>``, made unique with a suffix if needed."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    name = Path(config.dataset).name.split(".")[0] or "data"
    base = Path(root) / f"{name}-{config.arch_name}-{stamp}"
    path, n = base, 1
    while path.exists():
        n += 1
        path = Path(f"{base}-{n}")
    return path


class _DeferredSigint:
    """Turn Ctrl-C into a flag checked between steps, so a checkpoint never lands mid-update."""

    def __init__(self):
        self.pending = False
        self.old = None
        if threading.current_thread() is threading.main_thread():
            self.old = signal.signal(signal.SIGINT, self._handle)

    def _handle(self, signum, frame):
        if self.pending:  # a second Ctrl-C stops at once
            raise KeyboardInterrupt
        self.pending = True

    def restore(self):
        if self.old is not None:
            signal.signal(signal.SIGINT, self.old)


def _call(callbacks, name, *args):
    for cb in callbacks:
        method = getattr(cb, name, None)
        if method is not None:
            method(*args)


def _peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def fit(config: FitConfig, out_dir=None, *, resume=False, callbacks=(), data_dir=None, dataset=None, threads=None):
    """Train ``config`` and write the run folder ``out_dir``; returns the summary dict.

    With ``resume=True``, ``out_dir`` must hold a checkpoint written by an
    earlier ``fit`` with the same config (``epochs`` may grow); training goes
    on from its epoch and batch cursor. Raises :class:`TrainingDiverged` when
    the loss turns NaN/Inf (the last good checkpoint is kept) and
    :class:`Interrupted` on Ctrl-C (after writing a checkpoint).
    """
    if threads is not None:
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=int(threads)):
            return fit(config, out_dir, resume=resume, callbacks=callbacks, data_dir=data_dir, dataset=dataset)

    out = Path(out_dir) if out_dir is not None else default_run_dir(config)
    ckpt_path = out / runs.CHECKPOINT
    previous = _checkpoint_to_resume(out, config) if resume else None
    data = prepare_data(config, data_dir, dataset)
    out.mkdir(parents=True, exist_ok=True)
    transform = data["transform"]
    x_tr, y_tr = data["x_train"], data["y_train"]
    steps_per_epoch = batching.num_batches(len(y_tr), config.batch_size)
    model, in_shape = build_model(config)
    optimizer = build_optimizer(config, steps_per_epoch)
    penalty = build_penalty(config)
    loss = losses.softmax_cross_entropy
    ws = Workspace()  # the loop's buffers: batches, activations, gradients, optimizer state, parameters
    step_fn = make_inplace_train_step(model, loss, optimizer, penalty, ws.child("step"))

    root = random.key(config.seed)
    k_init, _, k_shuffle, k_dropout = random.split(root, 4)
    _, params = model.init(k_init, in_shape)
    opt_state = optimizer.init(params)
    state = _start_state(config, root, params, opt_state, previous, ckpt_path)
    params, opt_state = state["params"], state["opt_state"]
    # left by a run killed (kill -9, power cut) in the middle of a write
    serialization.remove_temporaries(out, [runs.CHECKPOINT, runs.MODEL, runs.SUMMARY, runs.METRICS, runs.CONFIG])
    save_config(out / runs.CONFIG, config)
    runs.clear_status(out)  # a diverged or interrupted run resumed: no longer stopped
    _rewrite_metrics(out / runs.METRICS, state["history"])
    if previous is None:
        save_checkpoint(ckpt_path, state)  # epoch 0: there is always a good checkpoint to go back to
    log = open(out / runs.LOG, "a", encoding="utf-8")

    def log_line(text):
        log.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {text}\n")
        log.flush()

    def diverge(epoch, step, what, params, xb):
        message = (f"loss became {what} at epoch {epoch + 1}, step {step + 1}; {blame_layer(model, params, xb)}; "
                   f"the last good checkpoint is {ckpt_path} (try a smaller --lr)")
        runs.write_status(out, "diverged", epoch=epoch + 1, step=step + 1, message=message)  # for runs list
        log_line(f"diverged: {message}")
        raise TrainingDiverged(message)

    def warn(texts):
        for text in texts:
            log_line(f"warning: {text}")
            _call(callbacks, "on_warning", text)

    diag = None
    if config.diagnostics:  # per-layer statistics on a fixed probe (fnn.training.diagnostics); the training step is untouched
        diag = diagnostics.for_fit(model, loss, data, config, out / runs.DIAGNOSTICS, state["history"], state["epoch"])
    log_line(("resumed at epoch %d, batch %d: " % (state["epoch"] + 1, state["cursor"]) if resume else "start: ") + json.dumps(config.to_dict()))
    info = {"out_dir": str(out), "config": config, "steps_per_epoch": steps_per_epoch, "params": tree_size(params),
            "train_examples": len(y_tr), "val_examples": len(data["y_val"]), "source": data["meta"]["source"],
            "start_epoch": state["epoch"]}
    _call(callbacks, "on_train_begin", info)
    if diag is not None and state["epoch"] == 0 and state["cursor"] == 0:
        warn(diag.epoch_end(0, params))  # epoch 0: the initialization
    x_val = transform(data["x_val"]) if len(data["y_val"]) else None  # converted once, not every epoch
    stopped_early = False
    sigint = _DeferredSigint()
    try:
        for epoch in range(state["epoch"], config.epochs):
            t0, c0 = time.perf_counter(), time.process_time()
            _call(callbacks, "on_epoch_begin", epoch, steps_per_epoch)
            if diag is not None:
                diag.epoch_begin(params)
            sums = state["epoch_sums"]
            ek_drop = random.fold_in(k_dropout, epoch) if model.uses_key else None
            batches = batching.iterate_batches(x_tr, y_tr, config.batch_size, random.fold_in(k_shuffle, epoch),
                                               transform=transform, start=state["cursor"], ws=ws.child("batches"))
            for step, (xb, yb) in enumerate(batches, start=state["cursor"]):
                key = random.fold_in(ek_drop, step) if ek_drop is not None else None
                try:  # in place: params and opt_state are the step's own buffers from the second step on
                    params, opt_state, metrics = step_fn(params, opt_state, (xb, yb), key)
                except NonFiniteLoss:  # nothing was updated: blame the parameters that gave it
                    diverge(epoch, step, "NaN/Inf", params, xb)
                if state["first_loss"] is None:
                    state["first_loss"] = metrics["loss"]
                if diverged(metrics["loss"], state["first_loss"]):
                    diverge(epoch, step, f"{metrics['loss']:.3g}, over 1e6 times its first value", params, xb)
                n = len(yb)
                sums["loss"] += metrics["loss"] * n
                sums["correct"] += metrics["accuracy"] * n
                sums["count"] += n
                _call(callbacks, "on_step_end", epoch, step, metrics)
                if sigint.pending:
                    state.update(params=params, opt_state=opt_state, epoch=epoch, cursor=step + 1)
                    state["train_seconds"] += time.perf_counter() - t0
                    save_checkpoint(ckpt_path, state)
                    runs.write_status(out, "interrupted", epoch=epoch + 1, step=step + 1)
                    log_line(f"interrupted at epoch {epoch + 1}, batch {step + 1}; checkpoint written")
                    raise Interrupted(ckpt_path)

            record = {"epoch": epoch + 1, "loss": sums["loss"] / max(1, sums["count"]),
                      "accuracy": sums["correct"] / max(1, sums["count"])}
            if x_val is not None:
                val = evaluate(model, params, x_val, data["y_val"])
                record.update(val_loss=val["loss"], val_accuracy=val["accuracy"])
            found = diag.epoch_end(epoch + 1, params, record) if diag is not None else []
            record["lr"] = optim.learning_rate(opt_state)
            seconds = time.perf_counter() - t0
            state["train_seconds"] += seconds
            record.update(seconds=seconds, cpu_seconds=time.process_time() - c0, peak_rss_mb=_peak_rss_mb())
            state["history"].append(record)

            stop = _track_best(state, record, params, config)
            state.update(params=params, opt_state=opt_state, epoch=epoch + 1, cursor=0,
                         epoch_sums={"loss": 0.0, "correct": 0.0, "count": 0})
            save_checkpoint(ckpt_path, state)
            _append_metrics(out / runs.METRICS, record)
            log_line(json.dumps(record))
            _call(callbacks, "on_epoch_end", epoch, record)
            warn(found)
            if stop:
                stopped_early = True
                log_line(f"early stopping after epoch {epoch + 1}: best epoch {state['best']['epoch']}")
                break
    finally:
        sigint.restore()
        log.close()

    if config.early_stopping and state["best_params"] is not None:
        params = state["best_params"]
    summary = _finish(out, config, data, model, params, in_shape, loss, state, stopped_early)
    _call(callbacks, "on_train_end", summary)
    return summary


def _checkpoint_to_resume(out: Path, config: FitConfig) -> dict:
    """The checkpoint in ``out``, after checking that ``config`` is the one it was trained with (``epochs`` may grow)."""
    ckpt_path = out / runs.CHECKPOINT
    if not ckpt_path.is_file():
        raise ConfigError(f"cannot resume: {out} has no {runs.CHECKPOINT}")
    previous = load_checkpoint(ckpt_path)
    old, new = previous["config"].to_dict(), config.to_dict()
    differ = sorted(k for k in new if k != "epochs" and new[k] != old[k])
    if differ:
        raise ConfigError(
            "cannot resume with a different configuration: " + ", ".join(f"{k} {old[k]!r} -> {new[k]!r}" for k in differ)
        )
    return previous


def _start_state(config, root, params, opt_state, previous, ckpt_path) -> dict:
    """Everything a checkpoint holds: a fresh run's (``params``, ``opt_state`` as initialised), or ``previous``'s."""
    state = {
        "config": config,
        "key": root,
        "params": params,
        "opt_state": opt_state,
        "epoch": 0,
        "cursor": 0,
        "history": [],
        "epoch_sums": {"loss": 0.0, "correct": 0.0, "count": 0},
        "best": {"epoch": None, "val_loss": None, "wait": 0},
        "best_params": None,
        "train_seconds": 0.0,
        "first_loss": None,
    }
    if previous is not None:
        state["params"] = _restore_layout(ckpt_path, previous["params"], params, "params")
        state["opt_state"] = _restore_layout(ckpt_path, previous["opt_state"], opt_state, "opt_state")
        state.update({k: previous[k] for k in ("epoch", "cursor", "history", "epoch_sums", "best", "train_seconds", "first_loss")})
        best = previous["best_params"]
        state["best_params"] = _restore_layout(ckpt_path, best, params, "best_params") if best is not None else None
    return state


def _track_best(state, record, params, config) -> bool:
    """Update the best epoch (lowest ``val_loss``, else training loss) with ``record``; True when early stopping is due."""
    best = state["best"]
    monitor = record.get("val_loss", record["loss"])
    if best["val_loss"] is None or monitor < best["val_loss"] - config.min_delta:
        best.update(epoch=record["epoch"], val_loss=monitor, wait=0)
        if config.early_stopping:
            state["best_params"] = tree_copy(params)  # params are the step's buffers: the next step overwrites them
    else:
        best["wait"] += 1
    return bool(config.early_stopping) and best["wait"] >= config.early_stopping


def _finish(out, config, data, model, params, in_shape, loss, state, stopped_early) -> dict:
    """Test the final ``params``, save the model and ``summary.json``; returns the summary."""
    if len(data["y_test"]):
        logits = predict_logits(model, params, data["transform"](data["x_test"]))
        test = {"loss": loss.apply(logits, data["y_test"]), "accuracy": accuracy(logits, data["y_test"])}
    else:
        test = {"loss": None, "accuracy": None}
    history = state["history"]
    summary = {
        "dataset": data["meta"]["dataset"],
        "arch": list(config.arch),
        "optimizer": config.optimizer,
        "lr": config.lr,
        "batch_size": config.batch_size,
        "test_accuracy": test["accuracy"],
        "test_loss": test["loss"],
        "val_accuracy": history[-1].get("val_accuracy") if history else None,
        "epochs": len(history),
        "best_epoch": state["best"]["epoch"],
        "stopped_early": stopped_early,
        "train_seconds": state["train_seconds"],
        "params": tree_size(params),
        "seed": config.seed,
        "data_source": data["meta"]["source"],
        "dataset_files": data["meta"]["files"],
        "val_indices_sha256": _digest(data["val_idx"]),
        "fnn_version": fnn.__version__,
        "numpy_version": np.__version__,
        "python_version": platform.python_version(),
    }
    metadata = {k: data["meta"][k] for k in ("dataset", "classes", "preprocessing")}
    metadata.update(test_accuracy=test["accuracy"], arch=list(config.arch), activation=config.activation)
    serialization.save_model(out / runs.MODEL, model, params, in_shape, metadata)
    text = json.dumps(summary, indent=2)
    serialization.atomic_write(out / runs.SUMMARY, lambda f: f.write(text.encode()))
    return summary


def _digest(indices):
    import hashlib

    return hashlib.sha256(np.ascontiguousarray(indices, dtype=np.int64).tobytes()).hexdigest()


def _append_metrics(path, record):
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")


def _rewrite_metrics(path, history):
    text = "".join(json.dumps(r) + "\n" for r in history)
    serialization.atomic_write(path, lambda f: f.write(text.encode()))


__all__ = ["fit", "FitConfig", "TrainingDiverged", "Interrupted", "load_checkpoint", "save_checkpoint", "prepare_data"]
