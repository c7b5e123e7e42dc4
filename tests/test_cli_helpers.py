"""Helpers for CLI tests (not tests themselves)."""

import io
import tarfile

import numpy as np


def write_fake_cifar(folder, per_batch=4):
    """A tiny ``cifar-10-binary.tar.gz`` with the real layout, in ``folder``."""
    rng = np.random.default_rng(0)
    path = folder / "cifar-10-binary.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        names = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
        for name in names:
            records = np.concatenate(
                [rng.integers(0, 10, (per_batch, 1)), rng.integers(0, 256, (per_batch, 3072))], axis=1
            ).astype(np.uint8)
            _add(tar, f"cifar-10-batches-bin/{name}", records.tobytes())
        meta = "\n".join(["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]) + "\n"
        _add(tar, "cifar-10-batches-bin/batches.meta.txt", meta.encode())
    return path


def _add(tar, name, data):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))
