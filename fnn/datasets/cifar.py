"""CIFAR-10's binary version, read straight from ``cifar-10-binary.tar.gz`` (nothing is unpacked).

The archive holds ``cifar-10-batches-bin/``: ``data_batch_1.bin`` ...
``data_batch_5.bin`` (training), ``test_batch.bin`` and ``batches.meta.txt``
(one class name a line). A batch is a run of 3073-byte records: one label
byte, then 1024 red, 1024 green and 1024 blue pixel bytes, each plane in row
order. Members with an absolute path, a ``..`` part, or that are links or
devices are refused, wherever they are in the archive.
"""

from __future__ import annotations

import gzip
import tarfile
import zlib
from pathlib import PurePosixPath

import numpy as np

from fnn.datasets.base import DatasetError

FOLDER = "cifar-10-batches-bin"
TRAIN = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
TEST = "test_batch.bin"
META = "batches.meta.txt"
SIDE, CHANNELS, NUM_CLASSES = 32, 3, 10
RECORD = 1 + SIDE * SIDE * CHANNELS
MAX_RECORDS = 10000  # per batch file in the real archive
MAX_META = 4096


def parse_batch(data, where: str) -> tuple:
    """``(x, y)`` from one batch's bytes: ``x`` ``(n, 32, 32, 3)`` uint8, ``y`` ``(n,)`` int64."""
    n, extra = divmod(len(data), RECORD)
    if n == 0 or extra:
        raise DatasetError(
            f"{where}: truncated or corrupt CIFAR-10 batch: {len(data)} bytes is not a whole number of "
            f"{RECORD}-byte records"
        )
    if n > MAX_RECORDS:
        raise DatasetError(f"{where}: oversized: {n} records, a CIFAR-10 batch holds at most {MAX_RECORDS}")
    records = np.frombuffer(data, np.uint8).reshape(n, RECORD)
    y = records[:, 0].astype(np.int64)
    if y.max() >= NUM_CLASSES:
        raise DatasetError(f"{where}: label {y.max()} out of range 0..{NUM_CLASSES - 1}; not a CIFAR-10 batch")
    x = records[:, 1:].reshape(n, CHANNELS, SIDE, SIDE).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(x), y


def _check_member(member: tarfile.TarInfo, where: str) -> None:
    name = member.name
    if name.startswith("/") or ".." in PurePosixPath(name).parts:
        raise DatasetError(f"{where}: refusing tar member {name!r}: its path leaves the archive")
    if member.issym() or member.islnk():
        raise DatasetError(f"{where}: refusing tar member {name!r}: links are not allowed")
    if not (member.isfile() or member.isdir()):
        raise DatasetError(f"{where}: refusing tar member {name!r}: not a regular file or folder")


def _read_members(path, wanted: dict) -> dict:
    """Bytes of the members named in ``wanted`` (member name -> size limit), checking every member."""
    where = str(path)
    found = {}
    try:
        with tarfile.open(path, "r|gz") as tar:
            for member in tar:
                _check_member(member, where)
                if member.name not in wanted:
                    continue
                if member.name in found:
                    raise DatasetError(f"{where}: member {member.name} appears twice")
                if member.size > wanted[member.name]:
                    raise DatasetError(
                        f"{where}: oversized member {member.name}: {member.size} bytes (limit {wanted[member.name]})"
                    )
                found[member.name] = tar.extractfile(member).read()
    except FileNotFoundError:
        raise DatasetError(f"{where}: no such file") from None
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as e:
        raise DatasetError(f"{where}: not a readable .tar.gz archive ({e})") from None
    missing = [name for name in wanted if name not in found]
    if missing:
        raise DatasetError(f"{where}: archive lacks {', '.join(missing)}")
    return found


def read_archive(path) -> tuple:
    """``(x_train, y_train, x_test, y_test, classes)`` from a CIFAR-10 binary ``.tar.gz``.

    ``x_*`` are ``(n, 32, 32, 3)`` uint8 (50000 and 10000 in the real archive),
    ``y_*`` ``(n,)`` int64, ``classes`` the 10 names of ``batches.meta.txt``.
    """
    batch_limit = MAX_RECORDS * RECORD
    wanted = {f"{FOLDER}/{name}": batch_limit for name in (*TRAIN, TEST)}
    wanted[f"{FOLDER}/{META}"] = MAX_META
    raw = _read_members(path, wanted)
    meta = raw.pop(f"{FOLDER}/{META}").decode("utf-8", "replace")
    classes = [line.strip() for line in meta.splitlines() if line.strip()]
    if len(classes) != NUM_CLASSES:
        raise DatasetError(f"{path}: {META} names {len(classes)} classes, CIFAR-10 has {NUM_CLASSES}")
    train = [parse_batch(raw.pop(f"{FOLDER}/{name}"), f"{path}:{name}") for name in TRAIN]
    x_test, y_test = parse_batch(raw.pop(f"{FOLDER}/{TEST}"), f"{path}:{TEST}")
    x_train = np.concatenate([x for x, _ in train])
    y_train = np.concatenate([y for _, y in train])
    return x_train, y_train, x_test, y_test, classes
