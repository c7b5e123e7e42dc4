"""Issue 8, point 1: model and checkpoint files are refused with ModelFileError, and nothing else.

Property-based: 1000 files made by hypothesis from real saved files (truncated,
bit-flipped, manifests and .npy headers rewritten, members added, dropped or
compressed), plus random bytes and random zips. Each goes to ``load_model``
(and, for checkpoints, ``load_checkpoint``) under tracemalloc: the only
exception allowed is ModelFileError, and the peak of memory allocated stays
under a fixed small bound, so no limit is checked after the allocation it
guards.

Then well-formed but hostile files, one test each (tests/test_io.py has the
first few: a pickling object array, unknown layer types, a shape mismatch and
NaN weights, garbage, unsafe and duplicate names, an oversized manifest and
header).
"""

import io
import json
import os
import re
import struct
import tempfile
import threading
import tracemalloc
import warnings
import zipfile
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import fnn
from fnn import layers, random
from fnn import serialization as fio
from fnn.training.experiment import load_checkpoint

PEAK_LIMIT = 8 << 20  # bytes: far below anything an attacker could make the loader allocate


class Sentinel:
    """Unpickling this writes a file: proof that code ran."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def npy(arr, allow_pickle=False) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, arr, allow_pickle=allow_pickle)
    return buf.getvalue()


def npy_header(meta: dict, version=1) -> bytes:
    """A .npy header for ``meta`` (any dict), with no data after it."""
    text = repr(meta).encode("utf-8")
    text += b" " * (-(len(text) + 11) % 64) + b"\n"
    size = struct.pack("<H", len(text)) if version == 1 else struct.pack("<I", len(text))
    return b"\x93NUMPY" + bytes([version, 0]) + size + text


def zip_bytes(members, compression=zipfile.ZIP_STORED) -> bytes:
    """A zip of ``[(name, bytes), ...]`` in that order, as given (duplicates included)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for name, data in members:
            zf.writestr(name, data)
    return buf.getvalue()


def members_of(data: bytes):
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return [(n, zf.read(n)) for n in zf.namelist()]


def with_manifest(data: bytes, change) -> bytes:
    """The file ``data`` with its manifest replaced by ``change(manifest)`` (a dict or raw text)."""
    members = members_of(data)
    manifest = json.loads(dict(members)["manifest.json"])
    new = change(manifest)
    text = new if isinstance(new, (str, bytes)) else json.dumps(new)
    return zip_bytes([(n, text if n == "manifest.json" else d) for n, d in members])


def with_member(data: bytes, name: str, content: bytes) -> bytes:
    return zip_bytes([(n, content if n == name else d) for n, d in members_of(data)])


# ---------------------------------------------------------------- real files to start from


def _model_bytes():
    model = layers.serial(layers.Dense(5), layers.Tanh, layers.Dropout(0.2), layers.Dense(3), layers.Softmax)
    _, params = model.init(random.key(0), (-1, 4))
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "m.npz")
        fio.save_model(path, model, params, (-1, 4), {"classes": ["a", "b", "c"], "dataset": "toy",
                                                      "preprocessing": {"mean": [0.5] * 4, "std": [2.0] * 4}})
        return open(path, "rb").read()


def _checkpoint_bytes():
    """The checkpoint of a real one-epoch run on a tiny dataset."""
    from fnn.datasets.base import Dataset
    from fnn.training.config import FitConfig
    from fnn.training.experiment import fit_config

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (60, 4, 4), dtype=np.uint8)
    y = rng.integers(0, 3, 60)
    ds = Dataset("toy", x, y, x[:10], y[:10], ["a", "b", "c"], "memory", {})
    with tempfile.TemporaryDirectory() as d:
        fit_config(FitConfig(arch=(16, 6, 3), epochs=1, batch_size=16, dataset="toy"), d, dataset=ds)
        return open(os.path.join(d, "checkpoint.npz"), "rb").read()


