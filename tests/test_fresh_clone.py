"""A fresh clone passes its MNIST tests: they read the clone's own package copy, nothing beside it.

The repository (its HEAD) is cloned with ``git clone`` into an empty temporary
folder, so there is certainly no ``shared/`` or anything else beside the
clone. There, pytest collects and runs tests/test_mnist_mlp.py (real MNIST
through the ``mnist_raw`` fixture of the clone's conftest.py) with the current
interpreter and ``PYTHONPATH`` pointing at the clone; a small plugin reports,
from inside that pytest process, which ``fnn`` and which conftest it used.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

REPORTER = '''
import sys


def pytest_sessionfinish(session):
    import fnn

    conftest = next(m for name, m in sys.modules.items() if name.endswith("conftest") and hasattr(m, "MNIST_DIR"))
    print("\\nfresh-clone fnn:", fnn.__file__)
    print("fresh-clone conftest:", conftest.__file__)
    print("fresh-clone MNIST:", conftest.MNIST_DIR)
'''


def test_a_fresh_clone_reads_mnist_from_its_own_package(tmp_path):
    git = shutil.which("git")
    assert git, "git is missing: the fresh-clone test clones this repository"
    head = subprocess.run([git, "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True)
    assert head.returncode == 0, f"{ROOT} is not a git checkout: {head.stderr.strip()}"
    clone = tmp_path / "clone"
    subprocess.run([git, "clone", "-q", str(ROOT), str(clone)], check=True, capture_output=True, timeout=120)
    assert subprocess.run([git, "-C", str(clone), "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout == head.stdout
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "fresh_clone_reporter.py").write_text(REPORTER)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clone", "plugins"]  # no shared/ beside the clone

    # One BLAS thread: what is read from where does not depend on it, and two threads on two busy cores ran 7x slower.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(clone), str(plugins)]),
           "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "fresh_clone_reporter",
                        "tests/test_mnist_mlp.py"], cwd=clone, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert "1 passed" in r.stdout, r.stdout[-2000:]
    where = dict(line.split(": ", 1) for line in r.stdout.splitlines() if line.startswith("fresh-clone "))
    clone = clone.resolve()
    assert Path(where["fresh-clone fnn"]).resolve() == clone / "fnn" / "__init__.py", where
    assert Path(where["fresh-clone conftest"]).resolve() == clone / "tests" / "conftest.py", where
    assert Path(where["fresh-clone MNIST"]).resolve() == clone / "fnn" / "datasets" / "data" / "mnist", where
