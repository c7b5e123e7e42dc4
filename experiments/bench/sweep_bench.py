"""Wall time of an 8-configuration sweep: locally in 1 process, then on a 2-worker Dask LocalCluster.

    python experiments/bench/sweep_bench.py [--epochs N] [--workers N] [--quick]

The sweep is MNIST, ``784,64,10`` and ``784,128,10`` x ``sgd``/``adam`` x lr
``0.001``/``0.01`` (2 epochs, batch 128; ``--quick``: a 2000-example subset,
1 epoch, a smoke run). Each run trains with one BLAS thread, in the local
process or on a worker process (``threads_per_worker=1``). The cluster's start
is timed apart from the sweep. Figures are not drawn (they cost the same
either way). The script checks that both sweeps give bit-identical weights.
"""

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from fnn import datasets, serialization
from fnn.training import sweep
from fnn.training.dask import cluster_runner, local_cluster
from fnn.tree import tree_equal

GRID = {"arch": ["784,64,10", "784,128,10"], "optimizer": ["sgd", "adam"], "lr": [0.001, 0.01]}


def configs(tmp, quick, epochs):
    """The 8 configurations (MNIST, or a small subset saved as a user .npz with ``quick``)."""
    dataset = "mnist"
    if quick:
        ds = datasets.load("mnist")
        dataset = str(Path(tmp) / "mnist-2000.npz")
        np.savez(dataset, x=ds.x_train[:2000], y=ds.y_train[:2000], x_test=ds.x_test[:500], y_test=ds.y_test[:500])
    return sweep.expand({"base": {"dataset": dataset, "epochs": 1 if quick else epochs, "batch_size": 128}, "grid": GRID})


def timed(fn):
    t0 = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - t0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="a small, fast smoke run")
    args = parser.parse_args()

    import distributed

    load = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="fnn-sweep-bench-") as tmp:
        runs = configs(tmp, args.quick, args.epochs)
        local_rows, local_s = timed(lambda: sweep.run_sweep(runs, Path(tmp) / "local", jobs=1, figures=False))
        cluster, start_s = timed(lambda: local_cluster(args.workers))
        with cluster, distributed.Client(cluster) as client:
            client.wait_for_workers(args.workers)
            dask_rows, dask_s = timed(lambda: sweep.run_sweep(runs, Path(tmp) / "dask", runner=cluster_runner(client), figures=False))
        same = all(
            tree_equal(serialization.load_model(Path(tmp) / "local" / name / "model.npz").params,
                       serialization.load_model(Path(tmp) / "dask" / name / "model.npz").params)
            for name, _ in runs
        )
        done = sum(r["status"] == "done" for r in local_rows), sum(r["status"] == "done" for r in dask_rows)

    what = "quick smoke run, 2000 examples, 1 epoch" if args.quick else f"MNIST, {args.epochs} epochs"
    print(f"sweep: {len(runs)} configurations ({what}); done: local {done[0]}, cluster {done[1]}")
    print(f"machine: {os.cpu_count()} cores, load average {load[0]:.1f} before the runs (other processes share the cores)")
    cluster = f"LocalCluster ({args.workers} workers)"
    print(f"{'local (1 process) sweep:':<34}{local_s:8.3f} s")
    print(f"{cluster + ' start:':<34}{start_s:8.3f} s")
    print(f"{cluster + ' sweep:':<34}{dask_s:8.3f} s")
    print(f"speed-up: {local_s / dask_s:.2f}x (sweep only), {local_s / (start_s + dask_s):.2f}x (with the cluster's start)")
    print(f"weights identical: {same}")


if __name__ == "__main__":  # LocalCluster's worker processes re-import this file
    main()
