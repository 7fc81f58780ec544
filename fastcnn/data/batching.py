"""Mini-batch iteration: a re-iterable that reshuffles on every pass with its own rng.

Not a data loader with workers: arrays already sit in memory; a batch is a fancy-indexed copy.
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["BatchIterator", "iterate_minibatches"]


class BatchIterator:
    """Iterate over ``(x[idx], y[idx])`` mini-batches; each ``iter()`` is one epoch.

    With ``shuffle=True`` every epoch draws a fresh permutation from ``rng`` (a
    ``np.random.Generator``; ``None`` means ``default_rng(0)`` so runs stay reproducible), so two
    iterators built with equal seeds yield identical batch sequences. The last, smaller batch is
    kept unless ``drop_last=True``. ``y`` may be None, then batches are ``x[idx]`` alone.
    """

    def __init__(self, x, y=None, batch_size=100, *, shuffle=True, rng=None, drop_last=False):
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if y is not None and len(x) != len(y):
            raise ValueError(f"x and y differ in length: len(x)={len(x)}, len(y)={len(y)}")
        self.x, self.y = x, y
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.rng = rng if rng is not None else np.random.default_rng(0)
        self.epoch = 0

    def __len__(self):
        n = len(self.x)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self):
        n = len(self.x)
        order = self.rng.permutation(n) if self.shuffle else np.arange(n)
        self.epoch += 1
        for b in range(len(self)):
            idx = order[b * self.batch_size:(b + 1) * self.batch_size]
            if not self.shuffle:  # contiguous slice: a view, no copy
                idx = slice(b * self.batch_size, min((b + 1) * self.batch_size, n))
            yield (self.x[idx], self.y[idx]) if self.y is not None else self.x[idx]


def iterate_minibatches(x, y=None, batch_size=100, *, shuffle=True, rng=None, drop_last=False):
    """One pass over the data; shorthand for ``iter(BatchIterator(...))``."""
    return iter(BatchIterator(x, y, batch_size, shuffle=shuffle, rng=rng, drop_last=drop_last))
