"""F.linear / F.linear_backward (the Affine layer's kernels): both backends against a plain-loop
oracle, float32 and float64, layouts, threads, numerical gradients, out= and bad input."""
import numpy as np
import pytest

from conftest import (LAYOUTS, assert_close, check_gradients, layout, num_threads, randn)
from fastcnn import functional as F

# (N, IN, OUT): batch 1, sizes that are not multiples of the 16-wide thread blocks, one large
# enough that the kernel really splits across two threads (4M multiply-adds and more:
# LINEAR_PARALLEL_MIN in csrc/linear.c).
SHAPES = [(1, 1, 1), (1, 7, 3), (5, 33, 17), (8, 40, 70), (64, 150, 100), (64, 300, 223)]


def naive_linear(x, w, b):
    x, w = x.astype(np.float64), w.astype(np.float64)
    N, IN = x.shape
    OUT = w.shape[0]
    y = np.zeros((N, OUT))
    for n in range(N):              # one dot product per output: obviously the definition
        for o in range(OUT):
            y[n, o] = np.sum(x[n] * w[o]) + (0.0 if b is None else float(b[o]))
    return y


def naive_linear_backward(dy, x, w):
    dy, x, w = (a.astype(np.float64) for a in (dy, x, w))
    N, IN = x.shape
    OUT = w.shape[0]
    dx, dw, db = np.zeros((N, IN)), np.zeros((OUT, IN)), np.zeros(OUT)
    for n in range(N):              # accumulate every (n, o) term's contribution
        for o in range(OUT):
            db[o] += dy[n, o]
            dw[o] += dy[n, o] * x[n]
            dx[n] += dy[n, o] * w[o]
    return dx, dw, db


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("with_bias", [True, False])
def test_matches_naive(backend, dtype, shape, with_bias, rng):
    N, IN, OUT = shape
    x, w = randn(rng, (N, IN), dtype), randn(rng, (OUT, IN), dtype)
    b = randn(rng, OUT, dtype) if with_bias else None
    y = F.linear(x, w, b)
    assert_close(y, naive_linear(x, w, b), dtype)
    dy = randn(rng, (N, OUT), dtype)
    dx, dw, db = F.linear_backward(dy, x, w, need_dbias=with_bias)
    ndx, ndw, ndb = naive_linear_backward(dy, x, w)
    assert_close(dx, ndx, dtype)
    assert_close(dw, ndw, dtype)
    if with_bias:
        assert_close(db, ndb, dtype)
    else:
        assert db is None


# Batches of <= 16 rows, at most two vectors of them (AVX-512 16 float or 8 double rows a vector,
# AVX2 8 or 4, SSE2 4 or 2; BLAS above), take the small-batch kernels (W streamed once; forward:
# W rows broadcast against the transposed batch, one or two vectors of it; dx the same way
# against dy transposed; two dW rows against groups of 8 batch rows; float batches of up to half
# a vector two W columns per vector): tails of each (odd N, OUT, IN: an odd IN's last column alone
# in the float pair kernels), whole and part groups (8, 9), the 16/17 boundary, and shapes large
# enough to split across threads (4M multiply-adds: (7, 1000, 301) splits its backward with dx
# only).
SMALL_SHAPES = [(3, 37, 13), (7, 1000, 301), (8, 300, 65), (9, 100, 33), (16, 129, 66),
                (17, 129, 66), (2, 2000, 1031), (15, 1000, 301)]


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("shape", SMALL_SHAPES, ids=str)
def test_small_batches_match_naive(simd, dtype, shape, threads, rng):
    N, IN, OUT = shape
    x, w, b = randn(rng, (N, IN), dtype), randn(rng, (OUT, IN), dtype), randn(rng, OUT, dtype)
    dy = randn(rng, (N, OUT), dtype)
    with num_threads(threads):
        y = F.linear(x, w, b)
        dx, dw, db = F.linear_backward(dy, x, w)
        _, dw2, _ = F.linear_backward(dy, x, w, need_dx=False, need_dbias=False)
    assert_close(y, naive_linear(x, w, b), dtype)
    for got, want in zip((dx, dw, db), naive_linear_backward(dy, x, w)):
        assert_close(got, want, dtype)
    np.testing.assert_array_equal(dw2, dw)


