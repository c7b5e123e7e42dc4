"""The default ``fnn-cli fit`` recipe: candidate recipes on MNIST, 3 seeds each, compared on validation accuracy.

    python3 experiments/recipes.py --jobs 2 --out runs/recipes --results experiments/results/recipes

Every candidate is ``FitConfig`` (784-128-64-10, Adam, 10 epochs, ``val_split``
0.1) with a few fields changed; each seed is one run of :func:`fnn.training.sweep.run_sweep`
(one BLAS thread per process, ``--jobs`` processes at once) into ``--out``.
``--results`` gets ``recipes.json`` (every run: val and test accuracy, wall
and CPU seconds from ``metrics.jsonl``) and ``recipes.md`` (per recipe: the
mean and per-seed accuracies, sorted by mean validation accuracy). Choose on
the validation column; the test column is for the record.
``--only NAME`` (repeatable) runs a subset.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from fnn.serialization import atomic_write
from fnn.training import runs
from fnn.training.config import FitConfig
from fnn.training.sweep import run_sweep

BASE = {"arch": "784,128,64,10", "optimizer": "adam", "epochs": 10, "val_split": 0.1, "warmup": 0, "batch_size": 128}

# name -> the fields that differ from BASE. Every recipe names its schedule, lr and floor, so none depends on
# FitConfig's defaults (which this experiment chooses).
RECIPES = {
    # the learning rate and its schedule, at batch 128
    "constant lr 1e-3": {"schedule": "constant", "lr": 1e-3, "lr_floor": 0.0},
    "constant lr 3e-3": {"schedule": "constant", "lr": 3e-3, "lr_floor": 0.0},
    "cosine lr 1e-3 floor 0 (old default)": {"schedule": "cosine", "lr": 1e-3, "lr_floor": 0.0},
    "cosine lr 1e-3 floor 0.01": {"schedule": "cosine", "lr": 1e-3, "lr_floor": 0.01},
    "cosine lr 1e-3 floor 0.1": {"schedule": "cosine", "lr": 1e-3, "lr_floor": 0.1},
    "cosine lr 2e-3 floor 0.01": {"schedule": "cosine", "lr": 2e-3, "lr_floor": 0.01},
    "cosine lr 2e-3 floor 0.1": {"schedule": "cosine", "lr": 2e-3, "lr_floor": 0.1},
    "cosine lr 3e-3 floor 0": {"schedule": "cosine", "lr": 3e-3, "lr_floor": 0.0},
    "cosine lr 3e-3 floor 0.01": {"schedule": "cosine", "lr": 3e-3, "lr_floor": 0.01},
    "cosine lr 3e-3 floor 0.03": {"schedule": "cosine", "lr": 3e-3, "lr_floor": 0.03},
    "cosine lr 3e-3 floor 0.1": {"schedule": "cosine", "lr": 3e-3, "lr_floor": 0.1},
    "cosine lr 4e-3 floor 0.01": {"schedule": "cosine", "lr": 4e-3, "lr_floor": 0.01},
    "cosine lr 5e-3 floor 0.01": {"schedule": "cosine", "lr": 5e-3, "lr_floor": 0.01},
    # one epoch of linear warm-up
    "cosine lr 2e-3 floor 0.1 warm-up 1": {"schedule": "cosine", "lr": 2e-3, "lr_floor": 0.1, "warmup": 1},
    "cosine lr 3e-3 floor 0.01 warm-up 1": {"schedule": "cosine", "lr": 3e-3, "lr_floor": 0.01, "warmup": 1},
    "cosine lr 3e-3 floor 0.1 warm-up 1": {"schedule": "cosine", "lr": 3e-3, "lr_floor": 0.1, "warmup": 1},
    # batch 64 (twice the steps) and 256 (half)
    "cosine lr 1e-3 floor 0.1 batch 64": {"schedule": "cosine", "lr": 1e-3, "lr_floor": 0.1, "batch_size": 64},
    "cosine lr 2e-3 floor 0.1 batch 64": {"schedule": "cosine", "lr": 2e-3, "lr_floor": 0.1, "batch_size": 64},
    "cosine lr 2e-3 floor 0.1 batch 256": {"schedule": "cosine", "lr": 2e-3, "lr_floor": 0.1, "batch_size": 256},
    "cosine lr 3e-3 floor 0.1 batch 256": {"schedule": "cosine", "lr": 3e-3, "lr_floor": 0.1, "batch_size": 256},
    "cosine lr 4e-3 floor 0.01 batch 256": {"schedule": "cosine", "lr": 4e-3, "lr_floor": 0.01, "batch_size": 256},
}
SEEDS = (0, 1, 2)


def slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in ".-" else "-" for c in name).strip("-")


def configs(names, seeds=SEEDS):
    """``[(run folder name, FitConfig), ...]`` for every recipe in ``names`` and seed."""
    return [(f"{slug(n)}_seed{s}", FitConfig.from_dict({**BASE, **RECIPES[n], "seed": s})) for n in names for s in seeds]


def cpu_seconds(run_dir) -> float:
    """The run's training CPU seconds: the sum of ``metrics.jsonl``'s per-epoch ``cpu_seconds``."""
    return sum(r["cpu_seconds"] for r in runs.read_metrics(run_dir))


def summarize(rows, out, names, seeds=SEEDS) -> list[dict]:
    """One record per recipe: mean and per-seed val/test accuracy, median wall and CPU seconds."""
    by_name = {r["name"]: r for r in rows}
    table = []
    for n in names:
        per = [by_name[f"{slug(n)}_seed{s}"] for s in seeds]
        failed = [r["error"] for r in per if r["status"] != "done"]
        if failed:
            table.append({"recipe": n, "error": failed[0]})
            continue
        cpu = [cpu_seconds(Path(out) / r["name"]) for r in per]
        table.append({
            "recipe": n,
            "config": RECIPES[n],
            "seeds": list(seeds),
            "epochs": per[0]["epochs"],
            "val_accuracy_mean": statistics.fmean(r["val_accuracy"] for r in per),
            "val_accuracy": [r["val_accuracy"] for r in per],
            "test_accuracy_mean": statistics.fmean(r["test_accuracy"] for r in per),
            "test_accuracy": [r["test_accuracy"] for r in per],
            "seconds_median": statistics.median(r["seconds"] for r in per),
            "cpu_seconds_median": round(statistics.median(cpu), 2),
        })
    return sorted(table, key=lambda t: -t.get("val_accuracy_mean", -1))


def markdown(table) -> str:
    pct = lambda v: f"{100 * v:.2f}"  # noqa: E731
    lines = ["| recipe | seeds | epochs | val acc mean | val acc per seed | test acc mean | test acc per seed "
             "| seconds (median) | CPU seconds (median) |", "|---|---|---:|---:|---|---:|---|---:|---:|"]
    for t in table:
        if "error" in t:
            lines.append(f"| {t['recipe']} | failed: {t['error']} | | | | | | | |")
            continue
        lines.append(
            f"| {t['recipe']} | {','.join(map(str, t['seeds']))} | {t['epochs']} | **{pct(t['val_accuracy_mean'])}%** "
            f"| {' / '.join(pct(v) for v in t['val_accuracy'])} | {pct(t['test_accuracy_mean'])}% "
            f"| {' / '.join(pct(v) for v in t['test_accuracy'])} | {t['seconds_median']:.1f} | {t['cpu_seconds_median']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=2, help="processes at once (one BLAS thread each)")
    parser.add_argument("--out", default="runs/recipes", help="folder for the run folders")
    parser.add_argument("--results", default="experiments/results/recipes", help="folder for recipes.json/.md")
    parser.add_argument("--only", action="append", choices=list(RECIPES), help="run only this recipe (repeatable)")
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args(argv)
    names = args.only or list(RECIPES)

    def report(row, done, total):
        acc = f"val {row['val_accuracy']:.4f} test {row['test_accuracy']:.4f} {row['seconds']:.1f}s" \
            if row["status"] == "done" else row["error"]
        print(f"[{done}/{total}] {row['name']}: {acc}", flush=True)

    rows = run_sweep(configs(names), args.out, jobs=args.jobs, data_dir=args.data_dir, on_result=report, figures=False)
    table = summarize(rows, args.out, names)
    results = Path(args.results)
    results.mkdir(parents=True, exist_ok=True)
    runs_out = [{**r, "cpu_seconds": round(cpu_seconds(Path(args.out) / r["name"]), 2)} if r["status"] == "done" else r
                for r in sorted(rows, key=lambda r: r["name"])]
    text = json.dumps({"base": BASE, "recipes": table, "runs": runs_out}, indent=1)
    atomic_write(results / "recipes.json", lambda f: f.write(text.encode()))
    md = markdown(table)
    atomic_write(results / "recipes.md", lambda f: f.write(md.encode()))
    print(md)
    return 0 if all("error" not in t for t in table) else 1


if __name__ == "__main__":
    sys.exit(main())
