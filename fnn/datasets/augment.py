"""Data augmentation for image batches: random shifts, rotations, scales, elastic distortion and flips, seeded.

Every function takes a stored batch ``x``, uint8 ``(n, h, w)`` (grayscale) or
``(n, h, w, c)``, and a key (:mod:`fnn.random`), and returns a new uint8 batch
of the same shape; the same key gives the same batch. All images are done at
once, with whole-batch array operations (no Python loop over images or pixels).

**Affine maps** (:func:`affine`). Each image gets its own map, drawn from the key:
a shift ``t = (t_row, t_col)`` uniform in ``[-shift, shift]`` pixels, a rotation
``theta`` uniform in ``[-rotate, rotate]`` degrees, a scale ``s`` uniform in
``[1 - scale, 1 + scale]``, and (``flip=True``) a horizontal mirror ``F`` with
probability 1/2. Output pixel ``p = (row, col)`` is read from the input at

    q = F R(-theta) (p - c - t) / s + c,        c = ((h - 1) / 2, (w - 1) / 2)

(the inverse of ``p = s R(theta) F (q - c) + c + t``), interpolated bilinearly
between the four pixels around ``q``; pixels outside the image read as 0 (black,
the MNIST background). A whole-pixel shift of an unrotated, unscaled image
moves it exactly (bilinear weights 1 and 0).

**Elastic distortion** (:func:`elastic`; Simard, Steinkraus & Platt, 2003). Two
random fields ``u, v`` uniform in ``[-1, 1]`` per pixel are smoothed by a
Gaussian of standard deviation ``sigma`` pixels and scaled by ``alpha``; output
pixel ``p`` reads from ``q + alpha * (G * u, G * v)(p)`` (after the affine map,
in one interpolation). The smoothing is separable: ``G * u = G_h @ u @ G_w.T``
with ``G_h: (h, h)``, the 1-D Gaussian (truncated at 3 sigma, edges reflected as
``d c b a | a b c d | d c b a``) written as a matrix, so a batch is two matrix
products. Simard's ``alpha = 34``, ``sigma = 4`` for MNIST are the defaults.

**Flips only** (no shift, rotation, scale or elastic) skip the interpolation: the
chosen images are mirrored, the rest returned as they are.

:func:`make` builds the ``augment(batch, key)`` callable :func:`fnn.fit` takes from
strengths; :func:`parse` reads them from a config value (``"digits"``,
``"photos"``, ``"none"``, ``"shift=2,rotate=10"`` or a mapping).

>>> from fnn import random
>>> x = np.zeros((2, 5, 5), np.uint8); x[:, 2, 2] = 255
>>> moved = warp(x, np.eye(2, dtype=np.float32)[None].repeat(2, 0), np.array([[1, 0], [0, -2]], np.float32))
>>> [tuple(int(i) for i in np.argwhere(m)[0]) for m in moved]
[(3, 2), (2, 0)]
>>> augment = make(shift=2, rotate=10, scale=0.1)
>>> out = augment(x, random.key(0))
>>> out.shape, out.dtype, bool(np.array_equal(out, augment(x, random.key(0))))
((2, 5, 5), dtype('uint8'), True)
"""

from __future__ import annotations

import functools
import math

import numpy as np

from fnn import random
from fnn.workspace import FRESH, Workspace

#: Simard et al.'s elastic strength and smoothing for MNIST (pixels).
ELASTIC_ALPHA, ELASTIC_SIGMA = 34.0, 4.0
#: The options :func:`make` takes, with their off values.
OFF = {"shift": 0.0, "rotate": 0.0, "scale": 0.0, "elastic": 0.0, "sigma": ELASTIC_SIGMA, "flip": False}
#: Named recipes: digits get small shifts, rotations and scales (never flips: a mirrored 2 is no 2);
#: photos (CIFAR-like) get shifts of 4 pixels (as a random crop of a 4-pixel padded image) and mirror images.
PRESETS = {
    "digits": {**OFF, "shift": 2.0, "rotate": 10.0, "scale": 0.1},
    "photos": {**OFF, "shift": 4.0, "flip": True},
}