@pytest.mark.parametrize("shape", [(7, 1000, 301), (64, 150, 100), (64, 300, 223)],
                         ids=["small", "gemm", "gemm-threaded"])
def test_grads_are_added_into(backend, dtype, shape, rng):
    """grads=(dweight, dbias): the gradients are added to those arrays (a Parameter's .grad),
    which come back in place of fresh ones; without bias grads[1] is None."""
    N, IN, OUT = shape
    x, w, dy = randn(rng, (N, IN), dtype), randn(rng, (OUT, IN), dtype), randn(rng, (N, OUT), dtype)
    gw, gb = randn(rng, (OUT, IN), dtype), randn(rng, OUT, dtype)
    start_w, start_b = gw.copy(), gb.copy()
    dx, dw, db = F.linear_backward(dy, x, w, grads=(gw, gb))
    assert dw is gw and db is gb
    ndx, ndw, ndb = naive_linear_backward(dy, x, w)
    assert_close(dx, ndx, dtype)
    assert_close(gw, start_w + ndw, dtype)
    assert_close(gb, start_b + ndb, dtype)
    _, dw, db = F.linear_backward(dy, x, w, need_dx=False, need_dbias=False, grads=(gw, None))
    assert dw is gw and db is None
    assert_close(gw, start_w + 2 * ndw, dtype)


@pytest.mark.parametrize("shape", [(7, 1000, 301), (64, 150, 100), (64, 300, 223)],
                         ids=["small", "gemm", "gemm-threaded"])
def test_grads_stored_without_accumulate(backend, dtype, shape, rng):
    """grads with accumulate=False: the gradients are stored, whatever the arrays held (NaN:
    never multiplied by a zero beta), with and without dbias."""
    N, IN, OUT = shape
    x, w, dy = randn(rng, (N, IN), dtype), randn(rng, (OUT, IN), dtype), randn(rng, (N, OUT), dtype)
    gw, gb = np.full((OUT, IN), np.nan, dtype), np.full(OUT, np.nan, dtype)
    dx, dw, db = F.linear_backward(dy, x, w, grads=(gw, gb), accumulate=False)
    assert dw is gw and db is gb
    ndx, ndw, ndb = naive_linear_backward(dy, x, w)
    assert_close(dx, ndx, dtype)
    assert_close(gw, ndw, dtype)
    assert_close(gb, ndb, dtype)
    gw[...] = np.nan
    _, dw, db = F.linear_backward(dy, x, w, need_dx=False, need_dbias=False, grads=(gw, None),
                                  accumulate=False)
    assert db is None
    assert_close(gw, ndw, dtype)


def test_bad_grads(rng):
    x, w, dy = randn(rng, (3, 5), np.float32), randn(rng, (4, 5), np.float32), None
    dy = randn(rng, (3, 4), np.float32)
    good_w, good_b = np.zeros((4, 5), np.float32), np.zeros(4, np.float32)
    for grads, err in (((good_w,), TypeError), ((good_w[:, :4], good_b), ValueError),
                       ((good_w.astype(np.float64), good_b), ValueError),
                       ((np.asfortranarray(np.zeros((4, 5), np.float32)), good_b), ValueError),
                       ((good_w, None), ValueError)):
        with pytest.raises(err, match="grads"):
            F.linear_backward(dy, x, w, grads=grads)


def test_skips_dx(backend, rng):
    x, w, dy = randn(rng, (4, 9, ), np.float32), randn(rng, (5, 9), np.float32), None
    dy = randn(rng, (4, 5), np.float32)
    dx, dw, db = F.linear_backward(dy, x, w, need_dx=False)
    assert dx is None and dw.shape == (5, 9) and db.shape == (5,)


