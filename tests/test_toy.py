"""Teaching data (fnn.datasets.toy): shapes, seeds, geometry, argument checks; the loss surfaces and the
optimizer paths on them; the spiral of experiments/learn.py trains to >= 95%."""

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest

from fnn import gradcheck, optim, random
from fnn.datasets import toy

CLASSIFIERS = {
    "spiral": lambda **kw: toy.spiral(n_per_class=40, classes=4, **kw),
    "moons": lambda **kw: toy.moons(n=161, **kw),
    "circles": lambda **kw: toy.circles(n=161, **kw),
}


@pytest.mark.parametrize("name", sorted(CLASSIFIERS))
def test_classification_shapes_dtypes_and_balance(name):
    x, y = CLASSIFIERS[name](key=0)
    n = 160 if name == "spiral" else 161
    assert x.shape == (n, 2) and x.dtype == np.float32 and x.flags.c_contiguous
    assert y.shape == (n,) and y.dtype == np.int64
    counts = np.bincount(y).tolist()
    assert counts == ([40] * 4 if name == "spiral" else [80, 81])
    assert np.isfinite(x).all()


@pytest.mark.parametrize("name", sorted(CLASSIFIERS) + ["curve"])
def test_same_key_same_bits_other_key_other_data(name):
    make = CLASSIFIERS.get(name, toy.curve)
    a, b = make(key=3), make(key=3)
    for u, v in zip(a, b):
        assert u.tobytes() == v.tobytes()
    k = random.key(3)
    for u, v in zip(a, make(key=k)):  # an int seed is the key random.key(seed)
        assert u.tobytes() == v.tobytes()
    other = make(key=4)
    assert a[0].tobytes() != other[0].tobytes()


@pytest.mark.parametrize("name", sorted(CLASSIFIERS))
def test_rows_are_shuffled_and_the_shuffle_keeps_pairs(name):
    x, y = CLASSIFIERS[name](key=0, noise=0.0)
    assert (np.diff(y) != 0).sum() > 10  # not sorted by class
    # the noise-free points of one class, re-sorted, are the same whatever the shuffle
    x2, y2 = CLASSIFIERS[name](key=1, noise=0.0)
    for c in np.unique(y):
        assert np.array_equal(np.unique(x[y == c], axis=0), np.unique(x2[y2 == c], axis=0))


def test_spiral_geometry():
    x, y = toy.spiral(n_per_class=50, classes=3, noise=0.0, key=0)
    radius = np.hypot(x[:, 0], x[:, 1])
    for c in range(3):
        np.testing.assert_allclose(np.sort(radius[y == c]), np.linspace(0, 1, 50), atol=1e-6)
    # arm c at radius r sits at angle 2.5 * (4c + 4r): (r sin, r cos)
    r = radius[y == 1]
    angle = 2.5 * (4 + 4 * r)
    np.testing.assert_allclose(x[y == 1], np.stack([r * np.sin(angle), r * np.cos(angle)], 1), atol=1e-5)  # r from float32
    noisy, _ = toy.spiral(n_per_class=50, classes=3, noise=0.2, key=0)
    np.testing.assert_allclose(np.sort(np.hypot(*noisy.T)), np.sort(radius), atol=1e-6)  # noise moves the angle only
    assert np.abs(x).max() <= 1.0


def test_moons_geometry():
    x, y = toy.moons(n=100, noise=0.0, key=0)
    np.testing.assert_allclose(np.hypot(*x[y == 0].T), 1.0, atol=1e-6)  # upper half circle around (0, 0)
    np.testing.assert_allclose(np.hypot(x[y == 1, 0] - 1, x[y == 1, 1] - 0.5), 1.0, atol=1e-6)  # lower one around (1, 0.5)
    assert (x[y == 0, 1] >= -1e-6).all() and (x[y == 1, 1] <= 0.5 + 1e-6).all()
    noisy, _ = toy.moons(n=2000, noise=0.1, key=0)
    clean, _ = toy.moons(n=2000, noise=0.0, key=0)
    assert np.std(noisy - clean) == pytest.approx(0.1, rel=0.05)


def test_circles_geometry():
    x, y = toy.circles(n=100, noise=0.0, factor=0.3, key=0)
    np.testing.assert_allclose(np.hypot(*x[y == 0].T), 1.0, atol=1e-6)
    np.testing.assert_allclose(np.hypot(*x[y == 1].T), 0.3, atol=1e-6)


def test_curve_is_a_noisy_sine_on_the_unit_interval():
    x, y = toy.curve(n=4000, noise=0.1, key=0)
    assert x.shape == y.shape == (4000, 1) and x.dtype == y.dtype == np.float32
    assert 0 <= x.min() < 0.01 and 0.99 < x.max() < 1
    residual = y - np.sin(2 * np.pi * x)
    assert abs(residual.mean()) < 0.01 and np.std(residual) == pytest.approx(0.1, rel=0.05)
    x0, y0 = toy.curve(n=50, noise=0.0, key=0)
    np.testing.assert_allclose(y0, np.sin(2 * np.pi * x0), atol=1e-6)


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: toy.spiral(n_per_class=0), "n_per_class"),
        (lambda: toy.spiral(n_per_class=2.5), "n_per_class"),
        (lambda: toy.spiral(classes=1), "classes"),
        (lambda: toy.spiral(classes=True), "classes"),
        (lambda: toy.spiral(noise=-0.1), "noise"),
        (lambda: toy.moons(n=0), "n"),
        (lambda: toy.moons(noise=float("nan")), "noise"),
        (lambda: toy.circles(noise=float("inf")), "noise"),
        (lambda: toy.circles(noise="0.1"), "noise"),
        (lambda: toy.circles(factor=1.0), "factor"),
        (lambda: toy.circles(factor=0), "factor"),
        (lambda: toy.curve(n=-3), "n"),
        (lambda: toy.curve(noise=-1), "noise"),
        (lambda: toy.spiral(key=-1), "seed"),
        (lambda: toy.descend(optim.sgd(0.1), "quadratic", steps=-1), "steps"),
        (lambda: toy.trajectories("himmelblau"), "surface"),
    ],
)
def test_bad_arguments_are_named(call, name):
    with pytest.raises(ValueError, match=rf"^(unknown )?{name}\b"):
        call()


