"""2-D convolution over NHWC images (channels last), by im2col and matrix products.

Shapes: ``x: (n, h, w, c)``, ``w: (kh, kw, c, f)``, ``b: (f,)``, ``y: (n, oh, ow, f)``
(output sizes and padding as in :func:`fnn.layers.windows.out_size`)::

    y[n, o, p, :] = b + sum over i, j, c of  xpad[n, o*sh + i, p*sw + j, c] * w[i, j, c, :]

**Forward.** im2col copies each window into one row of ``cols: (n*oh*ow, kh*kw*c)``
(rows: output pixels in NHWC order; columns: ``w``'s ``(i, j, c)`` order). It is
one strided copy from the zero-padded image, and each window row (``kw*c``
numbers) is contiguous in NHWC. Then ``y = cols @ w2 + b`` with
``w2 = w.reshape(kh*kw*c, f)``: one GEMM over the whole batch. Three refinements:

- *One channel* (a first layer on grey images): ``cols`` is built transposed,
  ``(kh*kw, n*oh*ow)``, whose row ``(i, j)`` is the batch shifted by ``(i, j)``
  (copied ``ow`` numbers at a stretch rather than ``kw``), and the batch runs in
  pieces of :data:`PIECE` images: ``cols`` is ``kh*kw`` times the images, and a
  piece's stays in the cache between its copy and its product. The backward builds
  each piece's ``cols`` again for ``dw = sum over pieces of cols.T @ dy``.
- *Few filters* (under :data:`GROUP_BELOW`): a product with 6 columns runs at a
  fraction of BLAS speed, so ``g`` neighbouring pixels of a row share one row of
  ``cols`` (:func:`row_group`): their windows together, ``kh x (kw + (g-1) sw)``,
  are the windows of a convolution with stride ``g sw``, and ``w2`` becomes the
  ``g`` kernels side by side, kernel ``r`` shifted ``r sw`` columns (zeros
  elsewhere)::

      y[n, o, g P + r, :] = b + sum over i, q, c of  xpad[n, o sh + i, g P sw + q, c] * W[i, q, c, r, :]
      W[i, r sw + j, c, r, :] = w[i, j, c, :]   (0 elsewhere);   dw[i, j] = sum over r of dW[i, r sw + j, :, r]

  The product has ``g*f`` columns (``y`` seen as ``(n*oh*ow/g, g*f)``, no copy) and
  ``cols`` shrinks by ``g kw / (kw + (g-1) sw)``, for at most twice the multiplications.
- The windows are viewed straight from the strides (``sliding_window_view`` costs
  tens of microseconds of Python a call), and the bias is added a row of ``ow``
  pixels at a time (a per-pixel add runs ``f`` numbers at a stretch).

**Backward.** ``dw = cols.T @ dy``, ``db = dy.sum(rows)`` and ``dx = col2im(dy @ w2.T)``.
col2im adds each kernel offset's slice of ``dcols`` into the padded input
gradient: a loop over the ``kh*kw`` offsets, each one whole-batch array add. In
NHWC order each add would move only ``c`` numbers at a time, so the input
gradient is worked out batch-innermost, in blocks of ``b`` images (16 for a batch
of 128): the GEMM writes ``dcols`` transposed, rows ``(i, j, c)`` and columns
``(block, o, p, image)`` (from ``dy`` copied to ``(blocks, oh, ow, b, f)``), the
adds run over stretches of ``ow*b`` numbers into a ``(blocks, c, hp, wp, b)``
buffer, and one copy turns that back into NHWC ``dx`` (reading one block, a few
MB, at a time: from a whole-batch ``(c, hp, wp, n)`` buffer this copy took about
4x longer). When the forward's ``cols`` is the whole batch's plain one, ``dcols``
is written over it, as ``dw`` no longer needs it (a second call of the same
backward rebuilds ``cols``), and ``db`` is a GEMV with a vector of ones. A layer
asked for no ``dx`` (``need_dx=False``: first in a net, after parameterless
layers only) skips all of this.

>>> from fnn import random
>>> conv = Conv2D(4, 3, padding="valid")
>>> out_shape, params = conv.init(random.key(0), (-1, 8, 8, 1))
>>> out_shape, params["w"].shape
((-1, 6, 6, 4), (3, 3, 1, 4))
>>> conv.apply(params, np.ones((2, 8, 8, 1), np.float32)).shape
(2, 6, 6, 4)
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from fnn import initializers, random
from fnn.layers.base import Layer, layer, register
from fnn.layers.windows import image_shape, out_size, padding_arg, pair, positive_int, spec_pair, window_views
from fnn.workspace import FRESH, Workspace

#: Most im2col entries one inference chunk holds (32 MiB of float32): ``apply`` runs big batches in pieces.
APPLY_CHUNK = 1 << 23
#: Fewer filters than this make a thin product: neighbouring pixels are then grouped into one row of it (:func:`row_group`),
#: aiming at this many columns.
GROUP_BELOW, GROUP_WIDTH = 16, 24
#: Images per piece of a one-channel convolution (see :func:`pieces`): its cols (``kh*kw`` times the images) stay in the cache.
PIECE = 16


class Geometry(NamedTuple):
    """Where the windows of a convolution lie: kernel ``k``, stride ``s``, output size ``out = (oh, ow)``, zeros padded
    ``pads = (top, bottom, left, right)``."""

    k: tuple
    s: tuple
    out: tuple
    pads: tuple


@register("Conv2D")
def Conv2D(filters: int, kernel, stride=1, padding="same", w_init="he_uniform", b_init="zeros") -> Layer:
    """2-D convolution of NHWC images: ``(n, h, w, c) -> (n, oh, ow, filters)``.

    ``kernel`` and ``stride`` are an int or a pair ``(rows, cols)`` (``"3,5"`` in a
    spec). ``padding`` is ``"same"`` (as Keras: ``oh = ceil(h / stride)``),
    ``"valid"`` (none) or an int (that many zeros on every side). ``w: (kh, kw,
    c, filters)`` starts from ``w_init`` with fan-in ``kh*kw*c``; ``b: (filters,)``.
    See the module docstring for the math of forward and backward.
    """
    filters = positive_int(filters, "Conv2D filters")
    k, s, pad = pair(kernel, "Conv2D kernel"), pair(stride, "Conv2D stride"), padding_arg(padding)
    w_fn, b_fn = initializers.get(w_init), initializers.get(b_init)

    def geometry(h, w) -> Geometry:
        (oh, top, bottom), (ow, left, right) = out_size(h, k[0], s[0], pad), out_size(w, k[1], s[1], pad)
        return Geometry(k, s, (oh, ow), (top, bottom, left, right))

    def init(key, in_shape):
        h, w, c = image_shape(in_shape, "Conv2D")
        k_w, k_b = random.split(key)
        return (in_shape[0], *geometry(h, w).out, filters), {"w": w_fn(k_w, (*k, c, filters)), "b": b_fn(k_b, (filters,))}

    def forward(params, x, ws, scratch):
        """``(y, cols)``: ``y = cols @ w_rows + b`` seen as ``(n, oh, ow, filters)``, piece by piece (``cols``: the last piece's)."""
        geo = geometry(*_nhwc(x)[1:3])
        g = row_group(geo, filters)
        w_rows = params["w"].reshape(-1, filters) if g == 1 else \
            _row_weights(params["w"], g, s[1], ws.array("w_rows", (k[0], k[1] + (g - 1) * s[1], x.shape[3], g, filters), params["w"].dtype))
        y = ws.array("y", (len(x), *geo.out, filters), np.result_type(x, w_rows))
        rows = y.reshape(len(x), -1, g * filters)  # a row of the product: g neighbouring pixels' filters
        for piece in pieces(x.shape):
            cols = im2col(x[piece], grouped(geo, g), scratch)
            matmul_into(cols, w_rows, rows[piece])
        add_bias(y, params["b"])
        return y, cols

    def apply(params, x, key=None):
        n, h, w, c = _nhwc(x)
        scratch = Workspace()  # this call's own: the pieces' cols
        rows = max(1, APPLY_CHUNK // (math.prod(geometry(h, w).out) * k[0] * k[1] * c))
        if n <= rows:
            return forward(params, x, FRESH, scratch)[0]
        return np.concatenate([forward(params, x[i : i + rows], FRESH, scratch)[0] for i in range(0, n, rows)])

    def vjp(params, x, key=None, ws=FRESH, need_dx=True):
        scratch = Workspace() if ws is FRESH else ws  # where the pieces' cols go (and come again for backward)
        y, cols = forward(params, x, ws, scratch)
        spent = []  # backward wrote dcols over cols: a second backward rebuilds cols first
        parts = pieces(x.shape)

        def backward(dy):
            g = ws.grads_like(params)
            geo, n = geometry(*x.shape[1:3]), len(x)
            group = row_group(geo, filters)
            dy2 = dy.reshape(-1, filters)
            whole = len(parts) == 1 and group == 1  # the forward's cols serve as they are
            if whole:
                cols_now = im2col(x, geo, scratch) if spent else cols
                matmul_into(cols_now.T, dy2, g["w"])
            else:  # cols again, piece by piece: dw sums the pieces' products (and their g pixels' shifted kernels)
                dw = g["w"].reshape(-1, filters) if group == 1 else ws.array("dw_rows", (cols.shape[1], group * filters), dy.dtype)
                part = ws.array("dw_part", dw.shape, dy.dtype)
                dy_rows = dy.reshape(n, -1, group * filters)
                for i, piece in enumerate(parts):
                    cols_now = cols if len(parts) == 1 else im2col(x[piece], grouped(geo, group), scratch)
                    matmul_into(cols_now.T, dy_rows[piece].reshape(-1, group * filters), part if i else dw)
                    if i:
                        dw += part
                if group > 1:
                    np.sum(_diagonal(dw.reshape(k[0], -1, x.shape[3], group, filters), k[1], s[1]), axis=3, out=g["w"])
            ones = ws.array("ones", (len(dy2),), dy.dtype)
            ones.fill(1)
            matmul_into(ones[None], dy2, g["b"])  # db = dy.sum(rows), as a GEMV: an axis-0 sum is slower
            if not need_dx:
                return g, None
            w2 = params["w"].reshape(-1, filters)
            blocks, b = batch_blocks(n)  # batch-innermost in blocks of b images: see the module docstring
            dy_t = ws.array("dy_t", (blocks, *geo.out, b, filters), dy.dtype)
            np.copyto(dy_t, dy.reshape(blocks, b, *geo.out, filters).transpose(0, 2, 3, 1, 4))
            dtype = np.result_type(dy, w2)
            if whole and cols_now.dtype == dtype and not np.may_share_memory(cols_now, x):
                dcols_t = _storage(cols_now).reshape(len(w2), len(dy2))  # cols is spent: dcols takes its memory
                spent.append(True)
            else:
                dcols_t = ws.array("dcols_t", (len(w2), len(dy2)), dtype)
            matmul_into(w2, dy_t.reshape(-1, filters).T, dcols_t)  # (dy @ w2.T).T
            return g, col2im(dcols_t, x.shape, geo, ws)

        return y, backward

    spec = {"type": "Conv2D", "filters": filters, "kernel": spec_pair(k), "stride": spec_pair(s), "padding": pad,
            "w_init": w_init, "b_init": b_init}
    return layer(init, apply, vjp, spec)


def im2col(x, geo: Geometry, ws=FRESH):
    """``cols: (n*oh*ow, kh*kw*c)``: row ``(n, o, p)`` holds the window under output pixel ``(o, p)``, in ``(i, j, c)`` order."""
    n, h, w, c = x.shape
    (top, bottom, left, right), k, s = geo.pads, geo.k, geo.s
    if k == s == (1, 1) and not any(geo.pads):
        return x.reshape(n * h * w, c)  # every pixel is its own window
    xp = x
    if any(geo.pads):
        xp = _pad_into(ws.array("x_pad", (n, top + h + bottom, left + w + right, c), x.dtype), x, top, left)
    (oh, ow) = geo.out
    windows = _windows(xp, geo.out, k, s)
    if c == 1:  # cols transposed, row (i, j) the image shifted by (i, j): copied ow numbers at a stretch
        cols_t = ws.array("cols_t", (k[0] * k[1], n * oh * ow), x.dtype)
        np.copyto(cols_t.reshape(*k, n, oh, ow), windows[..., 0].transpose(3, 4, 0, 1, 2))
        return cols_t.T
    cols = ws.array("cols", (n * oh * ow, k[0] * k[1] * c), x.dtype)
    np.copyto(cols.reshape(n, oh, ow, *k, c), windows)
    return cols


def col2im(dcols_t, x_shape, geo: Geometry, ws=FRESH):
    """``dx: (n, h, w, c)``, each window's gradient added back where it came from.

    ``dcols_t: (kh*kw*c, oh*ow*n)`` is ``dcols`` transposed, its columns ordered
    ``(block, o, p, image)`` (see :func:`batch_blocks`). One whole-batch add per
    kernel offset into a ``(blocks, c, hp, wp, b)`` buffer, then one copy to NHWC.
    """
    n, h, w, c = x_shape
    (top, bottom, left, right), (oh, ow) = geo.pads, geo.out
    blocks, b = batch_blocks(n)
    d = dcols_t.reshape(*geo.k, c, blocks, oh, ow, b)
    acc = ws.array("dx_t", (blocks, c, top + h + bottom, left + w + right, b), dcols_t.dtype)
    acc.fill(0)
    for i, j, view in window_views(acc.transpose(1, 0, 2, 3, 4), geo.out, geo.k, geo.s, axis=2):
        view += d[i, j]  # view[c, block, o, p, image] = acc[block, c, o*sh + i, p*sw + j, image]
    dx = ws.array("dx", tuple(x_shape), dcols_t.dtype)
    np.copyto(dx.reshape(blocks, b, h, w, c), acc[:, :, top : top + h, left : left + w].transpose(0, 4, 2, 3, 1))
    return dx


def row_group(geo: Geometry, filters: int) -> int:
    """``g``: how many neighbouring output pixels of a row one row of the product covers (1: the plain im2col).

    With under :data:`GROUP_BELOW` filters the product ``cols @ w2`` is too thin for BLAS: ``g`` pixels
    side by side then share one row of ``cols`` (their windows together, ``kw + (g - 1) sw`` columns
    wide) and ``w2`` becomes their ``g`` kernels, each shifted ``sw`` columns on (zeros elsewhere), so
    the product has ``g * filters`` columns. ``g``: the smallest divisor of ``ow`` reaching
    :data:`GROUP_WIDTH` columns, at most doubling the multiplications (``(g - 1) sw <= kw``); else 1.
    """
    (_, ow), (_, kw), (_, sw) = geo.out, geo.k, geo.s
    if filters >= GROUP_BELOW:
        return 1
    return next((g for g in range(-(-GROUP_WIDTH // filters), ow + 1) if ow % g == 0 and (g - 1) * sw <= kw), 1)


def grouped(geo: Geometry, g: int) -> Geometry:
    """The geometry of ``g`` neighbouring output pixels taken as one window (see :func:`row_group`)."""
    if g == 1:
        return geo
    (kh, kw), (sh, sw), (oh, ow) = geo.k, geo.s, geo.out
    return Geometry((kh, kw + (g - 1) * sw), (sh, g * sw), (oh, ow // g), geo.pads)


def _row_weights(w, g, sw, buf):
    """``buf: (kh, kw + (g-1) sw, c, g, f)`` = the kernels of ``g`` neighbouring pixels: ``[i, r sw + j, :, r] = w[i, j]``, else 0.

    Seen as ``(kh * (kw + (g-1) sw) * c, g * f)``: the weights of a grouped product (:func:`row_group`).
    """
    buf.fill(0)
    np.copyto(_diagonal(buf, w.shape[1], sw), w[:, :, :, None, :])
    return buf.reshape(-1, g * w.shape[3])


def _diagonal(a, kw, sw):
    """The view ``[i, j, ch, r, f] = a[i, r*sw + j, ch, r, f]`` of ``a: (kh, kw', c, g, f)``: pixel ``r``'s kernel in it."""
    s = a.strides
    return np.ndarray((a.shape[0], kw, *a.shape[2:]), a.dtype, a, 0, (s[0], s[1], s[2], s[1] * sw + s[3], s[4]))


def pieces(x_shape) -> list:
    """Slices of the batch a convolution runs in: a one-channel input in pieces of :data:`PIECE` images, others whole."""
    n, step = x_shape[0], PIECE if x_shape[3] == 1 else x_shape[0]
    return [slice(i, i + step) for i in range(0, n, step)]


def add_bias(y, b):
    """``y += b`` over the last axis, a row of ``ow`` pixels at a time: with few filters a per-pixel add runs ``f`` numbers at a stretch."""
    n, oh, ow, f = y.shape
    rows = y.reshape(n * oh, ow * f)
    rows += np.tile(b, ow)
    return y


def batch_blocks(n: int) -> tuple[int, int]:
    """``(blocks, b)``: the batch of ``n`` as ``blocks`` blocks of ``b`` images, ``b`` 16 (or 8 or 32) when it divides ``n``."""
    b = n if n <= 32 else next((b for b in (16, 8, 32) if n % b == 0), n)
    return n // b, b


def matmul_into(a, b, out):
    """``a @ b`` written into ``out``, an array of any shape holding ``a.shape[0] * b.shape[1]`` numbers: the GEMMs."""
    m = out.reshape(a.shape[0], b.shape[1])
    np.matmul(a, b, out=m)
    if not np.may_share_memory(m, out):  # out was not contiguous: reshape made a copy
        np.copyto(out, m.reshape(out.shape))
    return out


def _windows(xp, out_hw, k, s):
    """Every window of the images ``xp``, a view ``(n, oh, ow, kh, kw, c)``: ``[n, o, p, i, j] = xp[n, o*sh + i, p*sw + j]``.

    Made directly from the strides (``sliding_window_view`` costs tens of microseconds a call in Python).
    """
    xp = np.ascontiguousarray(xp)
    sn, sh, sw, sc = xp.strides
    shape = (len(xp), *out_hw, *k, xp.shape[3])
    return np.ndarray(shape, xp.dtype, xp, 0, (sn, sh * s[0], sw * s[1], sh, sw, sc))


def _storage(a):
    """The memory of ``a`` (C- or Fortran-contiguous) as a flat view."""
    return (a if a.flags.c_contiguous else a.T).reshape(-1)


def _nhwc(x):
    if x.ndim != 4:
        raise ValueError(f"Conv2D takes NHWC images (batch, height, width, channels), got an array of shape {x.shape}")
    return x.shape


def _pad_into(buf, x, top, left):
    """``buf`` = ``x`` framed by zeros, ``top`` rows above and ``left`` columns to the left (only the frame is zeroed)."""
    h, w = x.shape[1:3]
    buf[:, :top] = 0
    buf[:, top + h :] = 0
    buf[:, top : top + h, :left] = 0
    buf[:, top : top + h, left + w :] = 0
    buf[:, top : top + h, left : left + w] = x
    return buf
