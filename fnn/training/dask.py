"""Sweeps on a Dask cluster: each configuration is one task, and the client writes the run folders.

``run_on_cluster(configs, out, scheduler)`` submits every configuration of a
sweep (from :func:`fnn.training.sweep.expand`) to a Dask ``distributed`` scheduler:

- ``"tcp://HOST:PORT"``: a running cluster (``dask scheduler`` plus ``dask worker``s);
- ``"local:N"``: a ``LocalCluster`` of N worker processes on 127.0.0.1, dashboard off;
- a ``distributed.Client`` you already hold.

A task, :func:`train_task`, is a pure function of its configuration (seed
included) and the dataset: it trains in a temporary folder on the worker and
returns the run's files (``config.yaml``, ``metrics.jsonl``, ``model.npz``,
``checkpoint.npz``, ``train.log``, ``summary.json``) with its result row. The
client writes them into ``out/<name>/``, so workers need no shared filesystem
and a run folder is byte for byte what a local sweep writes, except for
timings. Each dataset is loaded once, on the client, and scattered to the
workers.

A configuration that raises is a failed row with its error; the others go on.
A worker that dies mid-task loses nothing: the scheduler runs the task again
on another worker (up to ``distributed.scheduler.allowed-failures`` deaths),
and a task that fails for any other reason outside training is retried
``RETRIES`` times.

Dask is an optional extra (``pip install 'fnn[distributed]'``), imported only
inside these functions; ``import fnn.training.dask`` works without it.
"""

from __future__ import annotations

import contextlib
import re
import tempfile
from pathlib import Path

from fnn.training.config import ConfigError

INSTALL_HINT = "pip install 'fnn[distributed]'"
RETRIES = 2
_TCP = re.compile(r"tcp://([^\s:/]+|\[[0-9a-fA-F:]+\]):(\d{1,5})")
_LOCAL = re.compile(r"local:(\d{1,4})")


#: Dask's nannies start workers with ``MALLOC_TRIM_THRESHOLD_=65536``, which turns off glibc's adaptive
#: mmap threshold: every batch-sized temporary array is then mmap'd and unmapped again, and training
#: runs about twice as slow. This Dask setting leaves the variable unset (the README shows it as YAML).
NO_MALLOC_TRIM = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}


class DaskMissing(ConfigError):
    """Dask's ``distributed`` package is not installed; the message says how to install it."""


class SchedulerError(ConfigError):
    """A ``--scheduler`` value is malformed, or its scheduler cannot be reached."""


def parse_scheduler(value: str):
    """``"tcp://HOST:PORT"`` -> ``("tcp", "tcp://HOST:PORT")``; ``"local:N"`` -> ``("local", N)``.

    >>> parse_scheduler("local:2"), parse_scheduler("tcp://10.0.0.5:8786")
    (('local', 2), ('tcp', 'tcp://10.0.0.5:8786'))
    """
    local, tcp = _LOCAL.fullmatch(value), _TCP.fullmatch(value)
    if local and int(local[1]) >= 1:
        return "local", int(local[1])
    if tcp and 1 <= int(tcp[2]) <= 65535:
        return "tcp", value
    raise SchedulerError(f"scheduler {value!r}: give tcp://HOST:PORT (a running dask scheduler) or local:N (N >= 1 worker processes)")


def require_dask():
    """The ``distributed`` module, or :class:`DaskMissing` naming the extra to install."""
    try:
        import distributed
    except ImportError:
        raise DaskMissing(f"--scheduler needs Dask, which is not installed: {INSTALL_HINT}") from None
    return distributed


@contextlib.contextmanager
def connect(scheduler):
    """A ``distributed.Client`` for ``scheduler`` (see :func:`parse_scheduler`), closed on exit.

    A ``Client`` given as ``scheduler`` is used as it is and left open.
    """
    if not isinstance(scheduler, str):
        yield scheduler
        return
    kind, where = parse_scheduler(scheduler)
    distributed = require_dask()
    if kind == "local":
        with local_cluster(where) as cluster, distributed.Client(cluster) as client:
            yield client
        return
    try:
        client = distributed.Client(where)
    except (OSError, TimeoutError) as e:
        raise SchedulerError(f"scheduler {where}: cannot connect "
                             f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else 'no answer'})") from None
    with client:
        yield client


