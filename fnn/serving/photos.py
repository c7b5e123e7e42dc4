"""Turn a photo into a Fashion-MNIST or a CIFAR-10 input, as those datasets were made.

Fashion-MNIST (Xiao, Rasul and Vollgraf, 2017) made each image from a product
photo on a white background: trim the background, resize the longer edge to
28 px (keeping the aspect ratio), centre it on the shorter edge, negate (so the
background is black), make it 8-bit gray. No centre of mass, no 20 px box, no
contrast stretch: an object's own gray levels are features (a dark coat is
bright in the data, a white shirt dim). :func:`to_fashion` redoes that:

1. flatten transparency onto a background that contrasts with the content;
2. find the background level from the border; a light one is negated, and
   ``ink`` runs from 0 (background) to 1 (its opposite): a photo on white or
   a Fashion-MNIST image as stored (black background) both work;
3. crop to the object (``ink`` of at least ``EDGE`` of its peak);
4. resize the longer side to 28 px (anti-aliased Lanczos), centre the shorter.

CIFAR-10 images are 32×32 RGB photos; :func:`to_rgb32` crops a photo's central
square, resizes it to 32×32 (anti-aliased; a 32×32 image is kept bit for bit)
and flattens transparency onto white. Converting to gray for a model trained
``grayscale`` is the model's step (:mod:`fnn.serving.pipelines`), the same
BT.601 luma as training (:func:`fnn.datasets.transforms.rgb_to_gray`).

>>> x, info = to_fashion(np.ones((60, 40), np.float32))  # a blank white page
>>> x.shape, info["blank"], info["reason"]
((784,), True, 'nothing to see')
>>> x, info = to_rgb32(np.zeros((48, 64, 3), np.float32))
>>> x.shape, x.dtype, info["crop"]
((32, 32, 3), dtype('float32'), [0, 8, 48, 56])

Decoding (size and work bounded before any pixel is decoded, EXIF orientation
applied) is :mod:`fnn.serving.images`'s; Pillow is imported only to resize.
"""

from __future__ import annotations

import numpy as np

from fnn.serving import images

FASHION_SIDE = 28
EDGE = 0.1  # object threshold, as a fraction of the object's peak ink, for the crop
RGB_SIDE = 32
FLAT = 2 / 255  # an image whose values all lie within this of each other holds nothing to see


# ---------------------------------------------------------------- Fashion-MNIST


def image_to_fashion(image):
    """Preprocess an image like Fashion-MNIST: ``(x, info)`` with ``x`` float32 ``(784,)`` in [0, 1].

    Args:
      image: PNG or JPEG bytes; or an array ``(H, W)``, ``(H, W, 1|3|4)`` (uint8, or floats in [0, 1]).

    Returns:
      ``x``: the 28×28 input, flattened, on a black background; zeros when there is nothing to see.
      ``info``: ``blank``, ``reason`` (``"nothing to see"``, ``"too small to read"`` or None),
      ``inverted`` (the background was light), ``bbox`` (``[top, left, bottom, right]`` of the
      object in the image) and ``size`` (``[height, width]``).
    """
    if isinstance(image, (bytes, bytearray, memoryview)):
        return to_fashion(*images.decode_image(image))
    return to_fashion(*images.split_gray_array(image))


def to_fashion(gray, alpha=None):
    """The Fashion-MNIST preprocessing proper: ``gray`` ``(H, W)`` in [0, 1], ``alpha`` or None -> ``(x, info)``."""
    h, w = gray.shape
    info = {"blank": False, "reason": None, "inverted": False, "bbox": None, "size": [int(h), int(w)]}
    if alpha is not None:
        if float(alpha.sum()) * 255 < 1:
            return _blank(info, "nothing to see")
        gray = images.flatten_alpha(gray, alpha)
    level = float(np.median(images.border(gray)))
    info["inverted"] = level > 0.5
    if info["inverted"]:  # a photo on white: negate, as Fashion-MNIST did
        ink = (np.float32(level) - gray) * np.float32(1 / level)
    else:
        ink = (gray - np.float32(level)) * np.float32(1 / max(1 - level, 1e-6))
    np.clip(ink, 0, 1, out=ink)
    peak = float(ink.max())
    if peak < images.MIN_CONTRAST:
        return _blank(info, "nothing to see")
    top, left, bottom, right = info["bbox"] = images.bounding_box(ink >= EDGE * peak)
    crop = ink[top:bottom, left:right]
    if images.too_little(bottom - top, right - left, float(crop[crop >= EDGE * peak].sum()) / peak, h, w):
        return _blank(info, "too small to read")
    small = resize(crop, FASHION_SIDE / max(crop.shape))
    return centre(small, FASHION_SIDE).reshape(-1), info


