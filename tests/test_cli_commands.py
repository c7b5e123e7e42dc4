"""``fnn-cli predict``, ``runs list|show``, ``sweep`` and the group itself, through Click's CliRunner."""

import json

import numpy as np
import pytest

from fnn import serialization
from fnn.training import sweep


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, small_npz):
    from click.testing import CliRunner

    from fnn_cli.main import cli

    out = tmp_path_factory.mktemp("runs") / "small-run"
    r = CliRunner().invoke(cli, ["fit", "--dataset", str(small_npz), "--arch", "784,64,10", "--epochs", "3", "--out", str(out), "-q"])
    assert r.exit_code == 0, r.output
    return out


def _commands(group, prefix=()):
    import click

    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from _commands(command, prefix + (name,))
        else:
            yield prefix + (name,)


def test_group_help_version_and_an_example_in_every_commands_help(cli_runner, cli_app):
    r = cli_runner.invoke(cli_app, ["--help"])
    assert r.exit_code == 0
    for command in ("fit", "predict", "runs", "sweep", "data", "evaluate", "compare", "plot", "serve"):
        assert command in r.output
    assert cli_runner.invoke(cli_app, ["--version"]).output.startswith("fnn-cli, version")
    commands = list(_commands(cli_app))
    assert len(commands) >= 11
    for command in commands:
        h = cli_runner.invoke(cli_app, [*command, "--help"])
        assert h.exit_code == 0 and "Example" in h.output, command