class AugmentError(ValueError):
    """An augmentation option or batch that cannot be used; the message names it."""


# ---------------------------------------------------------------- the maps


def random_affine(key, n: int, shift=0.0, rotate=0.0, scale=0.0, flip=False):
    """``(matrix (n, 2, 2), offset (n, 2))`` float32: ``n`` random inverse maps, as :func:`warp` takes them.

    ``matrix[i] = F R(-theta) / s`` and ``offset[i] = t`` (see the module docstring), in (row, col) order.
    """
    k_shift, k_angle, k_scale, k_flip = random.split(key, 4)
    t = random.uniform(k_shift, (n, 2), -shift, shift) if shift else np.zeros((n, 2), np.float32)
    theta = np.deg2rad(random.uniform(k_angle, (n,), -rotate, rotate)) if rotate else np.zeros(n, np.float32)
    s = random.uniform(k_scale, (n,), 1 - scale, 1 + scale) if scale else np.ones(n, np.float32)
    cos, sin = np.cos(theta) / s, np.sin(theta) / s
    # R(-theta) in (row, col) coordinates with rows pointing down: [[cos, sin], [-sin, cos]]
    matrix = np.stack([np.stack([cos, sin], -1), np.stack([-sin, cos], -1)], -2).astype(np.float32)
    if flip:
        matrix[:, 1, :] *= np.where(random.bernoulli(k_flip, 0.5, (n,)), -1, 1).astype(np.float32)[:, None]
    return matrix, t.astype(np.float32)


@functools.lru_cache(maxsize=16)
def gaussian_matrix(size: int, sigma: float) -> np.ndarray:
    """``(size, size)`` float32: row ``i`` holds the weights of the 1-D Gaussian smoothing around ``i``.

    The kernel is ``exp(-k^2 / (2 sigma^2))`` for ``|k| <= 3 sigma``, normalized to sum 1; indices past an edge
    reflect (``d c b a | a b c d``), so every row sums to 1. Read-only (cached).
    """
    radius = max(1, int(math.ceil(3 * sigma)))
    k = np.arange(-radius, radius + 1)
    g = np.exp(-(k**2) / (2.0 * sigma**2))
    g /= g.sum()
    rows = np.repeat(np.arange(size), len(k))
    cols = (np.arange(size)[:, None] + k[None, :]).ravel()
    period = 2 * size
    cols = np.mod(cols, period)
    cols = np.where(cols >= size, period - 1 - cols, cols)  # reflect about the edges
    m = np.zeros((size, size))
    np.add.at(m, (rows, cols), np.tile(g, size))
    m = m.astype(np.float32)
    m.flags.writeable = False
    return m


def displacement(key, n: int, h: int, w: int, alpha=ELASTIC_ALPHA, sigma=ELASTIC_SIGMA):
    """``(d_row, d_col)``, each ``(n, h, w)`` float32: Simard's smoothed random displacement fields times ``alpha``."""
    u = random.uniform(key, (2, n, h, w), -1.0, 1.0)
    smooth = np.matmul(np.matmul(gaussian_matrix(h, float(sigma)), u), gaussian_matrix(w, float(sigma)).T)
    smooth *= np.float32(alpha)
    return smooth[0], smooth[1]


# ---------------------------------------------------------------- resampling


def _images(x):
    """``x`` as uint8 ``(n, h, w, c)`` (a view), with the check that it is an image batch."""
    x = np.asarray(x)
    if x.dtype != np.uint8 or x.ndim not in (3, 4) or min(x.shape[1:3], default=0) < 1:
        raise AugmentError(f"augmentation takes uint8 image batches (n, h, w) or (n, h, w, c), got {x.dtype}{x.shape}")
    return x if x.ndim == 4 else x[..., None]


