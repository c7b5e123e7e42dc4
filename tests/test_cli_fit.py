"""``fnn-cli fit``: bad input, reproducibility, resume after SIGKILL and Ctrl-C, early stopping, NaN guard, output."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from fnn import serialization
from fnn.training import runs
from fnn.training.experiment import load_checkpoint
from fnn.tree import tree_equal

FNN_CLI = [sys.executable, "-c", "from fnn_cli.main import cli; cli()"]


def fit_args(small_npz, out, *extra):
    return ["fit", "--dataset", str(small_npz), "--arch", "784,32,10", "--epochs", "2", "--out", str(out), *extra]


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--arch", "784,,10"], "784,,10"),
        (["--arch", "abc"], "abc"),
        (["--arch", "784"], "784"),
        (["--arch", "0,10"], "0,10"),
        (["--arch", "-5,10"], "-5,10"),
        (["--arch", "784,10", "--dataset", "cifar10", "--data-dir", "{tmp}"], "3072"),
        (["--lr", "0"], "--lr"),
        (["--lr", "-0.1"], "--lr"),
        (["--lr-floor", "1"], "--lr-floor"),
        (["--batch-size", "0"], "--batch-size"),
        (["--epochs", "0"], "--epochs"),
        (["--optimizer", "adamm"], "adamm"),
        (["--dataset", "mnistt"], "mnistt"),
        (["--config", "{tmp}/missing.yaml"], "missing.yaml"),
        (["--config", "{tmp}/broken.yaml"], "broken.yaml"),
        (["--config", "{tmp}/unknown.yaml"], "lrr"),
        (["--config", "{tmp}/badvalue.yaml"], "batch_size"),
    ],
)
def test_bad_input_exits_2_with_one_line(cli_runner, cli_app, tmp_path, args, needle):
    (tmp_path / "broken.yaml").write_text("lr: [0.1\n")
    (tmp_path / "unknown.yaml").write_text("lrr: 0.1\n")
    (tmp_path / "badvalue.yaml").write_text("batch_size: -3\n")
    if "cifar10" in args:  # a CIFAR-10 archive whose first size cannot match 784 features
        from test_cli_helpers import write_fake_cifar

        write_fake_cifar(tmp_path)
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    result = cli_runner.invoke(cli_app, ["fit", "--out", str(tmp_path / "run"), *args])
    assert result.exit_code == 2, result.output
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1, result.output
    assert needle in lines[0] and "Traceback" not in result.output
    assert not (tmp_path / "run" / "model.npz").exists()


def test_same_seed_gives_bit_identical_weights(cli_runner, cli_app, small_npz, tmp_path):
    for name in ("a", "b", "c"):
        seed = "1" if name == "c" else "0"
        r = cli_runner.invoke(cli_app, fit_args(small_npz, tmp_path / name, "--seed", seed, "--dropout", "0.2", "--quiet"))
        assert r.exit_code == 0, r.output
    a, b, c = (serialization.load_model(tmp_path / n / "model.npz").params for n in "abc")
    assert tree_equal(a, b)
    assert not tree_equal(a, c)


def test_run_folder_contents(cli_runner, cli_app, small_npz, tmp_path):
    r = cli_runner.invoke(cli_app, fit_args(small_npz, tmp_path / "r", "--l2", "1e-4", "--clip-norm", "5"))
    assert r.exit_code == 0, r.output
    run = tmp_path / "r"
    for name in ("config.yaml", "metrics.jsonl", "model.npz", "checkpoint.npz", "train.log", "summary.json"):
        assert (run / name).is_file(), name
    s = json.loads((run / "summary.json").read_text())
    for key in ("test_accuracy", "test_loss", "epochs", "train_seconds", "params", "seed", "dataset", "dataset_files",
                "fnn_version", "numpy_version"):
        assert key in s, key
    assert 0 <= s["test_accuracy"] <= 1 and s["epochs"] == 2 and s["params"] == 784 * 32 + 32 + 32 * 10 + 10
    metrics = runs.read_metrics(run)
    assert [m["epoch"] for m in metrics] == [1, 2]
    assert {"loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds"} <= set(metrics[0])
    assert f"test accuracy {s['test_accuracy']:.4f}" in r.output
    # the resolved config repeats the run exactly
    r2 = cli_runner.invoke(cli_app, ["fit", "--config", str(run / "config.yaml"), "--out", str(tmp_path / "again"), "-q"])
    assert r2.exit_code == 0, r2.output
    assert tree_equal(serialization.load_model(run / "model.npz").params, serialization.load_model(tmp_path / "again" / "model.npz").params)


def test_config_file_and_option_override(cli_runner, cli_app, small_npz, tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"dataset: {small_npz}\narch: 784,16,10\nepochs: 3\noptimizer: momentum\nlr: 0.05\n")
    r = cli_runner.invoke(cli_app, ["fit", "--config", str(cfg), "--epochs", "1", "--out", str(tmp_path / "o"), "-q"])
    assert r.exit_code == 0, r.output
    import yaml

    saved = yaml.safe_load((tmp_path / "o" / "config.yaml").read_text())
    assert saved["epochs"] == 1 and saved["optimizer"] == "momentum" and saved["arch"] == [784, 16, 10]
    (tmp_path / "c.json").write_text(json.dumps({"dataset": str(small_npz), "arch": [784, 8, 10], "epochs": 1}))
    r = cli_runner.invoke(cli_app, ["fit", "--config", str(tmp_path / "c.json"), "--out", str(tmp_path / "j"), "-q"])
    assert r.exit_code == 0, r.output


def _start(args, env=None):
    return subprocess.Popen(FNN_CLI + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _wait_for(predicate, timeout=60):
    end = time.time() + timeout
    while time.time() < end:
        if predicate():
            return True
        time.sleep(0.01)
    return False


def _slow_args(small_npz, out):
    return fit_args(small_npz, out, "--epochs", "4", "--batch-size", "8", "--dropout", "0.1")[:]


def test_sigkill_between_and_mid_epoch_then_resume_is_bit_identical(cli_runner, cli_app, small_npz, tmp_path):
    ref = tmp_path / "ref"
    r = cli_runner.invoke(cli_app, _slow_args(small_npz, ref) + ["-q"])
    assert r.exit_code == 0, r.output
    expected = serialization.load_model(ref / "model.npz").params
    for mode in ("between", "mid"):
        out = tmp_path / mode
        proc = _start(_slow_args(small_npz, out))
        metrics = out / "metrics.jsonl"
        assert _wait_for(lambda metrics=metrics: metrics.is_file() and len(metrics.read_text().splitlines()) >= 1)
        if mode == "mid":
            time.sleep(0.15)  # inside epoch 2
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        load_checkpoint(out / "checkpoint.npz")  # never corrupt
        assert not (out / "model.npz").exists()
        r = cli_runner.invoke(cli_app, ["fit", "--resume", str(out), "-q"])
        assert r.exit_code == 0, r.output
        assert tree_equal(serialization.load_model(out / "model.npz").params, expected), mode
        assert [m["epoch"] for m in runs.read_metrics(out)] == [1, 2, 3, 4]


def test_ctrl_c_writes_checkpoint_prints_resume_and_exits_130(cli_runner, cli_app, small_npz, tmp_path):
    ref, out = tmp_path / "ref", tmp_path / "int"
    assert cli_runner.invoke(cli_app, _slow_args(small_npz, ref) + ["-q"]).exit_code == 0
    proc = _start(_slow_args(small_npz, out))
    metrics = out / "metrics.jsonl"
    assert _wait_for(lambda: metrics.is_file() and len(metrics.read_text().splitlines()) >= 1)
    time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert f"fnn-cli fit --resume {out}" in stderr and "Traceback" not in stderr
    ckpt = load_checkpoint(out / "checkpoint.npz")
    assert ckpt["cursor"] > 0 or ckpt["epoch"] > 1
    r = cli_runner.invoke(cli_app, ["fit", "--resume", str(out), "-q"])
    assert r.exit_code == 0, r.output
    assert tree_equal(serialization.load_model(out / "model.npz").params, serialization.load_model(ref / "model.npz").params)


def test_resume_refuses_a_different_config(cli_runner, cli_app, small_npz, tmp_path):
    out = tmp_path / "r"
    assert cli_runner.invoke(cli_app, fit_args(small_npz, out, "-q")).exit_code == 0
    r = cli_runner.invoke(cli_app, ["fit", "--resume", str(out), "--lr", "0.5"])
    assert r.exit_code == 2 and "lr" in r.output and "different configuration" in r.output
    r = cli_runner.invoke(cli_app, ["fit", "--resume", str(tmp_path / "nothing")])
    assert r.exit_code == 2 and "nothing" in r.output


def test_a_checkpoint_of_an_older_format_is_refused_by_name(cli_runner, cli_app, small_npz, tmp_path):
    """Checkpoints before this release (version 1: no model state, no callback states) cannot resume exactly: one line, exit 2."""
    out = tmp_path / "r"
    assert cli_runner.invoke(cli_app, fit_args(small_npz, out, "-q")).exit_code == 0
    trees, manifest = serialization.load_arrays(out / "checkpoint.npz")
    serialization.save_arrays(out / "checkpoint.npz", trees, {**manifest, "version": 1})
    r = cli_runner.invoke(cli_app, ["fit", "--resume", str(out), "--epochs", "3"])
    assert r.exit_code == 2 and "version 1" in r.output and len(r.output.strip().splitlines()) == 1, r.output


def test_early_stopping_restores_the_best_epoch(cli_runner, cli_app, mnist_raw, tmp_path):
    x, y, xt, yt = mnist_raw
    tiny = tmp_path / "tiny.npz"  # 300 examples and a big net: validation loss turns up within a few epochs
    np.savez(tiny, x=x[:300], y=y[:300], x_test=xt[:200], y_test=yt[:200])
    out = tmp_path / "es"
    r = cli_runner.invoke(cli_app, ["fit", "--dataset", str(tiny), "--arch", "784,256,10", "--lr", "0.01", "--epochs", "40",
                                    "--val-split", "0.3", "--early-stopping", "3", "--schedule", "constant", "--out", str(out), "-q"])
    assert r.exit_code == 0, r.output
    metrics = runs.read_metrics(out)
    summary = json.loads((out / "summary.json").read_text())
    best = int(np.argmin([m["val_loss"] for m in metrics])) + 1
    assert summary["stopped_early"] and len(metrics) == best + 3 < 40
    assert summary["best_epoch"] == best
    assert f"restored the best epoch, {best}" in r.output
    # the saved model is the best epoch's: its validation loss is the one recorded for that epoch
    from fnn.train import evaluate
    from fnn.training.config import FitConfig
    from fnn.training.experiment import prepare_data

    cfg = FitConfig.from_dict(__import__("yaml").safe_load((out / "config.yaml").read_text()))
    data = prepare_data(cfg)
    loaded = serialization.load_model(out / "model.npz")
    val = evaluate(loaded.model, loaded.params, data["transform"](data["x_val"]), data["y_val"])
    assert val["loss"] == pytest.approx(metrics[best - 1]["val_loss"], rel=1e-6)
    assert val["loss"] < metrics[-1]["val_loss"]


def test_huge_learning_rate_stops_with_a_nan_message(cli_runner, cli_app, small_npz, tmp_path):
    out = tmp_path / "nan"
    r = cli_runner.invoke(cli_app, fit_args(small_npz, out, "--lr", "1e6"))
    assert r.exit_code not in (0, 2), r.output
    line = [ln for ln in r.output.splitlines() if "diverged" in ln]
    assert len(line) == 1 and "epoch 1, step" in line[0] and "layer" in line[0] and "Traceback" not in r.output
    ckpt = load_checkpoint(out / "checkpoint.npz")
    assert ckpt["epoch"] == 0 and all(np.isfinite(a).all() for a in __import__("fnn").tree.tree_leaves(ckpt["params"]))
    assert not (out / "model.npz").exists()


def test_piped_output_is_clean_lines(small_npz, tmp_path):
    out = subprocess.run(FNN_CLI + fit_args(small_npz, tmp_path / "p"), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "\r" not in out.stdout and "\x1b" not in out.stdout
    epoch_lines = [ln for ln in out.stdout.splitlines() if ln.startswith("epoch")]
    assert len(epoch_lines) == 2 and "test accuracy" in out.stdout


def test_terminal_progress_bar_shows_live_loss(small_npz, tmp_path, capsys):
    from fnn.training.config import FitConfig
    from fnn.training.experiment import fit_config
    from fnn_cli.fit import Progress

    progress = Progress(tty=True)
    fit_config(FitConfig(dataset=str(small_npz), arch=(784, 8, 10), epochs=1), tmp_path / "t", callbacks=[progress])
    text = capsys.readouterr().out
    assert "epoch 1/1 loss" in text


def test_installed_entry_point_end_to_end(small_npz, tmp_path):
    out = subprocess.run(["fnn-cli", *fit_args(small_npz, tmp_path / "e2e")], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "e2e" / "model.npz").is_file()
    v = subprocess.run(["fnn-cli", "--version"], capture_output=True, text=True)
    assert v.returncode == 0 and "fnn-cli, version" in v.stdout


@pytest.mark.slow
def test_default_fit_reaches_97_8_percent_offline(tmp_path):
    """The main job, exactly as the README prints it, with no network."""
    env = {**os.environ, "FNN_DATA_DIR": "", "XDG_CACHE_HOME": str(tmp_path / "cache"), "http_proxy": "http://127.0.0.1:9",
           "https_proxy": "http://127.0.0.1:9"}
    out = subprocess.run(["fnn-cli", "fit", "--arch", "784,128,64,10", "--out", str(tmp_path / "main")], capture_output=True,
                         text=True, timeout=600, env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    summary = json.loads((tmp_path / "main" / "summary.json").read_text())
    print(out.stdout)
    assert summary["test_accuracy"] >= 0.978  # seed 0 of the default recipe: 98.21% (experiments/README.md)
    assert summary["data_source"].startswith("package copy"), summary["data_source"]  # the clone's own MNIST, nothing beside it
