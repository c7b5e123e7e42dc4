"""Explicit buffers: the in-place train step (a workspace it owns) gives the pure step's bits and overwrites only its own arrays."""

import copy

import numpy as np
import pytest

import fnn
from fnn import layers, losses, optim, random
from fnn.tree import tree_copy, tree_equal, tree_leaves
from fnn.workspace import FRESH, Workspace

CE = losses.softmax_cross_entropy

MODELS = {
    "mlp": (layers.mlp([6, 5, 4, 3]), None),
    "dropout+l2": (layers.mlp([6, 5, 3], dropout=0.2), losses.l2(1e-3)),
    "mixed+l1": (
        layers.serial(layers.Dense(5), layers.Tanh, layers.Dense(4), layers.Relu, layers.Relu, layers.Dense(3)),
        losses.l1(1e-3),
    ),
    "relu-first+nested": (layers.serial(layers.Relu, layers.mlp([6, 4]), layers.LeakyRelu(0.1), layers.Dense(3)), None),
}


def batches(steps, features=6):
    for i in range(steps):
        n = 8 if i % 3 else 5  # a short batch now and then, as at the end of an epoch
        yield random.normal(random.key(i), (n, features)), np.arange(n) % 3


def optimizers():
    for name in sorted(optim.OPTIMIZERS):
        yield pytest.param(optim.OPTIMIZERS[name](0.05), id=name)
        yield pytest.param(optim.by_name(name, 0.05, weight_decay=0.01, clip_norm=0.5), id=f"{name}+decay+clip")


@pytest.mark.parametrize("model_name", sorted(MODELS))
@pytest.mark.parametrize("opt", list(optimizers()))
def test_in_place_step_is_bit_identical_to_the_pure_step(model_name, opt):
    model, penalty = MODELS[model_name]
    _, params = model.init(random.key(0), (-1, 6))
    given = tree_copy(params)
    in_place = fnn.make_inplace_train_step(model, CE, opt, penalty)
    pure = fnn.make_train_step(model, CE, opt, penalty)
    a = b = (params, opt.init(params))
    for i, batch in enumerate(batches(7)):
        *a, ma = in_place(*a, batch, random.key(100 + i))
        *b, mb = pure(*b, batch, random.key(100 + i))
        assert tree_equal(a[0], b[0]) and tree_equal(a[1], b[1]), f"step {i}"
        assert ma == mb
    assert tree_equal(params, given), "the params given to the first step are read, never written"


def test_elementwise_optimizers_run_on_one_flat_vector_and_update_it_in_place():
    model, opt = layers.mlp([6, 5, 3]), optim.adam(0.05)
    assert opt.elementwise and not optim.adamw(0.05).elementwise and not optim.adam(0.05, clip_norm=1.0).elementwise
    _, params = model.init(random.key(0), (-1, 6))
    step = fnn.make_inplace_train_step(model, CE, opt)
    params, state, _ = step(params, opt.init(params), next(batches(1)))
    flat, mu = params["0"]["w"].base, state["0"]["mu"]["0"]["w"].base
    assert flat is not None and all(leaf.base is flat for leaf in tree_leaves(params))
    for batch in batches(5):
        params, state, _ = step(params, state, batch)
    assert params["0"]["w"].base is flat and state["0"]["mu"]["0"]["w"].base is mu, "its own buffers, updated in place"


def test_a_kept_copy_survives_and_a_foreign_tree_is_copied_in():
    """Only what the step returned is overwritten; trees from elsewhere are read, and an edit through a view counts."""
    model, opt = layers.mlp([6, 4, 4, 4, 3]), optim.sgd(0.1)  # two 4x4 weights: a swap keeps every shape
    _, params = model.init(random.key(0), (-1, 6))
    step, pure = fnn.make_inplace_train_step(model, CE, opt), fnn.make_train_step(model, CE, opt)
    batch = next(batches(1))
    params, state, _ = step(params, opt.init(params), batch)
    kept = tree_copy(params)
    mine = tree_copy(params)  # a tree of other arrays (the step's own views would be updated in place)
    swapped = {**mine, "2": {**mine["2"], "w": mine["4"]["w"]}, "4": {**mine["4"], "w": mine["2"]["w"]}}
    before = copy.deepcopy(swapped)
    a, b = step(swapped, state, batch), pure(before, state, batch)
    assert tree_equal(a[0], b[0]) and tree_equal(swapped, before)
    assert not tree_equal(kept, a[0]) and not tree_equal(kept, swapped)
    mine = a[0]
    mine["0"]["b"][:] = 1.0  # written in place through the returned view: the next step sees it
    expect = pure(copy.deepcopy(mine), a[1], batch)
    assert tree_equal(step(mine, a[1], batch)[0], expect[0])


