"""What hurt a newcomer (issue 14): next commands after fit, did-you-mean for config keys and options,
positions in broken config files, unfinished runs in ``runs list``, where a dataset was looked for,
one line per epoch on a terminal, blank ``.npy`` inputs, ``fit --help`` order, whole-number options."""

import io
import json
import shlex
import signal

import attrs
import click
import numpy as np
import pytest
from dataset_files import closed_port_url

from fnn import datasets
from fnn.datasets import sources
from fnn.serving import inference
from fnn.training import runs
from fnn.training.config import ConfigError, FitConfig, load_config
from fnn.training.experiment import fit_config


def one_line(result, code, *needles):
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert result.exit_code == code and len(lines) == 1, result.output
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def tiny(small_npz, **changes):
    return FitConfig(**{"dataset": str(small_npz), "arch": (784, 8, 10), "epochs": 1, **changes})


@pytest.fixture(scope="module")
def run_with_space(tmp_path_factory, small_npz):
    """A 1-epoch run trained through the CLI into a folder whose name needs shell quoting."""
    from click.testing import CliRunner

    from fnn_cli.main import cli

    out = tmp_path_factory.mktemp("runs") / "my run"
    r = CliRunner().invoke(cli, ["fit", "--dataset", str(small_npz), "--arch", "784,16,10", "--epochs", "1", "--out", str(out)])
    assert r.exit_code == 0, r.output
    return out, r.output


# ---------------------------------------------------------------- 1. what to run next


def test_fit_ends_with_the_next_commands_for_its_own_run_folder(run_with_space):
    out, output = run_with_space
    quoted = shlex.quote(str(out))
    assert quoted != str(out)  # the space needs quoting
    lines = output.splitlines()
    i = lines.index(f"next: fnn-cli evaluate {quoted}")
    assert lines[i + 1].strip() == f"fnn-cli serve --models {quoted}"
    assert i + 2 == len(lines)


def test_next_commands_offer_the_pad_only_for_models_it_serves():
    from fnn_cli.fit import next_commands

    assert next_commands("runs/a b", {"arch": [784, 10]}) == ["fnn-cli evaluate 'runs/a b'", "fnn-cli serve --models 'runs/a b'"]
    assert next_commands("runs/c", {"arch": [3072, 10]}) == ["fnn-cli evaluate runs/c", "fnn-cli serve --models runs/c"]
    assert next_commands("runs/d", {"arch": [1024, 10], "dataset": "cifar10"})[1:] == ["fnn-cli serve --models runs/d"]
    assert next_commands("runs/e", {"arch": [100, 10]}) == ["fnn-cli evaluate runs/e"]


def test_evaluate_prints_the_path_of_the_report_it_wrote(cli_runner, cli_app, run_with_space):
    out, _ = run_with_space
    r = cli_runner.invoke(cli_app, ["evaluate", str(out), "--no-pictures"])
    assert r.exit_code == 0, r.output
    report = out / "eval" / "report.md"
    assert f"report: {report}" in r.output.splitlines()
    assert report.is_file() and report.stat().st_size > 0


# ---------------------------------------------------------------- 2. did you mean


@pytest.mark.parametrize(
    "key, near",
    [("learning_rate", "lr"), ("epoch", "epochs"), ("batchsize", "batch_size"), ("num_epochs", "epochs"),
     ("n_epochs", "epochs"), ("lr_schedule", "schedule"), ("momentum", "optimizer"), ("batch-size", "batch_size"),
     ("validation_split", "val_split"), ("random_state", "seed"), ("lrr", "lr")],
)
def test_an_unknown_config_key_names_the_nearest_valid_one(key, near):
    with pytest.raises(ConfigError) as e:
        FitConfig.from_dict({key: 1})
    assert str(e.value).startswith(f"unknown config key {key!r}; did you mean {near!r}? (valid keys: arch, dataset,")


def test_an_unknown_config_key_with_nothing_near_lists_the_valid_ones():
    with pytest.raises(ConfigError, match=r"^unknown config key 'zzzz'; valid keys: arch, dataset, .*diagnostics$"):
        FitConfig.from_dict({"zzzz": 1})


