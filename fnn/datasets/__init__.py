"""Datasets: MNIST, Fashion-MNIST and CIFAR-10, verified, cached and offline-ready; the user's own data;
teaching data (:mod:`fnn.datasets.toy`: spiral, moons, circles, a 1-D curve, 2-D loss surfaces).

>>> from fnn import datasets, random
>>> ds = datasets.load("mnist")                       # ships with fnn: works offline
>>> ds.x_train.shape, ds.x_train.dtype, ds.features
((60000, 28, 28), dtype('uint8'), 784)
>>> train_idx, val_idx = datasets.train_val_split(ds.y_train, 0.1, random.key(0))
>>> len(val_idx)
6000

Sources are tried in order (see :mod:`fnn.datasets.sources`): ``data_dir`` /
``$FNN_DATA_DIR``, the cache, ``/usr/share/datasets/<name>``, the package's own
copy, then the mirrors. Every file is pinned by the size and MD5 of its
uncompressed contents (:mod:`fnn.datasets.registry`) and checked before use.
Images stay uint8; :func:`make_transform` turns each drawn batch into
float32 (:func:`fnn.batching.iterate_batches`).

Modules: ``loader`` (load, fetch, locate), ``sources``, ``download``,
``temporaries`` (its ``.part`` files), ``integrity``, ``idx``, ``cifar``, ``user`` (IDX folder, .npz, .csv),
``splits``, ``transforms``, ``registry``, ``base``, ``toy``. Imports NumPy, attrs and
the standard library only.
"""

from fnn.datasets import toy
from fnn.datasets.base import ChecksumError, Dataset, DatasetError, DownloadError
from fnn.datasets.download import Terminated
from fnn.datasets.loader import check_files, fetch, get_spec, load, locate
from fnn.datasets.registry import REGISTRY, FileSpec, Spec
from fnn.datasets.sources import not_found
from fnn.datasets.splits import train_val_split
from fnn.datasets.transforms import flatten, make_transform, rgb_to_gray, scale, standardize_stats
from fnn.losses import one_hot

NAMES = tuple(REGISTRY)

__all__ = [
    "ChecksumError",
    "Dataset",
    "DatasetError",
    "DownloadError",
    "FileSpec",
    "NAMES",
    "REGISTRY",
    "Spec",
    "Terminated",
    "check_files",
    "fetch",
    "flatten",
    "get_spec",
    "load",
    "locate",
    "make_transform",
    "not_found",
    "one_hot",
    "rgb_to_gray",
    "scale",
    "standardize_stats",
    "toy",
    "train_val_split",
]
