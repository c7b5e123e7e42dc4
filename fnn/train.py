"""Training primitives: loss and gradients in one pass, train steps, prediction.

- :func:`make_train_step`: a pure step; it returns new arrays and changes nothing it is given.
- :func:`make_inplace_train_step`: the same step writing into a workspace it
  owns (:mod:`fnn.workspace`), so a loop makes its buffers once; given back
  its own last results, it updates them in place. The training loop of
  :mod:`fnn.training.fit` uses it.

Both run the same layer, loss and optimizer code, so they give the same bits.

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

import math

import numpy as np

from fnn import layers, losses, optim
from fnn.flat import Layout
from fnn.tree import tree_add, tree_flatten
from fnn.workspace import FRESH, Workspace


class NonFiniteLoss(FloatingPointError):
    """A training step's loss is NaN or infinite; the step changed nothing."""


def value_and_grad(model, loss):
    """``f(params, x, y, key=None, ws=FRESH) -> (loss, grads, outputs)`` from one forward and one backward pass.

    ``outputs`` is the model's output for ``x`` (the logits), handy for metrics.
    The first layer skips the input gradient it would otherwise compute.
    """

    def f(params, x, y, key=None, ws=FRESH):
        outputs, backward = model.vjp(params, x, key, ws=ws, need_dx=False)
        value, doutputs = loss.value_and_grad(outputs, y)
        grads, _ = backward(doutputs)
        return value, grads, outputs

    return f


def accuracy(outputs, y) -> float:
    """Fraction of rows whose argmax equals the label (``y``: labels or one-hot)."""
    y = np.asarray(y)
    labels = y.argmax(axis=1) if y.ndim == 2 else y
    return np.count_nonzero(outputs.argmax(axis=1) == labels) / len(labels) if len(labels) else float("nan")


def _train_step(model, loss, optimizer, penalty, ws):
    vg = value_and_grad(model, loss)
    model_ws, opt_ws, params_ws = ws.child("model"), ws.child("optimizer"), ws.child("params")

    def train_step(params, opt_state, batch, key=None):
        x, y = batch
        value, grads, outputs = vg(params, x, y, key, model_ws)
        if penalty is not None:
            value += penalty.apply(params)
            grads = tree_add(grads, penalty.grad(params))
        if not math.isfinite(value):
            raise NonFiniteLoss(f"the loss is {value}: the batch or the parameters hold NaN/Inf, or the step overflowed")
        updates, opt_state = optimizer.update(grads, opt_state, params, opt_ws)
        return optim.apply_updates(params, updates, params_ws), opt_state, {"loss": value, "accuracy": accuracy(outputs, y)}

    return train_step


def make_train_step(model, loss, optimizer, penalty=None):
    """A pure ``train_step(params, opt_state, (x, y), key=None) -> (params, opt_state, metrics)``.

    ``metrics`` holds the batch ``loss`` (penalty included) and ``accuracy``.
    ``penalty`` is a :class:`fnn.losses.Penalty` (L1/L2) added to the loss.
    ``key`` drives dropout; pass None for a model without randomness.
    A NaN or infinite loss raises :class:`NonFiniteLoss` before anything is updated.
    """
    return _train_step(model, loss, optimizer, penalty, FRESH)


def make_inplace_train_step(model, loss, optimizer, penalty=None, workspace=None):
    """:func:`make_train_step`, writing every result into ``workspace`` (a new :class:`~fnn.workspace.Workspace` by default).

    Mutates: the params and optimizer state it returns are its own arrays,
    overwritten by its next call; pass them back in and they are updated in
    place (anything else given is copied in first, never written). Copy
    (``fnn.tree.tree_copy``) what you keep across steps. The same bits as
    :func:`make_train_step`.

    With an elementwise optimizer (``optimizer.elementwise``: Adam, SGD,
    momentum, RMSprop, Adagrad without clipping or weight decay) parameters,
    gradients and params-shaped optimizer state each live in one flat vector
    (:mod:`fnn.flat`), the returned trees being views into them: the
    optimizer then runs over all parameters at once.
    """
    ws = Workspace() if workspace is None else workspace
    if not optimizer.elementwise:
        return _train_step(model, loss, optimizer, penalty, ws)
    return _FlatStep(model, loss, optimizer, penalty, ws)


