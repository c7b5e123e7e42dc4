"""Helpers for the dataset tests: real-format files written independently of fnn's parsers, and a local mirror.

Not a test module (pytest collects ``test_*.py`` only); the dataset test files import it.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import socket
import struct
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np

from fnn.datasets import FileSpec, Spec

ROOT = Path(__file__).resolve().parents[1]
MNIST_DIR = ROOT / "fnn" / "datasets" / "data" / "mnist"
IDX_NAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
HTML_PAGE = b"<!DOCTYPE html><html><body>Moved: see our new site</body></html>"
CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def idx_bytes(array) -> bytes:
    """IDX encoding of a uint8 array, written by hand from the format's description."""
    a = np.ascontiguousarray(array, np.uint8)
    return struct.pack(">HBB", 0, 0x08, a.ndim) + struct.pack(f">{a.ndim}I", *a.shape) + a.tobytes()


def idx_header(code: int, dims) -> bytes:
    """An IDX header: the magic number for dtype ``code`` (0x08 uint8, 0x0D float32, ...) and ``dims``."""
    return struct.pack(">HBB", 0, code, len(dims)) + struct.pack(f">{len(dims)}I", *dims)


def gzip_bomb(head: bytes, inflated: int) -> bytes:
    """A gzip file whose contents are ``head`` then zeros, ``inflated`` bytes in all, about 1/1000 of that on disk.

    One member of 8 MiB of zeros is compressed once and repeated (gzip readers read every member in turn).
    """
    block = 8 << 20
    zeros = gzip.compress(bytes(block), compresslevel=9, mtime=0)
    count, rest = divmod(inflated - len(head), block)
    return gzip.compress(head + bytes(rest), mtime=0) + zeros * count


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def tiny_arrays(seed=0, n_train=40, n_test=10, side=4):
    """Small uint8 images ``(n, side, side)`` and labels 0..2: ``(x_train, y_train, x_test, y_test)``."""
    g = np.random.default_rng(seed)
    return (
        g.integers(0, 256, (n_train, side, side), dtype=np.uint8),
        np.arange(n_train, dtype=np.uint8) % 3,
        g.integers(0, 256, (n_test, side, side), dtype=np.uint8),
        np.arange(n_test, dtype=np.uint8) % 3,
    )


def tiny_contents(seed=0) -> dict:
    """Served file name (``...-ubyte.gz``) -> uncompressed IDX contents of a tiny MNIST-like set."""
    return {f"{n}.gz": idx_bytes(a) for n, a in zip(IDX_NAMES, tiny_arrays(seed))}


def tiny_spec(contents: dict, name="tiny", mirrors=(), shape=(4, 4)) -> Spec:
    """A registry entry pinning ``contents`` (served name -> uncompressed bytes)."""
    files = tuple(FileSpec(n, md5(c), len(c)) for n, c in contents.items())
    return Spec(name, "tiny test set", "idx", files, tuple(mirrors), ("a", "b", "c"), "test data", shape)


