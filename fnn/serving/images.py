"""Turn a drawing or a photo of a digit into an MNIST-style input, as MNIST itself was made.

MNIST digits are light ink on black, scaled so the longer side of the ink's
bounding box is 20 px (keeping the aspect ratio, anti-aliased), and placed in a
28×28 field so that the ink's centre of mass sits at the centre. A raw
downscaled canvas looks nothing like that, so :func:`image_to_mnist` redoes
those steps:

1. decode (PNG or JPEG only; dimensions checked from the header *before* any
   pixel is decoded; at most 1024×1024; the decoder's work bounded before it
   starts, see :func:`check_work`; the EXIF orientation applied, see
   :func:`orientation`);
2. flatten transparency onto a background that contrasts with the ink
   (a canvas with a transparent background works);
3. make the ink light on dark (dark-on-light is detected from the border) and
   stretch it to [0, 1];
4. crop to the ink's bounding box; scale its longer side to 20 px;
5. place it in 28×28 by centre of mass.

A blank or near-blank image gives ``info["blank"] = True`` (and zeros) rather
than something a network would label with confidence.

>>> x, info = image_to_mnist(np.zeros((280, 280), np.float32))
>>> x.shape, x.dtype, info["blank"]
((784,), dtype('float32'), True)

NumPy is imported here; Pillow only inside the functions that decode or resize.
"""

from __future__ import annotations

import io
import os
import re
import struct

import numpy as np

MAX_SIDE = 1024  # largest accepted width and height, in pixels
MAX_FILE_BYTES = 16 << 20  # largest image file :func:`load_image_file` reads
BOX = 20  # longer side of the ink's bounding box in the output
SIDE = 28  # output is SIDE × SIDE
CENTRE = 14.0  # where MNIST puts the centre of mass (row, column index; measured: 13.99, 14.01)
INK = 0.1  # ink threshold, after stretching to [0, 1]
MIN_CONTRAST = 0.2  # less difference than this between ink and background: nothing drawn
MIN_EXTENT = 0.08  # ink spanning less than this fraction of the longer side: nothing drawn
MIN_MASS = 0.002  # total ink below this fraction of the area: nothing drawn

_PNG = b"\x89PNG\r\n\x1a\n"
_JPEG = b"\xff\xd8\xff"
# JPEG start-of-frame markers (they carry the dimensions); C4, C8 and CC are not frames.
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_SOS, _EOI = 0xDA, 0xD9
# A marker as libjpeg finds one in entropy-coded data: 0xFF, then neither a stuffed 0x00, a fill 0xFF nor a restart.
_NEXT_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")

# Bounds on the decoder's work, checked by walking the file's structure before decoding.
# Measured on this project's 2-core machine (Pillow 13, libjpeg-turbo 3): one scan of a 1024×1024
# progressive JPEG costs about 0.4 ms even when empty, so 100,000 empty scans in 1 MB cost 40 s;
# Pillow parses each JPEG segment and each PNG chunk in Python, about 6 µs and 15 µs a piece.
MAX_JPEG_SCANS = 256  # SOS segments; libjpeg writes 6 (gray) or 10 (color) for a progressive JPEG
MAX_SCAN_PIXELS = 64 * MAX_SIDE * MAX_SIDE  # scans × width × height: 64 scans of a 1024×1024 image (~30 ms)
MAX_JPEG_SEGMENTS = 1024  # marker segments (and fill bytes between them) in the whole file
MAX_PNG_CHUNKS = 4096  # chunks; 1 MB split into libpng's 8 KB IDAT chunks is 128
MAX_PNG_INFLATED = 16  # zTXt, iTXt and iCCP chunks, each of which Pillow may inflate to 1 MB
ORIENTATION = 0x0112  # the EXIF tag
# EXIF orientation -> the transpose that shows the image upright (as Pillow's ImageOps.exif_transpose).
_UPRIGHT = {2: "FLIP_LEFT_RIGHT", 3: "ROTATE_180", 4: "FLIP_TOP_BOTTOM", 5: "TRANSPOSE", 6: "ROTATE_270",
            7: "TRANSVERSE", 8: "ROTATE_90"}


class ImageError(ValueError):
    """An image that is not a PNG or JPEG, is corrupt, or is too large."""


# ---------------------------------------------------------------- decoding


