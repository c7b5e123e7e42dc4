"""Architectures as text: layer sizes for an MLP, a list of layers for a convolutional net, or a preset name.

Three forms, as ``--arch`` and a config's ``arch:`` take them (a string with
commas, or a YAML list of the same entries):

- **Layer sizes** (an MLP, unchanged): ``784,128,64,10``, every entry a number,
  the input width first and the classes last (:func:`fnn.layers.mlp`).
- **A layer list**: ``conv32x3,pool2,conv64x3,pool2,dense128,10``. The input is
  the dataset's examples (nothing to write for it); the last entry is the number
  of classes (a Dense layer of logits); the entries before it are layers:

  ===========================  =========================================================
  ``convFxK``                  ``Conv2D(F, K)``, "same" padding; ``convFxKsS``: stride S;
                               ``convFxKpP``: P zeros on every side; ``convFxKvalid``: none
  ``poolP`` / ``maxpoolP``     ``MaxPool2D(P)``; ``poolPsS``: stride S (default P)
  ``avgpoolP``                 ``AvgPool2D(P)``; ``avgpoolPsS``
  ``gap``                      ``GlobalAvgPool``: ``(n, h, w, c) -> (n, c)``
  ``bn``                       ``BatchNorm()`` over the channels (or features)
  ``dropoutR``                 ``Dropout(R)``, e.g. ``dropout0.25``
  ``denseN``                   ``Dense(N)``
  ``flatten``                  ``Flatten`` (optional: added before the first dense layer)
  ===========================  =========================================================

  The activation (``--activation``, ReLU by default) follows every conv and
  hidden dense layer, after the ``bn`` that directly follows one (``conv32x3,bn``
  is conv, batch norm, ReLU); ``--dropout`` adds ``Dropout`` after each hidden
  dense layer's activation; ``--init`` sets the conv and hidden dense weights'
  initializer (He for ReLU, Glorot otherwise; the logits layer is Glorot).
  A net with a conv or pooling layer starts with ``Reshape`` to the dataset's
  image shape ``(h, w, c)`` (``c = 1`` for grayscale): the model takes the same
  flat rows ``(n, h*w*c)`` as an MLP, so the data pipeline, the model file and
  the drawing pad treat both alike.
- **A preset** (:data:`PRESETS`), a whole net by name: ``lenet5``, ``cnn-small``,
  ``cnn-bn``, ``vgg-small``; for 10 classes, or ``lenet5,26`` for 26.

Entries are case-insensitive; :func:`parse` gives the canonical tuple (numbers
as ints, layers as their shortest spelling: ``maxpool2`` -> ``pool2``,
``conv32x3same`` -> ``conv32x3``), and :func:`name` the run-folder part
``conv32x3-pool2-dense128-10`` (``784-128-64-10`` for sizes, as before).

>>> parse("conv32x3, MaxPool2, dense128, 10")
('conv32x3', 'pool2', 'dense128', 10)
>>> parse([784, 128, 10]), name(parse("lenet5"))
((784, 128, 10), 'lenet5')
>>> model, in_shape = build(parse("conv8x3,bn,pool2,10"), (28, 28))
>>> [s["type"] for s in model.spec["layers"]], in_shape
(['Reshape', 'Conv2D', 'BatchNorm', 'Relu', 'MaxPool2D', 'Flatten', 'Dense'], (-1, 784))
"""

from __future__ import annotations

import difflib
import math
import re

from fnn import layers
from fnn.layers import mlp
from fnn.training.config import MAX_PARAMS

#: Named nets (each ends in 10 classes; ``NAME,K`` gives K). The convolutions use "same" padding unless marked.
PRESETS = {
    # LeCun et al. (1998) on 28x28 input: C1 6@5x5 (the 32x32 of the paper is 28x28 padded by 2), S2, C3 16@5x5, S4,
    # F5 120, F6 84; max pooling and ReLU in place of the original subsampling and tanh.
    "lenet5": ("conv6x5", "pool2", "conv16x5valid", "pool2", "dense120", "dense84", 10),
    # Two conv blocks and a dense layer (Keras's mnist_cnn example, with a pool after each conv).
    "cnn-small": ("conv32x3", "pool2", "conv64x3", "pool2", "dense128", 10),
    # The same with batch norm after each conv and dropout before the logits.
    "cnn-bn": ("conv32x3", "bn", "pool2", "conv64x3", "bn", "pool2", "dense128", "dropout0.3", 10),
    # VGG-style: two 3x3 convs per block, batch norm, 32 and 64 filters (for CIFAR-10-sized images).
    "vgg-small": ("conv32x3", "bn", "conv32x3", "bn", "pool2", "conv64x3", "bn", "conv64x3", "bn", "pool2",
                  "dense256", "dropout0.5", 10),
}

