"""``fnn-cli sweep``: a grid of runs in parallel processes or on a Dask cluster, compared in one table."""

import contextlib
import sys
import time
from pathlib import Path

import click

from fnn_cli.common import WholeNumber, fail

BEST_SHOWN = 3


class SweepProgress:
    """A bar of finished configurations and the best so far.

    On a terminal the bar and a small table of the best runs are redrawn in
    place under the scrolling per-run lines; piped, every finished run is one
    plain line followed by one ``best so far`` line (no carriage returns, no
    escape codes).
    """

    def __init__(self, total, tty=None, file=None):
        self.total, self.done, self.failed, self.best = total, 0, 0, []
        self.file = file or sys.stdout
        self.tty = self.file.isatty() if tty is None else tty
        self.drawn = 0  # lines of the live block on screen

    def begin(self):
        """On a terminal, draw the empty bar before the first run finishes."""
        if self.tty:
            self._write(self.bar() + "\n")
            self.drawn = 1

    def __call__(self, row, done, total):
        self.done = done
        if row["status"] == "done":
            self.best = sorted(self.best + [row], key=lambda r: -(r.get("val_accuracy") or 0.0))[:BEST_SHOWN]
            status = f"val_acc {_num(row['val_accuracy'])}  test_acc {_num(row['test_accuracy'])}  {row['seconds']:.1f}s"
        else:
            self.failed += 1
            status = f"FAILED: {row['error']}"
        line = f"[{done}/{total}] {row['name']}: {status}"
        if self.tty:
            self._write((f"\x1b[{self.drawn:d}F\x1b[J" if self.drawn else "") + line + "\n")
            block = [self.bar()] + self.table()
            self._write("\n".join(block) + "\n")
            self.drawn = len(block)
        else:
            best = ", ".join(f"{r['name']} {_num(r['val_accuracy'])}" for r in self.best) or "none yet"
            self._write(f"{line}\n    best so far: {best}\n")

    def bar(self, width=30) -> str:
        filled = width * self.done // max(1, self.total)
        failed = f", {self.failed} failed" if self.failed else ""
        return f"finished [{'#' * filled}{'-' * (width - filled)}] {self.done}/{self.total}{failed}"

    def table(self) -> list:
        rows = [f"  {i}. {r['name']:<30} val_acc {_num(r['val_accuracy'])}  test_acc {_num(r['test_accuracy'])}"
                for i, r in enumerate(self.best, 1)]
        return ["best so far:"] + rows if rows else []

    def _write(self, text):
        self.file.write(text)
        self.file.flush()


def _num(value) -> str:
    """An accuracy to 4 places, or ``n/a`` (no validation or test split)."""
    return "n/a" if value is None else f"{value:.4f}"


@click.command()
@click.argument("file", type=click.Path())
@click.option("--jobs", "-j", type=WholeNumber(1), default=None, help="Parallel local processes. [default: 1]")
@click.option("--scheduler", metavar="tcp://HOST:PORT|local:N",
              help="Run each configuration as a task on a Dask cluster: a running scheduler's address, "
                   "or local:N to start N worker processes here. Needs: pip install 'fnn[distributed]'.")
@click.option("--out", type=click.Path(file_okay=False), help="Sweep folder. [default: runs/sweep-<time>]")
@click.option("--data-dir", type=click.Path(file_okay=False), help="Folder holding the dataset files.")
def sweep(file, jobs, scheduler, out, data_dir):
    """Train every combination in a sweep FILE (YAML: base + grid) and compare them.

    Writes each run's folder, results.md/.csv/.json sorted by validation
    accuracy, the figures val_curves.png and accuracy_vs_cost.png, and the
    sweep file as sweep.yaml (fnn-cli runs list OUT shows its grid keys).

    \b
    Example (experiments/optimizers.yaml):
      base: {dataset: mnist, arch: "784,128,64,10", epochs: 3}
      grid: {optimizer: [sgd, momentum, rmsprop, adam], lr: [0.001, 0.01]}
    \b
      fnn-cli sweep experiments/optimizers.yaml --jobs 2
      fnn-cli sweep experiments/optimizers.yaml --scheduler local:2
      fnn-cli sweep experiments/optimizers.yaml --scheduler tcp://10.0.0.5:8786
    """
    from fnn.evaluation import compare
    from fnn.training import sweep as fsweep
    from fnn.training.config import ConfigError
    from fnn.training.runs import RunError

    try:
        if scheduler is not None:
            from fnn.training import dask

            if jobs is not None:
                fail(f"--jobs {jobs} and --scheduler {scheduler}: give one (the cluster's workers set the parallelism)")
            kind, where = dask.parse_scheduler(scheduler)
            dask.require_dask()
        spec = fsweep.read_sweep(file)
        configs = fsweep.expand(spec)
        out = out or f"runs/sweep-{time.strftime('%Y%m%d-%H%M%S')}"
        fsweep.check_out(out, configs)
    except ConfigError as e:
        fail(str(e))
    where_text = f"{jobs or 1} at a time" if scheduler is None else (
        f"on a local Dask cluster of {where} worker processes" if kind == "local" else f"on the Dask cluster at {where}")
    with contextlib.ExitStack() as stack:
        if scheduler is not None:  # connect first: an unreachable scheduler is an error before anything is written
            try:
                scheduler = stack.enter_context(dask.connect(scheduler))
            except ConfigError as e:
                fail(str(e))
        click.echo(f"sweep: {len(configs)} configurations, {where_text}, into {out}")
        progress = SweepProgress(len(configs))
        progress.begin()
        runner = None if scheduler is None else dask.cluster_runner(scheduler)
        try:
            rows = fsweep.run_sweep(configs, out, jobs or 1, data_dir, progress, runner=runner, spec=spec)
        except (ConfigError, RunError) as e:  # another sweep took the folder since the check above
            fail(str(e))
    click.echo("\n" + fsweep.format_table(rows))
    figures = [f"{out}/{f}" for f in (compare.CURVES_FILE, compare.SCATTER_FILE) if (Path(out) / f).is_file()]
    click.echo(f"table: {out}/results.md, {out}/results.csv" + (f"; figures: {', '.join(figures)}" if figures else ""))
