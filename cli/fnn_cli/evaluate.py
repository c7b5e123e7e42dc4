"""``fnn-cli evaluate``: metrics, pictures and a Markdown report for a trained model."""

import click

from fnn_cli.common import fail
from fnn_cli.fit import DatasetType


@click.command()
@click.argument("run_or_model", type=click.Path())
@click.option("--dataset", type=DatasetType(), help="Dataset to evaluate on. [default: the model's own]")
@click.option("--split", type=click.Choice(["test", "val"]), default="test", show_default=True,
              help="val rebuilds the run's own validation split from its config.yaml.")
@click.option("--out", type=click.Path(file_okay=False), help="Output folder. [default: RUN/eval/]")
@click.option("--data-dir", type=click.Path(file_okay=False), help="Folder holding the dataset files.")
@click.option("--no-pictures", is_flag=True, help="Write metrics.json and report.md only (fast).")
def evaluate(run_or_model, dataset, split, out, data_dir, no_pictures):
    """Evaluate a run or model: metrics, pictures and a Markdown report.

    RUN_OR_MODEL is a run folder (files go to RUN/eval/) or a model .npz. Writes
    metrics.json, the PNGs and report.md, and prints a compact table.

    \b
    Examples:
      fnn-cli evaluate runs/mnist-784-128-64-10-20261130-120000
      fnn-cli evaluate model.npz --dataset fashion-mnist --out eval-fashion
    """
    from fnn.evaluation.report import EvaluationError, evaluate_run

    try:
        r = evaluate_run(run_or_model, dataset, split, out, data_dir=data_dir, pictures=not no_pictures)
    except EvaluationError as e:
        fail(str(e))
    click.echo("\n".join(summary_lines(r)))


def summary_lines(r) -> list:
    """The compact table ``evaluate`` prints: headline figures, then one line per class."""
    a = r["about"]
    lines = [
        f"{a['dataset']} {a['split']}: {r['n']} examples in {r['seconds']:.2f}s",
        f"accuracy {r['accuracy']:.4f}  loss {r['loss']:.4f}  macro F1 {r['macro']['f1']:.4f}  ECE {r['ece']:.4f}",
    ]
    if a.get("summary_test_accuracy") is not None and a["split"] == "test":
        same = r["accuracy"] == a["summary_test_accuracy"]
        lines.append(f"summary.json test accuracy {a['summary_test_accuracy']:.4f}: " + ("reproduced" if same else "DIFFERS"))
    width = max(8, *(len(c["class"]) for c in r["per_class"]))
    lines.append(f"{'class':<{width}} {'precision':>9} {'recall':>7} {'f1':>7} {'support':>8}")
    for c in r["per_class"]:
        lines.append(f"{c['class']:<{width}} {c['precision']:>9.4f} {c['recall']:>7.4f} {c['f1']:>7.4f} {c['support']:>8}")
    pairs = ", ".join(f"{p['true']}→{p['pred']} ({p['count']})" for p in r["most_confused"][:3])
    if pairs:
        lines.append(f"most confused: {pairs}")
    if "out_dir" in r:
        lines.append(f"wrote {r['out_dir']}/: report.md, metrics.json and {len(r['files'])} pictures")
        lines.append(f"report: {r['report']}")
    return lines
