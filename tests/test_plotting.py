"""Every picture function writes a real PNG: right size, not blank; matplotlib loads lazily."""

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from fnn import metrics
from fnn.evaluation import plotting

FASHION = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def fake_predictions(n=300, k=10, seed=0):
    """Images with a bright square whose position depends on the label; noisy probabilities."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    images = rng.integers(0, 40, (n, 28, 28)).astype(np.uint8)
    for i, c in enumerate(y):
        r, col = 2 + 2 * (c % 5), 4 + 10 * (c // 5)
        images[i, r : r + 8, col : col + 8] = 255
    logits = rng.normal(size=(n, k)).astype(np.float32)
    logits[np.arange(n), y] += 2.5
    e = np.exp(logits - logits.max(1, keepdims=True))
    return images, y, e / e.sum(1, keepdims=True)


def history(epochs=6, val=True):
    rows = []
    for e in range(1, epochs + 1):
        row = {"epoch": e, "loss": 1 / e, "accuracy": 1 - 0.5 / e, "lr": 0.1 * 0.5 ** (e - 1), "seconds": 2.0 * e}
        if val:
            row |= {"val_loss": 1.1 / e + 0.02 * e, "val_accuracy": 1 - 0.6 / e}
        rows.append(row)
    return rows


def assert_png(path, min_size=(300, 200), max_size=(3000, 3000), min_ink=0.01):
    """Opens as a PNG within size bounds, has many colours and a real share of non-white pixels."""
    with Image.open(path) as im:
        assert im.format == "PNG"
        w, h = im.size
        assert min_size[0] <= w <= max_size[0] and min_size[1] <= h <= max_size[1], im.size
        rgb = np.asarray(im.convert("RGB"))
    ink = (rgb < 230).any(axis=2).mean()
    assert ink > min_ink, f"only {ink:.2%} of the picture is not white"
    packed = (rgb[..., 0].astype(np.int32) << 16) | (rgb[..., 1].astype(np.int32) << 8) | rgb[..., 2]
    assert len(np.unique(packed)) > 20, "almost no distinct colours: blank or flat"
    return w, h


IMAGES, Y, PROBS = fake_predictions()
CM = metrics.confusion_matrix(Y, PROBS.argmax(1), 10)


def test_training_curves(tmp_path):
    w, h = assert_png(plotting.training_curves(history(), tmp_path / "curves.png"))
    assert w > 2 * h  # three panels side by side
    w2, _ = assert_png(plotting.training_curves([{k: v for k, v in r.items() if k != "lr"} for r in history()], tmp_path / "c2.png"))
    assert w2 < w  # no learning-rate panel without lr


def test_training_curves_without_validation(tmp_path):
    assert_png(plotting.training_curves(history(val=False), tmp_path / "curves.png"))


@pytest.mark.parametrize("classes", [FASHION, None])
def test_confusion_matrix(tmp_path, classes):
    w, h = assert_png(plotting.confusion_matrix(CM, classes, tmp_path / "cm.png"), min_size=(600, 600))
    assert 0.9 < w / h < 1.4


def test_per_class_accuracy(tmp_path):
    r = metrics.precision_recall_f1(cm=CM)
    assert_png(plotting.per_class_accuracy(r["recall"], FASHION, tmp_path / "acc.png", r["support"], overall=0.8))


def test_confused_pairs(tmp_path):
    assert_png(plotting.confused_pairs(CM, FASHION, tmp_path / "pairs.png"))


def test_confused_pairs_without_mistakes(tmp_path):
    assert_png(plotting.confused_pairs(np.diag([5, 6, 7]), None, tmp_path / "pairs.png"), min_ink=0.002)  # a title and one line


def test_reliability_diagram(tmp_path):
    assert_png(plotting.reliability_diagram(metrics.calibration_bins(Y, PROBS), tmp_path / "rel.png"))


@pytest.mark.parametrize("fn", [plotting.sample_predictions, plotting.misclassified_examples, plotting.highest_loss_examples])
def test_example_grids(tmp_path, fn):
    w, h = assert_png(fn(IMAGES, Y, PROBS, FASHION, tmp_path / "grid.png", n=16))
    assert w > h  # 8 columns, 2 rows
    flat = fn(IMAGES.reshape(len(IMAGES), -1), Y, PROBS, FASHION, tmp_path / "flat.png", n=16)
    assert Image.open(flat).size == (w, h)  # (n, 784) images are shown the same way


def test_misclassified_grid_with_no_mistakes(tmp_path):
    right = np.eye(10, dtype=np.float32)[Y]
    assert_png(plotting.misclassified_examples(IMAGES, Y, right, FASHION, tmp_path / "none.png"), min_size=(100, 100), min_ink=0.002)


def test_first_layer_weights(tmp_path):
    w = np.random.default_rng(0).normal(size=(784, 40)).astype(np.float32)
    assert_png(plotting.first_layer_weights(w, tmp_path / "w.png"))


def test_compare_figures(tmp_path):
    runs = {"784-64-10": history(), "784-128-64-10": history(8), "no-val": history(4, val=False)}
    assert_png(plotting.compare_curves(runs, tmp_path / "curves.png"))
    rows = [
        {"name": "784-64-10", "test_accuracy": 0.970, "params": 50890, "train_seconds": 20.0},
        {"name": "784-128-64-10", "test_accuracy": 0.978, "params": 109386, "train_seconds": 35.0},
        {"name": "784-256-128-64-10", "test_accuracy": 0.981, "params": 242762, "train_seconds": None},
    ]
    assert_png(plotting.compare_scatter(rows, tmp_path / "scatter.png"))


def test_blank_check_catches_a_blank_picture(tmp_path):
    Image.new("RGB", (640, 480), "white").save(tmp_path / "blank.png")
    with pytest.raises(AssertionError):
        assert_png(tmp_path / "blank.png")


def test_plotting_loads_matplotlib_only_when_drawing(tmp_path):
    code = (
        "import sys, fnn.evaluation.plotting, fnn.metrics; assert 'matplotlib' not in sys.modules; "
        f"fnn.evaluation.plotting.confused_pairs([[3, 1], [0, 2]], None, {str(tmp_path / 'p.png')!r}); "
        "assert 'matplotlib' in sys.modules and 'matplotlib.pyplot' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# ---------------------------------------------------------------- teaching pictures


def linear_model(w, b):
    """A Dense layer with the given weights (w: (2, outputs)) and its params."""
    import fnn

    model = fnn.serial(fnn.Dense(len(b)))
    return model, {"0": {"w": np.asarray(w, np.float32), "b": np.asarray(b, np.float32)}}


def colour_share(path, color):
    """Share of the picture's pixels within a few levels of ``color`` (an RGB triple in [0, 1])."""
    rgb = np.asarray(Image.open(path).convert("RGB")).astype(int)
    return float((np.abs(rgb - np.round(np.asarray(color) * 255)).max(axis=2) <= 3).mean())


