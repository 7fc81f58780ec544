"""The direct convolution (algorithm="direct": forward and weight gradient computed from a padded
copy of each image, for layers with few input channels) on every instruction-set variant the
machine runs (AVX-512, AVX2+FMA, portable C; the `simd` fixture), against the loop oracle
tests/naive.py in float32 and float64, with float64 numerical gradients, 1 vs 2 threads, and
the variants against each other."""
import numpy as np
import pytest

import fastcnn
import naive
from conftest import assert_close, check_gradients, num_threads, randn
from fastcnn import functional as F

# (x shape, weight shape, padding): few channels (what "auto" sends here), widths around the
# 16-column tile (8, 15, 16, 17, 33), channel counts around the 8-channel block (1, 5, 8, 9, 30),
# kernels 1x1 .. 11x11 and non-square, padding 0 .. larger than the kernel; the weight gradient's
# tiles of 3 and of 5 taps (kernel widths 5 and 10), dy read in place and copied (32x32 planes)
CASES = [
    ((2, 1, 28, 28), (30, 1, 5, 5), 0),     # SimpleConvNet's layer: 24 columns = 16 + 8
    ((2, 3, 32, 32), (9, 3, 3, 3), 1),      # CIFAR's first layer, one channel past a block
    ((1, 3, 17, 19), (8, 3, 3, 3), 1),      # 19 columns: one full tile and a partial one
    ((3, 2, 9, 8), (5, 2, 2, 3), (1, 2)),   # non-square kernel, per-axis padding
    ((2, 4, 6, 35), (1, 4, 3, 3), 0),       # one output channel, 33 columns
    ((1, 1, 5, 5), (3, 1, 1, 1), 0),        # 1x1
    ((2, 3, 13, 12), (6, 3, 11, 11), 2),    # an AlexNet-sized kernel at stride 1
    ((1, 2, 4, 4), (4, 2, 3, 3), 4),        # padding wider than the kernel: border rows all 0
    ((1, 5, 1, 9), (7, 5, 1, 3), 0),        # one-row images
    ((2, 1, 7, 1), (2, 1, 3, 1), 1),        # one-column images
    ((2, 2, 32, 32), (6, 2, 5, 5), 2),      # 32x32 dy planes (copied: 4 KB apart), 5-tap tiles
    ((3, 2, 12, 21), (13, 2, 3, 10), (1, 0)),   # two 5-tap groups per kernel row
]
IDS = [f"x{c[0]}-w{c[1]}-p{c[2]}".replace(" ", "") for c in CASES]


def _data(rng, case, dtype):
    xs, ws, padding = case
    return randn(rng, xs, dtype), randn(rng, ws, dtype, scale=0.5), randn(rng, ws[0], dtype), padding


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_forward_matches_naive(simd, dtype, case, rng):
    x, w, b, padding = _data(rng, case, dtype)
    for bias, relu in ((b, False), (None, False), (b, True)):
        y = F.conv2d(x, w, bias, padding=padding, relu=relu, algorithm="direct")
        assert y.dtype == dtype and y.flags.c_contiguous
        assert_close(y, naive.conv2d(x, w, bias, 1, padding, relu), dtype)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_backward_matches_naive(simd, dtype, case, rng):
    x, w, _, padding = _data(rng, case, dtype)
    dy = randn(rng, naive.conv2d(x, w, None, 1, padding).shape, dtype)
    want = naive.conv2d_backward(dy, x, w, 1, padding)
    got = F.conv2d_backward(dy, x, w, padding=padding, algorithm="direct")
    for g, ref in zip(got, want):
        assert g.dtype == dtype
        assert_close(g, ref, dtype)
    # without dx and dbias the weight gradient is the same
    dx, dw, db = F.conv2d_backward(dy, x, w, padding=padding, need_dx=False, need_dbias=False,
                                   algorithm="direct")
    assert dx is None and db is None
    np.testing.assert_array_equal(dw, got[1])


@pytest.mark.parametrize("relu", [False, True], ids=["linear", "relu"])
@pytest.mark.parametrize("case", [CASES[i] for i in (3, 6, 8)], ids=[IDS[i] for i in (3, 6, 8)])
def test_gradients_numerical(simd, case, relu, rng):
    x, w, b, padding = _data(rng, case, np.float64)
    kw = dict(padding=padding, algorithm="direct")
    y0 = F.conv2d(x, w, b, relu=relu, **kw)
    r = rng.standard_normal(y0.shape)
    if relu:   # keep pre-activations away from the kink
        assert np.abs(F.conv2d(x, w, b, **kw)).min() > 1e-4

    def loss():
        return float(np.sum(F.conv2d(x, w, b, relu=relu, **kw) * r))

    dx, dw, db = F.conv2d_backward(F.relu_backward(r, y0) if relu else r, x, w, **kw)
    check_gradients(loss, {"x": x, "weight": w, "bias": b}, {"x": dx, "weight": dw, "bias": db})


