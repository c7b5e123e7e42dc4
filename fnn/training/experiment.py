"""Experiments from a config: ``fit_config(config, out_dir)`` builds the model and data, calls :func:`fnn.fit`, writes a run folder.

This is everything ``fnn-cli fit`` does; the CLI only parses options and
draws progress, and the training loop is :func:`fnn.fit` itself. A run is a
pure function of its :class:`~fnn.training.config.FitConfig` and data: keys
derive from ``config.seed``, so the same seed gives bit-identical weights,
and a run resumed from any checkpoint ends exactly where an uninterrupted one does.

The run folder (:mod:`fnn.training.runs`) gets ``config.yaml``,
``metrics.jsonl`` and ``train.log`` as training goes, ``checkpoint.npz``
after every epoch (:mod:`fnn.training.checkpoints`), and ``model.npz`` and
``summary.json`` at the end; ``diagnostics.jsonl`` with ``config.diagnostics``.
Callbacks given are :mod:`fnn.training.callbacks` callbacks; they also get
``on_warning(text)`` from the diagnostics.

A folder that holds a run is never trained into afresh by accident: without
``resume`` or ``overwrite`` it is refused (:class:`fnn.training.runs.RunExistsError`),
and while a process trains in a folder it holds the folder's lock
(:func:`fnn.training.runs.lock`), so a second one is refused
(:class:`fnn.training.runs.RunLockedError`) instead of mixing its epochs in.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import stat
import time
from pathlib import Path

import numpy as np

import fnn
from fnn import losses, optim, random, serialization, tasks
from fnn.train import evaluate
from fnn.training import checkpoints, diagnostics, runs
from fnn.training.callbacks import Callback, EarlyStopping
from fnn.training.config import ConfigError, FitConfig, save_config
from fnn.training.fit import Interrupted, TrainingDiverged, fit
from fnn.tree import tree_size

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
        _check_arch(config, spec.name, spec.shape)
    ds = dataset if dataset is not None else datasets.load(config.dataset, data_dir=data_dir)
    _check_arch(config, ds.name, ds.x_train.shape[1:], len(ds.classes))
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
                "kind": _kind(config, ds),
            },
        },
    }


def _kind(config, ds) -> str:
    """The preprocessing kind the model's images get (:mod:`fnn.serving.pipelines`): the config's, which must fit, or the default."""
    from fnn.serving import pipelines

    features = int(np.prod(ds.x_train.shape[1:])) // (3 if config.grayscale else 1)
    if config.preprocessing is None:
        return pipelines.default_kind(ds.name, features, config.grayscale)
    try:
        return pipelines.kind_of({"preprocessing": {"kind": config.preprocessing, "grayscale": config.grayscale}}, (-1, features))
    except pipelines.PipelineError as e:
        raise ConfigError(f"preprocessing {config.preprocessing!r} does not fit {ds.name}: {e}") from None


def _check_arch(config, name, image_shape, classes=None):
    """Refuse an architecture (or augmentation) that does not fit the dataset's examples (or, once loaded, its classes)."""
    from fnn.training import arch

    colour = tuple(image_shape)[-1:] == (3,) and len(image_shape) == 3
    if config.grayscale and not colour:
        raise ConfigError(f"grayscale needs colour images; {name} images are {tuple(image_shape)}")
    try:
        arch.check(config.arch, name, image_shape, classes, config.grayscale)
    except arch.ArchError as e:
        raise ConfigError(str(e)) from None
    if config.augment is not None and arch.image_shape(image_shape) is None:
        raise ConfigError(f"augment needs images, but {name} has flat examples of shape {tuple(image_shape)}")
    if config.diagnostics and not arch.is_sizes(config.arch) and "bn" in arch.expand(config.arch):
        raise ConfigError(f"diagnostics do not support batch norm yet (arch {config.arch_name}): drop bn or --diagnostics")


# ---------------------------------------------------------------- pieces from the config


