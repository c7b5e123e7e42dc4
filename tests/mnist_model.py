"""Models for the pad's tests: trained once per test session through the Python API.

``pad_models`` is a session fixture: ``{"mnist": path, "small": path}``, two
``.npz`` model files with the metadata ``fnn-cli fit`` writes (dataset, classes,
test accuracy). ``mnist`` is the default MNIST model (784-128-64-10, 3 epochs of
Adam, about 97%); ``small`` (784-32-10, 1 epoch) gives the model selector and
the compare view a second, different answer. Test modules import the fixture;
the module-level cache trains once however many modules use it.
"""

import numpy as np
import pytest

import fnn
from fnn import batching, datasets, losses, optim, random

_trained = {}


def train(arch, epochs, path, seed=0):
    """Train an MLP ``arch`` on MNIST for ``epochs`` (one BLAS thread) and save it to ``path``; returns its test accuracy."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        return _train(arch, epochs, path, seed)


def _train(arch, epochs, path, seed):
    data = datasets.load("mnist")
    model = fnn.mlp(arch)
    _, params = model.init(random.key(seed), (-1, 784))
    opt = optim.adam(1e-3)
    opt_state = opt.init(params)
    step = fnn.make_train_step(model, losses.softmax_cross_entropy, opt)
    for epoch in range(epochs):
        key = random.fold_in(random.key(seed + 1), epoch)
        for batch in batching.iterate_batches(data.x_train, data.y_train, 128, key, transform=batching.to_float):
            params, opt_state, _ = step(params, opt_state, batch)
    accuracy = float(np.mean(fnn.predict(model, params, batching.to_float(data.x_test)) == data.y_test))
    meta = {"dataset": "mnist", "classes": list(data.classes), "test_accuracy": accuracy}
    fnn.save_model(path, model, params, (-1, 784), metadata=meta)
    return accuracy


@pytest.fixture(scope="session")
def pad_models(tmp_path_factory):
    """``{"mnist": path, "small": path}``: the default MNIST model and a weaker second one."""
    if not _trained:
        folder = tmp_path_factory.mktemp("pad-models")
        for name, arch, epochs in (("mnist", [784, 128, 64, 10], 3), ("small", [784, 32, 10], 1)):
            path = folder / f"{name}.npz"
            accuracy = train(arch, epochs, path)
            assert accuracy > (0.96 if name == "mnist" else 0.85), (name, accuracy)
            _trained[name] = path
    return dict(_trained)
