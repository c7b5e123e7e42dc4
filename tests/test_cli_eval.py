"""fnn-cli evaluate / compare / plot on real runs written by fnn-cli fit."""

import csv
import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from fnn_cli.main import cli

MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]  # the official t10k class counts
COURSE = ["784,64,10", "784,128,64,10", "784,256,128,64,10"]  # simple, medium, deep


def run_cli(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def fit(out, *args):
    r = run_cli("fit", "--out", out, "--quiet", *args)
    assert r.exit_code == 0, r.output
    return out


@pytest.fixture(scope="module")
def mnist_run(tmp_path_factory):
    """A real MNIST run: 784-32-10, one epoch in batches of 500 (about 92% test accuracy)."""
    return fit(tmp_path_factory.mktemp("runs") / "mnist", "--arch", "784,32,10", "--epochs", 1, "--batch-size", 500, "--lr", 0.003)


@pytest.fixture(scope="module")
def small_data(tmp_path_factory, mnist):
    """3000 MNIST training and 600 test images as a user .npz dataset: quick course-architecture runs."""
    ds = mnist
    path = tmp_path_factory.mktemp("data") / "small.npz"
    np.savez(path, x=ds.x_train[:3000], y=ds.y_train[:3000], x_test=ds.x_test[:600], y_test=ds.y_test[:600])
    return path


def assert_picture(path):
    with Image.open(path) as im:
        assert im.format == "PNG" and im.size[0] >= 400 and im.size[1] >= 250
        gray = np.asarray(im.convert("L"))
    assert (gray < 230).mean() > 0.01


def assert_one_line_error(r, *names):
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output
    assert len(r.output.strip().splitlines()) == 1, r.output
    for name in names:
        assert str(name) in r.output, r.output


def test_evaluate_reproduces_fit_test_accuracy_and_counts_every_test_image(mnist_run):
    r = run_cli("evaluate", mnist_run)
    assert r.exit_code == 0, r.output
    summary = json.loads((mnist_run / "summary.json").read_text())
    result = json.loads((mnist_run / "eval" / "metrics.json").read_text())
    assert result["accuracy"] == summary["test_accuracy"]  # exactly
    assert result["loss"] == pytest.approx(summary["test_loss"], rel=1e-12)
    assert np.array(result["confusion_matrix"]).sum(axis=1).tolist() == MNIST_TEST_COUNTS
    assert f"accuracy {summary['test_accuracy']:.4f}" in r.output and "reproduced" in r.output
    assert len([line for line in r.output.splitlines() if line[:1].isdigit()]) == 10  # one row per class
    report = (mnist_run / "eval" / "report.md").read_text()
    assert "reproduces it exactly" in report
    for name in result["files"]:
        assert f"]({name}.png)" in report
        assert_picture(mnist_run / "eval" / f"{name}.png")
    assert "training_curves" in result["files"] and "first_layer_weights" in result["files"]


def test_evaluate_val_split_reproduces_the_last_validation_record(mnist_run, tmp_path):
    r = run_cli("evaluate", mnist_run, "--split", "val", "--no-pictures", "--out", tmp_path)
    assert r.exit_code == 0, r.output
    last = [json.loads(line) for line in (mnist_run / "metrics.jsonl").read_text().splitlines()][-1]
    result = json.loads((tmp_path / "metrics.json").read_text())
    assert result["n"] == 6000
    assert result["accuracy"] == last["val_accuracy"]
    assert result["loss"] == pytest.approx(last["val_loss"], rel=1e-12)


def test_evaluate_a_model_file_on_another_dataset_name(mnist_run, tmp_path):
    r = run_cli("evaluate", mnist_run / "model.npz", "--dataset", "mnist", "--out", tmp_path, "--no-pictures")
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "metrics.json").read_text())["about"]["run"] is None


def test_plot_redraws_training_curves(mnist_run, tmp_path):
    r = run_cli("plot", mnist_run, "--out", tmp_path / "curves.png")
    assert r.exit_code == 0, r.output
    assert "1 epochs" in r.output
    assert_picture(tmp_path / "curves.png")


def test_plot_a_run_still_training(tmp_path):
    run = tmp_path / "live"
    run.mkdir()
    rows = [{"epoch": e, "loss": 1 / e, "accuracy": 1 - 0.3 / e, "val_loss": 1.1 / e, "val_accuracy": 1 - 0.35 / e, "lr": 1e-3}
            for e in (1, 2, 3)]
    (run / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in rows) + '{"epoch": 4, "lo')  # torn last line
    r = run_cli("plot", run)
    assert r.exit_code == 0, r.output
    assert "3 epochs" in r.output
    assert_picture(run / "training_curves.png")


def test_compare_the_three_course_architectures(small_data, tmp_path):
    folders = [fit(tmp_path / arch.replace(",", "-"), "--arch", arch, "--dataset", small_data, "--epochs", 1) for arch in COURSE]
    r = run_cli("compare", *folders, "--out", tmp_path / "cmp")
    assert r.exit_code == 0, r.output
    summaries = {json.loads((f / "summary.json").read_text())["test_accuracy"]: f for f in folders}
    rows = list(csv.DictReader(open(tmp_path / "cmp" / "compare.csv")))
    accs = [float(row["test_accuracy"]) for row in rows]
    assert accs == sorted(summaries, reverse=True)
    assert sorted(row["name"] for row in rows) == sorted(a.replace(",", "-") for a in COURSE)
    assert [int(row["params"]) for row in rows if row["name"] == "784-64-10"] == [784 * 64 + 64 + 64 * 10 + 10]
    table = (tmp_path / "cmp" / "compare.md").read_text()
    assert table.count("| adam |") == 3 and "| 1 |" in table
    assert table in r.output
    for png in ("val_curves.png", "accuracy_vs_cost.png"):
        assert_picture(tmp_path / "cmp" / png)


@pytest.mark.parametrize(
    "args, names",
    [
        (["evaluate", "{tmp}/nowhere"], ["nowhere"]),
        (["evaluate", "{run}", "--split", "train"], ["train"]),
        (["evaluate", "{run}", "--dataset", "no-such-set"], ["no-such-set"]),
        (["evaluate", "{run}/model.npz", "--split", "val"], ["needs a run folder"]),
        (["evaluate", "{tmp}/broken.npz"], ["broken.npz"]),
        (["compare", "{run}", "{tmp}"], [" not a run folder"]),
        (["plot", "{tmp}/nowhere"], ["nowhere"]),
        (["plot", "{tmp}"], ["no epoch recorded"]),
    ],
)
def test_bad_input_is_a_one_line_error_with_exit_code_2(mnist_run, tmp_path, args, names):
    (tmp_path / "broken.npz").write_bytes(b"not a zip file")
    r = CliRunner().invoke(cli, [a.format(tmp=tmp_path, run=mnist_run) for a in args])
    assert_one_line_error(r, *names)


def test_readme_evaluation_example_runs(mnist_run, tmp_path):
    import re
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    code = re.search(r"```python\n(.*?)```", text[text.index("## Evaluation") :], re.S).group(1)
    shutil.copytree(mnist_run, tmp_path / "runs" / "mine")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "cm.png").is_file() and (tmp_path / "runs" / "mine" / "eval" / "report.md").is_file()
