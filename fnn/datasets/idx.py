"""The IDX format of MNIST and Fashion-MNIST.

A file is a 4-byte magic number (two zero bytes, a dtype code, the number of
dimensions), one big-endian ``uint32`` per dimension, then the values in C
order, big-endian. ``train-images-idx3-ubyte`` is ``0x00000803``, dims
``(60000, 28, 28)``, then 47040000 pixel bytes.

>>> data = bytes([0, 0, 8, 1]) + (3).to_bytes(4, "big") + bytes([7, 8, 9])
>>> parse_idx(data, "example").tolist()
[7, 8, 9]
"""

from __future__ import annotations

import numpy as np

from fnn.datasets.base import DatasetError

DTYPES = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def parse_idx(data, where: str, ndim: int | None = None) -> np.ndarray:
    """The array held by the IDX bytes ``data`` (a read-only view when it is uint8).

    Args:
      data: the whole uncompressed file.
      where: the file's name, for error messages.
      ndim: the number of dimensions the caller needs (3 for images, 1 for labels), if any.

    Raises:
      DatasetError: bad magic number, unknown dtype, wrong number of dimensions,
        or a size that does not match the dims (truncated or oversized).
    """
    if len(data) < 4:
        raise DatasetError(f"{where}: truncated IDX file ({len(data)} bytes, not even a magic number)")
    zero, code, n = int.from_bytes(data[:2], "big"), data[2], data[3]
    if zero != 0 or code not in DTYPES or n == 0:
        raise DatasetError(f"{where}: bad magic number 0x{bytes(data[:4]).hex()}; not an IDX file")
    if ndim is not None and n != ndim:
        raise DatasetError(f"{where}: wrong dims: has {n} dimensions, expected {ndim}")
    header = 4 + 4 * n
    if len(data) < header:
        raise DatasetError(f"{where}: truncated IDX header ({len(data)} bytes, the header needs {header})")
    dims = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(n))
    dtype = np.dtype(DTYPES[code])
    expected = dtype.itemsize
    for d in dims:
        expected *= d
    have = len(data) - header
    if have != expected:
        problem = "truncated" if have < expected else "oversized"
        raise DatasetError(
            f"{where}: {problem}: dims {dims} need {expected} bytes of {dtype.name} data, the file has {have}"
        )
    out = np.frombuffer(data, dtype, count=expected // dtype.itemsize, offset=header).reshape(dims)
    return out if dtype.isnative else out.astype(dtype.newbyteorder("="))

