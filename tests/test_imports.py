import subprocess
import sys

import pytest


@pytest.mark.parametrize("module", ["fnn", "fnn.datasets"])
def test_library_imports_only_numpy_attrs_and_the_standard_library(module):
    """``import fnn`` (and its datasets) loads no click, flask, matplotlib, yaml or PIL: nothing beyond NumPy and attrs."""
    code = (
        f"import sys; before = set(sys.modules); import {module}; "
        "new = {m.split('.')[0] for m in set(sys.modules) - before}; "
        "print(sorted(new - set(sys.stdlib_module_names) - {'fnn', 'numpy', 'attr', 'attrs'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_library_never_imports_the_apps():
    """fnn/ never imports fnn_cli or fnn_web; web never imports cli; nothing imports bare cli/web."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]

    def imports(py, pattern):
        return re.findall(rf"^\s*(?:from|import)\s+(?:{pattern})\b", py.read_text(), re.M)

    for py in root.glob("[fcwt]*/**/*.py"):
        assert not imports(py, r"cli|web"), f"{py} imports a bare cli/web package"
    for py in (root / "fnn").rglob("*.py"):
        assert not imports(py, r"fnn_cli|fnn_web|fnn\.cli|fnn\.web"), py
    for py in (root / "web").rglob("*.py"):
        assert not imports(py, r"fnn_cli|fnn\.cli"), py
    assert imports(root / "cli" / "fnn_cli" / "serve.py", r"fnn_web"), "the check sees the one import that may reach fnn_web"
