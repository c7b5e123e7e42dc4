"""Serving trained models: what the pad and ``fnn-cli predict`` run.

- :mod:`~fnn.serving.images`: decode images safely and preprocess them as the training data were;
- :mod:`~fnn.serving.inference`: predictions for image and ``.npy`` files.

Importing this package imports none of them.
"""
