import doctest
import importlib
import pkgutil

import pytest

import fnn

# Every module of the library; these must also carry at least one example.
WITH_EXAMPLES = ["fnn", "fnn.tree", "fnn.random", "fnn.layers", "fnn.layers.base", "fnn.workspace", "fnn.optim", "fnn.train",
                 "fnn.batching", "fnn.gradcheck", "fnn.metrics", "fnn.tasks", "fnn.summary", "fnn.flat", "fnn.datasets.toy",
                 "fnn.evaluation.report", "fnn.evaluation.compare", "fnn.training.dask", "fnn.training.tracking",
                 "fnn.training.fit", "fnn.training.callbacks", "fnn.training.checkpoints", "fnn.training.arch", "fnn.datasets.augment"]
MODULES = ["fnn"] + sorted(m.name for m in pkgutil.walk_packages(fnn.__path__, "fnn.") if not m.name.startswith(("fnn_cli", "fnn_web")))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name))
    assert result.failed == 0
    if name in WITH_EXAMPLES:
        assert result.attempted > 0


def test_the_listed_modules_exist():
    assert set(WITH_EXAMPLES) <= set(MODULES)
