"""Shared fixtures: real MNIST from the copy inside the package, the pad's models and server, CLI helpers.

Session fixtures do the costly things once: reading MNIST, training the pad's
two models, starting one ``fnn-cli serve`` process.
"""

import gzip
from pathlib import Path

import numpy as np
import pytest

from fnn import datasets

ROOT = Path(__file__).resolve().parents[1]
MNIST_DIR = ROOT / "fnn" / "datasets" / "data" / "mnist"  # what the package ships: the only MNIST a user's clone has


@pytest.fixture(scope="session", autouse=True)
def one_blas_thread():
    """The test process computes with one BLAS thread; the processes that tests start keep their defaults.

    On 2 quiet cores one thread makes an MNIST epoch about 1.25x as long (experiments/README.md). But
    while other jobs keep both cores busy, two OpenBLAS threads wait on each other: test_mnist_mlp took
    90 s instead of 3, and training the pad's models 135 s instead of 4. Code that sets its own limit
    (``fit(threads=...)``, ``--threads``) still gets it.
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        yield


def read_idx_gz(path):
    """Minimal IDX reader for test fixtures (the library's own parser is tested separately)."""
    with gzip.open(path) as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims)


@pytest.fixture(scope="session")
def mnist_raw():
    """``(x_train, y_train, x_test, y_test)`` as uint8 from the package's own MNIST copy."""
    d = MNIST_DIR
    return tuple(
        read_idx_gz(d / f"{name}-ubyte.gz")
        for name in ("train-images-idx3", "train-labels-idx1", "t10k-images-idx3", "t10k-labels-idx1")
    )


@pytest.fixture(scope="session")
def mnist():
    """``fnn.datasets.load("mnist")``, read and verified once per session (each load takes most of a second).

    Its arrays are read-only, so no test can change them for the next.
    """
    data = datasets.load("mnist")
    for array in (data.x_train, data.y_train, data.x_test, data.y_test):
        array.flags.writeable = False
    return data


@pytest.fixture(scope="session")
def small_npz(tmp_path_factory, mnist_raw):
    """A 2500 + 500 example MNIST subset as a user ``.npz`` dataset: fast CLI runs."""
    x, y, x_test, y_test = mnist_raw
    path = tmp_path_factory.mktemp("data") / "small.npz"
    np.savez(path, x=x[:2500], y=y[:2500], x_test=x_test[:500], y_test=y_test[:500])
    return path


@pytest.fixture(scope="session")
def tiny_npz(tmp_path_factory, mnist_raw):
    """A 400 + 100 example MNIST subset: for tests where what matters is many short runs, not accuracy."""
    x, y, x_test, y_test = mnist_raw
    path = tmp_path_factory.mktemp("data") / "tiny.npz"
    np.savez(path, x=x[:400], y=y[:400], x_test=x_test[:100], y_test=y_test[:100])
    return path


@pytest.fixture(scope="session")
def pad_models(tmp_path_factory, mnist):
    """``{"mnist": path, "small": path}``: the default MNIST model and a weaker second one (see mnist_model.py)."""
    from mnist_model import train

    folder = tmp_path_factory.mktemp("pad-models")
    models = {}
    for name, arch, epochs in (("mnist", [784, 128, 64, 10], 3), ("small", [784, 32, 10], 1)):
        models[name] = folder / f"{name}.npz"
        accuracy = train(mnist, arch, epochs, models[name])
        assert accuracy > (0.96 if name == "mnist" else 0.85), (name, accuracy)
    return models


@pytest.fixture(scope="session")
def pad_server(pad_models):
    """``http://127.0.0.1:PORT`` of one real ``fnn-cli serve --threads 8`` process serving both pad models.

    The tests that need a server over HTTP share it (each start imports Flask and
    waitress and loads the models again); so each also checks that what the
    earlier ones sent left it answering.
    """
    from pad_helpers import get_json, serve_process

    with serve_process([pad_models["mnist"], pad_models["small"]], "--threads", "8") as (url, _):
        yield url
        assert get_json(url + "/healthz")[0] == 200


@pytest.fixture
def cli_runner():
    from click.testing import CliRunner

    return CliRunner()


@pytest.fixture
def cli_app():
    from fnn_cli.main import cli

    return cli
