"""Models of the pad's other input kinds, trained once per test session (one BLAS thread, a few seconds each).

``kind_models`` is a session fixture: ``{"fashion": path, "shapes": run folder, "cnn": path}``:

- ``fashion``: a 784-128-10 MLP, 3 epochs of Adam on Fashion-MNIST (about 85%), saved with the
  metadata a model of before pipeline kinds has (dataset, classes, test accuracy; no ``kind``),
  so the pad must find its preprocessing by the dataset's name;
- ``shapes``: a CIFAR-10-shaped model: ``fnn-cli fit``'s Python API (``fit_config``) trains a
  3072-64-10 MLP on :func:`synthetic_cifar` (32×32×3 uint8 pictures of coloured shapes), so the
  run folder holds what a real CIFAR-10 run's does (``preprocessing.kind: rgb32``, config.yaml
  naming the data, summary.json); no CIFAR-10 copy exists offline here;
- ``cnn``: ``Reshape((28, 28, 1)) -> Conv2D(4, 3) -> Relu -> Flatten -> Dense(10)`` taking
  ``(n, 784)``, trained 60 steps on Fashion-MNIST: a CNN front works in the pipeline too.
"""

import numpy as np
import pytest

import fnn
from fnn import batching, datasets

_trained = {}

SHAPES = ("disc", "square", "triangle", "ring", "cross")
COLOURS = {"red": (215, 40, 35), "orange": (240, 140, 20), "yellow": (235, 215, 40), "green": (40, 170, 60),
           "cyan": (40, 200, 210), "blue": (40, 70, 220), "purple": (130, 50, 190), "pink": (240, 110, 180),
           "brown": (120, 70, 30), "white": (245, 245, 245)}
CLASSES = [f"{c} {SHAPES[i % 5]}" for i, c in enumerate(COLOURS)]  # "red disc", "orange square", ...


def synthetic_cifar(n, seed):
    """``(x (n, 32, 32, 3) uint8, y (n,) int64)``: a coloured shape (10 classes, each a colour and a shape:
    :data:`CLASSES`) of random size and place on a random gray gradient, with pixel noise."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, len(CLASSES), n)
    r, c = np.mgrid[0:32, 0:32].astype(np.float32)
    x = np.empty((n, 32, 32, 3), np.float32)
    for i, label in enumerate(y):
        a, b = rng.uniform(50, 190) + rng.uniform(-12, 12, 3), rng.uniform(50, 190) + rng.uniform(-12, 12, 3)
        t = (r if rng.random() < 0.5 else c)[..., None] / 31
        img = a * (1 - t) + b * t
        cy, cx, size = rng.uniform(11, 21), rng.uniform(11, 21), rng.uniform(6, 10)
        dy, dx = r - cy, c - cx
        shape = SHAPES[label % 5]
        if shape == "disc":
            mask = dy**2 + dx**2 <= size**2
        elif shape == "square":
            mask = (abs(dy) <= size * 0.85) & (abs(dx) <= size * 0.85)
        elif shape == "triangle":
            mask = (dy <= size * 0.8) & (dy >= -size) & (abs(dx) <= (dy + size) * 0.6)
        elif shape == "ring":
            d = np.sqrt(dy**2 + dx**2)
            mask = (d <= size) & (d >= size * 0.55)
        else:
            mask = (abs(dy) <= size * 0.3) & (abs(dx) <= size) | (abs(dx) <= size * 0.3) & (abs(dy) <= size)
        colour = np.array(list(COLOURS.values())[label], np.float32) + rng.uniform(-20, 20, 3)
        img[mask] = colour
        x[i] = img + rng.normal(0, 6, (32, 32, 3))
    return np.clip(np.round(x), 0, 255).astype(np.uint8), y.astype(np.int64)


def _fashion(path):
    data = datasets.load("fashion-mnist")
    model = fnn.mlp([784, 128, 10])
    r = fnn.fit(model, data.x_train, data.y_train, optimizer=fnn.optim.adam(1e-3), epochs=3, batch_size=128, seed=0,
                transform=batching.to_float, in_shape=(-1, 784), verbose=0, threads=1)
    accuracy = float(np.mean(fnn.predict(model, r.params, batching.to_float(data.x_test)) == data.y_test))
    fnn.save_model(path, model, r.params, (-1, 784),
                   {"dataset": "fashion-mnist", "classes": list(data.classes), "test_accuracy": accuracy})
    return accuracy


def _shapes(folder):
    from fnn.training.config import FitConfig
    from fnn.training.experiment import fit_config

    x, y = synthetic_cifar(3000, seed=1)
    x_test, y_test = synthetic_cifar(500, seed=2)
    data = folder / "shapes.npz"
    np.savez(data, x=x, y=y, x_test=x_test, y_test=y_test, classes=np.array(CLASSES))
    config = FitConfig(dataset=str(data), arch=(3072, 64, 10), epochs=8, lr=1e-3, batch_size=64, seed=0)
    summary = fit_config(config, folder / "shapes", threads=1)
    return summary["test_accuracy"]


def _cnn(path):
    data = datasets.load("fashion-mnist")
    model = fnn.serial(fnn.layers.Reshape((28, 28, 1)), fnn.layers.Conv2D(4, 3), fnn.Relu, fnn.Flatten, fnn.Dense(10))
    x = batching.to_float(data.x_train[:3840])
    r = fnn.fit(model, x, data.y_train[:3840], optimizer=fnn.optim.adam(3e-3), epochs=2, batch_size=64, seed=0,
                in_shape=(-1, 784), verbose=0, threads=1)
    accuracy = float(np.mean(fnn.predict(model, r.params, batching.to_float(data.x_test[:2000])) == data.y_test[:2000]))
    fnn.save_model(path, model, r.params, (-1, 784), {"dataset": "fashion-mnist", "classes": list(data.classes),
                                                      "test_accuracy": accuracy, "preprocessing": "fashion"})
    return accuracy


@pytest.fixture(scope="session")
def kind_models(tmp_path_factory):
    """``{"fashion": model file, "shapes": run folder, "cnn": model file}`` (see the module docstring)."""
    if not _trained:
        folder = tmp_path_factory.mktemp("kind-models")
        accuracy = {"fashion": _fashion(folder / "fashion.npz"), "shapes": _shapes(folder), "cnn": _cnn(folder / "cnn.npz")}
        assert accuracy["fashion"] > 0.82 and accuracy["shapes"] > 0.5 and accuracy["cnn"] > 0.6, accuracy
        _trained.update(fashion=folder / "fashion.npz", shapes=folder / "shapes", cnn=folder / "cnn.npz")
    return dict(_trained)
