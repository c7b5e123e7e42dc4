"""Save and load pytrees and models as ``.npz`` files that never run code.

A file is a zip archive (``.npz``): one ``.npy`` member per leaf, named by its
dotted path (``0.w.npy``), and a ``manifest.json`` member. A model's manifest
records its architecture as layer specs, so :func:`load_model` rebuilds the
model with no user code; ``metadata`` holds anything JSON (class names,
preprocessing, metrics). ``np.load(path)`` reads the arrays too.

Loading is defensive: only a regular file is opened (never a FIFO or a
device); the zip's end record (member count, central directory size), every
member name, size and ``.npy`` header are checked against fixed limits
*before* anything is allocated; members must be stored uncompressed, as
:func:`save_arrays` writes them, so there is nothing to decompress (no zip
bomb) and the loader reads no more bytes than the file holds; the manifest is
JSON with finite numbers and bounded nesting; headers are parsed with
``ast.literal_eval``; only plain numeric dtypes are accepted (never object
arrays, so nothing is unpickled); layer types come only from
:data:`fnn.layers.REGISTRY`, and :func:`load_model` checks every declared
array against the architecture (a shape-only ``init``, no allocation) before
reading any. Any problem raises :class:`ModelFileError`.
Writes are atomic: a temporary file in the same folder, fsync, rename.
"""

from __future__ import annotations

import ast
import errno
import json
import math
import os
import re
import stat
import struct
import tempfile
import zipfile
from typing import NamedTuple

import numpy as np

from fnn import layers
from fnn.tree import StructureError, tree_flatten, tree_map_with_path, tree_unflatten
from fnn.workspace import aligned_empty

MANIFEST = "manifest.json"
MAX_MANIFEST_BYTES = 1 << 20
MAX_HEADER_BYTES = 4096
MAX_ARRAY_BYTES = 1 << 31
MAX_TOTAL_BYTES = 1 << 32
MAX_MEMBERS = 4096
MAX_CENTRAL_DIRECTORY = 4 << 20  # bytes of the zip's member table
MAX_DEPTH = 32  # dotted parts of a member name; nesting levels of the manifest
MAX_NAME = 1024  # characters of a member name
ALLOWED_KINDS = "fiub"
_NAME = re.compile(r"[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-]+)*")
_MAGIC = b"\x93NUMPY"


_TMP_SUFFIX = ".tmp"


class ModelFileError(ValueError):
    """A model or checkpoint file is missing, corrupt, hostile, or does not fit its architecture."""


class OutputError(ValueError):
    """An output path names something fnn will not write over: a device, a pipe, a socket, a symbolic link,
    a folder where a file goes or a file where a folder goes; the message names it."""


# ---------------------------------------------------------------- output paths


def _kind(mode) -> str:
    for test, name in ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a pipe (FIFO)"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def check_output(path, folder=False):
    """Refuse an output path that names something other than what fnn writes there; returns ``path``.

    A file (``folder=False``) may be absent or a regular file, which is then
    replaced atomically (:func:`atomic_write`); never a device, pipe or socket
    (renaming over one would replace it, as root a device node), nor a symbolic
    link: replacing the link would surprise whoever made it, and writing
    through it would let anyone who can plant a link in an output folder
    redirect the write. A folder (``folder=True``) may be absent or a folder
    (a symbolic link to a folder is followed: files are written inside it).
    Raises :class:`OutputError`; a parent that cannot hold the path is left to
    the write that follows (an ``OSError``).
    """
    text = os.fspath(path)
    try:
        mode = os.lstat(text).st_mode
    except (FileNotFoundError, NotADirectoryError):  # nothing there yet (the write says if it cannot be made)
        mode = None
    if mode is not None:
        if folder:
            if not os.path.isdir(text):
                what = _kind(mode) if not stat.S_ISREG(mode) else "a file"
                raise OutputError(f"{text}: is {what}, not a folder; give a folder to write into")
        elif not stat.S_ISREG(mode):
            target = f" to {os.readlink(text)}" if stat.S_ISLNK(mode) else ""
            raise OutputError(f"{text}: is {_kind(mode)}{target}; fnn writes only regular files and does not replace this one")
    return path


