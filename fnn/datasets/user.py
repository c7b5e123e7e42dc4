"""The user's own data: a folder of IDX files, an ``.npz`` with ``x``/``y``, or a CSV.

None of these is pinned, so ``Dataset.files`` records the digests found. When
the data has no test split, ``x_test``/``y_test`` are empty (0 rows of the same
shape); carve a validation split with :func:`fnn.datasets.train_val_split`.
"""

from __future__ import annotations

import csv
import hashlib
import re
import zipfile
from pathlib import Path

import numpy as np

from fnn.datasets.base import Dataset, DatasetError, check_features, check_pair, class_names
from fnn.datasets.idx import parse_idx
from fnn.datasets.integrity import MAX_CONTENT, read_content
from fnn.serialization import npy_header

_IDX_NAME = re.compile(r"(train|t10k|test)[-_.]?(images|labels)", re.IGNORECASE)


def load_path(path) -> Dataset:
    """Load a folder of IDX files, an ``.npz`` or a ``.csv`` by looking at ``path``."""
    p = Path(path)
    if p.is_dir():
        return load_idx_folder(p)
    if not p.exists():
        raise DatasetError(f"{p}: no such file or folder")
    if not p.is_file():
        raise DatasetError(f"{p}: not a regular file (a pipe or a device?)")
    if p.suffix.lower() == ".npz":
        return load_npz(p)
    if p.suffix.lower() == ".csv":
        return load_csv(p)
    raise DatasetError(f"{p}: not a folder of IDX files, an .npz or a .csv")


def _record(data: bytes) -> dict:
    return {"md5": hashlib.md5(data).hexdigest(), "size": len(data)}


def _empty_like(x, y) -> tuple:
    return x[:0], y[:0]


def load_idx_folder(folder) -> Dataset:
    """A folder holding ``train-images*`` and ``train-labels*`` IDX files (optionally ``t10k-``/``test-``).

    Files may be gzipped. Images are ``(n, ...)`` of any IDX dtype; labels must be 1-D integers.
    """
    folder = Path(folder)
    found = {}
    for path in sorted(folder.iterdir()):
        match = _IDX_NAME.match(path.name)
        if path.is_file() and match:
            split = "train" if match[1].lower() == "train" else "test"
            found.setdefault((split, match[2].lower()), path)
    if ("train", "images") not in found or ("train", "labels") not in found:
        raise DatasetError(f"{folder}: no train-images and train-labels IDX files in this folder")
    if (("test", "images") in found) != (("test", "labels") in found):
        raise DatasetError(f"{folder}: has test images or test labels but not both")
    arrays, files = {}, {}
    for (split, part), path in found.items():
        data = read_content(path)
        files[path.name] = _record(data)
        array = parse_idx(data, str(path))
        if part == "labels":
            if array.ndim != 1 or array.dtype.kind not in "iu":
                raise DatasetError(f"{path}: labels must be a 1-D integer IDX file, got {array.dtype}{array.shape}")
            array = array.astype(np.int64)
        elif array.ndim < 2:
            raise DatasetError(f"{path}: wrong dims: images need at least 2 dimensions, got {array.shape}")
        arrays[split, part] = array
    x, y = arrays["train", "images"], arrays["train", "labels"]
    check_features(x, str(found["train", "images"]))
    check_pair(x, y, str(found["train", "labels"]))
    if ("test", "images") in arrays:
        x_test, y_test = arrays["test", "images"], arrays["test", "labels"]
        check_features(x_test, str(found["test", "images"]))
        check_pair(x_test, y_test, str(found["test", "labels"]))
        if x_test.shape[1:] != x.shape[1:]:
            raise DatasetError(f"{folder}: test images are {x_test.shape[1:]}, train images {x.shape[1:]}")
    else:
        x_test, y_test = _empty_like(x, y)
    classes = class_names(np.concatenate([y, y_test]), str(folder))
    return Dataset(folder.name, x, y, x_test, y_test, classes, f"folder {folder}", files)