@pytest.mark.parametrize("kind", LAYOUTS)
def test_layouts(backend, kind, rng):
    x, w, b = randn(rng, (6, 20), np.float32), randn(rng, (18, 20), np.float32), None
    b = randn(rng, 18, np.float32)
    dy = randn(rng, (6, 18), np.float32)
    y = F.linear(layout(x, kind), layout(w, kind), layout(b, kind))
    assert y.flags.c_contiguous
    assert_close(y, naive_linear(x, w, b), np.float32)
    dx, dw, db = F.linear_backward(layout(dy, kind), layout(x, kind), layout(w, kind))
    ndx, ndw, ndb = naive_linear_backward(dy, x, w)
    assert_close(dx, ndx, np.float32)
    assert_close(dw, ndw, np.float32)
    assert_close(db, ndb, np.float32)


def test_gradients_float64(backend, rng):
    x, w, b = randn(rng, (3, 7), np.float64), randn(rng, (4, 7), np.float64), None
    b = randn(rng, 4, np.float64)
    r = randn(rng, (3, 4), np.float64)
    loss = lambda: float(np.sum(F.linear(x, w, b) * r))  # noqa: E731
    dx, dw, db = F.linear_backward(r, x, w)
    check_gradients(loss, {"x": x, "weight": w, "bias": b}, {"x": dx, "weight": dw, "bias": db})


def test_two_threads_agree_with_one(dtype, rng):
    x, w, b = randn(rng, (64, 300), dtype), randn(rng, (200, 300), dtype), None
    b = randn(rng, 200, dtype)
    dy = randn(rng, (64, 200), dtype)
    results = []
    for n in (1, 2):
        with num_threads(n):
            results.append((F.linear(x, w, b),) + F.linear_backward(dy, x, w))
    for a, b_ in zip(*results):
        assert_close(a, b_, dtype, rtol=1e-6 if dtype == np.float32 else 1e-13)


def test_out_buffers(backend, rng):
    x, w = randn(rng, (5, 8), np.float32), randn(rng, (3, 8), np.float32)
    buf = np.full((5, 3), np.nan, np.float32)
    assert F.linear(x, w, out=buf) is buf
    assert_close(buf, naive_linear(x, w, None), np.float32)
    dbuf = np.full((5, 8), np.nan, np.float32)
    dx, _, _ = F.linear_backward(np.ones((5, 3), np.float32), x, w, out=dbuf)
    assert dx is dbuf
    with pytest.raises(ValueError, match="must have shape"):
        F.linear(x, w, out=np.empty((5, 4), np.float32))


def test_empty_batch(backend):
    y = F.linear(np.empty((0, 4), np.float32), np.ones((3, 4), np.float32), np.ones(3, np.float32))
    assert y.shape == (0, 3)
    dx, dw, db = F.linear_backward(np.empty((0, 3), np.float32), np.empty((0, 4), np.float32),
                                   np.ones((3, 4), np.float32))
    assert dx.shape == (0, 4) and not dw.any() and not db.any()


F32 = np.float32
BAD = [
    ("x 3-D", lambda: F.linear(np.ones((2, 3, 4), F32), np.ones((5, 4), F32)), ValueError, "2-D"),
    ("features", lambda: F.linear(np.ones((2, 3), F32), np.ones((5, 4), F32)), ValueError,
     "weight has 4 input features but x has 3"),
    ("bias len", lambda: F.linear(np.ones((2, 4), F32), np.ones((5, 4), F32), np.ones(4, F32)),
     ValueError, "bias has 4 entries"),
    ("int x", lambda: F.linear(np.ones((2, 4), np.int64), np.ones((5, 4), F32)), TypeError,
     "float32 or float64"),
    ("mixed", lambda: F.linear(np.ones((2, 4), np.float64), np.ones((5, 4), F32)), TypeError,
     "dtype"),
    ("None", lambda: F.linear(None, np.ones((5, 4), F32)), TypeError, "got None"),
    ("dy shape", lambda: F.linear_backward(np.ones((2, 4), F32), np.ones((2, 4), F32),
                                           np.ones((5, 4), F32)), ValueError, "dy.shape"),
    ("zero out", lambda: F.linear(np.ones((2, 4), F32), np.ones((0, 4), F32)), ValueError,
     "size >= 1"),
]


@pytest.mark.parametrize("name, call, exc, fragment", BAD, ids=[b[0] for b in BAD])
def test_bad_input(name, call, exc, fragment):
    with pytest.raises(exc, match=fragment):
        call()
