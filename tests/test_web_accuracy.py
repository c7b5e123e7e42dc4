"""Issue 6, point 1: digits drawn on a 280x280 canvas and POSTed as PNG are read correctly.

The first 1000 MNIST test images are rendered as canvas drawings (scaled to
0.5-0.9 of the canvas at a random offset, dark on white or white on black),
POSTed to /api/predict, and must be labelled at least 95% correctly by the
default MNIST model. The same PNGs, only downscaled to 28x28 (the naive way,
even with the polarity fixed for it), show what the preprocessing buys.
Run with -s to print both figures (the README quotes them).
"""

import io

import numpy as np
from pad_helpers import data_url, render_drawing
from PIL import Image

import fnn
from fnn_web import create_app

N = 1000


def naive_input(png_bytes, dark_on_light):
    """What a typical canvas demo feeds the network: the whole canvas downscaled to 28x28."""
    small = Image.open(io.BytesIO(png_bytes)).convert("L").resize((28, 28), Image.Resampling.BOX)
    x = np.asarray(small, np.float32).reshape(-1) / 255
    return 1 - x if dark_on_light else x


def test_drawn_digits_are_read_at_least_95_percent(pad_models, mnist):
    data = mnist
    client = create_app({"MODELS": [pad_models["mnist"]]}).test_client()
    rng = np.random.default_rng(2026)
    labels, naive = [], []
    for digit in data.x_test[:N]:
        png_bytes, dark_on_light = render_drawing(digit, rng)
        r = client.post("/api/predict", json={"image": data_url(png_bytes)})
        assert r.status_code == 200, r.json
        labels.append(r.json["label"])
        naive.append(naive_input(png_bytes, dark_on_light))
    model, params, *_ = fnn.load_model(pad_models["mnist"])
    accuracy = float(np.mean(np.array(labels) == data.y_test[:N]))
    naive_accuracy = float(np.mean(fnn.predict(model, params, np.stack(naive)) == data.y_test[:N]))
    stored = float(np.mean(fnn.predict(model, params, data.x_test[:N].reshape(N, -1) / np.float32(255)) == data.y_test[:N]))
    print(f"\ndrawn digits (n={N}): with preprocessing {accuracy:.1%}, naive downscale {naive_accuracy:.1%}; "
          f"the same digits as MNIST stores them: {stored:.1%}")
    assert accuracy >= 0.95
    assert naive_accuracy < accuracy - 0.2
