"""Convolution, pooling, BatchNorm and Reshape (NHWC): gradients against central differences, forwards against
direct loops, running statistics, workspaces, training."""

import copy
import itertools

import numpy as np
import pytest

import fnn
from fnn import gradcheck, layers, losses, optim, random
from fnn.layers import AvgPool2D, BatchNorm, Conv2D, Dense, Flatten, GlobalAvgPool, MaxPool2D, Relu, Reshape
from fnn.layers.windows import out_size, pair
from fnn.tree import tree_copy, tree_equal, tree_map
from fnn.workspace import Workspace

TOL = 1e-6
CONV_GRID = list(itertools.product([1, 3, 5], [1, 2], ["same", "valid", 1]))


def as64(tree):
    return tree_map(lambda a: np.array(a, np.float64), tree)


def randomized(layer, in_shape, seed=0):
    """Params with random (not initial) values, so zero biases or unit scales hide nothing."""
    _, params = layer.init(random.key(seed), in_shape)
    return tree_map(lambda a: random.normal(random.fold_in(random.key(seed), a.size), a.shape, np.float64), params)


# ---------------------------------------------------------------- direct references (loops are fine here)


def conv_reference(x, w, b, stride, padding):
    n, h, wd, c = x.shape
    kh, kw, _, f = w.shape
    (oh, top, bottom), (ow, left, right) = out_size(h, kh, stride[0], padding), out_size(wd, kw, stride[1], padding)
    xp = np.zeros((n, h + top + bottom, wd + left + right, c))
    xp[:, top : top + h, left : left + wd] = x
    y = np.zeros((n, oh, ow, f))
    for a, o, p in itertools.product(range(n), range(oh), range(ow)):
        window = xp[a, o * stride[0] : o * stride[0] + kh, p * stride[1] : p * stride[1] + kw]
        y[a, o, p] = np.tensordot(window, w, 3) + b
    return y


def pool_reference(x, pool, stride, reduce):
    n, h, w, c = x.shape
    oh, ow = (h - pool) // stride + 1, (w - pool) // stride + 1
    y = np.zeros((n, oh, ow, c))
    for o, p in itertools.product(range(oh), range(ow)):
        y[:, o, p] = reduce(x[:, o * stride : o * stride + pool, p * stride : p * stride + pool], axis=(1, 2))
    return y


# ---------------------------------------------------------------- Conv2D


@pytest.mark.parametrize("kernel, stride, padding", CONV_GRID)
@pytest.mark.parametrize("batch, c_in", [(1, 1), (2, 3)])
def test_conv_gradients_match_central_differences(kernel, stride, padding, batch, c_in):
    conv = Conv2D(2, kernel, stride, padding)
    in_shape = (batch, 6, 5, c_in)  # not square: a swapped height and width shows
    assert gradcheck.check_layer(conv, in_shape, params=randomized(conv, in_shape)) <= TOL


