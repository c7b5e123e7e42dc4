"""``fnn-cli runs list`` as experiment tracking (issue 16): records of every run, ``--where`` filters, ``--sort``,
``--columns``, ``--json``, the keys a sweep varied, runs one level down, damaged runs."""

import json
import shutil

import pytest
import yaml

from fnn.training import runs, tracking
from fnn.training.config import FitConfig, save_config

GRID = {"optimizer": ["sgd", "adam"], "lr": [0.01, 0.003]}


def one_line(result, code, *needles):
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert result.exit_code == code and len(lines) == 1, result.output
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def table(output):
    """``{run: {column: cell}}`` of a ``runs list`` table (cells hold no spaces here), and the header."""
    header, *rows = output.splitlines()
    keys = header.split()
    return {cells[0]: dict(zip(keys, cells)) for cells in (row.split() for row in rows)}, header


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory, small_npz):
    """A real 2 x 2 sweep over optimizer and lr (tiny MLP, 1 epoch) with its file kept, as ``fnn-cli sweep`` runs it
    (without the figures, which cost seconds; tests/test_cli_commands.py checks the command keeps the file)."""
    from fnn.training import sweep

    spec = {"base": {"dataset": str(small_npz), "arch": "784,8,10", "epochs": 1, "batch_size": 250}, "grid": GRID}
    out = tmp_path_factory.mktemp("sweep") / "sweep-1"
    rows = sweep.run_sweep(sweep.expand(spec), out, figures=False, spec=spec)
    assert [r["status"] for r in rows] == ["done"] * 4, rows
    return out


def write_run(folder, summary=None, **config):
    """A run folder written by hand: ``config.yaml`` (a FitConfig with ``config``) and ``summary.json``."""
    folder.mkdir(parents=True)
    save_config(folder / runs.CONFIG, FitConfig(**config))
    (folder / runs.SUMMARY).write_text(json.dumps({"epochs": 1, **(summary or {})}))
    return folder


@pytest.fixture(scope="module")
def hand_runs(tmp_path_factory):
    """Four hand-written runs: lr and val_accuracy differ, one has no val_accuracy (val_split 0). Read only."""
    root = tmp_path_factory.mktemp("hand") / "runs"
    write_run(root / "a", {"val_accuracy": 0.90, "test_accuracy": 0.89}, lr=0.01, optimizer="sgd", arch=(784, 32, 10))
    write_run(root / "b", {"val_accuracy": 0.95, "test_accuracy": 0.94}, lr=0.003, optimizer="adam", standardize=True)
    write_run(root / "c", {"val_accuracy": None, "test_accuracy": 0.92}, lr=0.1, optimizer="adam", val_split=0.0)
    write_run(root / "d", {"val_accuracy": 0.93, "test_accuracy": 0.93}, lr=0.003, optimizer="sgd")
    return root


def names(records):
    return [r["run"] for r in records]


# ---------------------------------------------------------------- records from folders fnn wrote


def test_a_sweep_keeps_its_file_as_sweep_yaml(sweep_dir):
    kept = yaml.safe_load((sweep_dir / "sweep.yaml").read_text())
    assert kept["grid"] == GRID and kept["base"]["arch"] == "784,8,10"


def test_records_of_a_real_sweep_hold_config_summary_and_state(sweep_dir):
    records = {r["run"]: r for r in tracking.read_records(sweep_dir)}
    assert sorted(records) == ["adam_lr0.003", "adam_lr0.01", "sgd_lr0.003", "sgd_lr0.01"]
    for name, r in records.items():
        summary = json.loads((sweep_dir / name / runs.SUMMARY).read_text())
        assert r["state"] == "finished" and r["status"] == "finished" and r["path"] == str(sweep_dir / name)
        assert (r["optimizer"], r["lr"]) == (name.split("_")[0], float(name.split("lr")[1]))
        assert r["arch"] == "784-8-10" and r["batch_size"] == 250 and r["schedule"] == "cosine"  # config.yaml
        assert r["test_accuracy"] == summary["test_accuracy"] and r["params"] == summary["params"]  # summary.json
        assert r["epochs"] == 1 and r["epochs_done"] == 1
    assert tracking.varied_keys(list(records.values())) == ["optimizer", "lr"]