MODEL = _model_bytes()
CHECKPOINT = _checkpoint_bytes()
SEEDS = {"model": MODEL, "checkpoint": CHECKPOINT}


# ---------------------------------------------------------------- the property: ModelFileError and nothing else

_WORK = tempfile.mkdtemp(prefix="fnn-fuzz-")

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63) | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)


@st.composite
def truncated(draw):
    seed = SEEDS[draw(st.sampled_from(sorted(SEEDS)))]
    return seed[: draw(st.integers(0, len(seed) - 1))]


@st.composite
def bit_flipped(draw):
    data = bytearray(SEEDS[draw(st.sampled_from(sorted(SEEDS)))])
    for pos in draw(st.lists(st.integers(0, len(data) * 8 - 1), min_size=1, max_size=12)):
        data[pos // 8] ^= 1 << (pos % 8)
    return bytes(data)


@st.composite
def random_bytes(draw):
    prefix = draw(st.sampled_from([b"", b"PK\x03\x04", b"PK\x05\x06", b"\x93NUMPY\x01\x00"]))
    return prefix + draw(st.binary(max_size=3000))


@st.composite
def random_zip(draw):
    names = st.sampled_from(["manifest.json", "0.w.npy", "0.b.npy", "../x.npy", "/abs.npy", "a/b.npy", "x.pkl",
                             "3.w.npy", "params.0.w.npy", "0.w.npy/", "manifest.json.npy"]) | st.text(max_size=20)
    contents = st.binary(max_size=400) | json_values.map(lambda v: json.dumps(v).encode()) | st.sampled_from(
        [npy(np.zeros((4, 5), np.float32)), npy(np.array([1.0, np.inf], np.float32)), npy(np.arange(3))])
    members = draw(st.lists(st.tuples(names, contents), max_size=6))
    method = draw(st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA]))
    buf = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(buf, "w", method) as zf:
        warnings.simplefilter("ignore")  # duplicate names are the point
        for name, data in members:
            try:
                zf.writestr(name, data)
            except (ValueError, UnicodeEncodeError, IndexError):  # names zipfile itself will not write
                pass
    return buf.getvalue()


def _set_at(tree, path, value):
    """``tree`` with the value at ``path`` (a list of keys/indices, cut where it stops fitting) replaced."""
    if not path or not isinstance(tree, (dict, list)) or not tree:
        return value
    keys = list(tree) if isinstance(tree, dict) else list(range(len(tree)))
    key = path[0] if isinstance(path[0], str) else keys[path[0] % len(keys)]
    out = dict(tree) if isinstance(tree, dict) else list(tree)
    out[key] = _set_at(tree[key], path[1:], value)
    return out


@st.composite
def manifest_rewritten(draw):
    """A real file whose manifest has one value replaced anywhere (format, model spec, shapes, metadata, config...)."""
    seed = SEEDS[draw(st.sampled_from(sorted(SEEDS)))]
    path = draw(st.lists(st.integers(0, 50), min_size=1, max_size=6))
    value = draw(json_values | st.sampled_from([{"type": "os.system"}, {"type": "Dense", "units": 10**9},
                                                {"type": "Dense", "units": 3, "w_init": "os.system"},
                                                {"dtype": "|O", "shape": [3]}, [-1, 10**9], {"type": "serial", "layers": []}]))
    return with_manifest(seed, lambda m: _set_at(m, path, value))


