"""F.max_pool2d / F.avg_pool2d and their backwards against tests/naive.py (both backends), on every
instruction set, fast against reference, tie/padding/NaN rules of max pooling, numerical gradients,
layouts, threads."""
import numpy as np
import pytest

import naive
from conftest import LAYOUTS, assert_close, check_gradients, layout, num_threads, randn
from fastcnn import functional as F

# (x shape, kernel_size, stride, padding); stride None means "= kernel_size"
CASES = [
    ((2, 3, 6, 6), 2, None, 0),                 # the classic 2x2/2
    ((2, 3, 7, 7), 2, None, 0),                 # odd size: the last row/column is dropped
    ((1, 1, 5, 5), 3, 2, 1),                    # batch 1, one channel, padded, overlapping
    ((2, 2, 7, 6), (3, 2), (2, 1), (1, 1)),     # non-square, per-axis stride/padding
    ((1, 3, 9, 4), (1, 3), (1, 2), (0, 1)),     # 1x3 window, stride that does not divide
    ((3, 1, 5, 8), 3, 1, 1),                    # stride 1: heavy overlap
    ((2, 2, 4, 4), 1, 1, 0),                    # 1x1: identity
    ((1, 2, 6, 5), (4, 2), (3, 3), (2, 1)),     # padding exactly kernel // 2
    ((2, 1, 3, 3), 3, None, 0),                 # window = input: 1x1 output
    ((1, 2, 1, 7), (1, 3), 2, (0, 1)),          # one-row planes
    ((2, 3, 11, 9), (3, 3), (2, 2), (1, 1)),    # AlexNet-like 3x3/2 with padding
]
CASE_IDS = [f"x{c[0]}-k{c[1]}-s{c[2]}-p{c[3]}".replace(" ", "") for c in CASES]


def _pool_args(case):
    xs, k, s, p = case
    return xs, dict(kernel_size=k, stride=s, padding=p)


def _naive_args(case):
    _, k, s, p = case
    return k, s, p


# ---- max pooling: forward ----------------------------------------------------------------------

@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_max_forward_matches_naive(backend, dtype, case, rng):
    xs, kw = _pool_args(case)
    x = randn(rng, xs, dtype)
    y, idx = F.max_pool2d(x, **kw, return_indices=True)
    ny, nidx = naive.max_pool2d(x, *_naive_args(case))
    assert y.dtype == dtype and y.flags.c_contiguous
    assert idx.dtype == np.int32 and idx.shape == y.shape and idx.flags.c_contiguous
    np.testing.assert_array_equal(y, ny.astype(dtype))         # a max is exact
    np.testing.assert_array_equal(idx, nidx)
    y_only = F.max_pool2d(x, **kw)
    assert isinstance(y_only, np.ndarray)
    np.testing.assert_array_equal(y_only, y)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_max_ties_go_to_the_first_in_row_major_order(backend, dtype, case, rng):
    xs, kw = _pool_args(case)
    x = rng.integers(-1, 2, size=xs).astype(dtype)             # {-1, 0, 1}: ties everywhere
    x[x == 0] = np.where(rng.random(size=int((x == 0).sum())) < 0.5, -0.0, 0.0)  # -0 ties +0
    y, idx = F.max_pool2d(x, **kw, return_indices=True)
    ny, nidx = naive.max_pool2d(x, *_naive_args(case))
    np.testing.assert_array_equal(y, ny.astype(dtype))
    np.testing.assert_array_equal(idx, nidx)


@pytest.mark.parametrize("case", [c for c in CASES if c[3] != 0], ids=[i for c, i in zip(CASES, CASE_IDS) if c[3] != 0])
def test_max_padded_cells_never_win(backend, dtype, case, rng):
    xs, kw = _pool_args(case)
    h, w = xs[2], xs[3]
    for fill in (-3.0, -np.inf):
        x = np.full(xs, fill, dtype=dtype)
        y, idx = F.max_pool2d(x, **kw, return_indices=True)
        assert (y == fill).all(), f"a padded 0 won over {fill}"
        assert ((idx >= 0) & (idx < h * w)).all()
        _, nidx = naive.max_pool2d(x, *_naive_args(case))
        np.testing.assert_array_equal(idx, nidx)
    # the backward of an all -inf input still routes every dy to a real cell
    dy = np.ones(y.shape, dtype)
    dx = F.max_pool2d_backward(dy, idx, xs)
    assert dx.sum() == dy.sum()


