"""Sweeps: a grid of configurations trained in parallel processes, then compared.

A sweep file (YAML or JSON) has a ``base`` config and a ``grid`` of lists;
every combination of the grid's values, on top of ``base``, is one run:

.. code-block:: yaml

    base: {dataset: mnist, epochs: 3}
    grid:
      arch: ["784,64,10", "784,128,64,10"]
      optimizer: [sgd, adam]
      lr: [0.001, 0.01]

``run_sweep`` trains each in its own process (``jobs`` at a time), or as a
task on a Dask cluster (``runner=fnn.training.dask.cluster_runner(...)``), into
``out/<name>/`` and writes ``out/results.md``, ``results.csv`` and
``results.json`` sorted by validation accuracy, and the comparison figures
``val_curves.png`` and ``accuracy_vs_cost.png``; given the sweep file's
mapping (:func:`read_sweep`), it keeps it as ``out/sweep.yaml`` (``fnn-cli sweep
out/sweep.yaml`` repeats the sweep; ``fnn-cli runs list`` shows its grid keys).
A failing configuration is recorded with its error; the others go on.

Run names are folder names made from the grid values (``adam_lr0.01``): only
letters, digits and ``. _ + -`` (anything else becomes ``_``), never starting
with a dot (so never ``.`` or ``..``), at most :data:`MAX_NAME` characters, and
unique (ignoring case) within the sweep: a name that would repeat another gets
``-2``, ``-3``, ... A grid of more than :data:`MAX_RUNS` combinations is refused
before any is made. ``run_sweep`` refuses a folder that already holds a sweep
or one of its runs, and locks the sweep folder while it runs.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from fnn.training.config import ConfigError, FitConfig, parse_arch, read_mapping

SPEC = "sweep.yaml"
RESULTS = ("results.md", "results.csv", "results.json")
#: Names in a sweep folder that are not runs (a run is never named so).
RESERVED = (SPEC, *RESULTS, "val_curves.png", "accuracy_vs_cost.png")
MAX_RUNS = 10_000  # combinations in one grid
MAX_NAME = 100  # characters of a run name
_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]")
COLUMNS = ["name", "status", "val_accuracy", "test_accuracy", "params", "epochs", "seconds", "optimizer", "lr", "arch", "error"]


def expand(spec: dict) -> list[tuple[str, FitConfig]]:
    """``[(name, config), ...]`` for every combination in ``spec["grid"]`` over ``spec["base"]``."""
    if not isinstance(spec, dict) or set(spec) - {"base", "grid"}:
        raise ConfigError("a sweep file holds 'base' (a config) and 'grid' (key: list of values); "
                          f"found keys {sorted(spec) if isinstance(spec, dict) else type(spec).__name__}")
    base, grid = spec.get("base") or {}, spec.get("grid") or {}
    if not isinstance(base, dict) or not isinstance(grid, dict):
        raise ConfigError("sweep 'base' and 'grid' must be mappings")
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"sweep grid {key!r} must be a non-empty list")
        if key not in FitConfig.keys():
            raise ConfigError(f"unknown config key {key!r} in sweep grid; valid keys: {', '.join(FitConfig.keys())}")
    count = math.prod(len(v) for v in grid.values())
    if count > MAX_RUNS:
        sizes = " x ".join(str(len(v)) for v in grid.values())
        raise ConfigError(f"sweep grid has {count:,} combinations ({sizes}); the limit is {MAX_RUNS:,}")
    FitConfig.from_dict(base)
    runs, taken = [], {n.lower() for n in RESERVED}
    keys = list(grid)
    for values in itertools.product(*(grid[k] for k in keys)):
        changes = dict(zip(keys, values))
        name = _unique(safe_name("_".join(_short(k, v) for k, v in changes.items()) or "base"), taken)
        try:
            config = FitConfig.from_dict({**base, **changes})
        except ConfigError as e:
            config = e  # recorded as a failed run
        runs.append((name, config))
    return runs


def safe_name(text) -> str:
    """``text`` as a folder name: letters, digits and ``. _ + -`` only, no leading dot, at most :data:`MAX_NAME` characters.

    >>> safe_name("d/x_y.npz"), safe_name(".."), safe_name("lr0.01 é")
    ('d_x_y.npz', '_', 'lr0.01__')
    """
    name = _UNSAFE.sub("_", str(text))
    if name.startswith("."):
        name = "_" + name.lstrip(".")
    if len(name) > MAX_NAME:  # cut, keeping it apart from others with the same start
        name = name[: MAX_NAME - 9] + "-" + hashlib.sha256(str(text).encode("utf-8", "replace")).hexdigest()[:8]
    return name or "_"


def _unique(name, taken) -> str:
    """``name``, or ``name-2``, ``name-3``, ... the first not in ``taken`` (compared ignoring case); added to ``taken``."""
    candidate, n = name, 1
    while candidate.lower() in taken:
        n += 1
        suffix = f"-{n}"
        candidate = name[: MAX_NAME - len(suffix)] + suffix
    taken.add(candidate.lower())
    return candidate


def _short(key, value):
    """A run-folder name part: ``784-128-10`` for an arch, ``adam`` for a name, ``lr0.01`` for a number."""
    if key == "arch":
        return "-".join(str(s) for s in parse_arch(value))
    if isinstance(value, str):
        return value
    return f"{key}{value}"


def read_sweep(path) -> dict:
    """A sweep file's mapping (``base`` and ``grid``), checked by :func:`expand`; errors name ``path``."""
    spec = read_mapping(path)
    try:
        expand(spec)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None
    return spec


