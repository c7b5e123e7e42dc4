"""Issue 17, "Files and folders": output targets, config files, run folders, sweeps and damaged run files.

- An output path that names a pipe, socket, device or symbolic link is refused (one line, exit 2) and left
  as it was: ``atomic_write`` used to rename over it (as root, a device node was replaced by a file).
- Config files are read only when they are regular files of at most 64 KiB: a FIFO hung ``--config`` and
  ``fit --resume``, ``/dev/zero`` grew memory without end, a 50 MB ``config.yaml`` took ``evaluate`` 19 s.
- A folder holding a run is refused unless resumed or ``--overwrite``; a run folder is locked while a
  process trains in it (a second one is refused naming the holder's pid); the lock dies with its process.
- Sweep run names are unique, safe folder names; a grid is counted before it is expanded.
- Damaged ``metrics.jsonl``, ``diagnostics.jsonl``, ``summary.json`` and ``config.yaml`` are tolerated or named.
- SIGTERM during ``fnn-cli fit`` checkpoints and exits 143, also while it downloads its dataset.

Every test here failed before these changes (the first SIGTERM test guards behaviour that already held).
Subprocesses that used to hang or eat memory run under a timeout and an address-space limit.
"""

import json
import os
import re
import resource
import shutil
import signal
import socket
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from cli_helpers import one_line
from click.testing import CliRunner
from dataset_files import Mirror, mnist_gz, no_local_copies

from fnn import serialization
from fnn.training import runs, sweep
from fnn.training.config import ConfigError, FitConfig
from fnn.training.experiment import fit_config
from fnn.tree import tree_equal
from fnn_cli.main import cli

ROOT = Path(__file__).resolve().parents[1]
FNN_CLI = [sys.executable, "-c", "from fnn_cli.main import cli; cli()"]
MEMORY_LIMIT = 3 << 30  # address space of the subprocesses that once grew without end
CONFIG_LIMIT = 64 << 10  # the promised limit on config files (fnn.training.config.MAX_CONFIG_BYTES)


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def fit_args(small_npz, out, *extra):
    return ["fit", "--dataset", small_npz, "--arch", "784,8,10", "--epochs", "2", "--out", out, "-q", *extra]


def bounded(args, timeout=60, **kwargs):
    """Run ``fnn-cli args`` in a subprocess under a timeout and an address-space limit; (returncode, stderr)."""
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))

    p = subprocess.run(FNN_CLI + [str(a) for a in args], capture_output=True, text=True, timeout=timeout, env=env,
                       preexec_fn=limit, **kwargs)
    return p.returncode, p.stderr


def stderr_line(stderr):
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


def snapshot(folder) -> dict:
    """Every file under ``folder``: relative path -> bytes."""
    folder = Path(folder)
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def finished(tmp_path_factory, small_npz):
    """A finished 2-epoch run (784-8-10); tests damage copies of it (:func:`copy_run`)."""
    out = tmp_path_factory.mktemp("runs") / "finished"
    r = invoke(*fit_args(small_npz, out))
    assert r.exit_code == 0, r.output
    return out


def copy_run(finished, tmp_path, name="run") -> Path:
    dest = tmp_path / name
    shutil.copytree(finished, dest)
    return dest


# ---------------------------------------------------------------- output targets


def special(path: Path, kind: str) -> Path:
    """Make ``path`` a ``kind`` of entry fnn must not replace; returns the path to give (``/dev/null`` for a
    device when not root, where device nodes cannot be made)."""
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "socket":
        here = os.getcwd()
        os.chdir(path.parent)  # a socket's address is limited to about 100 characters: bind a relative name
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.bind(path.name)
        finally:
            os.chdir(here)
    elif kind == "device":
        if os.geteuid() != 0:
            return Path("/dev/null")
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # a /dev/null of our own
    elif kind == "symlink":
        victim = path.parent / f"victim-of-{path.name}"
        victim.write_text("keep me")
        os.symlink(victim, path)
    elif kind == "folder":
        path.mkdir()
    return path


