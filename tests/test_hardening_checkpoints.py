"""Issue 8, point 2: checkpoints survive kill -9 at any moment and a disk that fills up mid-write.

20 SIGKILLs of a real `fnn-cli fit` process at seeded random moments, spread
over startup, the middle of epochs and checkpoint writes (caught while the
temporary file exists), each followed by `--resume` in the same folder (which
may be killed again): no checkpoint is ever corrupt, and the final weights are
bit-identical to an uninterrupted run's. The run is 40 short epochs on
400 examples (45 steps of 8, then a checkpoint), so the 21 processes cost
little more than their start-up. Then a save that fails halfway
(ENOSPC raised from inside the .npy writer) keeps the previous checkpoint, and
leaves no temporary file; and checkpoints that do not fit the run are a
one-line exit 2.
"""

import errno
import json
import os
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest
from cli_helpers import wait_until

from fnn import serialization
from fnn.training import runs
from fnn.training.experiment import load_checkpoint
from fnn.tree import tree_equal

FNN_CLI = [sys.executable, "-c", "from fnn_cli.main import cli; cli()"]
KILLS = 20
EPOCHS = 40


def fit_args(dataset, out):
    return ["fit", "--dataset", str(dataset), "--arch", "784,32,10", "--epochs", str(EPOCHS), "--batch-size", "8",
            "--dropout", "0.1", "--threads", "1", "--out", str(out), "-q"]


