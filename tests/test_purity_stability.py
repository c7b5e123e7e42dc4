"""Purity (nothing mutates its inputs, init/apply are deterministic) and numerical stability."""

import copy

import numpy as np
import pytest
from test_gradients import LAYER_CASES

from fnn import batching, layers, losses, optim, random
from fnn.train import make_train_step, value_and_grad
from fnn.tree import tree_equal, tree_map


@pytest.mark.parametrize("name", sorted(LAYER_CASES))
def test_layers_mutate_nothing_and_are_deterministic(name):
    for layer, shape in LAYER_CASES[name]:
        in_shape = (4, *shape)
        _, p1 = layer.init(random.key(0), in_shape)
        _, p2 = layer.init(random.key(0), in_shape)
        assert tree_equal(p1, p2), "init twice with the same key"
        state = layers.init_state(layer, in_shape)  # {} for stateless layers; BatchNorm's running averages
        x = random.normal(random.key(1), in_shape)
        dy = random.normal(random.key(2), layers.apply_model(layer, p1, x, state=state).shape)
        saved = copy.deepcopy((p1, x, dy, state))
        k = random.key(3)
        y1, y2 = layers.apply_model(layer, p1, x, k, state), layers.apply_model(layer, p1, x, k, state)
        np.testing.assert_array_equal(y1, y2)
        layer.grad(p1, x, dy, k, state=state)
        y, back, _ = layers.vjp_model(layer, p1, x, k, state=state)
        back(dy)
        assert tree_equal(p1, saved[0]) and np.array_equal(x, saved[1]) and np.array_equal(dy, saved[2])
        assert tree_equal(state, saved[3])


@pytest.mark.parametrize("name", sorted(optim.OPTIMIZERS))
def test_optimizers_and_train_step_mutate_nothing(name):
    model = layers.mlp([6, 5, 3], dropout=0.2)
    _, params = model.init(random.key(0), (-1, 6))
    opt = optim.OPTIMIZERS[name](0.1)
    state = opt.init(params)
    batch = (random.normal(random.key(1), (8, 6)), np.arange(8) % 3)
    saved = copy.deepcopy((params, state, batch))
    step = make_train_step(model, losses.softmax_cross_entropy, opt, losses.l2(1e-3))
    a = step(params, state, batch, random.key(2))
    b = step(params, state, batch, random.key(2))
    assert tree_equal(a[0], b[0]) and tree_equal(a[1], b[1])
    assert tree_equal(params, saved[0]) and tree_equal(state, saved[1])
    assert np.array_equal(batch[0], saved[2][0])


def test_loss_functions_do_not_mutate_logits():
    z = random.normal(random.key(0), (5, 4))
    z0 = z.copy()
    for loss in losses.LOSSES.values():
        target = np.zeros((5, 4)) if loss.task in ("regression", "binary") else np.arange(5) % 4
        loss.value_and_grad(z if loss is not losses.categorical_cross_entropy else layers.softmax(z), target)
    np.testing.assert_array_equal(z, z0)


def test_softmax_is_shift_invariant_and_ce_finite_for_huge_logits():
    x = random.normal(random.key(0), (3, 10), np.float64)
    np.testing.assert_allclose(layers.softmax(x + 1e4), layers.softmax(x), rtol=1e-9)
    x32 = x.astype(np.float32)  # float32 cannot even hold x + 1e4 to better than 1e-3
    with np.errstate(all="raise"):
        np.testing.assert_allclose(layers.softmax(x32 + np.float32(1e4)), layers.softmax(x32), rtol=5e-3)
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # exp(-2e4) underflowing to 0 is exact enough
        z = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 5e3]], np.float32)
        value, g = losses.softmax_cross_entropy.value_and_grad(z, np.array([1, 1]))
        assert np.isfinite(value) and np.isfinite(g).all()
        assert value == pytest.approx(1e4)
        bce, gb = losses.binary_cross_entropy.value_and_grad(z, np.ones_like(z))
        assert np.isfinite(bce) and np.isfinite(gb).all()
        assert np.isfinite(layers.Sigmoid.apply({}, z)).all()


def test_an_epoch_on_random_data_raises_nothing_under_errstate_raise():
    model = layers.mlp([20, 16, 8, 4], dropout=0.1)
    _, params = model.init(random.key(0), (-1, 20))
    opt = optim.adam(1e-3)
    state = opt.init(params)
    step = make_train_step(model, losses.softmax_cross_entropy, opt, losses.l1(1e-4))
    x = (random.uniform(random.key(1), (500, 20)) * 255).astype(np.uint8)
    y = random.permutation(random.key(2), 500) % 4
    with np.errstate(all="raise"):
        for i, (xb, yb) in enumerate(batching.iterate_batches(x, y, 32, random.key(3), transform=batching.to_float)):
            params, state, m = step(params, state, (xb, yb), random.fold_in(random.key(4), i))
    assert np.isfinite(m["loss"])


def test_value_and_grad_runs_one_forward_and_one_backward_pass():
    calls = {"apply": 0, "vjp": 0}
    inner = layers.Dense(3)

    def counting(kind):
        def f(*a, **k):
            calls[kind] += 1
            return getattr(inner, kind)(*a, **k)
        return f

    counted = inner._replace(apply=counting("apply"), vjp=counting("vjp"))
    model = layers.serial(counted, layers.Relu, counted)
    _, params = model.init(random.key(0), (-1, 3))
    value_and_grad(model, losses.mse)(params, np.ones((2, 3), np.float32), np.zeros((2, 3), np.float32))
    assert calls == {"apply": 0, "vjp": 2}


def test_float32_end_to_end():
    model = layers.mlp([8, 6, 3])
    _, params = model.init(random.key(0), (-1, 8))
    assert all(a.dtype == np.float32 for a in tree_map(lambda a: a, params)["0"].values())
    opt = optim.adam(1e-3)
    step = make_train_step(model, losses.softmax_cross_entropy, opt)
    params, state, _ = step(params, opt.init(params), (np.ones((4, 8), np.float32), np.array([0, 1, 2, 0])))
    from fnn.tree import tree_leaves

    assert {a.dtype for a in tree_leaves(params)} == {np.dtype(np.float32)}
    assert {a.dtype for a in tree_leaves(state["0"]["mu"])} == {np.dtype(np.float32)}
    assert model.apply(params, np.ones((2, 8), np.float32)).dtype == np.float32
