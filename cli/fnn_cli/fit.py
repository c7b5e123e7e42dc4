"""``fnn-cli fit``: train a model from options and/or a config file into a run folder."""

from __future__ import annotations

import math
import shlex
import sys
import time
import warnings

import click

from fnn import optim
from fnn.layers import ACTIVATIONS
from fnn.serving.pipelines import KINDS
from fnn.training import runs
from fnn.training.callbacks import ProgressBar
from fnn.training.config import SCHEDULES, ConfigError, FitConfig, load_config
from fnn.tree import tree_size
from fnn_cli.common import ArchType, AugmentType, WholeNumber, fail

DATASETS = ("mnist", "fashion-mnist", "cifar10")


class DatasetType(click.ParamType):
    """A known dataset name, or a path to the user's own data (IDX folder, .npz, .csv)."""

    name = "NAME|PATH"

    def convert(self, value, param, ctx):
        import os

        if value in DATASETS or os.path.exists(value):
            return value
        self.fail(f"unknown dataset {value!r}; choose from {', '.join(DATASETS)} or give a path to your own data", param, ctx)


# name, click type, help. Every option defaults to None: "not given", so the config file (or FitConfig's default) stands.
OPTIONS = [
    ("--arch", ArchType(), "Layer sizes (784,128,64,10: input first, classes last), layers (conv32x3,pool2,conv64x3,pool2,dense128,10: "
                           "convFxK[sS][pP|valid] poolP avgpoolP gap bn dropoutR denseN, classes last) or a preset "
                           "(lenet5, cnn-small, cnn-bn, vgg-small). [default: 784,128,64,10]"),
    ("--dataset", DatasetType(), f"{', '.join(DATASETS)}, or a path to an IDX folder, .npz (x, y) or .csv. [default: mnist]"),
    ("--activation", click.Choice(sorted(ACTIVATIONS)), "Hidden-layer activation. [default: relu]"),
    ("--init", click.STRING, "Weight initializer (he_uniform, glorot_normal, ...). [default: by activation]"),
    ("--dropout", click.FloatRange(0, 1, max_open=True), "Dropout rate after each hidden layer. [default: 0]"),
    ("--augment", AugmentType(), "Augment training batches: digits (shifts, rotations, scales), photos (shifts, flips), none, "
                                 "or options: shift=2,rotate=10,scale=0.1,elastic=true,flip=true. [default: none]"),
    ("--optimizer", click.Choice(sorted(optim.OPTIMIZERS)), "[default: adam]"),
    ("--lr", click.FloatRange(0, min_open=True), "Peak learning rate (> 0). [default: 0.003]"),
    ("--schedule", click.Choice(SCHEDULES), "Learning-rate schedule. [default: cosine]"),
    ("--lr-floor", click.FloatRange(0, 1, max_open=True), "Fraction of --lr the schedule decays to (cosine's end). [default: 0.01]"),
    ("--warmup", WholeNumber(0), "Epochs of linear learning-rate warm-up. [default: 0]"),
    ("--batch-size", WholeNumber(1), "[default: 128]"),
    ("--epochs", WholeNumber(1), "[default: 10]"),
    ("--weight-decay", click.FloatRange(0), "Decoupled weight decay, biases excluded. [default: 0; adamw 0.01]"),
    ("--l1", click.FloatRange(0), "L1 penalty coefficient. [default: 0]"),
    ("--l2", click.FloatRange(0), "L2 penalty coefficient. [default: 0]"),
    ("--clip-norm", click.FloatRange(0, min_open=True), "Clip gradients to this global norm. [default: off]"),
    ("--val-split", click.FloatRange(0, 1, max_open=True), "Validation fraction of the training set. [default: 0.1]"),
    ("--early-stopping", WholeNumber(1), "Stop after PATIENCE epochs without val-loss improvement; keep the best."),
    ("--min-delta", click.FloatRange(0), "Smallest val-loss drop that counts as improvement. [default: 0]"),
    ("--seed", WholeNumber(0), "Seed for init, split, shuffling and dropout. [default: 0]"),
    ("--preprocessing", click.Choice(KINDS), "How the pad and predict read images for the model: digits (MNIST's), fashion "
     "(Fashion-MNIST's), rgb32 (CIFAR-10's), none (as they are). [default: by dataset, else by input size]"),
]


