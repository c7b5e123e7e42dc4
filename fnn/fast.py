"""The fast path behind training and inference: the same float32 math, in buffers it owns.

:func:`fnn.train.make_train_step` and :func:`fnn.train.predict_logits` run
``serial`` models (what ``mlp`` builds) through this module. A step computes
what the plain tree code computes, bit for bit, but

- each ``Dense`` layer writes its products into buffers kept per batch size
  (``np.matmul(..., out=)``), and ReLU works in place on them: large fresh
  arrays are slow to allocate (they can page-fault every time);
- every parameter gradient lands in one flat float32 vector, so the optimizer's
  ``fused`` kernel (see :mod:`fnn.optim`) updates all parameters with a dozen
  whole-vector ufunc calls (``out=`` into vectors of its own) instead of a
  dozen new arrays per parameter;
- the parameters and optimizer state a step returns are trees of views into
  flat vectors from a :class:`VectorPool`. A vector is written again only when
  nothing outside holds it or any view of it (reference counts tell), so a
  step still returns new values and changes nothing it was given or gave out.

Other layers inside the ``serial`` run their own ``vjp``. A model that is not
a ``serial``, an optimizer without a kernel, inputs or parameters that are not
float32, or a second thread entering the same step take the plain path.

>>> from fnn import layers, random
>>> model = layers.mlp([4, 3, 2])
>>> _, params = model.init(random.key(0), (-1, 4))
>>> pool = VectorPool(Layout(params))
>>> flat = pool.flat(params)                  # packed: a copy of the leaves
>>> tree = pool.tree(flat)                    # a tree of views into ``flat``
>>> pool.flat(tree) is flat                   # recognised again without a copy
True
"""

from __future__ import annotations

import math
import sys
import threading

import numpy as np

from fnn import layers
from fnn.tree import structure, tree_flatten

_DENSE_VJP = layers.Dense(1).vjp.__code__


def kind(layer) -> str:
    """``"dense"`` for a genuine :func:`fnn.layers.Dense`, ``"relu"`` for ReLU, else ``"other"``."""
    if layer.vjp.__code__ is _DENSE_VJP:
        return "dense"
    return "relu" if layer.vjp is layers.Relu.vjp else "other"


# ---------------------------------------------------------------- flat vectors


class Layout:
    """Where each leaf of a parameter tree sits in one flat vector of ``size`` float32s.

    ``walk`` lists the tree's nodes depth first as ``(parent, key, child_count or None for a leaf)``,
    so reading the leaves of a tree and building one are flat loops.
    """

    def __init__(self, tree):
        items = tree_flatten(tree)
        self.paths = [path for path, _ in items]
        self.shapes = [np.shape(leaf) for _, leaf in items]
        ends = np.cumsum([0] + [math.prod(s) for s in self.shapes]).tolist()
        self.slices = [slice(a, b) for a, b in zip(ends[:-1], ends[1:])]
        self.size = ends[-1]
        self.top = len(tree)
        self.walk = []
        _walk(tree, 0, self.walk)

    def views(self, flat) -> tuple:
        """The leaves as views into ``flat``, in flattening order."""
        return tuple(flat[s].reshape(shape) for s, shape in zip(self.slices, self.shapes))

    def tree(self, leaves):
        """A new tree of this layout (empty dicts included) holding ``leaves``."""
        nodes, leaves = [{}], iter(leaves)
        for parent, key, count in self.walk:
            if count is None:
                nodes[parent][key] = next(leaves)
            else:
                nodes[parent][key] = node = {}
                nodes.append(node)
        return nodes[0]

    def leaves(self, tree):
        """The leaves of ``tree`` in flattening order, or None when its layout differs."""
        if type(tree) is not dict or len(tree) != self.top:
            return None
        nodes, out = [tree], []
        try:
            for parent, key, count in self.walk:
                node = nodes[parent][key]
                if count is None:
                    out.append(node)
                elif type(node) is dict and len(node) == count:
                    nodes.append(node)
                else:
                    return None
        except (KeyError, TypeError):
            return None
        return out

    def fits(self, leaves) -> bool:
        """True when ``leaves`` are float32 arrays of this layout's shapes."""
        return (
            leaves is not None
            and len(leaves) == len(self.shapes)
            and all(isinstance(a, np.ndarray) and a.dtype == np.float32 and a.shape == s for a, s in zip(leaves, self.shapes))
        )


