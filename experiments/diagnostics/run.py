"""Teaching experiments for "Diagnosing training": initialization, depth, overfitting, optimizers.

    python experiments/diagnostics/run.py                         # all four, results in experiments/results/diagnostics/
    python experiments/diagnostics/run.py init depth              # some of them
    python experiments/diagnostics/run.py --quick --out /tmp/d    # a smoke run on 1000 examples (the tests use it)

Every run is ``fnn.training.experiment.fit_config(FitConfig(..., diagnostics=True))`` on MNIST with
seed 0 and one BLAS thread; the run folders go to a temporary folder (or
``--runs``). Each experiment writes ``results.md`` (a Markdown table),
``results.json`` and its pictures to ``OUT/<experiment>/``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import attrs

from fnn import datasets
from fnn.evaluation import plotting
from fnn.training import diagnostics, runs
from fnn.training.config import FitConfig
from fnn.training.experiment import fit_config

ROOT = Path(__file__).resolve().parents[2]

INITS = {"zeros": "zeros", "small normal (0.01)": "normal", "Glorot": "glorot_uniform", "He": "he_uniform"}


def train(name, config, dataset, runs_dir):
    """Fit ``config``; returns the run's metrics, diagnostics rows, summary and warnings."""
    out = runs_dir / name
    summary = fit_config(config.replace(diagnostics=True, seed=0), out, dataset=dataset, threads=1)
    rows = diagnostics.read(out)
    return {"name": name, "history": runs.read_metrics(out), "rows": rows, "summary": summary,
            "warnings": [w for r in rows for w in r["warnings"]]}


def write(out, header, table, runs_, notes=()):
    out.mkdir(parents=True, exist_ok=True)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + ["| " + " | ".join(map(str, r)) + " |" for r in table]
    lines += [""] + [f"- {r['name']}: {w}" for r in runs_ for w in r["warnings"]] + list(notes)
    (out / "results.md").write_text("\n".join(lines) + "\n")
    keep = [{k: r[k] for k in ("name", "history", "summary", "warnings")} | {"rows": [
        {**row, "layers": [{k: v for k, v in lay.items() if k != "hist"} for lay in row["layers"]]} for row in r["rows"]]}
        for r in runs_]
    (out / "results.json").write_text(json.dumps(keep, indent=1))
    plotting.compare_curves({r["name"]: r["history"] for r in runs_}, out / "curves.png")
    print((out / "results.md").read_text(), flush=True)


def pct(v):
    return "n/a" if v is None else f"{v:.2%}"


def per_layer(row, key, fmt="{:.2g}"):
    return " / ".join("–" if lay[key] is None else fmt.format(lay[key]) for lay in row["layers"])


def exp_init(data, runs_dir, out, quick):
    """784-256-128-64-10 ReLU, momentum SGD 0.05, constant lr: four initializers."""
    base = FitConfig(arch=(784, 256, 128, 64, 10), optimizer="momentum", lr=0.05, schedule="constant", epochs=1 if quick else 3)
    done = [train(f"init-{init}", base.replace(init=init), data, runs_dir) for init in INITS.values()]
    for r, name in zip(done, INITS):
        r["name"] = name
    table = [(r["name"], per_layer(r["rows"][0], "act_std"), per_layer(r["rows"][0], "grad_norm"),
              pct(r["history"][0]["val_accuracy"]), pct(r["summary"]["test_accuracy"])) for r in done]
    write(out, ["init", "activation std per layer at init", "gradient norm per layer at init", "val acc after epoch 1",
                "test acc"], table, done)
    for r, key in zip(done, INITS.values()):
        plotting.activation_histograms(r["rows"], out / f"activations-{key}.png", title=f"Activations, {r['name']} init")
    plotting.gradient_norms(done[1]["rows"], out / "gradient_norms-normal.png", title="Gradient norm, small normal (0.01) init")


def exp_depth(data, runs_dir, out, quick):
    """Ten layers of 64 units, SGD 0.1, constant lr: sigmoid (Glorot) against ReLU (He)."""
    arch = (784,) + (64,) * 9 + (10,)
    base = FitConfig(arch=arch, optimizer="sgd", lr=0.1, schedule="constant", epochs=1 if quick else 3)
    done = [train(f"10-layer {act}", base.replace(activation=act), data, runs_dir) for act in ("sigmoid", "relu")]
    table = []
    for r in done:
        first, last = r["rows"][0]["layers"], r["rows"][-1]["layers"]
        table.append((r["name"], f"{first[0]['grad_norm'] / max(layer['grad_norm'] for layer in first):.1e}",
                      f"{last[0]['grad_norm'] / max(layer['grad_norm'] for layer in last):.1e}",
                      per_layer(r["rows"][-1], "update_ratio", "{:.0e}"), pct(r["summary"]["test_accuracy"])))
    write(out, ["net", "layer 1 / largest gradient norm, init", "same, last epoch", "update ratio per layer, last epoch",
                "test acc"], table, done)
    for r in done:
        plotting.gradient_norms(r["rows"], out / f"gradient_norms-{r['name'].split()[-1]}.png", title=f"Gradient norms, {r['name']}")


