"""A parameter tree laid out as one flat vector, with the tree as views into it.

The in-place training step (:func:`fnn.train.make_inplace_train_step`) keeps
parameters, gradients and params-shaped optimizer state in one vector each, so
an elementwise optimizer such as Adam runs a dozen whole-vector operations
instead of a dozen per parameter array.

Each leaf starts at a multiple of 64 bytes from the vector's start (16
float32s), so that in a 64-byte-aligned vector (:func:`fnn.workspace.aligned_empty`)
every leaf is aligned too; the gaps between leaves hold zeros, which every
elementwise optimizer maps to zero updates.

>>> params = {"0": {"w": np.ones((2, 3), np.float32), "b": np.zeros(3, np.float32)}, "1": {}}
>>> layout = Layout(params)
>>> layout.size, layout.dtype, layout.slices
(19, dtype('float32'), [slice(0, 6, None), slice(16, 19, None)])
>>> flat = layout.pack(params, np.empty(layout.size, np.float32))
>>> tree = layout.views(flat)
>>> tree["0"]["w"].base is flat, tree["1"], bool(flat[6:16].any())
(True, {}, False)
"""

from __future__ import annotations

import math

import numpy as np

from fnn.tree import structure, tree_flatten
from fnn.workspace import ALIGN


class Layout:
    """Where each leaf of ``tree`` lies in a flat vector: dotted paths, shapes and slices, in flattening order.

    ``dtype`` is the leaves' common floating dtype, or None when they have none (then the tree cannot be laid flat).
    """

    def __init__(self, tree):
        items = tree_flatten(tree)
        self.structure = structure(tree)
        self.paths = [path for path, _ in items]
        self.shapes = [np.shape(leaf) for _, leaf in items]
        dtypes = {np.asarray(leaf).dtype for _, leaf in items}
        self.dtype = dtypes.pop() if len(dtypes) == 1 and next(iter(dtypes)).kind == "f" else None
        step = max(1, ALIGN // self.dtype.itemsize) if self.dtype is not None else 1
        self.slices, start = [], 0
        for shape in self.shapes:
            self.slices.append(slice(start, start + math.prod(shape)))
            start = -(-(start + math.prod(shape)) // step) * step  # the next leaf on a 64-byte boundary
        self.size = self.slices[-1].stop if self.slices else 0

    def fits(self, tree) -> bool:
        """True when ``tree`` has this layout: the same keys, leaf shapes and dtype."""
        if structure(tree) != self.structure:
            return False
        return all(np.shape(leaf) == s and np.asarray(leaf).dtype == self.dtype for (_, leaf), s in zip(tree_flatten(tree), self.shapes))

    def views(self, flat):
        """A new tree of this layout whose leaves are views into ``flat``."""
        leaves = iter(flat[s].reshape(shape) for s, shape in zip(self.slices, self.shapes))

        def build(node):
            return {k: build(v) for k, v in node.items()} if isinstance(node, dict) else next(leaves)

        return build(self.structure)

    def pack(self, tree, out):
        """Copy ``tree``'s leaves into the flat vector ``out``, zeros between them; returns ``out``."""
        self.zeroed(out)
        for (_, leaf), s in zip(tree_flatten(tree), self.slices):
            out[s] = np.ravel(leaf)
        return out

    def zeroed(self, out):
        """``out`` with zeros between the leaves (what :meth:`pack` writes there); returns ``out``."""
        end = 0
        for s in self.slices:
            out[end : s.start] = 0
            end = s.stop
        return out
