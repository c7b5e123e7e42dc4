"""fnn.batching: every example exactly once per epoch, reproducible from the key, and memory of a few batches."""

import tracemalloc

import numpy as np
import pytest

from fnn import batching, datasets, random


def epoch(n, batch_size, **kwargs):
    x = np.arange(n, dtype=np.int64)[:, None] * np.ones((1, 3), np.uint8)  # row i holds i
    y = np.arange(n)
    return list(batching.iterate_batches(x, y, batch_size, **kwargs))


@pytest.mark.parametrize("n, batch_size", [(10, 1), (10, 3), (10, 10), (10, 32), (1001, 64)])
def test_every_example_exactly_once_per_epoch(n, batch_size):
    batches = epoch(n, batch_size, key=random.key(0))
    seen = np.concatenate([yb for _, yb in batches])
    assert sorted(seen.tolist()) == list(range(n))
    assert all(np.array_equal(xb[:, 0], yb) for xb, yb in batches)  # x and y stay paired
    assert [len(yb) for _, yb in batches][:-1] == [batch_size] * (len(batches) - 1)
    assert len(batches) == batching.num_batches(n, batch_size) == -(-n // batch_size)


def test_drop_last_yields_only_full_batches_each_example_at_most_once():
    batches = epoch(10, 3, key=random.key(0), drop_last=True)
    seen = np.concatenate([yb for _, yb in batches])
    assert [len(yb) for _, yb in batches] == [3, 3, 3] and len(set(seen.tolist())) == 9
    assert batching.num_batches(10, 3, drop_last=True) == 3


def test_order_is_reproducible_from_the_key_and_differs_across_keys():
    order = lambda k: np.concatenate([yb for _, yb in epoch(100, 7, key=k)]).tolist()  # noqa: E731
    assert order(random.key(3)) == order(random.key(3))
    assert order(random.key(3)) != order(random.key(4))
    assert order(random.fold_in(random.key(3), 1)) != order(random.fold_in(random.key(3), 2))  # one key per epoch
    assert order(None) == list(range(100))  # no key: the stored order


def test_start_resumes_mid_epoch_with_the_same_batches():
    full = epoch(50, 8, key=random.key(5))
    resumed = epoch(50, 8, key=random.key(5), start=4)
    assert len(resumed) == len(full) - 4
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(full[4:], resumed))


def test_transform_is_applied_to_each_x_batch_only():
    x = np.full((5, 2, 2), 255, np.uint8)
    y = np.arange(5)
    for xb, yb in batching.iterate_batches(x, y, 2, key=random.key(0), transform=batching.to_float):
        assert xb.dtype == np.float32 and xb.shape == (len(yb), 4) and np.all(xb == 1.0)
        assert yb.dtype == y.dtype
    assert x.dtype == np.uint8 and np.all(x == 255)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"batch_size": 0}, "batch_size must be >= 1"),
        ({"y": np.arange(4)}, "x has 5 rows but y has 4"),
        ({"start": -1}, "start must be >= 0"),
    ],
)
def test_bad_arguments(kwargs, message):
    args = {"x": np.zeros((5, 2)), "y": np.arange(5), "batch_size": 2, **kwargs}
    with pytest.raises(ValueError, match=message):
        list(batching.iterate_batches(**args))


def test_memory_beyond_the_uint8_data_stays_within_a_few_batches(mnist):
    ds = mnist
    x, y = ds.x_train, ds.y_train  # 47 MB of uint8; as float32 it would be 188 MB
    batch_size = 128
    transform = datasets.make_transform()
    batch_bytes = batch_size * ds.features * 4  # one float32 batch: 401408 bytes
    order_bytes = len(y) * 8  # the epoch's permutation
    tracemalloc.start()
    try:
        for e in range(2):
            total, count = 0.0, 0
            key = random.fold_in(random.key(0), e)
            for xb, yb in batching.iterate_batches(x, y, batch_size, key=key, transform=transform):
                total += float(xb.sum())
                count += len(yb)
            assert count == 60000
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    print(f"iterating 2 epochs of MNIST: peak {peak / 1e6:.2f} MB beyond the uint8 arrays ({x.nbytes / 1e6:.0f} MB)")
    # Recycled arrays (fnn.buffers): two float32 batches in turn plus the short last one, with their uint8
    # sources: about 1.9 MB in all, against 188 MB for a float32 copy. Kept by the transform between epochs.
    assert peak < order_bytes + 4 * batch_bytes
    assert current < 3 * batch_bytes
    assert total == pytest.approx(float(x.sum(dtype=np.int64)) / 255, rel=1e-4)
