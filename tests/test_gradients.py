"""Every layer's and loss's hand-written gradient against float64 central differences."""

import inspect

import numpy as np
import pytest

from fnn import gradcheck, layers, losses, random
from fnn.layers import Layer

TOL = 1e-6

# One or more cases per registered layer: (layer, input shape without the batch dimension).
LAYER_CASES = {
    "Dense": [(layers.Dense(7), (5,)), (layers.Dense(1, "he_normal"), (3,))],
    "Relu": [(layers.Relu, (6,))],
    "LeakyRelu": [(layers.LeakyRelu(0.1), (6,))],
    "Sigmoid": [(layers.Sigmoid, (6,))],
    "Tanh": [(layers.Tanh, (6,))],
    "Softmax": [(layers.Softmax, (5,))],
    "Identity": [(layers.Identity, (4,))],
    "Flatten": [(layers.Flatten, (2, 3, 2))],
    "Dropout": [(layers.Dropout(0.5), (8,)), (layers.Dropout(0.0), (3,))],
    "Reshape": [(layers.Reshape((3, 2)), (6,)), (layers.Reshape("2,-1"), (2, 3))],
    "Conv2D": [(layers.Conv2D(2, 3), (4, 3, 2)), (layers.Conv2D(3, "2,3", stride=2, padding="valid"), (5, 6, 1))],
    "MaxPool2D": [(layers.MaxPool2D(2), (4, 4, 2)), (layers.MaxPool2D(3, 1), (4, 5, 1))],
    "AvgPool2D": [(layers.AvgPool2D(2), (4, 2, 2)), (layers.AvgPool2D(2, 1), (3, 3, 2))],
    "GlobalAvgPool": [(layers.GlobalAvgPool, (3, 2, 2))],
    "BatchNorm": [(layers.BatchNorm(), (2, 2, 3)), (layers.BatchNorm(0.5, 1e-3), (3, 1, 2))],  # (n, f) at batch >= 2: tests/test_conv.py
    "serial": [
        (layers.serial(layers.Dense(6), layers.Tanh, layers.Dropout(0.3), layers.Dense(4), layers.Softmax), (5,)),
        (layers.serial(layers.Flatten, layers.mlp([6, 5, 3], "sigmoid")), (2, 3)),
        (layers.serial(layers.Reshape((4, 4, 1)), layers.Conv2D(2, 3), layers.Tanh, layers.BatchNorm(), layers.MaxPool2D(2),
                       layers.Conv2D(2, 1), layers.GlobalAvgPool, layers.Dense(2)), (16,)),
    ],
}

LOSS_CASES = {
    "mse": lambda k, b: (random.normal(k, (b, 3), np.float64), random.normal(random.fold_in(k, 1), (b, 3), np.float64)),
    "mae": lambda k, b: (random.normal(k, (b, 3), np.float64), random.normal(random.fold_in(k, 1), (b, 3), np.float64)),
    "binary_cross_entropy": lambda k, b: (
        random.normal(k, (b, 2), np.float64) * 3,
        random.uniform(random.fold_in(k, 1), (b, 2), dtype=np.float64),
    ),
    "softmax_cross_entropy": lambda k, b: (
        random.normal(k, (b, 4), np.float64) * 2,
        random.permutation(random.fold_in(k, 1), max(b, 4))[:b] % 4,
    ),
    "categorical_cross_entropy": lambda k, b: (
        layers.softmax(random.normal(k, (b, 4), np.float64)),
        losses.one_hot(random.permutation(random.fold_in(k, 1), max(b, 4))[:b] % 4, 4, np.float64),
    ),
}


def _layer_params():
    for name, cases in LAYER_CASES.items():
        for i, (layer, shape) in enumerate(cases):
            for batch in (1, 3):
                yield pytest.param(layer, (batch, *shape), id=f"{name}-{i}-batch{batch}")


@pytest.mark.parametrize("layer, in_shape", list(_layer_params()))
def test_layer_grad_matches_central_differences(layer, in_shape):
    for seed in range(2):
        assert gradcheck.check_layer(layer, in_shape, key=random.key(seed)) <= TOL


@pytest.mark.parametrize("name", sorted(LOSS_CASES))
@pytest.mark.parametrize("batch", [1, 5])
def test_loss_grad_matches_central_differences(name, batch):
    z, t = LOSS_CASES[name](random.key(batch), batch)
    assert gradcheck.check_loss(losses.LOSSES[name], z, t) <= TOL


