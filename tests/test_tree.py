import numpy as np
import pytest

from fnn import tree
from fnn.tree import (
    StructureError,
    global_norm,
    tree_add,
    tree_dot,
    tree_flatten,
    tree_leaves,
    tree_map,
    tree_scale,
    tree_unflatten,
    zeros_like,
)


def sample():
    return {"0": {"w": np.arange(6.0).reshape(2, 3), "b": np.ones(3)}, "1": {}, "2": {"w": np.full((3, 1), 2.0)}}


def test_map_over_several_trees():
    a, b = sample(), sample()
    out = tree_map(lambda x, y, z: x + y * z, a, b, b)
    np.testing.assert_array_equal(out["0"]["w"], a["0"]["w"] + a["0"]["w"] ** 2)
    assert out["1"] == {}


def test_shape_tuples_are_leaves():
    assert tree_map(lambda s: s, {"a": (2, 3)}) == {"a": (2, 3)}


def test_mismatch_shows_both_structures():
    with pytest.raises(StructureError) as e:
        tree_map(np.add, {"a": 1, "b": 2}, {"a": 1, "c": 2})
    assert "'b'" in str(e.value) and "'c'" in str(e.value)
    with pytest.raises(StructureError):
        tree_map(np.add, {"a": {"x": 1}}, {"a": 1})


def test_flatten_roundtrip_and_order():
    t = sample()
    flat = tree_flatten(t)
    assert [p for p, _ in flat] == ["0.w", "0.b", "2.w"]
    back = tree_unflatten(flat)
    assert tree.tree_equal(back, {k: v for k, v in t.items() if v != {}})


def test_unflatten_rejects_duplicates():
    with pytest.raises(StructureError):
        tree_unflatten([("a.b", 1), ("a.b", 2)])


def test_arithmetic_helpers():
    t = sample()
    leaves = tree_leaves(t)
    assert global_norm(t) == pytest.approx(np.sqrt(sum((x**2).sum() for x in leaves)))
    assert tree_dot(t, t) == pytest.approx(global_norm(t) ** 2)
    np.testing.assert_array_equal(tree_add(t, t)["0"]["w"], tree_scale(t, 2.0)["0"]["w"])
    z = zeros_like(t)
    assert z["0"]["w"].shape == (2, 3) and not z["0"]["w"].any()
    assert tree.tree_size(t) == 6 + 3 + 3