def exp_overfitting(data, runs_dir, out, quick):
    """784-512-512-10 on 2000 MNIST examples (1500 train / 500 val), Adam 1e-3, constant lr."""
    small = attrs.evolve(data, x_train=data.x_train[:2000], y_train=data.y_train[:2000])
    base = FitConfig(arch=(784, 512, 512, 10), lr=1e-3, schedule="constant", val_split=0.25, epochs=4 if quick else 40)
    variants = {"no regularization": {}, "dropout 0.5": {"dropout": 0.5}, "L2 1e-4": {"l2": 1e-4},
                "early stopping (patience 3)": {"early_stopping": 3}}
    done = [train(name, base.replace(**kw), small, runs_dir) for name, kw in variants.items()]
    table = []
    for r in done:
        h = r["history"]
        best = min(h, key=lambda e: e["val_loss"])
        table.append((r["name"], len(h), best["epoch"], f"{best['val_loss']:.3f}", f"{h[-1]['val_loss']:.3f}",
                      f"{h[-1]['loss']:.4f}", diagnostics.overfitting_epoch(h) or "none", pct(r["summary"]["test_accuracy"])))
    write(out, ["variant", "epochs", "best val epoch", "best val loss", "last val loss", "last train loss",
                "overfitting from epoch", "test acc"], table, done)
    for r, key in zip(done, ("none", "dropout", "l2", "early-stopping")):
        plotting.overfitting_curves(r["history"], out / f"overfitting-{key}.png", title=r["name"])


def exp_optimizers(data, runs_dir, out, quick):
    """784-128-64-10 ReLU, constant lr at each optimizer's best rate in optimizers.yaml: time to 97% validation accuracy."""
    base = FitConfig(arch=(784, 128, 64, 10), schedule="constant", epochs=1 if quick else 6)
    runs_ = {"SGD 0.1": ("sgd", 0.1), "momentum 0.1": ("momentum", 0.1), "RMSprop 1e-3": ("rmsprop", 1e-3), "Adam 1e-3": ("adam", 1e-3)}
    done = [train(name, base.replace(optimizer=o, lr=lr), data, runs_dir) for name, (o, lr) in runs_.items()]
    table = []
    for r in done:
        h = r["history"]
        hit = next((e for e in h if e["val_accuracy"] >= 0.97), None)
        secs = sum(e["seconds"] for e in h[:hit["epoch"]]) if hit else None
        table.append((r["name"], f"{h[0]['loss']:.4f}", f"{h[-1]['loss']:.4f}", pct(h[-1]["val_accuracy"]),
                      f"epoch {hit['epoch']}, {secs:.1f} s" if hit else f"not in {len(h)} epochs", pct(r["summary"]["test_accuracy"])))
    write(out, ["optimizer", "train loss epoch 1", "train loss last", "val acc last", "time to 97% val acc", "test acc"], table, done,
          ["", "Seconds are wall-clock epoch times (diagnostics included) on the shared 2-core machine."])


EXPERIMENTS = {"init": exp_init, "depth": exp_depth, "overfitting": exp_overfitting, "optimizers": exp_optimizers}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("names", nargs="*", help=f"experiments to run: {', '.join(EXPERIMENTS)} (default: all)")
    p.add_argument("--out", type=Path, default=ROOT / "experiments" / "results" / "diagnostics")
    p.add_argument("--runs", type=Path, help="keep the run folders here (default: a temporary folder)")
    p.add_argument("--quick", action="store_true", help="1000 training and 500 test examples, 1 epoch (4 for overfitting)")
    args = p.parse_args(argv)
    for name in args.names:
        if name not in EXPERIMENTS:
            p.error(f"unknown experiment {name!r}; choose from {', '.join(EXPERIMENTS)}")
    data = datasets.load("mnist")
    if args.quick:
        data = attrs.evolve(data, x_train=data.x_train[:1000], y_train=data.y_train[:1000],
                            x_test=data.x_test[:500], y_test=data.y_test[:500])
    with tempfile.TemporaryDirectory() as tmp:
        runs_dir = args.runs or Path(tmp)
        for name in args.names or EXPERIMENTS:
            print(f"## {name}", flush=True)
            EXPERIMENTS[name](data, runs_dir, args.out / name, args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
