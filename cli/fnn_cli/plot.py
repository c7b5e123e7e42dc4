"""``fnn-cli plot``: redraw a run's training curves from its metrics.jsonl."""

from pathlib import Path

import click

from fnn_cli.common import fail, number


@click.command()
@click.argument("run", type=click.Path())
@click.option("--out", type=click.Path(dir_okay=False), help="PNG to write. [default: RUN/training_curves.png]")
def plot(run, out):
    """Redraw a run's training curves from its metrics.jsonl.

    Loss, accuracy (train and validation) and learning rate per epoch; works
    while the run is still training or after it stopped early.

    \b
    Example:
      fnn-cli plot runs/mnist-784-128-64-10-20261130-120000
    """
    from fnn.evaluation import plotting
    from fnn.serialization import check_output
    from fnn.training import runs

    if not Path(run).is_dir():
        fail(f"{run}: no such run folder")
    target = check_output(out or Path(run) / "training_curves.png")  # a device, pipe or link there: exit 2, before drawing
    try:
        history = runs.read_metrics(run)
    except runs.RunError as e:
        fail(str(e))
    if not history:
        fail(f"{run}: no epoch recorded yet in {runs.METRICS}")
    path = plotting.training_curves(history, target, title=f"Training curves: {Path(run).name}")
    last = history[-1]
    val = f", val_accuracy {number(last.get('val_accuracy'))}" if "val_accuracy" in last else ""
    click.echo(f"{len(history)} epochs (last: loss {number(last.get('loss'))}{val}); wrote {path}")