def centre(small, side):
    """Put ``small`` ``(h, w)`` (h, w <= side) in the middle of a black ``side``×``side`` field.

    An odd margin leaves the extra pixel before the object, as Fashion-MNIST's images have it.
    """
    h, w = small.shape[:2]
    top, left = (side - h + 1) // 2, (side - w + 1) // 2
    out = np.zeros((side, side, *small.shape[2:]), np.float32)
    out[top : top + h, left : left + w] = small
    return out


def resize(a, factor=None, size=None):
    """Resize ``a`` ``(h, w)`` or ``(h, w, c)`` by ``factor`` (longer side rounded) or to ``size`` ``(height, width)``.

    Anti-aliased Lanczos per channel in float32, clipped to [0, 1]; a same-size resize returns ``a`` as it is.
    """
    from PIL import Image

    h, w = a.shape[:2]
    if size is None:
        size = (max(1, round(h * factor)), max(1, round(w * factor)))
    if tuple(size) == (h, w):
        return a
    planes = a[..., None] if a.ndim == 2 else a
    out = np.stack([np.asarray(Image.fromarray(np.ascontiguousarray(planes[..., c], np.float32), "F")
                               .resize((size[1], size[0]), Image.Resampling.LANCZOS)) for c in range(planes.shape[2])], axis=2)
    np.clip(out, 0, 1, out=out)
    return out[..., 0] if a.ndim == 2 else out


# ---------------------------------------------------------------- CIFAR-10


def image_to_rgb32(image):
    """Preprocess an image like CIFAR-10: ``(x, info)`` with ``x`` float32 ``(32, 32, 3)`` in [0, 1].

    Args:
      image: PNG or JPEG bytes; or an array ``(H, W)``, ``(H, W, 1|3|4)`` (uint8, or floats in [0, 1]).

    Returns:
      ``x``: the photo's central square at 32×32 RGB; zeros when there is nothing to see.
      ``info``: ``blank``, ``reason`` (``"nothing to see"``: fully transparent or one flat colour),
      ``crop`` (``[top, left, bottom, right]`` of the square in the image) and ``size``.
    """
    if isinstance(image, (bytes, bytearray, memoryview)):
        return to_rgb32(*images.decode_rgb(image))
    return to_rgb32(*split_rgb_array(image))


def split_rgb_array(a):
    """An image array -> ``(rgb (H, W, 3), alpha or None)`` float32 in [0, 1]; :class:`ImageError` for anything else."""
    a = np.asarray(a)
    if a.dtype.kind not in "uif" or a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (1, 3, 4)):
        raise images.ImageError(f"expected an (H, W) or (H, W, 1|3|4) numeric array, got {a.dtype}{a.shape}")
    images.check_size(a.shape[1], a.shape[0])
    if a.dtype == np.uint8:
        a = a.astype(np.float32) * np.float32(1 / 255)
    else:
        a = a.astype(np.float32)
        if not np.isfinite(a).all() or a.min() < 0 or a.max() > 1:
            raise images.ImageError("float pixels must be finite and in [0, 1]")
    if a.ndim == 2 or a.shape[2] == 1:
        return np.repeat(a.reshape(*a.shape[:2], 1), 3, axis=2), None
    return np.ascontiguousarray(a[..., :3]), (a[..., 3] if a.shape[2] == 4 else None)


def to_rgb32(rgb, alpha=None):
    """The CIFAR-10 preprocessing proper: ``rgb`` ``(H, W, 3)`` in [0, 1], ``alpha`` or None -> ``(x, info)``."""
    h, w = rgb.shape[:2]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    info = {"blank": False, "reason": None, "crop": [top, left, top + s, left + s], "size": [int(h), int(w)]}
    if alpha is not None:
        if float(alpha.sum()) * 255 < 1:
            return _blank(info, "nothing to see", (RGB_SIDE, RGB_SIDE, 3))
        rgb = rgb * alpha[..., None] + (1 - alpha[..., None])  # onto white, as a page shows it
    square = rgb[top : top + s, left : left + s]
    if float(square.max() - square.min()) < FLAT:
        return _blank(info, "nothing to see", (RGB_SIDE, RGB_SIDE, 3))
    return np.ascontiguousarray(resize(square, size=(RGB_SIDE, RGB_SIDE)), np.float32), info


def flat_reasons(batch) -> list:
    """For each image of ``batch`` ``(n, ...)`` in [0, 1]: ``"nothing to see"`` when it is one flat colour, else None."""
    batch = np.asarray(batch).reshape(len(batch), -1)
    if len(batch) == 0:
        return []
    spread = batch.max(axis=1) - batch.min(axis=1)
    return ["nothing to see" if s < FLAT else None for s in spread.tolist()]


def _blank(info, reason, shape=(FASHION_SIDE * FASHION_SIDE,)):
    info.update(blank=True, reason=reason)
    return np.zeros(shape, np.float32), info


__all__ = ["image_to_fashion", "to_fashion", "image_to_rgb32", "to_rgb32", "split_rgb_array", "flat_reasons", "centre",
           "resize"]
