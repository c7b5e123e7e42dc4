"""Turn a drawing or a photo of a digit into an MNIST-style input, as MNIST itself was made.

MNIST digits are light ink on black, scaled so the longer side of the ink's
bounding box is 20 px (keeping the aspect ratio, anti-aliased), and placed in a
28×28 field so that the ink's centre of mass sits at the centre. A raw
downscaled canvas looks nothing like that, so :func:`image_to_mnist` redoes
those steps:

1. decode (PNG or JPEG only; dimensions checked from the header *before* any
   pixel is decoded; at most 1024×1024);
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
        i = 2
        while i + 9 <= len(data):
            if data[i] != 0xFF:
                raise ImageError("corrupt JPEG header")
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


def decode_image(data: bytes):
    """Decode PNG or JPEG bytes into ``(gray, alpha)``: float32 ``(H, W)`` in [0, 1]; ``alpha`` is None if opaque.

    The size is checked from the header before decoding (:func:`header_size`),
    and again from Pillow's own reading of the header before ``load()``.
    """
    from PIL import Image

    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ImageError(f"expected image bytes, got {type(data).__name__}")
    data = bytes(data)
    fmt, w, h = header_size(data)
    check_size(w, h)
    try:
        im = Image.open(io.BytesIO(data), formats=[fmt])
        if im.size != (w, h):
            raise ImageError(f"{fmt} header says {w}x{h} but the image is {im.size[0]}x{im.size[1]}")
        check_size(*im.size)
        im.load()
        return _to_arrays(im)
    except ImageError:
        raise
    except (OSError, ValueError, SyntaxError, EOFError, IndexError, struct.error, Image.DecompressionBombError) as e:
        raise ImageError(f"cannot decode the {fmt} image ({type(e).__name__}: {e})") from None


def _to_arrays(im):
    """A loaded Pillow image -> ``(gray, alpha or None)``, float32 in [0, 1]."""
    if im.mode.startswith("I"):  # 16-bit grayscale PNG; Pillow's convert("L") would clip it
        return np.clip(np.asarray(im, np.float32) / 65535.0, 0.0, 1.0), None
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info:
        im = (im if im.mode in ("RGBA", "LA") else im.convert("RGBA")).convert("LA")
    else:
        im = im.convert("L")
    a = np.asarray(im)
    if a.ndim == 2 or a[..., 1].min() == 255:
        return _unit(a if a.ndim == 2 else a[..., 0]), None
    return _unit(a[..., 0]), _unit(a[..., 1])


def _unit(u8):
    """uint8 -> contiguous float32 in [0, 1]."""
    out = u8.astype(np.float32)
    out *= np.float32(1 / 255)
    return out


def load_image_file(path):
    """Read a PNG or JPEG file and preprocess it: ``(x (784,) float32, info)`` as :func:`image_to_mnist`."""
    from fnn.serialization import open_regular

    path = os.fspath(path)
    try:
        with open_regular(path, ImageError, "an image") as f:  # never blocks on a FIFO or reads a device
            data = f.read(MAX_FILE_BYTES + 1)
    except OSError as e:
        raise ImageError(f"{path}: cannot read ({e.strerror})") from None
    if len(data) > MAX_FILE_BYTES:
        raise ImageError(f"{path}: larger than {MAX_FILE_BYTES >> 20} MB")
    try:
        return image_to_mnist(data)
    except ImageError as e:
        raise ImageError(f"{path}: {e}") from None


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
    return to_mnist(*_split_array(image))


def _split_array(a):
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
        weight = float(alpha.sum())
        if weight * 255 < 1:  # fully transparent
            return _blank(info, "nothing drawn")
        # Flatten onto white if the visible content is dark, onto black if it is light.
        if float(np.vdot(gray, alpha)) / weight < 0.5:
            gray = (gray - 1) * alpha + 1
        else:
            gray = gray * alpha
    border = np.concatenate([gray[0], gray[-1], gray[1:-1, 0], gray[1:-1, -1]])
    level = np.float32(np.median(border))
    info["inverted"] = bool(level > 0.5)  # dark ink on a light background
    ink = level - gray if info["inverted"] else gray - level
    contrast = float(ink.max())
    if contrast < MIN_CONTRAST:
        return _blank(info, "nothing drawn")
    top, left, bottom, right = info["bbox"] = bounding_box(ink >= INK * contrast)
    crop = ink[top:bottom, left:right] * np.float32(1 / contrast)
    crop[crop < INK] = 0  # background noise (JPEG artefacts, paper texture) and negative values
    reason = _too_little(bottom - top, right - left, float(crop.sum()), h, w)
    if reason:
        return _blank(info, reason)
    return place(scale_to_box(crop)).reshape(-1), info


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
    return ["nothing drawn" if p < MIN_CONTRAST else _too_little(a, b, m, h, w)
            for p, a, b, m in zip(peak.tolist(), height.tolist(), width.tolist(), mass.tolist())]


def _too_little(height, width, mass, h, w):
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
    "decode_image",
    "load_image_file",
    "image_to_mnist",
    "to_mnist",
    "bounding_box",
    "blank_reason",
    "blank_reasons",
    "scale_to_box",
    "place",
]
