"""fnn.buffers.Recycler: an array is handed out again only when nothing outside holds it."""

import threading
import time

import numpy as np

from fnn import batching, datasets, random
from fnn.buffers import Recycler


def test_an_array_comes_back_only_once_released():
    pool = Recycler()
    assert pool.free is not None  # CPython: reuse is on
    a = pool.take((4, 3), np.float32)
    b = pool.take((4, 3), np.float32)
    assert not np.shares_memory(a, b)
    address = a.ctypes.data
    del a
    c = pool.take((4, 3), np.float32)
    assert c.ctypes.data == address and not np.shares_memory(b, c)
    assert pool.take((4, 3), np.float64).dtype == np.float64 and pool.take((3, 4)).shape == (3, 4)


def test_a_held_view_or_view_of_a_view_keeps_the_array_out_of_reach():
    pool = Recycler()
    a = pool.take((8,), np.float32)
    view = a[2:][::2]
    del a
    b = pool.take((8,), np.float32)
    assert not np.shares_memory(view, b)
    del view, b
    assert len(pool.arrays) == 2


def test_only_limit_arrays_are_kept_and_large_ones_never():
    pool = Recycler(limit=2, max_bytes=1000)
    held = [pool.take((10,), np.float32) for _ in range(5)]
    assert len(pool.arrays) == 2 and len({a.ctypes.data for a in held}) == 5
    big = pool.take((1000,), np.float32)
    assert all(a is not big for a in pool.arrays)


def test_threads_never_get_memory_another_live_array_uses():
    pool, clashes = Recycler(limit=8), []

    def work():
        for _ in range(200):
            a = pool.take((64,), np.float32)
            a.fill(threading.get_ident() % 1000)
            time.sleep(0.0002)  # let the other threads take arrays while this one is held
            if not np.all(a == threading.get_ident() % 1000):
                clashes.append(1)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert clashes == []


def test_batches_kept_by_the_caller_stay_intact(mnist):
    ds = mnist
    x, y = ds.x_train[:1000], ds.y_train[:1000]
    kept = list(batching.iterate_batches(x, y, 100, random.key(0), transform=datasets.make_transform()))
    order = random.permutation(random.key(0), 1000)
    for i, (xb, yb) in enumerate(kept):
        idx = order[i * 100 : (i + 1) * 100]
        assert np.array_equal(yb, y[idx])
        assert np.array_equal(xb, x[idx].reshape(100, -1).astype(np.float32) * np.float32(1 / 255))
    assert len({xb.ctypes.data for xb, _ in kept}) == len(kept)


def test_to_float_is_the_two_step_conversion_bit_for_bit():
    rng = np.random.default_rng(0)
    for x in (rng.integers(0, 256, (5, 4, 3), dtype=np.uint8), rng.standard_normal((5, 12))):
        expected = x.reshape(5, -1).astype(np.float32)
        expected *= np.float32(1 / 255)
        got = batching.to_float(x)
        assert got.dtype == np.float32 and got.shape == (5, 12)
        assert got.tobytes() == expected.tobytes()
