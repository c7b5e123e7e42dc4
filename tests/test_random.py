import numpy as np
import pytest

from fnn import random


def test_same_key_same_numbers_and_split_is_pure():
    k = random.key(42)
    a = random.split(k, 3)
    b = random.split(k, 3)
    np.testing.assert_array_equal(a, b)
    assert len({tuple(x) for x in a}) == 3
    np.testing.assert_array_equal(random.normal(a[0], (5,)), random.normal(a[0], (5,)))
    assert not np.array_equal(random.uniform(a[0], (5,)), random.uniform(a[1], (5,)))


def test_global_state_is_never_read():
    k = random.key(1)
    np.random.seed(0)
    first = random.normal(k, (4,))
    np.random.seed(123)
    np.random.random(10)
    np.testing.assert_array_equal(first, random.normal(k, (4,)))


def test_fold_in_and_dtypes():
    k = random.key(3)
    assert not np.array_equal(random.fold_in(k, 1), random.fold_in(k, 2))
    assert random.normal(k, (2, 2)).dtype == np.float32
    assert random.uniform(k, (2,), dtype=np.float64).dtype == np.float64
    p = random.permutation(k, 10)
    assert sorted(p.tolist()) == list(range(10))


def test_bad_keys_are_refused():
    with pytest.raises(TypeError):
        random.split(np.zeros(3, np.uint32))
    with pytest.raises(ValueError):
        random.key(-1)
