"""Issue 8, point 4: a non-finite loss stops training, naming epoch, step and layer; default training raises no FP error.

The blow-ups are real ones, not mocks: a float dataset holding a value near
float32's maximum (finite, so the loader takes it) overflows the first Dense
layer; a checkpoint whose layer-2 weights were damaged to a huge (finite)
value overflows layer 2 on resume. Each stops with the epoch, the step and
that layer named, and leaves the last good files as they were.
"""

import json
import re
import subprocess
import sys

import numpy as np
import pytest

import fnn
from fnn import serialization
from fnn.training import runs
from fnn.training.config import FitConfig
from fnn.training.experiment import fit_config, load_checkpoint
from fnn.training.fit import TrainingDiverged, blame_layer

FNN_CLI = [sys.executable, "-c", "from fnn_cli.main import cli; cli()"]
MESSAGE = re.compile(r"loss became NaN/Inf at epoch (\d+), step (\d+); first non-finite output: layer (\d+) \((\w+)\)")


@pytest.fixture(scope="module")
def float_data(tmp_path_factory, mnist_raw):
    """The small MNIST subset as float32 features in [0, 1], clean and with one example near float32's maximum."""
    x, y, xt, yt = mnist_raw
    folder = tmp_path_factory.mktemp("float-data")
    clean = x[:2000].reshape(2000, -1).astype(np.float32) / 255
    bad = clean.copy()
    bad[1234] = 3e38  # a damaged record: finite, but nothing a network can multiply
    test = xt[:300].reshape(300, -1).astype(np.float32) / 255
    np.savez(folder / "clean.npz", x=clean, y=y[:2000], x_test=test, y_test=yt[:300])
    np.savez(folder / "bad.npz", x=bad, y=y[:2000], x_test=test, y_test=yt[:300])
    return folder


class Steps:
    """Records every finished step, to check the step the message names."""

    def __init__(self):
        self.done = []

    def on_batch_end(self, batch, logs):
        self.done.append((self.loop.epoch, batch))


def test_overflow_in_the_data_stops_at_the_right_epoch_step_and_layer(float_data, tmp_path):
    steps = Steps()
    config = FitConfig(dataset=str(float_data / "bad.npz"), arch=(784, 32, 10), epochs=2, batch_size=16, val_split=0.0)
    with pytest.raises(TrainingDiverged) as e:
        fit_config(config, tmp_path / "run", callbacks=[steps])
    epoch, step, layer, kind = MESSAGE.search(str(e.value)).groups()
    assert (int(epoch), int(step)) == (1, steps.done[-1][1] + 2)  # the step after the last one that finished
    assert 1 < int(step) <= 125 and (layer, kind) == ("0", "Dense")
    assert not (tmp_path / "run" / runs.MODEL).exists()
    ckpt = load_checkpoint(tmp_path / "run" / runs.CHECKPOINT)
    assert ckpt["epoch"] == 0 and all(np.isfinite(a).all() for a in fnn.tree.tree_leaves(ckpt["params"]))