def test_listing_a_sweep_folder_shows_its_grid_keys_one_aligned_line_per_run(cli_runner, cli_app, sweep_dir):
    r = cli_runner.invoke(cli_app, ["runs", "list", str(sweep_dir)])
    assert r.exit_code == 0, r.output
    rows, header = table(r.output)
    assert header.split() == ["run", "dataset", "optimizer", "lr", "epochs_done", "val_accuracy", "test_accuracy",
                              "train_seconds", "status"]
    assert sorted(rows) == ["adam_lr0.003", "adam_lr0.01", "sgd_lr0.003", "sgd_lr0.01"]
    for name, row in rows.items():
        summary = json.loads((sweep_dir / name / runs.SUMMARY).read_text())
        assert (row["optimizer"], float(row["lr"])) == (name.split("_")[0], float(name.split("lr")[1]))
        assert row["test_accuracy"] == f"{summary['test_accuracy']:.4f}" and row["status"] == "finished"
    lines = r.output.splitlines()
    for column in ("lr", "test_accuracy"):  # numbers right-aligned under their header
        end = header.index(column) + len(column)
        assert all(line[end - 1] != " " and line[end] == " " for line in lines), r.output


def test_a_recorded_grid_is_shown_even_where_it_does_not_vary_and_without_one_the_differing_keys(cli_runner, cli_app, sweep_dir, tmp_path):
    copy = tmp_path / "sweep-2"
    shutil.copytree(sweep_dir, copy)
    spec = yaml.safe_load((copy / "sweep.yaml").read_text())
    (copy / "sweep.yaml").write_text(yaml.safe_dump({**spec, "grid": {**GRID, "seed": [0]}}, sort_keys=False))
    header = cli_runner.invoke(cli_app, ["runs", "list", str(copy)]).output.splitlines()[0].split()
    assert header[2:5] == ["optimizer", "lr", "seed"]
    # filtered to one optimizer, the sweep's grid keys still show
    header = cli_runner.invoke(cli_app, ["runs", "list", str(copy), "--where", "optimizer=adam"]).output.splitlines()[0].split()
    assert header[2:5] == ["optimizer", "lr", "seed"]
    (copy / "sweep.yaml").unlink()  # an older sweep: the keys whose values differ
    header = cli_runner.invoke(cli_app, ["runs", "list", str(copy)]).output.splitlines()[0].split()
    assert header[2:4] == ["optimizer", "lr"] and "seed" not in header and "batch_size" not in header
    header = cli_runner.invoke(cli_app, ["runs", "list", str(copy), "--where", "optimizer=adam"]).output.splitlines()[0].split()
    assert header[2] == "lr" and "optimizer" not in header


def test_runs_one_level_down_are_listed_as_folder_slash_run(cli_runner, cli_app, sweep_dir, small_npz, tmp_path):
    from fnn.training.experiment import fit_config as fit

    root = tmp_path / "runs"
    shutil.copytree(sweep_dir, root / "sweep-1")
    fit(FitConfig(dataset=str(small_npz), arch=(784, 4, 10), epochs=1, batch_size=500, optimizer="sgd"), root / "single")
    (root / "empty-folder").mkdir()
    r = cli_runner.invoke(cli_app, ["runs", "list", str(root), "--where", "optimizer=sgd"])
    assert r.exit_code == 0, r.output
    rows, header = table(r.output)
    assert sorted(rows) == ["single", "sweep-1/sgd_lr0.003", "sweep-1/sgd_lr0.01"]
    assert {"lr", "arch", "batch_size"} <= set(header.split())  # the keys these three runs differ in
    assert rows["single"]["arch"] == "784-4-10" and rows["sweep-1/sgd_lr0.01"]["arch"] == "784-8-10"
    # a run folder itself lists that run
    rows, _ = table(cli_runner.invoke(cli_app, ["runs", "list", str(root / "single")]).output)
    assert list(rows) == ["single"]


# ---------------------------------------------------------------- filters


