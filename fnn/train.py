"""Training primitives: loss and gradients in one pass, a pure train step, prediction.

>>> from fnn import random
>>> model = layers.mlp([4, 8, 3])
>>> _, params = model.init(random.key(0), (-1, 4))
>>> opt = optim.adam(1e-2)
>>> step = make_train_step(model, losses.softmax_cross_entropy, opt)
>>> x, y = np.ones((5, 4), np.float32), np.array([0, 1, 2, 0, 1])
>>> params, opt_state, metrics = step(params, opt.init(params), (x, y), random.key(1))
>>> sorted(metrics)
['accuracy', 'loss']
"""

from __future__ import annotations

import numpy as np

from fnn import fast, layers, losses, optim
from fnn.tree import tree_add


def value_and_grad(model, loss):
    """``f(params, x, y, key=None) -> (loss, grads, outputs)`` from one forward and one backward pass.

    ``outputs`` is the model's output for ``x`` (the logits), handy for metrics.
    The first layer skips the input gradient it would otherwise compute.
    """

    def f(params, x, y, key=None):
        outputs, backward = model.vjp(params, x, key, need_dx=False)
        value, doutputs = loss.value_and_grad(outputs, y)
        grads, _ = backward(doutputs)
        return value, grads, outputs

    return f


def accuracy(outputs, y) -> float:
    """Fraction of rows whose argmax equals the label (``y``: labels or one-hot)."""
    y = np.asarray(y)
    labels = y.argmax(axis=1) if y.ndim == 2 else y
    return np.count_nonzero(outputs.argmax(axis=1) == labels) / len(labels) if len(labels) else float("nan")


def make_train_step(model, loss, optimizer, penalty=None, fast_path=True):
    """A pure ``train_step(params, opt_state, (x, y), key) -> (params, opt_state, metrics)``.

    ``metrics`` holds the batch ``loss`` (penalty included) and ``accuracy``.
    ``penalty`` is a :class:`fnn.losses.Penalty` (L1/L2) added to the loss.
    ``key`` drives dropout; pass None for a model without randomness.

    With ``fast_path`` (the default), ``serial`` models with float32 data run
    through :mod:`fnn.fast`: the same results bit for bit, computed in buffers
    the step owns, with parameters returned as views into flat vectors it
    never writes again while they are held. ``fast_path=False`` keeps to the
    plain tree code below, the reference the fast path is tested against.
    """
    vg = value_and_grad(model, loss)
    fast_step = fast.TrainStep(model, loss, optimizer, penalty) if fast_path and fast.TrainStep.supports(model, optimizer) else None

    def train_step(params, opt_state, batch, key=None):
        x, y = batch
        done = fast_step(params, opt_state, batch, key) if fast_step is not None else None
        if done is not None:
            params, opt_state, value, outputs = done
            return params, opt_state, {"loss": value, "accuracy": accuracy(outputs, y)}
        value, grads, outputs = vg(params, x, y, key)
        if penalty is not None:
            value += penalty.apply(params)
            grads = tree_add(grads, penalty.grad(params))
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optim.apply_updates(params, updates), opt_state, {"loss": value, "accuracy": accuracy(outputs, y)}

    return train_step


def predict_logits(model, params, x, batch_size=8192):
    """The model's raw outputs for ``x``, in chunks of ``batch_size`` rows (inference: no dropout)."""
    x = np.asarray(x)
    out = fast.forward(model, params, x, chunk=min(batch_size, 1024))
    if out is not None:
        return out
    if len(x) <= batch_size:
        return model.apply(params, x)
    return np.concatenate([model.apply(params, x[i : i + batch_size]) for i in range(0, len(x), batch_size)])


def predict_proba(model, params, x, batch_size=8192):
    """Class probabilities ``(n, classes)``: softmax of the logits."""
    return layers.softmax(predict_logits(model, params, x, batch_size))


def predict(model, params, x, batch_size=8192):
    """Predicted class labels ``(n,)``."""
    return predict_logits(model, params, x, batch_size).argmax(axis=1)


def evaluate(model, params, x, y, loss=losses.softmax_cross_entropy, batch_size=8192):
    """``{"loss": float, "accuracy": float}`` over the whole of ``(x, y)``."""
    logits = predict_logits(model, params, x, batch_size)
    return {"loss": loss.apply(logits, y), "accuracy": accuracy(logits, y)}

