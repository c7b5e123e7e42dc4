"""Pytrees: nested dicts of arrays.

Only ``dict`` is a node; everything else (arrays, numbers, tuples, None) is a
leaf, so a shape tuple never turns into a subtree. Keys are kept in insertion
order, which makes flattening deterministic.

>>> params = {"0": {"w": np.ones((2, 3)), "b": np.zeros(3)}, "1": {}}
>>> [path for path, _ in tree_flatten(params)]
['0.w', '0.b']
>>> tree_map(lambda x: x.shape, params)
{'0': {'w': (2, 3), 'b': (3,)}, '1': {}}
"""

from __future__ import annotations

import math

import numpy as np


class StructureError(ValueError):
    """Two pytrees that should have the same layout do not."""


def structure(tree):
    """The key layout of ``tree`` with every leaf replaced by ``'*'``.

    >>> structure({"a": 1, "b": {"c": 2}})
    {'a': '*', 'b': {'c': '*'}}
    """
    if isinstance(tree, dict):
        return {k: structure(v) for k, v in tree.items()}
    return "*"


def _check_node(tree, rest):
    """Raise when any of ``rest`` differs from ``tree`` at this node."""
    for other in rest:
        if isinstance(tree, dict) != isinstance(other, dict) or (
            isinstance(tree, dict) and other.keys() != tree.keys()
        ):
            raise StructureError(
                f"pytree structures differ:\n  first:  {structure(tree)}\n  second: {structure(other)}"
            )


def tree_map(fn, tree, *rest):
    """Apply ``fn(leaf, *other_leaves)`` at every leaf; returns a new tree.

    ``rest`` trees must have the same key layout as ``tree``.

    >>> tree_map(lambda a, b: a + b, {"x": 1, "y": {"z": 2}}, {"x": 10, "y": {"z": 20}})
    {'x': 11, 'y': {'z': 22}}
    """
    _check_node(tree, rest)
    if isinstance(tree, dict):
        return {k: tree_map(fn, v, *(r[k] for r in rest)) for k, v in tree.items()}
    return fn(tree, *rest)


def tree_map_with_path(fn, tree, *rest, prefix=""):
    """Like :func:`tree_map`, but ``fn(path, leaf, *others)`` gets the dotted path.

    >>> tree_map_with_path(lambda p, x: p, {"0": {"w": 1}})
    {'0': {'w': '0.w'}}
    """
    _check_node(tree, rest)
    if isinstance(tree, dict):
        return {
            k: tree_map_with_path(fn, v, *(r[k] for r in rest), prefix=f"{prefix}{k}.")
            for k, v in tree.items()
        }
    return fn(prefix[:-1], tree, *rest)


def tree_leaves(tree):
    """The leaves in flattening order.

    >>> tree_leaves({"a": 1, "b": {"c": 2, "d": 3}})
    [1, 2, 3]
    """
    return [leaf for _, leaf in tree_flatten(tree)]


def tree_flatten(tree, prefix=""):
    """``[(dotted_path, leaf), ...]`` in insertion order.

    >>> tree_flatten({"0": {"w": 1, "b": 2}})
    [('0.w', 1), ('0.b', 2)]
    """
    if not isinstance(tree, dict):
        return [(prefix, tree)]
    out = []
    for k, v in tree.items():
        k = str(k)
        if "." in k or not k:
            raise ValueError(f"pytree key {k!r} must be non-empty and contain no '.'")
        out.extend(tree_flatten(v, f"{prefix}.{k}" if prefix else k))
    return out


def tree_unflatten(items):
    """Inverse of :func:`tree_flatten`: rebuild nested dicts from dotted paths.

    >>> tree_unflatten([("0.w", 1), ("0.b", 2), ("lr", 3)])
    {'0': {'w': 1, 'b': 2}, 'lr': 3}
    """
    tree: dict = {}
    for path, leaf in items:
        *parents, last = path.split(".")
        node = tree
        for key in parents:
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                raise StructureError(f"path {path!r} runs through a leaf")
        if last in node:
            raise StructureError(f"duplicate path {path!r}")
        node[last] = leaf
    return tree


def zeros_like(tree):
    """A tree of zero arrays with the leaves' shapes and dtypes."""
    return tree_map(np.zeros_like, tree)


def tree_add(a, b):
    """Leafwise ``a + b``."""
    return tree_map(np.add, a, b)


def tree_copy(tree):
    """A tree of copies of the leaves (to keep what a loop's buffers will overwrite)."""
    return tree_map(np.copy, tree)


def tree_scale(tree, s):
    """Leafwise ``s * x``, keeping each leaf's dtype."""
    return tree_map(lambda x: (x * np.asarray(s, dtype=x.dtype)), tree)


def tree_dot(a, b):
    """Sum over leaves of ``vdot(a, b)``, as a Python float."""
    return float(sum(np.vdot(x, y) for x, y in zip(tree_leaves(a), tree_leaves(b))))


def global_norm(tree):
    """``sqrt(sum over leaves of sum(x**2))``, as a Python float."""
    return math.sqrt(sum(float(np.vdot(x, x)) for x in tree_leaves(tree)))


def tree_size(tree):
    """Total number of scalars in the leaves."""
    return sum(int(np.size(x)) for x in tree_leaves(tree))


def tree_equal(a, b):
    """True when both trees have the same layout and bit-identical leaves."""
    if structure(a) != structure(b):
        return False
    return all(
        np.asarray(x).dtype == np.asarray(y).dtype and np.array_equal(x, y, equal_nan=False)
        for x, y in zip(tree_leaves(a), tree_leaves(b))
    )