GRAMMAR = "convFxK[sS][pP|valid], poolP[sS], avgpoolP[sS], gap, bn, dropoutR, denseN, flatten"
_INT = r"([0-9]{1,9})"
_PATTERNS = {
    "conv": re.compile(rf"conv{_INT}x{_INT}(?:s{_INT})?(?:p{_INT}|(same)|(valid))?"),
    "pool": re.compile(rf"(?:max)?pool{_INT}(?:s{_INT})?"),
    "avgpool": re.compile(rf"avgpool{_INT}(?:s{_INT})?"),
    "dense": re.compile(rf"dense{_INT}"),
    "dropout": re.compile(r"dropout([0-9]*\.?[0-9]+(?:e-?[0-9]+)?)"),
}
_WORDS = {"bn": "bn", "batchnorm": "bn", "gap": "gap", "globalavgpool": "gap", "flatten": "flatten"}
_IMAGE_LAYERS = ("conv", "pool", "avgpool", "gap")


class ArchError(ValueError):
    """An architecture that cannot be read or built; the message names it and what is wrong."""


def _text(value) -> str:
    return ",".join(str(v) for v in value) if isinstance(value, (list, tuple)) else str(value)


def is_sizes(arch) -> bool:
    """True for the MLP form (layer sizes, all ints)."""
    return all(type(a) is int for a in arch)


def parse(value) -> tuple:
    """The canonical arch tuple of ``value`` (a string with commas, or a list of entries); raises :class:`ArchError`."""
    if isinstance(value, str):
        entries = value.split(",")
    elif isinstance(value, (list, tuple)) and value:
        entries = list(value)
    else:
        raise ArchError(f"arch {value!r:.80} must be layer sizes (784,128,10), layers (conv32x3,pool2,dense128,10) "
                        f"or a preset ({', '.join(PRESETS)})")
    text = _text(value)
    items = []
    for entry in entries:
        if isinstance(entry, bool) or not isinstance(entry, (int, str)):
            raise ArchError(f"arch {text!r:.100}: entry {entry!r:.40} is neither a number nor a layer")
        e = entry.strip().lower() if isinstance(entry, str) else entry
        if e == "":
            raise ArchError(f"arch {text!r:.100} has an empty entry (two commas in a row?); e.g. 784,128,10 or conv32x3,pool2,10")
        if isinstance(e, str) and re.fullmatch(r"[+-]?[0-9]+", e):
            e = int(e)
        items.append(e)
    if all(type(i) is int for i in items):
        return _sizes(tuple(items), text)
    *body, last = items
    if items[0] in PRESETS:
        if len(items) > 2 or (len(items) == 2 and type(last) is not int):
            raise ArchError(f"arch {text!r:.100}: the preset {items[0]} names a whole network; use it alone, or as {items[0]},CLASSES")
        if len(items) == 2:
            _classes(last, text)
        return (items[0],) if len(items) == 1 or last == PRESETS[items[0]][-1] else (items[0], last)
    out = [canonical(item, text) for item in body if type(item) is not int]
    if type(last) is not int:
        canonical(last, text)  # an unknown layer is named first
        raise ArchError(f"arch {text!r:.100} must end with the number of classes, e.g. {','.join(map(str, items))},10")
    _classes(last, text)
    for item in body:
        if type(item) is int:
            raise ArchError(f"arch {text!r:.100}: {item} is a bare number inside a layer list; only the last entry (the classes) "
                            f"is one: write dense{item} for a hidden layer (the input comes from the dataset)")
    return (*out, last)


def _sizes(sizes, text):
    if len(sizes) < 2:
        raise ArchError(f"arch {text!r:.100} needs at least an input and an output size, e.g. 784,10 (or layers: conv32x3,pool2,10)")
    if min(sizes) < 1:
        raise ArchError(f"arch {text!r:.100}: every layer size must be >= 1")
    params = sum((a + 1) * b for a, b in zip(sizes, sizes[1:]))
    if params > MAX_PARAMS:
        raise ArchError(f"arch {text!r:.100} has {params:,} parameters; the limit is {MAX_PARAMS:,}")
    return sizes


