import numpy as np
import pytest

from fnn import initializers, random

SHAPE = (400, 300)


@pytest.mark.parametrize(
    "name, var",
    [
        ("glorot_uniform", 2 / 700),
        ("glorot_normal", 2 / 700),
        ("he_uniform", 2 / 400),
        ("he_normal", 2 / 400),
        ("lecun_uniform", 1 / 400),
        ("lecun_normal", 1 / 400),
        ("normal", 0.01**2),
    ],
)
def test_variance_matches_the_formula(name, var):
    w = initializers.get(name)(random.key(0), SHAPE)
    assert w.dtype == np.float32 and w.shape == SHAPE
    assert w.var() == pytest.approx(var, rel=0.03)
    assert abs(w.mean()) < 0.05 * np.sqrt(var)


@pytest.mark.parametrize("name", sorted(initializers.INITIALIZERS))
def test_deterministic_dtype_aware_and_shape_only(name):
    init = initializers.get(name)
    a, b = init(random.key(7), (5, 4), np.float64), init(random.key(7), (5, 4), np.float64)
    assert a.dtype == np.float64
    np.testing.assert_array_equal(a, b)
    placeholder = init(None, (100000, 1000))
    assert placeholder.shape == (100000, 1000) and placeholder.strides == (0, 0)


def test_zeros_and_unknown_name():
    assert not initializers.zeros(random.key(0), (3,)).any()
    with pytest.raises(ValueError, match="unknown initializer 'nope'"):
        initializers.get("nope")