def build_model(config: FitConfig, image_shape=None):
    """The model ``config.arch`` describes (:mod:`fnn.training.arch`) and its ``init`` input shape ``(-1, features)``.

    ``image_shape`` is one stored example's shape (``(28, 28)``, ``(32, 32, 3)``); a layer list needs it (by default
    the registered dataset's), layer sizes do not. With ``config.grayscale`` colour images count as one channel.
    """
    from fnn import datasets
    from fnn.training import arch

    if image_shape is None and not arch.is_sizes(config.arch):
        if config.dataset not in datasets.REGISTRY:
            raise ConfigError(f"arch {config.arch_name} needs the dataset's image shape: pass image_shape")
        image_shape = datasets.REGISTRY[config.dataset].shape
    shape = tuple(image_shape or ())
    if config.grayscale and len(shape) == 3:
        shape = shape[:2]
    try:
        return arch.build(config.arch, shape, config.activation, config.dropout, config.init, config.dataset)
    except arch.ArchError as e:
        raise ConfigError(str(e)) from None


def build_augment(config: FitConfig):
    """The ``augment(batch, key)`` callable of ``config.augment`` (:func:`fnn.datasets.augment.make`), or None."""
    from fnn.datasets import augment

    return None if config.augment is None else augment.make(**config.augment)


def build_optimizer(config: FitConfig, steps_per_epoch: int):
    """The optimizer with its schedule (down to ``lr_floor * lr``), warm-up, clipping and weight decay."""
    total = steps_per_epoch * config.epochs
    schedule = optim.schedule_by_name(config.schedule, config.lr, total, config.warmup * steps_per_epoch, config.lr_floor)
    return optim.by_name(config.optimizer, schedule, config.weight_decay, config.clip_norm)


def build_penalty(config: FitConfig):
    """The L1 + L2 penalty, or None."""
    return losses.penalties(*([losses.l1(config.l1)] if config.l1 else []), *([losses.l2(config.l2)] if config.l2 else []))



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


def load_checkpoint(path) -> dict:
    """A run folder's checkpoint as a dict: ``config`` (a FitConfig), ``params``, ``opt_state``, ``epoch``, ``cursor``, ``history``.

    Raises :class:`fnn.serialization.ModelFileError` for anything but a sound checkpoint of a run.
    """
    loaded = checkpoints.load(path)
    try:
        config = FitConfig.from_dict(loaded.info["config"])
    except (KeyError, TypeError, ConfigError) as e:
        raise serialization.ModelFileError(f"{path}: checkpoint holds no valid run config ({str(e):.200})") from None
    s = loaded.state
    return {"config": config, "params": s.params, "opt_state": s.opt_state, "state": s.state, "epoch": s.epoch,
            "cursor": s.cursor, "history": s.history, "train_seconds": s.train_seconds}


class RunFolder(Callback):
    """Writes the run folder as training goes: ``metrics.jsonl`` (one line per epoch) and ``train.log``."""

    def __init__(self, out: Path, config: FitConfig, resume: bool):
        self.out, self.config, self.resume = out, config, resume

    def log(self, text):
        with serialization.open_append(self.out / runs.LOG) as f:
            f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {text}\n")

    def on_train_begin(self, logs=None):
        """Once fit has accepted the checkpoint (a refused resume writes nothing): the config, the status, the metrics."""
        save_config(self.out / runs.CONFIG, self.config)
        runs.clear_status(self.out)  # a diverged or interrupted run resumed: no longer stopped
        records = self.loop.records  # those of a resumed checkpoint: metrics.jsonl is rewritten to match
        text = "".join(json.dumps(r) + "\n" for r in records)
        serialization.atomic_write(self.out / runs.METRICS, lambda f: f.write(text.encode()))
        where = f"resumed at epoch {len(records) + 1}: " if self.resume else "start: "
        self.log(where + json.dumps(self.config.to_dict()))

    def on_epoch_end(self, epoch, logs=None):
        with serialization.open_append(self.out / runs.METRICS) as f:
            f.write(json.dumps(logs) + "\n")
        self.log(json.dumps(logs))

    def on_warning(self, text):
        self.log(f"warning: {text}")


