"""scikit-learn's bundled handwritten digits (UCI optdigits test set: 1797 images, 8x8, 17 grey
levels 0..16): fastcnn's built-in default data set, because it needs no download and no file.

scikit-learn is the optional extra ``fastcnn[data]``. The images are read from the CSV file it
installs (the one its ``load_digits`` reads), found without importing scikit-learn: that import
took 1.15 s of the default ``fastcnn train``'s 4.1 s. Where the file is not where it was, its
``load_digits`` is called. The split into train / validation / test is class-balanced and
seeded; ``resize=28`` upsamples bilinearly to MNIST's 28x28 for models built for MNIST-shaped
input.
"""
from __future__ import annotations

import importlib.util
import os
import warnings

import numpy as np

from fastcnn.data._base import Dataset, stratified_split
from fastcnn.data.transforms import apply_standardize, resize_images, standardize

__all__ = ["load_digits", "load_digits_arrays"]


_N_DIGITS = 1797


def _installed_digits_table():
    """scikit-learn's digits.csv.gz as a (1797, 65) table (64 pixels, then the label), or None
    when scikit-learn or the file is missing or the file does not hold that table."""
    try:
        spec = importlib.util.find_spec("sklearn")
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    for root in spec.submodule_search_locations or ():
        path = os.path.join(root, "datasets", "data", "digits.csv.gz")
        if not os.path.isfile(path):
            continue
        try:
            with warnings.catch_warnings():   # an empty file: the fallback below, not a warning
                warnings.simplefilter("ignore", UserWarning)
                table = np.loadtxt(path, delimiter=",", ndmin=2)
        except (OSError, ValueError, EOFError):
            return None
        pixels, labels = table[:, :-1], table[:, -1]
        if (table.shape == (_N_DIGITS, 65) and pixels.min() >= 0 and pixels.max() <= 16
                and np.array_equal(labels, np.round(labels)) and set(labels) == set(range(10))):
            return table
        return None
    return None


def load_digits_arrays():
    """``(images float64 (1797, 8, 8) in 0..16, labels int64 (1797,))`` from scikit-learn."""
    table = _installed_digits_table()
    if table is not None:
        return table[:, :-1].reshape(-1, 8, 8).copy(), table[:, -1].astype(np.int64)
    try:
        from sklearn.datasets import load_digits as _sk_load_digits
    except ImportError as e:
        raise ImportError(
            f"the 'digits' data set comes with scikit-learn, which is not installed ({e}). "
            'Install it with: pip install "fastcnn[data]"') from None
    d = _sk_load_digits()
    return d.images.astype(np.float64), d.target.astype(np.int64)


def load_digits(*, test_size=0.2, val_size=0.1, seed=0, resize=None, standardize_inputs=False,
                dtype=np.float32):
    """The digits as a Dataset of ``(N, 1, 8, 8)`` images in ``[0, 1]`` (pixel / 16).

    ``test_size`` and ``val_size`` are fractions of each class (defaults: 360 test, 180
    validation, 1257 training images), drawn with ``np.random.default_rng(seed)``. ``resize``
    (an int or ``(H, W)``) resizes bilinearly, e.g. to 28 for MNIST-shaped models. With
    ``standardize_inputs`` the images are standardized with the training split's statistics.
    """
    images, labels = load_digits_arrays()
    x = (images / 16.0)[:, None]                       # (1797, 1, 8, 8) in [0, 1]
    if resize is not None:
        x = np.clip(resize_images(x, resize), 0.0, 1.0)
    x = x.astype(dtype)
    test_idx, val_idx, train_idx = stratified_split(labels, (test_size, val_size),
                                                    np.random.default_rng(seed))
    x_tr, x_va, x_te = x[train_idx], x[val_idx], x[test_idx]
    mean = std = None
    if standardize_inputs:
        x_tr, mean, std = standardize(x_tr)
        x_va, x_te = apply_standardize(x_va, mean, std), apply_standardize(x_te, mean, std)
    return Dataset("digits", x_tr, labels[train_idx], x_va, labels[val_idx], x_te,
                   labels[test_idx], 10, tuple(str(i) for i in range(10)), mean, std,
                   info={"source": "sklearn.datasets.load_digits", "seed": seed,
                         "resize": resize})
