"""Sweeps on a Dask cluster (``fnn-cli sweep --scheduler``): the same runs as a local sweep, bit for bit.

Dask is imported at the top on purpose: CI installs it with the ``test`` extra,
and a missing Dask fails these tests rather than skipping them.
"""

import io as _io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dask
import distributed
import pytest

from fnn import serialization
from fnn.evaluation import compare
from fnn.training import runs, sweep
from fnn.training.dask import cluster_runner, local_cluster
from fnn.tree import tree_equal
from fnn_cli.sweep import SweepProgress

ROOT = Path(__file__).resolve().parents[1]
TIMINGS = {"seconds", "cpu_seconds", "peak_rss_mb", "train_seconds"}


def write_spec(path, dataset, archs, epochs=2, batch_size=64, optimizers=("sgd", "adam")):
    path.write_text(f"base: {{dataset: {dataset}, epochs: {epochs}, batch_size: {batch_size}}}\n"
                    f"grid:\n  arch: {list(archs)}\n  optimizer: {list(optimizers)}\n")
    return path


def untimed(record):
    return {k: v for k, v in record.items() if k not in TIMINGS}


@pytest.fixture(scope="module")
def cluster():
    """A real two-process LocalCluster on loopback, no dashboard."""
    with local_cluster(2) as c:
        yield c


def test_local_cluster_sweep_is_bit_identical_to_a_sequential_local_sweep(cli_runner, cli_app, small_npz, tmp_path, monkeypatch):
    spec = write_spec(tmp_path / "s.yaml", small_npz, ["784,16,10", "784,32,10"])
    local = sweep.run_sweep(sweep.load_sweep(spec), tmp_path / "seq", jobs=1)

    def not_here(*args, **kwargs):
        raise AssertionError("a --scheduler sweep trained in the client process")

    monkeypatch.setattr(sweep, "run_one", not_here)  # the workers are other processes: they train with the real one
    r = cli_runner.invoke(cli_app, ["sweep", str(spec), "--scheduler", "local:2", "--out", str(tmp_path / "dask")])
    assert r.exit_code == 0, r.output
    rows = json.loads((tmp_path / "dask" / "results.json").read_text())
    assert len(rows) == 4 and all(row["status"] == "done" for row in rows)
    assert [untimed(row) for row in rows] == [untimed(row) for row in local]
    for row in rows:
        mine, theirs = tmp_path / "dask" / row["name"], tmp_path / "seq" / row["name"]
        assert tree_equal(serialization.load_model(mine / runs.MODEL).params,
                          serialization.load_model(theirs / runs.MODEL).params), row["name"]
        assert sorted(p.name for p in mine.iterdir()) == sorted(p.name for p in theirs.iterdir())
        assert (mine / runs.CONFIG).read_bytes() == (theirs / runs.CONFIG).read_bytes()
        assert [untimed(m) for m in runs.read_metrics(mine)] == [untimed(m) for m in runs.read_metrics(theirs)]
        assert untimed(runs.read_summary(mine)) == untimed(runs.read_summary(theirs))
    for name in ("results.md", compare.CURVES_FILE, compare.SCATTER_FILE):
        assert (tmp_path / "dask" / name).stat().st_size > 0 and (tmp_path / "seq" / name).is_file()
    # progress, piped: one plain line per finished run and one best-so-far line, no carriage returns
    assert "\r" not in r.output and "\x1b" not in r.output
    assert r.output.count("best so far:") == 4 and "[4/4]" in r.output
    assert "local Dask cluster of 2 worker processes" in r.output


def test_a_failing_configuration_is_reported_and_the_others_finish(cli_runner, cli_app, cluster, small_npz, tmp_path):
    spec = write_spec(tmp_path / "s.yaml", small_npz, ["784,16,10", "100,10"], epochs=1)
    with distributed.Client(cluster) as client, distributed.get_task_stream(client) as stream:
        r = cli_runner.invoke(cli_app, ["sweep", str(spec), "--scheduler", cluster.scheduler_address, "--out", str(tmp_path / "sw")])
    assert r.exit_code == 0, r.output
    rows = json.loads((tmp_path / "sw" / "results.json").read_text())
    assert [(row["name"], row["status"]) for row in rows[2:]] == [("100-10_adam", "failed"), ("100-10_sgd", "failed")]
    assert all(row["status"] == "done" and (tmp_path / "sw" / row["name"] / runs.MODEL).is_file() for row in rows[:2])
    assert all("100 inputs" in row["error"] and "784 features" in row["error"] for row in rows[2:])
    table = (tmp_path / "sw" / "results.md").read_text()
    assert table.count("| failed |") == 2 and table.count("| done |") == 2
    assert "FAILED: ConfigError: arch 100-10" in r.output
    assert not (tmp_path / "sw" / "100-10_sgd").exists(), "a config that fails validation leaves no folder, as locally"
    ran = {t["key"] for t in stream.data if "fnn-sweep" in str(t["key"])}
    workers = {t["worker"] for t in stream.data if "fnn-sweep" in str(t["key"])}
    assert len(ran) == 4 and workers <= set(cluster.scheduler_info["workers"]), "every configuration ran on the cluster"


