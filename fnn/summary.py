"""A model summary: each layer's output shape and parameter count, as Keras prints it.

>>> import fnn
>>> s = fnn.summary(fnn.mlp([784, 128, 64, 10]), (-1, 784))
>>> s.total, [row.params for row in s.rows]
(109386, [100480, 0, 8256, 0, 650])
>>> print(s)  # doctest: +NORMALIZE_WHITESPACE
layer       type    output shape    params
0           Dense   (None, 128)    100,480
1           Relu    (None, 128)          0
2           Dense   (None, 64)       8,256
3           Relu    (None, 64)           0
4           Dense   (None, 10)         650
total: 109,386 parameters (427.3 KiB as float32)
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np


class Row(NamedTuple):
    name: str  # the layer's path in the params tree ("0", "2.1", ...)
    type: str
    output_shape: tuple
    params: int


class Summary(NamedTuple):
    rows: list
    input_shape: tuple
    total: int
    state: int  # numbers of model state (BatchNorm's running averages): not parameters

    @property
    def bytes(self) -> int:
        """The parameters' memory as float32."""
        return 4 * self.total

    def table(self) -> list[list[str]]:
        """Header and rows as strings (for Markdown, HTML or a terminal)."""
        return [["layer", "type", "output shape", "params"]] + [
            [r.name, r.type, _shape(r.output_shape), f"{r.params:,}"] for r in self.rows
        ]

    def to_dict(self) -> dict:
        """JSON-able: rows, totals and memory."""
        return {"input_shape": _shape(self.input_shape), "total": self.total, "bytes": self.bytes, "state": self.state,
                "layers": [{"name": r.name, "type": r.type, "output_shape": _shape(r.output_shape), "params": r.params}
                           for r in self.rows]}

    def __str__(self):
        cells = self.table()
        widths = [max(len(row[i]) for row in cells) for i in range(4)]
        lines = ["  ".join(c.rjust(w) if i == 3 else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))).rstrip()
                 for row in cells]
        state = f", {self.state:,} numbers of state" if self.state else ""
        lines.append(f"total: {self.total:,} parameters ({self.bytes / 1024:.1f} KiB as float32){state}")
        return "\n".join(lines)


def _shape(shape) -> str:
    dims = ["None" if d == -1 else str(d) for d in shape]
    return "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")"


def _count(tree) -> int:
    if isinstance(tree, dict):
        return sum(_count(v) for v in tree.values())
    return int(math.prod(np.shape(tree)))


def summary(model, in_shape) -> Summary:
    """The layers of ``model`` for inputs of ``in_shape`` (batch dimension ``-1``); nothing is allocated.

    A ``serial`` shows its children (nested ``serial`` children as ``2.0``, ``2.1``, ...);
    other layers show as one row.
    """
    from fnn.layers.base import init_state

    rows = []

    def walk(layer, shape, prefix):
        if layer.spec.get("type") == "serial" and layer.children:
            for i, child in enumerate(layer.children):
                shape = walk(child, shape, f"{prefix}{i}" if not prefix else f"{prefix}.{i}")
            return shape
        out, params = layer.init(None, shape)  # shape-only placeholders: no memory
        rows.append(Row(prefix or "0", layer.spec.get("type", "?"), tuple(out), _count(params)))
        return tuple(out)

    in_shape = tuple(in_shape)
    walk(model, in_shape, "")
    state = _count(init_state(model, in_shape)) if model.stateful else 0
    return Summary(rows, in_shape, sum(r.params for r in rows), state)