def header_size(data: bytes) -> tuple[str, int, int]:
    """``(format, width, height)`` read from a PNG or JPEG header, without decoding pixels.

    Raises :class:`ImageError` for anything else or a header that is cut short.
    """
    if data[:8] == _PNG:
        if len(data) < 24 or data[12:16] != b"IHDR":
            raise ImageError("PNG has no IHDR header")
        w, h = struct.unpack(">II", data[16:24])
        return "PNG", w, h
    if data[:3] == _JPEG:
        i, segments = 2, 0
        while i + 9 <= len(data):
            if data[i] != 0xFF:
                raise ImageError("corrupt JPEG header")
            segments += 1
            if segments > MAX_JPEG_SEGMENTS:
                raise ImageError(f"JPEG has more than {MAX_JPEG_SEGMENTS} marker segments before its frame header")
            marker = data[i + 1]
            if marker == 0xFF:  # fill byte
                i += 1
                continue
            if marker in _SOF:
                h, w = struct.unpack(">HH", data[i + 5 : i + 9])
                return "JPEG", w, h
            if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a length
                i += 2
                continue
            i += 2 + struct.unpack(">H", data[i + 2 : i + 4])[0]
        raise ImageError("JPEG has no frame header")
    raise ImageError("not a PNG or JPEG image")


def check_size(w: int, h: int) -> None:
    """Raise :class:`ImageError` unless ``1 <= w, h <= MAX_SIDE``."""
    if not (1 <= w <= MAX_SIDE and 1 <= h <= MAX_SIDE):
        raise ImageError(f"image is {w}x{h} pixels; the limit is {MAX_SIDE}x{MAX_SIDE}")


def jpeg_scans(data: bytes, limit: int) -> int:
    """The number of scans (SOS segments) in JPEG ``data``, counted from its markers without decoding.

    Up to the first scan the segments must follow one another (Pillow parses
    them in Python); after it, entropy-coded data is skipped as libjpeg skips
    it, to the next 0xFF that is not stuffing, fill or a restart marker.
    Counting stops at ``limit + 1`` scans. Raises :class:`ImageError` for bytes
    between header segments, or more than ``MAX_JPEG_SEGMENTS`` segments.
    """
    i, n, scans, segments = 2, len(data), 0, 0
    while i + 4 <= n:
        if scans:  # inside or after a scan: find the next marker
            found = _NEXT_MARKER.search(data, i)
            if found is None:
                break
            i = found.start()
        elif data[i] != 0xFF:
            raise ImageError(f"corrupt JPEG header (byte 0x{data[i]:02x} at offset {i} between segments)")
        segments += 1
        if segments > MAX_JPEG_SEGMENTS:
            raise ImageError(f"JPEG has more than {MAX_JPEG_SEGMENTS} marker segments")
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte before a marker
            i += 1
        elif marker == _EOI:
            break
        elif marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a length
            i += 2
        else:
            if marker == _SOS:
                scans += 1
                if scans > limit:
                    break
            i += 2 + struct.unpack_from(">H", data, i + 2)[0]
    return scans


def png_chunks(data: bytes) -> tuple[int, int]:
    """``(chunks, inflated)``: how many chunks PNG ``data`` holds up to IEND, and how many are zTXt, iTXt or iCCP.

    Walks the chunk headers only; stops counting past ``MAX_PNG_CHUNKS``.
    """
    i, n, chunks, inflated = 8, len(data), 0, 0
    while i + 8 <= n and chunks <= MAX_PNG_CHUNKS:
        length, kind = struct.unpack_from(">I4s", data, i)
        chunks += 1
        inflated += kind in (b"zTXt", b"iTXt", b"iCCP")
        if kind == b"IEND":
            break
        i += 12 + length
    return chunks, inflated