@pytest.mark.parametrize("expr, expected", [
    ("optimizer=adam", ["b", "c"]),
    ("optimizer==adam", ["b", "c"]),
    ("optimizer!=adam", ["a", "d"]),
    ("lr<0.01", ["b", "d"]),           # numbers as numbers: as strings "0.1" < "0.01" is false and "0.003" < "0.01" true
    ("lr<=0.01", ["a", "b", "d"]),
    ("lr>0.01", ["c"]),
    ("lr>=1e-2", ["a", "c"]),
    ("lr=3e-3", ["b", "d"]),
    ("lr = 0.003", ["b", "d"]),
    ("val_accuracy>0.92", ["b", "d"]),   # c has no val_accuracy: never matches
    ("val_accuracy!=0.5", ["a", "b", "d"]),
    ("arch=784-32-10", ["a"]),
    ("arch=784,32,10", ["a"]),
    ("arch!=784,32,10", ["b", "c", "d"]),
    ("standardize=true", ["b"]),
    ("standardize=False", ["a", "c", "d"]),
    ("run>b", ["c", "d"]),               # strings as strings
    ("state=finished", ["a", "b", "c", "d"]),
    ("epochs_done>=1", ["a", "b", "c", "d"]),
    ("fnn_version=0.1.0", []),           # the hand-written summaries hold no version: no run matches
])
def test_where_filters(hand_runs, expr, expected):
    records = tracking.read_records(hand_runs)
    assert names(tracking.filter_records(records, [tracking.parse_where(expr, tracking.fields(records))])) == expected


def test_repeated_where_must_all_hold_and_the_cli_lists_only_the_matches(cli_runner, cli_app, hand_runs):
    r = cli_runner.invoke(cli_app, ["runs", "list", str(hand_runs), "--where", "optimizer=sgd", "--where", "lr<0.01"])
    assert r.exit_code == 0, r.output
    assert list(table(r.output)[0]) == ["d"]
    r = cli_runner.invoke(cli_app, ["runs", "list", str(hand_runs), "--where", "optimizer=rmsprop", "--where", "lr>0"])
    assert r.exit_code == 0 and r.output == f"none of the 4 runs under {hand_runs} match --where optimizer=rmsprop --where 'lr>0'\n"


# ---------------------------------------------------------------- sorting, columns, JSON


def test_sort_ascending_descending_several_keys_and_missing_values_last(hand_runs):
    records = tracking.read_records(hand_runs)
    by = lambda spec: names(tracking.sort_records(records, tracking.parse_sort(spec)))  # noqa: E731
    assert by("val_accuracy") == ["a", "d", "b", "c"]
    assert by("-val_accuracy") == ["b", "d", "a", "c"]  # c (no val_accuracy) last both ways
    assert by("lr") == ["b", "d", "a", "c"] and by("-lr") == ["c", "a", "b", "d"]  # ties keep their order
    assert by("lr,test_accuracy") == ["d", "b", "a", "c"]
    assert by("optimizer,-run") == ["c", "b", "d", "a"]


def test_cli_sort_columns_and_json(cli_runner, cli_app, hand_runs):
    r = cli_runner.invoke(cli_app, ["runs", "list", str(hand_runs), "--sort", "-val_accuracy", "--columns", "optimizer,lr,val_accuracy"])
    assert r.exit_code == 0, r.output
    assert r.output.splitlines() == ["run  optimizer     lr  val_accuracy",
                                     "b    adam       0.003        0.9500",
                                     "d    sgd        0.003        0.9300",
                                     "a    sgd         0.01        0.9000",
                                     "c    adam         0.1             -"]
    r = cli_runner.invoke(cli_app, ["runs", "list", str(hand_runs), "--where", "lr<0.1", "--sort=-test_accuracy", "--json"])
    assert r.exit_code == 0, r.output
    records = json.loads(r.output)
    assert names(records) == ["b", "d", "a"]
    assert records[0] == tracking.read_record(hand_runs / "b")
    assert records[0]["standardize"] is True and records[0]["test_accuracy"] == 0.94 and records[0]["arch"] == "784-128-64-10"
    r = cli_runner.invoke(cli_app, ["runs", "list", str(hand_runs), "--where", "optimizer=sgd", "--json", "--columns", "lr,val_accuracy"])
    assert json.loads(r.output) == [{"run": "a", "lr": 0.01, "val_accuracy": 0.9}, {"run": "d", "lr": 0.003, "val_accuracy": 0.93}]


# ---------------------------------------------------------------- bad queries