def test_decision_boundary_of_a_binary_one_logit_model(tmp_path):
    from fnn.datasets import toy

    x, y = toy.moons(n=100, key=0)
    model, params = linear_model([[1.0], [0.0]], [-0.5])  # class 1 where x[0] > 0.5: both regions show
    assert_png(plotting.decision_boundary(model, params, x, y, tmp_path / "b.png", classes=["upper", "lower"]))
    colors = plotting._palette(2)
    for c in colors:  # a binary model's regions: thresholding the logit at 0, not an argmax over one column
        assert colour_share(tmp_path / "b.png", plotting._light(c)) > 0.15
    model, params = linear_model([[0.0], [0.0]], [-1.0])  # logit < 0 everywhere: all class 0
    plotting.decision_boundary(model, params, x, y, tmp_path / "zero.png")
    assert colour_share(tmp_path / "zero.png", plotting._light(colors[1])) < 0.001


def test_decision_boundary_of_a_multiclass_model(tmp_path):
    import fnn
    from fnn.datasets import toy

    x, y = toy.spiral(n_per_class=30, classes=3, key=0)
    model, params = linear_model([[1.0, -1.0, 0.0], [0.0, 0.0, 1.0]], [0.0, 0.0, 0.0])
    path = plotting.decision_boundary(model, params, x, y, tmp_path / "m.png", resolution=60)
    assert_png(path)
    pred = fnn.predict(model, params, x)
    assert len(np.unique(pred)) == 3
    for c in plotting._palette(3):
        assert colour_share(path, plotting._light(c)) > 0.05


def test_decision_boundary_needs_two_input_features(tmp_path):
    import fnn

    model = fnn.mlp([3, 2])
    _, params = model.init(fnn.random.key(0), (-1, 3))
    with pytest.raises(ValueError, match=r"x must be \(n, 2\), got shape \(5, 3\)"):
        plotting.decision_boundary(model, params, np.zeros((5, 3), np.float32), np.zeros(5, int), tmp_path / "x.png")
    with pytest.raises(ValueError, match="resolution"):
        plotting.decision_boundary(model, params, np.zeros((5, 2), np.float32), np.zeros(5, int), tmp_path / "x.png", resolution=1)


@pytest.mark.parametrize("surface", ["rosenbrock", "quadratic"])
def test_optimizer_paths(tmp_path, surface):
    from fnn.datasets import toy

    paths = toy.trajectories(surface, steps=60)
    paths["diverged"] = np.array([[-1.0, 0.8], [5.0, 9.0], [np.inf, np.nan]])  # drawn up to where it left
    w, h = assert_png(plotting.optimizer_paths(paths, tmp_path / "paths.png", surface))
    assert w > h


def test_optimizer_paths_of_an_unknown_surface(tmp_path):
    with pytest.raises(ValueError, match="unknown surface 'bowl'"):
        plotting.optimizer_paths({}, tmp_path / "p.png", "bowl")


def test_learning_rate_schedules(tmp_path):
    from fnn import optim

    schedules = {name: optim.schedule_by_name(name, 3e-3, 200, 20, 0.01) for name in ("constant", "step", "exponential", "cosine")}
    w, h = assert_png(plotting.learning_rate_schedules(schedules, 200, tmp_path / "lr.png"))
    assert w > 2 * h  # linear and log panels side by side
    with pytest.raises(ValueError, match="steps must be an integer >= 1, got 0"):
        plotting.learning_rate_schedules(schedules, 0, tmp_path / "none.png")