def kind_of(path: Path) -> int:
    return stat.S_IFMT(os.lstat(path).st_mode)


def untouched(path: Path, kind: str, before: int):
    assert kind_of(path) == before, f"{path} was replaced"
    if kind == "symlink":
        assert (path.parent / f"victim-of-{path.name}").read_text() == "keep me"


KINDS = ["fifo", "socket", "device", "symlink"]


@pytest.mark.parametrize("kind", KINDS + ["folder"])
def test_atomic_write_refuses_a_target_that_is_not_a_regular_file(tmp_path, kind):
    target = special(tmp_path / "out.bin", kind)
    before = kind_of(target)
    try:
        serialization.atomic_write(target, lambda f: f.write(b"data"))
        error = None
    except Exception as e:  # noqa: BLE001 - which exception is checked below, once the target is
        error = e
    untouched(target, kind, before)
    assert isinstance(error, serialization.OutputError) and str(target) in str(error), repr(error)
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []  # nothing was begun
    with pytest.raises(serialization.OutputError):
        serialization.open_append(target)
    untouched(target, kind, before)
    regular = tmp_path / "regular.bin"
    regular.write_bytes(b"old")
    serialization.atomic_write(regular, lambda f: f.write(b"new"))  # a regular file is still replaced
    assert regular.read_bytes() == b"new"


@pytest.mark.parametrize("kind", KINDS)
def test_plot_out_refuses_a_pipe_socket_device_or_link_and_leaves_it(finished, tmp_path, kind):
    target = special(tmp_path / "curves.png", kind)
    before = kind_of(target)
    one_line(invoke("plot", finished, "--out", target), 2, target)
    untouched(target, kind, before)


def test_a_link_planted_in_a_run_folder_is_not_written_through(finished, tmp_path):
    run = copy_run(finished, tmp_path)
    curves = special(run / "training_curves.png", "symlink")  # plot's default target
    one_line(invoke("plot", run), 2, curves, "symbolic link")
    untouched(curves, "symlink", stat.S_IFLNK)
    (run / runs.LOG).unlink()
    log = special(run / runs.LOG, "symlink")  # appended to by every epoch of a resumed run
    kept = snapshot(run)
    one_line(invoke("fit", "--resume", run, "--epochs", "3", "-q"), 2, log, "symbolic link")
    untouched(log, "symlink", stat.S_IFLNK)
    assert snapshot(run) == kept


@pytest.mark.parametrize("command", ["fit", "evaluate", "compare", "sweep"])
def test_every_out_option_refuses_a_pipe_in_one_line(finished, small_npz, tmp_path, command):
    fifo = special(tmp_path / "out", "fifo")
    spec = tmp_path / "grid.yaml"
    spec.write_text(f"base: {{dataset: {small_npz}, arch: '784,8,10', epochs: 1}}\ngrid: {{seed: [0]}}\n")
    args = {"fit": fit_args(small_npz, fifo), "evaluate": ["evaluate", finished, "--no-pictures", "--out", fifo],
            "compare": ["compare", finished, "--out", fifo], "sweep": ["sweep", spec, "--out", fifo]}[command]
    one_line(invoke(*args), 2, fifo, "pipe")
    assert kind_of(fifo) == stat.S_IFIFO


def test_a_download_is_never_renamed_over_a_pipe_in_the_cache(tmp_path, monkeypatch):
    no_local_copies(monkeypatch, tmp_path)
    cache = tmp_path / "xdg" / "fnn" / "mnist"
    cache.mkdir(parents=True)
    fifo = special(cache / "train-images-idx3-ubyte.gz", "fifo")
    with Mirror() as mirror:
        mirror.serve("m", mnist_gz())
        line = one_line(invoke("data", "download", "mnist", "--mirror", mirror.url("m")), 1, fifo, "pipe")
        assert mirror.hits == [], line  # refused before any request
    assert kind_of(fifo) == stat.S_IFIFO


# ---------------------------------------------------------------- config files