@pytest.mark.parametrize("args, needles", [
    (["--where", "learning_rate<0.01"], ["--where learning_rate<0.01: unknown key 'learning_rate'; did you mean 'lr'?"]),
    (["--where", "val_acc>0.9"], ["unknown key 'val_acc'; did you mean 'val_accuracy'?"]),
    (["--where", "num_epochs=3"], ["unknown key 'num_epochs'; did you mean 'epochs'?"]),
    (["--where", "zzzz=1"], ["unknown key 'zzzz'; valid keys: run, path, state"]),
    (["--sort", "-val_acuracy"], ["--sort -val_acuracy: unknown key 'val_acuracy'; did you mean 'val_accuracy'?"]),
    (["--columns", "optimizer,lrr"], ["--columns optimizer,lrr: unknown key 'lrr'; did you mean 'lr'?"]),
    (["--where", "lr<<0.1"], ["--where lr<<0.1: not KEY=VALUE, KEY!=VALUE, KEY<V"]),
    (["--where", "=3"], ["--where =3: not KEY=VALUE"]),
    (["--where", "lr="], ["--where lr=: not KEY=VALUE"]),
    (["--where", "lr"], ["--where lr: not KEY=VALUE"]),
    (["--where", "lr=>0.1"], ["--where lr=>0.1: not KEY=VALUE"]),
    (["--where", "lr<fast"], ["--where lr<fast: lr holds numbers; 'fast' is not one"]),
    (["--where", "arch>784,10"], ["--where arch>784,10: arch compares with = and != only"]),
    (["--sort", "-"], ["--sort -: not KEY, -KEY"]),
    (["--sort", "lr,"], ["--sort lr,: not KEY, -KEY"]),
    (["--columns", "lr,,seed"], ["--columns lr,,seed: not a comma-separated list of keys"]),
])
def test_bad_queries_are_one_line_exit_2(cli_runner, cli_app, hand_runs, args, needles):
    one_line(cli_runner.invoke(cli_app, ["runs", "list", str(hand_runs), *args]), 2, "Error: ", *needles)


def test_unknown_keys_are_refused_with_no_runs_at_all(cli_runner, cli_app, tmp_path):
    one_line(cli_runner.invoke(cli_app, ["runs", "list", str(tmp_path), "--where", "learning_rate<1"]), 2, "did you mean 'lr'?")
    r = cli_runner.invoke(cli_app, ["runs", "list", str(tmp_path), "--where", "lr<1"])
    assert r.exit_code == 0 and "no runs under" in r.output


# ---------------------------------------------------------------- damaged runs


def test_damaged_runs_are_listed_as_damaged_and_match_no_value_filter(cli_runner, cli_app, hand_runs, tmp_path):
    hand_runs = shutil.copytree(hand_runs, tmp_path / "runs")
    (hand_runs / "a" / runs.SUMMARY).write_bytes(b"{not json")
    (hand_runs / "b" / runs.CONFIG).write_text("arch: [784, 10\n")
    (hand_runs / "d" / runs.CONFIG).write_text("lr: fast\n")
    records = {r["run"]: r for r in tracking.read_records(hand_runs)}
    assert [records[n]["state"] for n in "abcd"] == ["damaged", "damaged", "finished", "damaged"]
    assert set(records["b"]) == {"run", "path", "state", "status"} and "config.yaml" in records["b"]["status"]
    assert "'lr' holds 'fast'" in records["d"]["status"]

    r = cli_runner.invoke(cli_app, ["runs", "list", str(hand_runs), "--sort", "-lr"])
    assert r.exit_code == 0 and "Traceback" not in r.output, r.output
    lines = r.output.splitlines()[1:]
    assert [ln.split()[0] for ln in lines] == ["c", "a", "b", "d"]  # the damaged, without lr, last
    assert lines[1].startswith("a    (damaged: ") and "summary" in lines[1]
    assert lines[2].startswith("b    (damaged: ") and "not valid YAML" in lines[2]
    r = cli_runner.invoke(cli_app, ["runs", "list", str(hand_runs), "--where", "lr>0"])
    assert list(table(r.output)[0]) == ["c"]
    r = cli_runner.invoke(cli_app, ["runs", "list", str(hand_runs), "--where", "state=damaged", "--json"])
    assert names(json.loads(r.output)) == ["a", "b", "d"]
