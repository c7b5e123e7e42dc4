"""Pooling over NHWC images (channels last): max and average over windows, and the global average.

``MaxPool2D`` and ``AvgPool2D`` map ``x: (n, h, w, c)`` to ``y: (n, oh, ow, c)``
with ``oh = (h - ph) // sh + 1`` (valid padding: rows and columns that do not fill
a window are left out), each channel on its own:

- max: ``y[n, o, p, c] = max over i, j of x[n, o*sh + i, p*sw + j, c]``. The
  backward sends ``dy`` to exactly one position per window, the first maximum in
  row-major window order (as PyTorch's CPU kernel does), whose offset the
  forward records; ties (common after a ReLU) never split or duplicate ``dy``.
- average: ``y = mean over the window``, ``dx = dy / (ph * pw)`` at every position of it.

Every loop runs over the ``ph*pw`` window offsets, each step a whole-batch
array operation. In the common case (stride = pool and the windows tile the
image exactly) ``dx`` is seen through a reshape as ``(n, oh, ph, ow, pw, c)``:
each offset's slice of it is written once, with no zero-fill or accumulation;
otherwise (overlapping windows, a leftover border) it is zeroed and accumulated.

``GlobalAvgPool``: ``(n, h, w, c) -> (n, c)``, the mean over every axis but the
first and the last; ``dx = dy / (h * w)`` broadcast over the image.

>>> x = np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1)
>>> MaxPool2D(2).apply({}, x)[0, :, :, 0]
array([[ 5.,  7.],
       [13., 15.]], dtype=float32)
>>> GlobalAvgPool.apply({}, x)
array([[7.5]], dtype=float32)
"""

from __future__ import annotations

import math

import numpy as np

from fnn.layers.base import Layer, layer, register
from fnn.layers.windows import image_shape, out_size, pair, spec_pair, window_views
from fnn.workspace import FRESH

#: Below this many bytes of channels a pixel, max pooling copies each window offset's pixels out before comparing:
#: an operation over a strided view runs ``c`` numbers at a stretch, so for few channels the copies pay for themselves.
SHORT_RUN = 128


def _pooling(name, pool, stride, forward, backward) -> Layer:
    """A pooling layer from ``forward(x, geo, ws) -> (y, saved)`` and ``backward(dy, x_shape, saved, geo, ws) -> dx``."""
    p = pair(pool, f"{name} pool")
    s = p if stride is None else pair(stride, f"{name} stride")

    def geometry(h, w):
        """``(out_hw, p, s, tiles)``: ``tiles`` when the windows cover the image exactly once."""
        oh, ow = out_size(h, p[0], s[0], "valid")[0], out_size(w, p[1], s[1], "valid")[0]
        return (oh, ow), p, s, s == p and (oh * p[0], ow * p[1]) == (h, w)

    def init(key, in_shape):
        h, w, c = image_shape(in_shape, name)
        (oh, ow), *_ = geometry(h, w)
        return (in_shape[0], oh, ow, c), {}

    def apply(params, x, key=None):
        return forward(x, geometry(*image_shape(x.shape, name)[:2]), FRESH)[0]

    def vjp(params, x, key=None, ws=FRESH, need_dx=True):
        geo = geometry(*image_shape(x.shape, name)[:2])
        y, saved = forward(x, geo, ws)
        return y, lambda dy: ({}, backward(dy, x.shape, saved, geo, ws))

    return layer(init, apply, vjp, {"type": name, "pool": spec_pair(p), "stride": spec_pair(s)})


def _out(x, geo):
    return (len(x), *geo[0], x.shape[3])


def _dx_tiles(dx, geo):
    """``dx: (n, h, w, c)`` seen as ``(n, oh, ph, ow, pw, c)`` (windows tile the image: a view)."""
    n, _, _, c = dx.shape
    (oh, ow), (ph, pw), _, _ = geo
    return dx.reshape(n, oh, ph, ow, pw, c)


def _max_forward(x, geo, ws):
    """``y`` = the running maximum over the window offsets; ``saved`` = the offset of each window's first maximum."""
    out_hw, p, s, _ = geo
    views = [v for _, _, v in window_views(x, out_hw, p, s)]
    if x.shape[3] * x.itemsize < SHORT_RUN and x.strides[3] == x.itemsize:  # the offsets' windows copied out first
        views = _gathered(views, ws.array("windows", (len(views), *_out(x, geo)), x.dtype))
    y = ws.array("y", _out(x, geo), x.dtype)
    np.copyto(y, views[0])
    where = ws.array("argmax", y.shape, np.min_scalar_type(len(views) - 1))
    where.fill(0)
    bigger = ws.array("bigger", y.shape, bool)
    offset = ws.array("offset", y.shape, where.dtype)
    for q, v in enumerate(views[1:], 1):  # (masked copies, copyto(where=), are ~20x slower than these)
        np.greater(v, y, out=bigger)  # strictly: a tie keeps the earlier offset
        np.maximum(y, v, out=y)
        np.maximum(where, np.multiply(bigger, where.dtype.type(q), out=offset), out=where)  # q exceeds every earlier offset
    return y, where


