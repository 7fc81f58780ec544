"""Local response normalisation: F.lrn / F.lrn_backward (the compiled kernels and the NumPy
reference) against the loop oracle tests/naive.py: both dtypes, window sizes odd and even, the
beta values with their own code paths (0.75, 0.5, 1, 0) and a general one, shapes of one and
several position chunks, 1 and 2 threads (the kernels thread from 64K elements), 2-D input,
every instruction set, and the argument checks. (The LRN layer's float64 numerical gradient
check is in test_layers.py.)"""
import numpy as np
import pytest

import naive
from conftest import assert_close, num_threads, randn
from fastcnn import functional as F

# (x shape): one chunk; two chunks of the 1024-position planes (serial); three, 80K elements
# (threaded); 2-D
SHAPES = [(2, 6, 3, 2), (3, 5, 40, 40), (2, 16, 50, 50), (4, 9)]
SHAPE_IDS = ["small", "two-chunks", "threaded", "2d"]


def _check(x, size, alpha, beta, k, dtype, rng):
    y, s = F.lrn(x, size, alpha, beta, k)
    want_y, want_s = naive.lrn(x, size, alpha, beta, k)
    assert_close(s, want_s, dtype)
    assert_close(y, want_y, dtype)
    dy = randn(rng, x.shape, dtype)
    dx = F.lrn_backward(dy, x, y, s, size, alpha, beta)
    assert_close(dx, naive.lrn_backward(dy, x, size, alpha, beta, k), dtype)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
@pytest.mark.parametrize("size", [1, 4, 5])
def test_lrn_matches_naive(backend, dtype, shape, size, threads, rng):
    x = randn(rng, shape, dtype, scale=3.0)
    with num_threads(threads):
        _check(x, size, 0.01, 0.75, 2.0, dtype, rng)


@pytest.mark.parametrize("beta", [0.5, 1.0, 0.0, 0.6])
def test_lrn_beta_paths(backend, dtype, beta, rng):
    x = randn(rng, (2, 16, 50, 50), dtype, scale=3.0)
    _check(x, 5, 0.02, beta, 1.5, dtype, rng)


def test_lrn_every_simd_level(simd, dtype, rng):
    x = randn(rng, (2, 16, 50, 50), dtype, scale=3.0)
    for beta in (0.75, 0.6):
        _check(x, 5, 0.01, beta, 2.0, dtype, rng)


def test_lrn_out_buffers_and_layouts(dtype, rng):
    x = randn(rng, (3, 7, 5, 4), dtype)
    y_buf, s_buf, dx_buf = (np.empty(x.shape, dtype) for _ in range(3))
    y, s = F.lrn(np.asfortranarray(x), 3, 0.1, 0.75, 1.0, out=y_buf, scale_out=s_buf)
    assert y is y_buf and s is s_buf
    dy = randn(rng, x.shape, dtype)
    dx = F.lrn_backward(np.asfortranarray(dy), x, y, s, 3, 0.1, 0.75, out=dx_buf)
    assert dx is dx_buf
    assert_close(dx, naive.lrn_backward(dy, x, 3, 0.1, 0.75, 1.0), dtype)


@pytest.mark.parametrize("call, error, match", [
    (lambda x: F.lrn(x, 0), ValueError, "size must be a positive integer"),
    (lambda x: F.lrn(x, 2.5), ValueError, "size"),
    (lambda x: F.lrn(x, 5, alpha=-1.0), ValueError, "alpha must be a finite number >= 0"),
    (lambda x: F.lrn(x, 5, beta=float("nan")), ValueError, "beta"),
    (lambda x: F.lrn(x, 5, k=0.0), ValueError, "k must be a finite number > 0"),
    (lambda x: F.lrn(x, 5, alpha="0.1"), TypeError, "alpha must be a number"),
    (lambda x: F.lrn(x[0], 5), ValueError, "x must be 2-D or 4-D"),
    (lambda x: F.lrn(x.astype(np.int32), 5), TypeError, "float32 or float64"),
    (lambda x: F.lrn(x, 5, out=np.empty((1, 2))), ValueError, "out must have shape"),
    (lambda x: F.lrn_backward(x[:, :2], x, x, x), ValueError, "dy.shape"),
    (lambda x: F.lrn_backward(x, x, x[:1], x), ValueError, "y.shape"),
    (lambda x: F.lrn_backward(x, x, x, x.astype(np.float32)), TypeError, "scale has dtype"),
])
def test_lrn_bad_arguments(call, error, match):
    x = np.ones((2, 3, 4, 4))
    with pytest.raises(error, match=match):
        call(x)


def test_lrn_empty_batch(dtype):
    x = np.zeros((0, 3, 4, 4), dtype)
    y, s = F.lrn(x)
    assert y.shape == s.shape == x.shape
    assert F.lrn_backward(x, x, y, s).shape == x.shape