def test_max_nan_wins_and_inf_propagates(backend, dtype, rng):
    xs = (2, 2, 6, 6)
    x = randn(rng, xs, dtype)
    x[0, 0, 1, 1] = np.nan
    x[0, 1, 2, 3] = np.inf
    x[1, 0, 4, 4] = np.nan
    x[1, 0, 4, 5] = np.inf                          # NaN and +Inf in one window: NaN wins
    x[1, 1, 0, 0] = -np.inf
    y, idx = F.max_pool2d(x, 2, return_indices=True)
    ny, nidx = naive.max_pool2d(x, 2)
    np.testing.assert_array_equal(np.isnan(y), np.isnan(ny))
    assert np.isnan(y).sum() == 2 and np.isnan(y[0, 0, 0, 0]) and np.isnan(y[1, 0, 2, 2])
    assert np.isposinf(y[0, 1, 1, 1]) and np.isposinf(y).sum() == 1
    np.testing.assert_array_equal(y, ny.astype(dtype))                 # NaNs compare equal here
    flat = x.reshape(4, 36)[np.arange(4).repeat(9), idx.reshape(-1)].reshape(y.shape)
    np.testing.assert_array_equal(flat, y)                           # every index points at its value
    nan_free = ~np.isnan(ny)
    np.testing.assert_array_equal(idx[nan_free], nidx[nan_free])
    dy = randn(rng, y.shape, dtype)
    dx = F.max_pool2d_backward(dy, idx, xs)
    assert dx[0, 0, 1, 1] == dy[0, 0, 0, 0] and dx[1, 0, 4, 4] == dy[1, 0, 2, 2]


def test_max_overlapping_windows_accumulate(backend, dtype):
    x = np.zeros((1, 1, 3, 3), dtype)
    x[0, 0, 1, 1] = 5                                # the centre wins all four 2x2/1 windows
    y, idx = F.max_pool2d(x, 2, stride=1, return_indices=True)
    np.testing.assert_array_equal(idx, np.full((1, 1, 2, 2), 4))
    dy = np.array([[[[1, 2], [3, 4.5]]]], dtype)
    dx = F.max_pool2d_backward(dy, idx, x.shape)
    expected = np.zeros((1, 1, 3, 3))
    expected[0, 0, 1, 1] = 10.5
    np.testing.assert_array_equal(dx, expected)


# ---- max pooling: backward ---------------------------------------------------------------------

@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_max_backward_matches_naive(backend, dtype, case, rng):
    xs, kw = _pool_args(case)
    x = randn(rng, xs, dtype)
    y, idx = F.max_pool2d(x, **kw, return_indices=True)
    dy = randn(rng, y.shape, dtype)
    dx = F.max_pool2d_backward(dy, idx, xs)
    assert dx.shape == xs and dx.dtype == dtype and dx.flags.c_contiguous
    assert_close(dx, naive.max_pool2d_backward(dy, idx, xs), dtype)


def test_max_backward_accepts_x_shape_forms(backend, dtype, rng):
    x = randn(rng, (2, 3, 6, 6), dtype)
    y, idx = F.max_pool2d(x, 2, return_indices=True)
    dy = randn(rng, y.shape, dtype)
    dx = F.max_pool2d_backward(dy, idx, x.shape)
    np.testing.assert_array_equal(F.max_pool2d_backward(dy, idx, list(x.shape)), dx)
    np.testing.assert_array_equal(F.max_pool2d_backward(dy, idx, tuple(np.array(x.shape))), dx)


# ---- average pooling -----------------------------------------------------------------------------

@pytest.mark.parametrize("count_include_pad", [True, False], ids=["incl_pad", "excl_pad"])
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_avg_forward_backward_match_naive(backend, dtype, case, count_include_pad, rng):
    xs, kw = _pool_args(case)
    x = randn(rng, xs, dtype)
    y = F.avg_pool2d(x, **kw, count_include_pad=count_include_pad)
    assert y.flags.c_contiguous
    assert_close(y, naive.avg_pool2d(x, *_naive_args(case), count_include_pad), dtype)
    dy = randn(rng, y.shape, dtype)
    dx = F.avg_pool2d_backward(dy, xs, **kw, count_include_pad=count_include_pad)
    assert dx.shape == xs and dx.flags.c_contiguous
    assert_close(dx, naive.avg_pool2d_backward(dy, xs, *_naive_args(case), count_include_pad), dtype)


