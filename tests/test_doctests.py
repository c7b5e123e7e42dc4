import doctest
import importlib

import pytest

MODULES = ["fnn", "fnn.tree", "fnn.random", "fnn.layers", "fnn.optim", "fnn.train", "fnn.batching", "fnn.gradcheck"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name))
    assert result.failed == 0 and result.attempted > 0