@pytest.mark.parametrize("name", sorted(LOSS_CASES))
@pytest.mark.parametrize("batch", [1, 5])
def test_weighted_loss_grad_matches_central_differences(name, batch):
    z, t = LOSS_CASES[name](random.key(batch), batch)
    w = random.uniform(random.key(7), (batch,), 0.2, 3.0, np.float64)
    assert gradcheck.check_loss(losses.LOSSES[name], z, t, weights=w) <= TOL
    unweighted = losses.LOSSES[name].value_and_grad(z, t)
    ones = losses.LOSSES[name].value_and_grad(z, t, np.ones(batch))
    assert ones[0] == pytest.approx(unweighted[0], rel=1e-12) and np.allclose(ones[1], unweighted[1], rtol=1e-12)
    doubled = losses.LOSSES[name].value_and_grad(z, t, 2 * w)
    assert doubled[0] == pytest.approx(2 * losses.LOSSES[name].apply(z, t, w), rel=1e-12)


def test_softmax_ce_with_one_hot_and_soft_labels():
    z = random.normal(random.key(0), (4, 5), np.float64)
    labels = np.array([0, 3, 4, 1])
    ce = losses.softmax_cross_entropy
    assert gradcheck.check_loss(ce, z, losses.one_hot(labels, 5, np.float64)) <= TOL
    soft = layers.softmax(random.normal(random.key(1), (4, 5), np.float64))
    assert gradcheck.check_loss(ce, z, soft) <= TOL
    assert ce.apply(z, labels) == pytest.approx(ce.apply(z, losses.one_hot(labels, 5, np.float64)), rel=1e-12)
    # Fused gradient is softmax(z) - onehot, divided by the batch size.
    np.testing.assert_allclose(ce.grad(z, labels), (layers.softmax(z) - losses.one_hot(labels, 5, np.float64)) / 4)


@pytest.mark.parametrize("penalty", [losses.l1(0.3), losses.l2(0.7)], ids=["l1", "l2"])
def test_penalty_grads(penalty):
    _, params = layers.mlp([4, 3, 2]).init(random.key(0), (-1, 4))
    params = {k: {n: a + 0.1 for n, a in v.items()} for k, v in params.items()}  # keep away from |w| = 0
    assert gradcheck.check_penalty(penalty, params) <= TOL
    g = penalty.grad(params)
    assert not g["0"]["b"].any(), "biases are excluded by default"


def test_every_layer_is_registered_and_checked():
    """A new layer that is not in the registry (or has no gradient case here) fails this test."""
    public = {
        name
        for name, obj in vars(layers).items()
        if not name.startswith("_")
        and (isinstance(obj, Layer) or (inspect.isfunction(obj) and inspect.signature(obj).return_annotation in ("Layer", Layer)))
        and name not in ("layer", "elementwise", "mlp", "build")
    }
    assert public <= set(layers.REGISTRY), f"not in layers.REGISTRY: {public - set(layers.REGISTRY)}"
    own = {name for name, v in layers.REGISTRY.items() if (v.init if isinstance(v, Layer) else v).__module__.startswith("fnn.")}
    assert own == set(LAYER_CASES), "every layer fnn registers needs a gradient case"  # (tests register layers of their own)
    assert set(losses.LOSSES) == set(LOSS_CASES), "every loss needs a gradient case"


def test_vjp_matches_grad_and_first_layer_skips_dx():
    model = layers.mlp([5, 4, 3])
    _, params = model.init(random.key(0), (-1, 5))
    x = random.normal(random.key(1), (2, 5))
    dy = random.normal(random.key(2), (2, 3))
    y, back = model.vjp(params, x)
    np.testing.assert_array_equal(y, model.apply(params, x))
    dp, dx = back(dy)
    dp2, dx2 = model.grad(params, x, dy)
    np.testing.assert_array_equal(dx, dx2)
    np.testing.assert_array_equal(dp["0"]["w"], dp2["0"]["w"])
    _, back = model.vjp(params, x, need_dx=False)
    assert back(dy)[1] is None


def test_summed_penalties():
    _, params = layers.mlp([4, 3, 2]).init(random.key(0), (-1, 4))
    params = {k: {n: a + 0.1 for n, a in v.items()} for k, v in params.items()}
    both = losses.penalties(losses.l1(0.3), losses.l2(0.7))
    assert both.apply(params) == pytest.approx(losses.l1(0.3).apply(params) + losses.l2(0.7).apply(params))
    assert gradcheck.check_penalty(both, params) <= TOL
    assert losses.penalties() is None and losses.penalties(losses.l1(0.1)).apply(params) == losses.l1(0.1).apply(params)
