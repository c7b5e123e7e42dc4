"""Save/load: bit-identical round trips; hostile files refused without running code."""

import io
import json
import os
import zipfile

import numpy as np
import pytest

import fnn
from fnn import layers, random
from fnn import serialization as fio
from fnn.tree import tree_equal


@pytest.fixture
def saved(tmp_path):
    model = layers.serial(layers.Dense(5), layers.Tanh, layers.Dropout(0.2), layers.Dense(3), layers.Softmax)
    _, params = model.init(random.key(0), (-1, 4))
    path = tmp_path / "m.npz"
    fio.save_model(path, model, params, (-1, 4), {"classes": ["a", "b", "c"], "note": "hi"})
    return path, model, params


def test_roundtrip_is_bit_identical(saved):
    path, model, params = saved
    loaded = fio.load_model(path)
    assert tree_equal(loaded.params, params)
    assert all(a.ctypes.data % 64 == 0 and a.flags.writeable for a in fnn.tree.tree_leaves(loaded.params)), "aligned, own arrays"
    assert loaded.model.spec == model.spec
    assert loaded.input_shape == (-1, 4) and loaded.metadata["classes"] == ["a", "b", "c"]
    x = random.normal(random.key(1), (7, 4))
    np.testing.assert_array_equal(loaded.model.apply(loaded.params, x), model.apply(params, x))
    with np.load(path, allow_pickle=False) as npz:  # plain numpy reads the arrays too
        np.testing.assert_array_equal(npz["0.w"], params["0"]["w"])


def _rewrite(path, members):
    """Write a zip with the given {name: bytes} members."""
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members:
            zf.writestr(name, data)


def _members(path):
    with zipfile.ZipFile(path) as zf:
        return [(n, zf.read(n)) for n in zf.namelist()]


def _npy(arr, allow_pickle=False):
    buf = io.BytesIO()
    np.lib.format.write_array(buf, arr, allow_pickle=allow_pickle)
    return buf.getvalue()


class Sentinel:
    """Unpickling this writes a file: proof that code ran."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_object_array_is_refused_and_runs_no_code(saved, tmp_path):
    path, _, _ = saved
    sentinel = tmp_path / "pwned"
    evil = np.empty(1, dtype=object)
    evil[0] = Sentinel(str(sentinel))
    members = [(n, _npy(evil, allow_pickle=True) if n == "0.w.npy" else d) for n, d in _members(path)]
    _rewrite(path, members)
    with pytest.raises(fio.ModelFileError, match="0.w"):
        fio.load_model(path)
    assert not sentinel.exists()


@pytest.mark.parametrize("kind", ["Evil", "os.system", "builtins:eval"])
def test_unknown_layer_type_is_refused(saved, kind):
    path, _, _ = saved
    members = _members(path)
    manifest = json.loads(dict(members)["manifest.json"])
    manifest["model"]["layers"][1] = {"type": kind}
    _rewrite(path, [(n, json.dumps(manifest) if n == "manifest.json" else d) for n, d in members])
    with pytest.raises(fio.ModelFileError, match="unknown layer type"):
        fio.load_model(path)


def test_shape_mismatch_and_nonfinite_weights_are_refused_when_saved_and_when_loaded(saved, tmp_path):
    path, model, params = saved
    other = layers.serial(layers.Dense(6), layers.Tanh, layers.Dropout(0.2), layers.Dense(3), layers.Softmax)
    with pytest.raises(fio.ModelFileError, match="architecture needs"):
        fio.save_model(tmp_path / "o.npz", other, params, (-1, 4))  # refused before anything is written
    bad = {k: dict(v) for k, v in params.items()}
    bad["3"]["b"] = np.array([0, np.nan, 0], np.float32)
    with pytest.raises(fio.ModelFileError, match="NaN or Inf"):
        fio.save_model(tmp_path / "n.npz", model, bad, (-1, 4))
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != path.name) == []
    # the same files written by hand are refused by load_model
    manifest = {"format": "fnn.model", "version": 1, "input_shape": [-1, 4], "metadata": {}}
    fio.save_arrays(tmp_path / "o.npz", params, {**manifest, "model": other.spec})
    with pytest.raises(fio.ModelFileError, match="architecture needs"):
        fio.load_model(tmp_path / "o.npz")
    fio.save_arrays(tmp_path / "n.npz", bad, {**manifest, "model": model.spec})
    with pytest.raises(fio.ModelFileError, match="NaN or Inf"):
        fio.load_model(tmp_path / "n.npz")


@pytest.mark.parametrize("data", [b"", b"not a zip", b"PK\x03\x04garbage"])
def test_garbage_is_a_named_error(tmp_path, data):
    p = tmp_path / "g.npz"
    p.write_bytes(data)
    with pytest.raises(fio.ModelFileError):
        fio.load_model(p)
    with pytest.raises(fio.ModelFileError, match="no such file"):
        fio.load_model(tmp_path / "missing.npz")


@pytest.mark.parametrize("name", ["../evil.npy", "/abs.npy", "a/b.npy", "0.w.npy"])
def test_unsafe_or_duplicate_member_names(saved, name):
    path, _, _ = saved
    members = _members(path) + [(name, _npy(np.zeros(3, np.float32)))]
    with pytest.warns(UserWarning) if name == "0.w.npy" else _nothing():
        _rewrite(path, members)
    with pytest.raises(fio.ModelFileError, match="duplicate|unsafe"):
        fio.load_model(path)


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_oversized_manifest_and_header(saved, monkeypatch):
    path, _, _ = saved
    members = _members(path)
    big = json.dumps({**json.loads(dict(members)["manifest.json"]), "pad": "x" * (fio.MAX_MANIFEST_BYTES + 10)})
    _rewrite(path, [(n, big if n == "manifest.json" else d) for n, d in members])
    with pytest.raises(fio.ModelFileError, match="manifest is"):
        fio.load_model(path)
    header = b"\x93NUMPY\x01\x00" + (60000).to_bytes(2, "little") + b" " * 60000
    _rewrite(path, [(n, header if n == "0.w.npy" else d) for n, d in members])
    with pytest.raises(fio.ModelFileError, match="header"):
        fio.load_model(path)


def test_atomic_write_keeps_the_old_file_when_writing_fails(saved):
    path, model, params = saved
    before = path.read_bytes()

    def failing(f):
        f.write(b"half")
        raise OSError("No space left on device")

    with pytest.raises(OSError):
        fio.atomic_write(path, failing)
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")] == []
    assert fnn.load_model(path).metadata["note"] == "hi"
    assert os.path.getsize(path) == len(before)


def test_saved_files_get_the_usual_permissions(saved):
    path, _, _ = saved
    mask = os.umask(0)
    os.umask(mask)
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~mask
