"""Issue 8, point 5: the worst inputs at every entry point get one clear line, the right code, and leave nothing behind.

Complements the existing tests (tests/test_cli_fit.py for ordinary bad
options and config files, tests/test_datasets*.py for damaged dataset files,
tests/test_web*.py for HTTP bodies): options that are NaN, infinite or sized
to exhaust memory; config files that are YAML bombs or Python tags; dataset
files that are pipes, bombs, strings, NaN or a folder of junk; hostile model
files given to `predict` and `evaluate`; broken images and arrays given to
`predict`; HTTP requests the fuzz test does not send; and a disk that fills up
while `evaluate` draws its pictures.
"""

import errno
import http.client
import io as stdio
import json
import os
import socket
import struct
import zipfile
import zlib
from urllib.parse import urlparse

import numpy as np
import pytest
from cli_helpers import one_line
from PIL import Image
from test_cli_commands import trained_run as run  # noqa: F401  (module fixture: a small finished run)

from fnn import serialization as fio
from fnn.training import runs
from fnn_web import create_app

# ---------------------------------------------------------------- CLI options and config files


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--arch", "784,1000000000,10"], "parameters; the limit"),  # 3 TB of weights: refused, never allocated
        (["--arch", "784,100000,100000,10"], "parameters; the limit"),
        (["--lr", "nan"], "lr"),
        (["--lr", "inf"], "lr"),
        (["--lr", "1e400"], "lr"),
        (["--clip-norm", "nan"], "clip_norm"),
        (["--clip-norm", "inf"], "clip_norm"),
        (["--config", "{tmp}/nan.yaml"], "lr"),
        (["--config", "{tmp}/python.yaml"], "python/object"),
        (["--config", "{tmp}/laughs.yaml"], "unknown config key 'a'"),
        (["--config", "{tmp}/deep.yaml"], "deep.yaml"),
        (["--config", "{tmp}/binary.yaml"], "binary.yaml"),
        (["--config", "{tmp}/digits.yaml"], "digits.yaml"),
        (["--config", "{tmp}"], "is a directory"),
    ],
)
def test_worst_options_and_config_files(cli_runner, cli_app, small_npz, tmp_path, args, needle):
    sentinel = tmp_path / "pwned"
    (tmp_path / "nan.yaml").write_text("lr: .nan\n")
    (tmp_path / "python.yaml").write_text(f'arch: !!python/object/apply:os.system ["touch {sentinel}"]\n')
    laughs = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    laughs += [f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]" for p, c in zip("abcdefgh", "bcdefghi")]
    (tmp_path / "laughs.yaml").write_text("\n".join(laughs) + "\narch: *i\n")  # a billion strings, if expanded
    (tmp_path / "deep.yaml").write_text("arch: " + "[" * 5000 + "]" * 5000 + "\n")
    (tmp_path / "binary.yaml").write_bytes(bytes(range(256)) * 10)
    (tmp_path / "digits.yaml").write_text("seed: " + "9" * 5000 + "\n")
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    out = tmp_path / "run"
    r = cli_runner.invoke(cli_app, ["fit", "--dataset", str(small_npz), "--epochs", "1", "--out", str(out), *args])
    one_line(r, 2, needle)
    assert not out.exists() and not sentinel.exists()