@pytest.mark.parametrize("case", [CASES[i] for i in (0, 1, 4)], ids=[IDS[i] for i in (0, 1, 4)])
def test_threads(simd, dtype, case, rng):
    """Images are split over threads: the forward is bitwise the same at 1 and 2 threads (each
    output is computed by one thread in one order); the weight gradient sums per-thread partials
    in thread order: the same bits for the same count, rounding-close across counts."""
    x, w, b, padding = _data(rng, (case[0][:0] + (5,) + case[0][1:],) + case[1:], dtype)
    dy = randn(rng, F.conv2d(x, w, b, padding=padding).shape, dtype)
    runs = {}
    for n in (1, 2, 2):
        with num_threads(n):
            out = (F.conv2d(x, w, b, padding=padding, algorithm="direct"),
                   *F.conv2d_backward(dy, x, w, padding=padding, need_dx=False,
                                      algorithm="direct")[1:])
        if n in runs:
            for a, c in zip(runs[n], out):
                np.testing.assert_array_equal(a, c)
        runs[n] = out
    np.testing.assert_array_equal(runs[1][0], runs[2][0])
    for one, two in zip(runs[1][1:], runs[2][1:]):
        assert_close(two, one.astype(np.float64), dtype)


@pytest.mark.parametrize("case", [CASES[i] for i in (0, 3, 5, 7, 9, 11)],
                         ids=[IDS[i] for i in (0, 3, 5, 7, 9, 11)])
def test_dx_alongside_weights_is_im2col_dx(simd, dtype, case, rng):
    """Layers with too few channels for the direct dx tiles (1, 2) get dx from im2col's GEMM and
    col2im, computed image by image inside the weight gradient's loop: bitwise im2col's dx (the
    same per-image code), at 1 and 2 threads (each image is one thread's)."""
    x, w, _, padding = _data(rng, (case[0][:0] + (5,) + case[0][1:],) + case[1:], dtype)
    dy = randn(rng, naive.conv2d(x, w, None, 1, padding).shape, dtype)
    for n in (1, 2):
        with num_threads(n):
            dx = F.conv2d_backward(dy, x, w, padding=padding, algorithm="direct")[0]
            want = F.conv2d_backward(dy, x, w, padding=padding, algorithm="im2col")[0]
        np.testing.assert_array_equal(dx, want)
    assert_close(dx, naive.conv2d_backward(dy, x, w, 1, padding)[0], dtype)


def test_variants_agree(dtype, rng):
    """Every instruction-set variant computes the same result to rounding."""
    x, w, b, padding = _data(rng, ((3, 3, 20, 37), (13, 3, 5, 5), 2), dtype)
    dy = randn(rng, F.conv2d(x, w, b, padding=padding).shape, dtype)
    results = {}
    previous = fastcnn.get_simd()
    try:
        for level in fastcnn.simd_levels():
            fastcnn.set_simd(level)
            results[level] = (F.conv2d(x, w, b, padding=padding, algorithm="direct"),
                              *F.conv2d_backward(dy, x, w, padding=padding, need_dx=False,
                                                 algorithm="direct")[1:])
    finally:
        fastcnn.set_simd(previous)
    base = results["portable"]
    for level, got in results.items():
        for g, r in zip(got, base):
            assert_close(g, r.astype(np.float64), dtype)


def test_nan_and_inf_propagate(simd, rng):
    x, w, b, _ = _data(rng, ((1, 2, 9, 20), (3, 2, 3, 3), 1), np.float32)
    x[0, 1, 4, 17] = np.nan
    x[0, 0, 1, 2] = np.inf
    y = F.conv2d(x, w, b, padding=1, algorithm="direct")
    ref = naive.conv2d(x, w, b, 1, 1)
    np.testing.assert_array_equal(np.isnan(y), np.isnan(ref))
    assert_close(y, ref, np.float32, equal_nan=True)
    yr = F.conv2d(x, w, b, padding=1, relu=True, algorithm="direct")
    assert np.isnan(yr[0, :, 3:6, 16:19]).all()   # ReLU keeps NaN


def test_stride_refused_and_batch_zero(rng):
    x, w, b, _ = _data(rng, ((2, 3, 8, 8), (4, 3, 3, 3), 0), np.float32)
    with pytest.raises(ValueError, match="direct.*stride 1"):
        F.conv2d(x, w, b, stride=2, algorithm="direct")
    with pytest.raises(ValueError, match="direct.*stride 1"):
        F.conv2d_backward(np.zeros((2, 4, 3, 3), np.float32), x, w, stride=2, algorithm="direct")
    x0 = np.zeros((0, 3, 8, 8), np.float32)
    y = F.conv2d(x0, w, b, algorithm="direct")
    assert y.shape == (0, 4, 6, 6)
    dx, dw, db = F.conv2d_backward(y, x0, w, algorithm="direct")
    assert dx.shape == x0.shape and not dw.any() and not db.any()


def test_simd_control():
    levels = fastcnn.simd_levels()
    assert levels[0] == "portable" and set(levels) <= {"portable", "avx2", "avx512"}
    previous = fastcnn.set_simd("portable")
    try:
        assert fastcnn.get_simd() == "portable"
        assert fastcnn.set_simd("best") == "portable"
        assert fastcnn.get_simd() == levels[-1]
        with pytest.raises(ValueError, match="level must be one of"):
            fastcnn.set_simd("sse9")
        if "avx512" not in levels:
            with pytest.raises(ValueError, match="runs only"):
                fastcnn.set_simd("avx512")
    finally:
        fastcnn.set_simd(previous)
    assert "simd (dispatched kernels)" in fastcnn._config.config_info()
