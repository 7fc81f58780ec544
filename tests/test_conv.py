"""F.conv2d / F.conv2d_backward against tests/naive.py (both backends), fast against reference,
numerical gradients in float64, awkward shapes and memory layouts, threads, NaN/Inf, batch 0."""
import numpy as np
import pytest

import naive
from conftest import (FLOATS, LAYOUTS, assert_close, check_gradients, layout, num_threads,
                      randn)
from fastcnn import functional as F

# (x shape, weight shape, stride, padding)
CASES = [
    ((2, 3, 7, 6), (4, 3, 3, 3), 1, 0),                 # plain 3x3, odd non-square input
    ((2, 3, 7, 6), (4, 3, 3, 2), (2, 1), (1, 0)),       # non-square kernel, per-axis stride/pad
    ((1, 1, 5, 5), (2, 1, 1, 1), 1, 0),                 # batch 1, one channel, 1x1
    ((2, 3, 5, 5), (4, 3, 1, 1), 2, 0),                 # 1x1 with stride
    ((3, 2, 8, 9), (3, 2, 3, 3), 3, 1),                 # stride that does not divide
    ((2, 3, 5, 7), (5, 3, 5, 5), 2, 2),                 # 5x5, padding 2
    ((1, 3, 9, 4), (2, 3, 1, 4), (1, 3), (0, 1)),       # 1x4 kernel, uneven stride
    ((2, 1, 6, 6), (3, 1, 2, 2), 2, 0),                 # non-overlapping 2x2
    ((2, 4, 4, 4), (6, 4, 4, 4), 1, 0),                 # kernel = input: 1x1 output
    ((1, 2, 3, 3), (2, 2, 3, 3), 1, 2),                 # padding wider than the kernel's half
    ((3, 3, 11, 13), (8, 3, 3, 5), (2, 3), (1, 2)),     # everything odd
    ((2, 2, 1, 7), (3, 2, 1, 3), 1, (0, 1)),            # one-row images
]
CASE_IDS = [f"x{c[0]}-w{c[1]}-s{c[2]}-p{c[3]}".replace(" ", "") for c in CASES]
# small enough for central differences on both backends
GRAD_CASES = [CASES[i] for i in (0, 1, 2, 4, 5, 6, 9)]
GRAD_IDS = [CASE_IDS[i] for i in (0, 1, 2, 4, 5, 6, 9)]
# conv results may differ between thread counts by the rounding of a reduction, nothing more
RTOL_THREADS = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-13}


def _inputs(rng, case, dtype):
    xs, ws, stride, padding = case
    x = randn(rng, xs, dtype)
    w = randn(rng, ws, dtype, scale=0.5)
    b = randn(rng, ws[0], dtype)
    return x, w, b, stride, padding


# ---- forward and backward against the loop oracle (each backend) ----------------------------

@pytest.mark.parametrize("variant", ["bias", "nobias", "bias+relu"])
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_forward_matches_naive(backend, dtype, case, variant, rng):
    x, w, b, stride, padding = _inputs(rng, case, dtype)
    bias = None if variant == "nobias" else b
    relu = variant.endswith("relu")
    y = F.conv2d(x, w, bias, stride=stride, padding=padding, relu=relu)
    expected = naive.conv2d(x, w, bias, stride, padding, relu)
    assert_close(y, expected, dtype)
    assert y.flags.c_contiguous
    if relu:
        assert (y >= 0).all()


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_backward_matches_naive(backend, dtype, case, rng):
    x, w, _, stride, padding = _inputs(rng, case, dtype)
    y = F.conv2d(x, w, None, stride=stride, padding=padding)
    dy = randn(rng, y.shape, dtype)
    dx, dw, db = F.conv2d_backward(dy, x, w, stride=stride, padding=padding)
    ndx, ndw, ndb = naive.conv2d_backward(dy, x, w, stride, padding)
    assert_close(dx, ndx, dtype)
    assert_close(dw, ndw, dtype)
    assert_close(db, ndb, dtype)
    for a in (dx, dw, db):
        assert a.flags.c_contiguous


def test_output_size_helper():
    assert F.conv_output_size(7, 3, 2, 1) == naive.out_size(7, 3, 2, 1) == 4
    assert F.conv_output_size(28, 5, 1, 0) == 24
    for size in range(1, 9):
        for k in range(1, 5):
            for s in range(1, 4):
                for p in range(0, 3):
                    if k <= size + 2 * p:
                        assert F.conv_output_size(size, k, s, p) == naive.out_size(size, k, s, p)


# ---- fast against reference -----------------------------------------------------------------

