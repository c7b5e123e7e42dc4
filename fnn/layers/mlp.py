"""Multilayer perceptrons from a list of sizes."""

from __future__ import annotations

from fnn.layers.activations import LeakyRelu, Relu, Sigmoid, Tanh
from fnn.layers.base import Layer, real_number, serial, whole_number
from fnn.layers.dense import Dense
from fnn.layers.regularization import Dropout

ACTIVATIONS = {"relu": Relu, "leaky_relu": LeakyRelu(), "sigmoid": Sigmoid, "tanh": Tanh}
DEFAULT_INIT = {"relu": "he_uniform", "leaky_relu": "he_uniform", "sigmoid": "glorot_uniform", "tanh": "glorot_uniform"}


def mlp(sizes, activation="relu", dropout=0.0, w_init=None) -> Layer:
    """A multilayer perceptron from layer sizes, e.g. ``mlp([784, 128, 64, 10])``.

    Gives ``serial(Dense(128), Relu, Dense(64), Relu, Dense(10))``: logits out,
    pair it with :func:`fnn.losses.softmax_cross_entropy`. ``sizes[0]`` is the
    input width (used by ``init``'s ``in_shape``), ``sizes[-1]`` the outputs.
    ``dropout > 0`` adds ``Dropout`` after every hidden activation. ``w_init``
    defaults to He for ReLU-like activations and Glorot for sigmoid/tanh.
    """
    if isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__len__") or len(sizes) < 2:
        raise ValueError(f"mlp needs a list of at least two layer sizes, e.g. [784, 128, 10]; got {sizes!r:.60}")
    sizes = [whole_number(s, f"mlp sizes[{i}]") for i, s in enumerate(sizes)]
    dropout = real_number(dropout, "mlp dropout")
    if not isinstance(activation, str) or activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; choose from {', '.join(ACTIVATIONS)}")
    w_init = w_init or DEFAULT_INIT[activation]
    hidden = []
    for units in sizes[1:-1]:
        hidden += [Dense(units, w_init), ACTIVATIONS[activation]]
        if dropout:
            hidden.append(Dropout(dropout))
    return serial(*hidden, Dense(sizes[-1], "glorot_uniform"))
