"""Dataset container, errors, seeded splits and the data-root convention shared by the loaders.

Not a loader itself: each file next to this one reads one format. Nothing in fastcnn.data ever
downloads; a missing file raises DatasetNotFoundError saying which file to put where.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["Dataset", "DatasetError", "DatasetNotFoundError", "data_root", "stratified_split"]

DATA_ENV = "FASTCNN_DATA"


class DatasetError(ValueError):
    """A data file exists but is not what it claims to be (bad magic, truncated, bad labels...).

    The message always starts with the file's path and says what is wrong.
    """


class DatasetNotFoundError(FileNotFoundError):
    """The data a loader needs is not on disk; the message says which files to put where."""


def data_root() -> Path:
    """Folder searched when no path is given: ``$FASTCNN_DATA``, else ``~/.fastcnn/data``.

    Each dataset lives in a subfolder named after it (``mnist/``, ``fashion-mnist/``, ``cifar10/``).
    """
    env = os.environ.get(DATA_ENV)
    return Path(env).expanduser() if env else Path.home() / ".fastcnn" / "data"


@dataclass
class Dataset:
    """Train / validation / test arrays of one image-classification set.

    Images are NCHW floating arrays (float32 unless asked), labels int64 in ``[0, num_classes)``.
    ``mean``/``std`` are the per-channel statistics used to standardize (None when not
    standardized), so new inputs can be put through the same transform.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    class_names: tuple = ()
    mean: np.ndarray | None = None
    std: np.ndarray | None = None
    info: dict = field(default_factory=dict)

    @property
    def input_shape(self) -> tuple:
        """Shape of one image, ``(C, H, W)``."""
        return tuple(self.x_train.shape[1:])

    @property
    def train(self):
        return self.x_train, self.y_train

    @property
    def val(self):
        return self.x_val, self.y_val

    @property
    def test(self):
        return self.x_test, self.y_test

    def summary(self) -> str:
        return (f"{self.name}: train {len(self.y_train)}, val {len(self.y_val)}, "
                f"test {len(self.y_test)}, input {self.input_shape}, {self.num_classes} classes")

    def __repr__(self) -> str:
        return f"Dataset({self.summary()})"


def stratified_split(y, fractions, rng):
    """Split indices ``0..len(y)-1`` into ``len(fractions)+1`` disjoint, class-balanced parts.

    ``fractions`` are the sizes of the first parts as fractions of the whole (e.g. ``(0.2, 0.1)``
    for test and validation); the last part takes the rest. Part k gets exactly
    ``round(fractions[k] * len(y))`` samples, shared among the classes in proportion to their
    sizes (largest remainder). Within each part the indices are shuffled with ``rng``, so the same
    seed always gives the same split.
    """
    y = np.asarray(y)
    if any(f < 0 for f in fractions) or sum(fractions) >= 1:
        raise ValueError(f"split fractions must be >= 0 and sum to < 1, got {tuple(fractions)}")
    classes, counts = np.unique(y, return_counts=True)
    pools = [rng.permutation(np.flatnonzero(y == c)) for c in classes]
    taken = np.zeros(len(classes), np.int64)
    parts = []
    for f in fractions:
        want = int(round(f * len(y)))
        exact = f * counts
        n_c = np.minimum(np.floor(exact).astype(np.int64), counts - taken)
        order = np.argsort(-(exact - np.floor(exact)), kind="stable")
        for c in order:                         # hand out the remainder, largest first
            if n_c.sum() >= want:
                break
            if taken[c] + n_c[c] < counts[c]:
                n_c[c] += 1
        parts.append(np.concatenate([p[t:t + n] for p, t, n in zip(pools, taken, n_c)]))
        taken += n_c
    parts.append(np.concatenate([p[t:] for p, t in zip(pools, taken)]))
    return [rng.permutation(p) for p in parts]


def split_off_validation(x, y, val_size, rng):
    """Carve a class-balanced validation set of about ``val_size`` samples out of (x, y).

    ``val_size`` is a count (int >= 1) or a fraction in (0, 1); 0 gives an empty validation set.
    Returns ``(x_train, y_train, x_val, y_val)``.
    """
    n = len(y)
    if val_size is None or val_size == 0:
        return x, y, x[:0], y[:0]
    frac = val_size if 0 < val_size < 1 else val_size / n
    if not 0 < frac < 1:
        raise ValueError(f"val_size={val_size!r} leaves no training data out of {n} samples")
    val_idx, train_idx = stratified_split(y, (frac,), rng)
    return x[train_idx], y[train_idx], x[val_idx], y[val_idx]


def check_labels(path, y, num_classes, what="labels"):
    """Labels must be integers in ``[0, num_classes)``: a DatasetError naming the file otherwise."""
    if y.size == 0:
        raise DatasetError(f"{path}: no {what} in the file")
    if not np.issubdtype(y.dtype, np.integer):
        raise DatasetError(f"{path}: {what} have dtype {y.dtype}, expected integers")
    lo, hi = int(y.min()), int(y.max())
    if lo < 0 or hi >= num_classes:
        bad = int(np.count_nonzero((y < 0) | (y >= num_classes)))
        raise DatasetError(f"{path}: {bad} {what} outside [0, {num_classes - 1}] "
                           f"(min {lo}, max {hi}): corrupted or not this dataset")
    return y.astype(np.int64)