def load_sweep(path) -> list[tuple[str, FitConfig]]:
    """Read a sweep file and expand it."""
    return expand(read_sweep(path))


def failed_row(name, config, error) -> dict:
    """The result row of a configuration that could not be trained, with its ``error`` text."""
    row = {"name": name, "status": "failed", "error": str(error)}
    if not isinstance(config, Exception):
        row.update(optimizer=config.optimizer, lr=config.lr, arch=config.arch_name)
    return row


def run_one(name, config, out_dir, data_dir=None, threads=1, dataset=None) -> dict:
    """Train one configuration into ``out_dir``; returns its result row (never raises for a failing config).

    ``dataset`` (a loaded :class:`fnn.datasets.Dataset`) skips loading ``config.dataset``.
    """
    from fnn.training.experiment import fit_config

    if isinstance(config, Exception):
        return failed_row(name, config, config)
    try:
        summary = fit_config(config, out_dir, data_dir=data_dir, threads=threads, dataset=dataset)
    except Exception as e:  # noqa: BLE001 - a sweep records any failure and goes on
        return failed_row(name, config, f"{type(e).__name__}: {e}")
    row = failed_row(name, config, "")
    row.update(
        status="done",
        val_accuracy=summary["val_accuracy"],
        test_accuracy=summary["test_accuracy"],
        params=summary["params"],
        epochs=summary["epochs"],
        seconds=round(summary["train_seconds"], 2),
    )
    return row


def local_runner(jobs=1):
    """A :func:`run_sweep` runner training here, ``jobs`` processes at a time (in this process when ``jobs`` is 1)."""

    def run(configs, out, data_dir, collect):
        if jobs <= 1:
            for name, config in configs:
                collect(run_one(name, config, out / name, data_dir))
            return
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            futures = [pool.submit(run_one, name, config, out / name, data_dir) for name, config in configs]
            for fut in as_completed(futures):
                collect(fut.result())

    return run