def _walk(tree, index, walk):
    """Append ``tree``'s nodes below node number ``index`` to ``walk``, depth first."""
    for key, value in tree.items():
        if isinstance(value, dict):
            walk.append((index, key, len(value)))
            _walk(value, sum(count is not None for _, _, count in walk), walk)
        else:
            walk.append((index, key, None))


def _refcounts(entry):
    """Reference counts of a pool entry's vector and of (the last of) its views."""
    flat, views = entry
    n_flat = sys.getrefcount(flat)
    for v in views:
        n_view = sys.getrefcount(v)
    return n_flat, n_view


def _is_free(entry, free):
    """``_refcounts(entry) == free`` for every view, stopping at the first held one (same frame layout)."""
    flat, views = entry
    if sys.getrefcount(flat) != free[0]:
        return False
    for v in views:
        if sys.getrefcount(v) != free[1]:
            return False
    return True


class VectorPool:
    """Flat vectors of one :class:`Layout`, each with its leaf views made once.

    ``take()`` returns a vector that nothing outside the pool references: not
    the vector, not one of its views, not a view of a view (those keep the
    vector itself alive). Recycling needs CPython's reference counts; a
    self-check at start-up switches it off (every vector is new) where they do
    not behave as expected. At most ``limit`` vectors are kept.
    """

    def __init__(self, layout: Layout, limit: int = 12):
        self.layout, self.limit = layout, limit
        self.entries, self.views_of = [], {}
        self.free = self._calibrate()

    def _make(self):
        flat = np.empty(self.layout.size, np.float32)
        return flat, self.layout.views(flat)

    def _calibrate(self):
        """Reference counts of a vector nobody else holds; None (no recycling) if holding one is not seen."""
        if not hasattr(sys, "getrefcount") or not self.layout.shapes:
            return None
        entry = self._make()
        free = _refcounts(entry)
        held_view = entry[1][-1]
        seen_view = not _is_free(entry, free)
        del held_view
        sub = entry[1][0][:1]
        seen_sub = not _is_free(entry, free)
        del sub
        return free if seen_view and seen_sub and _is_free(entry, free) else None

    def take(self):
        """A vector nothing outside holds: a recycled one, else a new one."""
        if self.free is not None:
            for entry in self.entries:
                if _is_free(entry, self.free):
                    return entry[0]
        entry = self._make()
        if self.free is not None and len(self.entries) < self.limit:
            self.entries.append(entry)
            self.views_of[id(entry[0])] = entry[1]
        return entry[0]

    def views(self, flat) -> tuple:
        """The leaf views of ``flat`` (made once for pooled vectors)."""
        views = self.views_of.get(id(flat))
        return views if views is not None and views[0].base is flat else self.layout.views(flat)

    def tree(self, flat):
        """A new tree of views into ``flat``."""
        return self.layout.tree(self.views(flat))

    def flat(self, tree):
        """The vector behind ``tree``: found when its leaves are a pooled vector's views, else packed into one.

        None when ``tree`` does not fit the layout (other keys, shapes or dtypes).
        """
        leaves = self.layout.leaves(tree)
        if leaves:
            for flat, views in self.entries:
                if views[0] is leaves[0] and all(a is b for a, b in zip(leaves, views)):
                    return flat
        if not self.layout.fits(leaves):
            return None
        flat = self.take()
        for view, leaf in zip(self.views(flat), leaves):
            np.copyto(view, leaf)
        return flat


# ---------------------------------------------------------------- training