@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_fast_matches_reference(dtype, case, rng):
    x, w, b, stride, padding = _inputs(rng, case, dtype)
    results = {}
    for name in ("fast", "reference"):
        with F.use_backend(name):
            y = F.conv2d(x, w, b, stride=stride, padding=padding, relu=True)
            dy = F.relu_backward(randn(np.random.default_rng(5), y.shape, dtype), y)
            grads = F.conv2d_backward(dy, x, w, stride=stride, padding=padding)
            results[name] = (y, *grads)
    for fast, ref in zip(results["fast"], results["reference"]):
        assert fast.dtype == ref.dtype == dtype
        assert_close(fast, ref.astype(np.float64), dtype)


# ---- options ----------------------------------------------------------------------------------

def test_need_dx_and_need_dbias_false(backend, dtype, rng):
    x, w, _, stride, padding = _inputs(rng, CASES[1], dtype)
    dy = randn(rng, F.conv2d(x, w, stride=stride, padding=padding).shape, dtype)
    full = F.conv2d_backward(dy, x, w, stride=stride, padding=padding)
    dx, dw, db = F.conv2d_backward(dy, x, w, stride=stride, padding=padding, need_dx=False)
    assert dx is None
    np.testing.assert_array_equal(dw, full[1])
    np.testing.assert_array_equal(db, full[2])
    dx, dw, db = F.conv2d_backward(dy, x, w, stride=stride, padding=padding, need_dbias=False)
    assert db is None
    np.testing.assert_array_equal(dx, full[0])
    np.testing.assert_array_equal(dw, full[1])
    dx, dw, db = F.conv2d_backward(dy, x, w, stride=stride, padding=padding, need_dx=False,
                                   need_dbias=False)
    assert dx is None and db is None
    np.testing.assert_array_equal(dw, full[1])


def test_relu_fused_equals_relu_after(backend, dtype, rng):
    x, w, b, stride, padding = _inputs(rng, CASES[4], dtype)
    plain = F.conv2d(x, w, b, stride=stride, padding=padding)
    fused = F.conv2d(x, w, b, stride=stride, padding=padding, relu=True)
    np.testing.assert_array_equal(fused, np.maximum(plain, 0))
    np.testing.assert_array_equal(F.relu(plain), fused)


def test_int_and_pair_arguments_agree(backend, dtype, rng):
    x, w, b, _, _ = _inputs(rng, CASES[0], dtype)
    a = F.conv2d(x, w, b, stride=2, padding=1)
    c = F.conv2d(x, w, b, stride=(2, 2), padding=(1, 1))
    np.testing.assert_array_equal(a, c)
    np.testing.assert_array_equal(a, F.conv2d(x, w, b, stride=np.int64(2), padding=np.int32(1)))


def test_outputs_are_fresh_and_inputs_untouched(backend, dtype, rng):
    x, w, b, _, _ = _inputs(rng, ((1, 2, 4, 4), (2, 2, 1, 1), 1, 0), dtype)
    copies = [a.copy() for a in (x, w, b)]
    y = F.conv2d(x, w, b, relu=True)
    dy = np.ones_like(y)
    dx, dw, db = F.conv2d_backward(dy, x, w)
    for a, c in zip((x, w, b), copies):
        np.testing.assert_array_equal(a, c)
    for out in (y, dx, dw, db):
        for inp in (x, w, b, dy):
            assert not np.shares_memory(out, inp)
    np.testing.assert_array_equal(dy, 1)


# ---- layouts ------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", LAYOUTS)
def test_input_layouts(backend, dtype, kind, rng):
    x, w, b, stride, padding = _inputs(rng, CASES[1], dtype)
    y_ref = F.conv2d(x, w, b, stride=stride, padding=padding)
    dy = randn(rng, y_ref.shape, dtype)
    g_ref = F.conv2d_backward(dy, x, w, stride=stride, padding=padding)

    xl, wl, bl, dyl = (layout(a, kind) for a in (x, w, b, dy))
    y = F.conv2d(xl, wl, bl, stride=stride, padding=padding)
    assert y.flags.c_contiguous and y.dtype == dtype
    np.testing.assert_array_equal(y, y_ref)     # same numbers once copied: same answer
    grads = F.conv2d_backward(dyl, xl, wl, stride=stride, padding=padding)
    for g, r in zip(grads, g_ref):
        assert g.flags.c_contiguous and g.dtype == dtype
        np.testing.assert_array_equal(g, r)
    assert_close(y, naive.conv2d(x, w, b, stride, padding), dtype)


# ---- numerical gradients ------------------------------------------------------------------------

