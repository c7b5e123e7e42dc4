"""Which preprocessing a model's images get, chosen by the data it was trained on: one place for the pad and predict.

A pipeline has a *kind*, recorded in the model's metadata (``preprocessing.kind``,
or ``preprocessing`` given as the bare name):

========== ============================================================== ==============
kind       what an image goes through                                      gives
========== ============================================================== ==============
digits     MNIST's: ink crop, 20 px box, centre of mass                    (28, 28)
           (:func:`fnn.serving.images.image_to_mnist`)
fashion    Fashion-MNIST's: negate a light background, fit the object      (28, 28)
           into 28×28 keeping its aspect, centred (:mod:`~fnn.serving.photos`)
rgb32      CIFAR-10's: central square, 32×32 RGB                           (32, 32, 3)
none       none: the whole image resized to the model's image shape,       the model's
           as it is (or images refused when the model has no image shape)
========== ============================================================== ==============

A model whose metadata names no kind (files fnn wrote before kinds existed)
gets the kind of its dataset (``mnist``, ``fashion-mnist``, ``cifar10``), else
one from its input size (784: digits; 3072, or 1024 with ``grayscale``: rgb32;
anything else: none). The pipeline's output is what ``pixels`` sends and what
``preview`` shows; :meth:`Pipeline.to_model` turns a batch of them into the
model's input exactly as training did: BT.601 gray for a ``grayscale`` model,
flatten, the stored standardization, the model's input shape (a CNN taking
``(n, 784)`` through a ``Reshape``, or ``(n, 28, 28, 1)`` itself).

>>> p = pipeline_for({"dataset": "fashion-mnist"}, (-1, 784))
>>> p.kind, p.image_shape, p.group
('fashion', (28, 28), 'fashion')
>>> pipeline_for({}, (-1, 3072)).kind, pipeline_for({"preprocessing": "none"}, (-1, 5)).image_shape
('rgb32', None)
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

KINDS = ("digits", "fashion", "rgb32", "none")
TITLES = {"digits": "Digits, 28×28 (as MNIST)", "fashion": "Clothing, 28×28 (as Fashion-MNIST)",
          "rgb32": "Photos, 32×32 colour (as CIFAR-10)", "none": "Images as they are"}
BY_DATASET = {"mnist": "digits", "fashion-mnist": "fashion", "cifar10": "rgb32"}
SHAPES = {"digits": (28, 28), "fashion": (28, 28), "rgb32": (32, 32, 3)}


class PipelineError(ValueError):
    """A model whose declared preprocessing does not fit its input, or an input a pipeline cannot take."""


class Pipeline(NamedTuple):
    """How images become one model's input (see the module docstring)."""

    kind: str
    image_shape: tuple | None  # the preprocessed image, what 'pixels' holds: (28, 28), (32, 32, 3); none: the model's, or None
    input_shape: tuple  # the model's, batch dimension -1
    grayscale: bool = False  # colour images -> BT.601 gray, as training did
    mean: np.ndarray | None = None  # the stored standardization, () or (features,)
    std: np.ndarray | None = None

    @property
    def features(self) -> int:
        return math.prod(self.input_shape[1:])

    @property
    def group(self) -> str:
        """Models of one group take the same preprocessed image (so they can be compared on it)."""
        if self.kind != "none":
            return self.kind
        return "none:" + "x".join(str(d) for d in (self.image_shape or (self.features,)))

    @property
    def view_shape(self) -> tuple | None:
        """What the model itself sees of an image: ``image_shape``, in gray for a ``grayscale`` model."""
        if self.image_shape is not None and self.grayscale and self.image_shape[-1:] == (3,):
            return self.image_shape[:-1]
        return self.image_shape

    def describe(self) -> dict:
        return {"kind": self.kind, "title": TITLES[self.kind], "group": self.group,
                "input": None if self.image_shape is None else list(self.image_shape),
                "view": None if self.view_shape is None else list(self.view_shape), "grayscale": self.grayscale}

    def preprocess(self, image):
        """An image (PNG/JPEG bytes, or an array as :func:`fnn.serving.images.image_to_mnist` takes) -> ``(x, info)``.

        ``x`` is float32 ``image_shape``; raises :class:`fnn.serving.images.ImageError` for a bad image and
        :class:`PipelineError` when the model takes no images.
        """
        from fnn.serving import images, photos

        if self.kind == "digits":
            x, info = images.image_to_mnist(image)
        elif self.kind == "fashion":
            x, info = photos.image_to_fashion(image)
        elif self.kind == "rgb32":
            x, info = photos.image_to_rgb32(image)
        else:
            x, info = self._as_it_is(image)
        return x.reshape(self.image_shape), info

    def _as_it_is(self, image):
        from fnn.serving import images, photos

        if self.image_shape is None:
            raise PipelineError(f"the model takes {self.features} raw features, not an image")
        colour = self.image_shape[-1:] == (3,)
        if isinstance(image, (bytes, bytearray, memoryview)):
            a, alpha = (images.decode_rgb if colour else images.decode_image)(image)
        else:
            a, alpha = (photos.split_rgb_array if colour else images.split_gray_array)(image)
        if alpha is not None:
            a = a * (alpha[..., None] if colour else alpha)
        h, w = self.image_shape[:2]
        x = photos.resize(a, size=(h, w)).astype(np.float32, copy=False)
        return x, {"blank": False, "reason": None, "size": [int(a.shape[0]), int(a.shape[1])]}

    def to_model(self, x) -> np.ndarray:
        """A batch of preprocessed images ``(n, *image_shape)`` (or of flat features) -> the model's float32 input."""
        x = np.asarray(x, np.float32)
        n = len(x)
        if self.view_shape != self.image_shape and x[0].size == math.prod(self.image_shape):
            from fnn.datasets.transforms import rgb_to_gray

            x = rgb_to_gray(x.reshape(n, *self.image_shape))
        x = x.reshape(n, -1)
        if x.shape[1] != self.features:
            raise PipelineError(f"the model takes {self.features} features, got {x.shape[1]}")
        if self.mean is not None:
            x = (x - self.mean) / self.std
        return np.ascontiguousarray(x, np.float32).reshape(n, *self.input_shape[1:])

    def view(self, x) -> np.ndarray:
        """What the model sees of one preprocessed image ``x`` (before standardization): ``view_shape``."""
        if self.view_shape == self.image_shape:
            return x
        from fnn.datasets.transforms import rgb_to_gray

        return rgb_to_gray(x[None])[0]

    def blank_reasons(self, x) -> list:
        """Why each of ``x`` ``(n, ...)`` (preprocessed images, or the model's features before standardization) is blank.

        digits: nothing drawn, or too little ink (:func:`fnn.serving.images.blank_reasons`); fashion:
        the same tests, named for photos; rgb32: one flat colour; none: all zeros.
        """
        from fnn.serving import images, photos

        x = np.asarray(x)
        n = len(x)
        if self.kind in ("digits", "fashion"):
            reasons = images.blank_reasons(x.reshape(n, *SHAPES[self.kind]))
            if self.kind == "fashion":
                names = {"nothing drawn": "nothing to see", "too little ink to read": "too small to read"}
                reasons = [names.get(r, r) for r in reasons]
            return reasons
        if self.kind == "rgb32":
            return photos.flat_reasons(x)
        return ["all zeros" if z else None for z in (~x.reshape(n, -1).any(axis=1)).tolist()]