def test_a_config_file_with_a_synonym_says_did_you_mean(cli_runner, cli_app, tmp_path):
    (tmp_path / "c.yaml").write_text("learning_rate: 0.1\n")
    r = cli_runner.invoke(cli_app, ["fit", "--config", str(tmp_path / "c.yaml"), "--out", str(tmp_path / "run")])
    one_line(r, 2, "c.yaml", "unknown config key 'learning_rate'; did you mean 'lr'?")


@pytest.mark.parametrize(
    "args, message",
    [(["fit", "--learning-rate", "0.1"], "no such option --learning-rate; did you mean --lr?"),
     (["fit", "--learning_rate=0.1"], "no such option --learning_rate; did you mean --lr?"),
     (["fit", "--num-epochs", "3"], "no such option --num-epochs; did you mean --epochs?"),
     (["fit", "--batchsize", "3"], "no such option --batchsize; did you mean --batch-size?"),
     (["fit", "--epoch", "3"], "no such option --epoch; did you mean --epochs?"),
     (["serve", "--model", "x"], "no such option --model; did you mean --models?"),
     (["runs", "list", "--foo"], "no such option --foo; see fnn-cli runs list --help")],
)
def test_an_unknown_option_says_did_you_mean_in_one_line(cli_runner, cli_app, args, message):
    line = one_line(cli_runner.invoke(cli_app, args, prog_name="fnn-cli"), 2)
    assert line == f"Error: {message}"


# ---------------------------------------------------------------- 3. where a config file breaks


@pytest.mark.parametrize(
    "name, text, where",
    [("broken.yaml", "epochs: 3\nlr: [0.1\n", "is not valid YAML: line 3, column 1: expected ',' or ']'"),
     ("tab.yaml", "epochs: 3\n\tlr: 0.1\n", "is not valid YAML: line 2, column 1: found character '\\t'"),
     ("broken.json", '{"lr": 0.1,\n "epochs": }', "is not valid JSON: line 2, column 12: Expecting value")],
)
def test_a_broken_config_file_error_names_file_line_and_column(cli_runner, cli_app, tmp_path, name, text, where):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_config(path)
    assert str(e.value).startswith(f"config file {path} {where}") and "\n" not in str(e.value)
    r = cli_runner.invoke(cli_app, ["fit", "--config", str(path), "--out", str(tmp_path / "run")])
    one_line(r, 2, str(path), where)


# ---------------------------------------------------------------- 4. unfinished runs in `runs list`


class Killed(Exception):
    """Stands in for kill -9: training stops between two writes, leaving what was written."""


class KillAfter:
    def __init__(self, epochs):
        self.epochs = epochs

    def on_epoch_end(self, epoch, record):
        if epoch + 1 == self.epochs:
            raise Killed


class CtrlC:
    """Presses Ctrl-C during the 3rd step of the 2nd epoch (the loop checkpoints, then stops)."""

    def on_batch_end(self, batch, logs):
        if (self.loop.epoch, batch) == (1, 2):
            signal.raise_signal(signal.SIGINT)


def test_runs_list_shows_finished_killed_diverged_interrupted_and_damaged_runs(cli_runner, cli_app, small_npz, tmp_path):
    from fnn.training.fit import Interrupted, TrainingDiverged

    root = tmp_path / "runs"
    fit_config(tiny(small_npz), root / "a-finished")
    with pytest.raises(Killed):
        fit_config(tiny(small_npz, epochs=5), root / "b-killed", callbacks=[KillAfter(2)])
    with pytest.raises(TrainingDiverged):
        fit_config(tiny(small_npz, lr=1e6, epochs=3), root / "c-diverged")
    with pytest.raises(Interrupted):
        fit_config(tiny(small_npz, epochs=4), root / "d-interrupted", callbacks=[CtrlC()])
    fit_config(tiny(small_npz), root / "e-damaged")
    (root / "e-damaged" / runs.SUMMARY).write_bytes(b"[1, 2]")

    status = {p.name: runs.run_status(p) for p in runs.list_runs(root)}
    assert sorted(status) == ["a-finished", "b-killed", "c-diverged", "d-interrupted", "e-damaged"]
    assert [status[n]["state"] for n in sorted(status)] == ["finished", "unfinished", "diverged", "interrupted", "damaged"]
    assert status["b-killed"]["text"] == "unfinished (killed or interrupted at epoch 3 of 5)"
    assert status["b-killed"]["epochs_done"] == 2 and status["b-killed"]["epochs"] == 5
    assert status["c-diverged"]["text"] == "diverged at epoch 1 of 3"
    assert status["d-interrupted"]["text"].startswith("interrupted at epoch 2 of 4")
    assert "diverged: loss became" in (root / "c-diverged" / runs.LOG).read_text()

    r = cli_runner.invoke(cli_app, ["runs", "list", str(root)])
    assert r.exit_code == 0 and "Traceback" not in r.output and "no runs" not in r.output
    rows = {line.split()[0]: line for line in r.output.splitlines()[1:]}
    assert rows["a-finished"].endswith("  finished")
    assert rows["b-killed"].endswith("  unfinished (killed or interrupted at epoch 3 of 5)")
    assert rows["c-diverged"].endswith("  diverged at epoch 1 of 3")
    assert "interrupted at epoch 2 of 4" in rows["d-interrupted"]
    assert "(damaged: " in rows["e-damaged"] and "expected a JSON object" in rows["e-damaged"]
    show = cli_runner.invoke(cli_app, ["runs", "show", str(root / "b-killed")])
    assert show.exit_code == 0 and "no summary yet: unfinished (killed or interrupted at epoch 3 of 5)" in show.output

    # resumed to the end, the interrupted run is finished and its stop is forgotten
    fit_config(tiny(small_npz, epochs=4), root / "d-interrupted", resume=True)
    assert runs.run_status(root / "d-interrupted")["state"] == "finished"
    assert not (root / "d-interrupted" / runs.STATUS).exists()


