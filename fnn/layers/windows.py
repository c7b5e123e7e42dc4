"""Sliding-window geometry shared by convolution and pooling: sizes, padding, window views.

Images are **NHWC** (channels last): ``x: (n, h, w, c)``. A window of
``k = (kh, kw)`` pixels moves by ``s = (sh, sw)``; output pixel ``(o, p)``
sees input rows ``o*sh .. o*sh + kh - 1`` and columns ``p*sw .. p*sw + kw - 1``
of the (padded) image.

>>> pair(3, "kernel"), pair("3,5", "kernel"), spec_pair((2, 2)), spec_pair((3, 1))
((3, 3), (3, 5), 2, '3,1')
>>> out_size(28, 5, 1, "valid"), out_size(28, 3, 1, "same"), out_size(7, 3, 2, "same"), out_size(5, 3, 2, 1)
((24, 0, 0), (28, 1, 1), (4, 1, 1), (3, 1, 1))
"""

from __future__ import annotations

import math
import numbers


def pair(value, what: str) -> tuple[int, int]:
    """``(a, b)`` from an int ``a`` (square), a pair, or a string ``"a,b"`` (as specs store it); each >= 1."""
    parts = value.split(",") if isinstance(value, str) else value if isinstance(value, (tuple, list)) else [value]
    try:
        nums = [float(v) for v in parts if not isinstance(v, bool)]
    except (TypeError, ValueError):
        nums = []
    if len(nums) != len(parts) or len(nums) not in (1, 2) or any(not math.isfinite(v) or v != int(v) or v < 1 for v in nums):
        raise ValueError(f"{what} must be one or two whole numbers >= 1 (3, (3, 5) or '3,5'), got {value!r}")
    return (int(nums[0]), int(nums[-1]))


def positive_int(value, what: str) -> int:
    """``value`` as an int >= 1 (``4``, ``4.0`` or ``"4"``), or a clear error naming it."""
    if isinstance(value, (tuple, list)) or (isinstance(value, str) and "," in value):
        raise ValueError(f"{what} must be a whole number >= 1, got {value!r}")
    try:
        return pair(value, what)[0]
    except ValueError:
        raise ValueError(f"{what} must be a whole number >= 1, got {value!r}") from None


def spec_pair(p: tuple[int, int]):
    """A pair as a spec stores it: an int when square, else the string ``"a,b"``."""
    return p[0] if p[0] == p[1] else f"{p[0]},{p[1]}"


def padding_arg(padding):
    """``"same"``, ``"valid"`` or an int >= 0 (zeros added on every side)."""
    if isinstance(padding, str) and padding.lower() in ("same", "valid"):
        return padding.lower()
    if isinstance(padding, numbers.Integral) and not isinstance(padding, bool) and padding >= 0:
        return int(padding)
    raise ValueError(f"padding must be 'same', 'valid' or an int >= 0, got {padding!r}")


def out_size(size: int, k: int, s: int, padding) -> tuple[int, int, int]:
    """``(out, before, after)``: output length along one axis and the zeros padded before and after.

    - ``"valid"``: no padding, ``out = (size - k) // s + 1``;
    - ``"same"`` (as Keras/TensorFlow): ``out = ceil(size / s)``, padding
      ``max((out - 1) s + k - size, 0)`` split with the extra one after;
    - an int ``q``: ``q`` zeros on each side, ``out = (size + 2 q - k) // s + 1``.
    """
    if padding == "same":
        out = -(-size // s)
        total = max((out - 1) * s + k - size, 0)
        before, after = total // 2, total - total // 2
    else:
        before = after = 0 if padding == "valid" else padding
        out = (size + before + after - k) // s + 1
    if out < 1:
        raise ValueError(f"a window of {k} pixels does not fit an input of {size} pixels with padding {padding!r}")
    return out, before, after


def image_shape(in_shape, who: str) -> tuple[int, int, int]:
    """``(h, w, c)`` of an NHWC input shape ``(n, h, w, c)``, or a clear error."""
    if len(in_shape) != 4 or any(not isinstance(d, numbers.Integral) or d < 1 for d in in_shape[1:]):
        hint = " (put Reshape((28, 28, 1)) before it for flat MNIST rows)" if len(in_shape) == 2 else ""
        raise ValueError(f"{who} takes NHWC images (batch, height, width, channels), got input shape {tuple(in_shape)}{hint}")
    return tuple(int(d) for d in in_shape[1:])


def window_views(x, out_hw, k, s, axis=1):
    """``[(i, j, view)]``, one per window offset: ``view[:, o, p, :] = x[:, o*sh + i, p*sw + j, :]``.

    Axes ``axis`` and ``axis + 1`` of ``x`` are the image's rows and columns (1 and 2 for NHWC);
    each view has ``oh`` rows and ``ow`` columns there.
    """
    (oh, ow), (kh, kw), (sh, sw) = out_hw, k, s
    lead = (slice(None),) * axis
    return [(i, j, x[(*lead, slice(i, i + sh * (oh - 1) + 1, sh), slice(j, j + sw * (ow - 1) + 1, sw))])
            for i in range(kh) for j in range(kw)]
