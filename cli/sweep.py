"""``fnn-cli sweep``: a grid of runs in parallel processes, compared in one table."""

import time

import click

from fnn.cli.common import fail


@click.command()
@click.argument("file", type=click.Path())
@click.option("--jobs", "-j", type=click.IntRange(1), default=1, show_default=True, help="Parallel processes.")
@click.option("--out", type=click.Path(file_okay=False), help="Sweep folder. [default: runs/sweep-<time>]")
@click.option("--data-dir", type=click.Path(file_okay=False), help="Folder holding the dataset files.")
def sweep(file, jobs, out, data_dir):
    """Train every combination in a sweep FILE (YAML: base + grid) and compare them.

    \b
    Example (experiments/optimizers.yaml):
      base: {dataset: mnist, arch: "784,128,64,10", epochs: 3}
      grid: {optimizer: [sgd, momentum, rmsprop, adam], lr: [0.001, 0.01]}
    \b
      fnn-cli sweep experiments/optimizers.yaml --jobs 2
    """
    from fnn import sweep as fsweep
    from fnn.config import ConfigError

    try:
        configs = fsweep.load_sweep(file)
    except ConfigError as e:
        fail(str(e))
    out = out or f"runs/sweep-{time.strftime('%Y%m%d-%H%M%S')}"
    click.echo(f"sweep: {len(configs)} configurations, {jobs} at a time, into {out}")

    def on_result(row, done, total):
        status = f"val_acc {row['val_accuracy']:.4f}" if row["status"] == "done" else f"FAILED: {row['error']}"
        click.echo(f"[{done}/{total}] {row['name']}: {status}")

    rows = fsweep.run_sweep(configs, out, jobs, data_dir, on_result)
    click.echo("\n" + fsweep.format_table(rows))
    click.echo(f"table: {out}/results.md, {out}/results.csv")
