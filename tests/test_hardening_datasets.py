"""Issue 17: datasets and downloads survive hostile files and mirrors.

Mirrors that send a byte a second, or headers that never end, are given up at
the deadline or below the minimum rate; SIGTERM during a download removes its
temporary file and exits 143; temporaries a kill left are removed by the next
download (nobody else's, nor a live download's); limits that are NaN, infinite,
0 or huge are one line, exit 2; a gzip bomb costs at most the array its IDX
header declares; hostile IDX headers, labels, CSV and .npz files get a named
DatasetError, and a failed ``fit`` leaves no run folder. Every mirror is a
local server these tests start (tests/dataset_files.py).
"""

import gzip
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from dataset_files import (
    IDX_NAMES,
    MNIST_DIR,
    Mirror,
    gzip_bomb,
    idx_bytes,
    idx_header,
    mnist_gz,
    no_local_copies,
    tiny_arrays,
    tiny_contents,
    tiny_spec,
)

from fnn import datasets
from fnn.datasets import DatasetError, DownloadError, temporaries, user
from fnn_cli.main import cli

ROOT = Path(__file__).resolve().parents[1]
TRAIN_IMAGES = "train-images-idx3-ubyte.gz"


@pytest.fixture(autouse=True)
def only_local(monkeypatch, tmp_path):
    """An empty cache, no data dir, empty system and package folders: nothing but what a test serves."""
    no_local_copies(monkeypatch, tmp_path)


@pytest.fixture
def mirror():
    with Mirror() as m:
        yield m


@pytest.fixture(scope="module")
def quiet_mirror():
    """One mirror for the tests that must make no request at all (each checks ``hits`` stays empty)."""
    with Mirror() as m:
        yield m


def listing(folder) -> list:
    return sorted(os.listdir(folder)) if Path(folder).exists() else []


def env_for(tmp_path) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "FNN_DATA_DIR"}
    env.update(XDG_CACHE_HOME=str(tmp_path / "xdg"), PYTHONPATH=str(ROOT), http_proxy="", https_proxy="")
    return env


# ---------------------------------------------------------------- slow mirrors


def test_a_mirror_trickling_a_byte_a_second_or_endless_headers_is_given_up_at_the_deadline(mirror, tmp_path):
    contents = tiny_contents()
    spec = tiny_spec(contents)
    body = gzip.compress(contents[TRAIN_IMAGES])
    mirror.routes[f"/bytes/{TRAIN_IMAGES}"] = [("drip", body, 1.0)]  # a byte a second: never silent for 30 s
    mirror.routes[f"/headers/{TRAIN_IMAGES}"] = [("drip-headers", 0.05)]
    start = time.monotonic()
    with pytest.raises(DownloadError) as e:
        datasets.fetch(spec, mirrors=[mirror.url("bytes"), mirror.url("headers")], timeout=30, deadline=0.8, min_rate=0)
    took = time.monotonic() - start
    assert 1.5 < took < 3.5, took  # two attempts of 0.8 s each
    lines = str(e.value).splitlines()
    assert lines[1].startswith(f"  {mirror.url('bytes')}{TRAIN_IMAGES}: too slow: not done by the deadline of 0.8 s (")
    assert lines[2] == f"  {mirror.url('headers')}{TRAIN_IMAGES}: too slow: not done by the deadline of 0.8 s (0 bytes arrived)"
    assert listing(tmp_path / "xdg" / "fnn" / "tiny") == []  # no temporary left


def test_a_mirror_below_the_minimum_rate_is_given_up_after_the_grace_period_and_the_next_serves(mirror, tmp_path):
    contents = tiny_contents()
    spec = tiny_spec(contents)
    gz = {name: gzip.compress(data) for name, data in contents.items()}
    mirror.routes[f"/slow/{TRAIN_IMAGES}"] = [("drip", gz[TRAIN_IMAGES], 0.05)]  # 20 bytes/s
    mirror.serve("fast", gz)
    start = time.monotonic()
    folder, paths, urls = datasets.fetch(spec, mirrors=[mirror.url("slow"), mirror.url("fast")], min_rate=1000, grace=0.4)
    assert time.monotonic() - start < 2.5
    assert urls[0] == mirror.url("fast") + TRAIN_IMAGES and listing(folder) == sorted(gz)
    with pytest.raises(DownloadError, match=r"too slow: \d+ bytes in 0\.\d s \([\d.]+ KB/s\), below the minimum of 1 KB/s"):
        datasets.fetch(spec, cache_dir=tmp_path / "other", mirrors=[mirror.url("slow")], min_rate=1000, grace=0.4)
    assert listing(tmp_path / "other" / "tiny") == []