def test_a_damaged_status_file_is_reported_as_damaged(small_npz, tmp_path):
    with pytest.raises(Killed):
        fit_config(tiny(small_npz, epochs=2), tmp_path / "r", callbacks=[KillAfter(1)])
    (tmp_path / "r" / runs.STATUS).write_bytes(b'{"state": "exploded"}')
    st = runs.run_status(tmp_path / "r")
    assert st["state"] == "damaged" and "status.json" in st["text"] and "'state'" in st["text"]


# ---------------------------------------------------------------- 5. a dataset found nowhere


@pytest.fixture
def nowhere(monkeypatch, tmp_path):
    """No local copy anywhere: empty cache and system folder, no $FNN_DATA_DIR; the system root empty."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("FNN_DATA_DIR", raising=False)
    monkeypatch.setattr(sources, "SYSTEM_ROOT", tmp_path / "system")
    (tmp_path / "system").mkdir()
    return tmp_path


def test_fashion_mnist_not_found_offline_lists_every_place_and_every_remedy(nowhere, monkeypatch):
    refused = closed_port_url()
    with pytest.raises(datasets.DownloadError) as e:
        datasets.load("fashion-mnist", mirrors=[refused])
    message = str(e.value)
    first = message.splitlines()[0]
    assert first.startswith("fashion-mnist: not found in --data-dir / $FNN_DATA_DIR (not given), ")
    for folder, label in [(nowhere / "xdg" / "fnn" / "fashion-mnist", "cache"),
                          (nowhere / "system" / "fashion-mnist", "system folder"),
                          (sources.PACKAGE_ROOT / "fashion-mnist", "package copy")]:
        assert f"{folder} ({label})" in first
    assert f"{refused}train-images-idx3-ubyte.gz: cannot connect" in message  # what the mirror said, still
    assert "--data-dir DIR" in message and "FNN_DATA_DIR=DIR" in message
    assert "apt-get install dataset-fashion-mnist" in message
    assert "fnn-cli data download fashion-mnist" in message
    assert [url for url, _ in e.value.attempts] == [f"{refused}train-images-idx3-ubyte.gz"]

    monkeypatch.setenv("FNN_DATA_DIR", str(nowhere / "mine"))
    with pytest.raises(datasets.DownloadError) as e:
        datasets.load("fashion-mnist", mirrors=[refused])
    assert f"not found in {nowhere / 'mine' / 'fashion-mnist'} ($FNN_DATA_DIR), {nowhere / 'mine'} ($FNN_DATA_DIR), " in str(e.value)


def test_cifar10_not_found_with_downloads_off_says_how_to_supply_it(nowhere):
    with pytest.raises(datasets.DatasetError) as e:
        datasets.load("cifar10", data_dir=nowhere / "d", download=False)
    message = str(e.value)
    assert message.splitlines()[0] == (
        f"cifar10: not found in {nowhere / 'd' / 'cifar10'} (--data-dir), {nowhere / 'd'} (--data-dir), "
        f"{nowhere / 'xdg' / 'fnn' / 'cifar10'} (cache), {nowhere / 'system' / 'cifar10'} (system folder), "
        f"{sources.PACKAGE_ROOT / 'cifar10'} (package copy) (downloads are off)")
    assert "put cifar-10-binary.tar.gz in a folder DIR" in message and "gunzipped" not in message
    assert "fnn-cli data download cifar10" in message and "apt-get" not in message


def test_fit_on_fashion_mnist_found_nowhere_tells_the_user_what_to_do(cli_runner, cli_app, nowhere, monkeypatch):
    spec = datasets.REGISTRY["fashion-mnist"]
    monkeypatch.setitem(datasets.REGISTRY, "fashion-mnist", attrs.evolve(spec, mirrors=(closed_port_url(),)))
    r = cli_runner.invoke(cli_app, ["fit", "--dataset", "fashion-mnist", "--arch", "784,8,10", "--out", str(nowhere / "run")])
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert r.output.startswith("Error: fashion-mnist: not found in ")
    assert "apt-get install dataset-fashion-mnist" in r.output and "--data-dir DIR" in r.output
    assert not (nowhere / "run").exists()


# ---------------------------------------------------------------- 6. one line per epoch on a terminal


def screen(text) -> list:
    """The lines a terminal shows for ``text``: ``\\r`` returns to column 0, ``ESC [K`` clears to the end of the line."""
    lines = []
    for raw in text.split("\n"):
        line, col, i = [], 0, 0
        while i < len(raw):
            if raw.startswith("\x1b[K", i):
                del line[col:]
                i += 3
                continue
            ch = raw[i]
            if ch == "\r":
                col = 0
            else:
                if col < len(line):
                    line[col] = ch
                else:
                    line.append(ch)
                col += 1
            i += 1
        lines.append("".join(line))
    return lines


def test_on_a_terminal_each_epochs_bar_is_replaced_by_its_summary(small_npz, tmp_path):
    from fnn_cli.fit import Progress

    out = io.StringIO()
    progress = Progress(tty=True, file=out)
    progress.REDRAW = 0.0  # draw every step
    fit_config(tiny(small_npz, epochs=2), tmp_path / "t", callbacks=[progress])
    raw = out.getvalue()
    assert raw.count("\repoch 1/2 loss ") >= 10 and "\repoch 2/2 loss " in raw  # the live line was drawn, step by step
    shown = [line for line in screen(raw) if line]
    epochs = [line for line in shown if line.startswith("epoch")]
    assert [line.split()[1] for line in epochs] == ["1/2", "2/2"]
    for line in epochs:  # the summary, with its single loss figure, and nothing of the bar
        assert line.count("loss ") == 2 and "val_loss" in line and "[" not in line and "eta" not in line
    assert len(shown) == 5  # fit ..., data: ..., run folder: ..., two epochs


def test_piped_progress_has_no_control_characters(small_npz, tmp_path):
    from fnn_cli.fit import Progress

    out = io.StringIO()
    fit_config(tiny(small_npz), tmp_path / "p", callbacks=[Progress(tty=False, file=out)])
    assert "\r" not in out.getvalue() and "\x1b" not in out.getvalue() and out.getvalue().count("\nepoch") == 1


# ---------------------------------------------------------------- 7. blank .npy inputs


def test_predict_says_blank_for_empty_and_near_blank_npy_rows(cli_runner, cli_app, run_with_space, mnist_raw, tmp_path):
    out, _ = run_with_space
    _, _, x_test, _ = mnist_raw
    rows = np.zeros((4, 28, 28), np.uint8)
    rows[1, 14, 14] = 255  # one dot: too little ink
    rows[2:] = x_test[:2]
    np.save(tmp_path / "b.npy", rows)
    r = cli_runner.invoke(cli_app, ["predict", str(out), str(tmp_path / "b.npy")])
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert lines[0] == f"{tmp_path / 'b.npy'}[0]: blank (nothing drawn)"
    assert lines[1] == f"{tmp_path / 'b.npy'}[1]: blank (too little ink to read)"
    for line in lines[2:]:  # labels with probabilities
        labels = line.rsplit(": ", 1)[1].split()
        assert len(labels) == 6 and all(0 <= float(p) <= 1 for p in labels[1::2]), line
    j = json.loads(cli_runner.invoke(cli_app, ["predict", str(out), str(tmp_path / "b.npy"), "--json"]).output)
    assert [(row["blank"], row["reason"], len(row["top"])) for row in j] == [
        (True, "nothing drawn", 0), (True, "too little ink to read", 0), (False, None, 3), (False, None, 3)]


def test_no_real_digit_counts_as_blank_and_non_image_models_only_refuse_zeros(mnist_raw, tmp_path):
    import fnn
    from fnn.serialization import load_model, save_model

    _, _, x_test, _ = mnist_raw
    x = x_test.reshape(len(x_test), -1).astype(np.float32) / 255
    assert inference.blank_rows(x, {"preprocessing": {"image_shape": [28, 28]}}) == [None] * len(x)
    model = fnn.mlp([5, 3])
    _, params = model.init(fnn.random.key(0), (-1, 5))
    save_model(tmp_path / "m.npz", model, params, (-1, 5), {})
    np.save(tmp_path / "t.npy", np.array([[0, 0, 0, 0, 0], [0, 0, 0, 0, 1e-3]], np.float32))
    rows = inference.predict_files(load_model(tmp_path / "m.npz"), [tmp_path / "t.npy"])
    assert [(r["blank"], r["reason"]) for r in rows] == [(True, "all zeros"), (False, None)]


# ---------------------------------------------------------------- 8. fit --help order


def test_fit_help_lists_arch_and_dataset_first_and_flags_last(cli_runner, cli_app):
    from fnn_cli.fit import fit as fit_command

    text = cli_runner.invoke(cli_app, ["fit", "--help"]).output
    listed = [line.split()[0].rstrip(",") for line in text.splitlines() if line.startswith("  -")]
    listed = [name for name in listed if name not in ("-q", "-h")] + ["--quiet", "--help"]
    listed = list(dict.fromkeys(listed))
    flags = {o for p in fit_command.params if isinstance(p, click.Option) and (p.is_flag or p.secondary_opts) for o in p.opts}
    flags.add("--help")
    assert listed[:2] == ["--arch", "--dataset"]
    kinds = ["flag" if name in flags else "value" for name in listed]
    assert kinds == sorted(kinds, key=lambda k: k == "flag") and kinds.count("flag") >= 5, list(zip(listed, kinds))


# ---------------------------------------------------------------- 9. whole numbers


def _integer_options(group, prefix=()):
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from _integer_options(command, prefix + (name,))
            continue
        for p in command.params:
            if isinstance(p, click.Option) and isinstance(p.type, (click.types.IntParamType, click.IntRange)):
                yield prefix + (name,), max(p.opts, key=len), p.type


def test_every_integer_option_refuses_a_float_by_name(cli_runner, cli_app):
    from fnn_cli.common import WholeNumber

    found = list(_integer_options(cli_app))
    names = {opt for _, opt, _ in found}
    assert {"--epochs", "--batch-size", "--seed", "--warmup", "--early-stopping", "--threads", "--top-k", "--port",
            "--jobs"} <= names
    for command, opt, kind in found:
        assert isinstance(kind, WholeNumber), (command, opt)
        for value in ("1.5", "12.5"):
            one_line(cli_runner.invoke(cli_app, [*command, opt, value]), 2, f"Error: {opt} must be a whole number, got {value}")
    one_line(cli_runner.invoke(cli_app, ["fit", "--epochs", "0"]), 2, "Error: --epochs must be >= 1, got 0")
    one_line(cli_runner.invoke(cli_app, ["serve", "--port", "70000"]), 2, "Error: --port must be between 0 and 65535, got 70000")


@pytest.mark.parametrize("key, value", [("epochs", 1.5), ("batch_size", 12.5), ("seed", 0.5), ("warmup", 1.5),
                                        ("early_stopping", 2.5), ("epochs", True)])
def test_config_files_refuse_a_float_where_a_whole_number_goes(cli_runner, cli_app, tmp_path, key, value):
    path = tmp_path / "c.yaml"
    path.write_text(f"{key}: {str(value).lower()}\n")
    with pytest.raises(ConfigError, match=f"^{path}: {key} must be a whole number, got {value}$"):
        load_config(path)
    one_line(cli_runner.invoke(cli_app, ["fit", "--config", str(path)]), 2, f"{key} must be a whole number, got {value}")