def warp(x, matrix, offset, d_row=None, d_col=None, ws=FRESH):
    """Resample each image of ``x`` through its inverse map; a new uint8 array, the shape of ``x``.

    ``matrix (n, 2, 2)`` and ``offset (n, 2)`` (rows, cols) give the source of output pixel ``p`` as
    ``q = matrix @ (p - c - offset) + c`` (plus the displacement fields ``d_row, d_col (n, h, w)`` when given);
    values are interpolated bilinearly, 0 outside the image, rounded to the nearest integer. Scratch arrays
    come from the workspace ``ws`` (:mod:`fnn.workspace`; new ones by default).
    """
    x4 = _images(x)
    n, h, w, c = x4.shape
    matrix, offset = np.asarray(matrix, np.float32), np.asarray(offset, np.float32)
    cr, cc = np.float32((h - 1) / 2), np.float32((w - 1) / 2)
    di = (np.arange(h, dtype=np.float32) - cr)[None, :, None] - offset[:, 0, None, None]  # (n, h, 1)
    dj = (np.arange(w, dtype=np.float32) - cc)[None, None, :] - offset[:, 1, None, None]  # (n, 1, w)
    m = matrix[:, :, :, None, None]
    src_r, src_c, tmp = (ws.array(name, (n, h, w), np.float32) for name in ("src_r", "src_c", "tmp"))
    for out, row, base in ((src_r, 0, cr), (src_c, 1, cc)):
        np.multiply(m[:, row, 0], di, out=out)
        out += np.multiply(m[:, row, 1], dj, out=tmp)
        out += base
    if d_row is not None:
        src_r += d_row
        src_c += d_col
    return bilinear(x4, src_r, src_c, ws).reshape(np.shape(x))


def bilinear(x4, src_r, src_c, ws=FRESH):
    """``out[b, i, j] = x4[b]`` read at ``(src_r[b, i, j], src_c[b, i, j])``, bilinearly, 0 outside; uint8 ``(n, h, w, c)``.

    The images are framed by one row and column of zeros and the coordinates clipped to ``[-1, h]`` and ``[-1, w]``:
    a point farther out then reads the zero frame, so the four gathers need no masks. ``src_r`` and ``src_c`` are
    overwritten (with the fractions of the coordinates).
    """
    n, h, w, c = x4.shape
    hp, wp = h + 2, w + 2
    padded = ws.array("padded", (n, hp, wp, c), np.uint8)
    padded[:, 0], padded[:, -1], padded[:, :, 0], padded[:, :, -1] = 0, 0, 0, 0
    padded[:, 1:-1, 1:-1] = x4
    flat = padded.reshape(n * hp * wp, c)
    itype = np.int32 if n * hp * wp < 1 << 31 else np.int64
    idx, part = ws.array("idx", (n, h, w), itype), ws.array("part", (n, h, w), itype)
    for coord, size, stride in ((src_r, h, wp), (src_c, w, 1)):
        np.clip(coord, -1, size, out=coord)
        whole = np.floor(coord, out=ws.array("whole", (n, h, w), np.float32))
        np.minimum(whole, size - 1, out=whole)
        coord -= whole  # the fraction, in [0, 1]
        np.copyto(part, whole, casting="unsafe")
        part += 1  # the frame shifts every index by one
        if stride == 1:
            idx += part
        else:
            np.multiply(part, stride, out=idx)
    idx += (np.arange(n, dtype=itype) * (hp * wp))[:, None, None]
    fr, fc = src_r[..., None], src_c[..., None]
    v = [ws.array(f"v{i}", (n, h, w, c), np.float32) for i in range(4)]
    for i, shift in enumerate((0, 1, wp, wp + 1)):
        np.add(idx, shift, out=part)
        np.copyto(v[i], np.take(flat, part, axis=0, out=ws.array("gathered", (n, h, w, c), np.uint8)))
    v00, v01, v10, v11 = v
    v01 -= v00
    v01 *= fc
    v00 += v01  # the top row, interpolated along the columns
    v11 -= v10
    v11 *= fc
    v10 += v11  # the bottom row
    v10 -= v00
    v10 *= fr
    v00 += v10
    np.rint(v00, out=v00)
    np.clip(v00, 0, 255, out=v00)
    return v00.astype(np.uint8)


