"""``fnn-cli predict``: top-k labels for images and arrays."""

import json

import click

from fnn_cli.common import WholeNumber, fail


@click.command()
@click.argument("model", type=click.Path())
@click.argument("files", nargs=-1, required=True, type=click.Path())
@click.option("--top-k", "-k", type=WholeNumber(1), default=3, show_default=True, help="How many labels per input.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def predict(model, files, top_k, as_json):
    """Predict labels for PNG/JPEG images (preprocessed as the model's dataset was, as on the pad) or .npy arrays.

    A blank input (nothing drawn, too little ink, all zeros) is reported as blank, not labelled.

    MODEL is a run folder or a model .npz file.

    \b
    Example:
      fnn-cli predict runs/mnist-784-128-64-10-20261130-120000 digit.png batch.npy --top-k 2
    """
    from fnn import serialization
    from fnn.serving import inference
    from fnn.training import runs

    try:
        loaded = serialization.load_model(runs.model_path(model))
        rows = inference.predict_files(loaded, files, top_k)
    except (runs.RunError, serialization.ModelFileError, inference.InputError) as e:
        fail(str(e))
    if as_json:
        click.echo(json.dumps(rows, indent=1))
        return
    for r in rows:
        where = r["file"] + (f"[{r['index']}]" if r["index"] or r["file"].endswith(".npy") else "")
        if r["blank"]:
            click.echo(f"{where}: blank ({r['reason']})")
            continue
        tops = "  ".join(f"{t['class']} {t['probability']:.3f}" for t in r["top"])
        click.echo(f"{where}: {tops}")