def test_an_unwritable_run_folder_is_one_line_exit_1(cli_runner, cli_app, small_npz, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the run folder's parent should be")
    r = cli_runner.invoke(cli_app, ["fit", "--dataset", str(small_npz), "--arch", "784,8,10", "--epochs", "1",
                                    "--out", str(blocker / "run")])
    one_line(r, 1, "cannot write")


# ---------------------------------------------------------------- dataset files and folders


def _zip_with_lying_header(path):
    header = stdio.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": (10**7, 10**5)})
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("x.npy", header.getvalue() + b"\0" * 100)  # declares 4 TB, holds 100 bytes
        labels = stdio.BytesIO()
        np.save(labels, np.arange(3))
        zf.writestr("y.npy", labels.getvalue())


DATASETS = {
    "strings.npz": (lambda p: np.savez(p, x=np.array([["a"] * 4] * 3), y=np.arange(3)), "real numbers"),
    "scalar.npz": (lambda p: np.savez(p, x=np.float32(1), y=np.arange(1)), "must be an array"),
    "nan.npz": (lambda p: np.savez(p, x=np.full((3, 4), np.nan, np.float32), y=np.arange(3)), "NaN or Inf"),
    "huge.npz": (lambda p: np.savez(p, x=np.full((3, 4), 1e300), y=np.arange(3)), "float32's range"),
    "complex.npz": (lambda p: np.savez(p, x=np.ones((3, 4), np.complex64), y=np.arange(3)), "real numbers"),
    "dates.npz": (lambda p: np.savez(p, x=np.zeros((3, 4), "datetime64[s]"), y=np.arange(3)), "real numbers"),
    "labels.npz": (lambda p: np.savez(p, x=np.zeros((3, 4), np.float32), y=np.array([0, 1, 10**12])), "at most 65536 classes"),
    "bomb.npz": (_zip_with_lying_header, "holds 100 bytes"),
    "pipe.npz": (os.mkfifo, "not a regular file"),
    "pipe.csv": (os.mkfifo, "not a regular file"),
    "line.csv": (lambda p: p.write_text("a,label\n" + "1" * 200_000 + ",0\n"), "field limit"),
    "binary.csv": (lambda p: p.write_bytes(bytes(range(256)) * 20), "not a readable UTF-8 CSV"),
    "junk": (lambda p: [p.mkdir(), *((p / f"f{i}.bin").write_bytes(os.urandom(64)) for i in range(5))], "no train-images"),
    "junk-idx": (lambda p: [p.mkdir(), (p / "train-images-idx3-ubyte").write_bytes(os.urandom(64)),
                            (p / "train-labels-idx1-ubyte").write_bytes(os.urandom(64))], "not an IDX file"),
    "wrap.npz": (lambda p: np.savez(p, x=np.zeros((3, 4), np.float32), y=np.array([0, 2**63, 1], np.uint64)),
                 "labels go up to 9223372036854775808"),  # issue 17: once wrapped to -2**63, an IndexError mid-fit
    "onehot.npz": (lambda p: np.savez(p, x=np.zeros((3, 4), np.float32), y=np.eye(3)), "one-hot"),
    "quoted.csv": (lambda p: p.write_text('a,b,c,d,label\n"1\n2",0,0,0,0\n'), "is not a number"),
    "deep-idx": (lambda p: [p.mkdir(), (p / "train-images-idx3-ubyte").write_bytes(
        b"\x00\x00\x08\xff" + struct.pack(">255I", *[1] * 255) + b"\0"),
        (p / "train-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x01" + struct.pack(">I", 1) + b"\0")], "at most 16"),
    "nan-idx": (lambda p: [p.mkdir(), (p / "train-images-idx3-ubyte").write_bytes(
        b"\x00\x00\x0d\x03" + struct.pack(">III", 1, 2, 2) + struct.pack(">4f", 0, float("nan"), 0, 0)),
        (p / "train-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x01" + struct.pack(">I", 1) + b"\0")], "NaN or Inf"),
}


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_worst_dataset_files_and_folders(cli_runner, cli_app, tmp_path, name):
    make, needle = DATASETS[name]
    path = tmp_path / name
    make(path)
    out = tmp_path / "run"
    r = cli_runner.invoke(cli_app, ["fit", "--dataset", str(path), "--arch", "4,3", "--epochs", "1", "--out", str(out)])
    one_line(r, 2, name, needle)
    assert not out.exists()  # a failed fit leaves no run folder
    r = cli_runner.invoke(cli_app, ["data", "info", str(path)])
    assert r.exit_code in (1, 2) and "Traceback" not in r.output and len(r.output.strip().splitlines()) == 1, r.output


# ---------------------------------------------------------------- model files given to predict and evaluate


def _hostile_models(run, folder):  # noqa: F811 (the run fixture, passed on by the test)
    """name -> path of a hostile model file, each made from the run's real model.npz."""
    with zipfile.ZipFile(run / runs.MODEL) as zf:
        members = [(n, zf.read(n)) for n in zf.namelist()]
    manifest = json.loads(dict(members)["manifest.json"])

    def write(name, change=None, member=None, data=None, compression=zipfile.ZIP_STORED):
        m = json.loads(json.dumps(manifest))
        if change:
            change(m)
        with zipfile.ZipFile(folder / name, "w", compression) as zf:
            for n, d in members:
                zf.writestr(n, json.dumps(m) if n == "manifest.json" else (data if n == member else d))
        return folder / name

    evil = np.empty(1, dtype=object)
    evil[0] = print
    pickled = stdio.BytesIO()
    np.save(pickled, evil, allow_pickle=True)
    os.mkfifo(folder / "pipe.npz")
    return {
        "pickle.npz": (write("pickle.npz", member="0.w.npy", data=pickled.getvalue()), "0.w"),
        "python-path.npz": (write("python-path.npz", lambda m: m["model"]["layers"].__setitem__(0, {"type": "os.system"})),
                            "unknown layer type"),
        "absurd.npz": (write("absurd.npz", lambda m: m["model"]["layers"][0].update(units=10**9)), "declared"),
        "classes.npz": (write("classes.npz", lambda m: m["metadata"].update(classes=["a"])), "one per class"),
        "compressed.npz": (write("compressed.npz", compression=zipfile.ZIP_DEFLATED), "compressed"),
        "pipe.npz": (folder / "pipe.npz", "pipe.npz"),  # runs.model_path: not a run folder or model file
    }


def test_hostile_model_files_given_to_predict_evaluate_and_serve(cli_runner, cli_app, run, tmp_path):  # noqa: F811 (pytest injects the run fixture by name)
    digit = tmp_path / "x.npy"
    np.save(digit, np.zeros((1, 784), np.float32))
    for name, (path, needle) in _hostile_models(run, tmp_path).items():
        one_line(cli_runner.invoke(cli_app, ["predict", str(path), str(digit)]), 2, name, needle)
        one_line(cli_runner.invoke(cli_app, ["serve", "--models", str(path), "--port", "0"]), 2, name)
        out = tmp_path / f"eval-{name}"
        one_line(cli_runner.invoke(cli_app, ["evaluate", str(path), "--dataset", "mnist", "--out", str(out)]), 2, name)
        assert not out.exists()
        assert not (tmp_path / f"{path.stem}-eval").exists()


# ---------------------------------------------------------------- images and arrays given to predict


def _png(array):
    buf = stdio.BytesIO()
    Image.fromarray(array).save(buf, "PNG")
    return buf.getvalue()


def _chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png_declaring(w, h):
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
            + _chunk(b"IDAT", zlib.compress(b"\0" * 20001 * 50)) + _chunk(b"IEND", b""))