def open_append(path):
    """Open ``path`` to append text (created if absent): a regular file only, never through a symbolic link,
    never blocking on a pipe; :class:`OutputError` otherwise."""
    text = os.fspath(path)
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(text, flags | getattr(os, "O_CLOEXEC", 0), 0o666)
    except OSError as e:
        if e.errno in (errno.ELOOP, errno.ENXIO, errno.EISDIR):  # a link (O_NOFOLLOW), a FIFO with no reader, a folder
            check_output(text)
        raise
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise OutputError(f"{text}: is {_kind(mode)}; fnn appends only to regular files")
    return os.fdopen(fd, "a", encoding="utf-8", newline="")


# ---------------------------------------------------------------- file paths and atomic writes


def file_path(path, who: str, error=ModelFileError) -> str:
    """``path`` (a str, bytes or ``os.PathLike``) as a str; a NUL byte raises ``error``, anything else a TypeError naming ``who``."""
    try:
        path = os.fsdecode(os.fspath(path))
    except TypeError:
        raise TypeError(f"{who} takes a file path (str, bytes or os.PathLike), got {type(path).__name__}") from None
    if "\0" in path:
        raise error(f"{path!r:.200}: a file path cannot hold a NUL byte")
    return path


def atomic_write(path, write) -> None:
    """Call ``write(f)`` on a temporary file beside ``path``, fsync it, then rename it over ``path``.

    On any error (a full disk, Ctrl-C) the temporary file is removed and
    ``path`` keeps its previous contents. ``path`` must be absent or a regular
    file (:func:`check_output`): a device, pipe, socket, folder or symbolic link
    there is refused with :class:`OutputError` before anything is written.
    """
    path = file_path(path, "atomic_write", ValueError)
    check_output(path)
    folder = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=_TMP_SUFFIX)
    except OSError as e:  # name the file asked for, not the temporary one
        reason = "its folder does not exist" if isinstance(e, FileNotFoundError) else f"{e.strerror} ({folder})"
        raise type(e)(e.errno, f"cannot write {path}: {reason}") from None
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file the usual permissions
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.replace(tmp, path)
        except OSError as e:
            raise type(e)(e.errno, f"cannot write {path}: {e.strerror}") from None
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    try:
        dir_fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def remove_temporaries(folder, names) -> list:
    """Delete the temporary files :func:`atomic_write` left for ``names`` in ``folder`` when killed mid-write.

    Call it only where no other process is writing those files. Returns the names removed.
    """
    prefixes = tuple(f".{name}." for name in names)
    removed = []
    for entry in os.scandir(folder):
        if entry.name.startswith(prefixes) and entry.name.endswith(_TMP_SUFFIX) and entry.is_file(follow_symlinks=False):
            os.unlink(entry.path)
            removed.append(entry.name)
    return sorted(removed)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _umask()  # read once: os.umask can only be read by setting it, which is not thread-safe


# ---------------------------------------------------------------- pytrees


def save_arrays(path, tree, manifest=None) -> None:
    """Write the pytree ``tree`` and the JSON object ``manifest`` to ``path`` atomically.

    The manifest gains ``arrays``: each leaf's dtype and shape.
    """
    items = [(p, np.asarray(leaf)) for p, leaf in tree_flatten(tree)]
    for p, arr in items:
        if not _NAME.fullmatch(p):
            raise ValueError(f"pytree path {p!r} is not a safe member name")
        if arr.dtype.kind not in ALLOWED_KINDS:
            raise TypeError(f"leaf {p!r} has dtype {arr.dtype}; only numeric and bool arrays are saved")
    manifest = dict(manifest or {})
    manifest["arrays"] = {p: {"dtype": arr.dtype.str, "shape": list(arr.shape)} for p, arr in items}
    text = json.dumps(manifest, indent=1, allow_nan=False).encode()
    if len(text) > MAX_MANIFEST_BYTES:
        raise ValueError(f"manifest is {len(text)} bytes; the limit is {MAX_MANIFEST_BYTES}")

    def write(f):
        with zipfile.ZipFile(f, "w", zipfile.ZIP_STORED) as zf:
            zf.writestr(MANIFEST, text)
            for p, arr in items:
                with zf.open(p + ".npy", "w", force_zip64=arr.nbytes > (1 << 30)) as member:
                    np.lib.format.write_array(member, np.asarray(arr, order="C"), allow_pickle=False)

    atomic_write(path, write)


