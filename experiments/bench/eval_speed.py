"""How long evaluating the 10000 MNIST test images takes: preprocessing, forward pass and every metric.

    python experiments/bench/eval_speed.py [RUN_OR_MODEL] [--repeat N]

Without a run, a freshly initialized 784-128-64-10 network stands in (a trained
one costs the same). Pictures are not drawn: this times ``fnn.evaluation.report.evaluate``
without an output folder, i.e. ``fnn.evaluation.report.analyze`` plus the forward pass.
"""

import argparse
import statistics
import time

import fnn
from fnn import datasets, random
from fnn.evaluation import report
from fnn.training import runs


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", nargs="?", help="a run folder or model.npz (default: an untrained 784-128-64-10)")
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    ds = datasets.load("mnist")
    if args.run:
        loaded = fnn.load_model(runs.model_path(args.run))
        model, params, meta, label = loaded.model, loaded.params, loaded.metadata, args.run
    else:
        model = fnn.mlp([784, 128, 64, 10])
        _, params = model.init(random.key(0), (-1, 784))
        meta, label = {"preprocessing": {"scale": 1 / 255, "mean": None, "std": None}}, "784-128-64-10 (untrained)"
    transform = report.transform_for(meta)
    times = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        result = report.evaluate(model, params, ds.x_test, ds.y_test, ds.classes, transform=transform)
        times.append(time.perf_counter() - t0)
    print(f"model: {label}")
    print(f"examples: {result['n']}, accuracy {result['accuracy']:.4f}")
    print(f"evaluate 10000 MNIST test images (preprocess + forward + all metrics, no pictures): "
          f"median {statistics.median(times) * 1000:.1f} ms, best {min(times) * 1000:.1f} ms over {len(times)} runs")
    print("under one second:", "yes" if statistics.median(times) < 1.0 else "NO")


if __name__ == "__main__":
    main()