def test_float64_params_and_models_that_are_not_serial_train_as_the_pure_step_does():
    opt = optim.adam(0.05)
    x, y = next(batches(1))
    model = layers.mlp([6, 3])
    _, params = model.init(random.key(0), (-1, 6))
    params64 = {k: {n: a.astype(np.float64) for n, a in v.items()} for k, v in params.items()}
    out = fnn.make_inplace_train_step(model, CE, opt)(params64, opt.init(params64), (x.astype(np.float64), y))
    ref = fnn.make_train_step(model, CE, opt)(params64, opt.init(params64), (x.astype(np.float64), y))
    assert tree_equal(out[0], ref[0]) and out[0]["0"]["w"].dtype == np.float64
    dense = layers.Dense(3)
    _, p = dense.init(random.key(0), (-1, 6))
    a, b = fnn.make_inplace_train_step(dense, CE, opt)(p, opt.init(p), (x, y)), fnn.make_train_step(dense, CE, opt)(p, opt.init(p), (x, y))
    assert tree_equal(a[0], b[0]) and np.isfinite(a[2]["loss"])


def test_a_layer_rebuilt_with_replace_is_run_as_it_says_everywhere():
    """No shadow path: a Dense with its own apply/vjp gives its own outputs in apply, predict and training."""
    base = layers.Dense(3)

    def apply(params, x, key=None):
        return 2 * base.apply(params, x)

    def vjp(params, x, key=None, ws=FRESH, need_dx=True):
        y, back = base.vjp(params, x, key, need_dx=need_dx)

        def backward(dy):
            return back(2 * dy)

        return 2 * y, backward

    doubled = base._replace(apply=apply, vjp=vjp)
    model = layers.serial(layers.Dense(4), layers.Relu, doubled)
    _, params = model.init(random.key(0), (-1, 6))
    x, y = next(batches(1))
    h = np.maximum(x @ params["0"]["w"] + params["0"]["b"], 0)
    want = 2 * (h @ params["2"]["w"] + params["2"]["b"])
    np.testing.assert_allclose(model.apply(params, x), want, rtol=1e-6)
    np.testing.assert_array_equal(fnn.predict(model, params, x), want.argmax(1))
    big = np.repeat(x, 300, axis=0)  # more rows than one prediction chunk
    np.testing.assert_array_equal(fnn.train.predict_outputs(model, params, big), model.apply(params, big))
    value, _, outputs = fnn.value_and_grad(model, CE)(params, x, y)
    np.testing.assert_allclose(outputs, want, rtol=1e-6)
    for make in (fnn.make_train_step, fnn.make_inplace_train_step):
        _, _, metrics = make(model, CE, optim.adam(0.01))(params, optim.adam(0.01).init(params), (x, y))
        assert metrics["loss"] == pytest.approx(CE.apply(want, y), rel=1e-6)
    assert fnn.gradcheck.check_layer(doubled, (2, 5)) < 1e-6


def test_a_layer_that_writes_its_gradient_elsewhere_still_trains_on_the_flat_path():
    """Gradients a layer returns in arrays of its own are copied into the flat vector."""
    base = layers.Dense(3)

    def vjp(params, x, key=None, ws=FRESH, need_dx=True):
        return base.vjp(params, x, key, FRESH, need_dx)  # ignores the loop's workspace

    model = layers.serial(layers.Dense(4), layers.Relu, base._replace(vjp=vjp))
    _, params = model.init(random.key(0), (-1, 6))
    opt = optim.adam(0.05)
    a = b = (params, opt.init(params))
    for batch in batches(4):
        *a, _ = fnn.make_inplace_train_step(model, CE, opt)(*a, batch)
        *b, _ = fnn.make_train_step(model, CE, opt)(*b, batch)
    assert tree_equal(a[0], b[0])