def config_options(fn):
    """The config keys as value options, in ``OPTIONS`` order (``--arch`` and ``--dataset`` first)."""
    for name, kind, help_text in reversed(OPTIONS):
        fn = click.option(name, type=kind, default=None, help=help_text)(fn)
    return fn


def config_flags(fn):
    """The boolean config keys, as ``--x/--no-x`` flags (listed after every value option)."""
    fn = click.option("--diagnostics/--no-diagnostics", default=None, help="Record per-layer training diagnostics.")(fn)
    fn = click.option("--grayscale/--no-grayscale", default=None, help="Convert colour images (CIFAR-10) to gray.")(fn)
    fn = click.option("--standardize/--no-standardize", default=None, help="Standardize inputs with train-split statistics.")(fn)
    return fn


def resolve_config(config_file, options: dict, base: FitConfig | None = None) -> FitConfig:
    """Defaults (or ``base``) <- config file <- options given on the command line."""
    given = {k: (list(v) if k == "arch" else v) for k, v in options.items() if v is not None}
    try:
        if config_file:
            return load_config(config_file, **given)
        return FitConfig.from_dict({**(base.to_dict() if base else {}), **given})
    except ConfigError as e:
        fail(str(e))


def checkpoint_config(run) -> FitConfig:
    """The config a run's checkpoint holds (a run killed before it wrote its config.yaml still has one)."""
    from fnn.serialization import ModelFileError
    from fnn.training.experiment import load_checkpoint

    try:
        return load_checkpoint(runs.Path(run) / runs.CHECKPOINT)["config"]
    except ModelFileError as e:
        fail(f"cannot resume: {e}")


def progress_folder(progress, out) -> str:
    """The run folder, as far as it is known."""
    return str(getattr(progress, "out_dir", None) or out or "the run folder")


class Progress(ProgressBar):
    """The library's progress lines (:class:`fnn.training.callbacks.ProgressBar`) with the run's header first."""

    def __init__(self, quiet=False, tty=None, file=None):
        super().__init__(file=file, tty=tty, quiet=quiet)
        self.out_dir = None

    def on_train_begin(self, logs=None):
        loop, info = self.loop, self.loop.info
        cfg = FitConfig.from_dict(info["config"])
        self.out_dir = info["out_dir"]
        self.line(
            f"fit {cfg.dataset} {cfg.arch_name} ({tree_size(loop.params):,} params) with {cfg.optimizer} lr={cfg.lr:g}, "
            f"batch {cfg.batch_size}, {loop.train_examples} train / {loop.val_examples} val examples"
        )
        self.line(f"data: {info['source']}")
        self.line(f"run folder: {info['out_dir']}")
        loop.info["header_shown"] = True
        super().on_train_begin(logs)


def next_commands(run, summary) -> list:
    """What to run after training ``run``: evaluate it, and serve it on the pad when it takes images the pad reads
    (28x28 digits or clothing, 32x32 photos)."""
    from fnn.serving.pipelines import default_kind

    quoted = shlex.quote(str(run))
    lines = [f"fnn-cli evaluate {quoted}"]
    inputs = (summary.get("arch") or [None])[0]
    shape = summary.get("input_shape")
    if not isinstance(inputs, int) and isinstance(shape, list) and all(isinstance(d, int) for d in shape[1:]):
        inputs = math.prod(shape[1:])  # a layer-list architecture: the features its input shape holds
    if default_kind(summary.get("dataset"), inputs, grayscale=inputs == 1024) != "none":
        lines.append(f"fnn-cli serve --models {quoted}")
    return lines


@click.command()
@config_options
@click.option("--config", "config_file", type=click.Path(dir_okay=False), help="YAML or JSON config; options override it.")
@click.option("--out", type=click.Path(file_okay=False), help="Run folder. [default: runs/<dataset>-<arch>-<time>]")
@click.option("--resume", type=click.Path(), help="Resume the run in this folder from its checkpoint.")
@click.option("--threads", type=WholeNumber(1), help="BLAS threads (threadpoolctl). One is faster on a busy machine.")
@click.option("--data-dir", type=click.Path(file_okay=False), help="Folder holding the dataset files (else $FNN_DATA_DIR, cache, ...).")
@config_flags
@click.option("--overwrite", is_flag=True,
              help="Replace the run in --out: its run files are deleted once the data are loaded (else a folder holding a run is refused).")
