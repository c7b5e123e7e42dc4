"""fnn: a functional, stateless, pure-NumPy neural-network toolkit.

Layers are ``(init, apply, vjp)`` tuples of pure functions, parameters are
nested dicts of arrays, optimizers are ``(init, update)`` pairs, and every
gradient is written by hand and checked against finite differences.

>>> import fnn
>>> model = fnn.mlp([784, 128, 64, 10])
>>> _, params = model.init(fnn.random.key(0), (-1, 784))
>>> params["0"]["w"].shape
(784, 128)

``fnn.fit(model, x, y, ...)`` trains any model on arrays (:mod:`fnn.training.fit`).
Importing ``fnn`` loads only NumPy and attrs; plotting, YAML, the CLI
(``fnn_cli``) and the web pad (``fnn_web``) load when used.
"""

__version__ = "0.1.0"

from fnn import (  # noqa: E402
    batching,
    gradcheck,
    initializers,
    layers,
    losses,
    metrics,
    optim,
    random,
    serialization,
    tasks,
    train,
    tree,
    workspace,
)
from fnn.layers import Dense, Dropout, Flatten, LeakyRelu, Relu, Sigmoid, Softmax, Tanh, mlp, serial  # noqa: E402
from fnn.serialization import load_model, save_model  # noqa: E402
from fnn.summary import summary  # noqa: E402
from fnn.train import evaluate, make_inplace_train_step, make_train_step, predict, predict_proba, value_and_grad  # noqa: E402
from fnn.training.fit import FitResult, fit  # noqa: E402
from fnn.workspace import Workspace  # noqa: E402

__all__ = [
    "batching", "gradcheck", "initializers", "layers", "losses", "metrics", "optim", "random", "serialization", "tasks",
    "train", "tree", "workspace",
    "Dense", "Dropout", "Flatten", "LeakyRelu", "Relu", "Sigmoid", "Softmax", "Tanh", "mlp", "serial",
    "load_model", "save_model", "summary",
    "evaluate", "make_inplace_train_step", "make_train_step", "predict", "predict_proba", "value_and_grad",
    "fit", "FitResult", "Workspace",
]