def test_local_cluster_listens_on_loopback_and_keeps_malloc_adaptive(cluster):
    addresses = [cluster.scheduler_address, *cluster.scheduler_info["workers"]]
    assert len(addresses) == 3 and all(a.startswith("tcp://127.0.0.1:") for a in addresses)
    with distributed.Client(cluster) as client:  # Dask's MALLOC_TRIM_THRESHOLD_ halves training speed (fnn.training.dask)
        assert set(client.run(os.environ.get, "MALLOC_TRIM_THRESHOLD_").values()) == {None}


def test_a_killed_worker_loses_no_configuration(cluster, small_npz, tmp_path):
    # long enough tasks (about 2 s each) that the kill lands while one is running
    spec = write_spec(tmp_path / "s.yaml", small_npz, ["784,16,10", "784,32,10"], epochs=12, batch_size=8)
    configs = sweep.load_sweep(spec)
    killed = {}

    def executing(dask_worker):
        return [str(k) for k, ts in dask_worker.state.tasks.items() if ts.state == "executing"]

    def kill_a_busy_worker(row, done, total):
        if killed:
            return
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            busy = {addr: keys for addr, keys in client.run(executing).items() if keys}
            if busy:
                break
            time.sleep(0.05)
        addr, keys = sorted(busy.items())[0]
        pid = client.run(os.getpid, workers=[addr])[addr]
        os.kill(pid, signal.SIGKILL)
        killed.update(pid=pid, name=keys[0].split("-", 3)[-1], done_before=done)

    with distributed.Client(cluster) as client:
        client.wait_for_workers(2)
        rows = sweep.run_sweep(configs, tmp_path / "sw", runner=cluster_runner(client), on_result=kill_a_busy_worker, figures=False)
        client.wait_for_workers(2, timeout=60)  # the nanny restarts the dead worker for whoever comes next
    assert killed["done_before"] == 1 and killed["name"] in {name for name, _ in configs}
    with pytest.raises(ProcessLookupError):
        os.kill(killed["pid"], 0)
    assert len(rows) == 4 and all(row["status"] == "done" for row in rows), rows
    # the task that died with its worker ran again elsewhere, to the same weights as a local run
    config = dict(configs)[killed["name"]]
    assert sweep.run_one(killed["name"], config, tmp_path / "again")["status"] == "done"
    assert tree_equal(serialization.load_model(tmp_path / "sw" / killed["name"] / runs.MODEL).params,
                      serialization.load_model(tmp_path / "again" / runs.MODEL).params)


@pytest.mark.parametrize("scheduler", ["local:2", "tcp://127.0.0.1:8786"])
def test_without_dask_scheduler_exits_2_naming_the_extra(cli_runner, cli_app, small_npz, tmp_path, monkeypatch, scheduler):
    spec = write_spec(tmp_path / "s.yaml", small_npz, ["784,16,10"])
    monkeypatch.setitem(sys.modules, "distributed", None)  # `import distributed` now raises ImportError
    r = cli_runner.invoke(cli_app, ["sweep", str(spec), "--scheduler", scheduler, "--out", str(tmp_path / "sw")])
    assert r.exit_code == 2, r.output
    assert r.output.strip().splitlines() == ["Error: --scheduler needs Dask, which is not installed: pip install 'fnn[distributed]'"]
    assert not (tmp_path / "sw").exists()


def test_without_dask_in_a_fresh_interpreter(small_npz, tmp_path):
    spec = write_spec(tmp_path / "s.yaml", small_npz, ["784,16,10"])
    block = ("import sys\n"
             "class NoDask:\n"
             "    def find_spec(self, name, path=None, target=None):\n"
             "        if name.partition('.')[0] in ('dask', 'distributed'):\n"
             "            raise ModuleNotFoundError(f'No module named {name!r}')\n"
             "sys.meta_path.insert(0, NoDask())\n")
    code = block + f"from fnn_cli.main import cli\ncli(['sweep', {str(spec)!r}, '--scheduler', 'local:2'])\n"
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert p.returncode == 2, p.stderr
    assert p.stderr.strip().splitlines() == ["Error: --scheduler needs Dask, which is not installed: pip install 'fnn[distributed]'"]
    assert not (tmp_path / "runs").exists()
    # the library and the CLI import Dask only when a sweep uses it
    check = ("import sys, fnn, fnn.training.sweep, fnn.training.dask, fnn_cli.main; "
             "print(sorted({m.split('.')[0] for m in sys.modules} & {'dask', 'distributed'}))")
    assert subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, check=True).stdout.strip() == "[]"


