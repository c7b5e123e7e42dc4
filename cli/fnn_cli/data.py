"""``fnn-cli data``: download, inspect and verify datasets (thin wrappers over :mod:`fnn.datasets`).

Bad input (an unknown dataset name, a limit that is NaN, infinite, negative or
huge) exits 2 with a one-line message; a missing, corrupt or undownloadable
dataset exits 1 naming the file; SIGTERM during a download removes the partial
file and exits 143 with one line.
"""

from __future__ import annotations

import os
import sys

import click

from fnn import datasets
from fnn.datasets import download as downloads
from fnn_cli.common import OptionError


class DatasetArg(click.ParamType):
    """A registered dataset name or, when ``paths`` is set, the path of the user's own data."""

    name = "dataset"

    def __init__(self, paths: bool = False):
        self.paths = paths

    def convert(self, value, param, ctx):
        if value in datasets.REGISTRY or (self.paths and os.path.exists(os.path.expanduser(value))):
            return value
        also = " or an existing folder, .npz or .csv" if self.paths else ""
        self.fail(f"{value!r} is not a known dataset ({', '.join(datasets.NAMES)}){also}", param, ctx)


class Limit(click.ParamType):
    """A download limit, checked by :func:`fnn.datasets.download.check_limits` as ``key`` (times ``scale``).

    ``--timeout inf`` -> ``--timeout must be a number of seconds, > 0 and at most 1e+06, got inf`` (exit 2).
    """

    name = "number"

    def __init__(self, key: str, unit: str, bounds: str, scale: float = 1.0):
        self.key, self.unit, self.bounds, self.scale = key, unit, bounds, scale

    def convert(self, value, param, ctx):
        if isinstance(value, float):
            return value
        text = str(value).strip()
        try:
            number = float(text)
            downloads.check_limits(**{self.key: number * self.scale})
        except ValueError:
            raise OptionError(f"must be a number of {self.unit}, {self.bounds}, got {text}", ctx, param) from None
        return number


SECONDS = f"> 0 and at most {downloads.MAX_SECONDS:.0f}"


class ProgressBars:
    """One click progress bar per file, fed by the library's ``progress(name, done, total)`` callback."""

    def __init__(self):
        self.bar, self.name, self.done = None, None, 0

    def __call__(self, name, done, total):
        if self.bar is None or name != self.name or done < self.done:  # a new file, or the next mirror
            self.close()
            self.bar = click.progressbar(length=total or 1, label=f"{name:<27}", file=sys.stderr)
            self.bar.__enter__()
            self.name, self.done = name, 0
        self.bar.update(done - self.done)
        self.done = done

    def close(self):
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


def _fail(error: datasets.DatasetError):
    """A dataset problem (not bad usage): exit 1 with the library's message."""
    raise click.ClickException(str(error))


def _locate(name, data_dir) -> tuple:
    """``(label, folder, paths)`` of the local source serving ``name``; exit 1 when there is none."""
    found = datasets.locate(name, data_dir=data_dir)
    if found is None:
        raise click.ClickException(datasets.not_found(name, datasets.get_spec(name).files, data_dir))
    return found


data_dir_option = click.option(
    "--data-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Look here first (<dir>/<name>/ or <dir>/); default $FNN_DATA_DIR.",
)


@click.group()
def data():
    """Download, inspect and verify datasets (mnist, fashion-mnist, cifar10).

    Sources, in order: --data-dir / $FNN_DATA_DIR, the cache ($XDG_CACHE_HOME/fnn),
    /usr/share/datasets/NAME, the copy inside the package, the mirrors.
    """