@pytest.mark.parametrize("kind", ["fifo", "/dev/zero"])
def test_a_config_that_never_ends_is_refused_at_once(small_npz, tmp_path, kind):
    config = special(tmp_path / "c.yaml", "fifo") if kind == "fifo" else Path(kind)
    t0 = time.perf_counter()
    code, err = bounded(fit_args(small_npz, tmp_path / "run") + ["--config", config])
    assert code == 2, err
    assert str(config) in stderr_line(err) and "not a regular file" in err
    assert time.perf_counter() - t0 < 30 and not (tmp_path / "run").exists()


def test_a_sweep_file_that_is_a_pipe_is_refused_at_once(tmp_path):
    fifo = special(tmp_path / "grid.yaml", "fifo")
    code, err = bounded(["sweep", fifo, "--out", tmp_path / "sw"])
    assert code == 2 and str(fifo) in stderr_line(err), err
    assert not (tmp_path / "sw").exists()


def test_resume_with_a_pipe_for_config_yaml_is_refused_at_once(finished, tmp_path):
    run = copy_run(finished, tmp_path)
    (run / runs.CONFIG).unlink()
    special(run / runs.CONFIG, "fifo")
    code, err = bounded(["fit", "--resume", run, "--epochs", "3", "-q"])
    assert code == 2 and str(run / runs.CONFIG) in stderr_line(err), err


def test_config_files_over_64_kib_are_refused_before_parsing(finished, small_npz, tmp_path):
    big = tmp_path / "big.yaml"
    big.write_text("epochs: 1\n#" + "x" * CONFIG_LIMIT + "\n")
    one_line(invoke("fit", "--config", big, "--dataset", small_npz, "--arch", "784,8,10", "--out", tmp_path / "a"), 2,
             big, "64 KiB")
    just = tmp_path / "just.yaml"  # under the limit: read as before
    just.write_text("epochs: 1\n#" + "x" * (CONFIG_LIMIT - 100) + "\n")
    r = invoke("fit", "--config", just, "--dataset", small_npz, "--arch", "784,8,10", "--out", tmp_path / "b", "-q")
    assert r.exit_code == 0, r.output

    run = copy_run(finished, tmp_path)
    with open(run / runs.CONFIG, "a") as f:  # a config.yaml of 50 MB, which took evaluate 19 s
        f.write("#" + "x" * (50 << 20) + "\n")
    t0 = time.perf_counter()
    one_line(invoke("evaluate", run, "--no-pictures"), 2, run / runs.CONFIG, "64 KiB")
    assert time.perf_counter() - t0 < 5
    listed = invoke("runs", "list", tmp_path)
    assert listed.exit_code == 0 and "(damaged: config file" in listed.output and "64 KiB" in listed.output, listed.output
    shown = invoke("runs", "show", run)
    assert shown.exit_code == 0 and "(cannot be read: larger than 64 KiB" in shown.output, shown.output
    from fnn.training import config

    assert config.MAX_CONFIG_BYTES == CONFIG_LIMIT


def test_a_config_yaml_that_is_not_utf8_is_named(finished, tmp_path):
    run = copy_run(finished, tmp_path)
    (run / runs.CONFIG).write_bytes(b"epochs: 2\n\xff\xfe\n")
    r = invoke("runs", "show", run)
    assert r.exit_code == 0 and "Traceback" not in r.output, r.output
    assert "config:\n(cannot be shown: not UTF-8 text" in r.output and "epoch   2" in r.output
    listed = invoke("runs", "list", tmp_path)
    assert listed.exit_code == 0 and "not UTF-8" in listed.output, listed.output
    one_line(invoke("evaluate", run, "--no-pictures"), 2, run / runs.CONFIG, "not UTF-8")
    with pytest.raises(ConfigError, match="not UTF-8 text .byte 0xff at offset 10"):
        from fnn.training.config import read_mapping

        read_mapping(run / runs.CONFIG)


# ---------------------------------------------------------------- run folders: never overwritten, never mixed