@st.composite
def header_rewritten(draw):
    """A real file with one .npy header replaced by a random or plausible-but-wrong one."""
    seed = SEEDS[draw(st.sampled_from(sorted(SEEDS)))]
    members = members_of(seed)
    arrays = [n for n, _ in members if n.endswith(".npy")]
    name = draw(st.sampled_from(arrays))
    shape = tuple(draw(st.lists(st.integers(0, 2**40), max_size=4)))
    meta = {"descr": draw(st.sampled_from(["<f4", "<f8", ">f4", "|O", "<c8", "|V8", "<U4", "<M8[s]", [("a", "|O")], "f4x"])),
            "fortran_order": draw(st.booleans()), "shape": shape}
    if draw(st.booleans()):
        meta[draw(st.text(max_size=4))] = draw(json_values)
    header = npy_header(meta, draw(st.sampled_from([1, 2, 3]))) + draw(st.binary(max_size=64))
    return zip_bytes([(n, header if n == name else d) for n, d in members])


@st.composite
def restructured(draw):
    """Members of a real file dropped, duplicated, renamed, reordered or compressed."""
    seed = SEEDS[draw(st.sampled_from(sorted(SEEDS)))]
    members = members_of(seed)
    op = draw(st.sampled_from(["drop", "duplicate", "rename", "shuffle", "compress", "extra"]))
    i = draw(st.integers(0, len(members) - 1))
    if op == "drop":
        members = members[:i] + members[i + 1 :]
    elif op == "duplicate":
        members = members + [members[i]]
    elif op == "rename":
        members[i] = (draw(st.sampled_from(["../0.w.npy", "0.w", "0..w.npy", "0.W.npy", "zz.npy", "manifest.JSON"])), members[i][1])
    elif op == "shuffle":
        members = draw(st.permutations(members))
    elif op == "extra":
        members = members + [("extra.npy", npy(np.zeros(2, np.float32)))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about duplicate names
        return zip_bytes(members, zipfile.ZIP_DEFLATED if op == "compress" else zipfile.ZIP_STORED)


KINDS = [truncated, bit_flipped, random_bytes, random_zip, manifest_rewritten, header_rewritten, restructured]


def load_everything(data: bytes):
    """Feed ``data`` to load_model and load_checkpoint under tracemalloc; returns what each did and the peak."""
    path = os.path.join(_WORK, "fuzz.npz")
    with open(path, "wb") as f:
        f.write(data)
    outcomes = []
    tracemalloc.start()
    try:
        for load in (fio.load_model, load_checkpoint):
            try:
                result = load(path)
            except fio.ModelFileError as e:
                assert str(e).startswith(path), e  # the message names the file
                outcomes.append("refused")
            else:
                outcomes.append(result)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return outcomes, peak


@pytest.mark.parametrize("kind", KINDS, ids=[k.__name__ for k in KINDS])
@settings(max_examples=-(-1000 // len(KINDS)), derandomize=True, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example])
@given(source=st.data())
def test_1000_broken_files_get_model_file_error_and_nothing_else(kind, source):
    """143 files of each of the 7 kinds: only ModelFileError, and a small peak of memory whatever the file says."""
    data = source.draw(kind())
    (model, checkpoint), peak = load_everything(data)
    event(f"model {'refused' if model == 'refused' else 'loaded'}, checkpoint {'refused' if checkpoint == 'refused' else 'loaded'}")
    assert peak < PEAK_LIMIT, f"loading a {len(data)}-byte file allocated {peak} bytes"
    if model != "refused":  # a flip that missed everything that matters (e.g. a timestamp): a sound model
        assert all(np.isfinite(a).all() for a in fnn.tree.tree_leaves(model.params))
        model.model.apply(model.params, np.ones((2, 4), np.float32))
    if checkpoint != "refused":
        assert checkpoint["config"].arch == (16, 6, 3)


def test_the_seeds_themselves_load():
    (model, checkpoint), _ = load_everything(MODEL)
    assert model.metadata["classes"] == ["a", "b", "c"]
    assert load_everything(CHECKPOINT)[0][1]["epoch"] == 1


# ---------------------------------------------------------------- hostile but well-formed files


def write(tmp_path, data, name="evil.npz"):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def refused(path, match):
    """Load ``path``, expecting ModelFileError naming it and then matching ``match``; returns tracemalloc's peak."""
    tracemalloc.start()
    try:
        with pytest.raises(fio.ModelFileError) as e:
            fio.load_model(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    message = str(e.value)
    assert message.startswith(f"{path}: "), message
    assert re.search(match, message[len(str(path)) :]), message  # not in the path (test names hold the same words)
    return peak


@pytest.mark.parametrize("descr", ["|O", [("a", "<f4"), ("b", "|O")], "<U8", "|V8", "<c8", "<M8[s]"])
def test_object_structured_and_exotic_dtypes_are_refused_and_unpickle_nothing(tmp_path, descr):
    sentinel = tmp_path / "pwned"
    evil = np.empty(1, dtype=object)
    evil[0] = Sentinel(str(sentinel))
    if descr == "|O":
        payload = npy(evil, allow_pickle=True)
    else:
        payload = npy_header({"descr": descr, "fortran_order": False, "shape": (4, 5)}) + b"\0" * 400
    for seed, loader in ((MODEL, fio.load_model), (CHECKPOINT, load_checkpoint)):
        name = "0.w.npy" if seed is MODEL else "params.0.w.npy"
        path = write(tmp_path, with_member(seed, name, payload))
        with pytest.raises(fio.ModelFileError, match=r"0\.w"):
            loader(path)
    assert not sentinel.exists()


@pytest.mark.parametrize(
    "spec, match",
    [
        ({"type": "fnn.layers.Dense", "units": 5}, "unknown layer type"),  # a Python path to a real layer
        ({"type": "numpy.load"}, "unknown layer type"),
        ({"type": "__import__('os').system('touch pwned')"}, "unknown layer type"),
        ({"type": "serial", "layers": [{"type": "serial", "layers": [{"type": "subprocess.Popen"}]}]}, "unknown layer type"),
        ({"type": "Dense", "units": 5, "w_init": "os.system"}, "unknown initializer"),
        ({"type": "Dense", "units": 5, "__class__": "object"}, "bad arguments"),
        ({"type": "Dense", "units": {"__reduce__": "os.system"}}, "must be a number or a name"),
        ({"type": "Relu", "fn": "eval"}, "takes no arguments"),
        ({"type": "LeakyRelu", "alpha": "1e400"}, "alpha must be a finite number"),
        ({"type": "LeakyRelu", "alpha": "nan"}, "alpha must be a finite number"),
        ({"type": "Dropout", "rate": "nan"}, "dropout rate"),
        (["Dense", 5], "layer spec must be an object"),
    ],
)
def test_layers_outside_the_registry_or_named_by_python_paths_are_refused(tmp_path, spec, match):
    def change(m):
        m["model"]["layers"][0] = spec
        return m

    path = write(tmp_path, with_manifest(MODEL, change))
    refused(path, match)
    assert not (tmp_path / "pwned").exists() and not os.path.exists("pwned")


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda m: {**m, "arrays": {**m["arrays"], "0.w": {"dtype": "<f4", "shape": [4, 6]}}}, r"0\.w"),  # manifest vs header
        (lambda m: {**m, "input_shape": [-1, 5]}, r"parameter 0\.w is declared"),  # architecture vs arrays
        (lambda m: _set_at(m, ["model", "layers", 3, "units"], 4), r"parameter 3\.w is declared"),
        (lambda m: {**m, "arrays": {**m["arrays"], "3.b": {"dtype": "<f8", "shape": [3]}}}, r"3\.b"),
        (lambda m: {**m, "input_shape": [-1, -1]}, "does not fit input_shape"),
        (lambda m: {**m, "input_shape": [-1, 2**40]}, "bad input_shape"),
        (lambda m: _set_at(m, ["model", "layers"], [{"type": "Tanh"}, *m["model"]["layers"][:1], *m["model"]["layers"][2:]]),
         "do not fit the architecture"),  # the same layers, shifted: parameters under other names
    ],
)
def test_shapes_that_disagree_with_the_architecture_are_refused(tmp_path, change, match):
    refused(write(tmp_path, with_manifest(MODEL, change)), match)


def test_shapes_disagreeing_in_the_arrays_themselves_are_refused(tmp_path):
    wrong = npy(np.zeros((5, 4), np.float32))  # transposed: same size, other shape
    refused(write(tmp_path, with_member(MODEL, "0.w.npy", wrong)), r"0\.w")
    big_endian = npy(np.zeros((4, 5), ">f4"))
    path = write(tmp_path, with_manifest(with_member(MODEL, "0.w.npy", big_endian),
                                         lambda m: _set_at(m, ["arrays", 0], {"dtype": ">f4", "shape": [4, 5]})))
    refused(path, r"0\.w")


@pytest.mark.parametrize("value", [np.inf, -np.inf, np.nan])
@pytest.mark.parametrize("where", ["0.w.npy", "3.b.npy"])
def test_nan_or_inf_anywhere_in_the_weights_is_refused(tmp_path, value, where):
    members = dict(members_of(MODEL))
    arr = np.load(io.BytesIO(members[where]))
    arr.flat[arr.size // 2] = value
    refused(write(tmp_path, with_member(MODEL, where, npy(arr))), r"holds NaN or Inf")


@pytest.mark.parametrize("text", ['{"units": 1e400}', '{"units": -1e999}', '{"x": NaN}', '{"x": Infinity}'])
def test_non_finite_numbers_in_the_manifest_are_refused(tmp_path, text):
    def change(m):
        return json.dumps(m)[:-1] + ', "extra": ' + text + "}"

    refused(write(tmp_path, with_manifest(MODEL, change)), "not valid JSON")


@pytest.mark.parametrize(
    "name, match",
    [
        ("..\\evil.npy", "unsafe"),
        ("./0.w.npy", "unsafe"),
        ("0.w.npy\\..\\..\\x.npy", "unsafe"),
        ("C:/evil.npy", "unsafe"),
        (".npy", "unsafe"),
        ("manifest.json", "duplicate"),
        ("a" * 2000 + ".npy", "too long"),
        (".".join("a" * 40) + ".npy", "too deep"),
    ],
)
def test_more_unsafe_member_names(tmp_path, name, match):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = zip_bytes(members_of(MODEL) + [(name, npy(np.zeros(2, np.float32)))])
    refused(write(tmp_path, data), match)


def test_a_header_length_pointing_past_the_member_or_beyond_the_limit(tmp_path):
    for version, size in ((1, 4000), (2, 1 << 30), (3, 5000)):
        fmt = "<H" if version == 1 else "<I"
        member = b"\x93NUMPY" + bytes([version, 0]) + struct.pack(fmt, size) + b"{'descr': '<f4'"
        refused(write(tmp_path, with_member(MODEL, "0.w.npy", member)), "header")


# ---------------------------------------------------------------- limits before allocation


def test_an_absurd_architecture_is_refused_without_allocating(tmp_path):
    """Dense(10**9) (4 TB of weights) and a 10**9-wide input: sized by a shape-only init, never allocated."""
    cases = [
        lambda m: _set_at(m, ["model", "layers", 0, "units"], 10**9),
        lambda m: {**m, "input_shape": [-1, 10**9]},
        lambda m: _set_at({**m, "arrays": {**m["arrays"], "0.w": {"dtype": "<f4", "shape": [4, 10**9]}}},
                          ["model", "layers", 0, "units"], 10**9),
    ]
    for change in cases:
        peak = refused(write(tmp_path, with_manifest(MODEL, change)), r"parameter 0\.[wb] is declared")
        assert peak < 1 << 20, peak


def _bomb_member(declared: int, compressed=True) -> tuple:
    """A .npy member of ``declared`` bytes of zeros (float32), DEFLATE-compressed to a few KB per MB."""
    count = (declared - 128) // 4
    header = npy_header({"descr": "<f4", "fortran_order": False, "shape": (count,)})
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    chunk = packer.compress(b"\0" * (1 << 20))
    body = packer.compress(header) + chunk * (declared >> 20) + packer.flush()
    return count, header, body


def raw_zip(entries) -> bytes:
    """A zip written by hand from ``[(name, payload, declared_size, method), ...]``: sizes may lie."""
    body, central = b"", b""
    for name, payload, declared, method in entries:
        n = name.encode()
        crc = zlib.crc32(payload) if method == zipfile.ZIP_STORED else 0
        fields = (20, 0, method, 0, 0x21, crc, len(payload), declared, len(n), 0)
        central += struct.pack("<4s2H4H3L5H2L", b"PK\x01\x02", 20, *fields, 0, 0, 0, 0, len(body)) + n
        body += struct.pack("<4s5H3L2H", b"PK\x03\x04", *fields) + n + payload
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(entries), len(entries), len(central), len(body), 0)
    return body + central + end


def test_a_zip_bomb_is_refused_before_decompressing(tmp_path, monkeypatch):
    """A 2 GB member DEFLATEd into ~2 MB, or a stored one declaring 2 GB in a tiny file: refused, nothing inflated."""
    count, header, body = _bomb_member(2 << 30)
    manifest = json.loads(dict(members_of(MODEL))["manifest.json"])
    manifest["arrays"]["0.w"] = {"dtype": "<f4", "shape": [count]}
    others = [(n, d, len(d), zipfile.ZIP_STORED) for n, d in members_of(MODEL) if n not in ("manifest.json", "0.w.npy")]
    text = json.dumps(manifest).encode()
    bomb = raw_zip([("manifest.json", text, len(text), 0), ("0.w.npy", body, 2 << 30, zipfile.ZIP_DEFLATED), *others])
    path = write(tmp_path, bomb)
    assert path.stat().st_size < 3 << 20
    assert zipfile.ZipFile(path).getinfo("0.w.npy").file_size == 2 << 30  # zipfile reads it as a 2 GB member

    def no_inflating(*args, **kwargs):
        raise AssertionError("a decompressor was created")

    monkeypatch.setattr(zlib, "decompressobj", no_inflating)
    assert refused(path, "compressed") < 1 << 20
    # stored, but declaring 2 GB that the file does not hold (or that the member does not store)
    short = header + b"\0" * 64
    lying = raw_zip([("manifest.json", text, len(text), 0), ("0.w.npy", short, 2 << 30, 0), *others])
    assert refused(write(tmp_path, lying, "lying.npz"), "declares 2147483648 bytes but stores") < 1 << 20
    missing = raw_zip([("manifest.json", text, len(text), 0), ("0.w.npy", short, 2 << 30, 0), *others])
    missing = missing.replace(struct.pack("<L", len(short)) + struct.pack("<L", 2 << 30), struct.pack("<LL", 2 << 30, 2 << 30))
    assert refused(write(tmp_path, missing, "missing.npz"), "more than the file") < 1 << 20


def test_member_count_and_member_table_are_checked_before_zipfile_reads_the_table(tmp_path, monkeypatch):
    many = zip_bytes([(f"{i}.npy", b"") for i in range(fio.MAX_MEMBERS + 1)])
    end = many[-22:]
    # an end record that claims 65535 members and a 4 GB member table, in a 1 KB file
    fake = zip_bytes(members_of(MODEL))[:-22] + struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 65535, 65535, 0xFFFFFF00,
                                                             0, 0)
    assert end[:4] == b"PK\x05\x06"

    table = zip_bytes(members_of(MODEL))[:-22] + struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 3, 3, 64 << 20, 0, 0)

    def never(*args, **kwargs):
        raise AssertionError("zipfile read the member table")

    monkeypatch.setattr(fio.zipfile, "ZipFile", never)
    for data, match in ((many, f"{fio.MAX_MEMBERS + 1} members"), (fake, "65535 members"), (table, "member table")):
        assert refused(write(tmp_path, data), match) < 1 << 20


