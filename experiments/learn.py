"""Learn with fnn: the teaching pictures of the README, from the toy data of :mod:`fnn.datasets.toy`.

    python3 experiments/learn.py --out experiments/results/learn

(a) A 2-64-64-3 ReLU MLP trained on the spiral (3 arms of 100 points) with
Adam; prints its training accuracy and seconds and draws its decision
boundary. (b) A 2-32-32-1 MLP on the moons, one logit trained with binary
cross-entropy. (c) Every optimizer of ``fnn.optim.OPTIMIZERS`` on the
quadratic and Rosenbrock surfaces, and the ``FitConfig`` learning-rate
schedules with a warm-up and the default floor. ``learn.json`` records the
accuracies and seconds. Training runs on one BLAS thread: these matrices are
tiny, and on a busy machine more threads make it many times slower.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

import fnn
from fnn import losses, optim
from fnn.datasets import toy
from fnn.evaluation import plotting
from fnn.serialization import atomic_write
from fnn.training.config import SCHEDULES, FitConfig


def train(model, x, y, loss, optimizer, epochs, batch_size, seed=0):
    """``fnn.fit`` on one BLAS thread (for matrices this small more threads only get in each other's way); returns the params."""
    return fnn.fit(model, x, y, loss=loss, optimizer=optimizer, epochs=epochs, batch_size=batch_size, seed=seed,
                   threads=1, verbose=0).params


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def spiral(out):
    x, y = toy.spiral(n_per_class=100, classes=3, key=0)
    model = fnn.mlp([2, 64, 64, 3])
    params, seconds = timed(train, model, x, y, losses.softmax_cross_entropy, optim.adam(0.02), epochs=300, batch_size=300)
    acc = float(np.mean(fnn.predict(model, params, x) == y))
    plotting.decision_boundary(model, params, x, y, out / "spiral_boundary.png",
                               title="Spiral, 2-64-64-3 MLP, Adam, 300 full-batch epochs")
    return {"accuracy": acc, "seconds": round(seconds, 3), "points": len(y)}


def moons(out):
    x, y = toy.moons(n=200, noise=0.1, key=0)
    model = fnn.mlp([2, 32, 32, 1])
    params, seconds = timed(train, model, x, y, losses.binary_cross_entropy, optim.adam(0.02), epochs=200, batch_size=200)
    acc = float(np.mean((fnn.train.predict_outputs(model, params, x)[:, 0] > 0) == y))
    plotting.decision_boundary(model, params, x, y, out / "moons_boundary.png",
                               title="Moons, 2-32-32-1 MLP, one logit")
    return {"accuracy": acc, "seconds": round(seconds, 3), "points": len(y)}


def optimizer_pictures(out):
    ends = {}
    for surf in toy.SURFACES.values():
        paths = toy.trajectories(surf)
        ends[surf.name] = {n: float(np.hypot(*(p[-1] - surf.minimum))) for n, p in paths.items()}
        labelled = {f"{n} (lr {surf.lrs[n]:g})": p for n, p in paths.items()}
        plotting.optimizer_paths(labelled, out / f"optimizer_paths_{surf.name}.png", surf)
    return ends


def schedules_picture(out, steps_per_epoch=100):
    """``FitConfig``'s schedules as ``fnn.training.experiment.build_optimizer`` makes them: 10 epochs, 1 of warm-up."""
    cfg = FitConfig(warmup=1)
    total = steps_per_epoch * cfg.epochs
    schedules = {name: optim.schedule_by_name(name, cfg.lr, total, cfg.warmup * steps_per_epoch, cfg.lr_floor)
                 for name in SCHEDULES}
    plotting.learning_rate_schedules(schedules, total, out / "lr_schedules.png",
                                     title=f"Schedules: peak {cfg.lr:g}, {cfg.warmup} epoch of warm-up, "
                                           f"floor {cfg.lr_floor:g} x peak ({cfg.epochs} epochs of {steps_per_epoch} steps)")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path("experiments/results/learn"))
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with threadpool_limits(limits=1):
        results = {"spiral": spiral(args.out), "moons": moons(args.out)}
        results["optimizer_distance_to_minimum"] = optimizer_pictures(args.out)
    schedules_picture(args.out)
    for name in ("spiral", "moons"):
        r = results[name]
        print(f"{name}: training accuracy {r['accuracy']:.2%} on {r['points']} points in {r['seconds']:.2f} s")
    atomic_write(args.out / "learn.json", lambda f: f.write(json.dumps(results, indent=2).encode() + b"\n"))
    print(f"pictures in {args.out}")


if __name__ == "__main__":
    main()
