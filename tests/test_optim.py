"""Optimizers against their update equations, and on quadratic and Rosenbrock."""

import math

import numpy as np
import pytest

from fnn import optim
from fnn.datasets import toy
from fnn.tree import tree_flatten, tree_map

G1 = {"w": np.array([[0.5, -1.0]], np.float32), "b": np.array([2.0], np.float32)}
G2 = {"w": np.array([[-0.25, 0.75]], np.float32), "b": np.array([-1.0], np.float32)}
P0 = {"w": np.array([[1.0, 2.0]], np.float32), "b": np.array([0.5], np.float32)}


def run(opt, grads_seq, params=P0):
    state = opt.init(params)
    out = []
    for g in grads_seq:
        updates, state = opt.update(g, state, params)
        params = optim.apply_updates(params, updates)
        out.append(params)
    return out, state


def flat(t):
    return np.concatenate([t["w"].ravel(), t["b"].ravel()]).astype(np.float64)


p0, g1, g2 = flat(P0), flat(G1), flat(G2)
lr = 0.1


def by_hand_sgd():
    p1 = p0 - lr * g1
    return p1, p1 - lr * g2


def by_hand_momentum(nesterov=False, beta=0.9):
    v1 = g1
    p1 = p0 - lr * ((g1 + beta * v1) if nesterov else v1)
    v2 = beta * v1 + g2
    p2 = p1 - lr * ((g2 + beta * v2) if nesterov else v2)
    return p1, p2


def by_hand_rmsprop(d=0.9, eps=1e-8):
    n1 = (1 - d) * g1**2
    p1 = p0 - lr * g1 / (np.sqrt(n1) + eps)
    n2 = d * n1 + (1 - d) * g2**2
    return p1, p1 - lr * g2 / (np.sqrt(n2) + eps)


def by_hand_adagrad(a0=0.1, eps=1e-7):
    a1 = a0 + g1**2
    p1 = p0 - lr * g1 / (np.sqrt(a1) + eps)
    a2 = a1 + g2**2
    return p1, p1 - lr * g2 / (np.sqrt(a2) + eps)


ADAM_MASK = np.array([1, 1, 0])  # which entries weight decay reaches


def by_hand_adam(b1=0.9, b2=0.999, eps=1e-8, wd=0.0, mask=ADAM_MASK):
    m1, v1 = (1 - b1) * g1, (1 - b2) * g1**2
    u1 = (m1 / (1 - b1)) / (np.sqrt(v1 / (1 - b2)) + eps)
    p1 = p0 - lr * (u1 + wd * mask * p0)
    m2, v2 = b1 * m1 + (1 - b1) * g2, b2 * v1 + (1 - b2) * g2**2
    u2 = (m2 / (1 - b1**2)) / (np.sqrt(v2 / (1 - b2**2)) + eps)
    return p1, p1 - lr * (u2 + wd * mask * p1)


