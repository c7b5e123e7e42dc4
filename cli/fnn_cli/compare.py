"""``fnn-cli compare``: a table of runs sorted by test accuracy, and comparison figures."""

import click

from fnn_cli.common import fail


@click.command()
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path())
@click.option("--out", type=click.Path(file_okay=False), default="comparison", show_default=True,
              help="Folder for compare.md, compare.csv and the figures.")
@click.option("--no-pictures", is_flag=True, help="Write the tables only.")
def compare(run_dirs, out, no_pictures):
    """Compare runs in a table sorted by test accuracy, with figures.

    Writes compare.md and compare.csv (test accuracy and loss, params, epochs,
    seconds, optimizer, lr) and two figures: overlaid validation curves, and
    test accuracy against parameter count and training time.

    \b
    Example:
      fnn-cli compare runs/mnist-784-64-10-* runs/mnist-784-128-64-10-* --out experiments/results/compare
    """
    from fnn.evaluation.compare import compare_runs, markdown
    from fnn.evaluation.report import EvaluationError

    try:
        result = compare_runs(run_dirs, out, pictures=not no_pictures)
    except EvaluationError as e:
        fail(str(e))
    click.echo(markdown(result["rows"]), nl=False)
    click.echo(f"wrote {', '.join(result['files'].values())}")