def test_the_cli_gives_a_trickling_mirror_up_at_its_deadline_exit_1(mirror):
    mirror.routes[f"/m/{TRAIN_IMAGES}"] = [("drip", mnist_gz()[TRAIN_IMAGES], 0.1)]
    start = time.monotonic()
    r = CliRunner().invoke(cli, ["data", "download", "mnist", "--mirror", mirror.url("m"), "--deadline", "0.5"])
    assert r.exit_code == 1 and "Traceback" not in r.output, r.output
    assert f"{mirror.url('m')}{TRAIN_IMAGES}: too slow: not done by the deadline of 0.5 s" in r.output
    assert time.monotonic() - start < 3


# ---------------------------------------------------------------- limits that are not numbers


@pytest.mark.parametrize(
    "option, value",
    [
        ("--timeout", "inf"),
        ("--timeout", "nan"),
        ("--timeout", "-1"),
        ("--timeout", "0"),
        ("--timeout", "1e300"),
        ("--timeout", "1e400"),
        ("--timeout", "soon"),
        ("--deadline", "inf"),
        ("--deadline", "0"),
        ("--min-rate", "-1"),
        ("--min-rate", "nan"),
        ("--min-rate", "inf"),
    ],
)
def test_a_limit_that_is_not_a_usable_number_is_one_line_exit_2_naming_it(quiet_mirror, option, value):
    mirror = quiet_mirror
    r = CliRunner().invoke(cli, ["data", "download", "mnist", "--mirror", mirror.url("m"), option, value])
    assert r.exit_code == 2, r.output
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.output, r.output
    unit = "KB/s" if option == "--min-rate" else "seconds"
    assert lines[0].startswith(f"Error: {option} must be a number of {unit}, ") and lines[0].endswith(f"got {value}")
    assert mirror.hits == []


@pytest.mark.parametrize(
    "limits, message",
    [
        ({"timeout": float("inf")}, "timeout must be a number of seconds, > 0 and at most 1000000, got inf"),
        ({"timeout": float("nan")}, "timeout must be a number of seconds, > 0 and at most 1000000, got nan"),
        ({"timeout": 0}, "got 0"),
        ({"timeout": 1e300}, "got 1e+300"),
        ({"timeout": True}, "timeout must be a number of seconds, got True"),
        ({"deadline": -5}, "deadline must be a number of seconds, > 0 and at most 1000000, got -5"),
        ({"min_rate": float("inf")}, "min_rate must be a number of bytes per second"),
        ({"grace": -1}, "grace must be a number of seconds, >= 0"),
    ],
)
def test_python_api_limits_are_checked_before_any_request(quiet_mirror, limits, message):
    mirror = quiet_mirror
    spec = tiny_spec(tiny_contents())
    with pytest.raises(ValueError, match=re.escape(message)):
        datasets.fetch(spec, mirrors=[mirror.url("m")], **limits)
    with pytest.raises(ValueError, match=re.escape(message)):
        datasets.load(spec, mirrors=[mirror.url("m")], **limits)
    assert mirror.hits == []


# ---------------------------------------------------------------- SIGTERM and stale temporaries