def _npy_declaring(shape):
    header = stdio.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": shape})
    return header.getvalue() + b"\0" * 1000


GOOD = _png(np.zeros((280, 280), np.uint8))
IMAGES = {
    "truncated.png": (lambda p: p.write_bytes(GOOD[: len(GOOD) // 2]), "truncated"),
    "zero.png": (lambda p: p.write_bytes(b""), "not a PNG or JPEG"),
    "bomb.png": (lambda p: p.write_bytes(_png_declaring(20000, 20000)), "20000x20000"),
    "empty.png": (lambda p: p.write_bytes(_png_declaring(0, 0)), "0x0"),
    "crc.png": (lambda p: p.write_bytes(GOOD[:40] + b"\0" + GOOD[41:]), "cannot decode"),
    "truncated.jpg": (lambda p: p.write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF"), "JPEG"),
    "folder.png": (lambda p: p.mkdir(), "is a folder"),
    "pipe.png": (os.mkfifo, "not a regular file"),
    "objects.npy": (lambda p: np.save(p, np.array([{"a": 1}], dtype=object), allow_pickle=True), "Python objects"),
    "nan.npy": (lambda p: np.save(p, np.full(784, np.nan, np.float32)), "NaN or Inf"),
    "huge.npy": (lambda p: np.save(p, np.full(784, 1e300)), "float32's range"),
    "strings.npy": (lambda p: np.save(p, np.array(["a"] * 784)), "expected numbers"),
    "header.npy": (lambda p: p.write_bytes(b"\x93NUMPY\x01\x00" + struct.pack("<H", 60000) + b"{" * 100), "header"),
    "declares-3tb.npy": (lambda p: p.write_bytes(_npy_declaring((10**9, 784))), "the file holds 1000"),
    "empty.npy": (lambda p: np.save(p, np.zeros((0, 784), np.float32)), "does not hold examples"),
    "pipe.npy": (os.mkfifo, "not a regular file"),
    "folder.npy": (lambda p: p.mkdir(), "is a folder"),
    "text.txt": (lambda p: p.write_text("7"), "unsupported file type"),
}


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_worst_images_and_arrays_given_to_predict(cli_runner, cli_app, run, tmp_path, name):  # noqa: F811 (pytest injects the run fixture by name)
    make, needle = IMAGES[name]
    make(tmp_path / name)
    good = tmp_path / "good.png"
    good.write_bytes(GOOD)
    r = cli_runner.invoke(cli_app, ["predict", str(run), str(good), str(tmp_path / name)])
    one_line(r, 2, name, needle)


# ---------------------------------------------------------------- HTTP requests the fuzz test does not send


@pytest.fixture(scope="module")
def client(pad_models):
    return create_app({"MODELS": [pad_models["small"]]}).test_client()


J = {"Content-Type": "application/json"}


@pytest.mark.parametrize(
    "method, url, body, headers, status",
    [
        ("PUT", "/api/predict", b"{}", J, 405),
        ("GET", "/api/predict", None, {}, 405),
        ("DELETE", "/api/models", None, {}, 405),
        ("GET", "/api/nothing", None, {}, 404),
        ("GET", "/static/../../fnn/io.py", None, {}, 404),
        ("GET", "/api/sample?index=-1", None, {}, 400),
        ("GET", "/api/sample?index=99999999999999999999", None, {}, 400),
        ("GET", "/api/sample?index=%00", None, {}, 400),
        ("GET", "/api/sample?model=../../etc/passwd", None, {}, 400),
        ("GET", "/api/sample?model=" + "x" * 10000, None, {}, 400),
        ("POST", "/api/predict", '{"pixels": [0.5]}'.encode("utf-16"), {"Content-Type": "application/json; charset=utf-16"}, 400),
        ("POST", "/api/predict", b'{"image": "\\ud800\\udfff\\ud800"}', J, 400),
        ("POST", "/api/predict", b'{"model": "small", "model": 5, "pixels": []}', J, 400),
        ("POST", "/api/predict", b'{"pixels": [' + b"true," * 783 + b"true]}", J, 400),
        ("POST", "/api/predict", b'{"pixels": [' + b"[0.5]," * 783 + b"[0.5]]}", J, 400),
        ("POST", "/api/predict", b'{"pixels": [0.5], "model": {"__class__": 1}}', J, 400),
        ("POST", "/api/predict", b'\xef\xbb\xbf{"pixels": []}', J, 400),
        ("POST", "/api/predict", b'{"pixels": [' + b"1e-400," * 783 + b"0]}", J, 200),  # underflows to 0: a blank canvas
    ],
)
def test_http_requests_beyond_the_fuzzed_bodies(client, method, url, body, headers, status):
    r = client.open(url, method=method, data=body, headers=headers)
    assert r.status_code == status, r.get_data()[:300]
    assert r.mimetype == "application/json"
    if status != 200:
        assert r.json["status"] == status and r.json["message"]


def _raw(port, data, read=65536):
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        chunks = []
        while True:
            try:
                chunk = s.recv(read)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)


def test_a_real_server_refuses_oversized_chunked_bodies_and_garbage_and_keeps_answering(pad_server):
    port = urlparse(pad_server).port
    chunk = b"{" + b" " * 65534 + b"\r\n"
    body = b"".join(b"%x\r\n" % (len(chunk) - 2) + chunk for _ in range(20)) + b"0\r\n\r\n"  # 1.3 MB, no length
    head = b"POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    answer = _raw(port, head + body)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    for garbage in (b"\x16\x03\x01\x02\x00" + os.urandom(300),  # a TLS hello
                    b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n",
                    b"POST /api/predict HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
                    b"POST /api/predict HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n{}",
                    b"POST /api/predict HTTP/1.1\r\n" + b"X-A: b\r\n" * 20000 + b"\r\n"):
        answer = _raw(port, garbage)
        assert answer == b"" or answer.split(b" ")[1][:1] == b"4", answer[:200]
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("POST", "/api/predict", body=json.dumps({"pixels": [0.0] * 784}), headers=J)
    assert conn.getresponse().status == 200


# ---------------------------------------------------------------- no half-written outputs


def test_a_disk_filling_up_while_evaluate_draws_leaves_no_half_written_file(cli_runner, cli_app, run, tmp_path, monkeypatch):  # noqa: F811 (pytest injects the run fixture by name)
    from matplotlib.figure import Figure

    real_savefig, calls = Figure.savefig, {"n": 0}

    def disk_fills_up(self, fname, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:  # the third picture, halfway through its bytes
            real_savefig(self, stdio.BytesIO(), *args, **kwargs)
            fname.write(b"\x89PNG\r\n\x1a\n half a picture")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_savefig(self, fname, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", disk_fills_up)
    out = tmp_path / "eval"
    r = cli_runner.invoke(cli_app, ["evaluate", str(run), "--out", str(out)])
    monkeypatch.undo()
    one_line(r, 1, "No space left on device")
    for p in out.iterdir():  # what is there is whole: the first pictures, nothing half-written, no temporary
        assert not p.name.endswith(".tmp"), p
        with Image.open(p) as im:
            im.load()
    assert len(list(out.iterdir())) == 2 and not (out / "metrics.json").exists()
    r = cli_runner.invoke(cli_app, ["evaluate", str(run), "--out", str(out)])  # the next try writes everything
    assert r.exit_code == 0, r.output
    assert (out / "metrics.json").is_file() and (out / "report.md").is_file()


def test_compare_of_a_non_run_writes_nothing(cli_runner, cli_app, run, tmp_path):  # noqa: F811 (pytest injects the run fixture by name)
    out = tmp_path / "cmp"
    one_line(cli_runner.invoke(cli_app, ["compare", str(run), str(tmp_path / "missing"), "--out", str(out)]), 2, "missing")
    assert not out.exists()
    assert fio.remove_temporaries(run, [runs.MODEL, runs.CHECKPOINT]) == []


# ---------------------------------------------------------------- damaged run folders given to compare, evaluate, runs, plot, serve

DAMAGE = {
    "binary summary": (runs.SUMMARY, bytes(range(256)), "not a readable summary"),
    "summary is a list": (runs.SUMMARY, b"[1, 2]", "expected a JSON object"),
    "summary with a string accuracy": (runs.SUMMARY, b'{"test_accuracy": "high", "arch": "abc"}', "'test_accuracy'"),
    "summary nested too deep": (runs.SUMMARY, b"[" * 100_000 + b"]" * 100_000, "not a readable summary"),
    "metrics with junk inside": (runs.METRICS, b'{"epoch": 1, "loss": 0.5, "accuracy": 0.8}\nnot json\n{"epoch": 2}\n', "line 2"),
    "metrics with a wrong type": (runs.METRICS, b'{"epoch": "one", "loss": "x"}\n', "line 1"),
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_damaged_run_folders_are_named_and_nothing_is_written(cli_runner, cli_app, run, tmp_path, damage):  # noqa: F811 (pytest injects the run fixture by name)
    import shutil

    name, content, needle = DAMAGE[damage]
    bad = tmp_path / "bad"
    shutil.copytree(run, bad)
    (bad / name).write_bytes(content)
    commands = [(["compare", str(run), str(bad), "--out", str(tmp_path / "cmp")], tmp_path / "cmp"),
                (["evaluate", str(bad), "--no-pictures"], bad / "eval"),
                (["runs", "show", str(bad)], None)]
    if name == runs.SUMMARY:  # the pad reads a run's summary (its test accuracy), not its metrics
        commands.append((["serve", "--models", str(bad), "--port", "0"], None))
    else:
        commands.append((["plot", str(bad)], bad / "training_curves.png"))
    for args, written in commands:
        one_line(cli_runner.invoke(cli_app, args), 2, name, needle)
        assert written is None or not written.exists()
    r = cli_runner.invoke(cli_app, ["runs", "list", str(tmp_path)])
    assert r.exit_code == 0 and "damaged" in r.output and "Traceback" not in r.output


def test_a_metrics_line_torn_by_a_kill_is_skipped(run, tmp_path):  # noqa: F811 (pytest injects the run fixture by name)
    import shutil

    torn = tmp_path / "torn"
    shutil.copytree(run, torn)
    whole = runs.read_metrics(torn)
    with open(torn / runs.METRICS, "a") as f:
        f.write('{"epoch": 9, "loss": 0.4')  # the process died in the middle of this append
    assert runs.read_metrics(torn) == whole and len(whole) >= 1