class Workspace:
    """What a training step keeps between calls for one parameter layout.

    The gradient vector (with one tree of views per child layer), scratch, the
    pool for parameters and optimizer state, and one :class:`Pass` (with its
    activation buffers) per batch size. It is also the ``ws`` the optimizers'
    fused kernels get.
    """

    def __init__(self, params, opt_state):
        self.layout = Layout(params)
        self.pool = VectorPool(self.layout)
        self.grad = np.zeros(self.layout.size, np.float32)
        self.tmp = np.empty(self.layout.size, np.float32)
        self.grad_leaves = self.layout.views(self.grad)
        self.grad_tree = self.layout.tree(self.grad_leaves)
        self.state_paths = _params_shaped(opt_state, structure(params))
        self.passes = {}  # batch size -> Pass

    def new(self):
        return self.pool.take()

    def leaves(self, *flats):
        """``(path, view of each flat, ...)`` per parameter."""
        views = [self.grad_leaves if f is self.grad else self.pool.views(f) for f in flats]
        return zip(self.layout.paths, *views)

    def pass_for(self, step, batch: int) -> Pass:
        """The :class:`Pass` of ``step``'s model for ``batch`` rows (made on first use)."""
        run = self.passes.get(batch)
        if run is None:
            if len(self.passes) > 8:  # batch sizes keep changing: start over rather than hoard
                self.passes.clear()
            run = self.passes[batch] = Pass(step.children, step.kinds, step.loss, self, batch)
        return run

    def flat_state(self, opt_state):
        """``opt_state`` with each params-shaped entry replaced by its flat vector, or None."""
        for path in self.state_paths:
            flat = self.pool.flat(_get(opt_state, path))
            if flat is None:
                return None
            opt_state = _put(opt_state, path, flat)
        return opt_state

    def state_tree(self, flat_state):
        """The inverse of :meth:`flat_state`: each flat vector back as a tree of views."""
        for path in self.state_paths:
            flat_state = _put(flat_state, path, self.pool.tree(_get(flat_state, path)))
        return flat_state


def _params_shaped(tree, shape, path=()):
    """Paths (key tuples) of the subtrees of ``tree`` laid out like the parameters."""
    if not isinstance(tree, dict):
        return []
    if structure(tree) == shape:
        return [path]
    return [p for k, v in tree.items() for p in _params_shaped(v, shape, path + (k,))]


def _get(tree, path):
    for k in path:
        tree = tree[k]
    return tree


def _put(tree, path, value):
    """A copy of ``tree`` (dicts along ``path`` copied, nothing else) with ``value`` at ``path``."""
    if not path:
        return value
    out = dict(tree)
    out[path[0]] = _put(tree[path[0]], path[1:], value)
    return out


class Pass:
    """One forward and one backward pass of a ``serial``, for one batch size, through buffers made once.

    Each child is run one of three ways, fixed when the pass is made:
    ``"dense"`` (a genuine Dense: products into its own ``y``, ``dx`` and
    gradient buffers), ``"relu"`` (in place on the buffer before it, which is
    ours), or ``"vjp"`` (anything else, and a ReLU whose input is not ours:
    the child's own ``vjp``). :meth:`run` leaves the gradients in ``ws.grad``.
    """

    def __init__(self, children, kinds, loss, ws, batch: int):
        self.children, self.loss = children, loss
        self.uses_key = any(c.uses_key for c in children)
        self.ones = np.ones(batch, np.float32)
        self.steps = []  # (params key, how, child, y, dx, gradient tree)
        own = False  # is the current activation a buffer of ours?
        for i, (child, how) in enumerate(zip(children, kinds)):
            name, y, dx = str(i), None, None
            if how == "dense":
                n_in, n_out = ws.grad_tree[name]["w"].shape
                y, dx = np.empty((batch, n_out), np.float32), np.empty((batch, n_in), np.float32) if i else None
            elif how != "relu" or not own:
                how = "vjp"
            own = how != "vjp"
            self.steps.append((name, how, child, y, dx, ws.grad_tree[name]))

    def run(self, params, x, y, key):
        """``(loss value, outputs)`` of the batch ``(x, y)``; the parameter gradients land in ``ws.grad``."""
        keys = layers.child_keys(self.children, key) if self.uses_key else None
        saved, h = [], x  # per child: its input (dense), its output (relu) or its backward function (vjp)
        for i, (name, how, child, out, _, _) in enumerate(self.steps):
            if how == "dense":
                saved.append(h)
                h = layers.dense_forward(params[name], h, out=out)
            elif how == "relu":
                saved.append(np.maximum(h, 0, out=h))
            else:
                h, back = child.vjp(params[name], h, keys[i] if keys is not None else None, need_dx=i > 0)
                saved.append(back)
        value, d = self.loss.value_and_grad(h, y)
        own = False  # is ``d`` a buffer of ours?
        for i in reversed(range(len(self.steps))):
            name, how, child, _, dx, grads = self.steps[i]
            if how == "dense":
                d = layers.dense_backward(params[name], saved[i], d, i > 0, out=grads, dx=dx, ones=self.ones)[1]
                own = True
            elif how == "relu":
                d = np.multiply(d, saved[i] > 0, out=d if own else None)
                own = True
            else:
                dparams, d = saved[i](d)
                by_path = dict(tree_flatten(dparams))
                for path, g in tree_flatten(grads):
                    np.copyto(g, by_path[path])
                own = False
        return value, h


