"""The fast path (fnn.fast) against the plain tree code: same bits, nothing overwritten that anyone holds."""

import copy
import threading

import numpy as np
import pytest

import fnn
from fnn import fast, layers, losses, optim, random
from fnn.tree import tree_equal, tree_leaves

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
def test_fast_step_is_bit_identical_to_the_plain_step(model_name, opt):
    model, penalty = MODELS[model_name]
    assert opt.fused is not None and fast.TrainStep.supports(model, opt)
    _, params = model.init(random.key(0), (-1, 6))
    fast_step = fnn.make_train_step(model, CE, opt, penalty)
    plain_step = fnn.make_train_step(model, CE, opt, penalty, fast_path=False)
    a = b = (params, opt.init(params))
    for i, batch in enumerate(batches(7)):
        *a, ma = fast_step(*a, batch, random.key(100 + i))
        *b, mb = plain_step(*b, batch, random.key(100 + i))
        assert tree_equal(a[0], b[0]) and tree_equal(a[1], b[1]), f"step {i}"
        assert ma == mb
    assert tree_leaves(a[0])[0].base is not None, "the fast path ran: parameters are views into a flat vector"


def small_adam_run():
    """``(params, opt_state, step)``: a 6-5-3 MLP with Adam and its (fast) train step."""
    model, opt = layers.mlp([6, 5, 3]), optim.adam(0.05)
    _, params = model.init(random.key(0), (-1, 6))
    return params, opt.init(params), fnn.make_train_step(model, CE, opt)


def test_nothing_returned_is_ever_overwritten():
    params, state, step = small_adam_run()
    held, copies = [], []
    part = None
    for i, batch in enumerate(batches(12)):
        params, state, _ = step(params, state, batch)
        if i % 2:  # keep every other result as it was handed out, and a copy to compare with
            held.append((params, state))
            copies.append(copy.deepcopy((params, state)))
        if i == 3:  # a view of a view, with the tree itself dropped, still protects the vector
            part, part_copy = params["0"]["w"][:2], params["0"]["w"][:2].copy()
    for (p, s), (pc, sc) in zip(held, copies):
        assert tree_equal(p, pc) and tree_equal(s, sc)
    np.testing.assert_array_equal(part, part_copy)


def test_vectors_are_recycled_in_a_plain_loop():
    params, state, step = small_adam_run()
    bases = set()
    for batch in batches(30):
        params, state, _ = step(params, state, batch)
        bases.add(id(params["0"]["w"].base))
    assert len(bases) <= 3


def test_changed_or_swapped_leaves_are_read_as_given():
    model = layers.mlp([6, 4, 4, 4, 3])  # two 4x4 weights: a swap keeps every shape
    opt = optim.sgd(0.1)
    _, params = model.init(random.key(0), (-1, 6))
    fast_step = fnn.make_train_step(model, CE, opt)
    plain_step = fnn.make_train_step(model, CE, opt, fast_path=False)
    batch = next(batches(1))
    params, state, _ = fast_step(params, opt.init(params), batch)
    swapped = {**params, "2": {**params["2"], "w": params["4"]["w"]}, "4": {**params["4"], "w": params["2"]["w"]}}
    a = fast_step(swapped, state, batch)
    b = plain_step(copy.deepcopy(swapped), state, batch)
    assert tree_equal(a[0], b[0])
    params["0"]["b"][:] = 1.0  # written in place through the handed-out view
    a = fast_step(params, state, batch)
    b = plain_step(copy.deepcopy(params), state, batch)
    assert tree_equal(a[0], b[0])


def test_float64_and_non_serial_models_take_the_plain_path():
    opt = optim.adam(0.05)
    model = layers.mlp([6, 3])
    _, params = model.init(random.key(0), (-1, 6))
    params64 = {k: {n: a.astype(np.float64) for n, a in v.items()} for k, v in params.items()}
    x, y = next(batches(1))
    out = fnn.make_train_step(model, CE, opt)(params64, opt.init(params64), (x, y))
    ref = fnn.make_train_step(model, CE, opt, fast_path=False)(params64, opt.init(params64), (x, y))
    assert tree_equal(out[0], ref[0]) and out[0]["0"]["w"].dtype == np.float64
    dense = layers.Dense(3)
    _, p = dense.init(random.key(0), (-1, 6))
    assert not fast.TrainStep.supports(dense, opt)
    new_p, _, m = fnn.make_train_step(dense, CE, opt)(p, opt.init(p), (x, y))
    assert new_p["w"].shape == (6, 3) and np.isfinite(m["loss"])


def test_two_threads_on_one_step_get_what_one_thread_gets():
    model = layers.mlp([6, 16, 3])
    opt = optim.adam(0.01)
    _, params = model.init(random.key(0), (-1, 6))
    step = fnn.make_train_step(model, CE, opt)
    data = list(batches(40))

    def run(out):
        p, s = params, opt.init(params)
        for batch in data:
            p, s, _ = step(p, s, batch)
        out.append(p)

    results = []
    threads = [threading.Thread(target=run, args=(results,)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    alone = []
    run(alone)
    assert tree_equal(results[0], alone[0]) and tree_equal(results[1], alone[0])


@pytest.mark.parametrize("rows", [1, 7, 2500])
def test_forward_matches_apply_and_leaves_the_input_alone(rows):
    model = layers.serial(layers.Relu, layers.Dense(9), layers.Relu, layers.Dense(5), layers.Sigmoid, layers.Dense(3))
    _, params = model.init(random.key(0), (-1, 4))
    x = random.normal(random.key(1), (rows, 4))
    x0 = x.copy()
    got = fast.forward(model, params, x, chunk=1024)
    np.testing.assert_allclose(got, model.apply(params, x), rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(x, x0)
    assert got.dtype == np.float32
    first = fnn.train.predict_logits(model, params, x)
    fnn.train.predict_logits(model, params, x + 1)
    np.testing.assert_array_equal(first, fnn.train.predict_logits(model, params, x)), "results are fresh arrays"


def test_pool_self_check_and_docstring():
    _, params = layers.mlp([3, 2]).init(random.key(0), (-1, 3))
    pool = fast.VectorPool(fast.Layout(params))
    assert pool.free is not None, "reference counts behave as the pool expects on this Python"
    first = pool.take()
    first_id, views = id(first), pool.tree(first)
    del first
    second = pool.take()
    assert id(second) != first_id, "a vector whose views are held is not handed out again"
    del views, second
    assert id(pool.take()) == first_id, "once nothing holds it, it is"
    assert {x.dtype for x in tree_leaves(pool.tree(pool.take()))} == {np.dtype(np.float32)}
