"""``fnn-cli fit``: train a model from options and/or a config file into a run folder."""

from __future__ import annotations

import shlex
import sys
import time
import warnings

import click

from fnn import optim

from fnn.training import runs
from fnn_cli.common import ArchType, WholeNumber, fail
from fnn.training.config import SCHEDULES, ConfigError, FitConfig, load_config
from fnn.layers import ACTIVATIONS

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
    ("--arch", ArchType(), "Layer sizes, input first, classes last. [default: 784,128,64,10]"),
    ("--dataset", DatasetType(), f"{', '.join(DATASETS)}, or a path to an IDX folder, .npz (x, y) or .csv. [default: mnist]"),
    ("--activation", click.Choice(sorted(ACTIVATIONS)), "Hidden-layer activation. [default: relu]"),
    ("--init", click.STRING, "Weight initializer (he_uniform, glorot_normal, ...). [default: by activation]"),
    ("--dropout", click.FloatRange(0, 1, max_open=True), "Dropout rate after each hidden layer. [default: 0]"),
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


def resolve_config(config_file, options: dict) -> FitConfig:
    """Defaults <- config file <- options given on the command line."""
    given = {k: (list(v) if k == "arch" else v) for k, v in options.items() if v is not None}
    try:
        return load_config(config_file, **given) if config_file else FitConfig.from_dict(given)
    except ConfigError as e:
        fail(str(e))


def progress_folder(progress, out) -> str:
    """The run folder, as far as it is known."""
    return str(getattr(progress, "out_dir", None) or out or "the run folder")


class Progress:
    """Progress for a terminal or plain lines for pipes and logs.

    On a terminal (``tty``) each epoch draws one live line, a bar with the running loss, redrawn in
    place (``\\r`` + the text + ``\\x1b[K``, clear to end of line) at most every ``REDRAW`` seconds; at
    the epoch's end that line is erased and replaced by the epoch's summary, so one line stays per epoch.
    """

    REDRAW = 0.1  # seconds between redraws of the live line
    WIDTH = 24  # characters of the bar itself

    def __init__(self, quiet=False, tty=None, file=None):
        self.quiet = quiet
        self.file = file
        self.tty = self._out().isatty() if tty is None else tty
        self.live = False  # a live line is on screen
        self.steps, self.drawn = 0, 0.0

    def _out(self):
        return self.file if self.file is not None else sys.stdout

    def _line(self, text):
        """A finished line; on a terminal it first erases the live one."""
        if self.live:
            self._out().write("\r\x1b[K")
            self.live = False
        click.echo(text, file=self._out())

    def on_train_begin(self, info):
        self.epochs = info["config"].epochs
        self.out_dir = info["out_dir"]
        if not self.quiet:
            cfg = info["config"]
            self._line(
                f"fit {cfg.dataset} {cfg.arch_name} ({info['params']:,} params) with {cfg.optimizer} lr={cfg.lr:g}, "
                f"batch {cfg.batch_size}, {info['train_examples']} train / {info['val_examples']} val examples"
            )
            self._line(f"data: {info['source']}")
            self._line(f"run folder: {info['out_dir']}")

    def on_epoch_begin(self, epoch, steps):
        self.steps, self.started, self.drawn = steps, time.perf_counter(), 0.0

    def on_step_end(self, epoch, step, metrics):
        if not self.tty or self.quiet:
            return
        now = time.perf_counter()
        if self.live and now - self.drawn < self.REDRAW and step + 1 < self.steps:
            return
        self.drawn = now
        done = (step + 1) / max(1, self.steps)
        filled = int(done * self.WIDTH)
        eta = (now - self.started) / done * (1 - done)
        text = (f"epoch {epoch + 1}/{self.epochs} loss {metrics['loss']:.4f}  [{'#' * filled}{'-' * (self.WIDTH - filled)}]"
                f" {step + 1}/{self.steps}  eta {eta:.0f}s")
        import shutil

        out = self._out()
        out.write("\r" + text[: max(20, shutil.get_terminal_size().columns - 1)] + "\x1b[K")  # never wraps: \r redraws it
        out.flush()
        self.live = True

    def on_epoch_end(self, epoch, r):
        if not self.quiet:
            val = f"  val_loss {r['val_loss']:.4f}  val_acc {r['val_accuracy']:.4f}" if "val_loss" in r else ""
            self._line(
                f"epoch {r['epoch']:>3}/{self.epochs}  loss {r['loss']:.4f}  acc {r['accuracy']:.4f}{val}"
                f"  lr {r['lr']:.2e}  {r['seconds']:.2f}s"
            )

    def on_warning(self, text):
        """A training problem found by the diagnostics (``--diagnostics``), said once."""
        if not self.quiet:
            self._line(f"warning: {text}")

    def close(self):
        """After an error or Ctrl-C: keep the live line (where training stopped) and end it."""
        if self.live:
            self._out().write("\n")
            self._out().flush()
            self.live = False


def next_commands(run, summary) -> list:
    """What to run after training ``run``: evaluate it, and serve it on the pad when it takes 28x28 images."""
    quoted = shlex.quote(str(run))
    lines = [f"fnn-cli evaluate {quoted}"]
    if (summary.get("arch") or [None])[0] == 784:
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
@click.option("--quiet", "-q", is_flag=True, help="Print only the final summary.")
def fit(config_file, out, resume, threads, data_dir, quiet, **options):
    """Train a network and write a run folder (config, metrics, checkpoints, model, summary).

    \b
    Examples:
      fnn-cli fit --arch 784,128,64,10
      fnn-cli fit --config experiments/mnist-mlp.yaml --epochs 5
      fnn-cli fit --resume runs/mnist-784-128-64-10-20261130-120000
    """
    from fnn import datasets
    from fnn.training.fit import Interrupted, TrainingDiverged, fit as run_fit
    from fnn.serialization import ModelFileError

    if resume:
        if out and out != resume:
            fail(f"--out {out} and --resume {resume} name different run folders")
        if not runs.is_run(resume) and not (runs.Path(resume) / runs.CHECKPOINT).is_file():
            fail(f"--resume {resume}: not a run folder with a checkpoint")
        config_file = config_file or str(runs.Path(resume) / runs.CONFIG)
        out = resume
    config = resolve_config(config_file, options)
    progress = Progress(quiet)
    start = time.perf_counter()
    warnings.simplefilter("ignore", RuntimeWarning)  # overflow is reported below as a diverged loss
    try:
        summary = run_fit(config, out, resume=bool(resume), callbacks=[progress], data_dir=data_dir, threads=threads)
    except (ConfigError, datasets.DatasetError, runs.RunError) as e:
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
        sys.exit(130)
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
