"""A seeded, procedural image-classification set of any shape: no files, any size, any number of
classes. Used for AlexNet-sized runs and for tests.

Each class owns a prototype image: a sum of a few oriented cosine gratings (class-specific
frequency, orientation, phase and per-channel colour) plus a Gaussian blob at a class-specific
place. A sample is its class prototype, circularly shifted by a random offset, scaled by a random
contrast, plus a weaker, independently shifted prototype of another class, plus Gaussian pixel
noise. ``noise`` sets the difficulty. Not natural images: it
teaches whether a pipeline learns, not how good a model is.
"""
from __future__ import annotations

import numpy as np

from fastcnn.data._base import Dataset, split_off_validation
from fastcnn.data.transforms import apply_standardize, standardize

__all__ = ["make_synthetic", "load_synthetic"]


def _shape3(image_shape):
    shape = (image_shape,) if np.isscalar(image_shape) else tuple(int(s) for s in image_shape)
    if len(shape) == 2:
        shape = (1,) + shape
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"image_shape must be (H, W) or (C, H, W) with sizes >= 1, "
                         f"got {image_shape!r}")
    return shape


def _prototypes(num_classes, shape, rng):
    c, h, w = shape
    yy, xx = np.meshgrid(np.arange(h) / h, np.arange(w) / w, indexing="ij")
    protos = np.zeros((num_classes, c, h, w))
    for k in range(num_classes):
        img = np.zeros((c, h, w))
        for _ in range(3):
            freq = rng.uniform(1.0, 4.0)
            theta = rng.uniform(0, np.pi)
            phase = rng.uniform(0, 2 * np.pi)
            wave = np.cos(2 * np.pi * freq * (np.cos(theta) * xx + np.sin(theta) * yy) + phase)
            img += rng.normal(0, 1, size=(c, 1, 1)) * wave
        cy, cx = rng.uniform(0.2, 0.8, size=2)
        blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * 0.12 ** 2))
        img += 2.0 * rng.choice([-1.0, 1.0], size=(c, 1, 1)) * blob
        protos[k] = img / (img.std() + 1e-12)
    return protos


def make_synthetic(n_samples=1000, image_shape=(1, 28, 28), num_classes=10, *, noise=1.0,
                   max_shift=None, distractor=0.6, seed=0, dtype=np.float32):
    """``(x (n, C, H, W), y (n,))``: a class-balanced procedural set (see module docstring).

    The prototypes depend only on ``(image_shape, num_classes, seed)``; ``max_shift`` (pixels,
    default a quarter of the image side) bounds the random circular shift of each sample;
    ``distractor`` is the largest weight of the second, other-class prototype mixed into it.
    """
    c, h, w = _shape3(image_shape)
    if int(num_classes) < 2:
        raise ValueError(f"num_classes must be >= 2, got {num_classes}")
    if int(n_samples) < 1:
        raise ValueError(f"n_samples must be >= 1, got {n_samples}")
    rng = np.random.default_rng(seed)
    protos = _prototypes(int(num_classes), (c, h, w), rng)
    y = rng.permutation(np.arange(int(n_samples)) % int(num_classes)).astype(np.int64)
    ms = max(h, w) // 4 if max_shift is None else int(max_shift)
    x = np.empty((len(y), c, h, w), dtype=dtype)
    shifts = rng.integers(-ms, ms + 1, size=(len(y), 2)) if ms > 0 else np.zeros((len(y), 2), int)
    contrast = rng.uniform(0.7, 1.3, size=len(y))
    # a weaker copy of another class's prototype, shifted independently, distracts the model
    other = (y + rng.integers(1, int(num_classes), size=len(y))) % int(num_classes)
    mix = rng.uniform(0.0, distractor, size=len(y))
    shifts2 = rng.integers(-ms, ms + 1, size=(len(y), 2)) if ms > 0 else shifts
    for i, k in enumerate(y):
        img = np.roll(protos[k], tuple(shifts[i]), axis=(1, 2)) * contrast[i]
        img += mix[i] * np.roll(protos[other[i]], tuple(shifts2[i]), axis=(1, 2))
        x[i] = img + noise * rng.standard_normal((c, h, w))
    return x, y


def load_synthetic(n_samples=2000, image_shape=(1, 28, 28), num_classes=10, *, noise=1.0,
                   max_shift=None, distractor=0.6, test_size=0.2, val_size=0.1, seed=0,
                   standardize_inputs=True, dtype=np.float32):
    """:func:`make_synthetic` split into a Dataset (fractions of ``n_samples``; class-balanced)."""
    x, y = make_synthetic(n_samples, image_shape, num_classes, noise=noise, max_shift=max_shift,
                          distractor=distractor, seed=seed, dtype=dtype)
    rng = np.random.default_rng(seed + 1)
    x_rest, y_rest, x_te, y_te = split_off_validation(x, y, test_size, rng)
    val = val_size / (1 - test_size) if 0 < val_size < 1 else val_size
    x_tr, y_tr, x_va, y_va = split_off_validation(x_rest, y_rest, val, rng)
    mean = std = None
    if standardize_inputs:
        x_tr, mean, std = standardize(x_tr)
        x_va, x_te = apply_standardize(x_va, mean, std), apply_standardize(x_te, mean, std)
    shape = _shape3(image_shape)
    return Dataset("synthetic", x_tr, y_tr, x_va, y_va, x_te, y_te, int(num_classes),
                   tuple(f"class{k}" for k in range(int(num_classes))), mean, std,
                   info={"seed": seed, "noise": noise, "image_shape": shape})