def test_a_key_that_is_not_a_key_is_refused():
    with pytest.raises(TypeError, match="key"):
        toy.moons(key=np.zeros(3))


def test_smallest_sizes():
    assert toy.moons(n=1, key=0)[1].tolist() == [1]
    assert toy.spiral(n_per_class=1, classes=2, key=0)[0].shape == (2, 2)
    assert toy.curve(n=1, key=0)[0].shape == (1, 1)


# ---------------------------------------------------------------- surfaces


POINTS = [(-1.2, 1.0), (0.3, -0.7), (1.0, 1.0), (2.5, 4.0)]


@pytest.mark.parametrize("surf", list(toy.SURFACES.values()), ids=list(toy.SURFACES))
@pytest.mark.parametrize("point", POINTS)
def test_surface_gradient_matches_central_differences(surf, point):
    xy = np.array(point, np.float64)
    numeric = gradcheck.numeric_grad(lambda: float(surf.value(xy)), xy)
    np.testing.assert_allclose(surf.grad(xy), numeric, rtol=1e-6, atol=1e-6)  # atol: the gradient is 0 at a minimum
    g32 = surf.grad(xy.astype(np.float32))
    assert g32.dtype == np.float32 and g32.shape == (2,)


@pytest.mark.parametrize("surf", list(toy.SURFACES.values()), ids=list(toy.SURFACES))
def test_surface_minimum_and_vectorized_values(surf):
    assert surf.value(np.array(surf.minimum)) == 0 and not surf.grad(np.array(surf.minimum)).any()
    grid = np.stack(np.meshgrid(np.linspace(-2, 2, 7), np.linspace(-3, 3, 5)), axis=-1)  # (5, 7, 2)
    values = surf.value(grid)
    assert values.shape == (5, 7) and (values > 0).all()
    assert values[2, 3] == surf.value(grid[2, 3])
    assert surf.grad(grid).shape == (5, 7, 2)


def test_descend_runs_the_optimizer_on_the_surface_gradient():
    path = toy.descend(optim.sgd(0.01), "rosenbrock", start=(-1.2, 1.0), steps=3)
    assert path.shape == (4, 2) and path.dtype == np.float32
    p = np.array([-1.2, 1.0], np.float32)
    for row in path[1:]:
        p = p - np.float32(0.01) * toy.rosenbrock_grad(p)
        np.testing.assert_allclose(row, p, rtol=1e-6)
    assert np.array_equal(toy.descend(optim.adam(0.1), "quadratic", steps=0), np.float32([toy.QUADRATIC.start]))


def test_every_optimizer_reaches_the_quadratic_minimum():
    paths = toy.trajectories("quadratic")
    assert set(paths) == set(optim.OPTIMIZERS)
    for name, path in paths.items():
        assert path.shape == (toy.QUADRATIC.steps + 1, 2)
        assert math.hypot(*(path[-1] - toy.QUADRATIC.minimum)) < 0.05, name
    # AdamW decays xy towards 0, so it settles a little short of the minimum: not the same path as Adam
    assert not np.array_equal(paths["adam"], paths["adamw"])


def test_every_optimizer_makes_progress_on_rosenbrock():
    surf = toy.ROSENBROCK
    paths = toy.trajectories(surf)
    start = math.hypot(*(np.array(surf.start) - surf.minimum))
    ends = {name: math.hypot(*(p[-1] - surf.minimum)) for name, p in paths.items()}
    assert all(np.isfinite(p).all() for p in paths.values())
    assert all(d < 0.4 * start for d in ends.values()), ends
    assert ends["adam"] < 0.05 and ends["momentum"] < ends["sgd"], ends


def test_trajectories_take_your_own_optimizers_and_start():
    paths = toy.trajectories("quadratic", {"slow": optim.sgd(0.001), "fast": optim.sgd(0.1)}, start=(0.0, 0.0), steps=50)
    assert list(paths) == ["slow", "fast"] and paths["fast"][0].tolist() == [0.0, 0.0]
    d = {k: math.hypot(*(p[-1] - toy.QUADRATIC.minimum)) for k, p in paths.items()}
    assert d["fast"] < 0.1 < d["slow"]


# ---------------------------------------------------------------- the learn script


def load_learn():
    path = Path(__file__).resolve().parents[1] / "experiments" / "learn.py"
    spec = importlib.util.spec_from_file_location("learn", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_spiral_of_learn_trains_to_95_percent(tmp_path):
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        result = load_learn().spiral(tmp_path)
    assert result["accuracy"] >= 0.95 and result["points"] == 300, result
    assert (tmp_path / "spiral_boundary.png").stat().st_size > 10_000
