"""Array transforms for image data: scaling to [0, 1], per-channel standardization, one-hot
labels and bilinear resizing (e.g. 8x8 digits -> 28x28 for MNIST-shaped models).

Plain NumPy, no augmentation library. Resizing follows the half-pixel-centre convention of
``torch.nn.functional.interpolate(mode="bilinear", align_corners=False)``.
"""
from __future__ import annotations

import numpy as np

__all__ = ["to_float", "standardize", "apply_standardize", "one_hot", "resize_images"]


def to_float(x, max_value=None, dtype=np.float32):
    """Scale raw pixels to ``[0, 1]``: ``x / max_value`` (``max_value`` defaults to 255 for
    uint8 input, else to ``x.max()``)."""
    x = np.asarray(x)
    if max_value is None:
        max_value = 255.0 if x.dtype == np.uint8 else float(x.max()) if x.size else 1.0
    if max_value <= 0:
        raise ValueError(f"to_float: max_value must be > 0, got {max_value}")
    return (x.astype(np.float64) / max_value).astype(dtype)


def standardize(x, eps=1e-7):
    """Per-channel standardization of NCHW (or (N, F)) data: ``(x - mean) / std``.

    Statistics are computed over every axis except the channel axis (axis 1), in float64.
    Returns ``(x_std, mean, std)``; apply the same transform to other splits with
    :func:`apply_standardize` so validation and test data never leak into the statistics.
    """
    x = np.asarray(x)
    axes = (0,) + tuple(range(2, x.ndim))
    mean = x.mean(axis=axes, dtype=np.float64)
    std = x.std(axis=axes, dtype=np.float64) + eps
    return apply_standardize(x, mean, std), mean, std


def apply_standardize(x, mean, std):
    """``(x - mean) / std`` with per-channel ``mean``/``std`` broadcast over axis 1."""
    x = np.asarray(x)
    shape = (1, -1) + (1,) * (x.ndim - 2)
    m = np.asarray(mean, np.float64).reshape(shape)
    s = np.asarray(std, np.float64).reshape(shape)
    return ((x - m) / s).astype(x.dtype if np.issubdtype(x.dtype, np.floating) else np.float32)


def one_hot(labels, num_classes=None, dtype=np.float32):
    """``(N,)`` integer labels -> ``(N, num_classes)`` rows with a single 1.

    ``num_classes`` defaults to ``labels.max() + 1``. Labels outside ``[0, num_classes)`` or of a
    non-integer dtype raise ValueError/TypeError.
    """
    labels = np.asarray(labels)
    if not np.issubdtype(labels.dtype, np.integer):
        raise TypeError(f"one_hot: labels must be integers, got dtype {labels.dtype}")
    if labels.ndim != 1:
        raise ValueError(f"one_hot: labels must be 1-D, got shape {labels.shape}")
    if num_classes is None:
        num_classes = int(labels.max()) + 1 if labels.size else 0
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"one_hot: labels must lie in [0, {num_classes - 1}], "
                         f"got min {labels.min()} max {labels.max()}")
    out = np.zeros((labels.size, num_classes), dtype=dtype)
    out[np.arange(labels.size), labels] = 1
    return out


def _interp_matrix(n_out, n_in):
    # R (n_out, n_in): row i holds the bilinear weights of output pixel i (half-pixel centres)
    scale = n_in / n_out
    src = np.clip((np.arange(n_out) + 0.5) * scale - 0.5, 0, n_in - 1)
    lo = np.floor(src).astype(np.int64)
    hi = np.minimum(lo + 1, n_in - 1)
    w = src - lo
    R = np.zeros((n_out, n_in))
    R[np.arange(n_out), lo] += 1 - w
    R[np.arange(n_out), hi] += w
    return R


def resize_images(x, size):
    """Bilinear resize of ``(N, C, H, W)`` images to ``size`` (int or ``(OH, OW)``).

    # x: (N, C, H, W) -> (N, C, OH, OW);  y = Ry @ x @ Rx^T per plane
    """
    x = np.asarray(x)
    if x.ndim != 4:
        raise ValueError(f"resize_images: x must be (N, C, H, W), got shape {x.shape}")
    oh, ow = (size, size) if np.isscalar(size) else tuple(size)
    if oh < 1 or ow < 1:
        raise ValueError(f"resize_images: size must be >= 1, got {size!r}")
    ry = _interp_matrix(int(oh), x.shape[2])
    rx = _interp_matrix(int(ow), x.shape[3])
    out = np.einsum("ih,nchw,jw->ncij", ry, x.astype(np.float64), rx, optimize=True)
    return out.astype(x.dtype if np.issubdtype(x.dtype, np.floating) else np.float32)


def split_and_standardize(x_tr, y_tr, x_te, val_size, seed, standardize_inputs):
    """Split ``val_size`` validation samples off the training set (seeded), then, when asked,
    standardize every split with the remaining training split's statistics.

    Returns ``(x_tr, y_tr, x_va, y_va, x_te, mean, std)``; mean/std are None when not asked."""
    from fastcnn.data._base import split_off_validation
    x_tr, y_tr, x_va, y_va = split_off_validation(x_tr, y_tr, val_size,
                                                  np.random.default_rng(seed))
    mean = std = None
    if standardize_inputs:
        x_tr, mean, std = standardize(x_tr)
        x_va, x_te = apply_standardize(x_va, mean, std), apply_standardize(x_te, mean, std)
    return x_tr, y_tr, x_va, y_va, x_te, mean, std
