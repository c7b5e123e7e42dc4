"""``fnn-cli runs list|show``: what has been trained."""

import json

import click

from fnn.training import runs as fruns
from fnn_cli.common import Group, fail


@click.group(cls=Group)
def runs():
    """List and inspect run folders."""


@runs.command("list")
@click.argument("root", type=click.Path(file_okay=False), default=fruns.DEFAULT_ROOT)
def list_(root):
    """List the runs under ROOT (default: runs/), oldest first, with their status.

    A run is finished, diverged, interrupted, unfinished (killed: a checkpoint, no summary) or damaged.

    \b
    Example:
      fnn-cli runs list runs/
    """
    found = fruns.list_runs(root)
    if not found:
        click.echo(f"no runs under {root}; train one with: fnn-cli fit --arch 784,128,64,10")
        return
    click.echo(f"{'run':<48} {'dataset':<14} {'epochs':>6} {'test_acc':>8} {'seconds':>8}  status")
    for run in found:
        st = fruns.run_status(run)
        if st["state"] == "damaged":
            click.echo(f"{run.name:<48} ({st['text']})")
            continue
        s = st["summary"]
        acc = f"{s['test_accuracy']:.4f}" if isinstance(s.get("test_accuracy"), (int, float)) else "-"
        secs = f"{s['train_seconds']:.1f}" if isinstance(s.get("train_seconds"), (int, float)) else "-"
        click.echo(f"{run.name:<48} {s.get('dataset', '-'):<14} {st['epochs_done']:>6} {acc:>8} {secs:>8}  {st['text']}")


@runs.command()
@click.argument("run", type=click.Path())
def show(run):
    """Show a run's summary, configuration and per-epoch metrics.

    \b
    Example:
      fnn-cli runs show runs/mnist-784-128-64-10-20261130-120000
    """
    if not fruns.is_run(run):
        fail(f"{run}: not a run folder")
    try:
        summary = fruns.read_summary(run)
        metrics = fruns.read_metrics(run)
    except fruns.RunError as e:
        fail(str(e))
    click.echo(json.dumps(summary, indent=2) if summary else f"{run}: no summary yet: {fruns.run_status(run)['text']}")
    cfg = fruns.Path(run) / fruns.CONFIG
    if cfg.is_file():
        click.echo("\nconfig:\n" + cfg.read_text())
    for r in metrics:
        val = f"  val_acc {r['val_accuracy']:.4f}" if "val_accuracy" in r else ""
        click.echo(f"epoch {r['epoch']:>3}  loss {r['loss']:.4f}  acc {r['accuracy']:.4f}{val}")