def load_arrays(path, check=None):
    """Read a file written by :func:`save_arrays`: ``(tree, manifest)``.

    ``check(manifest)``, when given, runs after the manifest is read and
    before any array is; it refuses the file by raising :class:`ModelFileError`.
    Raises :class:`ModelFileError` for anything that is not such a file (a NUL byte in ``path`` too),
    and a TypeError for a ``path`` that is not a path.
    """
    path = file_path(path, "load_arrays")
    f, size = _open_regular(path)
    with f:
        _check_end_record(path, f, size)
        try:
            zf = zipfile.ZipFile(f)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError, struct.error) as e:
            raise ModelFileError(f"{path}: not an fnn .npz file ({e})") from None
        try:
            with zf:
                return _read_members(path, zf, size, check)
        except ModelFileError:
            raise
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError, struct.error, KeyError) as e:
            raise ModelFileError(f"{path}: corrupt archive ({type(e).__name__}: {e})") from None


def open_regular(path, error=None, what="a file"):
    """Open ``path`` for binary reading if it is a regular file; a FIFO or device is refused without blocking on it.

    Raises ``FileNotFoundError``, ``IsADirectoryError``, or ``OSError`` (errno ``EINVAL``) for anything else;
    with ``error`` (an exception class), raises ``error("<path>: <reason>")`` instead, ``what`` naming the
    kind of file expected (e.g. "a model file"). A NUL byte in ``path`` raises ``ValueError`` (or ``error``).
    """
    path = file_path(path, "open_regular", error or ValueError)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            os.close(fd)
            if stat.S_ISDIR(mode):
                raise IsADirectoryError(errno.EISDIR, "is a folder", path)
            raise OSError(errno.EINVAL, "not a regular file (a pipe or a device?)", path)
    except OSError as e:
        if error is None:
            raise
        if isinstance(e, FileNotFoundError):
            raise error(f"{path}: no such file") from None
        if isinstance(e, IsADirectoryError):
            raise error(f"{path}: is a folder, not {what}") from None
        raise error(f"{path}: cannot open ({e.strerror or e})") from None
    return os.fdopen(fd, "rb")


def read_regular(path, limit, error=None, what="a file") -> bytes:
    """The bytes of the regular file ``path`` (:func:`open_regular`), at most ``limit`` of them.

    A larger file is refused without reading it: ``OSError`` (errno ``EFBIG``), or ``error("<path>: ...")``.
    """
    with open_regular(path, error, what) as f:
        size = os.fstat(f.fileno()).st_size
        data = f.read(limit + 1) if size <= limit else b""
    if size > limit or len(data) > limit:
        reason = f"larger than {_bytes(limit)}, the limit for {what}"
        if error is None:
            raise OSError(errno.EFBIG, reason, os.fspath(path))
        raise error(f"{os.fspath(path)}: {reason}")
    return data


def _bytes(n) -> str:
    """``1 MiB`` for 1048576; bytes otherwise."""
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size and n % size == 0:
            return f"{n // size} {unit}"
    return f"{n} bytes"


def npy_header(f) -> tuple:
    """``(shape, dtype, data_bytes)`` from the ``.npy`` header at ``f``'s position, leaving ``f`` at the data.

    NumPy's own header parser (bounded header size) does the reading; raises ``ValueError`` for a bad header.
    Nothing is allocated for the data: compare ``data_bytes`` with what the file holds before loading it.
    """
    version = np.lib.format.read_magic(f)
    read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, _, dtype = read(f)
    return shape, dtype, math.prod(shape) * dtype.itemsize


