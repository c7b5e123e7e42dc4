"""A 784-128-64-10 ReLU MLP from the core pieces reaches >= 97% on real MNIST in 3 epochs."""

import numpy as np

import fnn
from fnn import batching, losses, optim, random
from fnn.tree import tree_leaves


def test_mlp_reaches_97_percent_in_3_epochs(mnist_raw):
    x_train, y_train, x_test, y_test = mnist_raw
    model = fnn.mlp([784, 128, 64, 10])
    _, params = model.init(random.key(0), (-1, 784))
    opt = optim.adam(1e-3)
    opt_state = opt.init(params)
    step = fnn.make_train_step(model, losses.softmax_cross_entropy, opt)
    root = random.key(1)
    for epoch in range(3):
        for xb, yb in batching.iterate_batches(x_train, y_train, 128, random.fold_in(root, epoch), transform=batching.to_float):
            assert xb.dtype == np.float32
            params, opt_state, metrics = step(params, opt_state, (xb, yb))
    assert {a.dtype for a in tree_leaves(params)} == {np.dtype(np.float32)}
    assert {a.dtype for a in tree_leaves(opt_state["0"]["mu"])} == {np.dtype(np.float32)}
    x_test = batching.to_float(x_test)
    logits = fnn.train.predict_outputs(model, params, x_test)
    assert logits.dtype == np.float32
    acc = float(np.mean(fnn.predict(model, params, x_test) == y_test))
    print(f"MNIST 784-128-64-10, 3 epochs: test accuracy {acc:.4f}")
    assert acc >= 0.97
