"""Hostile images for the pad's tests, built byte by byte: JPEG scan bombs, segment and chunk floods, EXIF.

A progressive JPEG's scans (SOS segments) may be empty: libjpeg still passes
over every block of the image for each one, so a 1024x1024 header followed by
tens of thousands of ten-byte scans costs tens of seconds to decode.
"""

import io
import struct
import zlib

import numpy as np
from PIL import Image

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def segment(marker: int, payload: bytes) -> bytes:
    """A JPEG marker segment: 0xFF, ``marker``, a big-endian length (payload + 2), ``payload``."""
    return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload


def scan_bomb(side=1024, scans=None, size=None, components=1, kind="dc") -> bytes:
    """A progressive JPEG, ``side`` x ``side``, of ``scans`` empty scans (or as many as fit in ``size`` bytes).

    SOI, DQT, SOF2, a DC and an AC Huffman table, then the scans: ``kind`` "dc"
    (a DC first scan of every component) or "ac" (an AC scan of component 1),
    each 10 or 12 bytes with no entropy-coded data; then EOI.
    """
    head = b"\xff\xd8" + segment(0xDB, b"\x00" + b"\x01" * 64)
    frame = struct.pack(">BHHB", 8, side, side, components) + b"".join(bytes([c + 1, 0x11, 0]) for c in range(components))
    head += segment(0xC2, frame)
    head += segment(0xC4, b"\x00" + bytes([1] + [0] * 15) + b"\x00")  # DC table 0: one 1-bit code, category 0
    head += segment(0xC4, b"\x10" + bytes([1] + [0] * 15) + b"\x00")  # AC table 0: one 1-bit code, EOB
    if kind == "dc":
        sos = segment(0xDA, bytes([components]) + b"".join(bytes([c + 1, 0x00]) for c in range(components)) + b"\x00\x00\x00")
    else:
        sos = segment(0xDA, bytes([1, 1, 0x00, 1, 63, 0]))
    if scans is None:
        scans = (size - len(head) - 2) // len(sos)
    return head + sos * scans + b"\xff\xd9"


def jpeg(array, **save) -> bytes:
    """A uint8 array as JPEG bytes (Pillow's encoder; ``save`` passed on: progressive=True, exif=...)."""
    buf = io.BytesIO()
    Image.fromarray(np.asarray(array, np.uint8)).save(buf, "JPEG", **save)
    return buf.getvalue()


def insert_after_soi(data: bytes, segments: bytes) -> bytes:
    return data[:2] + segments + data[2:]


def insert_before_eoi(data: bytes, segments: bytes) -> bytes:
    assert data.endswith(b"\xff\xd9")
    return data[:-2] + segments + data[-2:]


def chunk(kind: bytes, payload: bytes) -> bytes:
    """A PNG chunk with its CRC."""
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_image(w, h, idat_chunks, depth=8, color=0, interlace=0, before=b"", after=b"") -> bytes:
    """A PNG: IHDR (``w`` x ``h``, bit ``depth``, ``color`` type, ``interlace``), ``before``, the IDAT chunks, ``after``, IEND."""
    ihdr = chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, color, 0, 0, interlace))
    return PNG_SIGNATURE + ihdr + before + b"".join(chunk(b"IDAT", c) for c in idat_chunks) + after + chunk(b"IEND", b"")


def tiff_ifd(entries, next_ifd=0, tail=b"") -> bytes:
    """A little-endian TIFF header and one IFD at offset 8: ``entries`` are ``(tag, type, count, value)``; ``tail`` follows."""
    body = struct.pack("<H", len(entries)) + b"".join(struct.pack("<HHII", *e) for e in entries)
    return b"II*\x00" + struct.pack("<I", 8) + body + struct.pack("<I", next_ifd) + tail


def exif_orientation(value) -> bytes:
    """An EXIF block (for Pillow's ``exif=``) holding only the orientation tag."""
    exif = Image.Exif()
    exif[0x0112] = value
    return exif.tobytes()


# Orientation -> the transpose that turns an upright image into what a camera stores for it
# (the inverse of what a viewer applies: 6 is shown by turning 90 degrees clockwise).
STORED = {1: None, 2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
          5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_90, 7: Image.Transpose.TRANSVERSE,
          8: Image.Transpose.ROTATE_270}


def as_stored(upright: np.ndarray, orientation: int) -> np.ndarray:
    """The pixels a camera stores, with EXIF ``orientation``, for the ``upright`` picture."""
    method = STORED[orientation]
    return upright if method is None else np.asarray(Image.fromarray(upright).transpose(method))
