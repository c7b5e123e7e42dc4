"""fnn.training.diagnostics: per-layer statistics, warnings on constructed cases, saliency, and the fit/CLI/report path."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import fnn
from fnn import batching, gradcheck, losses, random
from fnn.training import diagnostics, runs
from fnn.training.config import FitConfig
from fnn.training.experiment import fit_config
from fnn_cli.main import cli

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def probe(mnist):
    """2048 MNIST training images as float32 features, and their labels."""
    ds = mnist
    return batching.to_float(ds.x_train[:2048]), ds.y_train[:2048]


def recorder(arch, activation, probe, init=None, seed=0):
    model = fnn.mlp(arch, activation, w_init=init)
    _, params = model.init(random.key(seed), (-1, arch[0]))
    return diagnostics.Diagnostics(model, *probe), model, params


def kinds(d):
    return [k for r in d.rows for k in r["warning_kinds"]]


# ---------------------------------------------------------------- 1. constructed cases


def test_ten_layer_sigmoid_net_flags_vanishing_gradients(probe):
    d, _, params = recorder([784] + [64] * 9 + [10], "sigmoid", probe)  # Glorot, the sigmoid default
    texts = d.epoch_end(0, params)
    norms = [lay["grad_norm"] for lay in d.rows[0]["layers"]]
    assert norms[0] < diagnostics.VANISHING_RATIO * max(norms)
    assert kinds(d) == ["vanishing"]
    assert "vanishing gradients; try ReLU or He init" in texts[0] and texts[0].startswith("layer 1 gradient norm fell below")
    assert d.epoch_end(1, params) == []  # said once


def test_ten_layer_relu_he_net_and_small_healthy_net_trigger_nothing(probe):
    for arch in ([784] + [64] * 9 + [10], [784, 256, 128, 64, 10]):
        d, _, params = recorder(arch, "relu", probe, "he_uniform")
        assert d.epoch_end(0, params) == []
        norms = [lay["grad_norm"] for lay in d.rows[0]["layers"]]
        assert norms[0] > 0.1 * max(norms)  # far from the 1e-3 threshold
        assert max(lay["dead"] for lay in d.rows[0]["layers"][:-1]) < 0.1


def test_layer_initialized_dead_reports_all_its_relus_dead(probe):
    d, model, params = recorder([784, 64, 32, 10], "relu", probe)
    params["2"]["b"] = np.full_like(params["2"]["b"], -1e3)  # layer 2's Dense: every pre-activation negative
    texts = d.epoch_end(0, params)
    dead = [lay["dead"] for lay in d.rows[0]["layers"]]
    assert dead[1] == 1.0 and dead[0] < 0.1 and dead[2] is None
    assert texts == ["100% of layer 2's ReLUs are dead (never positive on the probe): they no longer learn; "
                     "try a smaller learning rate, He init or LeakyReLU"]


def test_saturated_tanh_layer_is_reported(probe):
    d, model, params = recorder([784, 64, 32, 10], "tanh", probe)
    assert d.epoch_end(0, params) == [] and d.rows[0]["layers"][0]["saturated"] < 0.05
    params["0"]["w"] = params["0"]["w"] * 200  # huge pre-activations: tanh pinned at +-1
    texts = diagnostics.Diagnostics(model, *probe).epoch_end(0, params)
    assert any("of layer 1's tanh units are saturated" in t for t in texts), texts


def test_overfitting_schedule_triggers_the_warning_once_at_the_third_rise(probe):
    d, _, params = recorder([784, 16, 10], "relu", probe)
    val = [1.0, 0.8, 0.7, 0.72, 0.75, 0.8, 0.9]  # lowest at epoch 3, then rises
    said = {}
    for e, v in enumerate(val, start=1):
        said[e] = d.epoch_end(e, params, {"epoch": e, "loss": 1.0 / e, "val_loss": v})
    assert [e for e, t in said.items() if t] == [6]  # the third rise in a row
    assert said[6] == ["validation loss has risen for 3 epochs while training loss falls (lowest at epoch 3): overfitting; "
                       "try dropout, weight decay or early stopping"]


def test_overfitting_needs_three_rises_and_falling_training_loss():
    rise2 = [{"epoch": e, "loss": 1 / e, "val_loss": v} for e, v in enumerate([1, 0.8, 0.9, 1.0, 0.95], 1)]
    both_rise = [{"epoch": e, "loss": e, "val_loss": e} for e in range(1, 6)]
    assert diagnostics.overfitting_epoch(rise2) is None and diagnostics.overfitting_epoch(both_rise) is None
    rising = [{"epoch": e, "loss": 1 / e, "val_loss": v} for e, v in enumerate([1, 0.5, 0.6, 0.7, 0.8], 1)]
    assert diagnostics.overfitting_epoch(rising) == 2
    noisy = [{"epoch": e, "loss": 1 / e, "val_loss": v} for e, v in enumerate([1, 0.5, 0.7, 0.6, 0.65, 0.7, 0.8], 1)]
    assert diagnostics.overfitting_epoch(noisy) == 2  # the lowest point, not the start of the final climb


# ---------------------------------------------------------------- the numbers themselves


def test_statistics_match_a_direct_computation(probe):
    x, y = probe
    d, model, params = recorder([784, 32, 10], "relu", probe)
    d.epoch_begin(params)
    moved = fnn.tree.tree_map(lambda a: a * np.float32(1.25), params)
    d.epoch_end(1, moved)
    lay = d.rows[0]["layers"][0]
    h = np.maximum(x @ moved["0"]["w"] + moved["0"]["b"], 0)
    assert lay["act_mean"] == pytest.approx(float(h.mean()), rel=1e-5)
    assert lay["act_std"] == pytest.approx(float(h.std()), rel=1e-4)
    assert lay["dead"] == float(np.mean(h.max(axis=0) <= 0))
    assert lay["update_ratio"] == pytest.approx(0.25, rel=1e-6)
    assert sum(lay["hist"]["counts"]) == 1024 * 32
    norms = []
    for b in range(diagnostics.GRAD_BATCHES):  # the mean over the probe's first batches of ||dL/d(w, b)||
        xb, yb = x[b * 128:(b + 1) * 128], y[b * 128:(b + 1) * 128]
        out, back = model.vjp(moved, xb, None, need_dx=False)
        grads, _ = back(losses.softmax_cross_entropy.grad(out, yb))
        norms.append(np.sqrt(np.sum(grads["0"]["w"].astype(np.float64) ** 2) + np.sum(grads["0"]["b"].astype(np.float64) ** 2)))
    assert lay["grad_norm"] == pytest.approx(np.mean(norms), rel=1e-5)


# ---------------------------------------------------------------- 2. saliency


def test_saliency_equals_finite_differences_in_float64():
    model = fnn.mlp([6, 5, 4, 3], "tanh")
    _, p32 = model.init(random.key(3), (-1, 6))
    params = fnn.tree.tree_map(lambda a: np.asarray(a, np.float64), p32)
    xs = random.normal(random.key(4), (3, 6), np.float64)
    labels = np.array([2, 0, 1])
    batch = diagnostics.saliency(model, params, xs, labels)
    for x, label, row in zip(xs, labels, batch):
        x = x.copy()
        sal = diagnostics.saliency(model, params, x, label)
        numeric = gradcheck.numeric_grad(
            lambda x=x, label=label: losses.softmax_cross_entropy.apply(model.apply(params, x[None]), np.array([label])), x)
        assert sal.shape == x.shape and sal.dtype == np.float64
        assert gradcheck.relative_error(sal, numeric) <= 1e-5
        assert np.allclose(row, sal, rtol=1e-12)  # a batch row is that example's own dL/dx


# ---------------------------------------------------------------- through fit, the CLI and the report


class Listener:
    def __init__(self):
        self.warnings = []

    def on_warning(self, text):
        self.warnings.append(text)


def test_fit_records_every_epoch_and_a_healthy_net_warns_nothing(tmp_path, small_npz):
    cfg = FitConfig(arch=(784, 64, 32, 10), dataset=str(small_npz), epochs=2, batch_size=64, diagnostics=True)
    listener = Listener()
    fit_config(cfg, tmp_path / "run", callbacks=[listener])
    rows = diagnostics.read(tmp_path / "run")
    assert [r["epoch"] for r in rows] == [0, 1, 2] and listener.warnings == []
    assert all(r["warnings"] == [] for r in rows) and rows[0]["probe"] == 2250  # the whole 90% train split
    assert all(lay["update_ratio"] > 0 for r in rows[1:] for lay in r["layers"])
    # resuming for a third epoch keeps the rows before it and adds one
    fit_config(cfg.replace(epochs=3), tmp_path / "run", resume=True)
    assert [r["epoch"] for r in diagnostics.read(tmp_path / "run")] == [0, 1, 2, 3]


def test_fit_says_each_warning_once_and_logs_it(tmp_path, small_npz):
    cfg = FitConfig(arch=(784,) + (32,) * 9 + (10,), activation="sigmoid", optimizer="sgd", lr=0.1,
                    dataset=str(small_npz), epochs=2, diagnostics=True)
    listener = Listener()
    fit_config(cfg, tmp_path / "run", callbacks=[listener])
    assert len(listener.warnings) == 1 and "vanishing gradients" in listener.warnings[0]
    log = (tmp_path / "run" / runs.LOG).read_text()
    assert log.count("warning: layer 1 gradient norm fell below") == 1


def test_diagnostics_off_writes_no_file(tmp_path, small_npz):
    fit_config(FitConfig(arch=(784, 16, 10), dataset=str(small_npz), epochs=1), tmp_path / "run")
    assert not (tmp_path / "run" / runs.DIAGNOSTICS).exists()


def test_system_metrics_per_epoch(tmp_path, small_npz):
    fit_config(FitConfig(arch=(784, 16, 10), dataset=str(small_npz), epochs=2), tmp_path / "run")
    rows = runs.read_metrics(tmp_path / "run")
    for r in rows:
        assert 0 < r["seconds"] < 60 and 0 < r["cpu_seconds"] < 60 * 8
        assert 30 < r["peak_rss_mb"] < 24 * 1024  # a Python process with NumPy, in MiB
    assert rows[1]["peak_rss_mb"] >= rows[0]["peak_rss_mb"]  # a peak never falls


def test_cli_fit_diagnostics_then_evaluate_puts_the_pictures_in_the_report(tmp_path, small_npz):
    run = tmp_path / "run"
    r = CliRunner().invoke(cli, ["fit", "--arch", "784,32,32,32,32,32,32,32,32,32,10", "--activation", "sigmoid",
                                 "--optimizer", "sgd", "--lr", "0.1", "--epochs", "1", "--dataset", str(small_npz),
                                 "--diagnostics", "--out", str(run)], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert "warning: layer 1 gradient norm fell below" in r.output
    assert len(diagnostics.read(run)) == 2
    r = CliRunner().invoke(cli, ["evaluate", str(run)], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    report = (run / "eval" / "report.md").read_text()
    assert "## Training diagnostics" in report and "- warning: layer 1 gradient norm" in report
    for name in ("gradient_norms", "activation_histograms", "dead_units", "overfitting", "saliency"):
        assert f"]({name}.png)" in report and (run / "eval" / f"{name}.png").stat().st_size > 5000


# ---------------------------------------------------------------- 3. the experiments' script path


def test_teaching_experiments_script_runs_quick(tmp_path):
    # two processes of two experiments each, side by side: the figures (most of the time) take one core each
    script = [sys.executable, str(ROOT / "experiments" / "diagnostics" / "run.py"), "--quick", "--out", str(tmp_path)]
    procs = [subprocess.Popen(script + names, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
             for names in (["init", "optimizers"], ["depth", "overfitting"])]
    for proc in procs:
        _, stderr = proc.communicate(timeout=600)
        assert proc.returncode == 0, stderr[-2000:]
    for name in ("init", "depth", "overfitting", "optimizers"):
        table = (tmp_path / name / "results.md").read_text()
        assert table.count("\n|") >= 3, table
        assert list((tmp_path / name).glob("*.png")), name
    assert json.loads((tmp_path / "depth" / "results.json").read_text())
