"""Where a named dataset's files are looked for, in order, before anything is downloaded.

1. ``data_dir`` (or ``$FNN_DATA_DIR``): ``<data_dir>/<name>/``, then ``<data_dir>/`` itself;
2. the cache: ``$XDG_CACHE_HOME/fnn/<name>/``, else ``~/.cache/fnn/<name>/``;
3. the system folder ``/usr/share/datasets/<name>/`` (Debian's ``dataset-fashion-mnist`` installs
   the four upstream files there under their upstream names, still gzipped);
4. the copy shipped inside the package, ``fnn/datasets/data/<name>/`` (MNIST);
5. a download from the mirrors into the cache.

A folder serves when it holds every file of the dataset, each under its
served name (``train-images-idx3-ubyte.gz``) or, for gzip files, uncompressed
(``train-images-idx3-ubyte``). When none does and the download fails too (or
downloads are off), :func:`not_found` is the error: every folder looked in, and
how to supply the files (``--data-dir``, ``$FNN_DATA_DIR``, a Debian package,
``fnn-cli data download``).
"""

from __future__ import annotations

import os
from pathlib import Path

SYSTEM_ROOT = Path("/usr/share/datasets")
PACKAGE_ROOT = Path(__file__).resolve().parent / "data"
#: Debian packages that install a dataset's files into ``SYSTEM_ROOT/<name>``.
DEBIAN_PACKAGES = {"fashion-mnist": "dataset-fashion-mnist"}


def cache_root(cache_dir=None) -> Path:
    """The cache folder: ``cache_dir``, else ``$XDG_CACHE_HOME/fnn``, else ``~/.cache/fnn``."""
    if cache_dir is not None:
        return Path(cache_dir)
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    return (Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache") / "fnn"


def candidates(name: str, data_dir=None, cache_dir=None) -> list:
    """``(label, folder)`` for each local source of dataset ``name``, in the order they are tried."""
    out = []
    root = data_dir if data_dir is not None else os.environ.get("FNN_DATA_DIR") or None
    if root is not None:
        out += [("data dir", Path(root) / name), ("data dir", Path(root))]
    out += [
        ("cache", cache_root(cache_dir) / name),
        ("system folder", SYSTEM_ROOT / name),
        ("package copy", PACKAGE_ROOT / name),
    ]
    return out


def find_file(folder, spec):
    """The path of ``spec``'s file in ``folder`` (compressed or not), or None."""
    for local in spec.local_names:
        path = Path(folder) / local
        if path.is_file():
            return path
    return None


def find(folder, files) -> dict | None:
    """Served name -> path for every :class:`FileSpec` in ``files``, or None when any is missing."""
    paths = {spec.name: find_file(folder, spec) for spec in files}
    return None if None in paths.values() else paths


def looked_in(name: str, data_dir=None, cache_dir=None) -> list:
    """Every local place :func:`candidates` tries for ``name``, said for a person: ``"<folder> (<source>)"``.

    With no ``data_dir`` and no ``$FNN_DATA_DIR``, the first entry says so.
    """
    given = data_dir if data_dir is not None else os.environ.get("FNN_DATA_DIR") or None
    how = "--data-dir" if data_dir is not None else "$FNN_DATA_DIR"
    out = [] if given is not None else ["--data-dir / $FNN_DATA_DIR (not given)"]
    for label, folder in candidates(name, data_dir, cache_dir):
        out.append(f"{folder} ({how if label == 'data dir' else label})")
    return out


def how_to_supply(name: str, files) -> list:
    """Lines telling a person how to give fnn dataset ``name``'s ``files`` (:class:`FileSpec`) without a download."""
    names = ", ".join(f.name for f in files) + (" (or gunzipped)" if any(f.gunzip for f in files) else "")
    lines = [f"put {names} in a folder DIR (or DIR/{name}/) and pass --data-dir DIR (Python: data_dir=DIR) "
             f"or set FNN_DATA_DIR=DIR"]
    if name in DEBIAN_PACKAGES:
        lines.append(f"on Debian: apt-get install {DEBIAN_PACKAGES[name]} (installs them in {SYSTEM_ROOT / name})")
    lines.append(f"when online: fnn-cli data download {name} (Python: fnn.datasets.fetch({name!r})), into the cache")
    return lines


def not_found(name: str, files, data_dir=None, cache_dir=None, why: str = "") -> str:
    """The error for dataset ``name`` (its ``files``, :class:`FileSpec`) found nowhere: each place looked in, ``why``
    (what the mirrors said), and how to supply the files."""
    head = f"{name}: not found in {', '.join(looked_in(name, data_dir, cache_dir))}"
    remedies = "".join(f"\n  {line}" for line in how_to_supply(name, files))
    return f"{head}{why}\nto supply the files:{remedies}"