def write_files(folder, contents: dict, compress=True) -> Path:
    """Write ``contents`` into ``folder`` gzipped under their served names (or plain, without ``.gz``)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in contents.items():
        if compress:
            (folder / name).write_bytes(gzip.compress(data))
        else:
            (folder / name.removesuffix(".gz")).write_bytes(data)
    return folder


def mnist_gz() -> dict:
    """The shipped MNIST files: served name -> the ``.gz`` bytes."""
    return {p.name: p.read_bytes() for p in sorted(MNIST_DIR.glob("*.gz"))}


# ---------------------------------------------------------------- CIFAR-10


def cifar_records(x, y) -> bytes:
    """CIFAR-10 binary records: a label byte, then the R, G and B planes of a ``(32, 32, 3)`` image."""
    planes = np.ascontiguousarray(x.transpose(0, 3, 1, 2)).reshape(len(x), 3072)
    return np.concatenate([np.asarray(y, np.uint8)[:, None], planes], axis=1).tobytes()


def _add(tar, name, data=b"", **fields):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    for k, v in fields.items():
        setattr(info, k, v)
    tar.addfile(info, io.BytesIO(data) if data else None)


def cifar_tar(path, per_batch=3, seed=0, extra=()):
    """Write a ``cifar-10-binary.tar.gz`` with the real layout and ``per_batch`` records per batch.

    ``extra``: ``(name, fields)`` members added after the real ones, e.g.
    ``("../evil", {})`` or ``("x", {"type": tarfile.SYMTYPE, "linkname": "/etc/passwd"})``.

    Returns ``(x_train, y_train, x_test, y_test)`` as written.
    """
    g = np.random.default_rng(seed)
    batches = {}
    for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
        x = g.integers(0, 256, (per_batch, 32, 32, 3), dtype=np.uint8)
        y = g.integers(0, 10, per_batch, dtype=np.uint8)
        batches[name] = (x, y)
    with tarfile.open(path, "w:gz") as tar:
        _add(tar, "cifar-10-batches-bin", type=tarfile.DIRTYPE, mode=0o755)
        _add(tar, "cifar-10-batches-bin/batches.meta.txt", ("\n".join(CIFAR_CLASSES) + "\n\n").encode())
        for name, (x, y) in batches.items():
            _add(tar, f"cifar-10-batches-bin/{name}", cifar_records(x, y))
        _add(tar, "cifar-10-batches-bin/readme.html", b"<html>CIFAR-10</html>")
        for name, fields in extra:
            _add(tar, name, b"x" if fields.get("type", tarfile.REGTYPE) == tarfile.REGTYPE else b"", **fields)
    train = [batches[f"data_batch_{i}.bin"] for i in range(1, 6)]
    return (
        np.concatenate([x for x, _ in train]),
        np.concatenate([y for _, y in train]).astype(np.int64),
        batches["test_batch.bin"][0],
        batches["test_batch.bin"][1].astype(np.int64),
    )


def cifar_spec(path, mirrors=()) -> Spec:
    """A ``cifar10`` registry entry pinning the archive at ``path`` (as the real one pins its archive)."""
    data = Path(path).read_bytes()
    files = (FileSpec("cifar-10-binary.tar.gz", md5(data), len(data), gunzip=False),)
    classes = tuple(CIFAR_CLASSES)
    return Spec("cifar10", "test CIFAR-10", "cifar10", files, tuple(mirrors), classes, "test data", (32, 32, 3))


# ---------------------------------------------------------------- a local mirror


class Mirror:
    """An HTTP server on 127.0.0.1 (a free port) in a thread, answering from ``routes``.

    ``routes`` maps a request path to a list of answers used one per request
    (the last repeats): ``("ok", body)``, ``("status", code)``, ``("html",)``,
    ``("drop", body)`` (announce the full length, send half, hang up),
    ``("slow",)`` (say nothing until the test ends), ``("drip", body, seconds)``
    (announce the full length, then send one byte every ``seconds``) or
    ``("drip-headers", seconds)`` (a status line, then one header byte every
    ``seconds``, never ending the headers). Unknown paths get 404.
    ``hits`` lists the paths asked for, in order.
    """

    def __init__(self):
        self.routes, self.hits, self.stop = {}, [], threading.Event()
        mirror = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                mirror.hits.append(self.path)
                answers = mirror.routes.get(self.path, [("status", 404)])
                kind, *arg = answers.pop(0) if len(answers) > 1 else answers[0]
                if kind == "status":
                    self.send_error(arg[0])
                elif kind == "slow":
                    mirror.stop.wait(10)
                elif kind == "drip-headers":
                    self.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
                    self.drip(b"a" * 100_000, arg[0])
                elif kind == "drip":
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(arg[0])))
                    self.end_headers()
                    self.drip(arg[0], arg[1])
                else:
                    body = HTML_PAGE if kind == "html" else arg[0]
                    self.send_response(200)
                    self.send_header("Content-Type", "text/html" if kind == "html" else "application/octet-stream")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    try:
                        self.wfile.write(body[: len(body) // 2] if kind == "drop" else body)
                    except (BrokenPipeError, ConnectionResetError):
                        pass  # the client hung up first (e.g. on an oversized announcement)
                    self.close_connection = True

            def drip(self, body, seconds):
                """Send ``body`` a byte at a time, ``seconds`` apart, until the client hangs up or the test ends."""
                try:
                    for i in range(len(body)):
                        self.wfile.write(body[i : i + 1])
                        self.wfile.flush()
                        if mirror.stop.wait(seconds):
                            return
                except (BrokenPipeError, ConnectionResetError):
                    pass
                self.close_connection = True

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def url(self, prefix: str) -> str:
        """The base URL of the mirror folder ``prefix`` (e.g. ``"a"``)."""
        return f"http://127.0.0.1:{self.server.server_address[1]}/{prefix}/"

    def serve(self, prefix: str, files: dict, kind="ok"):
        """Answer every ``files`` name under ``/prefix/`` with ``(kind, body)``."""
        for name, body in files.items():
            self.routes[f"/{prefix}/{name}"] = [(kind, body)]

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()


def closed_port_url() -> str:
    """A base URL on 127.0.0.1 where nothing listens (connection refused)."""
    with contextlib.closing(socket.socket()) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def no_local_copies(monkeypatch, tmp_path) -> None:
    """No local copy anywhere for the dataset loaders: an empty cache, no ``$FNN_DATA_DIR``, empty system and package folders."""
    from fnn.datasets import sources

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("FNN_DATA_DIR", raising=False)
    monkeypatch.setattr(sources, "SYSTEM_ROOT", tmp_path / "system")
    monkeypatch.setattr(sources, "PACKAGE_ROOT", tmp_path / "package")