def test_threads_option_pins_blas_threads(small_npz, tmp_path):
    from threadpoolctl import threadpool_info

    from fnn.training.config import FitConfig
    from fnn.training.experiment import fit_config

    seen = []

    class Probe:
        def on_epoch_end(self, epoch, record):
            seen.append({p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"})

    fit_config(FitConfig(dataset=str(small_npz), arch=(784, 8, 10), epochs=1), tmp_path / "t", callbacks=[Probe()], threads=1)
    assert seen == [{1}]
    assert {p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"} != {0}


def test_unknown_command_is_one_line_exit_2(cli_runner, cli_app):
    r = cli_runner.invoke(cli_app, ["fitt"])
    assert r.exit_code == 2 and len(r.output.strip().splitlines()) == 1 and "fitt" in r.output


def test_predict_npy_and_images(cli_runner, cli_app, trained_run, mnist_raw, tmp_path):
    _, _, x_test, y_test = mnist_raw
    np.save(tmp_path / "batch.npy", x_test[:20])
    from PIL import Image

    Image.fromarray(x_test[0]).resize((280, 280)).save(tmp_path / "digit.png")
    Image.fromarray(np.full((50, 50), 255, np.uint8)).save(tmp_path / "blank.png")
    r = cli_runner.invoke(cli_app, ["predict", str(trained_run), str(tmp_path / "batch.npy"), str(tmp_path / "digit.png"),
                                    str(tmp_path / "blank.png"), "--json", "-k", "2"])
    assert r.exit_code == 0, r.output
    rows = json.loads(r.output)
    assert len(rows) == 22 and all(len(row["top"]) == 2 for row in rows[:21])
    predicted = np.array([row["top"][0]["label"] for row in rows[:20]])
    loaded = serialization.load_model(trained_run / "model.npz")
    expected = loaded.model.apply(loaded.params, x_test[:20].reshape(20, -1).astype(np.float32) / 255).argmax(1)
    np.testing.assert_array_equal(predicted, expected)
    assert rows[20]["top"][0]["label"] == y_test[0]
    assert rows[21]["blank"] and rows[21]["top"] == []
    table = cli_runner.invoke(cli_app, ["predict", str(trained_run / "model.npz"), str(tmp_path / "digit.png")])
    assert table.exit_code == 0 and "digit.png:" in table.output


@pytest.mark.parametrize(
    "make, needle",
    [
        (lambda p: p.write_bytes(b"not an image"), "bad.png"),
        (lambda p: np.save(p.with_suffix(".npy"), np.zeros(5)), "does not hold examples"),
        (lambda p: p.with_suffix(".txt").write_text("hi"), "unsupported file type"),
    ],
)
def test_predict_bad_inputs(cli_runner, cli_app, trained_run, tmp_path, make, needle):
    target = tmp_path / "bad.png"
    make(target)
    f = next(p for p in tmp_path.iterdir() if p.name.startswith("bad"))
    r = cli_runner.invoke(cli_app, ["predict", str(trained_run), str(f)])
    assert r.exit_code == 2 and needle in r.output and len(r.output.strip().splitlines()) == 1


def test_predict_refuses_a_missing_model(cli_runner, cli_app, tmp_path):
    (tmp_path / "x.npy").write_bytes(b"")
    r = cli_runner.invoke(cli_app, ["predict", str(tmp_path / "nope"), str(tmp_path / "x.npy")])
    assert r.exit_code == 2 and "nope" in r.output


def test_runs_list_and_show(cli_runner, cli_app, trained_run):
    r = cli_runner.invoke(cli_app, ["runs", "list", str(trained_run.parent)])
    assert r.exit_code == 0 and "small-run" in r.output
    acc = json.loads((trained_run / "summary.json").read_text())["test_accuracy"]
    assert f"{acc:.4f}" in r.output
    r = cli_runner.invoke(cli_app, ["runs", "show", str(trained_run)])
    assert r.exit_code == 0 and '"test_accuracy"' in r.output and "epoch   3" in r.output
    r = cli_runner.invoke(cli_app, ["runs", "show", str(trained_run.parent / "missing")])
    assert r.exit_code == 2
    r = cli_runner.invoke(cli_app, ["runs", "list", str(trained_run.parent / "empty")])
    assert r.exit_code == 0 and "no runs" in r.output


def test_sweep_grid_parallel_with_a_failing_config(cli_runner, cli_app, small_npz, tmp_path):
    spec = tmp_path / "sweep.yaml"
    spec.write_text(
        f"base: {{dataset: {small_npz}, epochs: 1, batch_size: 64}}\n"
        "grid:\n  arch: ['784,16,10', '784,32,10', '100,10']\n  optimizer: [sgd, adam]\n"
    )
    r = cli_runner.invoke(cli_app, ["sweep", str(spec), "--jobs", "2", "--out", str(tmp_path / "sw")])
    assert r.exit_code == 0, r.output
    rows = json.loads((tmp_path / "sw" / "results.json").read_text())
    assert len(rows) == 6
    failed = [row for row in rows if row["status"] == "failed"]
    assert {row["name"] for row in failed} == {"100-10_sgd", "100-10_adam"}
    assert all("784 features" in row["error"] for row in failed)
    done = [row for row in rows if row["status"] == "done"]
    assert [row["val_accuracy"] for row in done] == sorted((row["val_accuracy"] for row in done), reverse=True)
    assert rows[-1]["status"] == "failed"
    assert (tmp_path / "sw" / "results.md").read_text().count("\n") == 8
    assert not (tmp_path / "sw" / "100-10_sgd").exists(), "a config that fails validation leaves no folder"
    assert "val_accuracy" in (tmp_path / "sw" / "results.csv").read_text().splitlines()[0]
    kept = (tmp_path / "sw" / "sweep.yaml").read_text()  # the sweep file, for runs list's grid keys and to repeat it
    assert "optimizer:\n  - sgd\n  - adam\n" in kept and str(small_npz) in kept
    # a parallel sweep trains exactly what sequential fits do
    seq = sweep.run_sweep([c for c in sweep.load_sweep(spec) if c[0] == "784-16-10_adam"], tmp_path / "seq", jobs=1)
    a = serialization.load_model(tmp_path / "sw" / "784-16-10_adam" / "model.npz").params
    b = serialization.load_model(tmp_path / "seq" / "784-16-10_adam" / "model.npz").params
    from fnn.tree import tree_equal

    assert seq[0]["status"] == "done" and tree_equal(a, b)


@pytest.mark.parametrize(
    "text, needle",
    [("grid: {lrr: [1]}\n", "lrr"), ("base: {epochs: 0}\n", "epochs"), ("grid: {lr: 3}\n", "non-empty list"), ("- 1\n", "mapping"),
     ("cells: 3\n", "base")],
)
def test_sweep_bad_files(cli_runner, cli_app, tmp_path, text, needle):
    spec = tmp_path / "s.yaml"
    spec.write_text(text)
    r = cli_runner.invoke(cli_app, ["sweep", str(spec)])
    assert r.exit_code == 2 and needle in r.output and len(r.output.strip().splitlines()) == 1
