"""2-D convolution over NHWC images (channels last), by im2col and one matrix product.

Shapes: ``x: (n, h, w, c)``, ``w: (kh, kw, c, f)``, ``b: (f,)``, ``y: (n, oh, ow, f)``
(output sizes and padding as in :func:`fnn.layers.windows.out_size`)::

    y[n, o, p, :] = b + sum over i, j, c of  xpad[n, o*sh + i, p*sw + j, c] * w[i, j, c, :]

**Forward.** im2col copies each window into one row of ``cols: (n*oh*ow, kh*kw*c)``
(rows: output pixels in NHWC order; columns: ``w``'s ``(i, j, c)`` order). It is
one strided copy from the zero-padded image, and each window row (``kw*c``
numbers) is contiguous in NHWC. Then ``y = cols @ w2 + b`` with
``w2 = w.reshape(kh*kw*c, f)``: one GEMM over the whole batch.

**Backward.** ``dw = cols.T @ dy``, ``db = dy.sum(rows)`` and ``dx = col2im(dy @ w2.T)``.
col2im adds each kernel offset's slice of ``dcols`` into the padded input
gradient: a loop over the ``kh*kw`` offsets, each one whole-batch array add. For
those adds to run over long contiguous stretches, the input gradient is worked
out batch-innermost. The GEMM writes ``dcols`` transposed as
``(kh, kw, c, oh, ow, n)`` (from ``dy`` copied to ``(oh, ow, n, f)``), the adds go
into a ``(c, hp, wp, n)`` buffer, and one copy turns that back into NHWC ``dx``.
In NHWC order, each add would move only ``c`` numbers at a time.

>>> from fnn import random
>>> conv = Conv2D(4, 3, padding="valid")
>>> out_shape, params = conv.init(random.key(0), (-1, 8, 8, 1))
>>> out_shape, params["w"].shape
((-1, 6, 6, 4), (3, 3, 1, 4))
>>> conv.apply(params, np.ones((2, 8, 8, 1), np.float32)).shape
(2, 6, 6, 4)
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from fnn import initializers, random
from fnn.layers.base import Layer, layer, register
from fnn.layers.windows import image_shape, out_size, padding_arg, pair, positive_int, spec_pair, window_views
from fnn.workspace import FRESH

#: Most im2col entries one inference chunk holds (32 MiB of float32): ``apply`` runs big batches in pieces.
APPLY_CHUNK = 1 << 23


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

    def geometry(h, w):
        """``((oh, ow), (top, bottom, left, right))``: output size and zero padding."""
        (oh, top, bottom), (ow, left, right) = out_size(h, k[0], s[0], pad), out_size(w, k[1], s[1], pad)
        return (oh, ow), (top, bottom, left, right)

    def init(key, in_shape):
        h, w, c = image_shape(in_shape, "Conv2D")
        (oh, ow), _ = geometry(h, w)
        k_w, k_b = random.split(key)
        return (in_shape[0], oh, ow, filters), {"w": w_fn(k_w, (*k, c, filters)), "b": b_fn(k_b, (filters,))}

    def im2col(x, ws):
        """``cols: (n*oh*ow, kh*kw*c)``, row ``(n, o, p)`` = the window under output pixel ``(o, p)``."""
        n, h, w, c = _nhwc(x)
        (oh, ow), (top, bottom, left, right) = geometry(h, w)
        if k == s == (1, 1) and not (top or bottom or left or right):
            return x.reshape(n * h * w, c)  # every pixel is its own window
        xp = x
        if top or bottom or left or right:
            xp = _pad_into(ws.array("x_pad", (n, top + h + bottom, left + w + right, c), x.dtype), x, top, left)
        windows = sliding_window_view(xp, k, axis=(1, 2))[:, :: s[0], :: s[1]]  # (n, oh, ow, c, kh, kw), a view
        cols = ws.array("cols", (n * oh * ow, k[0] * k[1] * c), x.dtype)
        np.copyto(cols.reshape(n, oh, ow, *k, c), windows[:, :oh, :ow].transpose(0, 1, 2, 4, 5, 3))
        return cols

    def forward(params, x, ws):
        """``(y, cols)``: ``y = cols @ w2 + b`` reshaped to ``(n, oh, ow, filters)``."""
        w2 = params["w"].reshape(-1, filters)
        cols = im2col(x, ws)
        (oh, ow), _ = geometry(*x.shape[1:3])
        y = ws.array("y", (len(x), oh, ow, filters), np.result_type(x, w2))
        np.matmul(cols, w2, out=y.reshape(-1, filters))
        y += params["b"]
        return y, cols

    def apply(params, x, key=None):
        n, h, w, c = _nhwc(x)
        (oh, ow), _ = geometry(h, w)
        rows = max(1, APPLY_CHUNK // (oh * ow * k[0] * k[1] * c))
        if n <= rows:
            return forward(params, x, FRESH)[0]
        return np.concatenate([forward(params, x[i : i + rows], FRESH)[0] for i in range(0, n, rows)])

    def vjp(params, x, key=None, ws=FRESH, need_dx=True):
        y, cols = forward(params, x, ws)

        def backward(dy):
            g = ws.grads_like(params)
            dy2 = dy.reshape(-1, filters)
            _matmul_into(cols.T, dy2, g["w"])
            np.sum(dy2, axis=0, out=g["b"])
            return g, (input_grad(params["w"].reshape(-1, filters), dy, x.shape, ws) if need_dx else None)

        return y, backward

    def input_grad(w2, dy, x_shape, ws):
        """``dx = col2im(dy @ w2.T)``, worked out batch-innermost (see the module docstring)."""
        n, h, w, c = x_shape
        (oh, ow), (top, bottom, left, right) = geometry(h, w)
        dtype = np.result_type(dy, w2)
        dy_t = ws.array("dy_t", (oh, ow, n, filters), dy.dtype)
        np.copyto(dy_t, dy.transpose(1, 2, 0, 3))
        dcols_t = ws.array("dcols_t", (w2.shape[0], oh * ow * n), dtype)  # rows (i, j, c), columns (o, p, n)
        np.matmul(w2, dy_t.reshape(-1, filters).T, out=dcols_t)
        dcols_t = dcols_t.reshape(*k, c, oh, ow, n)
        acc = ws.array("dx_t", (c, top + h + bottom, left + w + right, n), dtype)
        acc.fill(0)
        for i, j, view in window_views(acc, (oh, ow), k, s):  # view[c, o, p, n] = acc[c, o*sh + i, p*sw + j, n]
            view += dcols_t[i, j]
        dx = ws.array("dx", tuple(x_shape), dtype)
        np.copyto(dx, acc[:, top : top + h, left : left + w].transpose(3, 1, 2, 0))
        return dx

    spec = {"type": "Conv2D", "filters": filters, "kernel": spec_pair(k), "stride": spec_pair(s), "padding": pad,
            "w_init": w_init, "b_init": b_init}
    return layer(init, apply, vjp, spec)


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


def _matmul_into(a, b, out):
    """``a @ b`` written into ``out``, an array of any shape holding ``a.shape[0] * b.shape[1]`` numbers."""
    m = out.reshape(a.shape[0], b.shape[1])
    np.matmul(a, b, out=m)
    if not np.shares_memory(m, out):  # out was not contiguous: reshape made a copy
        np.copyto(out, m.reshape(out.shape))
    return out
