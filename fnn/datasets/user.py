"""The user's own data: a folder of IDX files, an ``.npz`` with ``x``/``y``, or a CSV.

None of these is pinned, so ``Dataset.files`` records the digests found. When
the data has no test split, ``x_test``/``y_test`` are empty (0 rows of the same
shape); carve a validation split with :func:`fnn.datasets.train_val_split`.

Labels follow one rule in every format (:func:`fnn.datasets.base.check_labels`):
integers, bools or whole-number floats, ``(n,)`` or ``(n, 1)``, from 0 to at
most 65535. Examples must be finite real numbers with at least one value each,
and the training split must hold at least one example; an empty test split is
the same as none. Every file is at most 4 GiB (``MAX_CONTENT``) of contents.
"""

from __future__ import annotations

import csv
import difflib
import os
import re
import zipfile
from pathlib import Path

import numpy as np

from fnn.datasets.base import MAX_CLASSES, Dataset, DatasetError, check_features, check_labels, check_pair, class_names
from fnn.datasets.idx import load_idx
from fnn.datasets.integrity import MAX_CONTENT, digest
from fnn.serialization import npy_header

_IDX_NAME = re.compile(r"(train|t10k|test)[-_.]?(images|labels)", re.IGNORECASE)
NPZ_ARRAYS = ("x", "y", "x_train", "y_train", "x_test", "y_test", "classes")
MAX_CSV_LINE = 1 << 24  # characters in one line of a CSV (a header of a million columns fits)
_BLOCK = 1 << 24  # bytes of float32 features parsed into one block


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


def _empty_like(x, y) -> tuple:
    return x[:0], y[:0]


