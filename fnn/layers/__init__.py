"""Layers as pure functions with hand-written backward passes (see :mod:`fnn.layers.base` for the protocol).

- :mod:`~fnn.layers.base`: ``Layer``, ``layer``, ``serial``, ``register``, ``build``, ``REGISTRY``;
- :mod:`~fnn.layers.dense`: ``Dense``;
- :mod:`~fnn.layers.activations`: ``Relu``, ``LeakyRelu``, ``Sigmoid``, ``Tanh``, ``Identity``, ``Softmax``;
- :mod:`~fnn.layers.regularization`: ``Dropout``;
- :mod:`~fnn.layers.shape`: ``Flatten``, ``Reshape``;
- :mod:`~fnn.layers.conv`: ``Conv2D`` (NHWC images, im2col); :mod:`~fnn.layers.pool`: ``MaxPool2D``, ``AvgPool2D``, ``GlobalAvgPool``;
- :mod:`~fnn.layers.norm`: ``BatchNorm`` (keeps state: running mean and variance);
- :mod:`~fnn.layers.mlp`: ``mlp(sizes)``.

>>> model = mlp([4, 8, 2])
>>> model.spec["layers"][0]
{'type': 'Dense', 'units': 8, 'w_init': 'he_uniform', 'b_init': 'zeros'}
"""

from fnn.layers.activations import Identity, LeakyRelu, Relu, Sigmoid, Softmax, Tanh, elementwise, log_softmax, softmax
from fnn.layers.base import REGISTRY, Layer, SpecError, apply_model, build, child_keys, init_state, layer, register, serial, vjp_model
from fnn.layers.conv import Conv2D
from fnn.layers.dense import Dense
from fnn.layers.mlp import ACTIVATIONS, DEFAULT_INIT, mlp
from fnn.layers.norm import BatchNorm
from fnn.layers.pool import AvgPool2D, GlobalAvgPool, MaxPool2D
from fnn.layers.regularization import Dropout
from fnn.layers.shape import Flatten, Reshape

__all__ = [
    "Layer", "layer", "serial", "apply_model", "vjp_model", "init_state", "register", "build", "REGISTRY", "SpecError", "child_keys",
    "elementwise",
    "Dense", "Relu", "LeakyRelu", "Sigmoid", "Tanh", "Identity", "Softmax", "Dropout", "Flatten",
    "mlp", "ACTIVATIONS", "DEFAULT_INIT", "softmax", "log_softmax",
]
__all__ += ["Reshape", "Conv2D", "MaxPool2D", "AvgPool2D", "GlobalAvgPool", "BatchNorm"]
