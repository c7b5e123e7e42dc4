"""Where results are written: fresh arrays (the pure default) or buffers a loop owns.

Layers, losses and optimizers write every array they produce into storage
asked of a workspace ``ws``:

- ``ws.array(name, shape, dtype)`` -> an array to write ``name`` into;
- ``ws.like(name, tree)`` -> a tree of arrays shaped like ``tree``;
- ``ws.child(name)`` -> the workspace of a part (``serial`` gives child ``i`` ``ws.child("i")``);
- ``ws.grads_like(params)`` -> where a layer writes the gradient of its ``params``:
  arrays the owner placed there (``Workspace(grads=...)``, e.g. views into one flat
  vector), else ``ws.like("grad", params)``.

:data:`FRESH`, the default everywhere, answers every request with a new
array, so a function called without a workspace is pure: it returns new
arrays and changes nothing it was given. A :class:`Workspace` answers a
request with the same array every time it is asked for the same name and
shape: a training loop that owns one makes its buffers once (as
scikit-learn's MLP allocates in ``_fit``), and what a step returns is
overwritten by the next step that uses the workspace. When a step is given
its own last results (the loop passes the parameters back in), it updates
them in place, the way JAX donates buffers. Whoever owns a workspace decides
this; nothing is inferred from reference counts.

>>> ws = Workspace()
>>> a = ws.array("y", (2, 3))
>>> ws.array("y", (2, 3)) is a              # the same buffer every step
True
>>> FRESH.array("y", (2, 3)) is FRESH.array("y", (2, 3))
False
>>> ws.child("0") is ws.child("0")
True
"""

from __future__ import annotations

import math

import numpy as np

#: Bytes to which a workspace aligns its buffers: one cache line, and one AVX-512 register.
ALIGN = 64


def aligned_empty(shape, dtype=np.float32, align: int = ALIGN) -> np.ndarray:
    """An uninitialised array whose data starts at a multiple of ``align`` bytes.

    ``np.empty`` aligns to 16 bytes only. A float32 matrix starting at 16 or 48
    bytes past a cache line makes every 64-byte load of NumPy's SIMD loops and
    of BLAS straddle two lines: measured here, a 1x784 @ 784x128 product took
    9.2-10.0 us at those offsets against 7.8-8.3 us at 0 or 32.
    """
    dtype = np.dtype(dtype)
    shape = tuple(shape) if np.ndim(shape) else (int(shape),)
    nbytes = math.prod(shape) * dtype.itemsize
    raw = np.empty(nbytes + align, np.uint8)
    start = -raw.ctypes.data % align
    return raw[start : start + nbytes].view(dtype).reshape(shape)


class Fresh:
    """The workspace that owns nothing: every request gets a new array."""

    def array(self, name, shape, dtype=np.float32) -> np.ndarray:
        return np.empty(shape, dtype)

    def like(self, name, tree):
        """New arrays shaped like ``tree``'s leaves (nested dicts of arrays)."""
        if isinstance(tree, dict):
            return {k: self.like(name, v) for k, v in tree.items()}
        return np.empty_like(tree)

    def child(self, name):
        return self

    def grads_like(self, params):
        return self.like("grad", params)


#: The default workspace: functions that write into it allocate, so they are pure.
FRESH = Fresh()


class Workspace:
    """Buffers owned by one loop: the same array for the same name and shape, made on first use, 64-byte aligned.

    A workspace is not thread-safe and belongs to one loop at a time; the
    arrays it hands out are valid until the next request for the same name.
    """

    def __init__(self, grads=None):
        self.arrays: dict = {}
        self.children: dict = {}
        self.grads = grads  # the owner's arrays for the gradient of this part's params (a tree keyed like them)

    def array(self, name, shape, dtype=np.float32) -> np.ndarray:
        key = (name, shape, dtype)
        a = self.arrays.get(key)
        if a is None:
            a = self.arrays[key] = aligned_empty(shape, dtype)
        return a

    def like(self, name, tree):
        """Arrays shaped like ``tree``'s leaves, the same ones for the same name and layout."""
        if isinstance(tree, dict):
            return {k: self.child(name).like(k, v) for k, v in tree.items()}
        return self.array(name, np.shape(tree), np.asarray(tree).dtype)

    def child(self, name) -> Workspace:
        ws = self.children.get(name)
        if ws is None:
            grads = self.grads.get(name) if isinstance(self.grads, dict) else None
            ws = self.children[name] = Workspace(grads)
        return ws

    def grads_like(self, params):
        """The owner's gradient arrays for ``params`` when it gave some, else ``like("grad", params)``."""
        return self.grads if self.grads is not None else self.like("grad", params)

    def nbytes(self) -> int:
        """Bytes held by this workspace and its children."""
        return sum(a.nbytes for a in self.arrays.values()) + sum(c.nbytes() for c in self.children.values())
