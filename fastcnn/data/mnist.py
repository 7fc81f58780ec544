"""MNIST and Fashion-MNIST from files already on disk: the four IDX files (raw or .gz) in a
folder, or one .npz with ``x_train, y_train, x_test, y_test`` (Keras' ``mnist.npz`` layout).

Never downloads. Checks magic numbers, 28x28 sizes, matching image/label counts and the label
range 0..9; any failure is a DatasetError naming the file.
"""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from fastcnn.data._base import (Dataset, DatasetError, DatasetNotFoundError, check_labels,
                                data_root)
from fastcnn.data.idx import read_idx
from fastcnn.data.transforms import split_and_standardize, to_float

__all__ = ["load_mnist", "load_fashion_mnist", "load_mnist_arrays", "MNIST_FILES"]

MNIST_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
_SOURCES = {
    "mnist": "https://yann.lecun.com/exdb/mnist/ (or any MNIST mirror)",
    "fashion-mnist": "https://github.com/zalandoresearch/fashion-mnist (data/fashion)",
}
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle boot")


def _find_idx(folder: Path, stem: str):
    # accept the canonical name, the common "train-images.idx3-ubyte" spelling, and .gz of each
    alt = stem.replace("-idx", ".idx")
    for name in (stem, stem + ".gz", alt, alt + ".gz"):
        p = folder / name
        if p.is_file():
            return p
    return None


def _missing(name, where, detail=""):
    files = ", ".join(f + "[.gz]" for f in MNIST_FILES.values())
    return DatasetNotFoundError(
        f"{name}: {detail}no data found at {where}. fastcnn never downloads: put the four IDX "
        f"files ({files}) in {where}, or point --data / path= at that folder or at an .npz with "
        f"x_train, y_train, x_test, y_test. Files: {_SOURCES[name]}.")


def _check_pair(name, x, y, xpath, ypath):
    if x.ndim == 4 and x.shape[1] == 1:
        x = x[:, 0]
    if x.ndim != 3 or x.shape[1:] != (28, 28):
        raise DatasetError(f"{xpath}: images have shape {x.shape}, expected (N, 28, 28) for {name}")
    if y.ndim != 1:
        raise DatasetError(f"{ypath}: labels have shape {y.shape}, expected (N,)")
    if len(x) != len(y):
        raise DatasetError(f"{xpath}: {len(x)} images but {ypath} has {len(y)} labels")
    return x, check_labels(ypath, y, 10)


def load_mnist_arrays(path=None, name="mnist"):
    """Raw ``(x_train, y_train, x_test, y_test)``: uint8 images ``(N, 28, 28)``, int64 labels.

    ``path`` is a folder holding the IDX files or an ``.npz`` file; None means
    ``data_root()/name`` (a folder, or ``<name>.npz`` inside it).
    """
    where = Path(path).expanduser() if path is not None else data_root() / name
    if where.is_dir():
        npz = where / f"{name}.npz"
        files = {k: _find_idx(where, stem) for k, stem in MNIST_FILES.items()}
        if all(v is None for v in files.values()) and npz.is_file():
            where = npz
        elif any(v is None for v in files.values()):
            absent = [MNIST_FILES[k] for k, v in files.items() if v is None]
            detail = "" if len(absent) == 4 else f"missing {', '.join(absent)}[.gz]; "
            raise _missing(name, where, detail)
        else:
            x_tr = read_idx(files["x_train"], expect_ndim=3, expect_dtype=np.uint8)
            y_tr = read_idx(files["y_train"], expect_ndim=1, expect_dtype=np.uint8)
            x_te = read_idx(files["x_test"], expect_ndim=3, expect_dtype=np.uint8)
            y_te = read_idx(files["y_test"], expect_ndim=1, expect_dtype=np.uint8)
            x_tr, y_tr = _check_pair(name, x_tr, y_tr, files["x_train"], files["y_train"])
            x_te, y_te = _check_pair(name, x_te, y_te, files["x_test"], files["y_test"])
            return x_tr, y_tr, x_te, y_te
    if not where.is_file():
        raise _missing(name, where)
    return _load_npz(name, where)


def _load_npz(name, path):
    try:
        with np.load(path, allow_pickle=False) as z:
            keys = set(z.files)
            need = ("x_train", "y_train", "x_test", "y_test")
            if not keys.issuperset(need):
                raise DatasetError(f"{path}: .npz has keys {sorted(keys)}, needs {list(need)}")
            arrs = {k: z[k] for k in need}
    except DatasetError:
        raise
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise DatasetError(f"{path}: not a readable .npz archive ({e}); truncated or "
                           "corrupted file") from None
    except ValueError as e:  # object arrays need pickle, which is refused
        raise DatasetError(f"{path}: {e}") from None
    out = []
    for split in ("train", "test"):
        x, y = arrs["x_" + split], arrs["y_" + split]
        if x.dtype != np.uint8 and not np.issubdtype(x.dtype, np.floating):
            raise DatasetError(f"{path}: x_{split} has dtype {x.dtype}, expected uint8 or float")
        out += _check_pair(name, x, y, f"{path}[x_{split}]", f"{path}[y_{split}]")
    return tuple(out)


def load_mnist(path=None, *, val_size=5000, seed=0, standardize_inputs=False, dtype=np.float32,
               name="mnist"):
    """MNIST as a Dataset of ``(N, 1, 28, 28)`` images in ``[0, 1]``.

    The validation set (``val_size`` images, class-balanced, drawn with ``seed``) is carved out of
    the 60000 training images; the 10000 test images are kept as they are. With
    ``standardize_inputs`` the images are standardized with the training split's statistics.
    """
    x_tr, y_tr, x_te, y_te = load_mnist_arrays(path, name=name)
    src = str(Path(path).expanduser() if path is not None else data_root() / name)

    def prep(x):
        x = to_float(x, 255.0 if x.dtype == np.uint8 or x.max() > 1 else 1.0, dtype)
        return x[:, None]

    x_tr, x_te = prep(x_tr), prep(x_te)
    x_tr, y_tr, x_va, y_va, x_te, mean, std = split_and_standardize(
        x_tr, y_tr, x_te, val_size, seed, standardize_inputs)
    classes = FASHION_CLASSES if name == "fashion-mnist" else tuple(str(i) for i in range(10))
    return Dataset(name, x_tr, y_tr, x_va, y_va, x_te, y_te, 10, classes, mean, std,
                   info={"source": src, "seed": seed})


def load_fashion_mnist(path=None, **kwargs):
    """Fashion-MNIST: same files and layout as MNIST (see :func:`load_mnist`)."""
    return load_mnist(path, name="fashion-mnist", **kwargs)
