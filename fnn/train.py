"""Training primitives: loss and gradients in one pass, train steps, prediction.

- :func:`make_train_step`: a pure step; it returns new arrays and changes nothing it is given.
- :func:`make_inplace_train_step`: the same step writing into a workspace it
  owns (:mod:`fnn.workspace`), so a loop makes its buffers once; given back
  its own last results, it updates them in place. :func:`fnn.fit` uses it.

Both run the same layer, loss and optimizer code, so they give the same bits.
The metrics a step reports follow the loss (:mod:`fnn.tasks`): ``accuracy``
for classification, ``mse`` and ``mae`` for regression. A batch is
``(x, y)`` or ``(x, y, weights)`` (one weight per example). A model with state
(BatchNorm) takes ``state=`` and returns the new state as a fourth value.

>>> from fnn import layers, random
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

from fnn import initializers, losses, optim, tasks
from fnn.flat import Layout
from fnn.layers.base import apply_model, vjp_model
from fnn.tree import tree_add, tree_flatten
from fnn.workspace import FRESH, Workspace, aligned_empty


class NonFiniteLoss(FloatingPointError):
    """A training step's loss is NaN or infinite; the step changed nothing."""


def value_and_grad(model, loss):
    """``f(params, x, y, key=None, ws=FRESH, weights=None, state=None) -> (loss, grads, outputs)``: one forward, one backward pass.

    ``outputs`` is the model's output for ``x`` (e.g. the logits), handy for
    metrics. The first layer skips the input gradient it would otherwise
    compute. A stateful model gives ``(loss, grads, outputs, new_state)``.
    """

    def f(params, x, y, key=None, ws=FRESH, weights=None, state=None):
        value, grads, outputs, new_state = _value_and_grad(model, loss, params, x, y, key, ws, weights, state)
        return (value, grads, outputs, new_state) if model.stateful else (value, grads, outputs)

    return f


def _value_and_grad(model, loss, params, x, y, key, ws, weights, state):
    outputs, backward, new_state = vjp_model(model, params, x, key, ws, False, state)
    value, doutputs = loss.value_and_grad(outputs, y) if weights is None else loss.value_and_grad(outputs, y, weights)
    grads, _ = backward(doutputs)
    return value, grads, outputs, new_state


def accuracy(outputs, y) -> float:
    """Fraction of rows whose argmax equals the label (``y``: labels or one-hot)."""
    return tasks.MULTICLASS_LOGITS.metrics(outputs, y)["accuracy"]


class _StepCore:
    """What every train step does before its optimizer update: loss, gradients, penalty, the finiteness check, metrics."""

    def __init__(self, model, loss, penalty):
        tasks.check_model_fits_loss(model, loss)
        self.model, self.loss, self.penalty = model, loss, penalty

    def __call__(self, params, batch, key, ws, state):
        x, y, *weights = batch
        if len(x) != len(y) or not len(x):  # two len() calls: free next to the step
            raise ValueError(_bad_batch(x, y))
        value, grads, outputs, new_state = _value_and_grad(
            self.model, self.loss, params, x, y, key, ws, weights[0] if weights else None, state
        )
        if self.penalty is not None:
            value += self.penalty.apply(params)
            grads = tree_add(grads, self.penalty.grad(params))
        if not math.isfinite(value):
            raise NonFiniteLoss(f"the loss is {value}: the batch or the parameters hold NaN/Inf, or the step overflowed")
        metrics = {"loss": value, **tasks.for_loss(self.loss, outputs.shape[-1]).metrics(outputs, y)}
        return grads, metrics, new_state

    def result(self, params, opt_state, metrics, new_state):
        return (params, opt_state, metrics, new_state) if self.model.stateful else (params, opt_state, metrics)


def _bad_batch(x, y) -> str:
    """Why ``(x, y)`` is no batch: one line for the error."""
    if np.ndim(x) < 2:
        return f"a train step takes a batch x shaped (n, features), got x shaped {np.shape(x)}; for one example use x[None]"
    if not len(x):
        return f"the batch is empty (x shaped {np.shape(x)})"
    return f"the batch has {len(x)} inputs but {len(y)} labels (x shaped {np.shape(x)}, y {np.shape(y)})"


