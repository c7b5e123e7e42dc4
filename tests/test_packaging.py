"""The wheel holds fnn, fnn_cli and fnn_web (templates and static files too), and no bare cli/web;
building it with a current setuptools prints no warning (deprecated license classifiers, data folders
"absent from the `packages` configuration", ...)."""

import re
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_file_list(tmp_path):
    import setuptools

    # older setuptools neither warns about these nor writes License-Expression: the check below needs a current one
    assert int(setuptools.__version__.split(".")[0]) >= 77, setuptools.__version__
    out = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp_path), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    warned = [line for line in (out.stdout + out.stderr).splitlines()
              if re.search(r"warning|deprecat", line, re.I) and "byte-compiling is disabled" not in line]
    assert not warned, "\n".join(warned)
    (wheel,) = tmp_path.glob("fnn-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert "cli" not in tops and "web" not in tops, tops
    expected = set()
    for pkg, src in (("fnn", ROOT / "fnn"), ("fnn_cli", ROOT / "cli" / "fnn_cli"), ("fnn_web", ROOT / "web" / "fnn_web")):
        for f in src.rglob("*"):
            if f.is_file() and "__pycache__" not in f.parts and f.suffix not in (".pyc",):
                expected.add(f"{pkg}/{f.relative_to(src).as_posix()}")
    missing = sorted(expected - set(names))
    assert not missing, f"missing from the wheel: {missing[:10]}"
    assert "fnn_cli/main.py" in names and "fnn_web/templates/index.html" in names and "fnn/__init__.py" in names
    metadata = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert "License-Expression: MIT" in metadata and "License :: " not in metadata
    entry = [n for n in names if n.endswith("entry_points.txt")]
    assert entry and "fnn-cli = fnn_cli.main:cli" in zipfile.ZipFile(wheel).read(entry[0]).decode()
