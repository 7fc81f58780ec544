"""CIFAR-10 from its binary version (``cifar-10-binary.tar.gz`` or the extracted
``cifar-10-batches-bin/`` folder), never the pickled Python version: pickle is refused everywhere.

Format (https://www.cs.toronto.edu/~kriz/cifar.html, "Binary version"): each file is a sequence
of 3073-byte records, 1 label byte (0..9) then 3072 pixel bytes, the 1024 red, 1024 green and
1024 blue values of a 32x32 image in row-major order. 10000 records per file.
"""
from __future__ import annotations

import tarfile
from pathlib import Path

import numpy as np

from fastcnn.data._base import (Dataset, DatasetError, DatasetNotFoundError, check_labels,
                                data_root)
from fastcnn.data.transforms import split_and_standardize, to_float

__all__ = ["load_cifar10", "load_cifar10_arrays", "read_cifar_batch", "CIFAR10_CLASSES"]

RECORD = 1 + 3 * 32 * 32
TRAIN_FILES = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
TEST_FILE = "test_batch.bin"
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                   "ship", "truck")
_SOURCE = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"


def read_cifar_batch(data: bytes, where) -> tuple[np.ndarray, np.ndarray]:
    """Parse one binary batch: ``(images uint8 (N, 3, 32, 32), labels int64 (N,))``."""
    if len(data) == 0:
        raise DatasetError(f"{where}: empty file")
    if len(data) % RECORD:
        n, extra = divmod(len(data), RECORD)
        raise DatasetError(f"{where}: {len(data)} bytes is not a whole number of {RECORD}-byte "
                           f"records ({n} records + {extra} bytes): truncated or not a CIFAR-10 "
                           "binary batch")
    rec = np.frombuffer(data, np.uint8).reshape(-1, RECORD)
    y = check_labels(where, rec[:, 0], 10)
    return rec[:, 1:].reshape(-1, 3, 32, 32).copy(), y


def _read_folder(folder: Path):
    files = [folder / f for f in TRAIN_FILES + (TEST_FILE,)]
    absent = [f.name for f in files if not f.is_file()]
    if absent:
        return None, absent
    return {f.name: (f.read_bytes(), f) for f in files}, []


def _read_tar(path: Path):
    out = {}
    try:
        with tarfile.open(path, "r:*") as tar:
            for m in tar.getmembers():
                base = m.name.rsplit("/", 1)[-1]
                if m.isfile() and base in TRAIN_FILES + (TEST_FILE,):
                    out[base] = (tar.extractfile(m).read(), f"{path}:{m.name}")
    except (tarfile.TarError, OSError, EOFError) as e:
        raise DatasetError(f"{path}: not a readable tar archive ({e}); truncated or "
                           "corrupted download") from None
    absent = [f for f in TRAIN_FILES + (TEST_FILE,) if f not in out]
    if absent:
        raise DatasetError(f"{path}: archive lacks {', '.join(absent)}: is it the binary "
                           "version (cifar-10-binary.tar.gz)?")
    return out


def load_cifar10_arrays(path=None):
    """Raw ``(x_train, y_train, x_test, y_test)``: uint8 ``(N, 3, 32, 32)`` and int64 labels.

    ``path`` is the ``cifar-10-batches-bin`` folder, its parent, or the ``.tar.gz``; None means
    ``data_root()/cifar10``.
    """
    where = Path(path).expanduser() if path is not None else data_root() / "cifar10"
    if where.is_file():
        if where.suffix == ".py" or "python" in where.name:
            raise DatasetError(f"{where}: this is the pickled Python version, which fastcnn "
                               f"refuses to unpickle; use the binary version {_SOURCE}")
        found = _read_tar(where)
    else:
        found, absent = None, list(TRAIN_FILES + (TEST_FILE,))
        for folder in (where, where / "cifar-10-batches-bin"):
            if folder.is_dir():
                found, absent = _read_folder(folder)
                if found:
                    break
        if found is None:
            tgz = where / "cifar-10-binary.tar.gz"
            if tgz.is_file():
                found = _read_tar(tgz)
            else:
                raise DatasetNotFoundError(
                    f"cifar10: no data found at {where} (missing {', '.join(absent)}). "
                    f"fastcnn never downloads: get the binary version {_SOURCE} and put the "
                    f"archive or its extracted cifar-10-batches-bin/ folder in {where}, or point "
                    "--data / path= at it.")
    parts = [read_cifar_batch(*found[f]) for f in TRAIN_FILES]
    sizes = {found[f][1]: len(p[1]) for f, p in zip(TRAIN_FILES, parts)}
    if len(set(sizes.values())) > 1:
        first = next(iter(sizes.items()))
        for src, n in sizes.items():
            if n != first[1]:
                raise DatasetError(f"{src}: {n} records but {first[0]} has {first[1]}: "
                                   "truncated at a record boundary?")
    x_te, y_te = read_cifar_batch(*found[TEST_FILE])
    return (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
            x_te, y_te)


def load_cifar10(path=None, *, val_size=5000, seed=0, standardize_inputs=True, dtype=np.float32):
    """CIFAR-10 as a Dataset of ``(N, 3, 32, 32)`` images, standardized per channel with the
    training split's statistics unless ``standardize_inputs=False`` (then in ``[0, 1]``)."""
    x_tr, y_tr, x_te, y_te = load_cifar10_arrays(path)
    x_tr, x_te = to_float(x_tr, 255.0, dtype), to_float(x_te, 255.0, dtype)
    x_tr, y_tr, x_va, y_va, x_te, mean, std = split_and_standardize(
        x_tr, y_tr, x_te, val_size, seed, standardize_inputs)
    src = str(Path(path).expanduser() if path is not None else data_root() / "cifar10")
    return Dataset("cifar10", x_tr, y_tr, x_va, y_va, x_te, y_te, 10, CIFAR10_CLASSES, mean, std,
                   info={"source": src, "seed": seed})