def test_a_folder_holding_a_run_is_refused_unless_overwrite(finished, small_npz, tmp_path):
    run = copy_run(finished, tmp_path)
    (run / runs.DIAGNOSTICS).write_text("{}\n")  # an old run's file the new run would not write
    (run / "notes.txt").write_text("mine")
    kept = snapshot(run)
    one_line(invoke(*fit_args(small_npz, run, "--seed", "1")), 2, run, "--overwrite", "--resume")
    with pytest.raises(runs.RunExistsError, match="already holds a run .finished."):
        fit_config(FitConfig(dataset=str(small_npz), arch=(784, 8, 10), epochs=1, seed=1), run)
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    one_line(invoke(*fit_args(tmp_path / "bad.npz", run, "--overwrite")), 2, "bad.npz")  # the data load first: all kept
    one_line(invoke("fit", "--resume", run, "--overwrite"), 2, "--overwrite")
    assert snapshot(run) == kept

    r = invoke(*fit_args(small_npz, run, "--seed", "1", "--overwrite"))
    assert r.exit_code == 0, r.output
    assert runs.read_summary(run)["seed"] == 1 and [m["epoch"] for m in runs.read_metrics(run)] == [1, 2]
    assert not (run / runs.DIAGNOSTICS).exists() and (run / "notes.txt").read_text() == "mine"
    old = serialization.load_model(finished / runs.MODEL).params
    assert not tree_equal(serialization.load_model(run / runs.MODEL).params, old)


GATED = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from fnn.training.config import FitConfig
    from fnn.training.experiment import fit_config

    class Gate:  # holds training after epoch 1 until the file sys.argv[3] exists (the test never makes it)
        def on_epoch_end(self, epoch, logs):
            while not Path(sys.argv[3]).exists():
                time.sleep(0.01)

    fit_config(FitConfig(dataset=sys.argv[1], arch=(784, 8, 10), epochs=3), sys.argv[2], callbacks=[Gate()])