def _open_regular(path):
    """``(binary file, size)`` for a model file; :class:`ModelFileError` for anything else."""
    f = open_regular(path, ModelFileError, "a model file")
    return f, os.fstat(f.fileno()).st_size


_END = struct.Struct("<4s4H2LH")  # the zip's end-of-central-directory record


def _check_end_record(path, f, size):
    """Refuse too many members or too big a member table from the end record, before zipfile reads the table.

    The record is found as :mod:`zipfile` finds it: at the very end, else the last one in the final 64 KiB.
    """
    tail_size = min(size, _END.size + 0xFFFF)
    f.seek(size - tail_size)
    tail = f.read(tail_size)
    at = len(tail) - _END.size if tail[-_END.size :][:4] == b"PK\x05\x06" else tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < _END.size:
        raise ModelFileError(f"{path}: not an fnn .npz file (no zip end record)")
    _, _, _, _, members, table, _, _ = _END.unpack_from(tail, at)
    if members > MAX_MEMBERS:
        raise ModelFileError(f"{path}: {members} members; the limit is {MAX_MEMBERS}")
    if table > MAX_CENTRAL_DIRECTORY:
        raise ModelFileError(f"{path}: member table of {table} bytes; the limit is {MAX_CENTRAL_DIRECTORY}")
    f.seek(0)


def _read_members(path, zf, size, check):
    infos = zf.infolist()
    if len(infos) > MAX_MEMBERS:
        raise ModelFileError(f"{path}: {len(infos)} members; the limit is {MAX_MEMBERS}")
    names = [i.filename for i in infos]
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise ModelFileError(f"{path}: duplicate member names {dup[:5]}")
    for name in names:
        if len(name) > MAX_NAME or name.count(".") > MAX_DEPTH:
            raise ModelFileError(f"{path}: member name {name!r:.60} is too long or too deep")
        if name != MANIFEST and not (name.endswith(".npy") and _NAME.fullmatch(name[:-4])):
            raise ModelFileError(f"{path}: unsafe or unexpected member name {name!r:.100}")
    for i in infos:
        if i.compress_type != zipfile.ZIP_STORED:
            raise ModelFileError(f"{path}: member {i.filename} is compressed; fnn files store members uncompressed")
        if i.compress_size != i.file_size:
            raise ModelFileError(f"{path}: member {i.filename} declares {i.file_size} bytes but stores {i.compress_size}")
    declared_total = sum(i.file_size for i in infos)
    if declared_total > min(size, MAX_TOTAL_BYTES):
        raise ModelFileError(f"{path}: members declare {declared_total} bytes, more than the file's {size} (or the limit)")
    if MANIFEST not in names:
        raise ModelFileError(f"{path}: no {MANIFEST}; not an fnn file")
    by_name = {i.filename: i for i in infos}
    manifest = _read_manifest(path, zf, by_name[MANIFEST])
    declared = manifest.get("arrays")
    if not isinstance(declared, dict):
        raise ModelFileError(f"{path}: manifest has no 'arrays' table")
    members = {n[:-4] for n in names if n != MANIFEST}
    if set(declared) != members:
        raise ModelFileError(
            f"{path}: manifest lists arrays {sorted(declared)[:6]} but the file holds {sorted(members)[:6]}"
        )
    if check is not None:
        check(manifest)
    items = []
    for name in names:
        if name == MANIFEST:
            continue
        items.append((name[:-4], _read_npy(path, zf, by_name[name], declared[name[:-4]])))
    try:
        return tree_unflatten(items), manifest
    except StructureError as e:
        raise ModelFileError(f"{path}: {e}") from None


