"""fnn.evaluation.report / fnn.evaluation.markdown / fnn.evaluation.compare: numbers, files, insights, speed and errors."""

import csv
import json
import math

import numpy as np
import pytest

import fnn
from fnn import datasets, random
from fnn.evaluation import compare, markdown, report
from fnn.evaluation.report import EvaluationError

MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]  # the official t10k class counts
PREP = {"scale": 1 / 255, "mean": None, "std": None}



@pytest.fixture(scope="module")
def mnist_model(tmp_path_factory, mnist):
    """A 784-32-10 net trained for one pass over 12000 MNIST images, saved with fit's metadata."""
    model = fnn.mlp([784, 32, 10])
    _, params = model.init(random.key(0), (-1, 784))
    opt = fnn.optim.adam(3e-3)
    state = opt.init(params)
    step = fnn.make_train_step(model, fnn.losses.softmax_cross_entropy, opt)
    transform = datasets.make_transform()
    for xb, yb in fnn.batching.iterate_batches(mnist.x_train[:12000], mnist.y_train[:12000], 100, random.key(1), transform=transform):
        params, state, _ = step(params, state, (xb, yb))
    path = tmp_path_factory.mktemp("model") / "m.npz"
    fnn.save_model(path, model, params, (-1, 784), {"dataset": "mnist", "classes": list(mnist.classes), "preprocessing": PREP})
    return path


def test_analyze_hand_case():
    logits = np.array([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 3.0, 0.0], [1.0, 2.0, 3.0]], np.float32)
    y = np.array([0, 1, 2, 0])
    r = report.analyze(y, logits, ["a", "b", "c"])
    assert r["accuracy"] == 0.5
    assert r["confusion_matrix"] == [[1, 0, 1], [0, 1, 0], [0, 1, 0]]
    # loss = mean of logsumexp(z) - z[y], worked out with math.log / math.exp
    want = [math.log(math.exp(2) + 2) - 2, math.log(math.exp(1) + 2) - 1, math.log(math.exp(3) + 2),
            math.log(math.e + math.exp(2) + math.exp(3)) - 1]
    assert r["loss"] == pytest.approx(sum(want) / 4, rel=1e-6)
    c = {row["class"]: row for row in r["per_class"]}
    assert (c["c"]["precision"], c["c"]["recall"], c["c"]["support"]) == (0.0, 0.0, 1)  # c: one example, predicted once, wrongly
    assert c["b"]["precision"] == 0.5 and c["b"]["recall"] == 1.0
    assert r["most_confused"][0] | {"share_of_true": 0} == {"true": "a", "pred": "c", "count": 1, "share_of_true": 0}
    assert r["top_k_accuracy"] == {"2": 0.75}  # only the last example (true class 0 scores lowest) misses
    assert r["confidence"]["errors"] == 2
    json.dumps(r)  # JSON-able


def test_confidence_bands_hand_case():
    probs = np.array([[0.4, 0.3, 0.3], [0.6, 0.4, 0.0], [0.95, 0.05, 0.0], [0.995, 0.005, 0.0], [0.97, 0.03, 0.0]])
    y = np.array([1, 0, 0, 0, 1])
    c = report.confidence_summary(y, probs)
    assert [b["count"] for b in c["bands"]] == [1, 1, 2, 1]
    assert [b["accuracy"] for b in c["bands"]] == [0.0, 1.0, 0.5, 1.0]
    assert c["confident_errors"] == 1 and c["errors"] == 2
    assert c["mean_wrong"] == pytest.approx((0.4 + 0.97) / 2)


def test_insights_name_hardest_class_and_top_pair():
    y = np.array([0] * 10 + [1] * 10 + [2] * 10)
    pred = np.array([0] * 10 + [1] * 9 + [2] + [2] * 4 + [0] * 6)
    logits = np.eye(3, dtype=np.float32)[pred] * 4
    r = report.analyze(y, logits, ["cat", "dog", "bird"])
    r.update(seconds=0.01, about={"split": "test", "summary_test_accuracy": r["accuracy"]})
    text = "\n".join(markdown.insights(r))
    assert "Hardest classes: **bird** (40.0% recall; taken for cat (6))" in text
    assert "bird → cat (6, 60.0% of bird)" in text
    assert "reproduces it exactly" in text
    md = markdown.render(r, {"confusion_matrix": "confusion_matrix.png"})
    assert "| bird | 6 | 0 | 4 |" in md and "![Confusion matrix](confusion_matrix.png)" in md


def test_evaluate_writes_metrics_pictures_and_report(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (120, 28, 28)).astype(np.uint8)
    y = rng.integers(0, 10, 120)
    model = fnn.mlp([784, 8, 10])
    _, params = model.init(random.key(0), (-1, 784))
    history = [{"epoch": e, "loss": 1 / e, "accuracy": 0.5, "val_loss": 1.2 / e, "val_accuracy": 0.4, "lr": 1e-3} for e in (1, 2)]
    r = report.evaluate(model, params, images, y, [f"class {i}" for i in range(10)], tmp_path,
                        transform=report.transform_for({"preprocessing": PREP}), history=history)
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["accuracy"] == r["accuracy"] and saved["n"] == 120
    expected = {"confusion_matrix", "per_class_accuracy", "confused_pairs", "calibration", "training_curves",
                "misclassified", "highest_loss", "sample_predictions", "first_layer_weights"}
    assert set(r["files"]) == expected
    md = (tmp_path / "report.md").read_text()
    for name in expected:
        assert f"]({name}.png)" in md and (tmp_path / f"{name}.png").stat().st_size > 5000
    assert "## Insights" in md and "| class | precision | recall | F1 | support |" in md


