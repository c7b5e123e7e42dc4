"""Read a data file's contents and check them against their pin (size and MD5).

Contents means the gunzipped bytes for a gzip file (found by its magic
number, whatever its name) and the file's own bytes otherwise, so a folder
may hold ``train-images-idx3-ubyte.gz`` or ``train-images-idx3-ubyte``.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
import zlib

from fnn.datasets.base import ChecksumError, DatasetError

GZIP_MAGIC = b"\x1f\x8b"
CHUNK = 1 << 20
MAX_CONTENT = 1 << 32  # no single data file fnn reads is this large


def is_gzip(path) -> bool:
    """True when the file at ``path`` starts with the gzip magic number."""
    with open(path, "rb") as f:
        return f.read(2) == GZIP_MAGIC


def _open(path, gunzip: bool):
    return gzip.open(path, "rb") if gunzip and is_gzip(path) else open(path, "rb")


@contextlib.contextmanager
def reading(path, gunzip: bool = True):
    """Open the contents of ``path``; any problem reading them becomes a :class:`DatasetError` naming it."""
    try:
        with _open(path, gunzip) as f:
            yield f
    except FileNotFoundError:
        raise DatasetError(f"{path}: no such file") from None
    except (EOFError, zlib.error, gzip.BadGzipFile) as e:
        raise DatasetError(f"{path}: corrupt or truncated gzip data ({e})") from None
    except OSError as e:
        raise DatasetError(f"{path}: cannot read ({e.strerror or e})") from None


def _oversized(path, limit):
    return DatasetError(f"{path}: oversized: more than the {limit} bytes expected")


class Digesting:
    """A stream that passes ``f``'s bytes on and keeps their MD5 and count (``md5()``, ``size``)."""

    def __init__(self, f):
        self.f, self.hash, self.size = f, hashlib.md5(), 0

    def read(self, n: int = -1) -> bytes:
        data = self.f.read(n)
        self.hash.update(data)
        self.size += len(data)
        return data

    def readinto(self, buffer) -> int:
        n = self.f.readinto(buffer)
        self.hash.update(buffer[:n])
        self.size += n
        return n

    def md5(self) -> str:
        return self.hash.hexdigest()


def digest(path, gunzip: bool = True, limit: int = MAX_CONTENT) -> tuple:
    """``(md5 hex, size)`` of the contents of ``path``, read in chunks (never all in memory)."""
    md5, size = hashlib.md5(), 0
    with reading(path, gunzip) as f:
        while chunk := f.read(CHUNK):
            md5.update(chunk)
            size += len(chunk)
            if size > limit:
                raise _oversized(path, limit)
    return md5.hexdigest(), size


def check(where, md5: str, size: int, spec) -> None:
    """Raise :class:`ChecksumError` naming ``where`` unless ``(md5, size)`` is ``spec``'s pin."""
    if (md5, size) != (spec.md5, spec.size):
        what = "uncompressed contents" if spec.gunzip else "file"
        raise ChecksumError(
            f"{where}: checksum mismatch: expected md5 {spec.md5} ({spec.size} bytes of {what}), "
            f"got md5 {md5} ({size} bytes)"
        )


def verify_file(path, spec) -> None:
    """Check ``path`` against ``spec`` without holding it in memory; raises on any problem."""
    md5, size = digest(path, spec.gunzip, limit=spec.size)
    check(path, md5, size, spec)


def remove_quietly(path) -> None:
    """Delete ``path`` if it exists."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