def fit_config(config: FitConfig, out_dir=None, *, resume=False, overwrite=False, callbacks=(), data_dir=None, dataset=None,
               threads=None):
    """Train ``config`` with :func:`fnn.fit` into the run folder ``out_dir``; returns the summary dict.

    With ``resume=True``, ``out_dir`` must hold a checkpoint written by an
    earlier run of the same config (``epochs`` may grow); training goes on
    from its epoch and batch. Otherwise a folder that already holds a run
    (a checkpoint, model or summary) is refused with
    :class:`fnn.training.runs.RunExistsError`, unless ``overwrite=True``: then
    the old run's files (:data:`fnn.training.runs.FILES`) are deleted once the
    data are loaded and the folder is locked; other files in it stay.
    The folder is locked (:func:`fnn.training.runs.lock`) from before the first
    write to the end: :class:`fnn.training.runs.RunLockedError` if another
    process trains in it. Raises :class:`fnn.serialization.OutputError` when
    ``out_dir`` or a run file in it is not a folder or regular file,
    :class:`fnn.training.fit.TrainingDiverged` when the loss turns NaN/Inf (the
    last good checkpoint is kept) and :class:`fnn.training.fit.Interrupted` on
    Ctrl-C or SIGTERM (after writing a checkpoint).
    """
    if resume and overwrite:
        raise ConfigError("resume and overwrite exclude each other: go on with the run, or replace it")
    out = Path(out_dir) if out_dir is not None else default_run_dir(config)
    serialization.check_output(out, folder=True)
    with contextlib.ExitStack() as held:
        if resume:
            if out.is_dir():  # lock first: the checkpoint checked is the one trained from
                held.enter_context(runs.lock(out))
            _check_resumable(out, config)
        elif not overwrite:
            _refuse_run(out)  # early, before the data are loaded
        data = prepare_data(config, data_dir, dataset)
        if not resume:
            out.mkdir(parents=True, exist_ok=True)
            held.enter_context(runs.lock(out))
            if overwrite:
                _remove_run(out)
            elif runs.is_run(out):  # again under the lock: another process may have finished a run there meanwhile
                raise runs.RunExistsError(out, runs.run_status(out)["text"])
        return _fit_locked(config, out, resume, callbacks, data, threads)


def _refuse_run(out: Path) -> None:
    """:class:`fnn.training.runs.RunExistsError` if ``out`` holds a run; :class:`~fnn.training.runs.RunLockedError`
    first if a process is training there (it is not a run to resume or replace)."""
    if runs.is_run(out):
        with runs.lock(out):
            raise runs.RunExistsError(out, runs.run_status(out)["text"])


def _check_run_files(out: Path) -> None:
    """Refuse a run file that is a link, pipe, device, socket or folder (it would be written through, or block)."""
    for name in runs.FILES:
        try:
            mode = os.lstat(out / name).st_mode
        except FileNotFoundError:
            continue
        if not stat.S_ISREG(mode):
            serialization.check_output(out / name)  # raises, naming what is there


def _remove_run(out: Path) -> None:
    """Delete the run files of an earlier run in ``out`` (nothing else), before training afresh there."""
    _check_run_files(out)
    for name in runs.FILES:
        try:
            (out / name).unlink()
        except FileNotFoundError:
            pass


