"""The IDX format of MNIST and Fashion-MNIST, read from a stream without trusting its header.

A file is a 4-byte magic number (two zero bytes, a dtype code, the number of
dimensions), one big-endian ``uint32`` per dimension, then the values in C
order, big-endian. ``train-images-idx3-ubyte`` is ``0x00000803``, dims
``(60000, 28, 28)``, then 47040000 pixel bytes.

The header is checked before any data is read: at most :data:`MAX_DIMS`
dimensions, none of them 0, and a declared size within the caller's
``limit`` (a registered file's pinned size, else :data:`~fnn.datasets.integrity.MAX_CONTENT`,
4 GiB). Exactly the declared bytes are then read into one array; a stream
that ends early is truncated, one that goes on is oversized, and reading
stops at the first byte too many. A gzip bomb therefore costs at most the
array its header declares, however far it would inflate.

>>> data = bytes([0, 0, 8, 1]) + (3).to_bytes(4, "big") + bytes([7, 8, 9])
>>> parse_idx(data, "example").tolist()
[7, 8, 9]
"""

from __future__ import annotations

import io

import numpy as np

from fnn.datasets.base import DatasetError
from fnn.datasets.integrity import MAX_CONTENT, Digesting, reading

DTYPES = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
MAX_DIMS = 16  # MNIST's images have 3; NumPy stops at 64
_CHUNK = 1 << 20


def _read_exact(f, n: int) -> bytes:
    """Up to ``n`` bytes of ``f``, fewer only at its end."""
    parts, got = [], 0
    while got < n and (part := f.read(n - got)):
        parts.append(part)
        got += len(part)
    return b"".join(parts)


def _fill(f, buffer) -> int:
    """Read ``f`` into the writable byte ``buffer`` (a memoryview) in chunks; the number of bytes read."""
    got = 0
    while got < len(buffer):
        n = f.readinto(buffer[got : got + _CHUNK])
        if not n:
            break
        got += n
    return got


def read_idx(f, where: str, ndim: int | None = None, limit: int = MAX_CONTENT) -> np.ndarray:
    """The array held by the IDX stream ``f`` (any object with ``read`` and ``readinto``), read-only.

    Args:
      f: the uncompressed contents, positioned at the magic number; read to just past its end.
      where: the file's name, for error messages.
      ndim: the number of dimensions the caller needs (3 for images, 1 for labels), if any.
      limit: the most bytes (header included) the file may declare.

    Raises:
      DatasetError: bad magic number, unknown dtype, too many or wrong dimensions, a zero dimension,
        a declared size beyond ``limit``, or data shorter or longer than the header declares.
    """
    magic = _read_exact(f, 4)
    if len(magic) < 4:
        raise DatasetError(f"{where}: truncated IDX file ({len(magic)} bytes, not even a magic number)")
    zero, code, n = int.from_bytes(magic[:2], "big"), magic[2], magic[3]
    if zero != 0 or code not in DTYPES or n == 0:
        raise DatasetError(f"{where}: bad magic number 0x{magic.hex()}; not an IDX file")
    if ndim is not None and n != ndim:
        raise DatasetError(f"{where}: wrong dims: has {n} dimensions, expected {ndim}")
    if n > MAX_DIMS:
        raise DatasetError(f"{where}: wrong dims: has {n} dimensions, at most {MAX_DIMS} are supported")
    header = 4 + 4 * n
    raw = _read_exact(f, 4 * n)
    if len(raw) < 4 * n:
        raise DatasetError(f"{where}: truncated IDX header ({4 + len(raw)} bytes, the header needs {header})")
    dims = tuple(int.from_bytes(raw[4 * i : 4 * i + 4], "big") for i in range(n))
    if 0 in dims:
        raise DatasetError(f"{where}: wrong dims: {dims} holds a 0; an IDX file must hold at least one value")
    dtype = np.dtype(DTYPES[code])
    expected = dtype.itemsize * int(np.prod(dims, dtype=object))  # Python ints: no overflow
    if header + expected > limit:
        raise DatasetError(
            f"{where}: oversized: the header declares dims {dims}, {header + expected} bytes, "
            f"more than the {limit} expected"
        )
    out = np.empty(expected // dtype.itemsize, dtype)
    have = _fill(f, memoryview(out).cast("B"))
    if have < expected:
        raise DatasetError(f"{where}: truncated: dims {dims} need {expected} bytes of {dtype.name} data, the file has {have}")
    extra = len(f.read(_CHUNK))  # stops a bomb within one chunk of the declared end
    if extra:
        has = f"{expected + extra}" if extra < _CHUNK else f"more than {expected + _CHUNK - 1}"
        raise DatasetError(f"{where}: oversized: dims {dims} need {expected} bytes of {dtype.name} data, the file has {has}")
    if not dtype.isnative:
        out = out.byteswap(inplace=True).view(dtype.newbyteorder("="))
    out = out.reshape(dims)
    out.flags.writeable = False
    return out


def parse_idx(data, where: str, ndim: int | None = None, limit: int = MAX_CONTENT) -> np.ndarray:
    """The array held by the IDX bytes ``data`` (the whole uncompressed file); see :func:`read_idx`."""
    return read_idx(io.BytesIO(data), where, ndim, limit)


def load_idx(path, ndim: int | None = None, limit: int = MAX_CONTENT) -> tuple:
    """``(array, md5, size)`` of the IDX file at ``path``, gzipped or not; md5 and size are of its contents.

    The contents are digested as they are read (see :func:`read_idx`), so the file is read once.
    """
    with reading(path) as f:
        stream = Digesting(f)
        array = read_idx(stream, str(path), ndim, limit)
    return array, stream.md5(), stream.size