def _read_manifest(path, zf, info):
    if info.file_size > MAX_MANIFEST_BYTES:
        raise ModelFileError(f"{path}: manifest is {info.file_size} bytes; the limit is {MAX_MANIFEST_BYTES}")
    with zf.open(info) as f:
        raw = f.read(MAX_MANIFEST_BYTES + 1)
    if len(raw) > MAX_MANIFEST_BYTES:
        raise ModelFileError(f"{path}: manifest is larger than {MAX_MANIFEST_BYTES} bytes")
    try:
        manifest = json.loads(raw.decode("utf-8"), parse_constant=_no_constants, parse_float=_finite_float)
    except (UnicodeDecodeError, json.JSONDecodeError, ValueError, RecursionError) as e:
        raise ModelFileError(f"{path}: manifest is not valid JSON ({str(e):.200})") from None
    if not isinstance(manifest, dict):
        raise ModelFileError(f"{path}: manifest must be a JSON object")
    if _depth(manifest) > MAX_DEPTH:
        raise ModelFileError(f"{path}: manifest is nested deeper than {MAX_DEPTH} levels")
    return manifest


def _no_constants(name):
    raise ValueError(f"{name} is not allowed in a manifest")


def _finite_float(text):
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text:.40} is out of range for a manifest number")
    return value