CASES = {
    "sgd": (optim.sgd(lr), by_hand_sgd),
    "momentum": (optim.momentum(lr, 0.9), by_hand_momentum),
    "nesterov": (optim.nesterov(lr, 0.9), lambda: by_hand_momentum(True)),
    "rmsprop": (optim.rmsprop(lr), by_hand_rmsprop),
    "adagrad": (optim.adagrad(lr), by_hand_adagrad),
    "adam": (optim.adam(lr), by_hand_adam),
    "adamw": (optim.adamw(lr, weight_decay=0.5), lambda: by_hand_adam(wd=0.5)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_first_steps_equal_the_update_equations(name):
    opt, by_hand = CASES[name]
    (q1, q2), _ = run(opt, [G1, G2])
    e1, e2 = by_hand()
    np.testing.assert_allclose(flat(q1), e1, rtol=2e-6, atol=1e-7)
    np.testing.assert_allclose(flat(q2), e2, rtol=2e-6, atol=1e-7)
    assert q2["w"].dtype == np.float32


def test_registry_covers_the_cli_names():
    assert set(optim.OPTIMIZERS) == set(CASES)


def quadratic_grad(p):
    # f = (x - 3)**2 / 2 + 10 (y + 2)**2 / 2, minimum at (3, -2); the surfaces of the teaching pictures
    return {"x": toy.quadratic_grad(p["x"])}


def rosenbrock_grad(p):
    return {"x": toy.rosenbrock_grad(p["x"])}


QUAD = {
    "sgd": optim.sgd(0.05),
    "momentum": optim.momentum(0.02),
    "nesterov": optim.nesterov(0.02),
    "rmsprop": optim.rmsprop(optim.exponential_decay(0.05, 0.01, 2000)),
    "adagrad": optim.adagrad(1.0),
    "adam": optim.adam(optim.cosine_decay(0.2, 2000, 0.0)),
    "adamw": optim.adamw(optim.cosine_decay(0.2, 2000, 0.0), weight_decay=0.0),
}
ROSEN = {
    "sgd": optim.sgd(1e-3),
    "momentum": optim.momentum(1e-4, 0.9),
    "nesterov": optim.nesterov(1e-4, 0.9),
    "rmsprop": optim.rmsprop(optim.exponential_decay(1e-2, 0.01, 5000)),
    "adagrad": optim.adagrad(0.5),
    "adam": optim.adam(optim.cosine_decay(2e-2, 5000)),
    "adamw": optim.adamw(optim.cosine_decay(2e-2, 5000), weight_decay=0.0),
}


def minimize(opt, grad_fn, p, steps):
    state = opt.init(p)
    for _ in range(steps):
        updates, state = opt.update(grad_fn(p), state, p)
        p = optim.apply_updates(p, updates)
    return p


@pytest.mark.parametrize("name", sorted(QUAD))
def test_drives_a_quadratic_to_its_minimum(name):
    p = minimize(QUAD[name], quadratic_grad, {"x": np.zeros(2, np.float32)}, 2000)
    np.testing.assert_allclose(p["x"], [3.0, -2.0], atol=1e-2)


@pytest.mark.parametrize("name", sorted(ROSEN))
def test_gets_near_rosenbrocks_minimum(name):
    p = minimize(ROSEN[name], rosenbrock_grad, {"x": np.array([-1.0, 1.0], np.float32)}, 5000)
    start = np.hypot(-1 - 1, 1 - 1)
    assert np.hypot(*(p["x"] - 1)) < 0.25 * start


def test_chain_equals_applying_each_transform_by_hand():
    a, b = optim.clip_by_global_norm(1.0), optim.scale_by_adam()
    chained = optim.chain(a, b)
    u, state = chained.update(G1, chained.init(P0), P0)
    u_a, _ = a.update(G1, a.init(P0), P0)
    u_b, _ = b.update(u_a, b.init(P0), P0)
    np.testing.assert_array_equal(u["w"], u_b["w"])
    assert set(state) == {"0", "1"}


def test_clip_by_global_norm():
    clip = optim.clip_by_global_norm(1.0)
    u, _ = clip.update(G1, {})
    norm = math.sqrt(sum(float((x**2).sum()) for x in u.values()))
    assert norm == pytest.approx(1.0, rel=1e-6)
    small = tree_map(lambda g: g * 0.01, G1)
    assert clip.update(small, {})[0] is small


def test_schedules_and_readable_learning_rate():
    assert optim.step_decay(1.0, 10, 0.5)(25) == 0.25
    assert optim.cosine_decay(1.0, 100)(100) == pytest.approx(0.0)
    assert optim.cosine_decay(1.0, 100)(50) == pytest.approx(0.5)
    warm = optim.warmup(optim.constant(0.1), 4)
    assert [round(warm(s), 4) for s in range(5)] == [0.025, 0.05, 0.075, 0.1, 0.1]
    opt = optim.adam(optim.warmup(0.1, 4))
    state = opt.init(P0)
    assert optim.learning_rate(state) == pytest.approx(0.025)
    for expected in (0.025, 0.05, 0.075):
        _, state = opt.update(G1, state, P0)
        assert optim.learning_rate(state) == pytest.approx(expected)


def test_default_schedule_ends_at_its_floor_not_at_zero():
    """``fnn-cli fit``'s default schedule, stepped through a whole run: the last update's rate is ``lr_floor * lr``."""
    from fnn.training.config import FitConfig
    from fnn.training.experiment import build_optimizer

    cfg = FitConfig()
    steps_per_epoch = 422  # MNIST's 54,000 training examples at the default batch size
    opt = build_optimizer(cfg, steps_per_epoch)
    state, rates = opt.init(P0), []
    for _ in range(steps_per_epoch * cfg.epochs):
        _, state = opt.update(G1, state, P0)
        rates.append(optim.learning_rate(state))
    assert cfg.schedule == "cosine" and cfg.lr_floor >= 0.01
    assert rates[0] == pytest.approx(cfg.lr)
    assert rates[-1] == pytest.approx(cfg.lr_floor * cfg.lr, rel=1e-4)  # floor 0 gave ~1e-10 here
    assert min(rates) == rates[-1] and all(a >= b for a, b in zip(rates, rates[1:]))


def test_cosine_decays_to_the_floor_after_a_warm_up():
    total, warm, peak, floor = 100, 10, 0.01, 0.1
    s = optim.schedule_by_name("cosine", peak, total, warm, floor)
    cos = optim.cosine_decay(peak, total, floor)
    for i in range(warm):  # linear ramp of the (already decaying) cosine
        assert s(i) == pytest.approx(cos(i) * (i + 1) / warm)
    assert s(warm) == pytest.approx(cos(warm)) and s(warm) > 0.9 * peak
    assert s(total - 1) == pytest.approx(floor * peak, rel=1e-2)
    assert s(total) == pytest.approx(floor * peak) and s(10 * total) == pytest.approx(floor * peak)
    assert min(s(i) for i in range(warm, 2 * total)) == pytest.approx(floor * peak)
    assert optim.schedule_by_name("cosine", peak, total, warm)(total) == 0.0  # floor 0: to zero, as before


def test_floor_bounds_step_and_exponential_and_leaves_constant_alone():
    for name, unfloored_end in (("step", 0.01), ("exponential", 0.01)):
        assert optim.schedule_by_name(name, 1.0, 90)(89) == pytest.approx(unfloored_end, rel=0.06)
        assert optim.schedule_by_name(name, 1.0, 90, floor=0.05)(89) == pytest.approx(0.05)
        assert optim.schedule_by_name(name, 1.0, 90, floor=0.05)(0) == 1.0
        assert optim.schedule_by_name(name, 1.0, 90, floor=0.001)(89) == pytest.approx(unfloored_end, rel=0.06)
    assert optim.schedule_by_name("constant", 0.5, 90, floor=0.1)(89) == 0.5


@pytest.mark.parametrize("floor", [-0.1, 1.0, 2, float("nan")])
def test_floor_outside_0_1_is_refused(floor):
    from fnn.training.config import ConfigError, FitConfig

    with pytest.raises(ValueError, match="floor"):
        optim.schedule_by_name("cosine", 0.1, 10, floor=floor)
    with pytest.raises(ConfigError, match="lr_floor must be in \\[0, 1\\)"):
        FitConfig(lr_floor=floor)


def test_weight_decay_mask_excludes_biases_by_default():
    opt = optim.chain(optim.add_decayed_weights(0.1))
    u, _ = opt.update(tree_map(np.zeros_like, P0), opt.init(P0), P0)
    np.testing.assert_allclose(u["w"], 0.1 * P0["w"])
    assert not u["b"].any()


@pytest.mark.parametrize("name", ["momentum", "nesterov", "rmsprop", "adam"])
def test_a_moment_decaying_to_zero_skips_the_subnormal_range(name):
    """A gradient that stops (a pixel that is always black from then on): the moment decays straight to 0, never
    through subnormal float32 values (many times slower to compute with)."""
    make = {"momentum": lambda: optim.momentum(0.1), "nesterov": lambda: optim.momentum(0.1, nesterov=True),
            "rmsprop": lambda: optim.rmsprop(0.1), "adam": lambda: optim.adam(0.1)}[name]
    opt = make()
    params = {"w": np.array([0.5, -0.25], np.float32)}
    state = opt.init(params)
    tiny = np.finfo(np.float32).tiny
    seen = []
    for step in range(2000):
        g = {"w": np.array([1e-3, -2e-3], np.float32) if step == 0 else np.zeros(2, np.float32)}
        updates, state = opt.update(g, state, params)
        params = optim.apply_updates(params, updates)
        moments = [a for path, a in tree_flatten(state) if np.ndim(a) and a.dtype == np.float32]
        seen.append(any(np.any((a != 0) & (np.abs(a) < tiny)) for a in moments))
        assert all(np.isfinite(a).all() for a in moments)
    assert not any(seen)
    assert all(np.all(a == 0) for path, a in tree_flatten(state) if path.endswith(("mu.w", "trace.w")))


def test_flush_subnormals_zeroes_only_the_subnormal_entries():
    tiny = np.finfo(np.float32).tiny
    a = np.array([tiny / 2, -tiny / 8, tiny, -tiny, 0.0, 1.5, -3e-30, np.inf], np.float32)
    expected = np.array([0, 0, tiny, -tiny, 0, 1.5, -3e-30, np.inf], np.float32)
    out = optim.flush_subnormals(a, np.empty_like(a))
    assert out is a and np.array_equal(a, expected) and np.array_equal(np.signbit(a[2:4]), [False, True])
    b = np.array([1e-310, 1.0], np.float64)  # float64's own least normal number (2.2e-308)
    optim.flush_subnormals(b, np.empty_like(b))
    assert b.tolist() == [0.0, 1.0]


def test_flush_interval_keeps_a_decaying_moment_normal_between_flushes():
    tiny = np.finfo(np.float32).tiny
    assert optim.flush_interval(0.0) == (0, 1.0)
    for decay in (0.9, 0.5, 0.99, 0.01):
        n, headroom = optim.flush_interval(decay)
        assert 1 <= n <= 32 and headroom == decay**-n and headroom <= 2.0**20
        a = np.array([headroom * tiny, headroom * tiny * 0.99, -headroom * tiny], np.float32)
        optim.flush_subnormals(a, np.empty_like(a), headroom)
        assert a[1] == 0 and a[0] != 0 and a[2] != 0, "below the headroom goes, at it stays"
        kept = np.float32(headroom * tiny)
        for _ in range(n):  # pure decay until the next flush: never subnormal
            kept = np.float32(kept * np.float32(decay))
            assert abs(kept) >= tiny * (1 - 1e-5)
    assert optim.flush_interval(0.9)[0] == 32