@pytest.mark.parametrize("depth", [fio.MAX_DEPTH + 1, 200, 20_000])
def test_deeply_nested_json_is_refused(tmp_path, depth):
    nested = "[" * depth + "]" * depth
    for place in ("metadata", "model"):
        def change(m, place=place):
            return json.dumps({**m, place: "@"}).replace('"@"', nested if place == "metadata" else
                                                         '{"type": "serial", "layers": [' * depth + "]}" * depth)
        peak = refused(write(tmp_path, with_manifest(MODEL, change)), "nested deeper|not valid JSON")
        assert peak < PEAK_LIMIT


@pytest.mark.parametrize(
    "metadata, match",
    [
        ({"classes": ["a", "b"]}, "one per class"),
        ({"classes": {"0": "a"}}, "one per class"),
        ({"classes": "abc"}, "one per class"),
        ({"classes": [["a"], "b", "c"]}, "one per class"),
        ({"preprocessing": {"mean": 0.5, "std": 0}}, "std must be > 0"),
        ({"preprocessing": {"mean": [0.5] * 3, "std": [1.0] * 3}}, "4 numbers"),
        ({"preprocessing": {"mean": "0.5", "std": 1.0}}, "mean must be"),
        ({"preprocessing": {"mean": 0.5}}, "std must be"),
        ({"preprocessing": {"mean": [0.5, True, 1, 1], "std": 1}}, "mean must be"),
        ({"preprocessing": {"grayscale": "yes"}}, "grayscale"),
        ({"preprocessing": [1, 2]}, "must be an object"),
        ({"dataset": ["/etc/passwd"]}, "'dataset' must be a name"),
    ],
)
def test_metadata_fnn_reads_is_checked(tmp_path, metadata, match):
    refused(write(tmp_path, with_manifest(MODEL, lambda m: {**m, "metadata": metadata})), match)


