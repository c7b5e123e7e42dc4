"""The pad's accuracy on drawn digits, for several models side by side.

    python3 experiments/bench/drawn_digits.py --models runs/<mlp run> runs/<cnn run> [-n 1000] [--seed 2026]

The drawings are those of tests/test_web_accuracy.py (the same helper, the
same seed): the first ``n`` MNIST test digits rendered on a 280x280 canvas,
scaled to 0.5-0.9 of it at a random offset, white on black or dark on white,
encoded as PNG. Each is POSTed to the pad's ``/api/predict`` (a Flask test
client of ``fnn_web.create_app``: the pad's own preprocessing and answers)
once per model. Prints, per model, the accuracy on the drawings and on the
same digits as MNIST stores them, then the figures as JSON on the last line.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))
from pad_helpers import data_url, render_drawing  # noqa: E402  (the test's own drawings)

import fnn  # noqa: E402
from fnn import datasets  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", required=True, help="run folders or model files")
    parser.add_argument("-n", type=int, default=1000, help="drawn test digits (default 1000)")
    parser.add_argument("--seed", type=int, default=2026, help="the drawings' seed (test_web_accuracy.py uses 2026)")
    args = parser.parse_args(argv)

    from fnn_web import create_app

    app = create_app({"MODELS": args.models})
    client = app.test_client()
    served = client.get("/api/models").json["models"]
    names = [m["name"] for m in served]
    data = datasets.load("mnist")
    digits, truth = data.x_test[: args.n], data.y_test[: args.n]
    rng = np.random.default_rng(args.seed)
    drawings = [data_url(render_drawing(d, rng)[0]) for d in digits]
    labels = {name: [] for name in names}
    for url in drawings:
        for name in names:
            r = client.post("/api/predict", json={"image": url, "model": name})
            if r.status_code != 200:
                raise SystemExit(f"{name}: the pad answered {r.status_code}: {r.json}")
            labels[name].append(r.json["label"])
    figures = {}
    for name, path in zip(names, args.models):
        loaded = fnn.load_model(Path(path) / "model.npz" if Path(path).is_dir() else path)
        stored = fnn.predict(loaded.model, loaded.params, digits.reshape(len(digits), -1) / np.float32(255), state=loaded.state)
        figures[name] = {
            "model": str(path),
            "drawn": float(np.mean(np.array(labels[name]) == truth)),
            "stored": float(np.mean(stored == truth)),
            "params": int(fnn.tree.tree_size(loaded.params)),
        }
    width = max(map(len, names))
    print(f"{'model':<{width}}  {'params':>9}  {'drawn (n=' + str(args.n) + ')':>14}  {'as stored':>9}")
    for name, f in figures.items():
        print(f"{name:<{width}}  {f['params']:>9,}  {f['drawn']:>14.1%}  {f['stored']:>9.1%}")
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