def test_avg_count_include_pad_divisors(backend, dtype):
    x = np.ones((1, 1, 3, 3), dtype)
    incl = F.avg_pool2d(x, 3, stride=1, padding=1)
    excl = F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)
    np.testing.assert_allclose(incl[0, 0], np.array([[4, 6, 4], [6, 9, 6], [4, 6, 4]]) / 9, rtol=1e-6)
    np.testing.assert_allclose(excl, 1, rtol=1e-6)
    assert F.avg_pool2d(x, 3).item() == 1                       # default: include pad, no pad


def test_avg_nan_and_inf_propagate(backend, dtype, rng):
    x = randn(rng, (1, 2, 4, 4), dtype)
    x[0, 0, 0, 0] = np.nan
    x[0, 1, 3, 3] = np.inf
    y = F.avg_pool2d(x, 2)
    expected = naive.avg_pool2d(x, 2)
    np.testing.assert_array_equal(np.isnan(y), np.isnan(expected))
    np.testing.assert_array_equal(np.isinf(y), np.isinf(expected))
    assert np.isnan(y).sum() == 1 and np.isinf(y).sum() == 1
    assert_close(y, expected, dtype, equal_nan=True)


# ---- every instruction set ----------------------------------------------------------------------
# The pooling kernels are compiled once per instruction set and picked at run time
# (fastcnn.set_simd): the tests above run on the best level the CPU has, these on every level.
# The extra 3x3 shapes reach the chunked 3x3 row kernels: rows of 1, 15, 16, 17, 65 and 75
# outputs (chunks of 64 padded to whole vectors), stride 1 and 2, a padded one; unpadded 3x3/2
# runs in AVX-512 float on whole planes read in place, 16 outputs a pass under masks (two rows
# a pass up to 7 outputs a row), 8 in AVX2; double 8 in AVX-512 (two rows a pass up to 3), 4 in
# AVX2: also AlexNet's planes (7, 13, 15, 32 and 55 wide: 3, 6, 7, 15 and 27 outputs, the last
# input row and column unused on even sizes).
SIMD_CASES = CASES + [
    ((2, 3, 9, 33), 3, 2, 0),      # 16 outputs a row: exactly one AVX-512 vector
    ((1, 2, 7, 35), 3, 2, 0),      # 17: one vector and one lane
    ((2, 2, 5, 31), 3, 2, 0),      # 15
    ((1, 1, 5, 133), 3, 2, 0),     # 66: two chunks
    ((1, 2, 6, 77), 3, 1, 0),      # stride 1, 75 outputs
    ((2, 2, 8, 19), 3, 1, 1),      # stride 1, padded
    ((3, 2, 3, 3), 3, 2, 0),       # one output
    ((3, 4, 7, 7), 3, 2, 0),       # AlexNet (32x32)'s third pool: 3 outputs a row
    ((2, 2, 13, 13), 3, 2, 0),     # 6
    ((2, 3, 15, 15), 3, 2, 0),     # 7, and 7 rows: the last one alone
    ((2, 2, 5, 6), 3, 2, 0),       # 2
    ((2, 3, 9, 9), 3, 2, 0),       # 4: one AVX2 double vector; AVX-512 double's one row a pass
    ((1, 2, 11, 11), 3, 2, 0),     # 5
    ((2, 2, 7, 17), 3, 2, 0),      # 8: one AVX-512 double vector
    ((1, 2, 32, 32), 3, 2, 0),     # 15, even size
    ((1, 2, 12, 55), 3, 2, 0),     # 27: a full pass and a partial one
    ((2, 3, 24, 24), 2, 2, 0),     # 2x2/2, 12 outputs a row: the per-row kernel (a multiple of 4)
    ((2, 3, 28, 29), 2, 2, 0),     # 14 outputs a row, odd W: plane chunks spanning rows
    ((1, 2, 13, 10), 2, 2, 0),     # 5 a row, 30 a plane (odd H): one partial chunk
    ((1, 1, 34, 34), 2, 2, 0),     # 289 outputs: several chunks, one ending mid-row
    ((2, 2, 9, 40), 2, 1, 0),      # 2x2 stride 1: 39 outputs a row
    ((2, 2, 8, 37), 2, 2, 1),      # 2x2/2 padded: chunked rows of the general path
]
SIMD_IDS = [f"x{c[0]}-k{c[1]}-s{c[2]}-p{c[3]}".replace(" ", "") for c in SIMD_CASES]