def _gathered(views, stack):
    """``stack[q]`` = ``views[q]``, copied a pixel (``c`` numbers, one ``void`` item) at a time; returns the ``stack[q]``."""
    item = np.dtype((np.void, views[0].shape[3] * views[0].itemsize))
    for view, out in zip(views, stack):
        np.copyto(out.view(item), view.view(item))
    return list(stack)


def _max_backward(dy, x_shape, where, geo, ws):
    """``dx`` = ``dy`` at each window's recorded maximum, 0 elsewhere (summed where windows overlap)."""
    out_hw, p, s, tiles = geo
    dx = ws.array("dx", x_shape, dy.dtype)
    hit = ws.array("hit", dy.shape, bool)
    if tiles:
        dx6 = _dx_tiles(dx, geo)
        for q in range(p[0] * p[1]):
            np.equal(where, q, out=hit)
            np.multiply(dy, hit, out=dx6[:, :, q // p[1], :, q % p[1], :])
        return dx
    dx.fill(0)
    part = ws.array("part", dy.shape, dy.dtype)
    for q, (_, _, view) in enumerate(window_views(dx, out_hw, p, s)):
        np.equal(where, q, out=hit)
        view += np.multiply(dy, hit, out=part)
    return dx


def _avg_forward(x, geo, ws):
    """``y`` = the window sums times ``1 / (ph * pw)`` (one reduction over a reshape when the windows tile the image)."""
    out_hw, p, s, tiles = geo
    y = ws.array("y", _out(x, geo), x.dtype)
    if tiles:
        np.sum(_dx_tiles(x, geo), axis=(2, 4), out=y)
    else:
        views = [v for _, _, v in window_views(x, out_hw, p, s)]
        np.copyto(y, views[0])
        for v in views[1:]:
            y += v
    y *= 1.0 / (p[0] * p[1])
    return y, None


def _avg_backward(dy, x_shape, saved, geo, ws):
    """``dx`` = ``dy / (ph * pw)`` at every position of each window (summed where windows overlap)."""
    out_hw, p, s, tiles = geo
    scale = 1.0 / (p[0] * p[1])
    dx = ws.array("dx", x_shape, dy.dtype)
    if tiles:
        n, oh, ow, c = dy.shape
        np.multiply(dy.reshape(n, oh, 1, ow, 1, c), scale, out=_dx_tiles(dx, geo))
        return dx
    share = np.multiply(dy, scale, out=ws.array("share", dy.shape, dy.dtype))
    dx.fill(0)
    for _, _, view in window_views(dx, out_hw, p, s):
        view += share
    return dx


@register("MaxPool2D")
def MaxPool2D(pool=2, stride=None) -> Layer:
    """Max pooling over ``pool`` windows (an int or ``(rows, cols)``) moved by ``stride`` (default: ``pool``), valid padding."""
    return _pooling("MaxPool2D", pool, stride, _max_forward, _max_backward)


@register("AvgPool2D")
def AvgPool2D(pool=2, stride=None) -> Layer:
    """Average pooling over ``pool`` windows moved by ``stride`` (default: ``pool``), valid padding."""
    return _pooling("AvgPool2D", pool, stride, _avg_forward, _avg_backward)


def _global_avg_pool() -> Layer:
    """``(n, h, w, c) -> (n, c)``: ``y = mean of x over h and w``; ``dx = dy / (h * w)`` at every pixel."""

    def init(key, in_shape):
        if len(in_shape) < 3:
            raise ValueError(f"GlobalAvgPool takes images (batch, height, width, channels), got input shape {tuple(in_shape)}")
        return (in_shape[0], in_shape[-1]), {}

    def forward(x, ws):
        if x.ndim < 3:
            raise ValueError(f"GlobalAvgPool takes images (batch, height, width, channels), got an array of shape {x.shape}")
        y = np.sum(x, axis=tuple(range(1, x.ndim - 1)), out=ws.array("y", (len(x), x.shape[-1]), x.dtype))
        y *= 1.0 / math.prod(x.shape[1:-1])
        return y

    def vjp(params, x, key=None, ws=FRESH, need_dx=True):
        def backward(dy):
            n, c = dy.shape
            dx = ws.array("dx", x.shape, dy.dtype)
            np.multiply(dy.reshape(n, *[1] * (x.ndim - 2), c), 1.0 / math.prod(x.shape[1:-1]), out=dx)
            return {}, dx

        return forward(x, ws), backward

    return layer(init, lambda params, x, key=None: forward(x, FRESH), vjp, {"type": "GlobalAvgPool"})


GlobalAvgPool = register("GlobalAvgPool", _global_avg_pool())