@data.command()
@click.argument("name", type=DatasetArg())
@click.option(
    "--mirror", "mirrors", multiple=True, metavar="URL", help="Base URL to try instead of the built-in mirrors (repeatable)."
)
@click.option(
    "--timeout",
    type=Limit("timeout", "seconds", SECONDS),
    default=downloads.TIMEOUT,
    show_default=True,
    help="Seconds a mirror may stay silent (to connect, or between two reads).",
)
@click.option(
    "--deadline",
    type=Limit("deadline", "seconds", SECONDS),
    default=downloads.DEADLINE,
    show_default=True,
    help="Seconds one mirror may take for one file, however slowly it sends; then the next mirror is tried.",
)
@click.option(
    "--min-rate",
    type=Limit("min_rate", "KB/s", "finite and >= 0", scale=1000.0),
    default=downloads.MIN_RATE / 1000,
    show_default=True,
    help=f"KB/s a mirror must average once {downloads.RATE_GRACE:g} s have passed (0: no minimum).",
)
def download(name, mirrors, timeout, deadline, min_rate):
    """Download NAME into the cache (with a progress bar), verifying every file.

    Files already cached and matching their pins are kept. A mirror slower than
    --deadline or --min-rate is given up for the next. SIGTERM or Ctrl-C removes
    the partial file (exit 143 or 130).

    \b
    Example:
      fnn-cli data download fashion-mnist
    """
    bars = ProgressBars()
    try:
        folder, paths, urls = datasets.fetch(
            name, mirrors=list(mirrors) or None, progress=bars, timeout=timeout, deadline=deadline,
            min_rate=min_rate * 1000,
        )
    except datasets.DatasetError as e:
        _fail(e)
    except datasets.Terminated:
        bars.close()
        click.echo(f"Error: {name}: download terminated by SIGTERM; its partial file was removed", err=True)
        raise click.exceptions.Exit(143) from None
    finally:
        bars.close()
    click.echo(f"{name}: {len(paths)} files verified in {folder}")
    for url in urls:
        click.echo(f"  downloaded {url}")


def _counts_table(ds) -> list:
    train, test = ds.class_counts("train"), ds.class_counts("test")
    width = max([5] + [len(c) for c in ds.classes])
    rows = [f"  {'class':<{width}}  {'train':>7}  {'test':>7}"]
    rows += [f"  {c:<{width}}  {a:>7}  {b:>7}" for c, a, b in zip(ds.classes, train, test)]
    return rows


@data.command()
@click.argument("name", type=DatasetArg(paths=True))
@data_dir_option
def info(name, data_dir):
    """Show where NAME comes from, its counts per split and class, and its digest status.

    NAME may also be the path of your own data (a folder of IDX files, an .npz, a .csv).
    Never downloads: run `fnn-cli data download NAME` first when it is not found.

    \b
    Example:
      fnn-cli data info mnist
    """
    pinned = name in datasets.REGISTRY
    if pinned:
        _locate(name, data_dir)
    try:
        ds = datasets.load(name, data_dir=data_dir, download=False)
    except datasets.DatasetError as e:
        _fail(e)
    shape = "x".join(str(d) for d in ds.x_train.shape[1:])
    click.echo(f"dataset  {ds.name}" + (f" ({datasets.REGISTRY[name].title})" if pinned else ""))
    click.echo(f"source   {ds.source}")
    if pinned:
        click.echo(f"license  {datasets.REGISTRY[name].license}")
    click.echo(f"shape    {shape} {ds.x_train.dtype} ({ds.features} features)")
    click.echo(f"train    {len(ds.y_train)} examples")
    click.echo(f"test     {len(ds.y_test)} examples")
    click.echo(f"classes  {len(ds.classes)}")
    for row in _counts_table(ds):
        click.echo(row)
    status = "verified against its pin" if pinned else "recorded (your data: not pinned)"
    click.echo("files (md5 and size of the uncompressed contents):")
    for file, pin in ds.files.items():
        click.echo(f"  {file}  {pin['size']} bytes  md5 {pin['md5']}  {status}")


@data.command()
@click.argument("name", type=DatasetArg())
@data_dir_option
def verify(name, data_dir):
    """Check every file of NAME against its pinned size and MD5; exit 1 naming any that differs.

    \b
    Example:
      fnn-cli data verify mnist
    """
    label, folder, paths = _locate(name, data_dir)
    click.echo(f"{name}: checking {len(paths)} files from {label} {folder}")
    problems = datasets.check_files(name, paths)
    for file, problem in problems.items():
        click.echo(f"  ok    {paths[file]}" if problem is None else f"  FAIL  {problem}")
    bad = [file for file, problem in problems.items() if problem is not None]
    if bad:
        raise click.ClickException(f"{name}: {len(bad)} of {len(paths)} files do not match: {', '.join(bad)}")
    click.echo(f"{name}: all {len(paths)} files match")


__all__ = ["data"]