def kind_of(metadata, input_shape) -> str:
    """The pipeline kind for a model (see the module docstring): declared, else by dataset, else by input size."""
    from fnn.serialization import preprocessing_of

    prep = preprocessing_of(metadata)
    features = math.prod(input_shape[1:]) if all(d > 0 for d in input_shape[1:]) else None
    grayscale = bool(prep.get("grayscale", False))
    if prep.get("kind") is not None:
        kind = prep["kind"]
        if kind not in KINDS:
            raise PipelineError(f"unknown preprocessing {kind!r:.40}; choose from {', '.join(KINDS)}")
        if kind != "none" and features != _features(kind, grayscale):
            raise PipelineError(f"preprocessing {kind!r} gives {_features(kind, grayscale)} features; the model takes "
                                f"{features if features is not None else tuple(input_shape)}")
        return kind
    by_name = BY_DATASET.get((metadata or {}).get("dataset"))
    if by_name is not None and features == _features(by_name, grayscale):
        return by_name
    return default_kind(None, features, grayscale)


def default_kind(dataset, features, grayscale=False) -> str:
    """The kind a model of ``dataset`` (a name, or None) with ``features`` inputs gets when it names none."""
    by_name = BY_DATASET.get(dataset)
    if by_name is not None and features == _features(by_name, grayscale):
        return by_name
    if features == 784 and not grayscale:
        return "digits"
    if features == _features("rgb32", grayscale):
        return "rgb32"
    return "none"


def _features(kind, grayscale) -> int:
    shape = SHAPES[kind]
    return math.prod(shape) // (3 if grayscale and shape[-1] == 3 else 1)


def pipeline_for(metadata, input_shape) -> Pipeline:
    """The :class:`Pipeline` for a loaded model's ``metadata`` and ``input_shape``; :class:`PipelineError` if it cannot be."""
    from fnn.serialization import preprocessing_of, standardization

    input_shape = tuple(int(d) for d in input_shape)
    kind = kind_of(metadata, input_shape)
    prep = preprocessing_of(metadata)
    grayscale = bool(prep.get("grayscale", False))
    if kind == "rgb32" and _features(kind, False) == math.prod(input_shape[1:]):
        grayscale = False  # the model takes colour, whatever the flag says
    elif kind == "rgb32":
        grayscale = True
    image_shape = SHAPES.get(kind) or _raw_shape(prep.get("image_shape"), input_shape, grayscale)
    mean, std = standardization(metadata)
    return Pipeline(kind, image_shape, input_shape, grayscale, mean, std)


def _raw_shape(declared, input_shape, grayscale):
    """A ``none`` model's image shape: its declared ``image_shape`` when it fits the input, else from the input itself."""
    features = math.prod(input_shape[1:])
    if isinstance(declared, list) and len(declared) in (2, 3) and all(type(d) is int and d > 0 for d in declared):
        declared = tuple(declared)
        if len(declared) == 2 or declared[2] in (1, 3):
            colour = len(declared) == 3 and declared[2] == 3
            if math.prod(declared) // (3 if colour and grayscale else 1) == features:
                return declared[:2] if len(declared) == 3 and declared[2] == 1 else declared
    spatial = input_shape[1:]
    if len(spatial) == 3 and spatial[2] in (1, 3):
        return spatial[:2] if spatial[2] == 1 else spatial
    if len(spatial) == 2:
        return spatial
    return None


__all__ = ["KINDS", "TITLES", "BY_DATASET", "SHAPES", "PipelineError", "Pipeline", "kind_of", "default_kind", "pipeline_for"]
