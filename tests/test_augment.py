"""Issue 18: data augmentation (fnn.datasets.augment): seeded, vectorized, uint8 in and out."""

import numpy as np
import pytest

from fnn import random
from fnn.datasets import augment as A


@pytest.fixture(scope="module")
def digits(mnist_raw):
    return mnist_raw[0][:128]


def identity(n):
    return np.eye(2, dtype=np.float32)[None].repeat(n, 0)


def test_same_key_same_batch_other_key_other_batch(digits):
    for options in (dict(shift=2, rotate=10, scale=0.1), dict(elastic=True), dict(flip=True), dict(shift=4, flip=True)):
        augment = A.make(**options)
        a, b, c = augment(digits, random.key(3)), augment(digits, random.key(3)), augment(digits, random.key(4))
        assert np.array_equal(a, b), options
        assert not np.array_equal(a, c), options
        assert not np.array_equal(a, digits), options
        again = A.make(**options)(digits, random.key(3))  # a new callable (fresh scratch buffers) gives the same bits
        assert np.array_equal(a, again), options


def test_zero_strength_is_the_identity(digits):
    assert A.make() is None and A.make(shift=0, rotate=0, scale=0, elastic=False, flip=False) is None
    assert np.array_equal(A.affine(digits, random.key(0)), digits)
    assert np.array_equal(A.warp(digits, identity(len(digits)), np.zeros((len(digits), 2))), digits)  # the resampling itself


@pytest.mark.parametrize("shape", [(5, 28, 28), (3, 32, 32, 3), (4, 9, 13), (2, 8, 8, 1)])
def test_shapes_and_dtype_are_kept(shape):
    x = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    for options in (dict(shift=2, rotate=15, scale=0.2), dict(elastic=8.0, sigma=2), dict(flip=True), dict(shift=1, flip=True)):
        out = A.make(**options)(x, random.key(1))
        assert out.shape == x.shape and out.dtype == np.uint8, options


def test_a_shift_moves_a_known_image_by_exactly_those_pixels():
    x = np.zeros((2, 10, 12), np.uint8)
    x[:, 3:5, 4:7] = 200  # a 2x3 block
    x[:, 3, 4] = 77
    out = A.warp(x, identity(2), np.array([[2, -3], [-1, 4]], np.float32))  # (rows, cols) per image
    assert np.array_equal(out[0], np.roll(np.roll(x[0], 2, axis=0), -3, axis=1))
    assert np.array_equal(out[1], np.roll(np.roll(x[1], -1, axis=0), 4, axis=1))
    assert out[0, 5, 1] == 77 and out[1, 2, 8] == 77


def test_rotation_by_90_degrees_is_rot90_and_points_outside_read_black():
    x = np.random.default_rng(1).integers(1, 256, (3, 7, 7), dtype=np.uint8)
    m = np.array([[0, 1], [-1, 0]], np.float32)[None].repeat(3, 0)  # R(-90 degrees): counter-clockwise on screen
    assert np.array_equal(A.warp(x, m, np.zeros((3, 2))), np.rot90(x, axes=(1, 2)))
    far = A.warp(x, identity(3), np.full((3, 2), 30, np.float32))  # shifted out of the frame
    assert not far.any()
    half = A.warp(np.full((1, 4, 4), 100, np.uint8), identity(1), np.array([[0, 0.5]], np.float32))
    assert half[0, 0, 0] == 50 and half[0, 0, 1] == 100  # bilinear: half of the first column reads the black outside


def test_random_shifts_stay_within_the_strength_and_flips_mirror():
    matrix, offset = A.random_affine(random.key(0), 1000, shift=2)
    assert np.abs(offset).max() <= 2 and np.abs(offset).max() > 1.9 and np.array_equal(matrix, identity(1000))
    matrix, _ = A.random_affine(random.key(0), 1000, rotate=10, scale=0.1)
    det = np.linalg.det(matrix)  # 1 / s^2
    assert (det >= 1 / 1.1**2 - 1e-5).all() and (det <= 1 / 0.9**2 + 1e-5).all()
    x = np.random.default_rng(2).integers(0, 256, (64, 6, 6, 3), dtype=np.uint8)
    out = A.make(flip=True)(x, random.key(5))
    mirrored = np.array([np.array_equal(o, i[:, ::-1]) for o, i in zip(out, x)])
    kept = np.array([np.array_equal(o, i) for o, i in zip(out, x)])
    assert (mirrored | kept).all() and 10 < mirrored.sum() < 54


def test_elastic_fields_are_smooth_and_the_gaussian_rows_sum_to_one():
    g = A.gaussian_matrix(28, 4.0)
    assert np.allclose(g.sum(axis=1), 1, atol=1e-6) and not g.flags.writeable
    assert np.allclose(g[14, 10:19], g[14, 10:19][::-1], atol=1e-7)  # symmetric around the middle row's own pixel
    d_row, d_col = A.displacement(random.key(0), 4, 28, 28, alpha=34, sigma=4)
    rough = random.uniform(random.key(0), (4, 28, 28), -1, 1) * 34
    assert np.abs(np.diff(d_row, axis=2)).mean() < 0.1 * np.abs(np.diff(rough, axis=2)).mean()  # smoothed
    assert 0.1 < np.abs(d_row).mean() < 5


def test_parse_presets_strings_and_mappings():
    assert A.parse("digits") == {**A.OFF, "shift": 2.0, "rotate": 10.0, "scale": 0.1}
    assert A.parse("PHOTOS")["flip"] is True and A.parse("photos")["shift"] == 4.0
    assert A.parse(None) is None and A.parse("none") is None and A.parse({"shift": 0}) is None
    assert A.parse("shift=1.5,rotate=5,elastic=true,flip") == {**A.OFF, "shift": 1.5, "rotate": 5.0, "elastic": 34.0, "flip": True}
    assert A.parse({"elastic": 8, "sigma": 3}) == {**A.OFF, "elastic": 8.0, "sigma": 3.0}
    assert A.parse(A.parse("digits")) == A.parse("digits")  # idempotent: what config.yaml stores reads back the same


@pytest.mark.parametrize("value, needle", [
    ("digitz", "unknown augment 'digitz'"),
    ("shift=two", "shift needs a number"),
    ({"shfit": 2}, "unknown augment option 'shfit'"),
    ({"shift": -1}, "shift must be >= 0, got -1.0"),
    ({"rotate": 400}, "rotate must be in [0, 180]"),
    ({"scale": 1.0}, "scale must be in [0, 1)"),
    ({"sigma": 0}, "sigma must be > 0"),
    ({"flip": "yes"}, "flip must be true or false"),
    ({"shift": float("nan")}, "shift must be >= 0"),
    (3, "must be a preset name"),
])
def test_bad_options_are_named(value, needle):
    with pytest.raises(A.AugmentError) as e:
        A.parse(value)
    assert needle in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("x", [np.zeros((4, 28, 28), np.float32), np.zeros((4, 784), np.uint8), np.zeros((28, 28), np.uint8)])
def test_only_uint8_image_batches_are_taken(x):
    with pytest.raises(A.AugmentError, match="uint8 image batches"):
        A.make(shift=1)(x, random.key(0))