def run_sweep(configs, out, jobs=1, data_dir=None, on_result=None, runner=None, figures=True, spec=None) -> list[dict]:
    """Run ``configs`` (from :func:`expand`) into ``out/<name>/``; returns the rows sorted by validation accuracy.

    ``runner(configs, out, data_dir, collect)`` trains them and calls
    ``collect(row)`` as each finishes: :func:`local_runner` with ``jobs``
    processes by default, or another, such as
    ``fnn.training.dask.cluster_runner("tcp://HOST:PORT")`` for a Dask
    cluster (the run folders are the same). ``on_result(row, done, total)``
    is called as each run finishes. Failed runs sort last. Writes
    ``results.md`` / ``results.csv`` / ``results.json`` and (with
    ``figures``) the comparison figures in ``out``; with ``spec`` (the sweep
    file's mapping the ``configs`` were expanded from), ``out/sweep.yaml`` first.
    """
    from fnn.training import runs

    out = check_out(out, configs)
    out.mkdir(parents=True, exist_ok=True)
    with runs.lock(out):
        check_out(out, configs)  # again under the lock: another sweep may have started there meanwhile
        if spec is not None:
            import yaml

            from fnn.evaluation.compare import write_text

            write_text(out / SPEC, yaml.safe_dump(spec, sort_keys=False))
        rows = []

        def collect(row):
            rows.append(row)
            if on_result:
                on_result(row, len(rows), len(configs))

        (runner or local_runner(jobs))(configs, out, data_dir, collect)
        rows = sort_rows(rows)
        write_results(out, rows)
        if figures:
            write_figures(out, rows)
    return rows


def check_out(out, configs) -> Path:
    """``out`` as a Path, if a sweep of ``configs`` may be written there: absent, or a folder holding no sweep
    (``sweep.yaml``, results) and nothing where one of its runs goes. :class:`ConfigError` (or
    :class:`fnn.serialization.OutputError` for a path that is not a folder) otherwise; nothing is written."""
    from fnn.serialization import check_output
    from fnn.training import runs

    out = Path(check_output(out, folder=True))
    if not out.is_dir():
        return out
    held = [name for name in (SPEC, *RESULTS) if (out / name).exists() or (out / name).is_symlink()]
    for name, _ in configs:
        if (out / name).exists() or (out / name).is_symlink():
            check_output(out / name, folder=True)
            if runs.is_run(out / name):
                held.append(f"{name}/")
    if held:
        shown = ", ".join(held[:3]) + (f" and {len(held) - 3} more" if len(held) > 3 else "")
        raise ConfigError(f"{out} already holds a sweep ({shown}); choose another folder, or delete it first")
    return out


def sort_rows(rows):
    """Done runs by validation accuracy (best first), then failed runs."""
    return sorted(rows, key=lambda r: (r["status"] != "done", -(r.get("val_accuracy") or 0.0), r["name"]))


def format_table(rows) -> str:
    """A Markdown table of the rows."""
    from fnn.evaluation.markdown import table

    def cell(column, v):
        text = f"{v:.4f}" if isinstance(v, float) and column.endswith("accuracy") else str(v if v is not None else "")
        return text.replace("|", "/")

    return "\n".join(table(COLUMNS, [[cell(c, r.get(c, "")) for c in COLUMNS] for r in rows], align="l" * len(COLUMNS))) + "\n"


def write_results(out, rows) -> None:
    """``results.md``, ``results.csv`` and ``results.json`` in ``out``."""
    from fnn.evaluation.compare import to_csv, write_text

    out = Path(out)
    write_text(out / "results.md", format_table(rows))
    write_text(out / "results.csv", to_csv(rows, COLUMNS))
    write_text(out / "results.json", json.dumps(rows, indent=1))


def write_figures(out, rows) -> list[Path]:
    """The comparison figures of the finished runs: validation curves, accuracy against cost."""
    from fnn.evaluation import compare
    from fnn.training import runs

    out = Path(out)
    done = [r for r in rows if r["status"] == "done"]
    if not done:
        return []
    histories = {r["name"]: runs.read_metrics(out / r["name"]) for r in done}
    points = [{"name": r["name"], "test_accuracy": r["test_accuracy"], "params": r["params"], "train_seconds": r["seconds"]}
              for r in done]
    return compare.write_figures(out, histories, points, "Sweep")


__all__ = ["expand", "safe_name", "check_out", "read_sweep", "load_sweep", "run_one", "run_sweep", "failed_row", "format_table",
           "sort_rows", "write_figures"]
