"""The datasets fnn knows by name: their files, pinned digests, mirrors and class names.

Every file is pinned by the size and MD5 of its *uncompressed* contents, since
mirrors and Debian recompress ``.gz`` files (the compressed bytes differ, the
contents do not). MNIST's and Fashion-MNIST's digests are the official ones.

CIFAR-10's authors publish one digest only, of the archive itself
(``cifar-10-binary.tar.gz``: MD5 ``c32a1d4ab5d03f1284b67883e8d87530``,
170052171 bytes, on the dataset's page and in many loaders), and every mirror
serves that very archive, so it is pinned as it is (``gunzip=False``).
"""

from __future__ import annotations

import attrs


@attrs.frozen
class FileSpec:
    """One file: ``name`` as served by mirrors; ``md5``/``size`` of its contents.

    With ``gunzip`` (the default) the digest is of the gunzipped contents and a
    folder may hold the file compressed (``name``) or not (``name`` without
    ``.gz``); without it, the digest is of the file's own bytes.
    """

    name: str
    md5: str
    size: int
    gunzip: bool = True

    @property
    def local_names(self) -> tuple:
        """File names accepted in a folder, in the order they are looked for."""
        if self.gunzip and self.name.endswith(".gz"):
            return (self.name, self.name[:-3])
        return (self.name,)

    @property
    def max_download(self) -> int:
        """An upper bound on the served file's size (gzip can grow incompressible data a little)."""
        return self.size + self.size // 10 + (1 << 20) if self.gunzip else self.size


@attrs.frozen
class Spec:
    """A known dataset: ``kind`` picks the parser (``"idx"`` or ``"cifar10"``); ``shape`` is one example's.

    ``shape`` (e.g. ``(28, 28)``) lets a caller check an architecture before
    anything is loaded or downloaded.
    """

    name: str
    title: str
    kind: str
    files: tuple
    mirrors: tuple
    classes: tuple
    license: str
    shape: tuple = ()  # one example's shape, e.g. (28, 28): lets callers check an architecture before loading


def _idx_files(md5s, sizes=(47040016, 60008, 7840016, 10008)):
    names = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
    return tuple(FileSpec(f"{n}.gz", md5, size) for n, md5, size in zip(names, md5s, sizes))


MNIST = Spec(
    name="mnist",
    title="MNIST handwritten digits",
    kind="idx",
    files=_idx_files(
        (
            "6bbc9ace898e44ae57da46a324031adb",
            "a25bea736e30d166cdddb491f175f624",
            "2646ac647ad5339dbf082846283269ea",
            "27ae3e4e09519cfbb04c329615203637",
        )
    ),
    mirrors=(
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ),
    classes=tuple(str(d) for d in range(10)),
    license="CC BY-SA 3.0, Yann LeCun and Corinna Cortes",
    shape=(28, 28),
)

FASHION_MNIST = Spec(
    name="fashion-mnist",
    title="Fashion-MNIST (Zalando article images)",
    kind="idx",
    files=_idx_files(
        (
            "f4a8712d7a061bf5bd6d2ca38dc4d50a",
            "9018921c3c673c538a1fc5bad174d6f9",
            "8181f5470baa50b63fa0f6fddb340f0a",
            "15d484375f8d13e6eb1aabb0c3f46965",
        )
    ),
    mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
    classes=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
    license="MIT, Zalando SE",
    shape=(28, 28),
)

CIFAR10 = Spec(
    name="cifar10",
    title="CIFAR-10 (binary version)",
    kind="cifar10",
    files=(FileSpec("cifar-10-binary.tar.gz", "c32a1d4ab5d03f1284b67883e8d87530", 170052171, gunzip=False),),
    mirrors=("https://www.cs.toronto.edu/~kriz/",),
    classes=("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
    license="Alex Krizhevsky, Vinod Nair and Geoffrey Hinton; free to use with credit to the tech report",
    shape=(32, 32, 3),
)

REGISTRY = {spec.name: spec for spec in (MNIST, FASHION_MNIST, CIFAR10)}