@pytest.mark.parametrize("case", SIMD_CASES, ids=SIMD_IDS)
def test_every_simd_level_matches_naive(simd, dtype, case, rng):
    xs, kw = _pool_args(case)
    x = (np.round(randn(rng, xs, dtype) * 2) / 2).astype(dtype)   # many ties
    flat = x.reshape(-1)
    flat[rng.integers(0, flat.size, 3)] = np.nan
    flat[rng.integers(0, flat.size, 2)] = np.inf
    y, idx = F.max_pool2d(x, **kw, return_indices=True)
    ny, nidx = naive.max_pool2d(x, *_naive_args(case))
    np.testing.assert_array_equal(y, ny.astype(dtype))
    np.testing.assert_array_equal(idx, nidx)
    np.testing.assert_array_equal(F.max_pool2d(x, **kw), y)   # the value-only kernels
    dy = randn(rng, y.shape, dtype)
    assert_close(F.max_pool2d_backward(dy, idx, xs), naive.max_pool2d_backward(dy, idx, xs), dtype)
    x = randn(rng, xs, dtype)
    for incl in (True, False):
        ya = F.avg_pool2d(x, **kw, count_include_pad=incl)
        assert_close(ya, naive.avg_pool2d(x, *_naive_args(case), incl), dtype)
        dxa = F.avg_pool2d_backward(dy, xs, **kw, count_include_pad=incl)
        assert_close(dxa, naive.avg_pool2d_backward(dy, xs, *_naive_args(case), incl), dtype)


# ---- fast against reference ----------------------------------------------------------------------

@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_fast_matches_reference(dtype, case, rng):
    xs, kw = _pool_args(case)
    x = randn(rng, xs, dtype)
    out = {}
    for name in ("fast", "reference"):
        with F.use_backend(name):
            y, idx = F.max_pool2d(x, **kw, return_indices=True)
            dy = np.linspace(-1, 1, y.size, dtype=dtype).reshape(y.shape)
            dx = F.max_pool2d_backward(dy, idx, xs)
            ya = F.avg_pool2d(x, **kw)
            ye = F.avg_pool2d(x, **kw, count_include_pad=False)
            dxa = F.avg_pool2d_backward(dy, xs, **kw)
            dxe = F.avg_pool2d_backward(dy, xs, **kw, count_include_pad=False)
            out[name] = (y, idx, dx, ya, ye, dxa, dxe)
    fast, ref = out["fast"], out["reference"]
    np.testing.assert_array_equal(fast[0], ref[0])
    np.testing.assert_array_equal(fast[1], ref[1])
    for a, b in zip(fast[2:], ref[2:]):
        assert a.dtype == b.dtype == dtype
        assert_close(a, b.astype(np.float64), dtype, rtol=1e-6 if dtype == np.float32 else 1e-14)


# ---- layouts -------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", LAYOUTS)
def test_input_layouts(backend, dtype, kind, rng):
    xs, kw = _pool_args(CASES[3])
    x = randn(rng, xs, dtype)
    y, idx = F.max_pool2d(x, **kw, return_indices=True)
    ya = F.avg_pool2d(x, **kw)
    dy = randn(rng, y.shape, dtype)
    dx = F.max_pool2d_backward(dy, idx, xs)
    dxa = F.avg_pool2d_backward(dy, xs, **kw)

    xl, dyl, idxl = layout(x, kind), layout(dy, kind), layout(idx, kind)
    y2, idx2 = F.max_pool2d(xl, **kw, return_indices=True)
    np.testing.assert_array_equal(y2, y)
    np.testing.assert_array_equal(idx2, idx)
    np.testing.assert_array_equal(F.avg_pool2d(xl, **kw), ya)
    np.testing.assert_array_equal(F.max_pool2d_backward(dyl, idxl, xs), dx)
    np.testing.assert_array_equal(F.avg_pool2d_backward(dyl, xs, **kw), dxa)
    for out in (y2, idx2):
        assert out.flags.c_contiguous