def load_idx_folder(folder) -> Dataset:
    """A folder holding ``train-images*`` and ``train-labels*`` IDX files (optionally ``t10k-``/``test-``).

    Files may be gzipped. Images are ``(n, ...)`` of any IDX dtype; labels are ``(n,)`` (or ``(n, 1)``) class indices.
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
        array, md5, size = load_idx(path)  # at most MAX_CONTENT, and never past what its header declares
        files[path.name] = {"md5": md5, "size": size}
        if part == "images" and array.ndim < 2:
            raise DatasetError(f"{path}: wrong dims: images need at least 2 dimensions, got {array.shape}")
        arrays[split, part] = array
    x = arrays["train", "images"]
    check_features(x, str(found["train", "images"]))
    y = check_pair(x, arrays["train", "labels"], str(found["train", "labels"]))
    if ("test", "images") in arrays:
        x_test = arrays["test", "images"]
        check_features(x_test, str(found["test", "images"]), allow_empty=True)
        y_test = check_pair(x_test, arrays["test", "labels"], str(found["test", "labels"]))
        if x_test.shape[1:] != x.shape[1:]:
            raise DatasetError(f"{folder}: test images are {x_test.shape[1:]}, train images {x.shape[1:]}")
    else:
        x_test, y_test = _empty_like(x, y)
    classes = class_names(np.concatenate([y, y_test]))
    return Dataset(folder.name, x, y, x_test, y_test, classes, f"folder {folder}", files)


def _npz_names(path, names) -> None:
    """Refuse an ``.npz`` without a training split, with arrays not among :data:`NPZ_ARRAYS` (a typo would
    go unnoticed), or that names its training split twice."""
    for short, long in (("x", "x_train"), ("y", "y_train")):
        if short not in names and long not in names:
            raise DatasetError(f"{path}: needs arrays 'x' and 'y' (or 'x_train'/'y_train'); it has {sorted(names)}")
    unknown = sorted(set(names) - set(NPZ_ARRAYS))
    if unknown:
        close = difflib.get_close_matches(unknown[0], NPZ_ARRAYS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise DatasetError(f"{path}: unknown arrays {unknown}{hint}; an .npz for fnn holds {', '.join(NPZ_ARRAYS)}")
    for short, long in (("x", "x_train"), ("y", "y_train")):
        if short in names and long in names:
            raise DatasetError(f"{path}: has both {short!r} and {long!r}; give the training split once")


def load_npz(path) -> Dataset:
    """An ``.npz`` with ``x``/``y`` (and optionally ``x_test``/``y_test``, ``classes``), never unpickled.

    ``x_train``/``y_train`` may stand for ``x``/``y``; any other array is refused. ``classes`` is a
    1-D array of names, one per class (labels must then lie below its length).
    """
    path = Path(path)
    try:
        _check_npz_sizes(path)
        with np.load(path, allow_pickle=False) as npz:
            _npz_names(path, npz.files)
            arrays = {k: npz[k] for k in npz.files}
    except DatasetError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise DatasetError(f"{path}: not a readable .npz without pickled objects ({str(e):.300})") from None
    x, y = arrays.get("x", arrays.get("x_train")), arrays.get("y", arrays.get("y_train"))
    if ("x_test" in arrays) != ("y_test" in arrays):
        raise DatasetError(f"{path}: has one of 'x_test'/'y_test' but not both")
    classes = None
    if "classes" in arrays:
        names = arrays["classes"]
        if names.ndim != 1 or not 1 <= len(names) <= MAX_CLASSES:
            raise DatasetError(f"{path}: classes must be a 1-D array of 1 to {MAX_CLASSES} names, got shape {names.shape}")
        classes = [str(c) for c in names.tolist()]
    where = f"{path}: x/y" if classes is None else f"{path}: y"
    check_features(x, f"{path}: x")
    y = check_pair(x, y, where, None if classes is None else len(classes))
    if "x_test" in arrays:
        x_test = arrays["x_test"]
        check_features(x_test, f"{path}: x_test", allow_empty=True)
        where = f"{path}: x_test/y_test" if classes is None else f"{path}: y_test"
        y_test = check_pair(x_test, arrays["y_test"], where, None if classes is None else len(classes))
        if x_test.shape[1:] != x.shape[1:]:
            raise DatasetError(f"{path}: x_test rows are {x_test.shape[1:]}, x rows {x.shape[1:]}")
    else:
        x_test, y_test = _empty_like(x, y)
    if classes is None:
        classes = class_names(np.concatenate([y, y_test]))
    md5, size = digest(path, gunzip=False)
    return Dataset(path.stem, x, y, x_test, y_test, classes, f"file {path}", {path.name: {"md5": md5, "size": size}})


def _lines(f, path):
    """The lines of the text file ``f``, each at most :data:`MAX_CSV_LINE` characters (else an error naming it)."""
    number = 0
    while line := f.readline(MAX_CSV_LINE):
        number += 1
        if len(line) == MAX_CSV_LINE and not line.endswith(("\n", "\r")):
            raise DatasetError(f"{path}: line {number} is longer than {MAX_CSV_LINE} characters")
        yield line


def _rows(f, path):
    """``(line, fields)`` for each non-blank record of the open CSV ``f``; ``line`` is where the record starts.

    Fields follow RFC 4180: a quoted field may hold commas, quotes (doubled) and line breaks.
    """
    reader = csv.reader(_lines(f, path))
    start = 1
    while True:
        try:
            row = next(reader, None)
        except csv.Error as e:  # a field beyond csv's limit (128 KiB)
            raise DatasetError(f"{path}: line {start}: {e}") from None
        if row is None:
            return
        if len(row) > 1 or (row and row[0].strip()):  # blank and whitespace-only lines are skipped
            yield start, row
        start = reader.line_num + 1


def _read_csv(path, label_column) -> tuple:
    """``(features, labels)`` of the CSV at ``path``: float32 ``(rows, columns - 1)`` and the label strings.

    Each row is checked as it is read and parsed into float32 blocks of 16 MiB, so memory follows
    the data read so far, never the header's width times a row count.
    """
    with open(path, encoding="utf-8-sig", newline="") as f:
        rows = _rows(f, path)
        return _parse_rows(rows, path, label_column)


def _parse_rows(rows, path, label_column) -> tuple:
    first = next(rows, None)
    if first is None:
        raise DatasetError(f"{path}: needs a header row and at least one data row")
    header = [h.strip() for h in first[1]]
    wanted = (label_column or "label").lower()
    col = next((i for i, h in enumerate(header) if h.lower() == wanted), None)
    if col is None and label_column is not None:
        raise DatasetError(f"{path}: no column {label_column!r}; columns are {header[:20]}{' ...' * (len(header) > 20)}")
    col = len(header) - 1 if col is None else col
    if len(header) < 2:
        raise DatasetError(f"{path}: needs at least one feature column besides the label column")
    width = len(header) - 1
    per_block = max(1, _BLOCK // (4 * width))
    blocks, labels, filled = [], [], per_block
    for line, row in rows:
        if len(row) != len(header):
            raise DatasetError(f"{path}: line {line} has {len(row)} fields, the header has {len(header)}")
        labels.append(row[col].strip())
        values = row[:col] + row[col + 1 :]
        if filled == per_block:
            blocks.append(np.empty((per_block, width), np.float32))
            filled = 0
        try:
            with np.errstate(over="ignore"):
                blocks[-1][filled] = [float(v) for v in values]
        except ValueError:
            bad = next(v for v in values if not _is_float(v))
            raise DatasetError(f"{path}: line {line}: feature value {bad!r} is not a number") from None
        if not np.isfinite(blocks[-1][filled]).all():
            bad = values[int(np.argmin(np.isfinite(blocks[-1][filled])))]
            raise DatasetError(f"{path}: line {line}: features must be finite numbers within float32's range, got {bad!r}")
        filled += 1
    if not labels:
        raise DatasetError(f"{path}: needs a header row and at least one data row")
    blocks[-1] = blocks[-1][:filled].copy()  # not a view holding the whole block
    return (np.concatenate(blocks) if len(blocks) > 1 else blocks[0]), labels


def load_csv(path, label_column: str | None = None) -> Dataset:
    """A CSV with a header row: numeric feature columns plus one label column.

    The label column is ``label_column``, else the one named ``label``
    (any case), else the last. Integer labels are used as they are; other
    labels become class names, sorted, and are replaced by their index.
    Features are float32, ``(rows, features)``; there is no test split.

    UTF-8 (a BOM is skipped), any line ending, quoted fields as in RFC 4180;
    blank lines are skipped; a row with another number of fields than the
    header is an error naming its line. At most 4 GiB, and
    :data:`MAX_CSV_LINE` characters a line.
    """
    path = Path(path)
    try:
        size = os.stat(path).st_size
        if size > MAX_CONTENT:
            raise DatasetError(f"{path}: oversized: {size} bytes, at most {MAX_CONTENT}")
        features, labels = _read_csv(path, label_column)
        md5, size = digest(path, gunzip=False)
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise DatasetError(f"{path}: not a readable UTF-8 CSV ({e})") from None
    if all(re.fullmatch(r"\s*\d{1,9}\s*", s) for s in labels):
        y = check_labels(np.array([int(s) for s in labels], np.int64), str(path))
        classes = class_names(y)
    else:
        classes = sorted(set(labels))
        if len(classes) > MAX_CLASSES:
            raise DatasetError(f"{path}: {len(classes)} distinct labels; at most {MAX_CLASSES} classes")
        index = {name: i for i, name in enumerate(classes)}
        y = np.array([index[s] for s in labels], np.int64)
    x_test, y_test = _empty_like(features, y)
    return Dataset(path.stem, features, y, x_test, y_test, classes, f"file {path}", {path.name: {"md5": md5, "size": size}})


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