def _fit_locked(config, out, resume, callbacks, data, threads):
    """:func:`fit_config` once the folder is checked and locked."""
    model, in_shape = build_model(config, data["meta"]["preprocessing"]["image_shape"])
    steps_per_epoch = -(-len(data["y_train"]) // config.batch_size)
    _check_run_files(out)
    # left by a run killed (kill -9, power cut) in the middle of a write; the lock says no one else is writing
    serialization.remove_temporaries(out, [runs.CHECKPOINT, runs.MODEL, runs.SUMMARY, runs.METRICS, runs.CONFIG])
    if not resume:
        save_config(out / runs.CONFIG, config)  # before the first checkpoint: a run killed at any moment can resume
    folder = RunFolder(out, config, resume)
    best = EarlyStopping("val_loss", patience=config.early_stopping, min_delta=config.min_delta, mode="min",
                         restore_best_weights=bool(config.early_stopping))
    extra = []
    if config.diagnostics:  # per-layer statistics on a fixed probe (fnn.training.diagnostics); the training step is untouched
        previous = load_checkpoint(out / runs.CHECKPOINT) if resume else None
        extra.append(diagnostics.recorder(model, losses.softmax_cross_entropy, data, config, out / runs.DIAGNOSTICS,
                                          previous["history"] if previous else [], previous["epoch"] if previous else 0, resume))
    x_val = (data["x_val"], data["y_val"]) if len(data["y_val"]) else None
    try:
        result = fit(model, data["x_train"], data["y_train"], loss=losses.softmax_cross_entropy,
                     optimizer=build_optimizer(config, steps_per_epoch), epochs=config.epochs, batch_size=config.batch_size,
                     validation_data=x_val, callbacks=[folder, best, *callbacks, *extra], key=random.key(config.seed),
                     in_shape=in_shape, penalty=build_penalty(config), transform=data["transform"], verbose=0,
                     checkpoint=out / runs.CHECKPOINT, resume=resume, info={"config": config.to_dict(), "out_dir": str(out),
                     "source": data["meta"]["source"]}, threads=threads, augment=build_augment(config))
    except TrainingDiverged as e:
        runs.write_status(out, "diverged", epoch=e.epoch, step=e.step, message=str(e))  # for runs list
        folder.log(f"diverged: {e}")
        raise
    except Interrupted as e:
        ckpt = load_checkpoint(e.path)
        epoch, cursor = ckpt["epoch"], ckpt["cursor"]
        runs.write_status(out, "interrupted", epoch=epoch + 1, step=cursor)
        folder.log(f"interrupted at epoch {epoch + 1}, batch {cursor}; checkpoint written")
        raise
    if result.stopped_early:
        folder.log(f"early stopping after epoch {len(result.records)}: best epoch {best.best_epoch}")
    return _finish(out, config, data, model, result, in_shape, best.best_epoch)


def _check_resumable(out: Path, config: FitConfig) -> None:
    """Refuse to resume ``out`` without a checkpoint, or with another config than it was trained with (``epochs`` may grow)."""
    ckpt_path = out / runs.CHECKPOINT
    if not ckpt_path.is_file():
        raise ConfigError(f"cannot resume: {out} has no {runs.CHECKPOINT}")
    old, new = load_checkpoint(ckpt_path)["config"].to_dict(), config.to_dict()
    differ = sorted(k for k in new if k != "epochs" and new[k] != old[k])
    if differ:
        raise ConfigError(
            "cannot resume with a different configuration: " + ", ".join(f"{k} {old[k]!r} -> {new[k]!r}" for k in differ)
        )


def _finish(out, config, data, model, result, in_shape, best_epoch) -> dict:
    """Test the final params, save the model and ``summary.json``; returns the summary."""
    loss = losses.softmax_cross_entropy
    if len(data["y_test"]):
        test = evaluate(model, result.params, data["transform"](data["x_test"]), data["y_test"], loss,
                        state=result.state if model.stateful else None)
    else:
        test = {"loss": None, "accuracy": None}
    history = result.records
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
        "best_epoch": best_epoch,
        "stopped_early": result.stopped_early,
        "train_seconds": result.train_seconds,
        "params": tree_size(result.params),
        "input_shape": list(in_shape),
        "seed": config.seed,
        "data_source": data["meta"]["source"],
        "dataset_files": data["meta"]["files"],
        "val_indices_sha256": _digest(data["val_idx"]),
        "fnn_version": fnn.__version__,
        "numpy_version": np.__version__,
        "python_version": platform.python_version(),
    }
    metadata = {k: data["meta"][k] for k in ("dataset", "classes", "preprocessing")}
    metadata.update(test_accuracy=test["accuracy"], arch=list(config.arch), activation=config.activation,
                    task=tasks.name_of(result.task))
    serialization.save_model(out / runs.MODEL, model, result.params, in_shape, metadata, state=result.state)
    text = json.dumps(summary, indent=2)
    serialization.atomic_write(out / runs.SUMMARY, lambda f: f.write(text.encode()))
    return summary


def _digest(indices):
    import hashlib

    return hashlib.sha256(np.ascontiguousarray(indices, dtype=np.int64).tobytes()).hexdigest()


__all__ = ["fit_config", "prepare_data", "build_model", "build_augment", "build_optimizer", "build_penalty", "load_checkpoint",
           "default_run_dir", "RunFolder"]