class _FlatStep:
    """The in-place step over flat vectors: see :func:`make_inplace_train_step`."""

    def __init__(self, model, loss, optimizer, penalty, ws):
        self.vg, self.loss_penalty, self.optimizer, self.ws = value_and_grad(model, loss), penalty, optimizer, ws
        self.tree_step = _train_step(model, loss, optimizer, penalty, ws.child("trees"))  # params without one float dtype
        self.layout = self.params = self.state = None

    def __call__(self, params, opt_state, batch, key=None):
        if params is not self.params and not self._adopt(params):
            return self.tree_step(params, opt_state, batch, key)
        if opt_state is not self.state:
            self.flat_state = self._flatten_state(opt_state)
        x, y = batch
        value, grads, outputs = self.vg(self.params, x, y, key, self.model_ws)
        for view, g in zip(self.grad_views, self._leaves(grads)):
            if g is not view:  # a layer that wrote its gradient elsewhere
                np.copyto(view, g)
        if self.loss_penalty is not None:
            value += self.loss_penalty.apply(self.params)
            for view, g in zip(self.grad_views, self._leaves(self.loss_penalty.grad(self.params))):
                view += g
        if not math.isfinite(value):
            raise NonFiniteLoss(f"the loss is {value}: the batch or the parameters hold NaN/Inf, or the step overflowed")
        updates, self.flat_state = self.optimizer.update(self.grad, self.flat_state, self.flat, self.ws.child("optimizer"))
        optim.apply_updates(self.flat, updates, self.ws.child("params"))  # the same buffer: in place
        self.state = self._state_tree(self.flat_state)
        return self.params, self.state, {"loss": value, "accuracy": accuracy(outputs, y)}

    def _adopt(self, params) -> bool:
        """Copy ``params`` into the flat parameter vector (a new layout if need be); False if they cannot be laid flat."""
        if self.layout is None or not self.layout.fits(params):
            layout = Layout(params)
            if layout.dtype is None:
                return False
            self.layout = layout
            self.flat = self.ws.child("params").array("params", (layout.size,), layout.dtype)  # apply_updates writes here
            self.grad = self.ws.array("grad", (layout.size,), layout.dtype)
            grad_tree = layout.views(self.grad)
            self.grad_views = [leaf for _, leaf in tree_flatten(grad_tree)]
            self.model_ws = Workspace(grads=grad_tree)  # layers write their gradients into the flat vector
            self.views = layout.views(self.flat)
            self.state_paths = None
        self.params = self.views
        self.layout.pack(params, self.flat)
        return True

    def _leaves(self, tree):
        return [leaf for _, leaf in tree_flatten(tree)]

    def _flatten_state(self, opt_state):
        """``opt_state`` with each params-shaped entry packed into a new flat vector."""
        if self.state_paths is None:
            self.state_paths = _params_shaped(opt_state, self.layout)
            self.state_views = {}
        for path in self.state_paths:
            flat = self.layout.pack(_get(opt_state, path), np.empty(self.layout.size, self.layout.dtype))
            opt_state = _put(opt_state, path, flat)
        return opt_state

    def _state_tree(self, flat_state):
        """``flat_state`` with each flat vector shown as a tree of views (made once per vector)."""
        for path in self.state_paths:
            flat = _get(flat_state, path)
            base, views = self.state_views.get(path, (None, None))
            if base is not flat:
                views = self.layout.views(flat)
                self.state_views[path] = (flat, views)
            flat_state = _put(flat_state, path, views)
        return flat_state


def _params_shaped(tree, layout, path=()):
    """Paths (key tuples) of the subtrees of ``tree`` laid out like the parameters."""
    if not isinstance(tree, dict):
        return []
    if layout.fits(tree):
        return [path]
    return [p for k, v in tree.items() for p in _params_shaped(v, layout, path + (k,))]


def _get(tree, path):
    for k in path:
        tree = tree[k]
    return tree


def _put(tree, path, value):
    """A copy of ``tree`` (the dicts along ``path``, nothing else) with ``value`` at ``path``."""
    if not path:
        return value
    return {**tree, path[0]: _put(tree[path[0]], path[1:], value)}


def predict_logits(model, params, x, batch_size=1024):
    """The model's raw outputs for ``x``, ``batch_size`` rows at a time (inference: no dropout)."""
    x = np.asarray(x)
    if len(x) <= batch_size:
        return model.apply(params, x)
    first = model.apply(params, x[:batch_size])
    out = np.empty((len(x),) + first.shape[1:], first.dtype)
    out[:batch_size] = first
    for i in range(batch_size, len(x), batch_size):
        out[i : i + batch_size] = model.apply(params, x[i : i + batch_size])
    return out


def predict_proba(model, params, x, batch_size=1024):
    """Class probabilities ``(n, classes)``: softmax of the logits."""
    return layers.softmax(predict_logits(model, params, x, batch_size))


def predict(model, params, x, batch_size=1024):
    """Predicted class labels ``(n,)``."""
    return predict_logits(model, params, x, batch_size).argmax(axis=1)


def evaluate(model, params, x, y, loss=losses.softmax_cross_entropy, batch_size=1024):
    """``{"loss": float, "accuracy": float}`` over the whole of ``(x, y)``."""
    logits = predict_logits(model, params, x, batch_size)
    return {"loss": loss.apply(logits, y), "accuracy": accuracy(logits, y)}