def check_work(fmt: str, data: bytes, w: int, h: int) -> None:
    """Raise :class:`ImageError` if decoding ``data`` (``fmt`` "PNG" or "JPEG", ``w`` × ``h``) would cost too much.

    The pixel limit bounds a PNG's pixel data: at most 1024×1024 pixels of 8
    bytes (16-bit RGBA), so at most 8 MB is inflated however the zlib stream is
    built (Pillow stops inflating when the image is full), interlaced or not,
    any palette. What it does not bound is the work per byte of file: a JPEG's
    scans (each one a pass over every block of the image, even when empty),
    and segments or chunks that Pillow parses one by one in Python. So:
    JPEG: at most ``MAX_JPEG_SCANS`` scans, ``scans × w × h <= MAX_SCAN_PIXELS``
    and ``MAX_JPEG_SEGMENTS`` segments; PNG: at most ``MAX_PNG_CHUNKS`` chunks,
    ``MAX_PNG_INFLATED`` of them compressed text or ICC profiles. The worst image
    within these limits decodes in under 0.1 s.
    """
    if fmt == "JPEG":
        limit = min(MAX_JPEG_SCANS, MAX_SCAN_PIXELS // (w * h))
        if jpeg_scans(data, limit) > limit:
            raise ImageError(f"JPEG has more than {limit} scans; the limit for {w}x{h} pixels is {limit} "
                             f"(scans x pixels <= 64 x {MAX_SIDE}x{MAX_SIDE}, at most {MAX_JPEG_SCANS})")
    else:
        chunks, inflated = png_chunks(data)
        if chunks > MAX_PNG_CHUNKS:
            raise ImageError(f"PNG has more than {MAX_PNG_CHUNKS} chunks")
        if inflated > MAX_PNG_INFLATED:
            raise ImageError(f"PNG has {inflated} compressed text or ICC chunks; the limit is {MAX_PNG_INFLATED}")


def orientation(im) -> int:
    """The EXIF orientation of a loaded Pillow image: 1..8, or 1 when there is none or the EXIF block is broken.

    A phone stores a photo as the sensor saw it and records in EXIF how to turn
    it upright (6: turn 90° clockwise). A broken EXIF block is ignored, as
    browsers ignore it: the pixels are still good. The block is read here
    (:func:`exif_orientation`), not by Pillow's parser, whose answer on
    damaged blocks changes between Pillow versions.
    """
    exif = im.info.get("exif")
    return exif_orientation(exif) if isinstance(exif, bytes) else 1


def exif_orientation(exif: bytes) -> int:
    """The orientation tag (0x0112) of an EXIF block's first IFD: 1..8, else 1.

    ``exif`` is a TIFF structure, optionally after the ``Exif\\0\\0`` header of
    a JPEG APP1 segment: byte order (``II`` or ``MM``), 42, the offset of
    IFD0; IFD0 is a 2-byte count and 12-byte entries ``(tag, type, count,
    value)``. The first entry with the tag counts; it must be a SHORT (type 3)
    or LONG (4) whose first value lies inside the block. Entries announced
    past the end are not there; the scan over entries is one NumPy pass.
    """
    tiff = exif[6:] if exif.startswith(b"Exif\x00\x00") else exif
    order = {b"II": "<", b"MM": ">"}.get(tiff[:2])
    if order is None or len(tiff) < 8 or int.from_bytes(tiff[2:4], "little" if order == "<" else "big") != 42:
        return 1
    u16, u32 = np.dtype(order + "u2"), np.dtype(order + "u4")
    ifd = int(np.frombuffer(tiff, u32, 1, 4)[0])
    if ifd + 2 > len(tiff):
        return 1
    count = min(int(np.frombuffer(tiff, u16, 1, ifd)[0]), (len(tiff) - ifd - 2) // 12)
    entries = np.frombuffer(tiff, np.dtype([("tag", u16), ("type", u16), ("count", u32), ("value", "V4")]), count, ifd + 2)
    hits = np.flatnonzero(entries["tag"] == ORIENTATION)
    if not len(hits):
        return 1
    entry = entries[hits[0]]
    size = {3: 2, 4: 4}.get(int(entry["type"]))
    if size is None or int(entry["count"]) < 1:
        return 1
    field = bytes(entry["value"])
    if int(entry["count"]) * size > 4:  # the values lie elsewhere: the field holds their offset
        offset = int(np.frombuffer(field, u32)[0])
        if offset + size > len(tiff):
            return 1
        field = tiff[offset : offset + size]
    value = int(np.frombuffer(field[:size], u16 if size == 2 else u32)[0])
    return value if 1 <= value <= 8 else 1


def upright(im):
    """``im`` turned as its EXIF orientation says (:func:`orientation`); unchanged for orientation 1."""
    from PIL import Image

    method = _UPRIGHT.get(orientation(im))
    return im if method is None else im.transpose(Image.Transpose[method])


def open_image(data: bytes):
    """PNG or JPEG bytes -> a loaded, upright Pillow image, after every check below.

    The size is checked from the header before decoding (:func:`header_size`),
    and again from Pillow's own reading of the header before ``load()``; the
    decoder's work is bounded before it starts (:func:`check_work`); the image
    is turned upright as its EXIF orientation says (:func:`upright`).
    """
    from PIL import Image

    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ImageError(f"expected image bytes, got {type(data).__name__}")
    data = bytes(data)
    fmt, w, h = header_size(data)
    check_size(w, h)
    check_work(fmt, data, w, h)
    try:
        im = Image.open(io.BytesIO(data), formats=[fmt])
        if im.size != (w, h):
            raise ImageError(f"{fmt} header says {w}x{h} but the image is {im.size[0]}x{im.size[1]}")
        check_size(*im.size)
        im.load()
        return upright(im)
    except ImageError:
        raise
    except (OSError, ValueError, SyntaxError, EOFError, IndexError, struct.error, Image.DecompressionBombError) as e:
        raise ImageError(f"cannot decode the {fmt} image ({type(e).__name__}: {e})") from None


def decode_image(data: bytes):
    """Decode PNG or JPEG bytes into ``(gray, alpha)``: float32 ``(H, W)`` in [0, 1]; ``alpha`` is None if opaque.

    Checked and turned upright by :func:`open_image`, so ``(H, W)`` is the upright size.
    """
    return _converted(open_image(data), _to_arrays)


def decode_rgb(data: bytes):
    """Decode PNG or JPEG bytes into ``(rgb, alpha)``: float32 ``(H, W, 3)`` and ``(H, W)`` (None if opaque), in [0, 1].

    Checked and turned upright as :func:`decode_image`; a gray image gives three equal channels.
    """
    return _converted(open_image(data), _to_rgb)


def _converted(im, convert):
    """``convert(im)``, with whatever Pillow raises converting a strange mode named as an :class:`ImageError`."""
    try:
        return convert(im)
    except (OSError, ValueError) as e:
        raise ImageError(f"cannot convert the {im.format or ''} image of mode {im.mode} ({type(e).__name__}: {e})") from None


def _to_arrays(im):
    """A loaded Pillow image -> ``(gray, alpha or None)``, float32 in [0, 1]."""
    if im.mode.startswith("I"):  # 16-bit grayscale PNG; Pillow's convert("L") would clip it
        return np.clip(np.asarray(im, np.float32) / 65535.0, 0.0, 1.0), None
    if _has_alpha(im):
        im = (im if im.mode in ("RGBA", "LA") else im.convert("RGBA")).convert("LA")
    else:
        im = im.convert("L")
    a = np.asarray(im)
    if a.ndim == 2 or a[..., 1].min() == 255:
        return _unit(a if a.ndim == 2 else a[..., 0]), None
    return _unit(a[..., 0]), _unit(a[..., 1])


def _to_rgb(im):
    """A loaded Pillow image -> ``(rgb (H, W, 3), alpha or None)``, float32 in [0, 1]."""
    if im.mode.startswith("I"):
        gray = np.clip(np.asarray(im, np.float32) / 65535.0, 0.0, 1.0)
        return np.repeat(gray[..., None], 3, axis=2), None
    a = np.asarray(im.convert("RGBA") if _has_alpha(im) else im.convert("RGB"))
    if a.shape[2] == 3 or a[..., 3].min() == 255:
        return _unit(a[..., :3]), None
    return _unit(a[..., :3]), _unit(a[..., 3])


def _has_alpha(im) -> bool:
    return im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info


def _unit(u8):
    """uint8 -> contiguous float32 in [0, 1]."""
    out = u8.astype(np.float32)
    out *= np.float32(1 / 255)
    return out


def read_image_file(path) -> bytes:
    """The bytes of an image file, at most ``MAX_FILE_BYTES``; :class:`ImageError` names the file otherwise."""
    from fnn.serialization import open_regular

    path = os.fspath(path)
    try:
        with open_regular(path, ImageError, "an image") as f:  # never blocks on a FIFO or reads a device
            data = f.read(MAX_FILE_BYTES + 1)
    except OSError as e:
        raise ImageError(f"{path}: cannot read ({e.strerror})") from None
    if len(data) > MAX_FILE_BYTES:
        raise ImageError(f"{path}: larger than {MAX_FILE_BYTES >> 20} MB")
    return data


def load_image_file(path):
    """Read a PNG or JPEG file and preprocess it: ``(x (784,) float32, info)`` as :func:`image_to_mnist`."""
    data = read_image_file(path)
    try:
        return image_to_mnist(data)
    except ImageError as e:
        raise ImageError(f"{os.fspath(path)}: {e}") from None


# ---------------------------------------------------------------- preprocessing


def image_to_mnist(image):
    """Preprocess an image like MNIST: ``(x, info)`` with ``x`` float32 ``(784,)`` in [0, 1].

    Args:
      image: PNG or JPEG bytes; or an array ``(H, W)``, ``(H, W, 1|3|4)`` of
        uint8 (0..255) or floats in [0, 1] (a 4th channel is alpha).

    Returns:
      ``x``: the 28×28 input, flattened; zeros when nothing is drawn.
      ``info``: ``blank`` (bool), ``reason`` (why blank, or None), ``inverted``
      (the ink was dark on light), ``bbox`` (``[top, left, bottom, right]`` of
      the ink in the image) and ``size`` (``[height, width]``).

    Raises:
      ImageError: undecodable, too large, or an array of the wrong shape or range.
    """
    if isinstance(image, (bytes, bytearray, memoryview)):
        return to_mnist(*decode_image(image))
    return to_mnist(*split_gray_array(image))


def split_gray_array(a):
    """An image array ``(H, W)`` or ``(H, W, 1|3|4)`` (uint8, or floats in [0, 1]) -> ``(gray, alpha or None)`` float32.

    Colour becomes BT.601 luma; a 4th channel is alpha. :class:`ImageError` for anything else.
    """
    a = np.asarray(a)
    if a.dtype.kind not in "uif" or a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (1, 3, 4)):
        raise ImageError(f"expected an (H, W) or (H, W, 1|3|4) numeric array, got {a.dtype}{a.shape}")
    check_size(a.shape[1], a.shape[0])
    if a.dtype == np.uint8:
        a = a.astype(np.float32) * np.float32(1 / 255)
    else:
        a = a.astype(np.float32)
        if not np.isfinite(a).all() or a.min() < 0 or a.max() > 1:
            raise ImageError("float pixels must be finite and in [0, 1]")
    if a.ndim == 2:
        return a, None
    alpha = a[..., 3] if a.shape[2] == 4 else None
    gray = a[..., :3] @ np.float32([0.299, 0.587, 0.114]) if a.shape[2] >= 3 else a[..., 0]
    return gray, alpha


def to_mnist(gray, alpha=None):
    """The preprocessing proper: ``gray`` ``(H, W)`` in [0, 1], ``alpha`` ``(H, W)`` or None -> ``(x, info)``."""
    h, w = gray.shape
    info = {"blank": False, "reason": None, "inverted": False, "bbox": None, "size": [int(h), int(w)]}
    if alpha is not None:
        if float(alpha.sum()) * 255 < 1:  # fully transparent
            return _blank(info, "nothing drawn")
        gray = flatten_alpha(gray, alpha)
    level = np.float32(np.median(border(gray)))
    info["inverted"] = bool(level > 0.5)  # dark ink on a light background
    ink = level - gray if info["inverted"] else gray - level
    contrast = float(ink.max())
    if contrast < MIN_CONTRAST:
        return _blank(info, "nothing drawn")
    top, left, bottom, right = info["bbox"] = bounding_box(ink >= INK * contrast)
    crop = ink[top:bottom, left:right] * np.float32(1 / contrast)
    crop[crop < INK] = 0  # background noise (JPEG artefacts, paper texture) and negative values
    reason = too_little(bottom - top, right - left, float(crop.sum()), h, w)
    if reason:
        return _blank(info, reason)
    return place(scale_to_box(crop)).reshape(-1), info


def flatten_alpha(gray, alpha):
    """``gray`` ``(H, W)`` seen through ``alpha`` (not fully transparent), flattened onto a background that contrasts
    with it: onto white if the visible content is dark, onto black if it is light."""
    if float(np.vdot(gray, alpha)) / float(alpha.sum()) < 0.5:
        return (gray - 1) * alpha + 1
    return gray * alpha


def border(gray):
    """The outermost pixels of ``gray`` ``(H, W)``, once each: where the background shows."""
    return np.concatenate([gray[0], gray[-1], gray[1:-1, 0], gray[1:-1, -1]])


def bounding_box(mask) -> list:
    """``[top, left, bottom, right]`` of the true (nonzero) pixels of ``mask`` ``(H, W)``, which has some."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return [int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1]


def blank_reason(ink):
    """Why light-on-dark ``ink`` (``(H, W)``, or MNIST's ``(784,)``, in [0, 1]) counts as blank, or None.

    Blank: no pixel reaches ``MIN_CONTRAST``; near-blank: the pixels of at least
    ``INK`` span under ``MIN_EXTENT`` of the longer side, or all of them hold
    under ``MIN_MASS`` of the area's worth of ink.
    """
    ink = np.asarray(ink)
    if ink.ndim == 1:
        ink = ink.reshape(SIDE, SIDE)
    return blank_reasons(ink[None])[0]


def blank_reasons(batch) -> list:
    """:func:`blank_reason` for each image of ``batch`` ``(n, H, W)`` (in [0, 1]) at once: a reason or None each.

    >>> x = np.zeros((2, 28, 28), np.float32); x[1, 4:24, 10:16] = 1.0
    >>> blank_reasons(x)
    ['nothing drawn', None]
    """
    batch = np.asarray(batch)
    n, h, w = batch.shape
    if n == 0:
        return []
    ink = batch >= INK
    rows, cols = ink.any(axis=2), ink.any(axis=1)  # (n, H), (n, W)
    height = np.where(rows.any(1), h - rows[:, ::-1].argmax(1) - rows.argmax(1), 0)
    width = np.where(cols.any(1), w - cols[:, ::-1].argmax(1) - cols.argmax(1), 0)
    mass = np.where(ink, batch, 0).sum(axis=(1, 2), dtype=np.float64)
    peak = batch.reshape(n, -1).max(axis=1)
    return ["nothing drawn" if p < MIN_CONTRAST else too_little(a, b, m, h, w)
            for p, a, b, m in zip(peak.tolist(), height.tolist(), width.tolist(), mass.tolist())]


def too_little(height, width, mass, h, w):
    """The near-blank test: ink spanning ``height`` x ``width`` with total ``mass`` in an ``h`` x ``w`` image."""
    if max(height, width) < MIN_EXTENT * max(h, w) or mass < MIN_MASS * h * w:
        return "too little ink to read"
    return None


def _blank(info, reason):
    info.update(blank=True, reason=reason)
    return np.zeros(SIDE * SIDE, np.float32), info


def scale_to_box(ink, box=BOX):
    """Resize ``ink`` ``(h, w)`` so its longer side is ``box`` px, keeping the aspect ratio (anti-aliased)."""
    from PIL import Image

    h, w = ink.shape
    f = box / max(h, w)
    size = (max(1, round(w * f)), max(1, round(h * f)))
    out = np.asarray(Image.fromarray(np.ascontiguousarray(ink, np.float32), "F").resize(size, Image.Resampling.BILINEAR))
    return np.clip(out, 0, 1)


def place(small, side=SIDE, centre=CENTRE):
    """Put ``small`` ``(h, w)`` (h, w <= side) in a ``side``×``side`` field with its centre of mass at ``centre``.

    The shift is whole pixels and never pushes ink out of the field.
    """
    h, w = small.shape
    mass = float(small.sum())
    cy = float(small.sum(axis=1) @ np.arange(h)) / mass if mass > 0 else (h - 1) / 2
    cx = float(small.sum(axis=0) @ np.arange(w)) / mass if mass > 0 else (w - 1) / 2
    top = int(np.clip(round(centre - cy), 0, side - h))
    left = int(np.clip(round(centre - cx), 0, side - w))
    out = np.zeros((side, side), np.float32)
    out[top : top + h, left : left + w] = small
    return out


__all__ = [
    "ImageError",
    "MAX_SIDE",
    "header_size",
    "check_size",
    "check_work",
    "jpeg_scans",
    "png_chunks",
    "orientation",
    "upright",
    "open_image",
    "decode_image",
    "decode_rgb",
    "read_image_file",
    "load_image_file",
    "image_to_mnist",
    "to_mnist",
    "split_gray_array",
    "too_little",
    "flatten_alpha",
    "border",
    "bounding_box",
    "blank_reason",
    "blank_reasons",
    "scale_to_box",
    "place",
]