def check_trainable(params) -> None:
    """Refuse params that cannot be trained: the shape-only placeholders ``model.init(None, ...)`` gives.

    A step runs it only on params it did not itself return (the first call, or params from elsewhere).
    """
    for path, leaf in tree_flatten(params):
        if initializers.is_shape_only(leaf):
            raise ValueError(f"params {path} is a shape-only placeholder from init(None, ...) (read-only zeros, no memory): "
                             "init with a key, e.g. model.init(fnn.random.key(0), in_shape)")


def _train_step(model, loss, optimizer, penalty, ws):
    core = _StepCore(model, loss, penalty)
    model_ws, opt_ws, params_ws = ws.child("model"), ws.child("optimizer"), ws.child("params")
    returned = [None]  # the params the last call gave back: checked once, when they came from elsewhere

    def train_step(params, opt_state, batch, key=None, state=None):
        if params is not returned[0]:
            check_trainable(params)
        grads, metrics, new_state = core(params, batch, key, model_ws, state)
        updates, opt_state = optimizer.update(grads, opt_state, params, opt_ws)
        returned[0] = optim.apply_updates(params, updates, params_ws)
        return core.result(returned[0], opt_state, metrics, new_state)

    return train_step


def make_train_step(model, loss, optimizer, penalty=None):
    """A pure ``train_step(params, opt_state, batch, key=None) -> (params, opt_state, metrics)``.

    ``batch`` is ``(x, y)`` or ``(x, y, weights)``. ``metrics`` holds the
    batch ``loss`` (penalty included) and the task's metrics (``accuracy``,
    or ``mse`` and ``mae``). ``penalty`` is a :class:`fnn.losses.Penalty`
    (L1/L2) added to the loss. ``key`` drives dropout; None for a model
    without randomness. A stateful model: ``train_step(..., state=state) ->
    (params, opt_state, metrics, new_state)``. A NaN or infinite loss raises
    :class:`NonFiniteLoss` before anything is updated. A model whose last
    layer clashes with the loss (Softmax before a loss from logits) is refused here.
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


_NOTHING = object()


class _FlatStep:
    """The in-place step over flat vectors: see :func:`make_inplace_train_step`."""

    def __init__(self, model, loss, optimizer, penalty, ws):
        self.core, self.optimizer, self.ws = _StepCore(model, loss, penalty), optimizer, ws
        self.tree_step = _train_step(model, loss, optimizer, penalty, ws.child("trees"))  # params without one float dtype
        self.layout = self.params = None
        self.state = _NOTHING  # never an opt_state given (not even None)
        self.state_views = {}

    def __call__(self, params, opt_state, batch, key=None, state=None):
        if params is not self.params and not self._adopt(params):
            return self.tree_step(params, opt_state, batch, key, state)
        if opt_state is not self.state:
            self.flat_state = self._flatten_state(opt_state)
        grads, metrics, new_state = self.core(self.params, batch, key, self.model_ws, state)
        for view, g in zip(self.grad_views, self._leaves(grads)):
            if g is not view:  # a layer that wrote its gradient elsewhere (or a penalty added to it)
                np.copyto(view, g)
        updates, self.flat_state = self.optimizer.update(self.grad, self.flat_state, self.flat, self.ws.child("optimizer"))
        optim.apply_updates(self.flat, updates, self.ws.child("params"))  # the same buffer: in place
        self.state = self._state_tree(self.flat_state)
        return self.core.result(self.params, self.state, metrics, new_state)

    def _adopt(self, params) -> bool:
        """Copy ``params`` into the flat parameter vector (a new layout if need be); False if they cannot be laid flat."""
        check_trainable(params)
        if self.layout is None or not self.layout.fits(params):
            layout = Layout(params)
            if layout.dtype is None:
                return False
            self.layout = layout
            self.flat = self.ws.child("params").array("params", (layout.size,), layout.dtype)  # apply_updates writes here
            self.grad = layout.zeroed(self.ws.array("grad", (layout.size,), layout.dtype))  # layers write only the leaves
            grad_tree = layout.views(self.grad)
            self.grad_views = [leaf for _, leaf in tree_flatten(grad_tree)]
            self.model_ws = Workspace(grads=grad_tree)  # layers write their gradients into the flat vector
            self.views = layout.views(self.flat)
            self.state_views = {}
        self.params = self.views
        self.layout.pack(params, self.flat)
        return True

    def _leaves(self, tree):
        return [leaf for _, leaf in tree_flatten(tree)]

    def _flatten_state(self, opt_state):
        """``opt_state`` with each params-shaped entry packed into a new flat vector (a state from elsewhere: its own paths)."""
        self.state_paths = _params_shaped(opt_state, self.layout)
        for path in self.state_paths:
            flat = self.layout.pack(_get(opt_state, path), aligned_empty(self.layout.size, self.layout.dtype))
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
        return [path] if path else []  # a whole state shaped like the params is no optimizer's: left for update to refuse
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


def _task(model, task, outputs):
    if task is None:
        return tasks.for_model(model, outputs.shape[-1])
    return tasks.from_name(task) if isinstance(task, str) else task


def predict_outputs(model, params, x, batch_size=1024, state=None):
    """The model's raw outputs for the batch ``x`` ``(n, ...)`` (logits, probabilities or values), ``batch_size`` rows at a time.

    Inference: no dropout; a stateful model uses ``state`` (BatchNorm's running averages).
    """
    x = np.asarray(x)
    if x.ndim < 2:
        raise ValueError(f"predict takes a batch shaped (n, features), got shape {x.shape}; for one example use x[None]")
    if len(x) <= batch_size:  # one call for most: a single row's prediction is mostly call overhead
        return model.apply(params, x) if model.state_init is None else apply_model(model, params, x, state=state)
    chunk = _chunk_outputs(model, params, state)
    first = chunk(x[:batch_size])
    out = np.empty((len(x),) + first.shape[1:], first.dtype)
    out[:batch_size] = first
    for i in range(batch_size, len(x), batch_size):
        out[i : i + batch_size] = chunk(x[i : i + batch_size])
    return out


def _chunk_outputs(model, params, state):
    """``f(x) -> outputs`` for the chunks of one ``predict`` call.

    A model whose forward pass in training equals inference (no key: no
    dropout; no state: no BatchNorm) runs its ``vjp`` forward into a workspace
    of this call, so every chunk reuses the same buffers (fresh arrays per
    chunk cost page faults); any other model runs ``apply``.
    """
    if model.uses_key or model.stateful:
        return lambda x: apply_model(model, params, x, state=state)
    ws = Workspace()
    return lambda x: model.vjp(params, x, None, ws=ws, need_dx=False)[0]


def predict_proba(model, params, x, batch_size=1024, state=None, task=None):
    """Probabilities: ``(n, classes)``, or ``(n,)`` of class 1 for a binary model.

    ``task`` (a :class:`fnn.tasks.Task` or a name such as ``"binary/logits"``)
    says what the outputs are; by default the model's last layer and width tell
    (:func:`fnn.tasks.for_model`): a model ending in Softmax is not softmaxed again.
    """
    outputs = predict_outputs(model, params, x, batch_size, state)
    return _task(model, task, outputs).proba(outputs)


def predict(model, params, x, batch_size=1024, state=None, task=None):
    """Predicted labels ``(n,)`` (0/1 for a binary model), 0/1 rows for multilabel, values for regression (``task=``)."""
    outputs = predict_outputs(model, params, x, batch_size, state)
    return _task(model, task, outputs).predict(outputs)


def evaluate(model, params, x, y, loss=losses.softmax_cross_entropy, batch_size=1024, state=None, weights=None) -> dict:
    """``{"loss": float, ...}`` over the whole of ``(x, y)`` with the loss's metrics (``accuracy``; ``mse``, ``mae``, ``r2``)."""
    outputs = predict_outputs(model, params, x, batch_size, state)
    value = loss.apply(outputs, y) if weights is None else loss.apply(outputs, y, weights)
    return {"loss": value, **tasks.for_loss(loss, outputs.shape[-1]).evaluate(outputs, y)}
