"""How long augmentation takes per batch: 128 MNIST digits, each preset, median of 30 calls.

    python3 experiments/bench/augment_speed.py [--batch 128] [--reps 30]

One affine map per image and one bilinear resampling of the whole batch at once
(:mod:`fnn.datasets.augment`), timed in this thread's CPU time (steadier than the
wall clock on a shared machine), the wall time printed beside it. Compare with a
training step of the same batch (a LeNet step is about 20-30 ms here). Nothing
here asserts a time: it prints figures.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from fnn import datasets, random
from fnn.datasets import augment as A


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--reps", type=int, default=30)
    args = parser.parse_args(argv)
    digits = datasets.load("mnist").x_train[: args.batch]
    print(f"augmenting {len(digits)} MNIST digits, median of {args.reps} calls")
    for name, options in (("digits", A.PRESETS["digits"]), ("digits + elastic", {**A.PRESETS["digits"], "elastic": 34.0}),
                          ("photos (shift 4, flip)", A.PRESETS["photos"]), ("flip", {**A.OFF, "flip": True})):
        augment = A.make(**options)
        augment(digits, random.key(0))  # the scratch buffers
        cpu, wall = [], []
        for i in range(args.reps):
            t, t_cpu = time.perf_counter(), time.thread_time()
            augment(digits, random.key(i + 1))
            cpu.append(time.thread_time() - t_cpu)
            wall.append(time.perf_counter() - t)
        print(f"  {name:<24} CPU {1000 * statistics.median(cpu):7.2f} ms   wall {1000 * statistics.median(wall):7.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