@pytest.mark.parametrize("value, needle", [
    ("local:0", "'local:0'"), ("local:two", "'local:two'"), ("tcp://host", "'tcp://host'"), ("127.0.0.1:8786", "'127.0.0.1:8786'"),
    ("tcp://127.0.0.1:70000", "70000"),
])
def test_bad_scheduler_values_are_one_line_exit_2(cli_runner, cli_app, small_npz, tmp_path, value, needle):
    spec = write_spec(tmp_path / "s.yaml", small_npz, ["784,16,10"])
    r = cli_runner.invoke(cli_app, ["sweep", str(spec), "--scheduler", value, "--out", str(tmp_path / "sw")])
    assert r.exit_code == 2 and needle in r.output and len(r.output.strip().splitlines()) == 1, r.output
    assert not (tmp_path / "sw").exists()


def test_unreachable_scheduler_and_jobs_with_scheduler_are_one_line_exit_2(cli_runner, cli_app, small_npz, tmp_path):
    import socket

    spec = write_spec(tmp_path / "s.yaml", small_npz, ["784,16,10"])
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{s.getsockname()[1]}"
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        r = cli_runner.invoke(cli_app, ["sweep", str(spec), "--scheduler", address, "--out", str(tmp_path / "sw")])
    assert r.exit_code == 2 and address in r.output and "cannot connect" in r.output, r.output
    assert len(r.output.strip().splitlines()) == 1 and not (tmp_path / "sw").exists()
    r = cli_runner.invoke(cli_app, ["sweep", str(spec), "--scheduler", "local:2", "--jobs", "2"])
    assert r.exit_code == 2 and "--jobs 2" in r.output and len(r.output.strip().splitlines()) == 1


def test_progress_on_a_terminal_redraws_the_bar_and_best_table_in_place():
    out = _io.StringIO()
    progress = SweepProgress(3, tty=True, file=out)
    progress.begin()
    assert out.getvalue() == f"finished [{'-' * 30}] 0/3\n"
    progress({"name": "a", "status": "done", "val_accuracy": 0.5, "test_accuracy": None, "seconds": 1.0}, 1, 3)
    progress({"name": "b", "status": "failed", "error": "ConfigError: bad"}, 2, 3)
    progress({"name": "c", "status": "done", "val_accuracy": 0.9, "test_accuracy": 0.8, "seconds": 1.0}, 3, 3)
    screen = out.getvalue()
    assert "\r" not in screen and screen.count("\x1b[1F\x1b[J") == 1  # the empty bar, replaced
    assert screen.count("\x1b[3F\x1b[J") == 2  # bar + heading + one best row, redrawn twice
    last = screen.rsplit("\x1b[J", 1)[1].splitlines()
    assert last[0].startswith("[3/3] c: val_acc 0.9000")
    assert last[1] == f"finished [{'#' * 30}] 3/3, 1 failed"
    assert last[2] == "best so far:" and last[3].split()[:2] == ["1.", "c"] and last[4].split()[:2] == ["2.", "a"]
    assert last[4].endswith("test_acc n/a"), "a run without a test split"


def test_benchmark_quick_run(tmp_path):
    p = subprocess.run([sys.executable, str(ROOT / "experiments" / "bench" / "sweep_bench.py"), "--quick"],
                       capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0].startswith("sweep: 8 configurations") and lines[0].endswith("done: local 8, cluster 8")
    assert lines[1].startswith(f"machine: {os.cpu_count()} cores, load average")
    seconds = [float(line.split()[-2]) for line in lines if line.endswith(" s")]
    assert len(seconds) == 3 and all(s > 0 for s in seconds)
    speedup = next(line for line in lines if line.startswith("speed-up:"))
    printed = float(speedup.split()[1].rstrip("x"))  # 2 decimals, from seconds printed to 3 decimals
    local, sweep_s = seconds[0], seconds[2]
    low, high = (local - 5e-4) / (sweep_s + 5e-4), (local + 5e-4) / max(sweep_s - 5e-4, 1e-9)
    assert low - 0.005 <= printed <= high + 0.005, (printed, seconds)
    assert lines[-1] == "weights identical: True"