def test_a_nan_loss_raises_before_anything_is_updated():
    model, opt = layers.mlp([6, 3]), optim.adam(0.05)
    _, params = model.init(random.key(0), (-1, 6))
    step = fnn.make_inplace_train_step(model, CE, opt)
    params, state, _ = step(params, opt.init(params), next(batches(1)))
    kept = tree_copy((params, state))
    x, y = next(batches(1))
    x[0, 0] = np.nan
    for s in (step, fnn.make_train_step(model, CE, opt)):
        with pytest.raises(fnn.train.NonFiniteLoss, match="nan"):
            s(params, state, (x, y))
    assert tree_equal(params, kept[0]) and tree_equal(state, kept[1])


def test_workspace_hands_out_the_same_buffers_and_fresh_hands_out_new_ones():
    ws = Workspace()
    assert ws.array("y", (2, 3)) is ws.array("y", (2, 3)) and ws.array("y", (3, 3)) is not ws.array("y", (2, 3))
    tree = {"a": np.zeros(2, np.float32), "b": {"c": np.zeros((2, 2))}}
    got = ws.like("mu", tree)
    assert got["a"] is ws.like("mu", tree)["a"] and got["b"]["c"].dtype == np.float64
    assert FRESH.like("mu", tree)["a"] is not FRESH.like("mu", tree)["a"]
    grads = {"0": {"w": np.empty(3)}}
    assert Workspace(grads=grads).child("0").grads_like({"w": None})["w"] is grads["0"]["w"]


def test_predict_in_chunks_through_one_workspace_equals_apply_chunk_by_chunk():
    """``predict`` runs a model without key or state chunk by chunk through its vjp forward into a workspace of its own:
    each chunk's outputs are ``apply``'s on that chunk bit for bit, chunks do not overwrite each other, and a Dropout
    model still predicts with its inference ``apply`` (no units dropped).

    Bit for bit per chunk, not against ``apply`` on the whole batch: BLAS may round the rows near a block's edge
    differently for 1024 rows than for 2500 (OpenBLAS's Haswell kernels do, for the 16x8 product here).
    """
    x = fnn.random.normal(fnn.random.key(3), (2500, 6))
    for model in (fnn.mlp([6, 16, 8, 3]), fnn.serial(fnn.Dense(16), fnn.Relu, fnn.layers.Dropout(0.5), fnn.Dense(3))):
        _, params = model.init(fnn.random.key(0), (-1, 6))
        by_chunk = np.concatenate([model.apply(params, x[i : i + 1024]) for i in range(0, len(x), 1024)])
        chunked = fnn.train.predict_outputs(model, params, x, batch_size=1024)
        assert np.array_equal(chunked, by_chunk)
        np.testing.assert_allclose(chunked, model.apply(params, x), rtol=1e-5, atol=1e-6)
        assert np.array_equal(fnn.predict(model, params, x, batch_size=1024), by_chunk.argmax(1))


@pytest.mark.parametrize("name", ["adam", "rmsprop", "momentum", "adagrad"])
def test_flat_vectors_and_every_leaf_in_them_are_64_byte_aligned_and_the_gaps_stay_zero(name):
    ws = Workspace()
    assert all(ws.array(f"a{n}", (n,)).ctypes.data % 64 == 0 for n in (1, 3, 17, 1000))
    model = layers.mlp([6, 5, 4, 3])  # leaves of 30, 5, 20, 4, 12 and 3 numbers: gaps between them
    _, params = model.init(random.key(0), (-1, 6))
    opt = optim.OPTIMIZERS[name](0.05)
    step = fnn.make_inplace_train_step(model, CE, opt, workspace=ws)
    state = opt.init(params)
    for batch in batches(5):
        params, state, _ = step(params, state, batch)
    assert all(leaf.ctypes.data % 64 == 0 for leaf in tree_leaves(params))
    covered = np.zeros(step.layout.size, bool)
    for s in step.layout.slices:
        covered[s] = True
    assert not covered.all(), "this model's leaves leave gaps"
    vectors = [step.flat, step.grad] + [a for a in tree_leaves(step.flat_state) if np.shape(a) == (step.layout.size,)]
    assert len(vectors) >= 3
    for vector in vectors:
        assert not vector[~covered].any()