def fnn_cli() -> str:
    """The installed ``fnn-cli`` entry point (beside this interpreter, else on $PATH)."""
    exe = shutil.which("fnn-cli", path=os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")]))
    assert exe, "fnn-cli is not installed (pip install -e .)"
    return exe


def _wait_for(predicate, process, seconds=30.0):
    """Poll ``predicate`` until it holds; fail when ``process`` ends first or ``seconds`` pass."""
    end = time.monotonic() + seconds
    while not predicate():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < end, "timed out waiting"
        time.sleep(0.01)


def _sigint_as_from_a_terminal():
    """In the child, before exec: Ctrl-C's default action. A shell starts a background job (``cmd &``) with SIGINT
    ignored, its children inherit that, and a Python started so never raises KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_during_a_download_removes_its_temporary_file(mirror, tmp_path, sig, code):
    for name, body in mnist_gz().items():
        mirror.routes[f"/m/{name}"] = [("drip", body, 0.05)]
    folder = tmp_path / "xdg" / "fnn" / "mnist"
    p = subprocess.Popen(
        [fnn_cli(), "data", "download", "mnist", "--mirror", mirror.url("m")],
        env=env_for(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=_sigint_as_from_a_terminal,
    )
    try:
        _wait_for(lambda: any(n.endswith(".part") for n in listing(folder)), p)
        p.send_signal(sig)
        out, err = p.communicate(timeout=30)
    finally:
        p.kill()
    assert p.returncode == code, (p.returncode, err)
    assert "Traceback" not in err
    assert listing(folder) == []
    if sig == signal.SIGTERM:
        assert err.strip().splitlines()[-1] == "Error: mnist: download terminated by SIGTERM; its partial file was removed"


def test_a_sigterm_while_the_temporary_file_is_being_made_still_leaves_nothing(mirror, tmp_path, monkeypatch):
    mirror.serve("m", mnist_gz())
    made = []
    real_create = temporaries.create

    def create_then_sigterm(folder, name):  # the signal lands between the file's creation and its name's return
        made.append(real_create(folder, name))
        assert signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, signal.SIG_IGN, None), "no handler: would kill pytest"
        os.kill(os.getpid(), signal.SIGTERM)
        return made[-1]

    monkeypatch.setattr(temporaries, "create", create_then_sigterm)
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    with pytest.raises(datasets.Terminated):
        datasets.fetch("mnist", mirrors=[mirror.url("m")])
    assert len(made) == 1 and listing(tmp_path / "xdg" / "fnn" / "mnist") == []
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # restored once the download is over


LOCK_HOLDER = textwrap.dedent(
    """
    import fcntl, sys
    f = open(sys.argv[1], "rb")
    fcntl.flock(f, fcntl.LOCK_EX)
    print("locked", flush=True)
    sys.stdin.read()
    """
)


def test_the_next_download_removes_stale_temporaries_and_nothing_else(mirror, tmp_path):
    folder = tmp_path / "xdg" / "fnn" / "mnist"
    folder.mkdir(parents=True)
    outside = tmp_path / "precious.bin"
    outside.write_bytes(b"not fnn's")
    old = time.time() - 3600
    stale = [".train-images-idx3-ubyte.gz.abcd_123.part", ".t10k-labels-idx1-ubyte.gz.zz99xyq0.part"]
    live = ".train-labels-idx1-ubyte.gz.live0001.part"  # another process is downloading it right now
    fresh = ".t10k-images-idx3-ubyte.gz.fresh123.part"  # just made, its owner not yet locked it
    others = [
        "notes.txt",
        ".train-images-idx3-ubyte.gz.part",
        ".train-images-idx3-ubyte.gz.abcd1234.part.bak",
        ".train-images-idx3-ubyte.gz.ABCD1234.part",
        ".train-images-idx3-ubyte.gz.abc1234.part",
        ".cifar-10-binary.tar.gz.abcd1234.part",
        "train-images-idx3-ubyte.gz.abcd1234.part",
    ]
    for name in stale + [live, fresh] + others:
        (folder / name).write_bytes(b"partial")
    (folder / ".train-images-idx3-ubyte.gz.dir12345.part").mkdir()
    (folder / ".train-images-idx3-ubyte.gz.link1234.part").symlink_to(outside)
    for entry in os.scandir(folder):
        if entry.name != fresh:
            os.utime(entry.path, (old, old), follow_symlinks=False)
    holder = subprocess.Popen([sys.executable, "-c", LOCK_HOLDER, str(folder / live)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        mirror.serve("m", mnist_gz())
        datasets.fetch("mnist", mirrors=[mirror.url("m")])
    finally:
        holder.communicate("")
    kept = sorted([live, fresh, *others, ".train-images-idx3-ubyte.gz.dir12345.part", ".train-images-idx3-ubyte.gz.link1234.part"])
    assert listing(folder) == sorted(kept + list(mnist_gz()))
    assert outside.read_bytes() == b"not fnn's"
    # once its owner is gone, the formerly live one goes too, with the next download of that file
    assert [p.name for p in temporaries.remove_stale(folder, "train-labels-idx1-ubyte.gz")] == [live]


# ---------------------------------------------------------------- gzip bombs

BOMB_PROBE = textwrap.dedent(
    """
    import sys
    from fnn import datasets

    def peak_kb():  # VmHWM starts afresh at exec; getrusage's ru_maxrss would start at the parent's peak
        with open("/proc/self/status") as f:
            return int(next(line for line in f if line.startswith("VmHWM:")).split()[1])

    before = peak_kb()
    try:
        datasets.load(sys.argv[1], data_dir=sys.argv[2] if len(sys.argv) > 2 else None)
        print("loaded")
    except datasets.DatasetError as e:
        print(str(e).splitlines()[0])
    print((peak_kb() - before) / 1024)
    """
)


def _peak(tmp_path, *args):
    """``(first line of the error, peak RSS growth in MB)`` of loading ``args`` in a fresh interpreter."""
    r = subprocess.run([sys.executable, "-c", BOMB_PROBE, *map(str, args)], capture_output=True, text=True,
                       env=env_for(tmp_path), timeout=120)
    assert r.returncode == 0, r.stderr
    message, grew = r.stdout.strip().splitlines()
    return message, float(grew)


def test_a_gzip_bomb_costs_at_most_what_its_header_declares(tmp_path):
    x, y, *_ = tiny_arrays()
    user = tmp_path / "user"
    user.mkdir()
    bomb = user / "train-images-idx3-ubyte.gz"
    bomb.write_bytes(gzip_bomb(idx_header(0x08, (40, 4, 4)), 2 << 30))  # 640 bytes declared, 2 GiB inflated
    assert bomb.stat().st_size < 3 << 20
    (user / "train-labels-idx1-ubyte").write_bytes(idx_bytes(y))
    message, grew = _peak(tmp_path, user)
    assert message == f"{bomb}: oversized: dims (40, 4, 4) need 640 bytes of uint8 data, the file has more than 1049215"
    assert grew < 100, grew
    # a registered name: a header declaring more than the pinned size is refused before any data is read
    data = tmp_path / "data" / "mnist"
    data.mkdir(parents=True)
    for name in IDX_NAMES:
        (data / f"{name}.gz").write_bytes((MNIST_DIR / f"{name}.gz").read_bytes())
    lying = data / "train-images-idx3-ubyte.gz"
    lying.write_bytes(gzip_bomb(idx_header(0x08, (2_000_000, 28, 28)), 2 << 30))
    message, grew = _peak(tmp_path, "mnist", tmp_path / "data")
    assert message.startswith(f"{lying}: oversized: more than the 47040016 bytes expected")
    assert grew < 100, grew


# ---------------------------------------------------------------- hostile IDX headers and labels


def _idx_folder(folder, images: bytes, labels: bytes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train-images-idx3-ubyte").write_bytes(images)
    (folder / "train-labels-idx1-ubyte").write_bytes(labels)
    return folder


def _u8(dims, values=None) -> bytes:
    n = int(np.prod(dims, dtype=object))
    return idx_header(0x08, dims) + (bytes(n) if values is None else bytes(values))


IMAGES = _u8((3, 2, 2))
LABELS = _u8((3,), [0, 1, 2])
HOSTILE_IDX = {
    "255 dims": (idx_header(0x08, (1,) * 255) + b"\0", LABELS, "train-images-idx3-ubyte: wrong dims: has 255 dimensions, at most 16"),
    "dims overflow": (idx_header(0x08, (2**32 - 1,) * 3) + bytes(64), LABELS,
                      rf"oversized: the header declares dims \(4294967295, 4294967295, 4294967295\), {16 + (2**32 - 1) ** 3} bytes"),
    "zero dims": (_u8((0, 2, 2)), _u8((0,)), r"wrong dims: \(0, 2, 2\) holds a 0"),
    "zero features": (_u8((3, 0)), LABELS, r"wrong dims: \(3, 0\) holds a 0"),
    "negative labels": (IMAGES, idx_header(0x09, (3,)) + struct.pack(">3b", 0, -1, 2), "labels must be >= 0, found -1"),
    "fraction labels": (IMAGES, idx_header(0x0D, (3,)) + struct.pack(">3f", 0, 0.5, 1), r"labels must be integers, found 0.5 \(float32\)"),
    "NaN labels": (IMAGES, idx_header(0x0D, (3,)) + struct.pack(">3f", 0, float("nan"), 1), r"labels must be integers, found nan"),
    "count mismatch": (IMAGES, _u8((2,), [0, 1]), "3 examples but 2 labels"),  # refused on main too: pinned here
}


@pytest.mark.parametrize("case", sorted(HOSTILE_IDX))
def test_hostile_idx_files_are_a_named_error(tmp_path, case):
    images, labels, message = HOSTILE_IDX[case]
    folder = _idx_folder(tmp_path / "user", images, labels)
    with pytest.raises(DatasetError, match=message) as e:
        datasets.load(str(folder))
    assert str(folder) in str(e.value) and "\n" not in str(e.value)


def test_idx_labels_as_whole_floats_or_a_column_are_accepted(tmp_path):
    floats = _idx_folder(tmp_path / "floats", IMAGES, idx_header(0x0D, (3,)) + struct.pack(">3f", 2, 0, 1))
    column = _idx_folder(tmp_path / "column", IMAGES, idx_header(0x08, (3, 1)) + bytes([2, 0, 1]))
    for folder in (floats, column):
        ds = datasets.load(str(folder))
        assert ds.y_train.dtype == np.int64 and ds.y_train.tolist() == [2, 0, 1] and ds.classes == ["0", "1", "2"]


# ---------------------------------------------------------------- .npz decisions


X3 = np.zeros((3, 2), np.float32)
HOSTILE_NPZ = {
    "uint64 2**63": ({"x": X3, "y": np.array([0, 2**63, 1], np.uint64)}, "labels go up to 9223372036854775808; at most 65536"),
    "one-hot": ({"x": X3, "y": np.eye(3)}, r"got shape \(3, 3\); one-hot\? pass y.argmax\(1\)"),
    "NaN labels": ({"x": X3, "y": np.array([0, np.nan, 1])}, "labels must be integers, found nan"),
    "extra array": ({"x": X3, "y": np.arange(3), "x_tset": X3}, r"unknown arrays \['x_tset'\] \(did you mean 'x_test'\?\)"),
    "x and x_train": ({"x": X3, "x_train": X3, "y": np.arange(3)}, "has both 'x' and 'x_train'"),
    "no examples": ({"x": np.zeros((0, 2), np.float32), "y": np.zeros(0, int)}, r"no examples: shape \(0, 2\)"),
    "empty examples": ({"x": np.zeros((3, 0), np.float32), "y": np.arange(3)}, r"examples hold no values: shape \(3, 0\)"),
    "2-D classes": ({"x": X3, "y": np.arange(3), "classes": np.array([["a", "b", "c"]])}, "classes must be a 1-D array"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_NPZ))
def test_hostile_npz_files_are_a_named_error(tmp_path, case):
    arrays, message = HOSTILE_NPZ[case]
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(DatasetError, match=message) as e:
        datasets.load(str(path))
    assert str(e.value).startswith(str(path)) and "\n" not in str(e.value)


@pytest.mark.parametrize(
    "y",
    [np.array([[1], [0], [1]], np.uint64), np.array([1.0, 0.0, 1.0]), np.array([True, False, True])],
    ids=["uint64 column", "whole floats", "bool"],
)
def test_npz_labels_in_any_integer_like_form_are_accepted(tmp_path, y):
    path = tmp_path / "ok.npz"
    np.savez(path, x=X3, y=y, x_test=X3[:0], y_test=np.zeros(0, int))
    ds = datasets.load(str(path))
    assert ds.y_train.dtype == np.int64 and ds.y_train.tolist() == [1, 0, 1] and ds.classes == ["0", "1"]
    assert ds.x_test.shape == (0, 2)


# ---------------------------------------------------------------- CSV decisions


def test_a_quoted_field_holding_a_newline_is_read_as_one_field(tmp_path):
    (tmp_path / "labels.csv").write_text('a,b,label\n1,2,"first\nkind"\n3,4,second\n')
    ds = datasets.load(str(tmp_path / "labels.csv"))
    assert ds.classes == ["first\nkind", "second"] and ds.y_train.tolist() == [0, 1]
    assert ds.x_train.tolist() == [[1, 2], [3, 4]]
    (tmp_path / "feature.csv").write_text('a,b,label\n"1\n2",3,0\n4\n')
    with pytest.raises(DatasetError, match=r"feature.csv: line 2: feature value '1\\n2' is not a number"):
        datasets.load(str(tmp_path / "feature.csv"))
    (tmp_path / "ragged.csv").write_text('a,b,label\n1,3,"x,\ny"\n4\n')
    with pytest.raises(DatasetError, match="ragged.csv: line 4 has 1 fields, the header has 3"):
        datasets.load(str(tmp_path / "ragged.csv"))


def test_a_million_column_header_over_short_rows_names_the_first_short_line(tmp_path):
    path = tmp_path / "wide.csv"
    path.write_text(",".join(f"c{i}" for i in range(10**6)) + "\n" + "1,0\n" * 100_000)
    message, grew = _peak(tmp_path, path)
    assert message == f"{path}: line 2 has 2 fields, the header has 1000000"
    assert grew < 200, grew  # the header's million names (about 90 MB); nothing sized by rows x columns


def test_csv_with_bom_crlf_blank_and_whitespace_lines_reads_every_row(tmp_path):
    path = tmp_path / "windows.csv"
    path.write_bytes(b"\xef\xbb\xbfa,label\r\n1.5,x\r\n\r\n   \r\n2.5,y\r\n\r\n")
    ds = datasets.load(str(path))
    assert ds.x_train.tolist() == [[1.5], [2.5]] and ds.classes == ["x", "y"] and ds.y_train.tolist() == [0, 1]


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: p.write_text("a,label\n" + "0," * (9 << 20) + "0\n"), r"line 2 is longer than 16777216 characters"),
        (lambda p: p.write_text("a,label\n" + "".join(f"1,k{i}\n" for i in range(1001))), "1001 distinct labels; at most 1000"),
        (lambda p: p.write_text("a,label\n1e39,0\n"), r"line 2: features must be finite numbers within float32's range, got '1e39'"),
    ],
    ids=["long line", "too many classes", "beyond float32"],
)
def test_csv_limits_are_named(tmp_path, monkeypatch, make, message):
    monkeypatch.setattr(user, "MAX_CLASSES", 1000)  # 65536 in use: the rule, not the number, is under test
    path = tmp_path / "big.csv"
    make(path)
    with pytest.raises(DatasetError, match=message):
        datasets.load(str(path))


# ---------------------------------------------------------------- a failed fit makes no run folder


@pytest.mark.parametrize("use_out", [False, True], ids=["default runs/", "--out"])
def test_fit_on_labels_that_would_wrap_makes_no_run_folder(tmp_path, monkeypatch, use_out):
    path = tmp_path / "wrap.npz"
    np.savez(path, x=np.zeros((4, 3), np.float32), y=np.array([0, 1, 2**63, 1], np.uint64))
    monkeypatch.chdir(tmp_path)
    out = ["--out", str(tmp_path / "run")] if use_out else []
    r = CliRunner().invoke(cli, ["fit", "--dataset", str(path), "--arch", "3,2", "--epochs", "1", *out])
    assert r.exit_code == 2, r.output
    assert r.output.strip() == f"Error: {path}: x/y: labels go up to 9223372036854775808; at most 65536 classes"
    assert listing(tmp_path) == ["wrap.npz"]