@click.option("--quiet", "-q", is_flag=True, help="Print only the final summary.")
def fit(config_file, out, resume, overwrite, threads, data_dir, quiet, **options):
    """Train a network and write a run folder (config, metrics, checkpoints, model, summary).

    \b
    Examples:
      fnn-cli fit --arch 784,128,64,10
      fnn-cli fit --arch conv32x3,bn,pool2,conv64x3,bn,pool2,dense128,10 --augment digits
      fnn-cli fit --config experiments/mnist-mlp.yaml --epochs 5
      fnn-cli fit --resume runs/mnist-784-128-64-10-20261130-120000
    """
    from fnn import datasets
    from fnn.serialization import ModelFileError, OutputError
    from fnn.training.experiment import fit_config
    from fnn.training.fit import Interrupted, TrainingDiverged

    base = None
    if resume and overwrite:
        fail(f"--resume {resume} and --overwrite: give one (go on with the run, or replace it)")
    if resume:
        if out and out != resume:
            fail(f"--out {out} and --resume {resume} name different run folders")
        if not runs.is_run(resume) and not (runs.Path(resume) / runs.CHECKPOINT).is_file():
            fail(f"--resume {resume}: not a run folder with a checkpoint")
        saved = runs.Path(resume) / runs.CONFIG
        if not config_file and not saved.exists() and not saved.is_symlink():  # killed before it was written
            base = checkpoint_config(resume)
        config_file = config_file or (str(saved) if base is None else None)
        out = resume
    config = resolve_config(config_file, options, base)
    progress = Progress(quiet)
    start = time.perf_counter()
    warnings.simplefilter("ignore", RuntimeWarning)  # overflow is reported below as a diverged loss
    try:
        summary = fit_config(config, out, resume=bool(resume), overwrite=overwrite, callbacks=[progress], data_dir=data_dir,
                             threads=threads)
    except runs.RunExistsError as e:
        progress.close()
        fail(f"--out {e.path} already holds a run ({e.text}); add --overwrite to replace it, "
             f"or train it on with fnn-cli fit --resume {shlex.quote(str(e.path))} (and more --epochs)")
    except (ConfigError, datasets.DatasetError, runs.RunError, OutputError) as e:
        progress.close()
        fail(str(e))
    except ModelFileError as e:
        progress.close()
        fail(f"cannot resume: {e}")
    except TrainingDiverged as e:
        progress.close()
        raise click.ClickException(f"training diverged: {e}") from None
    except OSError as e:  # a full disk, a folder that cannot be written; writes are atomic, so nothing is half-written
        progress.close()
        where = e.filename or progress_folder(progress, out)
        raise click.ClickException(f"cannot write {where}: {e.strerror or e}; the last good checkpoint is kept") from None
    except Interrupted as e:
        progress.close()
        run = e.path.parent
        click.echo(f"\ninterrupted; checkpoint written. Resume with:\n  fnn-cli fit --resume {shlex.quote(str(run))}", err=True)
        sys.exit(128 + e.signum)  # 130 after Ctrl-C, 143 after SIGTERM
    test = (
        f"test accuracy {summary['test_accuracy']:.4f}  test loss {summary['test_loss']:.4f}"
        if summary["test_accuracy"] is not None
        else "no test split"
    )
    click.echo(
        f"{test}  ({summary['epochs']} epochs, {summary['train_seconds']:.1f}s training, {time.perf_counter() - start:.1f}s total)"
    )
    if summary["stopped_early"]:
        click.echo(f"early stopping: restored the best epoch, {summary['best_epoch']}")
    click.echo(f"model: {runs.Path(progress.out_dir) / runs.MODEL}")
    if not quiet:
        commands = next_commands(progress.out_dir, summary)
        click.echo(f"next: {commands[0]}" + "".join(f"\n      {c}" for c in commands[1:]))