def test_evaluate_run_on_mnist_counts_every_test_image(mnist_model, tmp_path):
    r = report.evaluate_run(mnist_model, out_dir=tmp_path, pictures=False)
    cm = np.array(r["confusion_matrix"])
    assert cm.sum(axis=1).tolist() == MNIST_TEST_COUNTS
    assert r["accuracy"] == cm.trace() / 10000 > 0.85
    assert (tmp_path / "report.md").is_file() and (tmp_path / "metrics.json").is_file()


def test_evaluate_run_default_folder_beside_a_model_file(mnist_model):
    r = report.evaluate_run(mnist_model, pictures=False)
    assert r["out_dir"] == str(mnist_model.with_name("m-eval"))


def test_evaluating_all_10000_mnist_test_images_without_pictures(mnist_model, mnist):
    """The speed figure (under a second) comes from experiments/bench/eval_speed.py, not from a timed test."""
    loaded = fnn.load_model(mnist_model)
    transform = report.transform_for(loaded.metadata)
    r = report.evaluate(loaded.model, loaded.params, mnist.x_test, mnist.y_test, mnist.classes, transform=transform)
    assert r["n"] == 10000
    assert np.asarray(r["confusion_matrix"]).sum(axis=1).tolist() == np.bincount(mnist.y_test, minlength=10).tolist()


@pytest.mark.parametrize(
    "args, message",
    [
        ({"split": "train"}, "unknown split 'train'"),
        ({"dataset": "no-such-set"}, "no-such-set"),
        ({"split": "val"}, "needs a run folder"),
    ],
)
def test_evaluate_run_rejects_bad_input(mnist_model, args, message):
    with pytest.raises(EvaluationError, match=message):
        report.evaluate_run(mnist_model, pictures=False, **args)


def test_evaluate_run_rejects_missing_path_and_unnamed_dataset(tmp_path):
    with pytest.raises(EvaluationError, match="no such run folder or model file"):
        report.evaluate_run(tmp_path / "nothing")
    model = fnn.mlp([784, 10])
    _, params = model.init(random.key(0), (-1, 784))
    fnn.save_model(tmp_path / "bare.npz", model, params, (-1, 784))
    with pytest.raises(EvaluationError, match="does not name its dataset"):
        report.evaluate_run(tmp_path / "bare.npz")


def fake_run(folder, arch, acc, seconds, epochs=3):
    folder.mkdir(parents=True)
    summary = {"arch": arch, "test_accuracy": acc, "test_loss": 1 - acc, "params": 10 * sum(arch), "epochs": epochs,
               "train_seconds": seconds, "optimizer": "adam", "lr": 0.001, "batch_size": 128, "dataset": "mnist"}
    (folder / "summary.json").write_text(json.dumps(summary))
    lines = [json.dumps({"epoch": e, "loss": 1 / e, "accuracy": acc - 0.01 / e, "val_loss": 1.1 / e, "val_accuracy": acc - 0.02 / e})
             for e in range(1, epochs + 1)]
    (folder / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    return folder


def test_compare_sorts_by_test_accuracy_and_writes_table_csv_figures(tmp_path):
    a = fake_run(tmp_path / "a", [784, 64, 10], 0.970, 20.0)
    b = fake_run(tmp_path / "b", [784, 256, 128, 64, 10], 0.981, 70.5)
    c = fake_run(tmp_path / "c", [784, 128, 64, 10], 0.978, 35.0)
    r = compare.compare_runs([a, b, c], tmp_path / "out")
    assert [row["name"] for row in r["rows"]] == ["784-256-128-64-10", "784-128-64-10", "784-64-10"]
    md = (tmp_path / "out" / "compare.md").read_text().splitlines()
    assert md[2].startswith("| 1 | 784-256-128-64-10 | 98.10% | 0.0190 | 12,420 | 3 | 70.5 | adam |")
    rows = list(csv.DictReader(open(tmp_path / "out" / "compare.csv")))
    assert [float(x["test_accuracy"]) for x in rows] == [0.981, 0.978, 0.970]
    assert rows[2]["run"] == str(a)
    for key in ("curves", "scatter"):
        assert (tmp_path / "out" / r["files"][key].split("/")[-1]).stat().st_size > 5000


def test_compare_tells_same_architectures_apart_and_rejects_non_runs(tmp_path):
    a = fake_run(tmp_path / "seed0", [784, 64, 10], 0.97, 20.0)
    b = fake_run(tmp_path / "seed1", [784, 64, 10], 0.96, 20.0)
    rows = compare.compare_runs([a, b], tmp_path / "out", pictures=False)["rows"]
    assert [row["name"] for row in rows] == ["784-64-10 (seed0)", "784-64-10 (seed1)"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(EvaluationError, match="empty: not a run folder"):
        compare.compare_runs([a, tmp_path / "empty"], tmp_path / "out")


def test_eval_speed_benchmark_prints_its_figure():
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "experiments" / "bench" / "eval_speed.py"
    out = subprocess.run([sys.executable, str(script), "--repeat", "1"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert " ms" in out.stdout and "10000" in out.stdout, out.stdout
