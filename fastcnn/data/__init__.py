"""Datasets for fastcnn: loaders with validation, a procedural set, transforms and batching.

- ``digits``: scikit-learn's bundled 8x8 digits, the built-in default (no download, no file);
- ``mnist`` / ``fashion-mnist``: local IDX files (raw or .gz) or an .npz;
- ``cifar10``: the local binary version (never the pickled one);
- ``synthetic``: seeded procedural images of any shape.

Nothing here downloads. ``load_dataset(name, ...)`` is the one entry point the CLI uses; the
per-format loaders are public too. Images come back NCHW float32, labels int64.
"""
from __future__ import annotations

from fastcnn.data._base import (Dataset, DatasetError, DatasetNotFoundError, data_root,
                                split_off_validation, stratified_split)
from fastcnn.data.batching import BatchIterator, iterate_minibatches
from fastcnn.data.cifar import CIFAR10_CLASSES, load_cifar10, load_cifar10_arrays
from fastcnn.data.digits import load_digits, load_digits_arrays
from fastcnn.data.idx import read_idx, write_idx
from fastcnn.data.mnist import load_fashion_mnist, load_mnist, load_mnist_arrays
from fastcnn.data.synthetic import load_synthetic, make_synthetic
from fastcnn.data.transforms import (apply_standardize, one_hot, resize_images, standardize,
                                     to_float)

__all__ = [
    "DATASETS", "Dataset", "DatasetError", "DatasetNotFoundError", "BatchIterator",
    "CIFAR10_CLASSES", "apply_standardize", "data_root", "iterate_minibatches", "load_cifar10",
    "load_cifar10_arrays", "load_dataset", "load_digits", "load_digits_arrays",
    "load_fashion_mnist", "load_mnist", "load_mnist_arrays", "load_synthetic", "make_synthetic",
    "one_hot", "read_idx", "resize_images", "split_off_validation", "standardize",
    "stratified_split", "to_float", "write_idx",
]

DATASETS = ("digits", "mnist", "fashion-mnist", "cifar10", "synthetic")


def load_dataset(name, path=None, *, seed=0, resize=None, standardize_inputs=None,
                 n_train=None, **kwargs) -> Dataset:
    """Load a data set by name (one of ``DATASETS``; ``_`` and ``-`` are interchangeable).

    ``path`` points at local files (ignored by ``digits`` and ``synthetic``); ``seed`` fixes the
    validation/test split; ``resize`` (int or ``(H, W)``) resizes every split bilinearly;
    ``n_train`` keeps only the first ``n_train`` training images (a class-balanced subset, since
    the split is shuffled); ``standardize_inputs`` overrides the per-set default (True for
    cifar10 and synthetic, False otherwise). Other keywords go to the set's loader, e.g.
    ``image_shape=(3, 32, 32), n_samples=5000`` for ``synthetic``.
    """
    key = str(name).lower().replace("_", "-")
    if key == "fashion":
        key = "fashion-mnist"
    opts = dict(kwargs, seed=seed)
    if standardize_inputs is not None:
        opts["standardize_inputs"] = standardize_inputs
    if key == "digits":
        if path is not None:
            raise ValueError("the digits set is bundled with scikit-learn; it takes no path")
        ds = load_digits(resize=resize, **opts)
        resize = None  # already resized before the split
    elif key in ("mnist", "fashion-mnist"):
        ds = load_mnist(path, name=key, **opts)
    elif key == "cifar10":
        ds = load_cifar10(path, **opts)
    elif key == "synthetic":
        ds = load_synthetic(**opts)
    else:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    if n_train is not None:
        if not 1 <= int(n_train) <= len(ds.y_train):
            raise ValueError(f"n_train must be in [1, {len(ds.y_train)}], got {n_train}")
        ds.x_train, ds.y_train = ds.x_train[:int(n_train)], ds.y_train[:int(n_train)]
    if resize is not None:
        ds.x_train, ds.x_val, ds.x_test = (resize_images(a, resize) if len(a) else
                                           a.reshape(a.shape[:2] + _pair(resize))
                                           for a in (ds.x_train, ds.x_val, ds.x_test))
        ds.info["resize"] = resize
    return ds


def _pair(size):
    return (int(size), int(size)) if isinstance(size, (int,)) else tuple(int(s) for s in size)