def _leaves(tree):
    return [leaf for _, leaf in tree_flatten(tree)]


class TrainStep:
    """``step(params, opt_state, batch, key) -> (params, opt_state, loss, outputs)`` on the fast path, or None.

    None means "take the plain path" (unsupported inputs, or the step is busy in another thread).
    """

    def __init__(self, model, loss, optimizer, penalty=None):
        self.loss, self.optimizer, self.penalty = loss, optimizer, penalty
        self.children, self.kinds = model.children, [kind(c) for c in model.children]
        self.ws = None
        self.lock = threading.Lock()

    @staticmethod
    def supports(model, optimizer) -> bool:
        return bool(model.children) and optimizer.fused is not None

    def __call__(self, params, opt_state, batch, key=None):
        x, y = batch
        if not (isinstance(x, np.ndarray) and x.dtype == np.float32) or not self.lock.acquire(blocking=False):
            return None
        try:
            return self._step(params, opt_state, x, y, key)
        finally:
            self.lock.release()

    def _step(self, params, opt_state, x, y, key):
        ws = self.ws
        P = ws.pool.flat(params) if ws is not None else None
        if P is None:  # first call, or parameters of another layout: start a new workspace
            if not Layout(params).fits(_leaves(params)):
                return None
            ws = self.ws = Workspace(params, opt_state)
            P = ws.pool.flat(params)
        S = ws.flat_state(opt_state)
        if S is None:
            return None
        value, outputs = ws.pass_for(self, len(x)).run(params, x, y, key)
        if self.penalty is not None:
            value += self.penalty.apply(params)
            for g, dp in zip(ws.grad_leaves, _leaves(self.penalty.grad(params))):
                g += dp
        new_state = self.optimizer.fused(ws.grad, S, P, ws)
        new_params = np.add(P, ws.grad, out=ws.new())
        return ws.pool.tree(new_params), ws.state_tree(new_state), value, outputs


# ---------------------------------------------------------------- inference

_plans: dict = {}


def plan(model):
    """``[(params key, kind, layer), ...]`` for a ``serial`` model (cached per model), or None."""
    children = model.children
    cached = _plans.get(id(children))
    if cached is None or cached[0] is not children:
        if len(_plans) > 64:
            _plans.clear()
        cached = _plans[id(children)] = (children, [(str(i), kind(c), c) for i, c in enumerate(children)])
    return cached[1] if children else None


def forward(model, params, x, chunk: int = 1024):
    """``model.apply(params, x)`` for a ``serial`` model, ``chunk`` rows at a time through buffers reused across chunks.

    Returns None when the model is not a ``serial`` or ``x`` is not float32.
    """
    steps = plan(model)
    if steps is None or not isinstance(x, np.ndarray) or x.dtype != np.float32:
        return None
    if len(x) <= chunk:
        return _forward(steps, params, x, None)
    buffers, out = {}, None
    for start in range(0, len(x), chunk):
        y = _forward(steps, params, x[start : start + chunk], buffers)
        if out is None:
            out = np.empty((len(x),) + y.shape[1:], y.dtype)
        out[start : start + len(y)] = y
    return out


def _forward(steps, params, x, buffers):
    """One chunk: Dense into ``buffers[key]`` (or fresh arrays when ``buffers`` is None), ReLU in place."""
    h, own = x, False
    for key, how, child in steps:
        p = params[key]
        if how == "dense":
            out = None
            if buffers is not None:
                out = buffers.get(key)
                if out is None or len(out) != len(h):
                    out = buffers[key] = np.empty((len(h), p["w"].shape[1]), np.float32)
            h, own = layers.dense_forward(p, h, out), True
        elif how == "relu" and own:
            np.maximum(h, 0, out=h)
        else:
            h, own = child.apply(p, h), False
    return h