@pytest.mark.parametrize("kind", ["folder", "fifo", "device"])
def test_folders_fifos_and_devices_are_refused_without_blocking(tmp_path, kind):
    path = {"folder": tmp_path, "device": "/dev/zero"}.get(kind)
    if kind == "fifo":
        path = tmp_path / "pipe.npz"
        os.mkfifo(path)
    outcome = []
    worker = threading.Thread(target=lambda: outcome.append(_error_of(path)), daemon=True)
    worker.start()
    worker.join(10)
    assert outcome and isinstance(outcome[0], fio.ModelFileError), outcome
    assert "folder" in str(outcome[0]) if kind == "folder" else "not a regular file" in str(outcome[0])


def _error_of(path):
    try:
        fio.load_model(path)
    except Exception as e:  # noqa: BLE001 -- the test checks which
        return e
    return None


def test_fnn_still_writes_what_it_reads(tmp_path):
    """The limits refuse nothing fnn itself writes: a model with every layer type, and the real checkpoint."""
    model = layers.serial(layers.Flatten, layers.Dense(7), layers.LeakyRelu(0.1), layers.Dropout(0.5), layers.Dense(6),
                          layers.Sigmoid, layers.Dense(5), layers.Relu, layers.Identity, layers.Dense(3), layers.Softmax)
    _, params = model.init(random.key(3), (-1, 2, 2))
    fio.save_model(tmp_path / "all.npz", model, params, (-1, 2, 2), {"classes": [0, 1, 2], "dataset": "x",
                                                                     "preprocessing": {"mean": 0.0, "std": 1.0}})
    loaded = fio.load_model(tmp_path / "all.npz")
    assert fnn.tree.tree_equal(loaded.params, params)
    assert load_checkpoint(write(tmp_path, CHECKPOINT, "c.npz"))["epoch"] == 1