def test_a_later_epoch_blowing_up_overwrites_nothing_good(float_data, tmp_path):
    """2 good epochs, then the data file is damaged and the run resumed: epoch 3 stops, the epoch-2 files stay."""
    data = tmp_path / "data.npz"
    data.write_bytes((float_data / "clean.npz").read_bytes())
    run = tmp_path / "run"
    args = ["fit", "--dataset", str(data), "--arch", "784,32,10", "--batch-size", "16", "--out", str(run), "-q"]
    r = subprocess.run(FNN_CLI + args + ["--epochs", "2"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    kept = {p.name: p.read_bytes() for p in run.iterdir() if p.name not in (runs.LOG, runs.CONFIG)}  # config: epochs 4 now
    data.write_bytes((float_data / "bad.npz").read_bytes())
    r = subprocess.run(FNN_CLI + ["fit", "--resume", str(run), "--epochs", "4"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 1, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: training diverged") and "Traceback" not in r.stderr, r.stderr
    epoch, _, layer, _ = MESSAGE.search(lines[0]).groups()
    assert (epoch, layer) == ("3", "0") and str(run / runs.CHECKPOINT) in lines[0]
    for name, content in kept.items():  # model, summary, checkpoint (epoch 2), metrics: all as they were
        assert (run / name).read_bytes() == content, name
    assert load_checkpoint(run / runs.CHECKPOINT)["epoch"] == 2


def test_damaged_weights_in_layer_2_are_blamed_on_layer_2(small_npz, tmp_path):
    """A checkpoint whose layer-2 weights hold a huge finite value loads, and the first step names layer 2."""
    import zipfile

    run = tmp_path / "run"
    args = ["fit", "--dataset", str(small_npz), "--arch", "784,64,32,10", "--epochs", "1", "--out", str(run), "-q"]
    assert subprocess.run(FNN_CLI + args, capture_output=True, timeout=300).returncode == 0
    path = run / runs.CHECKPOINT
    with zipfile.ZipFile(path) as zf:
        members = [(n, zf.read(n)) for n in zf.namelist()]
    w2 = np.load(__import__("io").BytesIO(dict(members)["params.2.w.npy"]))
    w2[:] = 3e38
    buf = __import__("io").BytesIO()
    np.save(buf, w2)
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members:
            zf.writestr(name, buf.getvalue() if name == "params.2.w.npy" else data)
    r = subprocess.run(FNN_CLI + ["fit", "--resume", str(run), "--epochs", "2"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    epoch, step, layer, kind = MESSAGE.search(r.stderr).groups()
    assert (epoch, step, layer, kind) == ("2", "1", "2", "Dense")


def test_blame_layer_finds_the_first_non_finite_output():
    model = fnn.mlp([6, 5, 4, 3])
    _, params = model.init(fnn.random.key(0), (-1, 6))
    x = np.ones((2, 6), np.float32)
    assert blame_layer(model, params, x).startswith("no layer output is non-finite")
    for layer, where in ((0, "0"), (2, "2"), (4, "4")):
        bad = fnn.tree.tree_map(np.copy, params)
        bad[where]["b"][0] = np.nan
        assert blame_layer(model, bad, x).startswith(f"first non-finite output: layer {layer} (Dense)")
    x[0, 0] = np.inf
    assert "layer 0 (Dense)" in blame_layer(model, params, x)


def test_an_epoch_of_default_training_raises_no_floating_point_error(tmp_path):
    """The README's main job (784-128-64-10, Adam, cosine, MNIST) for one epoch, with overflow and invalid as errors."""
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        summary = fit_config(FitConfig(epochs=1), tmp_path / "default")
        loaded = serialization.load_model(tmp_path / "default" / runs.MODEL)
        probs = fnn.predict_proba(loaded.model, loaded.params, np.zeros((3, 784), np.float32))
    assert summary["test_accuracy"] > 0.9 and np.isfinite(probs).all()
    assert json.loads((tmp_path / "default" / runs.SUMMARY).read_text())["epochs"] == 1


@pytest.mark.parametrize(
    "options",
    [
        {"activation": "sigmoid", "optimizer": "rmsprop", "standardize": True},
        {"activation": "tanh", "optimizer": "adagrad", "l1": 1e-4, "l2": 1e-4},
        {"activation": "leaky_relu", "optimizer": "nesterov", "lr": 0.05, "clip_norm": 1.0, "dropout": 0.3},
        {"optimizer": "adamw", "schedule": "step", "warmup": 1, "epochs": 2},
        {"optimizer": "sgd", "lr": 0.1, "schedule": "exponential", "early_stopping": 1},
    ],
)
def test_other_configurations_raise_no_floating_point_error_either(small_npz, tmp_path, options):
    config = FitConfig.from_dict({"dataset": str(small_npz), "arch": [784, 32, 10], "epochs": 1, **options})
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        summary = fit_config(config, tmp_path / "run")
    assert np.isfinite(summary["test_loss"])
