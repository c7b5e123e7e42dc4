"""Shared fixtures: real MNIST arrays from the copy inside the package, and CLI helpers."""

import gzip
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
MNIST_DIR = ROOT / "fnn" / "datasets" / "data" / "mnist"  # what the package ships; a user's clone has no ../shared


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
def small_npz(tmp_path_factory, mnist_raw):
    """A 2500 + 500 example MNIST subset as a user ``.npz`` dataset: fast CLI runs."""
    x, y, x_test, y_test = mnist_raw
    path = tmp_path_factory.mktemp("data") / "small.npz"
    np.savez(path, x=x[:2500], y=y[:2500], x_test=x_test[:500], y_test=y_test[:500])
    return path


@pytest.fixture
def cli_runner():
    from click.testing import CliRunner

    return CliRunner()


@pytest.fixture
def cli_app():
    from fnn_cli.main import cli

    return cli
