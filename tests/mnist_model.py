"""Models for the pad's tests, trained through the Python API.

``train`` fits an MLP on MNIST and saves it with the metadata ``fnn-cli fit``
writes (dataset, classes, test accuracy). The session fixtures in conftest.py
use it: ``pad_models`` trains the default MNIST model (784-128-64-10, 3 epochs
of Adam, about 97%) and ``small`` (784-32-10, 1 epoch), which gives the model
selector and the compare view a second, different answer.
"""

import numpy as np

import fnn
from fnn import batching, losses, optim, random


def train(data, arch, epochs, path, seed=0):
    """Train an MLP ``arch`` on ``data`` (MNIST) for ``epochs`` and save it to ``path``; returns its test accuracy."""
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
