"""fnn.datasets: MNIST offline, Fashion-MNIST from Debian's folder, source order, parsers, CIFAR-10, user data,
splits and preprocessing. Downloads: test_datasets_download.py; CLI: test_datasets_cli.py."""

import gzip
import os
import shutil
import subprocess
import sys
import tarfile
import time
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import pytest
from dataset_files import (
    CIFAR_CLASSES,
    IDX_NAMES,
    MNIST_DIR,
    cifar_spec,
    cifar_tar,
    idx_bytes,
    md5,
    tiny_arrays,
    tiny_contents,
    tiny_spec,
    write_files,
)

from fnn import datasets, random
from fnn.datasets import ChecksumError, DatasetError, cifar, sources
from fnn.datasets.idx import parse_idx

MNIST_MD5 = {  # official, of the uncompressed files
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
FASHION_MD5 = {  # official (Zalando's README), of the uncompressed files
    "train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
    "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
    "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
    "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965",
}
DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    """An empty cache, no $FNN_DATA_DIR, and any attempt to reach the network fails the test."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.delenv("FNN_DATA_DIR", raising=False)

    def no_network(*args, **kwargs):
        raise AssertionError(f"tried to reach the network: {args[:1]}")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)


@pytest.fixture
def roots(monkeypatch, tmp_path):
    """Point the system folder and the package copy at empty temporary folders."""
    system, package = tmp_path / "system", tmp_path / "package"
    monkeypatch.setattr(sources, "SYSTEM_ROOT", system)
    monkeypatch.setattr(sources, "PACKAGE_ROOT", package)
    return system, package


def official_md5s(ds) -> dict:
    """MD5s of the IDX files that hold exactly ``ds``'s arrays (encoded by the tests' own writer)."""
    arrays = (ds.x_train, ds.y_train, ds.x_test, ds.y_test)
    return {name: md5(idx_bytes(a)) for name, a in zip(IDX_NAMES, arrays)}


# ---------------------------------------------------------------- 1. MNIST offline


def test_mnist_loads_offline_from_the_package_with_official_counts_and_digests():
    start = time.perf_counter()
    ds = datasets.load("mnist")
    seconds = time.perf_counter() - start
    assert ds.source == f"package copy {MNIST_DIR}"
    assert ds.x_train.shape == (60000, 28, 28) and ds.x_train.dtype == np.uint8
    assert ds.x_test.shape == (10000, 28, 28) and ds.y_test.shape == (10000,)
    assert ds.y_train.dtype.kind == "i" and ds.features == 784 and ds.classes == [str(d) for d in range(10)]
    assert ds.class_counts("train").tolist() == MNIST_TRAIN_COUNTS  # 5923 zeros
    assert ds.class_counts("test").tolist() == MNIST_TEST_COUNTS  # 980 zeros
    assert official_md5s(ds) == MNIST_MD5
    assert ds.files == {
        f"{n}.gz": {"md5": MNIST_MD5[n], "size": size}
        for n, size in zip(IDX_NAMES, (47040016, 60008, 7840016, 10008))
    }
    print(f"load('mnist') from the package: {seconds:.2f} s")


def test_a_fresh_install_from_the_wheel_loads_mnist_offline(tmp_path):
    """Build the wheel, unpack it as an install would, and load MNIST with an empty home and no network."""
    root = MNIST_DIR.parents[3]
    src = tmp_path / "src"
    src.mkdir()
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy(root / name, src)
    for name in ("fnn", "cli", "web"):
        shutil.copytree(root / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    build = [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp_path / "dist"), str(src)]
    subprocess.run(build, check=True, capture_output=True, timeout=300)
    (wheel,) = (tmp_path / "dist").glob("fnn-*.whl")
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    code = "\n".join(
        [
            "import sys, urllib.request",
            "sys.path.insert(0, sys.argv[1])",
            "urllib.request.urlopen = None  # any download attempt would fail",
            "import fnn, fnn.datasets",
            "ds = fnn.datasets.load('mnist')",
            "print(fnn.__file__)",
            "print(ds.source)",
            "print(len(ds.y_train), len(ds.y_test), ds.class_counts()[0])",
        ]
    )
    env = {k: v for k, v in os.environ.items() if k not in ("FNN_DATA_DIR", "XDG_CACHE_HOME")}
    env["HOME"] = str(tmp_path / "home")
    run = [sys.executable, "-c", code, str(site)]
    out = subprocess.run(run, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        str(site / "fnn" / "__init__.py"),
        f"package copy {site / 'fnn' / 'datasets' / 'data' / 'mnist'}",
        "60000 10000 5923",
    ]


def test_the_shipped_files_are_the_original_gz_files():
    for path in MNIST_DIR.glob("*.gz"):
        assert md5(gzip.decompress(path.read_bytes())) == MNIST_MD5[path.name[:-3]]
    assert sorted(p.name for p in MNIST_DIR.iterdir()) == sorted(f"{n}.gz" for n in IDX_NAMES)


# ---------------------------------------------------------------- 2. Fashion-MNIST


def test_fashion_mnist_loads_from_debians_folder():
    ds = datasets.load("fashion-mnist")
    assert ds.source == f"system folder {DEBIAN_FASHION}"
    assert ds.x_train.shape == (60000, 28, 28) and ds.x_test.shape == (10000, 28, 28)
    assert ds.class_counts("train").tolist() == [6000] * 10 and ds.class_counts("test").tolist() == [1000] * 10
    assert ds.classes[0] == "T-shirt/top" and ds.classes[9] == "Ankle boot"
    assert official_md5s(ds) == FASHION_MD5


def test_fashion_mnist_loads_from_a_data_dir_compressed_or_not(tmp_path, monkeypatch):
    data_dir = tmp_path / "data"
    folder = data_dir / "fashion-mnist"
    folder.mkdir(parents=True)
    for name in IDX_NAMES[:2]:  # two stay gzipped (as Debian ships them), two are unpacked
        shutil.copy(DEBIAN_FASHION / f"{name}.gz", folder)
    for name in IDX_NAMES[2:]:
        (folder / name).write_bytes(gzip.decompress((DEBIAN_FASHION / f"{name}.gz").read_bytes()))
    ds = datasets.load("fashion-mnist", data_dir=data_dir)
    assert ds.source == f"data dir {folder}"
    assert official_md5s(ds) == FASHION_MD5
    monkeypatch.setenv("FNN_DATA_DIR", str(folder))  # the files directly in $FNN_DATA_DIR work too
    assert datasets.load("fashion-mnist").source == f"data dir {folder}"


# ---------------------------------------------------------------- sources, in order


def test_sources_are_tried_in_order(tmp_path, roots):
    system, package = roots
    contents = tiny_contents()
    spec = tiny_spec(contents)
    data_dir, cache = tmp_path / "data", tmp_path / "xdg-cache" / "fnn"
    for folder in (data_dir / "tiny", cache / "tiny", system / "tiny", package / "tiny"):
        write_files(folder, contents)
    expected = [f"data dir {data_dir / 'tiny'}", f"cache {cache / 'tiny'}", f"system folder {system / 'tiny'}"]
    for label, folder in zip(expected, (data_dir, cache, system)):
        assert datasets.load(spec, data_dir=data_dir, download=False).source == label
        shutil.rmtree(folder)
    ds = datasets.load(spec, data_dir=data_dir, download=False)
    assert ds.source == f"package copy {package / 'tiny'}"
    x_train, y_train, x_test, y_test = tiny_arrays()
    assert np.array_equal(ds.x_train, x_train) and np.array_equal(ds.y_test, y_test)
    shutil.rmtree(package)
    with pytest.raises(DatasetError, match="tiny: not found in .*downloads are off"):
        datasets.load(spec, data_dir=data_dir, download=False)


def test_a_bad_cached_file_is_dropped_and_the_next_source_serves(tmp_path, roots):
    system, _ = roots
    contents = tiny_contents()
    spec = tiny_spec(contents)
    cache = write_files(tmp_path / "xdg-cache" / "fnn" / "tiny", contents)
    write_files(system / "tiny", contents)
    bad = cache / "train-labels-idx1-ubyte.gz"
    bad.write_bytes(bad.read_bytes()[:-9])  # truncated
    ds = datasets.load(spec, download=False)
    assert ds.source == f"system folder {system / 'tiny'}"
    assert not bad.exists() and (cache / "train-images-idx3-ubyte.gz").exists()


def test_a_bad_file_outside_the_cache_is_an_error_naming_it_and_both_digests(tmp_path, roots):
    contents = tiny_contents()
    spec = tiny_spec(contents)
    folder = write_files(tmp_path / "data" / "tiny", {**contents, "t10k-labels-idx1-ubyte.gz": idx_bytes([2] * 10)})
    with pytest.raises(ChecksumError) as e:
        datasets.load(spec, data_dir=tmp_path / "data", download=False)
    message = str(e.value)
    assert str(folder / "t10k-labels-idx1-ubyte.gz") in message
    assert md5(contents["t10k-labels-idx1-ubyte.gz"]) in message and md5(idx_bytes([2] * 10)) in message


def test_images_of_another_shape_than_the_registry_says_are_refused(tmp_path):
    contents = tiny_contents()
    write_files(tmp_path / "tiny", contents)
    with pytest.raises(DatasetError, match=r"images are \(4, 4\) and \(4, 4\), tiny has \(5, 5\)"):
        datasets.load(tiny_spec(contents, shape=(5, 5)), data_dir=tmp_path, download=False)


def test_registry_shapes_give_the_features_before_loading():
    shapes = {name: spec.shape for name, spec in datasets.REGISTRY.items()}
    assert shapes == {"mnist": (28, 28), "fashion-mnist": (28, 28), "cifar10": (32, 32, 3)}


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(DatasetError, match="unknown dataset 'mnits'; known: mnist, fashion-mnist, cifar10"):
        datasets.load("mnits")


# ---------------------------------------------------------------- 5. parser errors


def _idx(magic=b"\x00\x00\x08\x03", dims=(2, 3, 3), payload=18) -> bytes:
    return magic + b"".join(d.to_bytes(4, "big") for d in dims) + bytes(payload)


@pytest.mark.parametrize(
    "data, message",
    [
        (_idx(magic=b"PK\x03\x04"), r"bad magic number 0x504b0304; not an IDX file"),
        (_idx(magic=b"\x00\x00\x07\x03"), r"bad magic number 0x00000703"),
        (_idx(magic=b"\x00\x00\x08\x02", dims=(2, 9)), r"wrong dims: has 2 dimensions, expected 3"),
        (_idx(payload=17), r"truncated: dims \(2, 3, 3\) need 18 bytes of uint8 data, the file has 17"),
        (_idx(payload=19), r"oversized: dims \(2, 3, 3\) need 18 bytes of uint8 data, the file has 19"),
        (_idx()[:10], r"truncated IDX header \(10 bytes, the header needs 16\)"),
        (b"\x00\x00", r"truncated IDX file \(2 bytes"),
    ],
)
def test_idx_errors_name_the_file_and_the_problem(data, message):
    with pytest.raises(DatasetError, match=r"^images\.idx: " + message):
        parse_idx(data, "images.idx", ndim=3)


def test_idx_reads_big_endian_dtypes():
    data = b"\x00\x00\x0b\x01" + (3).to_bytes(4, "big") + np.array([1, -2, 300], ">i2").tobytes()
    assert parse_idx(data, "x").tolist() == [1, -2, 300]


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda b: b[: len(b) // 2], "corrupt or truncated gzip data"),
        (lambda b: gzip.compress(gzip.decompress(b)[:-5]), "checksum mismatch: expected md5"),
        (lambda b: gzip.compress(gzip.decompress(b) + b"\0"), "oversized"),
    ],
)
def test_a_damaged_mnist_file_in_a_data_dir_is_named(tmp_path, damage, message):
    folder = tmp_path / "mnist"
    shutil.copytree(MNIST_DIR, folder)
    path = folder / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(DatasetError, match=message) as e:
        datasets.load("mnist", data_dir=tmp_path)
    assert str(e.value).startswith(str(path))


@pytest.mark.parametrize(
    "labels_data, message",
    [
        (b"\x00\x00\x08\x01" + (40).to_bytes(4, "big") + bytes(39), "truncated"),
        (b"\x00\x00\x08\x03" + b"".join((1).to_bytes(4, "big") for _ in range(3)) + b"\0", "labels must be a 1-D"),
        (b"GIF89a" + bytes(50), "bad magic number"),
    ],
)
def test_a_user_idx_folder_with_a_broken_file_names_it(tmp_path, labels_data, message):
    x_train, *_ = tiny_arrays()
    (tmp_path / "train-images-idx3-ubyte").write_bytes(idx_bytes(x_train))
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(labels_data)
    with pytest.raises(DatasetError, match=message) as e:
        datasets.load(str(tmp_path))
    assert str(tmp_path / "train-labels-idx1-ubyte") in str(e.value)


# ---------------------------------------------------------------- 4. CIFAR-10


def test_cifar10_reads_the_real_layout_from_a_tar_gz(tmp_path):
    path = tmp_path / "cifar-10-binary.tar.gz"
    x_train, y_train, x_test, y_test = cifar_tar(path, per_batch=3)
    got = cifar.read_archive(path)
    assert got[0].shape == (15, 32, 32, 3) and got[0].dtype == np.uint8 and got[2].shape == (3, 32, 32, 3)
    for a, b in zip(got[:4], (x_train, y_train, x_test, y_test)):
        assert np.array_equal(a, b)
    assert got[4] == CIFAR_CLASSES


def test_cifar10_loads_through_load_with_its_archive_pinned(tmp_path):
    folder = tmp_path / "data" / "cifar10"
    folder.mkdir(parents=True)
    x_train, y_train, *_ = cifar_tar(folder / "cifar-10-binary.tar.gz", per_batch=4)
    ds = datasets.load(cifar_spec(folder / "cifar-10-binary.tar.gz"), data_dir=tmp_path / "data")
    assert ds.source == f"data dir {folder}" and ds.features == 3072 and ds.classes == CIFAR_CLASSES
    assert np.array_equal(ds.x_train, x_train) and np.array_equal(ds.y_train, y_train)
    gray = datasets.make_transform(grayscale=True)(ds.x_train[:2])
    assert gray.shape == (2, 1024) and gray.dtype == np.float32


def test_the_real_cifar10_pin_is_the_published_archive_digest():
    (archive,) = datasets.REGISTRY["cifar10"].files
    assert (archive.name, archive.md5, archive.size, archive.gunzip) == (
        "cifar-10-binary.tar.gz",
        "c32a1d4ab5d03f1284b67883e8d87530",
        170052171,
        False,
    )


@pytest.mark.parametrize(
    "member, message",
    [
        (("../evil.bin", {}), "refusing tar member '../evil.bin': its path leaves the archive"),
        (("cifar-10-batches-bin/../../x", {}), "its path leaves the archive"),
        (("/etc/cron.d/evil", {}), "refusing tar member '/etc/cron.d/evil'"),
        (("cifar-10-batches-bin/link", {"type": tarfile.SYMTYPE, "linkname": "/etc/passwd"}), "links are not allowed"),
        (("cifar-10-batches-bin/hard", {"type": tarfile.LNKTYPE, "linkname": "x"}), "links are not allowed"),
        (("cifar-10-batches-bin/fifo", {"type": tarfile.FIFOTYPE}), "not a regular file or folder"),
    ],
)
def test_cifar10_refuses_unsafe_members(tmp_path, member, message):
    path = tmp_path / "cifar-10-binary.tar.gz"
    cifar_tar(path, per_batch=1, extra=[member])
    with pytest.raises(DatasetError, match=message):
        datasets.load(cifar_spec(path), data_dir=tmp_path)
    assert set(os.listdir(tmp_path)) <= {"cifar-10-binary.tar.gz", "xdg-cache"}  # nothing was unpacked
    assert not (tmp_path.parent / "evil.bin").exists()


def test_cifar10_batch_errors():
    with pytest.raises(DatasetError, match=r"b\.bin: truncated or corrupt CIFAR-10 batch: 3072 bytes"):
        cifar.parse_batch(bytes(3072), "b.bin")
    with pytest.raises(DatasetError, match="label 10 out of range"):
        cifar.parse_batch(bytes([10]) + bytes(3072), "b.bin")
    with pytest.raises(DatasetError, match="oversized: 10001 records"):
        cifar.parse_batch(bytes(3073 * 10001), "b.bin")


def test_cifar10_missing_or_oversized_member_or_not_a_tar(tmp_path):
    path = tmp_path / "c.tar.gz"
    meta = tmp_path / "batches.meta.txt"
    meta.write_text("\n".join(CIFAR_CLASSES))
    with tarfile.open(path, "w:gz") as tar:
        tar.add(meta, "cifar-10-batches-bin/batches.meta.txt")
    with pytest.raises(DatasetError, match="archive lacks cifar-10-batches-bin/data_batch_1.bin"):
        cifar.read_archive(path)
    meta.write_text("airplane\n" * 1000)
    with tarfile.open(path, "w:gz") as tar:
        tar.add(meta, "cifar-10-batches-bin/batches.meta.txt")
    with pytest.raises(DatasetError, match="oversized member cifar-10-batches-bin/batches.meta.txt: 9000 bytes"):
        cifar.read_archive(path)
    path.write_bytes(b"<html>not here</html>")
    with pytest.raises(DatasetError, match="not a readable .tar.gz archive"):
        cifar.read_archive(path)


# ---------------------------------------------------------------- user data


def test_user_npz_with_x_y_and_optional_test_split(tmp_path):
    x, y, x_test, y_test = tiny_arrays()
    np.savez(tmp_path / "mine.npz", x=x, y=y)
    ds = datasets.load(str(tmp_path / "mine.npz"))
    assert np.array_equal(ds.x_train, x) and ds.y_train.tolist() == y.tolist() and ds.x_test.shape == (0, 4, 4)
    assert ds.classes == ["0", "1", "2"] and ds.source == f"file {tmp_path / 'mine.npz'}"
    np.savez(tmp_path / "both.npz", x=x, y=y, x_test=x_test, y_test=y_test, classes=np.array(["a", "b", "c"]))
    ds = datasets.load(str(tmp_path / "both.npz"))
    assert np.array_equal(ds.x_test, x_test) and ds.classes == ["a", "b", "c"]
    assert ds.files["both.npz"]["md5"] == md5((tmp_path / "both.npz").read_bytes())


@pytest.mark.parametrize(
    "arrays, message",
    [
        ({"images": np.zeros((2, 2))}, r"needs arrays 'x' and 'y' .* it has \['images'\]"),
        ({"x": np.zeros((3, 2)), "y": np.zeros(2, int)}, "3 examples but 2 labels"),
        ({"x": np.zeros((2, 2)), "y": np.array([0.5, 1.0])}, "labels must be integers"),
        ({"x": np.zeros((2, 2)), "y": np.array([0, 1], object)}, "without pickled objects"),
        ({"x": np.zeros((2, 2)), "y": np.array([0, 3]), "classes": np.array(["a", "b"])}, r"labels must lie in 0..1"),
    ],
)
def test_user_npz_errors(tmp_path, arrays, message):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(DatasetError, match=message) as e:
        datasets.load(str(path))
    assert str(path) in str(e.value)


def test_user_csv_with_named_or_last_label_column(tmp_path):
    rows = ["sepal,petal,species", "5.1,1.4,setosa", "7.0,4.7,versicolor", "6.3,6.0,virginica", "4.9,1.4,setosa"]
    (tmp_path / "iris.csv").write_text("\n".join(rows) + "\n")
    ds = datasets.load(str(tmp_path / "iris.csv"))
    assert ds.classes == ["setosa", "versicolor", "virginica"] and ds.y_train.tolist() == [0, 1, 2, 0]
    assert ds.x_train.dtype == np.float32 and ds.x_train[1].tolist() == pytest.approx([7.0, 4.7])
    assert ds.features == 2 and ds.x_test.shape == (0, 2)
    (tmp_path / "t.csv").write_text("label,a,b\n1,0.5,2\n0,1.5,3\n")
    ds = datasets.load(str(tmp_path / "t.csv"))
    assert ds.y_train.tolist() == [1, 0] and ds.x_train.tolist() == [[0.5, 2.0], [1.5, 3.0]]


@pytest.mark.parametrize(
    "text, message",
    [
        ("a,label\n1,0\n2\n", "line 3 has 1 fields, the header has 2"),
        ("a,label\nfoo,0\n", "line 2: feature value 'foo' is not a number"),
        ("a,label\nnan,0\n", "line 2: features must be finite"),
        ("a,label\n", "needs a header row and at least one data row"),
    ],
)
def test_user_csv_errors_name_the_line(tmp_path, text, message):
    (tmp_path / "bad.csv").write_text(text)
    with pytest.raises(DatasetError, match=message):
        datasets.load(str(tmp_path / "bad.csv"))


def test_user_idx_folder_with_test_split(tmp_path):
    arrays = tiny_arrays()
    for name, a in zip(IDX_NAMES, arrays):
        (tmp_path / f"{name}.gz").write_bytes(gzip.compress(idx_bytes(a)))
    ds = datasets.load(str(tmp_path))
    for got, want in zip((ds.x_train, ds.y_train, ds.x_test, ds.y_test), arrays):
        assert np.array_equal(got, want)
    assert ds.source == f"folder {tmp_path}" and ds.classes == ["0", "1", "2"]


def test_a_missing_user_path_is_named(tmp_path):
    with pytest.raises(DatasetError, match=f"{tmp_path / 'nope.npz'}: no such file or folder"):
        datasets.load(str(tmp_path / "nope.npz"))


# ---------------------------------------------------------------- 6. splits


def test_validation_split_is_stratified_within_one_point(mnist):
    y = mnist.y_train
    train_idx, val_idx = datasets.train_val_split(y, 0.1, random.key(0))
    assert len(val_idx) == pytest.approx(6000, abs=10) and len(train_idx) + len(val_idx) == 60000
    assert np.array_equal(np.union1d(train_idx, val_idx), np.arange(60000))  # from the training set only
    assert np.intersect1d(train_idx, val_idx).size == 0
    full = np.bincount(y, minlength=10) / len(y)
    for part in (val_idx, train_idx):
        share = np.bincount(y[part], minlength=10) / len(part)
        assert np.abs(share - full).max() < 0.01


def test_validation_split_is_reproducible_from_its_key():
    y = np.repeat(np.arange(5), [50, 30, 80, 7, 33])
    a = datasets.train_val_split(y, 0.2, random.key(1))
    b = datasets.train_val_split(y, 0.2, random.key(1))
    c = datasets.train_val_split(y, 0.2, random.key(2))
    assert all(np.array_equal(p, q) for p, q in zip(a, b))
    assert not np.array_equal(a[1], c[1]) and len(a[1]) == len(c[1])
    assert np.bincount(y[a[1]], minlength=5).tolist() == [10, 6, 16, 1, 7]


@pytest.mark.parametrize(
    "fraction, key, error", [(0.0, random.key(0), ValueError), (1.0, random.key(0), ValueError), (0.1, None, TypeError)]
)
def test_validation_split_rejects_bad_arguments(fraction, key, error):
    with pytest.raises(error):
        datasets.train_val_split(np.arange(10) % 2, fraction, key)


# ---------------------------------------------------------------- preprocessing


def test_make_transform_scales_flattens_and_standardizes():
    x = np.array([[[0, 255], [51, 102]], [[255, 0], [51, 204]]], np.uint8)
    out = datasets.make_transform()(x)
    assert out.dtype == np.float32 and out.shape == (2, 4)
    assert np.allclose(out, [[0, 1, 0.2, 0.4], [1, 0, 0.2, 0.8]])
    mean, std = datasets.standardize_stats(x, chunk=1)
    assert mean.tolist() == pytest.approx([0.5, 0.5, 0.2, 0.6]) and std.tolist() == pytest.approx([0.5, 0.5, 1.0, 0.2])
    z = datasets.make_transform(mean=mean, std=std)(x)
    assert np.allclose(z, [[-1, 1, 0, -1], [1, -1, 0, 1]], atol=1e-6)
    assert datasets.make_transform(flatten=False)(x).shape == (2, 2, 2)


def test_standardize_stats_in_chunks_match_numpy_on_mnist(mnist):
    x = mnist.x_train[:5000]
    mean, std = datasets.standardize_stats(x, chunk=777)
    full = x.reshape(len(x), -1) / 255.0
    assert np.allclose(mean, full.mean(0), atol=1e-6)
    want = full.std(0)
    assert np.allclose(std, np.where(want < 1e-6, 1, want), atol=1e-6)


def test_grayscale_uses_luma_weights_and_one_hot():
    x = np.zeros((1, 1, 2, 3), np.uint8)
    x[0, 0, 0] = [255, 0, 0]
    x[0, 0, 1] = [255, 255, 255]
    assert np.allclose(datasets.make_transform(grayscale=True)(x), [[0.299, 1.0]])
    assert datasets.one_hot(np.array([2, 0]), 3).tolist() == [[0, 0, 1], [1, 0, 0]]
    with pytest.raises(ValueError, match="labels must lie in 0..2"):
        datasets.one_hot(np.array([3]), 3)


def test_transform_never_writes_into_the_stored_data():
    x = np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 4)
    before = x.copy()
    datasets.make_transform(mean=np.ones(4, np.float32), std=np.full(4, 2, np.float32))(x)
    assert np.array_equal(x, before)