def temporaries(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp")) if folder.is_dir() else []


def checkpoint_stamp(path):
    try:
        return path.stat().st_mtime_ns
    except FileNotFoundError:
        return None




def test_20_sigkills_at_random_moments_then_resume_is_bit_identical(cli_runner, cli_app, tiny_npz, tmp_path):
    ref = tmp_path / "ref"
    r = cli_runner.invoke(cli_app, fit_args(tiny_npz, ref))
    assert r.exit_code == 0, r.output
    expected = serialization.load_model(ref / runs.MODEL).params
    epoch_seconds = float(np.median([m["seconds"] for m in runs.read_metrics(ref)]))  # the training part of an epoch

    run = tmp_path / "killed"
    ckpt = run / runs.CHECKPOINT
    rng = np.random.default_rng(20)
    phases = ["startup", "mid-epoch", "checkpoint write"]
    kills = []
    while len(kills) < KILLS:
        phase = phases[len(kills) % len(phases)]
        resume = ckpt.is_file()
        proc = subprocess.Popen(FNN_CLI + (["fit", "--resume", str(run), "-q"] if resume else fit_args(tiny_npz, run)),
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if phase == "startup":  # imports, data loading, the first checkpoint
            time.sleep(rng.uniform(0.0, 0.6))
        elif phase == "mid-epoch":  # after the next epoch's checkpoint, somewhere inside the following epoch
            before = checkpoint_stamp(ckpt)
            wait_until(lambda before=before: checkpoint_stamp(ckpt) != before, proc)
            time.sleep(rng.uniform(0.1, 0.9) * epoch_seconds)
        else:  # as soon as a checkpoint write shows: its temporary file exists (or the checkpoint itself changed)
            before = checkpoint_stamp(ckpt)
            wait_until(lambda before=before: any(n.startswith(".checkpoint.npz.") for n in temporaries(run))
                       or checkpoint_stamp(ckpt) != before, proc)
        if proc.poll() is not None:  # the run ended before the moment came: it must have ended well
            assert proc.returncode == 0, proc.stderr.read().decode()[-2000:]
            pytest.fail(f"the run finished after {len(kills)} kills; give it more epochs")
        proc.kill()
        proc.wait()
        proc.stderr.close()
        kills.append((phase, resume, load_checkpoint(ckpt)["epoch"] if ckpt.is_file() else None))  # never corrupt
        assert not (run / runs.MODEL).exists()

    r = subprocess.run(FNN_CLI + ["fit", "--resume", str(run), "-q"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    print("\nkills (phase, resumed, checkpoint epoch after the kill):", kills)
    assert tree_equal(serialization.load_model(run / runs.MODEL).params, expected)
    assert [m["epoch"] for m in runs.read_metrics(run)] == list(range(1, EPOCHS + 1))
    assert json.loads((run / runs.SUMMARY).read_text())["test_accuracy"] == json.loads((ref / runs.SUMMARY).read_text())["test_accuracy"]
    assert temporaries(run) == []  # what kills mid-write left was cleared by the next start
    assert sum(resumed for _, resumed, _ in kills) >= KILLS // 2
    assert len({epoch for _, _, epoch in kills}) >= 5, kills  # the kills were spread over the run


def test_a_save_that_fails_halfway_keeps_the_previous_checkpoint_and_no_temporary_file(cli_runner, cli_app, tiny_npz,
                                                                                        tmp_path, monkeypatch):
    args = ["fit", "--dataset", str(tiny_npz), "--arch", "784,16,10", "--epochs", "3", "--out"]
    ref = tmp_path / "ref"
    assert cli_runner.invoke(cli_app, args + [str(ref), "-q"]).exit_code == 0
    run = tmp_path / "full"
    real_write_array = np.lib.format.write_array
    calls = {"n": 0}
    per_checkpoint = len(zipfile.ZipFile(ref / runs.CHECKPOINT).namelist()) - 1  # arrays in one checkpoint

    def disk_fills_up(fp, array, *a, **k):
        calls["n"] += 1
        if calls["n"] == 2 * per_checkpoint + 3:  # the third checkpoint (after epoch 2), a few arrays in
            fp.write(b"\0" * 100)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write_array(fp, array, *a, **k)

    monkeypatch.setattr(np.lib.format, "write_array", disk_fills_up)
    r = cli_runner.invoke(cli_app, args + [str(run)])
    monkeypatch.undo()
    assert r.exit_code == 1, r.output
    lines = [ln for ln in r.output.splitlines() if ln.startswith("Error")]
    assert len(lines) == 1 and "No space left on device" in lines[0] and "Traceback" not in r.output
    assert load_checkpoint(run / runs.CHECKPOINT)["epoch"] == 1  # the previous one, intact
    assert temporaries(run) == [] and not (run / runs.MODEL).exists()
    r = cli_runner.invoke(cli_app, ["fit", "--resume", str(run), "-q"])  # the next good saves
    assert r.exit_code == 0, r.output
    assert temporaries(run) == []
    assert tree_equal(serialization.load_model(run / runs.MODEL).params, serialization.load_model(ref / runs.MODEL).params)


def test_temporaries_left_by_a_kill_are_removed_by_the_next_start(cli_runner, cli_app, tiny_npz, tmp_path):
    run = tmp_path / "r"
    assert cli_runner.invoke(cli_app, ["fit", "--dataset", str(tiny_npz), "--arch", "784,8,10", "--epochs", "1",
                                       "--out", str(run), "-q"]).exit_code == 0
    leftovers = [".checkpoint.npz.k2j4_x.tmp", ".model.npz.abc.tmp", ".summary.json.q.tmp"]
    for name in leftovers:
        (run / name).write_bytes(b"half a file")
    (run / ".notes.tmp").write_text("the user's own")  # not fnn's: kept
    r = cli_runner.invoke(cli_app, ["fit", "--resume", str(run), "--epochs", "2", "-q"])
    assert r.exit_code == 0, r.output
    assert temporaries(run) == [".notes.tmp"]


def _tamper(path, change_manifest=None, member=None, data=None):
    with zipfile.ZipFile(path) as zf:
        members = [(n, zf.read(n)) for n in zf.namelist()]
    manifest = json.loads(dict(members)["manifest.json"])
    if change_manifest:
        change_manifest(manifest)
    with zipfile.ZipFile(path, "w") as zf:
        for n, d in members:
            zf.writestr(n, json.dumps(manifest) if n == "manifest.json" else (data if n == member else d))


def _npy(arr):
    import io as stdio

    buf = stdio.BytesIO()
    np.lib.format.write_array(buf, arr)
    return buf.getvalue()


@pytest.mark.parametrize(
    "tamper, needle",
    [
        (lambda p: _tamper(p, lambda m: m["arrays"].update({"params.0.w": {"dtype": "<f4", "shape": [3, 3]}}), "params.0.w.npy",
                           _npy(np.zeros((3, 3), np.float32))), "params 0.w"),
        (lambda p: _tamper(p, None, "params.0.b.npy", _npy(np.full(16, np.nan, np.float32))), "NaN or Inf"),
        (lambda p: _tamper(p, lambda m: m.update(epoch=-1)), "epoch"),
        (lambda p: _tamper(p, lambda m: m.update(key=[1, 2])), "key"),
        (lambda p: _tamper(p, lambda m: m.update(history=[1, 2])), "history"),
        (lambda p: _tamper(p, lambda m: m.update(callbacks=[{"class": "EarlyStopping", "best": "x", "wait": "y"}])), "EarlyStopping"),
        (lambda p: _tamper(p, lambda m: m.update(callbacks=[{"class": "Nonesuch"}])), "Nonesuch"),
        (lambda p: _tamper(p, lambda m: m["sums"].update(loss="a lot")), "sums"),
        (lambda p: _tamper(p, lambda m: m["info"]["config"].update(lr=-1)), "lr"),
        (lambda p: _tamper(p, lambda m: m.update(format="fnn.model")), "not an fnn checkpoint"),
        (lambda p: p.write_bytes(p.read_bytes()[:300]), "checkpoint.npz"),
        (lambda p: p.write_bytes(b""), "checkpoint.npz"),
    ],
)
def test_a_checkpoint_that_does_not_fit_is_a_one_line_exit_2(cli_runner, cli_app, tiny_npz, tmp_path, tamper, needle):
    run = tmp_path / "r"
    assert cli_runner.invoke(cli_app, ["fit", "--dataset", str(tiny_npz), "--arch", "784,16,10", "--epochs", "1",
                                       "--out", str(run), "-q"]).exit_code == 0
    tamper(run / runs.CHECKPOINT)
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    r = cli_runner.invoke(cli_app, ["fit", "--resume", str(run), "--epochs", "2"])
    assert r.exit_code == 2, r.output
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in r.output, r.output
    after = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    assert after == before  # a refused resume changes nothing