# ---- numerical gradients -------------------------------------------------------------------------

GRAD_CASES = [CASES[i] for i in (0, 2, 3, 5, 7)]
GRAD_IDS = [CASE_IDS[i] for i in (0, 2, 3, 5, 7)]


@pytest.mark.parametrize("case", GRAD_CASES, ids=GRAD_IDS)
def test_max_gradient_numerical(backend, case, rng):
    xs, kw = _pool_args(case)
    # distinct values at least 1e-3 apart, so a 1e-6 step never changes a winner
    x = rng.permutation(np.prod(xs)).reshape(xs).astype(np.float64) * 1e-3 + rng.uniform(0, 1e-4)
    r = rng.standard_normal(F.max_pool2d(x, **kw).shape)

    def loss():
        return float(np.sum(F.max_pool2d(x, **kw) * r))

    _, idx = F.max_pool2d(x, **kw, return_indices=True)
    check_gradients(loss, {"x": x}, {"x": F.max_pool2d_backward(r, idx, xs)})


@pytest.mark.parametrize("count_include_pad", [True, False], ids=["incl_pad", "excl_pad"])
@pytest.mark.parametrize("case", GRAD_CASES, ids=GRAD_IDS)
def test_avg_gradient_numerical(backend, case, count_include_pad, rng):
    xs, kw = _pool_args(case)
    x = rng.standard_normal(xs)
    r = rng.standard_normal(F.avg_pool2d(x, **kw).shape)

    def loss():
        return float(np.sum(F.avg_pool2d(x, **kw, count_include_pad=count_include_pad) * r))

    dx = F.avg_pool2d_backward(r, xs, **kw, count_include_pad=count_include_pad)
    check_gradients(loss, {"x": x}, {"x": dx})


# ---- threads: pooling has no reduction across threads, so the results are bitwise equal -------

# "threaded": more input elements than FC_STREAM_PARALLEL_MIN (csrc/parallel.h), below which
# pooling runs on one thread
@pytest.mark.parametrize("case", [CASES[0], CASES[3], ((5, 7, 13, 12), 3, 2, 1),
                                  ((4, 9, 91, 90), 3, 2, 1), ((5, 16, 60, 61), 2, None, 0)],
                         ids=["2x2", "3x2", "big", "threaded", "threaded-2x2"])
def test_threads_bitwise(dtype, case, rng):
    xs, kw = _pool_args(case)
    x = randn(rng, xs, dtype)
    outs = []
    for n in (1, 2):
        with num_threads(n):
            y, idx = F.max_pool2d(x, **kw, return_indices=True)
            dy = randn(np.random.default_rng(3), y.shape, dtype)
            outs.append((y, idx, F.max_pool2d_backward(dy, idx, xs), F.avg_pool2d(x, **kw),
                         F.avg_pool2d(x, **kw, count_include_pad=False),
                         F.avg_pool2d_backward(dy, xs, **kw)))
    for one, two in zip(*outs):
        np.testing.assert_array_equal(one, two)


# ---- empty batch ---------------------------------------------------------------------------------

@pytest.mark.parametrize("case", [CASES[0], CASES[3]], ids=[CASE_IDS[0], CASE_IDS[3]])
def test_batch_size_zero(backend, dtype, case):
    xs, kw = _pool_args(case)
    x = np.zeros((0,) + xs[1:], dtype)
    out_shape = naive.max_pool2d(np.zeros((1,) + xs[1:]), *_naive_args(case))[0].shape[1:]
    y, idx = F.max_pool2d(x, **kw, return_indices=True)
    assert y.shape == idx.shape == (0,) + out_shape and y.dtype == dtype and idx.dtype == np.int32
    assert F.max_pool2d_backward(y, idx, x.shape).shape == x.shape
    ya = F.avg_pool2d(x, **kw)
    assert ya.shape == (0,) + out_shape and ya.dtype == dtype
    dxa = F.avg_pool2d_backward(ya, x.shape, **kw)
    assert dxa.shape == x.shape and dxa.dtype == dtype