# ---------------------------------------------------------------- the augmentations


def affine(x, key, shift=0.0, rotate=0.0, scale=0.0, flip=False):
    """``x`` with a random shift, rotation, scale (and mirror, ``flip``) per image; see the module docstring."""
    return _augment(x, key, _options(shift=shift, rotate=rotate, scale=scale, flip=flip))


def elastic(x, key, alpha=ELASTIC_ALPHA, sigma=ELASTIC_SIGMA):
    """``x`` elastically distorted (Simard et al., 2003): a smoothed random displacement field per image."""
    return _augment(x, key, _options(elastic=alpha, sigma=sigma))


def flip_horizontal(x, key, p=0.5):
    """Each image mirrored left-right with probability ``p``."""
    x = np.asarray(x)
    _images(x)
    mirror = random.bernoulli(key, p, (len(x),)).reshape((-1,) + (1,) * (x.ndim - 1))
    return np.where(mirror, x[:, :, ::-1], x)


def _augment(x, key, o, ws=FRESH):
    """One resampling of ``x`` with the options ``o`` (a full mapping, see :data:`OFF`); scratch arrays from ``ws``."""
    x4 = _images(x)
    moves = o["shift"] or o["rotate"] or o["scale"] or o["elastic"]
    if not moves:
        return flip_horizontal(x, random.fold_in(key, 1)) if o["flip"] else np.array(x)
    k_affine, k_elastic = random.split(key)
    n, h, w, _ = x4.shape
    matrix, offset = random_affine(k_affine, n, o["shift"], o["rotate"], o["scale"], o["flip"])
    fields = displacement(k_elastic, n, h, w, o["elastic"], o["sigma"]) if o["elastic"] else (None, None)
    return warp(x, matrix, offset, *fields, ws=ws)


def make(shift=0.0, rotate=0.0, scale=0.0, elastic=False, sigma=ELASTIC_SIGMA, flip=False):
    """The ``augment(batch, key) -> batch`` callable :func:`fnn.fit` takes, or None when every strength is off.

    Args:
      shift: most pixels an image moves along each axis (uniform in ``[-shift, shift]``).
      rotate: most degrees it turns either way.
      scale: most relative change of size (``s`` in ``[1 - scale, 1 + scale]``), in [0, 1).
      elastic: False, True (Simard's ``alpha = 34``) or the strength ``alpha`` in pixels (for digits).
      sigma: the elastic fields' smoothing, pixels (> 0).
      flip: mirror half the images left-right (for photos; never for digits).

    Each call returns a new array; the callable keeps its scratch buffers between calls, so use it
    from one loop (one thread) at a time, as :func:`fnn.fit` does.
    """
    o = _options(shift=shift, rotate=rotate, scale=scale, elastic=elastic, sigma=sigma, flip=flip)
    if o == {**OFF, "sigma": o["sigma"]}:
        return None

    scratch = Workspace()  # the interpolation's buffers, made once per batch shape (fresh ones page-fault)

    def augment(x, key):
        return _augment(x, key, o, scratch)

    augment.options = o
    return augment


def _number(name, value, low, high=math.inf, high_open=False):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise AugmentError(f"augment {name} must be a number, got {value!r:.60}")
    value = float(value)
    if not (math.isfinite(value) and low <= value and (value < high if high_open else value <= high)):
        bound = f"in [{low:g}, {high:g}{')' if high_open else ']'}" if high != math.inf else f">= {low:g}"
        raise AugmentError(f"augment {name} must be {bound}, got {value!r}")
    return value