@pytest.mark.parametrize("kernel, stride, padding", CONV_GRID + [((2, 3), (1, 2), "same"), ((3, 1), (2, 1), 2)])
def test_conv_forward_matches_a_direct_loop(kernel, stride, padding):
    conv = Conv2D(3, kernel, stride, padding)
    x = random.normal(random.key(1), (2, 7, 6, 2), np.float64)
    params = randomized(conv, x.shape)
    want = conv_reference(x, params["w"], params["b"], pair(stride, "stride"), padding)
    assert conv.init(None, (-1, 7, 6, 2))[0] == (-1, *want.shape[1:])
    np.testing.assert_allclose(conv.apply(params, x), want, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(conv.vjp(params, x)[0], want, rtol=1e-12, atol=1e-12)


def test_conv_same_padding_keeps_the_size_like_keras_and_float32_stays_float32():
    assert Conv2D(4, 3).init(None, (-1, 28, 28, 1))[0] == (-1, 28, 28, 4)
    assert Conv2D(4, 3, stride=2).init(None, (-1, 7, 8, 1))[0] == (-1, 4, 4, 4)  # ceil(7 / 2), ceil(8 / 2)
    assert Conv2D(4, 5, padding="valid").init(None, (-1, 28, 28, 1))[0] == (-1, 24, 24, 4)
    conv = Conv2D(4, 3, stride=2)
    _, params = conv.init(random.key(0), (-1, 9, 9, 3))
    assert params["w"].dtype == np.float32 and params["w"].shape == (3, 3, 3, 4)
    x = random.normal(random.key(1), (2, 9, 9, 3))
    y, back = conv.vjp(params, x)
    g, dx = back(np.ones_like(y))
    assert y.dtype == dx.dtype == g["w"].dtype == np.float32
    np.testing.assert_allclose(conv.apply(params, x), y, rtol=1e-5, atol=1e-6)


def test_conv_apply_runs_big_batches_in_pieces_with_the_same_result(monkeypatch):
    conv = Conv2D(3, 3)
    x = random.normal(random.key(0), (7, 5, 5, 2), np.float64)
    params = randomized(conv, x.shape)
    whole = conv.apply(params, x)
    monkeypatch.setattr(fnn.layers.conv, "APPLY_CHUNK", 5 * 5 * 9 * 2 * 2)  # two images per piece
    np.testing.assert_allclose(conv.apply(params, x), whole, rtol=1e-12)
    np.testing.assert_allclose(whole, conv_reference(x, params["w"], params["b"], (1, 1), "same"), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("batch", [48, 37, 96])
def test_conv_gradients_of_a_big_batch_are_the_per_image_ones(batch):
    """Past 32 images the input gradient is worked out in blocks of images (16, 8, 32, or the whole batch if none divides it)."""
    conv = Conv2D(3, 3, stride=(1, 2))
    x = random.normal(random.key(0), (batch, 5, 4, 2), np.float64)
    params = randomized(conv, x.shape)
    y, back = conv.vjp(params, x, ws=Workspace())
    dy = random.normal(random.key(1), y.shape, np.float64)
    g, dx = back(dy)
    singles = [conv.grad(params, x[i : i + 1], dy[i : i + 1]) for i in range(batch)]
    np.testing.assert_allclose(dx, np.concatenate([d for _, d in singles]), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(g["w"], sum(p["w"] for p, _ in singles), rtol=1e-10)
    np.testing.assert_allclose(g["b"], dy.sum(axis=(0, 1, 2)), rtol=1e-10)


@pytest.mark.parametrize("use_ws", [False, True])
def test_conv_backward_twice_gives_the_same_gradients(use_ws):
    """The backward writes dcols over the patch matrix it no longer needs; a second call rebuilds the patches."""
    conv = Conv2D(3, 3, stride=2)
    x = random.normal(random.key(0), (2, 5, 6, 2), np.float64)
    params = randomized(conv, x.shape)
    ws = Workspace() if use_ws else fnn.workspace.FRESH
    y, back = conv.vjp(params, x, ws=ws)
    dy = random.normal(random.key(1), y.shape, np.float64)
    first = copy.deepcopy(back(dy))
    second = back(dy)
    assert tree_equal(first[0], second[0]) and np.array_equal(first[1], second[1])
    assert gradcheck.check_layer(conv, x.shape, params=params) <= TOL


# few filters: neighbouring output pixels share a row of the product (conv.row_group); (filters, kernel, stride, padding, in_shape)
GROUPED = [(6, 5, 1, "same", (2, 6, 8, 1)), (6, 3, 1, "valid", (2, 7, 10, 3)), (8, 5, 2, "same", (1, 9, 12, 2)),
           (4, "3,5", 1, 1, (2, 4, 8, 2))]


@pytest.mark.parametrize("filters, kernel, stride, padding, in_shape", GROUPED)
def test_a_grouped_conv_matches_a_direct_loop_and_central_differences(filters, kernel, stride, padding, in_shape):
    conv = Conv2D(filters, kernel, stride, padding)
    geo_out = conv.init(None, (-1, *in_shape[1:]))[0][1:3]
    k, s = pair(kernel, "kernel"), pair(stride, "stride")
    geo = fnn.layers.conv.Geometry(k, s, geo_out, (0, 0, 0, 0))
    assert fnn.layers.conv.row_group(geo, filters) > 1, "the case must take the grouped product"
    x = random.normal(random.key(1), in_shape, np.float64)
    params = randomized(conv, in_shape)
    want = conv_reference(x, params["w"], params["b"], s, padding)
    np.testing.assert_allclose(conv.apply(params, x), want, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(conv.vjp(params, x, ws=Workspace())[0], want, rtol=1e-12, atol=1e-12)
    assert gradcheck.check_layer(conv, in_shape, params=params) <= TOL


@pytest.mark.parametrize("filters", [6, 32])
def test_a_one_channel_batch_runs_in_pieces_with_the_per_image_gradients(filters):
    """One-channel inputs run in pieces of 16 images (35: two and a remainder); with 6 filters grouped as well."""
    conv = Conv2D(filters, 5, padding="same")
    x = random.normal(random.key(0), (35, 6, 8, 1), np.float64)
    params = randomized(conv, x.shape)
    assert len(fnn.layers.conv.pieces(x.shape)) == 3
    for ws in (fnn.workspace.FRESH, Workspace()):
        y, back = conv.vjp(params, x, ws=ws)
        np.testing.assert_allclose(y, conv_reference(x, params["w"], params["b"], (1, 1), "same"), rtol=1e-12, atol=1e-12)
        dy = random.normal(random.key(1), y.shape, np.float64)
        g, dx = back(dy)
        singles = [conv.grad(params, x[i : i + 1], dy[i : i + 1]) for i in range(len(x))]
        np.testing.assert_allclose(dx, np.concatenate([d for _, d in singles]), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(g["w"], sum(p["w"] for p, _ in singles), rtol=1e-10)
        np.testing.assert_allclose(g["b"], dy.sum(axis=(0, 1, 2)), rtol=1e-10)
        assert tree_equal(back(dy)[0], g), "a second backward gives the same gradients"


def test_a_net_skips_the_backward_nobody_uses():
    """Reshape then Conv2D first: the conv makes no dx and the Reshape's backward never runs; the gradients are the same."""

    def untouchable_backward(params, x, key=None, ws=fnn.workspace.FRESH, need_dx=True):
        def backward(dy):
            raise AssertionError("this backward is not needed")

        return x.reshape(len(x), 6, 6, 1), backward

    spy = Reshape((6, 6, 1))._replace(vjp=untouchable_backward)
    model = fnn.serial(spy, Conv2D(3, 3), Relu, Flatten, Dense(2))
    _, params = model.init(random.key(0), (-1, 36))
    x, dy = random.normal(random.key(1), (4, 36), np.float64), random.normal(random.key(2), (4, 2), np.float64)
    params = tree_map(lambda a: a.astype(np.float64), params)
    grads, dx = model.vjp(params, x, need_dx=False)[1](dy)
    assert dx is None and grads["0"] == {} and grads["2"] == {}
    reference = fnn.serial(Reshape((6, 6, 1)), Conv2D(3, 3), Relu, Flatten, Dense(2))
    want, want_dx = reference.vjp(params, x)[1](dy)
    assert tree_equal(grads, want) and want_dx.shape == x.shape
    assert gradcheck.check_layer(reference, (2, 36), params=params) <= TOL


def test_conv_first_layer_skips_dx_and_bad_arguments_say_what_is_wrong():
    conv = Conv2D(2, 3)
    _, params = conv.init(random.key(0), (-1, 4, 4, 1))
    _, back = conv.vjp(params, np.ones((1, 4, 4, 1), np.float32), need_dx=False)
    assert back(np.ones((1, 4, 4, 2), np.float32))[1] is None
    with pytest.raises(ValueError, match=r"NHWC.*\(-1, 784\).*Reshape"):
        conv.init(None, (-1, 784))
    for bad, match in [(dict(filters=0, kernel=3), "filters"), (dict(filters=2, kernel=0), "kernel"),
                       (dict(filters=2, kernel=3, padding="full"), "padding"), (dict(filters=2, kernel=3, stride=1.5), "stride")]:
        with pytest.raises(ValueError, match=match):
            Conv2D(**bad)
    with pytest.raises(ValueError, match="does not fit"):
        Conv2D(2, 5, padding="valid").init(None, (-1, 4, 4, 1))


# ---------------------------------------------------------------- pooling

POOL_CASES = [  # (pool, stride, input shape): tiling, a leftover border, overlapping windows
    (2, None, (1, 4, 6, 2)), (2, None, (3, 5, 5, 1)), (3, 2, (1, 7, 6, 2)), (3, 1, (2, 4, 5, 1)), ((2, 3), (1, 2), (1, 5, 7, 1)),
]


@pytest.mark.parametrize("pool, stride, in_shape", POOL_CASES)
@pytest.mark.parametrize("kind", [MaxPool2D, AvgPool2D])
def test_pool_gradients_match_central_differences(kind, pool, stride, in_shape):
    assert gradcheck.check_layer(kind(pool, stride), in_shape) <= TOL


@pytest.mark.parametrize("pool, stride", [(2, 2), (3, 2), (3, 1), (2, 1)])
def test_pool_forward_matches_a_direct_loop(pool, stride):
    x = random.normal(random.key(0), (2, 7, 8, 3), np.float64)
    for kind, reduce in [(MaxPool2D, np.max), (AvgPool2D, np.mean)]:
        want = pool_reference(x, pool, stride, reduce)
        layer = kind(pool, stride)
        assert layer.init(None, x.shape)[0] == want.shape
        np.testing.assert_allclose(layer.apply({}, x), want, rtol=1e-12)
        np.testing.assert_allclose(layer.vjp({}, x)[0], want, rtol=1e-12)


@pytest.mark.parametrize("pool, stride, in_shape", [(2, None, (2, 4, 4, 3)), (2, None, (1, 5, 5, 1)), (3, 1, (1, 5, 5, 2))])
def test_max_pool_sends_a_tied_gradient_to_exactly_the_first_maximum(pool, stride, in_shape):
    """After a ReLU whole windows are 0: each window's dy goes to its first position (row-major), once."""
    x = np.zeros(in_shape, np.float32)
    layer = MaxPool2D(pool, stride)
    y, back = layer.vjp({}, x)
    dy = random.uniform(random.key(0), y.shape, 1.0, 2.0)
    dx = back(dy)[1]
    s = pool if stride is None else stride
    want = np.zeros(in_shape, np.float32)
    for o, p in itertools.product(range(y.shape[1]), range(y.shape[2])):
        want[:, o * s, p * s] += dy[:, o, p]
    np.testing.assert_array_equal(dx, want)
    x[:, 1::2, 1::2] = 1.0  # a unique maximum per 2x2 tile: there the gradient goes instead
    if s == pool == 2:
        dx = layer.vjp({}, x)[1](dy)[1]
        np.testing.assert_array_equal(dx[:, 1 : 2 * y.shape[1] : 2, 1 : 2 * y.shape[2] : 2], dy)
        assert np.count_nonzero(dx) == dy.size


def test_global_avg_pool_and_pool_errors():
    x = random.normal(random.key(0), (2, 3, 4, 5), np.float64)
    np.testing.assert_allclose(GlobalAvgPool.apply({}, x), x.mean(axis=(1, 2)), rtol=1e-12)
    assert GlobalAvgPool.init(None, (-1, 3, 4, 5))[0] == (-1, 5)
    for batch in (1, 3):
        assert gradcheck.check_layer(GlobalAvgPool, (batch, 3, 2, 4)) <= TOL
    with pytest.raises(ValueError, match="does not fit"):
        MaxPool2D(3).init(None, (-1, 2, 2, 1))
    with pytest.raises(ValueError, match="NHWC"):
        AvgPool2D(2).init(None, (-1, 16))
    with pytest.raises(ValueError, match="pool"):
        MaxPool2D(0)


# ---------------------------------------------------------------- BatchNorm


@pytest.mark.parametrize("in_shape", [(2, 5), (3, 4), (1, 3, 2, 2), (2, 2, 3, 3)])
def test_batchnorm_gradients_match_central_differences(in_shape):
    bn = BatchNorm(0.8, 1e-3)
    state = {"mean": np.full(in_shape[-1], 0.3), "var": np.full(in_shape[-1], 2.0)}
    assert gradcheck.check_layer(bn, in_shape, params=randomized(bn, in_shape), state=state) <= TOL


def test_batchnorm_trains_on_batch_statistics_updates_the_running_ones_and_infers_with_them():
    bn = BatchNorm(momentum=0.8, eps=1e-5)
    x = random.normal(random.key(0), (4, 3, 2, 5), np.float64) * 3 + 2
    params = randomized(bn, x.shape)
    state = {"mean": np.linspace(-1, 1, 5), "var": np.linspace(0.5, 2, 5)}
    y, _, new_state = layers.vjp_model(bn, params, x, state=state)
    rows = x.reshape(-1, 5)
    mu, var = rows.mean(0), rows.var(0)
    np.testing.assert_allclose(y, params["scale"] * (x - mu) / np.sqrt(var + 1e-5) + params["shift"], rtol=1e-12)
    np.testing.assert_allclose(new_state["mean"], 0.8 * state["mean"] + 0.2 * mu, rtol=1e-12)
    np.testing.assert_allclose(new_state["var"], 0.8 * state["var"] + 0.2 * rows.var(0, ddof=1), rtol=1e-12)  # unbiased, as PyTorch
    for s in (state, new_state):
        want = params["scale"] * (x - s["mean"]) / np.sqrt(s["var"] + 1e-5) + params["shift"]
        np.testing.assert_allclose(layers.apply_model(bn, params, x, state=s), want, rtol=1e-12)
    assert layers.init_state(bn, (-1, 28, 28, 5)) == {"mean": pytest.approx(np.zeros(5)), "var": pytest.approx(np.ones(5))}


def test_batchnorm_refuses_one_value_per_channel_and_a_missing_state():
    bn = BatchNorm()
    _, params = bn.init(random.key(0), (-1, 3))
    state = layers.init_state(bn, (-1, 3))
    with pytest.raises(ValueError, match=r"more than one value per channel.*\(1, 3\)"):
        bn.vjp(params, np.ones((1, 3), np.float32), state=state)
    bn.vjp(params, np.ones((1, 2, 1, 3), np.float32), state=state)  # one image, two pixels: fine
    with pytest.raises(ValueError, match="state"):
        layers.apply_model(bn, params, np.ones((2, 3), np.float32))
    with pytest.raises(ValueError, match="momentum"):
        BatchNorm(momentum=1.5)


# ---------------------------------------------------------------- Reshape, specs


def test_reshape_shapes_specs_and_errors():
    assert Reshape((28, 28, 1)).init(None, (-1, 784))[0] == (-1, 28, 28, 1)
    assert Reshape("2,-1").init(None, (-1, 3, 4))[0] == (-1, 2, 6)
    assert Reshape((28, 28, 1)).spec == {"type": "Reshape", "shape": "28,28,1"}
    x = random.normal(random.key(0), (3, 12), np.float64)
    np.testing.assert_array_equal(Reshape((3, 4)).apply({}, x), x.reshape(3, 3, 4))
    with pytest.raises(ValueError, match=r"needs 12 values per row.*\(-1, 10\)"):
        Reshape((3, 4)).init(None, (-1, 10))
    for bad in ["2,x", (0, 3), (-1, -1), (2.5,), True]:
        with pytest.raises(ValueError, match="Reshape shape"):
            Reshape(bad)


def test_every_new_layer_rebuilds_from_its_spec_and_round_trips_a_model_file(tmp_path):
    model = fnn.serial(Reshape((6, 6, 2)), Conv2D(3, "3,2", stride=(2, 1), padding=1), Relu, MaxPool2D((1, 2)),
                       AvgPool2D(2, 1), Conv2D(2, 1, padding="valid"), GlobalAvgPool, Dense(2))
    assert layers.build(model.spec).spec == model.spec
    _, params = model.init(random.key(0), (-1, 72))
    x = random.normal(random.key(1), (3, 72))
    fnn.save_model(tmp_path / "m.npz", model, params, (-1, 72))
    loaded = fnn.load_model(tmp_path / "m.npz")
    np.testing.assert_array_equal(loaded.model.apply(loaded.params, x), model.apply(params, x))
    bn = layers.build({"type": "BatchNorm", "momentum": 0.99, "eps": 1e-3})
    assert bn.stateful and bn.spec == BatchNorm(0.99, 1e-3).spec


# ---------------------------------------------------------------- workspaces and training

WS_CASES = [
    (Conv2D(3, 3), (2, 5, 4, 2)), (Conv2D(2, 5, 2, "valid"), (3, 7, 7, 1)), (Conv2D(2, 1), (2, 3, 3, 2)),
    (MaxPool2D(2), (2, 4, 4, 3)), (MaxPool2D(3, 1), (2, 5, 4, 1)), (AvgPool2D(2), (2, 4, 6, 1)), (AvgPool2D(3, 2), (2, 7, 7, 2)),
    (GlobalAvgPool, (2, 3, 3, 2)), (BatchNorm(), (4, 3)), (BatchNorm(), (2, 3, 3, 2)), (Reshape((2, -1)), (2, 3, 4)),
]


@pytest.mark.parametrize("layer, in_shape", WS_CASES, ids=lambda v: str(v.spec) if hasattr(v, "spec") else str(v))
def test_a_workspace_used_twice_gives_the_bits_of_fresh_arrays_and_writes_no_input(layer, in_shape):
    _, params = layer.init(random.key(0), in_shape)
    state = layers.init_state(layer, in_shape)
    x = random.normal(random.key(1), in_shape)
    y0, back0, state0 = layers.vjp_model(layer, params, x, state=state)
    dy = random.normal(random.key(2), y0.shape)
    g0, dx0 = back0(dy)
    kept = copy.deepcopy((params, x, dy, state))
    ws = Workspace()
    ys = []
    for _ in range(2):
        y, back, new_state = layers.vjp_model(layer, params, x, ws=ws, state=state)
        g, dx = back(dy)
        assert np.array_equal(y, y0) and tree_equal(g, g0) and np.array_equal(dx, dx0) and tree_equal(new_state, state0)
        ys.append(y)
        poison(ws)  # the second call must not rely on what the first left in its buffers (zeroed borders, say)
    assert tree_equal(kept[0], params) and np.array_equal(kept[1], x) and np.array_equal(kept[2], dy), "inputs are read, never written"
    assert tree_equal(kept[3], state)
    if layer.spec["type"] != "Reshape":
        assert ys[0] is ys[1], "the second call reuses the workspace's buffer"


def poison(ws):
    """Fill every buffer of a workspace with junk: NaN, or the largest value of an integer type, or True."""
    for a in ws.arrays.values():
        a.fill(np.nan if a.dtype.kind == "f" else True if a.dtype == bool else np.iinfo(a.dtype).max)
    for child in ws.children.values():
        poison(child)


def conv_net():
    return fnn.serial(Reshape((8, 8, 1)), Conv2D(4, 3), Relu, MaxPool2D(2), Flatten, Dense(3))


def test_a_conv_net_trains_to_the_same_bits_with_the_pure_and_the_in_place_step():
    model, opt = conv_net(), optim.adam(0.01)
    _, params = model.init(random.key(0), (-1, 64))
    given = tree_copy(params)
    x = random.uniform(random.key(1), (12, 64))
    y = np.arange(12) % 3
    x[y == 1, :32] += 1.0  # something to learn
    x[y == 2, 32:] += 1.0
    pure = fnn.make_train_step(model, losses.softmax_cross_entropy, opt)
    in_place = fnn.make_inplace_train_step(model, losses.softmax_cross_entropy, opt)
    a = b = (params, opt.init(params))
    first = None
    for i in range(8):
        batch = (x[i % 2 :: 2], y[i % 2 :: 2]) if i % 3 else (x, y)  # batches of two sizes
        *a, ma = pure(*a, batch)
        *b, mb = in_place(*b, batch)
        assert tree_equal(a[0], b[0]) and tree_equal(a[1], b[1]) and ma == mb, f"step {i}"
        first = first or ma["loss"]
    assert tree_equal(params, given)
    assert a[0]["1"]["w"].dtype == np.float32
    assert fnn.train.evaluate(model, a[0], x, y)["loss"] < first


def test_a_batchnorm_conv_net_trains_through_vjp_model_with_its_state():
    # BatchNorm after the activation: a bias right before it has a zero gradient, which relative errors cannot check
    model = fnn.serial(Reshape((6, 6, 1)), Conv2D(4, 3), Relu, BatchNorm(), MaxPool2D(2), Flatten, Dense(3))
    assert model.stateful
    _, params = model.init(random.key(0), (-1, 36))
    state = layers.init_state(model, (-1, 36))
    assert set(state["3"]) == {"mean", "var"} and state["1"] == {}
    x, y = random.normal(random.key(1), (16, 36)), np.arange(16) % 3
    opt = optim.sgd(0.1)
    opt_state = opt.init(params)
    loss = losses.softmax_cross_entropy
    start = loss.apply(layers.apply_model(model, params, x, state=state), y)
    for _ in range(10):
        logits, back, state = layers.vjp_model(model, params, x, state=state)
        grads, _ = back(loss.value_and_grad(logits, y)[1])
        updates, opt_state = opt.update(grads, opt_state, params)
        params = optim.apply_updates(params, updates)
    assert not np.allclose(state["3"]["mean"], 0) and not np.allclose(state["3"]["var"], 1)
    inference = layers.apply_model(model, params, x, state=state)
    assert loss.apply(inference, y) < start
    assert not np.allclose(inference, logits), "inference uses the running averages, training the batch's"
    assert gradcheck.check_layer(model, (2, 36), state=as64(state)) <= TOL
