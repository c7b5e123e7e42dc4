"""``load(name)``: find a named dataset's files (see :mod:`fnn.datasets.sources`), verify, parse.

Every file is checked against its pin before it is used, wherever it came
from. A bad file in the cache is deleted and the search goes on (ending in a
fresh download); a bad file anywhere else is an error naming it, since
silently skipping it would hide the corruption.
"""

from __future__ import annotations

import os

from fnn.datasets import cifar, temporaries
from fnn.datasets.base import Dataset, DatasetError, DownloadError, check_pair
from fnn.datasets.download import DEADLINE, MIN_RATE, RATE_GRACE, TIMEOUT, check_limits, fetch_file
from fnn.datasets.idx import load_idx
from fnn.datasets.integrity import check, remove_quietly, verify_file
from fnn.datasets.registry import REGISTRY, Spec
from fnn.datasets.sources import cache_root, candidates, find, find_file, not_found
from fnn.datasets.user import load_path


def get_spec(name) -> Spec:
    """The registry entry for ``name`` (a :class:`Spec` passes through)."""
    if isinstance(name, Spec):
        return name
    if name not in REGISTRY:
        raise DatasetError(f"unknown dataset {name!r}; known: {', '.join(REGISTRY)} (or a path to your own data)")
    return REGISTRY[name]


def pins(spec: Spec) -> dict:
    """``Dataset.files`` for a registry entry: served name -> ``{"md5", "size"}``."""
    return {f.name: {"md5": f.md5, "size": f.size} for f in spec.files}


def _idx(spec, paths) -> tuple:
    arrays = []
    for f in spec.files:  # train images, train labels, test images, test labels
        path = paths[f.name]
        try:  # never more than the pinned size is read, however the header lies or the gzip inflates
            array, md5, size = load_idx(path, ndim=3 if "images" in f.name else 1, limit=f.size)
        except DatasetError:
            verify_file(path, f)  # a file that does not parse does not match its pin: say so, with both digests
            raise
        check(path, md5, size, f)
        arrays.append(array)
    x_train, y_train, x_test, y_test = arrays
    return x_train, y_train, x_test, y_test, list(spec.classes)


def _cifar(spec, paths) -> tuple:
    (archive,) = spec.files
    verify_file(paths[archive.name], archive)
    return cifar.read_archive(paths[archive.name])


PARSERS = {"idx": _idx, "cifar10": _cifar}


def build(spec: Spec, paths: dict, source: str) -> Dataset:
    """Verify and parse the files ``paths`` (served name -> path) of ``spec`` into a :class:`Dataset`."""
    x_train, y_train, x_test, y_test, classes = PARSERS[spec.kind](spec, paths)
    where = str(next(iter(paths.values())).parent)
    if spec.shape and (x_train.shape[1:] != spec.shape or x_test.shape[1:] != spec.shape):
        raise DatasetError(f"{where}: images are {x_train.shape[1:]} and {x_test.shape[1:]}, {spec.name} has {spec.shape}")
    y_train = check_pair(x_train, y_train, f"{where} (train)", len(classes))
    y_test = check_pair(x_test, y_test, f"{where} (test)", len(classes))
    return Dataset(spec.name, x_train, y_train, x_test, y_test, classes, source, pins(spec))


def locate(name, data_dir=None, cache_dir=None):
    """``(label, folder, paths)`` of the first local source holding every file of ``name``, or None.

    Files are not verified here (see :func:`check_files`).
    """
    spec = get_spec(name)
    for label, folder in candidates(spec.name, data_dir, cache_dir):
        paths = find(folder, spec.files)
        if paths is not None:
            return label, folder, paths
    return None


def check_files(name, paths: dict) -> dict:
    """Served name -> None when the file matches its pin, else the error message naming it."""
    out = {}
    for spec in get_spec(name).files:
        try:
            verify_file(paths[spec.name], spec)
            out[spec.name] = None
        except DatasetError as e:
            out[spec.name] = str(e)
    return out