@pytest.mark.parametrize("relu", [False, True], ids=["linear", "relu"])
@pytest.mark.parametrize("case", GRAD_CASES, ids=GRAD_IDS)
def test_gradients_numerical(backend, case, relu, rng):
    x, w, b, stride, padding = _inputs(rng, case, np.float64)
    y0 = F.conv2d(x, w, b, stride=stride, padding=padding, relu=relu)
    r = rng.standard_normal(y0.shape)
    if relu:   # keep pre-activations away from the kink so differences stay on one side
        pre = F.conv2d(x, w, b, stride=stride, padding=padding)
        assert np.abs(pre).min() > 1e-4 and (pre < 0).any()

    def loss():
        return float(np.sum(F.conv2d(x, w, b, stride=stride, padding=padding, relu=relu) * r))

    dy = F.relu_backward(r, y0) if relu else r
    dx, dw, db = F.conv2d_backward(dy, x, w, stride=stride, padding=padding)
    check_gradients(loss, {"x": x, "weight": w, "bias": b}, {"x": dx, "weight": dw, "bias": db})


# ---- threads ------------------------------------------------------------------------------------

@pytest.mark.parametrize("padding", [0, 1])
def test_threads_agree(dtype, padding, rng):
    x, w, b, _, _ = _inputs(rng, ((5, 3, 12, 11), (8, 3, 3, 3), 1, 0), dtype)
    outs = []
    for n in (1, 2):
        with num_threads(n):
            y = F.conv2d(x, w, b, padding=padding, relu=True)
            dy = F.relu_backward(randn(np.random.default_rng(1), y.shape, dtype), y)
            outs.append((y, *F.conv2d_backward(dy, x, w, padding=padding)))
    for one, two in zip(*outs):
        assert_close(two, one.astype(np.float64), dtype, rtol=RTOL_THREADS[dtype])


# ---- special values and empty batches --------------------------------------------------------

def test_nan_and_inf_propagate(backend, dtype, rng):
    x, w, b, stride, padding = _inputs(rng, ((2, 2, 9, 9), (3, 2, 3, 3), 1, 1), dtype)
    x[0, 0, 1, 1] = np.nan
    x[1, 1, 7, 6] = np.inf
    w = np.abs(w) + 0.1                      # one sign, so the Inf cannot meet a -Inf
    y = F.conv2d(x, w, b, stride=stride, padding=padding)
    expected = naive.conv2d(x, w, b, stride, padding)
    np.testing.assert_array_equal(np.isnan(y), np.isnan(expected))
    np.testing.assert_array_equal(np.isposinf(y), np.isposinf(expected))
    assert np.isnan(y).sum() == 3 * 9 and np.isposinf(y).sum() == 3 * 9
    assert_close(y, expected, dtype, equal_nan=True)
    dy = randn(rng, y.shape, dtype)
    dy[0, 1, 4, 4] = np.nan
    dx, dw, db = F.conv2d_backward(dy, x, w, stride=stride, padding=padding)
    ndx, ndw, ndb = naive.conv2d_backward(dy, x, w, stride, padding)
    # which sums hold a NaN, or Infs of both signs, does not depend on the summation order
    for got, want in ((dx, ndx), (dw, ndw), (db, ndb)):
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
        np.testing.assert_array_equal(np.isposinf(got), np.isposinf(want))
        np.testing.assert_array_equal(np.isneginf(got), np.isneginf(want))
        assert_close(got, want, dtype, equal_nan=True)
    assert np.isnan(dx).sum() == 2 * 9 and np.isnan(dw).any() and np.isnan(db[1])


@pytest.mark.parametrize("case", [CASES[0], CASES[1], CASES[5]], ids=[CASE_IDS[0], CASE_IDS[1], CASE_IDS[5]])
def test_batch_size_zero(backend, dtype, case, rng):
    (n, c, h, w_), ws, stride, padding = case
    x = np.zeros((0, c, h, w_), dtype=dtype)
    w = randn(rng, ws, dtype)
    b = randn(rng, ws[0], dtype)
    expected_shape = naive.conv2d(np.zeros((1, c, h, w_)), w, None, stride, padding).shape[1:]
    y = F.conv2d(x, w, b, stride=stride, padding=padding, relu=True)
    assert y.shape == (0,) + expected_shape and y.dtype == dtype
    dx, dw, db = F.conv2d_backward(np.zeros(y.shape, dtype), x, w, stride=stride, padding=padding)
    assert dx.shape == x.shape and dx.dtype == dtype
    assert dw.shape == w.shape and dw.dtype == dtype and not dw.any()
    assert db.shape == b.shape and db.dtype == dtype and not db.any()


@pytest.mark.parametrize("dt", FLOATS)
def test_dtype_is_kept(dt, backend, rng):
    x, w, b, _, _ = _inputs(rng, CASES[0], dt)
    y = F.conv2d(x, w, b)
    assert y.dtype == dt
    assert all(g.dtype == dt for g in F.conv2d_backward(y, x, w))
