"""Downloads against a real HTTP server on 127.0.0.1 that these tests start, serving real-format files."""

import gzip
import os

import numpy as np
import pytest
from dataset_files import (
    IDX_NAMES,
    Mirror,
    cifar_spec,
    cifar_tar,
    closed_port_url,
    md5,
    mnist_gz,
    no_local_copies,
    tiny_contents,
    tiny_spec,
)

from fnn import datasets
from fnn.datasets import DownloadError

MNIST_TRAIN_IMAGES_MD5 = "6bbc9ace898e44ae57da46a324031adb"  # official, uncompressed


@pytest.fixture(autouse=True)
def only_downloads(monkeypatch, tmp_path):
    """No local copy anywhere: an empty cache, no data dir, empty system and package folders."""
    no_local_copies(monkeypatch, tmp_path)


@pytest.fixture
def mirror():
    with Mirror() as m:
        yield m


@pytest.fixture
def cache(tmp_path):
    return tmp_path / "xdg" / "fnn"


def leftovers(folder) -> list:
    """Every file in ``folder`` (temporary ones included), or [] when it does not exist."""
    return sorted(os.listdir(folder)) if folder.exists() else []


def test_first_mirror_404_then_the_second_serves_recompressed_files(mirror, cache):
    recompressed = {name: gzip.compress(gzip.decompress(gz), compresslevel=1) for name, gz in mnist_gz().items()}
    assert all(recompressed[n] != gz for n, gz in mnist_gz().items())  # other bytes, same contents
    mirror.serve("b", recompressed)
    events = []
    ds = datasets.load("mnist", mirrors=[mirror.url("a"), mirror.url("b")], progress=lambda *e: events.append(e))
    assert ds.source.startswith(f"download {mirror.url('b')}train-images-idx3-ubyte.gz, ")
    assert ds.source.endswith(f" -> cache {cache / 'mnist'}")
    assert ds.x_train.shape == (60000, 28, 28) and ds.class_counts("test")[0] == 980
    assert [h for h in mirror.hits if h.startswith("/a/")] == [f"/a/{n}.gz" for n in IDX_NAMES]
    assert leftovers(cache / "mnist") == sorted(recompressed)
    done = {}
    for name, got, total in events:  # progress: from 0 up to the full size, per file
        assert got >= done.get(name, 0) and total == len(recompressed[name])
        done[name] = got
    assert done == {name: len(body) for name, body in recompressed.items()}
    # the next load is served by the cache, with no request
    hits = len(mirror.hits)
    assert datasets.load("mnist", mirrors=[mirror.url("b")]).source == f"cache {cache / 'mnist'}"
    assert len(mirror.hits) == hits


def test_an_html_page_with_200_is_a_checksum_error_and_the_cache_stays_clean(mirror, cache):
    mirror.serve("a", mnist_gz(), kind="html")
    with pytest.raises(DownloadError) as e:
        datasets.load("mnist", mirrors=[mirror.url("a")])
    message = str(e.value)
    url = f"{mirror.url('a')}train-images-idx3-ubyte.gz"
    assert f"{url}: checksum mismatch: expected md5 {MNIST_TRAIN_IMAGES_MD5}" in message
    assert "got md5 " in message and "bytes)" in message
    assert leftovers(cache / "mnist") == []


def test_a_dropped_connection_leaves_no_partial_file_and_a_retry_succeeds(mirror, cache):
    files = mnist_gz()
    mirror.serve("a", files)
    body = files["t10k-images-idx3-ubyte.gz"]
    mirror.routes["/a/t10k-images-idx3-ubyte.gz"] = [("drop", body), ("ok", body)]  # drops once, then serves
    with pytest.raises(DownloadError, match=r"t10k-images-idx3-ubyte.gz: connection dropped after \d+ of 1602073 bytes"):
        datasets.load("mnist", mirrors=[mirror.url("a")])
    assert leftovers(cache / "mnist") == ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"]  # whole, verified
    mirror.hits.clear()
    ds = datasets.load("mnist", mirrors=[mirror.url("a")])
    assert mirror.hits == ["/a/t10k-images-idx3-ubyte.gz", "/a/t10k-labels-idx1-ubyte.gz"]
    assert ds.x_test.shape == (10000, 28, 28) and leftovers(cache / "mnist") == sorted(files)


def test_a_truncated_cached_file_is_detected_and_fetched_again(mirror, cache):
    files = mnist_gz()
    mirror.serve("a", files)
    folder = cache / "mnist"
    folder.mkdir(parents=True)
    for name, body in files.items():
        (folder / name).write_bytes(body)
    (folder / "train-labels-idx1-ubyte.gz").write_bytes(files["train-labels-idx1-ubyte.gz"][:10000])
    ds = datasets.load("mnist", mirrors=[mirror.url("a")])
    assert mirror.hits == ["/a/train-labels-idx1-ubyte.gz"]
    assert ds.source == f"download {mirror.url('a')}train-labels-idx1-ubyte.gz -> cache {folder}"
    assert (folder / "train-labels-idx1-ubyte.gz").read_bytes() == files["train-labels-idx1-ubyte.gz"]
    assert ds.class_counts("train")[0] == 5923


def test_when_every_mirror_fails_one_error_lists_them_all(mirror, cache):
    contents = tiny_contents()
    name = "train-images-idx3-ubyte.gz"
    mirror.routes[f"/b/{name}"] = [("status", 500)]
    mirror.routes[f"/c/{name}"] = [("slow",)]
    mirror.routes[f"/d/{name}"] = [("ok", gzip.compress(contents[name]) + bytes(10 << 20))]
    refused = closed_port_url()
    urls = [mirror.url("a"), mirror.url("b"), refused, mirror.url("c"), mirror.url("d")]
    with pytest.raises(DownloadError) as e:
        datasets.load(tiny_spec(contents), mirrors=urls, timeout=0.5)
    lines = str(e.value).splitlines()[1:]  # after the line naming every folder looked in
    assert lines[0] == f"{name}: could not download from any mirror:"
    assert lines[1] == f"  {urls[0]}{name}: HTTP 404 Not Found"
    assert lines[2] == f"  {urls[1]}{name}: HTTP 500 Internal Server Error"
    assert lines[3].startswith(f"  {refused}{name}: cannot connect (") and "refused" in lines[3]
    assert lines[4] == f"  {urls[3]}{name}: timed out after 0.5 s"
    assert lines[5].startswith(f"  {urls[4]}{name}: oversized: ")
    assert [url for url, _ in e.value.attempts] == [u + name for u in urls]
    assert leftovers(cache / "tiny") == []


def test_cifar10_downloads_its_archive_and_loads(mirror, cache, tmp_path):
    archive = tmp_path / "cifar-10-binary.tar.gz"
    x_train, y_train, x_test, y_test = cifar_tar(archive, per_batch=2)
    mirror.serve("kriz", {"cifar-10-binary.tar.gz": archive.read_bytes()})
    ds = datasets.load(cifar_spec(archive, mirrors=[mirror.url("kriz")]))
    assert ds.source.startswith(f"download {mirror.url('kriz')}cifar-10-binary.tar.gz")
    assert np.array_equal(ds.x_test, x_test) and np.array_equal(ds.y_train, y_train)
    assert md5((cache / "cifar10" / "cifar-10-binary.tar.gz").read_bytes()) == md5(archive.read_bytes())


def test_download_off_names_every_folder_looked_in(cache):
    with pytest.raises(datasets.DatasetError, match=f"mnist: not found in .*{cache / 'mnist'}.*downloads are off"):
        datasets.load("mnist", download=False)
