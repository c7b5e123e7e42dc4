"""``fnn-cli data download|info|verify``: through click's CliRunner and through the installed entry point."""

import os
import shutil
import subprocess

import numpy as np
import pytest
from click.testing import CliRunner
from dataset_files import IDX_NAMES, MNIST_DIR, Mirror, mnist_gz

from fnn.datasets import sources
from fnn_cli.data import data

MNIST_MD5S = [  # official, of the uncompressed files
    "6bbc9ace898e44ae57da46a324031adb",
    "a25bea736e30d166cdddb491f175f624",
    "2646ac647ad5339dbf082846283269ea",
    "27ae3e4e09519cfbb04c329615203637",
]


@pytest.fixture(autouse=True)
def offline_env(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("FNN_DATA_DIR", raising=False)


def run(*args):
    return CliRunner().invoke(data, list(args))


def test_cli_group_is_attached_to_fnn_cli():
    from fnn_cli.main import cli

    assert cli.get_command(None, "data") is data


def test_info_mnist_shows_source_counts_and_digests():
    result = run("info", "mnist")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert f"source   package copy {MNIST_DIR}" in lines
    assert "train    60000 examples" in lines and "test     10000 examples" in lines
    counts = {line.split()[0]: line.split()[1:] for line in lines if line.startswith("  ") and len(line.split()) == 3}
    assert counts["0"] == ["5923", "980"] and counts["1"] == ["6742", "1135"] and counts["9"] == ["5949", "1009"]
    for digest in MNIST_MD5S:
        assert any(digest in line and line.endswith("verified against its pin") for line in lines)


def test_verify_mnist_passes_and_a_damaged_file_is_named_with_exit_1(tmp_path):
    result = run("verify", "mnist")
    assert result.exit_code == 0 and result.output.count("  ok    ") == 4 and "all 4 files match" in result.output
    shutil.copytree(MNIST_DIR, tmp_path / "data" / "mnist")
    bad = tmp_path / "data" / "mnist" / "t10k-labels-idx1-ubyte.gz"
    bad.write_bytes(bad.read_bytes()[:-100])
    result = run("verify", "mnist", "--data-dir", str(tmp_path / "data"))
    assert result.exit_code == 1
    assert f"  FAIL  {bad}: corrupt or truncated gzip data" in result.output
    assert "mnist: 1 of 4 files do not match: t10k-labels-idx1-ubyte.gz" in result.output
    assert result.output.count("  ok    ") == 3


def test_info_of_a_dataset_not_found_locally_says_how_to_get_it(monkeypatch, tmp_path):
    monkeypatch.setattr(sources, "SYSTEM_ROOT", tmp_path / "none")
    result = run("info", "fashion-mnist")
    assert result.exit_code == 1
    assert "fashion-mnist: not found in " in result.output and "fnn-cli data download fashion-mnist" in result.output


@pytest.mark.parametrize("command", ["info", "verify", "download"])
def test_an_unknown_name_exits_2_naming_it(command):
    result = run(command, "mnits")
    assert result.exit_code == 2
    assert "'mnits' is not a known dataset (mnist, fashion-mnist, cifar10)" in result.output
    assert "Traceback" not in result.output


def test_info_of_the_users_own_npz(tmp_path):
    np.savez(tmp_path / "points.npz", x=np.zeros((6, 2), np.float32), y=np.array([0, 1, 1, 2, 2, 2]))
    result = run("info", str(tmp_path / "points.npz"))
    assert result.exit_code == 0, result.output
    assert f"source   file {tmp_path / 'points.npz'}" in result.output and "train    6 examples" in result.output
    assert "recorded (your data: not pinned)" in result.output


def test_download_with_a_progress_bar_from_a_local_mirror(tmp_path):
    with Mirror() as mirror:
        mirror.serve("m", mnist_gz())
        result = run("download", "mnist", "--mirror", mirror.url("gone"), "--mirror", mirror.url("m"))
        assert result.exit_code == 0, result.output
        cache = tmp_path / "xdg" / "fnn" / "mnist"
        assert f"mnist: 4 files verified in {cache}" in result.output
        assert f"  downloaded {mirror.url('m')}train-images-idx3-ubyte.gz" in result.output
        # one bar per file (off a terminal click prints just each bar's label)
        assert [line.strip() for line in result.stderr.splitlines()] == [f"{name}.gz" for name in IDX_NAMES]
        assert sorted(os.listdir(cache)) == sorted(mnist_gz())
        hits = len(mirror.hits)
        again = run("download", "mnist", "--mirror", mirror.url("m"))
        assert again.exit_code == 0 and "downloaded" not in again.output and len(mirror.hits) == hits


def test_download_failing_everywhere_lists_the_mirrors_and_exits_1():
    with Mirror() as mirror:
        result = run("download", "mnist", "--mirror", mirror.url("x"), "--mirror", mirror.url("y"))
    assert result.exit_code == 1
    assert f"{mirror.url('x')}train-images-idx3-ubyte.gz: HTTP 404 Not Found" in result.output
    assert f"{mirror.url('y')}train-images-idx3-ubyte.gz: HTTP 404 Not Found" in result.output


def test_info_and_verify_through_the_installed_entry_point(tmp_path):
    exe = shutil.which("fnn-cli")
    assert exe, "fnn-cli is not installed (pip install -e .)"
    env = {k: v for k, v in os.environ.items() if k != "FNN_DATA_DIR"}
    dead_proxy = "http://127.0.0.1:9"  # were anything to go out, it would fail
    env.update(HOME=str(tmp_path), XDG_CACHE_HOME=str(tmp_path / "cache"), http_proxy=dead_proxy, https_proxy=dead_proxy)
    info = subprocess.run([exe, "data", "info", "mnist"], capture_output=True, text=True, env=env, timeout=120)
    assert info.returncode == 0, info.stderr
    assert "source   package copy" in info.stdout and "train    60000 examples" in info.stdout
    verify = subprocess.run([exe, "data", "verify", "mnist"], capture_output=True, text=True, env=env, timeout=120)
    assert verify.returncode == 0 and "mnist: all 4 files match" in verify.stdout
    bad = subprocess.run([exe, "data", "verify", "mnits"], capture_output=True, text=True, env=env, timeout=120)
    assert bad.returncode == 2 and "'mnits' is not a known dataset" in bad.stderr and "Traceback" not in bad.stderr