def load_npz(path) -> Dataset:
    """An ``.npz`` with ``x``/``y`` (and optionally ``x_test``/``y_test``, ``classes``), never unpickled.

    ``x_train``/``y_train`` may stand for ``x``/``y``.
    """
    path = Path(path)
    try:
        _check_npz_sizes(path)
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except DatasetError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise DatasetError(f"{path}: not a readable .npz without pickled objects ({str(e):.300})") from None
    arrays.setdefault("x", arrays.pop("x_train", None))
    arrays.setdefault("y", arrays.pop("y_train", None))
    if arrays["x"] is None or arrays["y"] is None:
        keys = sorted(k for k, v in arrays.items() if v is not None)
        raise DatasetError(f"{path}: needs arrays 'x' and 'y' (or 'x_train'/'y_train'); it has {keys}")
    x, y = arrays["x"], arrays["y"]
    check_features(x, f"{path}: x")
    check_pair(x, y, f"{path}: x/y")
    if ("x_test" in arrays) != ("y_test" in arrays):
        raise DatasetError(f"{path}: has one of 'x_test'/'y_test' but not both")
    if "x_test" in arrays:
        x_test, y_test = arrays["x_test"], arrays["y_test"]
        check_features(x_test, f"{path}: x_test")
        check_pair(x_test, y_test, f"{path}: x_test/y_test")
        if x_test.shape[1:] != x.shape[1:]:
            raise DatasetError(f"{path}: x_test rows are {x_test.shape[1:]}, x rows {x.shape[1:]}")
    else:
        x_test, y_test = _empty_like(x, y)
    y, y_test = y.astype(np.int64), y_test.astype(np.int64)
    if "classes" in arrays:
        classes = [str(c) for c in arrays["classes"].tolist()]
        check_pair(x, y, f"{path}: y", len(classes))
        check_pair(x_test, y_test, f"{path}: y_test", len(classes))
    else:
        classes = class_names(np.concatenate([y, y_test]), str(path))
    files = {path.name: _record(path.read_bytes())}
    return Dataset(path.stem, x, y, x_test, y_test, classes, f"file {path}", files)


def load_csv(path, label_column: str | None = None) -> Dataset:
    """A CSV with a header row: numeric feature columns plus one label column.

    The label column is ``label_column``, else the one named ``label``
    (any case), else the last. Integer labels are used as they are; other
    labels become class names, sorted, and are replaced by their index.
    Features are float32, ``(rows, features)``; there is no test split.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
        rows = list(csv.reader(raw.decode("utf-8-sig").splitlines()))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise DatasetError(f"{path}: not a readable UTF-8 CSV ({e})") from None
    rows = [r for r in rows if r]
    if len(rows) < 2:
        raise DatasetError(f"{path}: needs a header row and at least one data row")
    header = [h.strip() for h in rows[0]]
    lowered = [h.lower() for h in header]
    wanted = (label_column or "label").lower()
    if wanted in lowered:
        col = lowered.index(wanted)
    elif label_column is None:
        col = len(header) - 1
    else:
        raise DatasetError(f"{path}: no column {label_column!r}; columns are {header}")
    if len(header) < 2:
        raise DatasetError(f"{path}: needs at least one feature column besides the label column")
    features = np.empty((len(rows) - 1, len(header) - 1), np.float32)
    labels = []
    for i, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise DatasetError(f"{path}: line {i} has {len(row)} fields, the header has {len(header)}")
        labels.append(row[col].strip())
        values = row[:col] + row[col + 1 :]
        try:
            features[i - 2] = [float(v) for v in values]
        except ValueError:
            bad = next(v for v in values if not _is_float(v))
            raise DatasetError(f"{path}: line {i}: feature value {bad!r} is not a number") from None
        if not np.isfinite(features[i - 2]).all():
            raise DatasetError(f"{path}: line {i}: features must be finite numbers, got {values}")
    if all(re.fullmatch(r"\s*\d{1,9}\s*", s) for s in labels):
        y = np.array([int(s) for s in labels], np.int64)
        classes = class_names(y, str(path))
    else:
        classes = sorted(set(labels))
        index = {name: i for i, name in enumerate(classes)}
        y = np.array([index[s] for s in labels], np.int64)
    x_test, y_test = _empty_like(features, y)
    files = {path.name: _record(raw)}
    return Dataset(path.stem, features, y, x_test, y_test, classes, f"file {path}", files)


def _check_npz_sizes(path) -> None:
    """Before ``np.load`` allocates anything: each ``.npy`` header's array must be exactly what its member holds.

    A header declaring more data than the member (a zip bomb, a damaged file)
    and members adding up to more than ``MAX_CONTENT`` are refused.
    """
    with zipfile.ZipFile(path) as zf:
        infos = zf.infolist()
        total = sum(i.file_size for i in infos)
        if total > MAX_CONTENT:
            raise DatasetError(f"{path}: oversized: members declare {total} bytes, at most {MAX_CONTENT}")
        for info in infos:
            if not info.filename.endswith(".npy"):
                continue
            with zf.open(info) as f:
                shape, dtype, data = npy_header(f)
                if dtype.hasobject:
                    raise DatasetError(f"{path}: not a readable .npz without pickled objects ({info.filename} holds Python objects)")
                if f.tell() + data != info.file_size:
                    raise DatasetError(f"{path}: member {info.filename} declares {shape} {dtype} "
                                       f"({data} bytes) but holds {info.file_size - f.tell()} bytes of data")


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