def fetch(
    name,
    cache_dir=None,
    mirrors=None,
    progress=None,
    timeout: float = TIMEOUT,
    *,
    deadline: float = DEADLINE,
    min_rate: float = MIN_RATE,
    grace: float = RATE_GRACE,
) -> tuple:
    """Make the cache hold a verified copy of every file of ``name``, downloading what it lacks.

    A cached file that fails verification is deleted and fetched again; temporary files a killed
    download left are removed (:mod:`fnn.datasets.temporaries`). ``timeout``, ``deadline``,
    ``min_rate`` and ``grace`` bound each file's download from each mirror
    (:func:`fnn.datasets.download.fetch_file`).

    Returns:
      ``(folder, paths, urls)``: the cache folder, served name -> path, and the URLs downloaded.

    Raises:
      ValueError: a limit that is not a usable number. DownloadError: a file no mirror served.
      Terminated: SIGTERM arrived during a download (no temporary file is left).
    """
    timeout, deadline, min_rate, grace = check_limits(timeout, deadline, min_rate, grace)
    spec = get_spec(name)
    folder = cache_root(cache_dir) / spec.name
    paths, urls = {}, []
    for f in spec.files:
        temporaries.remove_stale(folder, f.name)
        path = find_file(folder, f)
        if path is not None:
            try:
                verify_file(path, f)
                paths[f.name] = path
                continue
            except DatasetError:
                remove_quietly(path)
        paths[f.name], url = fetch_file(
            f, folder, mirrors or spec.mirrors, progress, timeout, deadline=deadline, min_rate=min_rate, grace=grace
        )
        urls.append(url)
    return folder, paths, urls


def load(
    name,
    data_dir=None,
    progress=None,
    *,
    download: bool = True,
    mirrors=None,
    cache_dir=None,
    timeout: float = TIMEOUT,
    deadline: float = DEADLINE,
    min_rate: float = MIN_RATE,
    grace: float = RATE_GRACE,
) -> Dataset:
    """Load ``"mnist"``, ``"fashion-mnist"``, ``"cifar10"``, or the user's data at a path.

    Sources, in order: ``data_dir`` (or ``$FNN_DATA_DIR``), the cache, the
    system folder ``/usr/share/datasets/<name>``, the copy shipped in the
    package, then (with ``download``) the mirrors; ``Dataset.source`` says
    which served. A path (a folder of IDX files, an ``.npz``, a ``.csv``)
    loads through :mod:`fnn.datasets.user`.

    Args:
      name: a registered name (or :class:`Spec`), or a path to the user's data.
      data_dir: a folder to look in first (``<data_dir>/<name>/`` or ``<data_dir>/``).
      progress: ``progress(file_name, done_bytes, total_bytes or None)`` during downloads.
      download: try the mirrors when no local source has the data.
      mirrors: base URLs to use instead of the registered ones.
      cache_dir: the cache folder instead of ``$XDG_CACHE_HOME/fnn``.
      timeout: seconds a mirror may stay silent.
      deadline: seconds one mirror may take for one file, from the request to the last byte.
      min_rate: bytes per second a mirror must average once ``grace`` seconds have passed (0: no minimum).
      grace: seconds before ``min_rate`` applies.

    Raises:
      DatasetError: unknown name, corrupt or mismatching file (named), or nothing
        found with downloads off. DownloadError: every mirror failed. Either of the
        last two lists every folder looked in and how to supply the files.
      ValueError: a download limit that is not a usable number.
    """
    check_limits(timeout, deadline, min_rate, grace)
    if not isinstance(name, Spec) and name not in REGISTRY:
        if os.path.exists(name) or any(c in str(name) for c in "/\\.~"):
            return load_path(os.path.expanduser(name))
    spec = get_spec(name)
    for label, folder in candidates(spec.name, data_dir, cache_dir):
        paths = find(folder, spec.files)
        if paths is None:
            continue
        try:
            return build(spec, paths, f"{label} {folder}")
        except DatasetError:
            if label != "cache":
                raise
            for f, error in check_files(spec, paths).items():  # drop bad cached files, search on
                if error is not None:
                    remove_quietly(paths[f])
    if not download:
        raise DatasetError(not_found(spec.name, spec.files, data_dir, cache_dir, " (downloads are off)"))
    try:
        folder, paths, urls = fetch(
            spec, cache_dir, mirrors, progress, timeout, deadline=deadline, min_rate=min_rate, grace=grace
        )
    except DownloadError as e:  # say where it was looked for and how to supply it, not only what the mirrors said
        why = ", and no mirror served it:\n" + str(e)
        raise DownloadError(not_found(spec.name, spec.files, data_dir, cache_dir, why), e.attempts) from None
    return build(spec, paths, f"download {', '.join(urls) or '(none)'} -> cache {folder}")