def _options(shift=0.0, rotate=0.0, scale=0.0, elastic=False, sigma=ELASTIC_SIGMA, flip=False) -> dict:
    """The checked options as a full mapping of floats (``elastic``: its ``alpha``, 0 when off) and a bool ``flip``."""
    if elastic is True:
        elastic = ELASTIC_ALPHA
    elif elastic is False or elastic is None:
        elastic = 0.0
    if not isinstance(flip, (bool, np.bool_)):
        raise AugmentError(f"augment flip must be true or false, got {flip!r:.60}")
    sigma = _number("sigma", sigma, 0.0)
    if sigma == 0:
        raise AugmentError("augment sigma must be > 0, got 0.0")
    return {"shift": _number("shift", shift, 0.0), "rotate": _number("rotate", rotate, 0.0, 180.0),
            "scale": _number("scale", scale, 0.0, 1.0, high_open=True), "elastic": _number("elastic", elastic, 0.0),
            "sigma": sigma, "flip": bool(flip)}


def parse(value) -> dict | None:
    """A config's ``augment`` value as the full mapping of options (see :data:`OFF`), or None for no augmentation.

    Takes None, ``"none"``, a preset name (:data:`PRESETS`: ``"digits"``, ``"photos"``), ``"shift=2,rotate=10,flip"``
    (a bare name is true) or a mapping of some of :func:`make`'s options. Raises :class:`AugmentError`.

    >>> parse("digits")["rotate"], parse("shift=1,flip")["flip"], parse("none"), parse({"scale": 0})
    (10.0, True, None, None)
    """
    if value is None or value is False or (isinstance(value, str) and value.strip().lower() in ("none", "off", "")):
        return None
    if isinstance(value, str):
        name = value.strip().lower()
        if name in PRESETS:
            return dict(PRESETS[name])
        if "=" not in name and name not in OFF:
            raise AugmentError(f"unknown augment {value!r:.60}; choose from none, {', '.join(PRESETS)}, or options like shift=2,rotate=10")
        value = dict(_pair(part, value) for part in name.split(",") if part.strip())
    if not isinstance(value, dict):
        raise AugmentError(f"augment must be a preset name ({', '.join(PRESETS)}, none) or a mapping of options, got {value!r:.60}")
    unknown = sorted(set(map(str, value)) - set(OFF))
    if unknown:
        raise AugmentError(f"unknown augment option {unknown[0]!r:.40}; options: {', '.join(OFF)}")
    o = _options(**value)
    return None if o == {**OFF, "sigma": o["sigma"]} else o


def _pair(part, whole):
    """``"shift=2"`` -> ``("shift", 2.0)``; ``"flip"`` -> ``("flip", True)``; ``"elastic=true"`` -> ``("elastic", True)``."""
    key, _, text = part.strip().partition("=")
    key, text = key.strip(), text.strip()
    if not _:
        return key, True
    if text in ("true", "yes", "on"):
        return key, True
    if text in ("false", "no", "off"):
        return key, False
    try:
        return key, float(text)
    except ValueError:
        raise AugmentError(f"augment {whole!r:.60}: {key} needs a number or true/false, got {text!r:.30}") from None


def describe(options) -> str:
    """A short text of the options: ``"shift 2 px, rotate 10 deg, scale 0.1"`` (``"none"`` for None)."""
    if not options:
        return "none"
    parts = [f"shift {options['shift']:g} px" if options["shift"] else "", f"rotate {options['rotate']:g} deg" if options["rotate"] else "",
             f"scale {options['scale']:g}" if options["scale"] else "",
             f"elastic alpha {options['elastic']:g} sigma {options['sigma']:g}" if options["elastic"] else "",
             "flip" if options["flip"] else ""]
    return ", ".join(p for p in parts if p)


__all__ = ["affine", "elastic", "flip_horizontal", "warp", "bilinear", "random_affine", "displacement", "gaussian_matrix",
           "make", "parse", "describe", "PRESETS", "OFF", "AugmentError"]