def local_cluster(n_workers: int):
    """A ``LocalCluster`` of ``n_workers`` single-threaded worker processes, on 127.0.0.1 only, dashboard off.

    The scheduler's small HTTP server (health checks) listens on a free
    loopback port. The workers start without Dask's ``MALLOC_TRIM_THRESHOLD_``
    setting (see :data:`NO_MALLOC_TRIM`).
    """
    import logging

    import dask

    distributed = require_dask()
    with dask.config.set(NO_MALLOC_TRIM):
        return distributed.LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                                        dashboard_address=None, silence_logs=logging.ERROR,
                                        scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"})


def train_task(name, config, dataset) -> dict:
    """Train one configuration in a temporary folder; return ``{"row": ..., "files": {file name: bytes}}``.

    Runs on a worker. A pure function of ``config`` (seed included) and
    ``dataset``; ``files`` is empty when training failed before writing anything.
    """
    from fnn.training.sweep import run_one

    with tempfile.TemporaryDirectory(prefix="fnn-sweep-") as tmp:
        folder = Path(tmp) / "run"
        row = run_one(name, config, folder, threads=1, dataset=dataset)
        files = {p.name: p.read_bytes() for p in sorted(folder.glob("*")) if p.is_file() and not p.name.startswith(".")}
    return {"row": row, "files": files}


def write_run(folder, files: dict) -> None:
    """Write a task's ``files`` into the run ``folder`` (each atomically)."""
    from fnn.serialization import atomic_write

    folder = Path(folder)
    if files:
        folder.mkdir(parents=True, exist_ok=True)
    for fname, data in files.items():
        if Path(fname).name != fname or fname.startswith("."):
            raise ValueError(f"refusing to write run file {fname!r}: not a plain file name")
        atomic_write(folder / fname, lambda f, d=data: f.write(d))


def _scatter_datasets(client, configs, data_dir):
    """Load each dataset the configurations name once, here, and scatter it to every worker.

    Returns ``{dataset: future or error text}``.
    """
    from fnn import datasets

    loaded = {}
    for _, config in configs:
        if isinstance(config, Exception) or config.dataset in loaded:
            continue
        try:
            ds = datasets.load(config.dataset, data_dir=data_dir)
        except Exception as e:  # noqa: BLE001 - recorded on every run that needs this dataset
            loaded[config.dataset] = f"{type(e).__name__}: {e}"
            continue
        loaded[config.dataset] = client.scatter(ds, broadcast=True)
    return loaded


def run_on_cluster(configs, out, scheduler, data_dir=None, on_row=None) -> list[dict]:
    """Train ``configs`` as tasks on ``scheduler``'s cluster; write each run into ``out/<name>/``.

    ``on_row(row)`` is called as each run finishes (in the order they finish).
    Returns the rows in that order; never raises for a failing configuration.
    """
    import uuid

    from fnn.training.sweep import failed_row

    distributed = require_dask()
    out, rows, token = Path(out), [], uuid.uuid4().hex[:8]

    def record(row):
        rows.append(row)
        if on_row:
            on_row(row)

    with connect(scheduler) as client:
        data = _scatter_datasets(client, configs, data_dir)
        futures = {}
        for name, config in configs:
            source = None if isinstance(config, Exception) else data[config.dataset]
            if isinstance(config, Exception) or isinstance(source, str):
                record(failed_row(name, config, config if isinstance(config, Exception) else source))
                continue
            fut = client.submit(train_task, name, config, source, retries=RETRIES, pure=False, key=f"fnn-sweep-{token}-{name}")
            futures[fut] = (name, config)
        for fut in distributed.as_completed(futures):
            name, config = futures[fut]
            try:
                result = fut.result()
            except Exception as e:  # noqa: BLE001 - a lost task (KilledWorker, ...) is a failed run
                record(failed_row(name, config, f"{type(e).__name__}: {e}"))
                continue
            write_run(out / name, result["files"])
            record(result["row"])
    return rows


def cluster_runner(scheduler):
    """A :func:`fnn.training.sweep.run_sweep` runner: every configuration a task on ``scheduler``'s cluster."""

    def run(configs, out, data_dir, collect):
        run_on_cluster(configs, out, scheduler, data_dir, collect)

    return run


__all__ = ["cluster_runner", "parse_scheduler", "require_dask", "connect", "local_cluster", "train_task", "write_run", "run_on_cluster",
           "DaskMissing", "SchedulerError", "INSTALL_HINT"]