def _depth(value) -> int:
    """Nesting depth of a JSON value (a scalar is 0), without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, (dict, list)):
            deepest = max(deepest, level)
            stack.extend((child, level + 1) for child in (node.values() if isinstance(node, dict) else node))
    return deepest


def _read_npy(path, zf, info, declared):
    where = f"{path}: member {info.filename}"
    with zf.open(info) as f:
        magic = f.read(8)
        if len(magic) != 8 or magic[:6] != _MAGIC:
            raise ModelFileError(f"{where}: not a .npy array (bad magic)")
        major = magic[6]
        if major not in (1, 2, 3):
            raise ModelFileError(f"{where}: unknown .npy version {major}")
        size_bytes = f.read(2 if major == 1 else 4)
        hlen = int.from_bytes(size_bytes, "little") if len(size_bytes) in (2, 4) else -1
        if not 0 < hlen <= MAX_HEADER_BYTES:
            raise ModelFileError(f"{where}: .npy header of {hlen} bytes (limit {MAX_HEADER_BYTES})")
        header = f.read(hlen)
        if len(header) != hlen:
            raise ModelFileError(f"{where}: truncated .npy header")
        dtype, shape = _parse_header(where, header)
        if declared != {"dtype": dtype.str, "shape": list(shape)}:
            raise ModelFileError(f"{where}: holds {dtype.str}{list(shape)} but the manifest says {declared}")
        count = 1
        for d in shape:
            count *= d
        nbytes = count * dtype.itemsize
        if nbytes > MAX_ARRAY_BYTES:
            raise ModelFileError(f"{where}: array of {nbytes} bytes (limit {MAX_ARRAY_BYTES})")
        expected = len(magic) + len(size_bytes) + hlen + nbytes
        if info.file_size != expected:
            raise ModelFileError(f"{where}: member is {info.file_size} bytes, its header implies {expected}")
        data = f.read(nbytes)
        if len(data) != nbytes:
            raise ModelFileError(f"{where}: truncated array data")
    out = aligned_empty(shape, dtype)  # 64-byte aligned, as a training workspace's: predict reads it faster
    out[...] = np.frombuffer(data, dtype).reshape(shape)
    return out


def _parse_header(where, header):
    try:
        meta = ast.literal_eval(header.decode("latin1"))
    except (ValueError, SyntaxError, MemoryError, RecursionError) as e:
        raise ModelFileError(f"{where}: unreadable .npy header ({type(e).__name__})") from None
    if not isinstance(meta, dict) or set(meta) != {"descr", "fortran_order", "shape"}:
        raise ModelFileError(f"{where}: .npy header must have exactly descr, fortran_order and shape")
    descr, fortran, shape = meta["descr"], meta["fortran_order"], meta["shape"]
    if not isinstance(descr, str) or fortran is not False:
        raise ModelFileError(f"{where}: only plain C-ordered arrays are accepted (descr {descr!r:.40})")
    if not isinstance(shape, tuple) or len(shape) > 8 or not all(type(d) is int and 0 <= d < 1 << 40 for d in shape):
        raise ModelFileError(f"{where}: bad shape {shape!r:.80}")
    try:
        dtype = np.dtype(descr)
    except (TypeError, ValueError):
        raise ModelFileError(f"{where}: unknown dtype {descr!r:.40}") from None
    if dtype.kind not in ALLOWED_KINDS or dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None:
        raise ModelFileError(f"{where}: dtype {descr!r:.40} is not allowed (numeric and bool only)")
    return dtype, shape


# ---------------------------------------------------------------- models


class LoadedModel(NamedTuple):
    model: layers.Layer
    params: dict
    input_shape: tuple
    metadata: dict
    state: dict = {}  # the model's state (BatchNorm's running averages); {} for most models


FORMAT = "fnn.model"
FORMAT_VERSION = 1
STATE = "_state"  # the top-level key of the model state's arrays in a file (params keys never start with "_")


def _plain(value, where="metadata"):
    """``value`` with NumPy scalars and arrays as Python numbers and lists; NaN/Inf and other objects are refused."""
    if isinstance(value, dict):
        return {str(k): _plain(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist(), where)
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{where} is {value}: metadata numbers must be finite")
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"{where} is a {type(value).__name__}; metadata holds only JSON values (numbers, strings, lists, dicts)")


def save_model(path, model, params, input_shape, metadata=None, state=None) -> None:
    """Save ``params`` (and the model's ``state``) and ``model``'s architecture (its spec) to ``path`` (``.npz``), atomically.

    ``input_shape`` is what ``model.init`` was given (e.g. ``(-1, 784)``);
    ``metadata`` is any JSON object (class names, preprocessing, metrics).
    Refused before anything is written: a layer type :func:`load_model` could
    not rebuild (register custom layers with :func:`fnn.layers.register`),
    params or state that do not fit the architecture or hold NaN/Inf, and
    metadata that is not plain JSON.
    """
    from fnn.initializers import is_shape_only
    from fnn.layers.base import init_state

    path = file_path(path, "save_model", ValueError)
    if not isinstance(model, layers.Layer):
        raise TypeError(f"save_model(path, model, params, input_shape, ...) takes a Layer as model, got {type(model).__name__}")
    _check_buildable(model)
    try:
        input_shape = tuple(int(d) for d in input_shape)
    except (TypeError, ValueError):
        raise TypeError(f"save_model input_shape must be what model.init was given, e.g. (-1, 784); got {input_shape!r:.60}") from None
    check_params(path, params, model.init(None, input_shape)[1])
    placeholders = [p for p, leaf in tree_flatten(params) if is_shape_only(leaf)]
    if placeholders:
        raise ValueError(f"cannot save {path}: params {placeholders[0]} is a shape-only placeholder from init(None, ...): init with a key")
    state = {} if state is None else state
    if model.stateful or state:
        check_params(path, state, init_state(model, input_shape), "state")
    manifest = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "model": model.spec,
        "input_shape": list(input_shape),
        "metadata": _plain(metadata or {}),
        "state": bool(model.stateful),
    }
    save_arrays(path, {**params, STATE: state} if model.stateful else params, manifest)


def _check_buildable(model) -> None:
    """Refuse a model whose spec :func:`fnn.layers.build` cannot turn back into the same model."""
    try:
        rebuilt = layers.build(model.spec)
    except layers.SpecError as e:
        raise ValueError(
            f"cannot save this model: {e}. A layer of your own saves and loads once registered: "
            "decorate its factory with @fnn.layers.register(\"Name\") (or call fnn.layers.register(\"Name\", layer)), "
            "with spec={\"type\": \"Name\", ...its arguments}"
        ) from None
    if rebuilt.spec != model.spec:
        raise ValueError(f"cannot save this model: its spec does not rebuild it (got back {rebuilt.spec!r:.120})")


def load_model(path) -> LoadedModel:
    """Load a model saved by :func:`save_model`: ``(model, params, input_shape, metadata, state)``.

    The architecture is rebuilt from registered layer types only and sized
    with a shape-only ``init`` (no allocation); the arrays the file declares
    must have exactly the shapes and dtypes it implies, which is checked
    before any array is read, and be finite. The metadata keys fnn reads
    (``classes``, ``preprocessing``, ``dataset``, ``task``) are checked too.
    """
    path = file_path(path, "load_model")
    built = {}

    def check(manifest):
        built.update(_check_manifest(path, manifest))

    params, manifest = load_arrays(path, check)
    state = params.pop(STATE, {}) if built["model"].stateful else {}
    params = check_params(path, params, built["expected"])
    if built["model"].stateful:
        state = check_params(path, state, built["expected_state"], "state")
    return LoadedModel(built["model"], params, built["input_shape"], manifest.get("metadata", {}), state)


def _check_manifest(path, manifest) -> dict:
    """The model, its input shape and its expected (shape-only) params, from a manifest that must describe them."""
    if manifest.get("format") != FORMAT or manifest.get("version") != FORMAT_VERSION:
        raise ModelFileError(f"{path}: not an fnn model (format {manifest.get('format')!r:.40})")
    shape = manifest.get("input_shape")
    if not (isinstance(shape, list) and 1 <= len(shape) <= 8 and all(type(d) is int and -1 <= d < 1 << 31 and d != 0 for d in shape)):
        raise ModelFileError(f"{path}: bad input_shape {shape!r:.80}")
    metadata = manifest.get("metadata", {})
    if not isinstance(metadata, dict):
        raise ModelFileError(f"{path}: metadata must be a JSON object")
    try:
        model = layers.build(manifest.get("model"))
        out_shape, expected = model.init(None, tuple(shape))
    except layers.SpecError as e:
        raise ModelFileError(f"{path}: {e}") from None
    except (ValueError, TypeError, IndexError, OverflowError, RecursionError) as e:
        raise ModelFileError(f"{path}: the architecture does not fit input_shape {shape} ({e})") from None
    declared = manifest["arrays"]
    expected_state = {}
    if model.stateful:
        from fnn.layers.base import init_state

        try:
            expected_state = init_state(model, tuple(shape))
        except (ValueError, TypeError, IndexError, OverflowError, MemoryError) as e:
            raise ModelFileError(f"{path}: the architecture's state does not fit input_shape {shape} ({e})") from None
    for p, w in tree_flatten({**expected, STATE: expected_state} if model.stateful else expected):
        want = {"dtype": w.dtype.str, "shape": list(w.shape)}
        if p in declared and declared[p] != want:
            raise ModelFileError(f"{path}: parameter {p} is declared as {declared[p]!r:.80}, the architecture needs {want}")
    features = math.prod(shape[1:]) if all(d > 0 for d in shape[1:]) else None
    check_metadata(path, metadata, features, out_shape[-1])
    return {"model": model, "input_shape": tuple(shape), "expected": expected, "expected_state": expected_state}


def check_metadata(path, metadata, features, outputs) -> None:
    """Check the metadata keys fnn itself reads; raises :class:`ModelFileError`.

    ``classes``: one name per output; ``preprocessing``: ``mean``/``std``
    both absent or both finite (one number, or one per input feature), with
    ``std > 0``, ``grayscale`` a boolean and ``kind`` one of :data:`fnn.serving.pipelines.KINDS`
    (or the whole of it one of those names); ``dataset``: a name.
    """
    classes = metadata.get("classes")
    names = 2 if outputs == 1 else outputs  # a binary model: one logit, two classes
    if classes is not None and not (
        isinstance(classes, list) and len(classes) == names and all(isinstance(c, (str, int)) for c in classes)
    ):
        raise ModelFileError(f"{path}: metadata 'classes' must list {names} names, one per class")
    if not isinstance(metadata.get("dataset", ""), str):
        raise ModelFileError(f"{path}: metadata 'dataset' must be a name")
    if "task" in metadata:
        from fnn import tasks

        try:
            tasks.from_name(metadata["task"])
        except ValueError as e:
            raise ModelFileError(f"{path}: metadata 'task': {e}") from None
    from fnn.serving.pipelines import KINDS

    prep = metadata.get("preprocessing") or {}
    if isinstance(prep, str) and prep not in KINDS:
        raise ModelFileError(f"{path}: metadata 'preprocessing' {prep!r:.40} is not one of {', '.join(KINDS)}")
    prep = preprocessing_of(metadata)
    if not isinstance(prep, dict) or not isinstance(prep.get("grayscale", False), bool):
        raise ModelFileError(f"{path}: metadata 'preprocessing' must be an object (grayscale true or false) or one of "
                             f"{', '.join(KINDS)}")
    if prep.get("kind") is not None and prep["kind"] not in KINDS:
        raise ModelFileError(f"{path}: metadata 'preprocessing' kind {prep['kind']!r:.40} is not one of {', '.join(KINDS)}")
    mean, std = prep.get("mean"), prep.get("std")
    if mean is None and std is None:
        return
    for name, value in (("mean", mean), ("std", std)):
        values = value if isinstance(value, list) else [value]
        numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
        if not numbers or (isinstance(value, list) and features is not None and len(values) != features):
            raise ModelFileError(f"{path}: preprocessing {name} must be a number or {features} numbers")
        if name == "std" and min(values, default=0) <= 0:
            raise ModelFileError(f"{path}: preprocessing std must be > 0")


def preprocessing_of(metadata):
    """A model's ``preprocessing`` metadata as an object: ``{"kind": name}`` when it is given as a bare name
    (``"digits"``, ``"fashion"``, ``"rgb32"``, ``"none"``: see :mod:`fnn.serving.pipelines`), ``{}`` when absent."""
    prep = (metadata or {}).get("preprocessing") or {}
    return {"kind": prep} if isinstance(prep, str) else prep


def standardization(metadata) -> tuple:
    """``(mean, std)`` float32 arrays from a loaded model's ``preprocessing`` metadata, or ``(None, None)``.

    :func:`check_metadata` has vetted them at load: both finite, ``std > 0``,
    one number or one per input feature. A model's input is ``(x - mean) / std``.
    """
    prep = preprocessing_of(metadata)
    if prep.get("mean") is None:
        return None, None
    return np.asarray(prep["mean"], np.float32), np.asarray(prep["std"], np.float32)


def check_params(path, params, expected, what="parameters") -> dict:
    """Check ``params`` against ``expected`` (layout, shapes, dtypes, finiteness); return it in ``expected``'s layout.

    Layers without parameters (``{}``) have no arrays in a file; the returned
    tree has them back. ``what`` names the tree in messages (a checkpoint's
    ``opt_state``, say). Raises :class:`ModelFileError` on any mismatch.
    """
    got, want = dict(tree_flatten(params)), dict(tree_flatten(expected))
    if got.keys() != want.keys():
        raise ModelFileError(f"{path}: {what} {sorted(got)[:8]} do not fit the architecture, which needs {sorted(want)[:8]}")
    for p, w in want.items():
        g, w = np.asarray(got[p]), np.asarray(w)
        if g.shape != w.shape or g.dtype != w.dtype:
            raise ModelFileError(f"{path}: {what} {p} is {g.dtype}{g.shape}, the architecture needs {w.dtype}{w.shape}")
        if g.dtype.kind == "f" and not np.isfinite(g).all():
            raise ModelFileError(f"{path}: {what} {p} holds NaN or Inf")
    return tree_map_with_path(lambda p, _: got[p], expected)


__all__ = ["ModelFileError", "OutputError", "LoadedModel", "file_path", "atomic_write", "check_output", "open_append",
           "remove_temporaries", "open_regular", "read_regular", "npy_header", "save_arrays", "load_arrays", "save_model",
           "load_model", "check_params", "check_metadata", "preprocessing_of", "standardization"]