def _classes(k, text):
    if k < 1:
        raise ArchError(f"arch {text!r:.100}: the number of classes must be >= 1, got {k}")


def canonical(entry: str, text: str = "") -> str:
    """One layer entry in its shortest spelling (``maxpool2`` -> ``pool2``); :class:`ArchError` names a bad one."""
    return encode(*decode(entry, text))


def decode(entry: str, text: str = "") -> tuple:
    """``(kind, args)`` of one layer entry: ``("conv", (filters, kernel, stride, padding))``, ``("pool", (pool, stride))``,
    ``("avgpool", (pool, stride))``, ``("dense", (units,))``, ``("dropout", (rate,))``, ``("bn" | "gap" | "flatten", ())``."""
    where = f"arch {text or entry!r:.100}"
    if entry in _WORDS:
        return _WORDS[entry], ()
    if entry in PRESETS:
        raise ArchError(f"{where}: the preset {entry} names a whole network; use it alone, or as {entry},CLASSES")
    for kind, pattern in _PATTERNS.items():
        m = pattern.fullmatch(entry)
        if not m:
            continue
        g = m.groups()
        if kind == "conv":
            f, k, s, p, _, valid = g
            _at_least(where, entry, ("filters", f), ("kernel", k), ("stride", s or "1"))
            return kind, (int(f), int(k), int(s or 1), "valid" if valid else "same" if p is None else int(p))
        if kind in ("pool", "avgpool"):
            p, s = g
            _at_least(where, entry, ("pool", p), ("stride", s or p))
            return kind, (int(p), int(s or p))
        if kind == "dense":
            _at_least(where, entry, ("units", g[0]))
            return kind, (int(g[0]),)
        rate = float(g[0])
        if not 0 <= rate < 1:
            raise ArchError(f"{where}: {entry} needs a dropout rate in [0, 1), got {rate:g}")
        return kind, (rate,)
    near = difflib.get_close_matches(entry, ["conv32x3", "pool2", "avgpool2", "gap", "bn", "dropout0.5", "dense128", "flatten",
                                             *PRESETS], n=1, cutoff=0.6)
    hint = f"did you mean {near[0]!r}? " if near else ""
    raise ArchError(f"{where}: unknown layer {entry!r:.40}; {hint}(layers: {GRAMMAR}; presets: {', '.join(PRESETS)})")


def encode(kind, args) -> str:
    """The shortest spelling of ``(kind, args)`` (the inverse of :func:`decode`)."""
    if kind == "conv":
        f, k, s, p = args
        return f"conv{f}x{k}" + (f"s{s}" if s != 1 else "") + ("" if p == "same" else "valid" if p == "valid" else f"p{p}")
    if kind in ("pool", "avgpool"):
        p, s = args
        return f"{kind}{p}" + (f"s{s}" if s != p else "")
    if kind == "dense":
        return f"dense{args[0]}"
    if kind == "dropout":
        return f"dropout{args[0]:g}"
    return kind


def _at_least(where, entry, *pairs):
    for what, value in pairs:
        if int(value) < 1:
            raise ArchError(f"{where}: {entry} needs {what} >= 1")


def name(arch) -> str:
    """The run-folder part of an arch: its entries joined by ``-`` (``784-128-10``, ``conv32x3-pool2-10``, ``lenet5``)."""
    return "-".join(str(a) for a in arch)


def expand(arch) -> tuple:
    """A layer-list arch with its preset spelled out (a preset's classes replaced by ``lenet5,K``'s K)."""
    if not is_sizes(arch) and arch[0] in PRESETS:
        body = PRESETS[arch[0]]
        return (*body[:-1], arch[1] if len(arch) == 2 else body[-1])
    return tuple(arch)


def classes(arch) -> int:
    """The number of outputs: the last size or the classes entry (a preset's 10 unless given)."""
    return expand(arch)[-1]


def needs_images(arch) -> bool:
    """True when the net has a conv or pooling layer (so it reshapes its input to images)."""
    return not is_sizes(arch) and any(str(a).startswith(_IMAGE_LAYERS) for a in expand(arch)[:-1])


def image_shape(shape, grayscale=False) -> tuple:
    """``(h, w, c)`` of one example stored as ``shape`` (``(h, w)`` is grayscale, ``c = 1``), after the grayscale
    conversion when ``grayscale``; None when the examples are not images (flat features)."""
    shape = tuple(int(d) for d in shape)
    if grayscale and len(shape) == 3:
        shape = shape[:2]
    if len(shape) == 2:
        return (*shape, 1)
    if len(shape) == 3:
        return shape
    return None


