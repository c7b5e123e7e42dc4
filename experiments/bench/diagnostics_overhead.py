"""Epoch time with training diagnostics on against off (the issue's bar: at most 1.10x).

    python experiments/bench/diagnostics_overhead.py                 # 784-128-64-10 and 784-256-128-64-10, MNIST
    python experiments/bench/diagnostics_overhead.py --arch 784,128,64,10 --repeats 5 --epochs 3

Each repeat trains the same config twice, diagnostics off then on, one BLAS
thread, in this process (the order alternates between repeats so a drift in the
machine's load hits both). The epoch time is ``seconds`` in ``metrics.jsonl``,
which with diagnostics on includes their measurement at the epoch's end; the
one-off measurement of the initialization (epoch 0) is reported separately.
Figures are medians over all epochs of all repeats.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from fnn import datasets
from fnn.training import diagnostics, runs
from fnn.training.config import FitConfig
from fnn.training.experiment import fit_config


def measure(arch, epochs, repeats, dataset):
    times = {False: [], True: []}
    own, init = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(repeats):
            for on in ((False, True) if r % 2 == 0 else (True, False)):
                out = Path(tmp) / f"{r}-{on}"
                fit_config(FitConfig(arch=arch, epochs=epochs, diagnostics=on), out, dataset=dataset, threads=1)
                times[on] += [row["seconds"] for row in runs.read_metrics(out)]
                if on:
                    rows = diagnostics.read(out)
                    init.append(rows[0]["seconds"])
                    own += [row["seconds"] for row in rows[1:]]
    off, on = statistics.median(times[False]), statistics.median(times[True])
    return {"arch": "-".join(map(str, arch)), "off": off, "on": on, "ratio": on / off,
            "diag": statistics.median(own), "init": statistics.median(init), "n": len(times[True])}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", action="append", help="layer sizes, e.g. 784,128,64,10 (repeatable)")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    archs = [tuple(int(s) for s in a.split(",")) for a in (args.arch or ["784,128,64,10", "784,256,128,64,10"])]
    dataset = datasets.load("mnist")
    print("| model | epoch off (s) | epoch on (s) | on / off | diagnostics per epoch (s) | epoch 0, once (s) | epochs |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for arch in archs:
        m = measure(arch, args.epochs, args.repeats, dataset)
        print(f"| {m['arch']} | {m['off']:.3f} | {m['on']:.3f} | {m['ratio']:.3f} | {m['diag']:.3f} | {m['init']:.3f} | {m['n']} |",
              flush=True)


if __name__ == "__main__":
    main()
