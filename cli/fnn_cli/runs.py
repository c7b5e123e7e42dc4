"""``fnn-cli runs list|show``: what has been trained."""

import json
import shlex

import click

from fnn.training import runs as fruns
from fnn.training import tracking
from fnn_cli.common import Group, fail, number


@click.group(cls=Group)
def runs():
    """List and inspect run folders."""


#: What ``runs list`` shows after the run's name, the keys the listed runs vary going after ``dataset``.
COLUMNS = ("dataset", "epochs_done", "val_accuracy", "test_accuracy", "train_seconds", "status")


@runs.command("list")
@click.argument("root", type=click.Path(file_okay=False), default=fruns.DEFAULT_ROOT)
@click.option("--where", "wheres", multiple=True, metavar="EXPR",
              help="Keep the runs where EXPR holds: KEY=VALUE, KEY!=VALUE, KEY<V, KEY<=V, KEY>V or KEY>=V, KEY any config "
                   "or summary key; numbers compare as numbers, arch=784,128,10 matches 784-128-10. Repeatable: all must hold.")
@click.option("--sort", metavar="KEY[,KEY...]",
              help="Order by KEY, ascending; -KEY descending (--sort -val_accuracy: best first); runs without a value last. "
                   "[default: oldest first]")
@click.option("--columns", metavar="KEY,KEY...",
              help="Show these keys after the run's name. [default: dataset, the keys the runs vary, epochs_done, "
                   "val_accuracy, test_accuracy, train_seconds, status]")
@click.option("--json", "as_json", is_flag=True,
              help="Print the runs' records as JSON: every config and summary key, or run and the --columns.")
def list_(root, wheres, sort, columns, as_json):
    """List the runs under ROOT (default: runs/), oldest first, with their status and the keys they vary.

    ROOT's run folders are listed, and those one level down as FOLDER/RUN
    (a sweep's folder holds its runs); ROOT may be a sweep's folder, or one run.
    A run is finished, diverged, interrupted, unfinished (killed: a checkpoint,
    no summary) or damaged. The columns after dataset are the config keys the
    listed runs vary: a sweep's grid keys, else the keys whose values differ.

    \b
    Example:
      fnn-cli runs list runs/
      fnn-cli runs list runs/sweep-1 --where optimizer=adam --where 'lr<0.01' --sort -val_accuracy
      fnn-cli runs list --where arch=784,128,64,10 --columns lr,seed,test_accuracy
      fnn-cli runs list runs/sweep-1 --json
    """
    records = tracking.read_records(root)
    known = tracking.fields(records)
    filters = [(w, _query(f"--where {w}", tracking.parse_where, w, known)) for w in wheres]
    order = _query(f"--sort {sort}", tracking.parse_sort, sort, known) if sort is not None else []
    shown = _query(f"--columns {columns}", tracking.parse_columns, columns, known) if columns is not None else None
    listed = records
    for text, where in filters:
        listed = _query(f"--where {text}", tracking.filter_records, listed, [where])
    listed = tracking.sort_records(listed, order)
    if as_json:
        keys = None if shown is None else ["run", *shown]
        click.echo(json.dumps([r if keys is None else {k: r.get(k) for k in keys} for r in listed], indent=1))
        return
    if not records:
        click.echo(f"no runs under {root}; train one with: fnn-cli fit --arch 784,128,64,10")
        return
    if not listed:
        click.echo(f"none of the {len(records)} runs under {root} match {' '.join('--where ' + shlex.quote(w) for w in wheres)}")
        return
    if shown is None:
        shown = [COLUMNS[0], *(k for k in tracking.varied_keys(listed) if k not in COLUMNS), *COLUMNS[1:]]
    for line in table(listed, [k for k in shown if k != "run"]):
        click.echo(line)


def _query(what, parse, *args):
    """``parse(*args)``, a :class:`fnn.training.tracking.QueryError` becoming a one-line exit-2 error naming ``what``."""
    try:
        return parse(*args)
    except tracking.QueryError as e:
        fail(f"{what}: {e}")


def cell(key, value) -> str:
    """A record's value as shown: accuracies and losses to 4 places, seconds to 1, other numbers as short as exact."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        if key.endswith(("accuracy", "loss")):
            return f"{value:.4f}"
        return f"{value:.1f}" if key.endswith("seconds") else repr(value)
    return str(value)


def table(records, columns) -> list[str]:
    """One aligned line per record, ``run`` first, under a header of the keys; numbers right-aligned; a damaged
    run's line is its name and the status naming the damage."""
    rows = [[r["run"], *(cell(k, r.get(k)) for k in columns)] for r in records]
    keys = ["run", *columns]
    widths = [max([len(k), *(len(row[i]) for row, r in zip(rows, records) if i == 0 or r["state"] != "damaged")])
              for i, k in enumerate(keys)]
    right = [i > 0 and all(isinstance(r.get(k), (int, float)) or r.get(k) is None for r in records) for i, k in enumerate(keys)]

    def line(cells):
        return "  ".join(c.rjust(w) if r else c.ljust(w) for c, w, r in zip(cells, widths, right)).rstrip()

    out = [line(keys)]
    for row, r in zip(rows, records):
        out.append(f"{row[0]:<{widths[0]}}  ({r['status']})" if r["state"] == "damaged" else line(row))
    return out


@runs.command()
@click.argument("run", type=click.Path())
def show(run):
    """Show a run's summary, its model's layers (output shapes, parameters), configuration and per-epoch metrics.

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
    model_file = fruns.Path(run) / fruns.MODEL
    if model_file.is_file():
        import fnn
        from fnn.serialization import ModelFileError

        try:
            loaded = fnn.load_model(model_file)
            click.echo("\nmodel:\n" + str(fnn.summary(loaded.model, loaded.input_shape)))
        except ModelFileError as e:
            click.echo(f"\nmodel: cannot be read ({e})")
    cfg = fruns.Path(run) / fruns.CONFIG
    if cfg.is_file():
        click.echo("\nconfig:\n" + config_text(cfg))
    for i, r in enumerate(metrics, 1):
        val = f"  val_acc {number(r.get('val_accuracy'))}" if "val_accuracy" in r else ""
        epoch = r.get("epoch") if r.get("epoch") is not None else i
        click.echo(f"epoch {epoch:>3}  loss {number(r.get('loss'))}  acc {number(r.get('accuracy'))}{val}")


def config_text(path) -> str:
    """The run's ``config.yaml`` as text, or a line saying why it cannot be shown (not UTF-8, too large, a pipe)."""
    from fnn.serialization import read_regular
    from fnn.training.config import MAX_CONFIG_BYTES

    try:
        return read_regular(path, MAX_CONFIG_BYTES, what="a config file").decode("utf-8")
    except UnicodeDecodeError as e:
        return f"(cannot be shown: not UTF-8 text, byte at offset {e.start})\n"
    except OSError as e:
        return f"(cannot be read: {e.strerror or e})\n"