def build(arch, shape, activation="relu", dropout=0.0, init=None, dataset="the dataset"):
    """``(model, in_shape)`` for ``arch`` on examples stored as ``shape`` (e.g. ``(28, 28)``, ``(32, 32, 3)``, ``(784,)``).

    ``in_shape`` is ``(-1, features)``: the model takes flat rows. Sizes build :func:`fnn.layers.mlp`; a layer
    list is built as the module docstring says. The shapes are checked with a shape-only ``init`` (nothing is
    allocated): :class:`ArchError` names a net that does not fit the examples, or exceeds :data:`MAX_PARAMS`.
    """
    features = math.prod(shape)
    if is_sizes(arch):
        return mlp(arch, activation, dropout, init), (-1, arch[0])
    text = ",".join(map(str, arch))
    entries = expand(arch)
    w_init = init or layers.DEFAULT_INIT[activation]
    act = layers.ACTIVATIONS[activation]
    image = image_shape(shape)
    if needs_images(arch) and image is None:
        raise ArchError(f"arch {text}: conv and pooling layers need images, but {dataset} has flat examples of shape {tuple(shape)}")
    out, flat, pending = [], not needs_images(arch), None  # pending: the kind of layer whose activation is still to come
    if not flat:
        out.append(layers.Reshape(image))

    def finish():
        nonlocal pending
        if pending is not None:
            out.append(act)
            if pending == "dense" and dropout:
                out.append(layers.Dropout(dropout))
        pending = None

    for i, entry in enumerate(entries[:-1]):
        kind, args = decode(entry, text)
        if kind == "bn":
            out.append(layers.BatchNorm())
            continue
        finish()
        if kind in _IMAGE_LAYERS and flat:
            before = next(e for e in reversed(entries[:i]) if e != "bn" and not e.startswith("dropout"))
            raise ArchError(f"arch {text}: {entry} after {before}: conv and pooling layers need images, which {before} has flattened")
        if kind == "conv":
            out.append(layers.Conv2D(*args, w_init=w_init))
            pending = "conv"
        elif kind in ("pool", "avgpool"):
            out.append((layers.MaxPool2D if kind == "pool" else layers.AvgPool2D)(*args))
        elif kind == "dropout":
            out.append(layers.Dropout(args[0]))
        elif kind in ("gap", "flatten") or not flat:  # dense on images: flatten them first
            if kind != "flatten" or not flat:
                out.append(layers.GlobalAvgPool if kind == "gap" else layers.Flatten)
            flat = True
        if kind == "dense":
            out.append(layers.Dense(args[0], w_init))
            pending = "dense"
    finish()
    if not flat:
        out.append(layers.Flatten)
    out.append(layers.Dense(entries[-1], "glorot_uniform"))
    model, in_shape = layers.serial(*out), (-1, features)
    try:
        _, placeholders = model.init(None, in_shape)
    except ValueError as e:
        raise ArchError(f"arch {text} does not fit {dataset}'s examples of shape {tuple(shape)}: {e}") from None
    from fnn.tree import tree_flatten

    params = sum(math.prod(p.shape) for _, p in tree_flatten(placeholders))
    if params > MAX_PARAMS:
        raise ArchError(f"arch {text} has {params:,} parameters on {dataset}; the limit is {MAX_PARAMS:,}")
    return model, in_shape


def check(arch, dataset, shape, n_classes=None, grayscale=False) -> None:
    """Refuse an arch that does not fit examples stored as ``shape`` (after ``grayscale``) or ``n_classes``.

    One-line :class:`ArchError` messages: the sizes' input width against the features, the outputs against the
    classes, a layer list's shapes (built shape-only).
    """
    shape = tuple(shape)
    if grayscale and len(shape) == 3:
        shape = shape[:2]
    features = math.prod(shape)
    if is_sizes(arch):
        if arch[0] != features:
            raise ArchError(f"arch {name(arch)} starts with {arch[0]} inputs, but {dataset} has {features} features per example")
    else:
        build(arch, shape, dataset=dataset)
    if n_classes is not None and classes(arch) != n_classes:
        raise ArchError(f"arch {name(arch)} ends with {classes(arch)} outputs, but {dataset} has {n_classes} classes")


__all__ = ["parse", "name", "build", "check", "expand", "classes", "needs_images", "image_shape", "is_sizes", "canonical",
           "decode", "encode",
           "PRESETS", "GRAMMAR", "ArchError"]