""")


def test_a_run_folder_is_locked_while_training_and_the_lock_dies_with_a_kill(small_npz, tmp_path):
    ref, run = tmp_path / "ref", tmp_path / "run"
    fit_config(FitConfig(dataset=str(small_npz), arch=(784, 8, 10), epochs=3), ref)
    proc = subprocess.Popen([sys.executable, "-c", GATED, str(small_npz), str(run), str(tmp_path / "go")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        end = time.monotonic() + 60
        while not ((run / runs.METRICS).is_file() and (run / runs.METRICS).read_text().count("\n") >= 1):
            assert proc.poll() is None and time.monotonic() < end, proc.stderr.read()
            time.sleep(0.01)
        holder = f"pid {proc.pid}"
        one_line(invoke(*fit_args(small_npz, run, "--seed", "1")), 2, run, "in use", holder)
        one_line(invoke(*fit_args(small_npz, run, "--seed", "1", "--overwrite")), 2, run, "in use", holder)
        one_line(invoke("fit", "--resume", run, "-q"), 2, run, "in use", holder)
        with pytest.raises(runs.RunLockedError, match=holder):
            fit_config(FitConfig(dataset=str(small_npz), arch=(784, 8, 10), epochs=3), run, resume=True)
        assert [m["epoch"] for m in runs.read_metrics(run)] == [1]  # nobody else's epochs mixed in
    finally:
        proc.kill()
        proc.wait()
    r = invoke("fit", "--resume", run, "-q")  # the kill released the lock
    assert r.exit_code == 0, r.output
    assert [m["epoch"] for m in runs.read_metrics(run)] == [1, 2, 3]
    assert tree_equal(serialization.load_model(run / runs.MODEL).params, serialization.load_model(ref / runs.MODEL).params)
    assert not (run / runs.LOCK).exists()  # a run that ends removes its lock file


def test_a_run_killed_before_it_wrote_config_yaml_resumes_from_its_checkpoint(finished, tmp_path):
    run = copy_run(finished, tmp_path)
    (run / runs.CONFIG).unlink()  # fnn.fit writes the first checkpoint, then the run folder's config.yaml
    r = invoke("fit", "--resume", run, "--epochs", "3", "-q")
    assert r.exit_code == 0, r.output
    assert [m["epoch"] for m in runs.read_metrics(run)] == [1, 2, 3] and (run / runs.CONFIG).is_file()


def test_the_lock_in_one_process_names_its_holder_and_is_released(small_npz, tmp_path):
    with runs.lock(tmp_path):
        with pytest.raises(runs.RunLockedError, match=re.escape(f"{tmp_path} is in use: another process (pid {os.getpid()} on ")):
            with runs.lock(tmp_path):
                pass
        with pytest.raises(runs.RunLockedError):
            fit_config(FitConfig(dataset=str(small_npz), arch=(784, 8, 10), epochs=1), tmp_path)
    assert not (tmp_path / runs.LOCK).exists() and list(tmp_path.iterdir()) == []
    with runs.lock(tmp_path):  # free again
        assert (tmp_path / runs.LOCK).read_text().startswith(f"pid {os.getpid()} on ")


# ---------------------------------------------------------------- sweeps


def test_sweep_run_names_are_unique_safe_and_bounded():
    values = ["d/x_y.npz", "d_x/y.npz", "..", ".", ".hidden", "A", "a", "x" * 300, "x" * 300 + "y", "results.md",
              "sp ace", "é", "a\\b", "-"]
    names = [name for name, _ in sweep.expand({"grid": {"dataset": values}})]
    assert len(names) == len(values) == len({n.lower() for n in names}), names
    for name in names:
        assert name not in (".", "..") and not name.startswith(".") and "/" not in name and "\\" not in name, name
        assert 0 < len(name) <= sweep.MAX_NAME and name.isascii() and name.lower() not in sweep.RESERVED, name
    assert names[:2] == ["d_x_y.npz", "d_x_y.npz-2"]


def test_a_grid_is_counted_before_it_is_expanded(tmp_path):
    with pytest.raises(ConfigError, match="sweep grid has 10,100 combinations .100 x 101.; the limit is 10,000"):
        sweep.expand({"grid": {"seed": list(range(100)), "epochs": list(range(1, 102))}})
    assert len(sweep.expand({"grid": {"seed": list(range(100)), "epochs": list(range(1, 101))}})) == 10_000
    keys = ["seed", "epochs", "batch_size", "warmup", "lr", "l1", "l2", "dropout", "min_delta", "lr_floor"]
    spec = tmp_path / "huge.yaml"
    spec.write_text("grid:\n" + "".join(f"  {k}: {[i / 100 if k in ('lr', 'dropout', 'lr_floor') else i + 1 for i in range(10)]}\n"
                                         for k in keys))
    t0 = time.perf_counter()
    code, err = bounded(["sweep", spec, "--out", tmp_path / "sw"])
    assert code == 2 and "10,000,000,000 combinations" in stderr_line(err), err
    assert time.perf_counter() - t0 < 30 and not (tmp_path / "sw").exists()


def test_colliding_names_train_apart_and_a_sweep_folder_is_not_reused(small_npz, tmp_path, monkeypatch):
    import numpy as np

    monkeypatch.chdir(tmp_path)
    data = np.load(small_npz)
    for i, rel in enumerate(["d/x_y.npz", "d_x/y.npz"]):
        Path(rel).parent.mkdir()
        np.savez(rel, x=data["x"][i * 500:(i + 1) * 500], y=data["y"][i * 500:(i + 1) * 500],
                 x_test=data["x_test"][:100], y_test=data["y_test"][:100])
    Path("grid.yaml").write_text("base: {arch: '784,8,10', epochs: 1}\ngrid: {dataset: [d/x_y.npz, d_x/y.npz]}\n")
    r = invoke("sweep", "grid.yaml", "--out", "sw")
    assert r.exit_code == 0, r.output
    rows = json.loads(Path("sw/results.json").read_text())
    assert sorted(row["name"] for row in rows) == ["d_x_y.npz", "d_x_y.npz-2"] and all(row["status"] == "done" for row in rows)
    trained_on = {name: runs.read_summary(Path("sw") / name)["dataset_files"] for name in ("d_x_y.npz", "d_x_y.npz-2")}
    assert trained_on["d_x_y.npz"] != trained_on["d_x_y.npz-2"]
    assert [m["epoch"] for m in runs.read_metrics("sw/d_x_y.npz")] == [1]

    kept = snapshot("sw")
    one_line(invoke("sweep", "grid.yaml", "--out", "sw"), 2, "sw", "already holds a sweep")
    assert snapshot("sw") == kept


# ---------------------------------------------------------------- damaged run files


@pytest.mark.parametrize("line", ["{}", '{"epoch": 1}', '{"epoch": 1, "loss": null, "accuracy": null, "val_accuracy": null}',
                                  '{"epoch": null, "val_loss": 1.5, "lr": null}'])
def test_metrics_lines_without_figures_are_shown_as_missing(finished, tmp_path, line):
    run = copy_run(finished, tmp_path)
    (run / runs.METRICS).write_text(f"{line}\n{line}\n")
    shown = invoke("runs", "show", run)
    assert shown.exit_code == 0 and "Traceback" not in shown.output, shown.output
    assert shown.output.count("  loss n/a  acc n/a") == 2 and ("epoch   2" in shown.output) == ('"epoch": 1' not in line)
    plotted = invoke("plot", run)
    assert plotted.exit_code == 0 and "2 epochs (last: loss n/a" in plotted.output, plotted.output
    assert (run / "training_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    evaluated = invoke("evaluate", run, "--no-pictures")  # the pictures of such metrics: the test below
    assert evaluated.exit_code == 0, evaluated.output


def test_partial_metrics_are_drawn_and_damaged_diagnostics_are_named(small_npz, tmp_path):
    from fnn.evaluation import plotting
    from fnn.training import diagnostics

    rising = [{"epoch": i, "loss": 9.0 - i, "val_loss": float(i)} for i in range(1, 7)]  # overfitting, no accuracy
    no_loss = [{k: v for k, v in r.items() if k != "loss"} for r in rising]
    assert diagnostics.overfitting_epoch(rising) == 1 and diagnostics.overfitting_epoch(no_loss) is None
    for i, history in enumerate([rising, no_loss, [{}, {"epoch": None, "val_loss": 1.0}]]):  # evaluate draws it (plot: above)
        path = plotting.overfitting_curves(history, tmp_path / f"overfitting-{i}.png")
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    run = tmp_path / "diag"
    assert invoke(*fit_args(small_npz, run, "--diagnostics")).exit_code == 0
    (run / runs.METRICS).write_text("".join(json.dumps(r) + "\n" for r in rising))
    assert invoke("evaluate", run, "--no-pictures").exit_code == 0
    with open(run / runs.DIAGNOSTICS, "a") as f:
        f.write('{"epoch": 3}\n{}\n')
    one_line(invoke("evaluate", run, "--no-pictures"), 2, run / runs.DIAGNOSTICS, "line 4", "'probe'")


def test_null_figures_in_a_summary_hide_nothing_in_runs_list(finished, small_npz, tmp_path):
    root = tmp_path / "root"
    run = copy_run(finished, root, "nulls")
    summary = json.loads((run / runs.SUMMARY).read_text())
    summary.update(dataset=None, test_accuracy=None, epochs=None, train_seconds=None)
    (run / runs.SUMMARY).write_text(json.dumps(summary))
    import numpy as np

    data = np.load(small_npz)
    np.savez(tmp_path / "notest.npz", x=data["x"][:500], y=data["y"][:500])  # fnn writes test_accuracy null for it
    assert invoke("fit", "--dataset", tmp_path / "notest.npz", "--arch", "784,8,10", "--epochs", "1", "--out",
                  root / "notest", "-q").exit_code == 0
    listed = invoke("runs", "list", root, "--json")
    assert listed.exit_code == 0, listed.output
    records = {r["run"]: r for r in json.loads(listed.output)}
    assert records["nulls"]["dataset"] == str(small_npz)  # the config's, not the summary's null
    assert records["nulls"]["epochs_done"] == 2  # the metrics count, not the summary's null
    assert records["notest"]["test_accuracy"] is None and records["notest"]["epochs_done"] == 1
    table = invoke("runs", "list", root)
    assert table.exit_code == 0 and "Traceback" not in table.output
    header, *lines = [line.split() for line in table.output.splitlines()]
    nulls = next(cells for cells in lines if cells[0] == "nulls")
    assert nulls[header.index("dataset")] == str(small_npz) and nulls[header.index("epochs_done")] == "2", table.output
    for args in (["runs", "show", run], ["compare", run, root / "notest", "--out", tmp_path / "cmp"]):
        r = invoke(*args)
        assert r.exit_code == 0 and "Traceback" not in r.output, r.output


# ---------------------------------------------------------------- SIGTERM


def test_sigterm_mid_epoch_checkpoints_exits_143_and_resume_is_bit_identical(small_npz, tmp_path):
    args = ["fit", "--dataset", str(small_npz), "--arch", "784,32,10", "--epochs", "3", "--batch-size", "8", "--dropout", "0.1",
            "--threads", "1", "-q", "--out"]
    assert invoke(*args, tmp_path / "ref").exit_code == 0
    run = tmp_path / "run"
    proc = subprocess.Popen(FNN_CLI + args + [str(run)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        end = time.monotonic() + 60
        while not ((run / runs.METRICS).is_file() and (run / runs.METRICS).read_text().count("\n") >= 1):
            assert proc.poll() is None and time.monotonic() < end, proc.communicate()
            time.sleep(0.005)
        proc.send_signal(signal.SIGTERM)  # inside epoch 2
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 143, err
    assert f"fnn-cli fit --resume {run}" in err and "Traceback" not in err
    assert runs.run_status(run)["state"] == "interrupted"
    r = invoke("fit", "--resume", run, "-q")
    assert r.exit_code == 0, r.output
    assert [m["epoch"] for m in runs.read_metrics(run)] == [1, 2, 3]
    assert tree_equal(serialization.load_model(run / runs.MODEL).params,
                      serialization.load_model(tmp_path / "ref" / runs.MODEL).params)


DOWNLOADING_FIT = textwrap.dedent("""
    import sys
    import attrs
    from pathlib import Path
    from fnn.datasets import registry, sources

    sources.SYSTEM_ROOT = sources.PACKAGE_ROOT = Path(sys.argv[1]) / "nowhere"  # only the mirror has MNIST
    registry.REGISTRY["mnist"] = attrs.evolve(registry.REGISTRY["mnist"], mirrors=(sys.argv[2],))
    from fnn_cli.main import cli

    cli(["fit", "--dataset", "mnist", "--arch", "784,8,10", "--epochs", "1", "--out", sys.argv[3]])
""")


def test_sigterm_while_fit_downloads_its_dataset_exits_143(tmp_path):
    cache = tmp_path / "xdg" / "fnn" / "mnist"
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "xdg"), "http_proxy": "", "https_proxy": ""}
    env.pop("FNN_DATA_DIR", None)
    with Mirror() as mirror:
        for name, body in mnist_gz().items():
            mirror.routes[f"/m/{name}"] = [("drip", body, 0.05)]
        proc = subprocess.Popen([sys.executable, "-c", DOWNLOADING_FIT, str(tmp_path), mirror.url("m"), str(tmp_path / "run")],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            end = time.monotonic() + 60
            while not (cache.is_dir() and any(p.name.endswith(".part") for p in cache.iterdir())):
                assert proc.poll() is None and time.monotonic() < end, proc.communicate()
                time.sleep(0.01)
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=60)
        finally:
            proc.kill()
    assert proc.returncode == 143, err
    assert err.strip().splitlines()[-1] == "Error: terminated by SIGTERM during a download; its partial file was removed"
    assert "Traceback" not in err and list(cache.iterdir()) == [] and not (tmp_path / "run").exists()

