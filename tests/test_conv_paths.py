"""Every convolution algorithm F.conv2d / F.conv2d_backward can dispatch to, forced one at a time
through the `algorithm` keyword ("im2col", "winograd", "winograd4", "auto"), against the loop
oracle tests/naive.py: float32 and float64, awkward shapes, 1 and 2 threads, float64 numerical
gradients of the Winograd backwards, the Winograd float32 accuracy bound (Lavin & Gray 2015,
F(2x2,3x3) and F(4x4,3x3)), and the Winograd kernels on every instruction set (`simd` fixture)."""
import numpy as np
import pytest

import naive
from conftest import assert_close, check_gradients, num_threads, randn
import fastcnn
from fastcnn import functional as F

ALGORITHMS = ["im2col", "winograd", "winograd4", "direct", "auto"]
WINOGRAD = ["winograd", "winograd4"]

# 3x3 stride-1 shapes (the ones Winograd takes): (x shape, OC, padding)
WINO_CASES = [
    ((2, 3, 7, 6), 4, 0),          # odd output height (5), even width (4)
    ((2, 3, 7, 6), 4, 1),          # odd height, even width, padded
    ((1, 2, 3, 3), 2, 2),          # padding wider than the kernel's half, batch 1
    ((1, 5, 9, 8), 3, 3),          # padding 3: whole tiles made of padding
    ((3, 3, 11, 13), 8, (1, 2)),   # everything odd, per-axis padding
    ((2, 4, 1, 7), 3, 1),          # one-row images
    ((2, 4, 6, 1), 3, 1),          # one-column images
    ((2, 4, 3, 3), 5, 0),          # a single output pixel: one tile, three quarters clipped
    ((1, 1, 5, 5), 1, 1),          # one channel in and out
    ((3, 9, 10, 10), 10, 1),       # C*OC >= 64: what "auto" sends to Winograd
    ((3, 2, 41, 40), 2, 1),        # 420 tiles per image: blocks cut rows and images
    ((5, 8, 14, 14), 16, 1),       # a DeepConvNet-like layer, odd number of images
    ((2, 3, 9, 9), 4, 1),          # 9x9 output: F(4x4)'s last tiles keep one row/column of 4
    ((2, 3, 10, 10), 4, 0),        # 8x8 output: whole 4x4 tiles, no clipping
    ((4, 3, 10, 10), 4, 1),        # 3 tiles a row: 16-tile groups start inside rows and images
    ((2, 3, 16, 16), 5, 1),        # 16-wide rows: the widest the narrow input transform takes
    ((2, 3, 17, 17), 5, 1),        # 17-wide rows: the row-segment gather
    ((12, 3, 13, 13), 6, 1),       # 192 F(4x4) tiles: more than one run of 8 lane groups
]
WINO_IDS = [f"x{c[0]}-oc{c[1]}-p{c[2]}".replace(" ", "") for c in WINO_CASES]

# other shapes, on which "winograd" and "winograd4" are refused and "auto"/"im2col" must still be right
OTHER_CASES = [
    ((2, 3, 7, 6), (4, 3, 3, 2), (2, 1), (1, 0)),
    ((3, 9, 8, 9), (10, 9, 3, 3), 2, 1),
    ((2, 9, 7, 7), (8, 9, 5, 5), 1, 2),
    ((2, 9, 5, 5), (8, 9, 1, 1), 1, 0),
]
OTHER_IDS = [f"x{c[0]}-w{c[1]}-s{c[2]}-p{c[3]}".replace(" ", "") for c in OTHER_CASES]

RTOL_THREADS = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-13}


def _inputs(rng, case, dtype):
    xs, oc, padding = case
    x = randn(rng, xs, dtype)
    w = randn(rng, (oc, xs[1], 3, 3), dtype, scale=0.5)
    b = randn(rng, oc, dtype)
    return x, w, b, padding


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("case", WINO_CASES, ids=WINO_IDS)
def test_forward_paths_match_naive(dtype, case, algorithm, threads, rng):
    x, w, b, padding = _inputs(rng, case, dtype)
    with num_threads(threads):
        for bias, relu in ((b, False), (None, False), (b, True)):
            y = F.conv2d(x, w, bias, padding=padding, relu=relu, algorithm=algorithm)
            assert y.flags.c_contiguous
            assert_close(y, naive.conv2d(x, w, bias, 1, padding, relu), dtype)
            if relu:
                assert (y >= 0).all()


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("case", WINO_CASES, ids=WINO_IDS)
def test_backward_paths_match_naive(dtype, case, algorithm, threads, rng):
    x, w, _, padding = _inputs(rng, case, dtype)
    y = naive.conv2d(x, w, None, 1, padding)
    dy = randn(rng, y.shape, dtype)
    ndx, ndw, ndb = naive.conv2d_backward(dy, x, w, 1, padding)
    with num_threads(threads):
        dx, dw, db = F.conv2d_backward(dy, x, w, padding=padding, algorithm=algorithm)
        for got, want in ((dx, ndx), (dw, ndw), (db, ndb)):
            assert got.flags.c_contiguous
            assert_close(got, want, dtype)
        # need_dx / need_dbias off: the other results do not change (bitwise, but for the
        # layers "auto" runs direct, whose backward with dx runs Winograd's fused one)
        dx2, dw2, db2 = F.conv2d_backward(dy, x, w, padding=padding, need_dx=False,
                                          need_dbias=False, algorithm=algorithm)
        assert dx2 is None and db2 is None
        N, C, H, W = x.shape
        OH, OW = y.shape[2:]
        pad = padding if isinstance(padding, tuple) else (padding, padding)
        if algorithm == "auto" and F._conv_algorithm("t", "auto", N, C, w.shape[0], OH, OW,
                                                     (3, 3), (1, 1), pad) == "direct":
            assert_close(dw2, ndw, dtype)
        else:
            np.testing.assert_array_equal(dw2, dw)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("case", OTHER_CASES, ids=OTHER_IDS)
def test_other_shapes(dtype, case, algorithm, rng):
    xs, ws, stride, padding = case
    x, w, b = randn(rng, xs, dtype), randn(rng, ws, dtype, scale=0.5), randn(rng, ws[0], dtype)
    kernel = ws[2:] if ws[2] == ws[3] else None
    refused = {"winograd": kernel not in ((3, 3), (5, 5)) or stride != 1,
               "winograd4": kernel != (3, 3) or stride != 1, "direct": stride != 1}
    if refused.get(algorithm, False):
        with pytest.raises(ValueError, match=algorithm):
            F.conv2d(x, w, b, stride=stride, padding=padding, algorithm=algorithm)
        with pytest.raises(ValueError, match=algorithm):
            F.conv2d_backward(np.zeros_like(naive.conv2d(x, w, b, stride, padding), dtype), x, w,
                              stride=stride, padding=padding, algorithm=algorithm)
        return
    y = F.conv2d(x, w, b, stride=stride, padding=padding, algorithm=algorithm)
    assert_close(y, naive.conv2d(x, w, b, stride, padding), dtype)
    dy = randn(rng, y.shape, dtype)
    got = F.conv2d_backward(dy, x, w, stride=stride, padding=padding, algorithm=algorithm)
    for g, want in zip(got, naive.conv2d_backward(dy, x, w, stride, padding)):
        assert_close(g, want, dtype)


@pytest.mark.parametrize("algorithm", WINOGRAD + ["auto"])
@pytest.mark.parametrize("padding", [0, 1, 2])
def test_threads_agree_and_repeat_bitwise(dtype, algorithm, padding, rng):
    x, w, b, _ = _inputs(rng, ((5, 9, 12, 11), 8, padding), dtype)
    dy = None
    runs = {}
    for n in (1, 2, 2):
        with num_threads(n):
            y = F.conv2d(x, w, b, padding=padding, relu=True, algorithm=algorithm)
            if dy is None:
                dy = F.relu_backward(randn(np.random.default_rng(1), y.shape, dtype), y)
            out = (y, *F.conv2d_backward(dy, x, w, padding=padding, algorithm=algorithm))
        if n in runs:   # same thread count: the same bits
            for a, c in zip(runs[n], out):
                np.testing.assert_array_equal(a, c)
        runs[n] = out
    for one, two in zip(runs[1], runs[2]):
        assert_close(two, one.astype(np.float64), dtype, rtol=RTOL_THREADS[dtype])


# shapes too large for the loop oracle: Winograd against im2col (itself checked against the oracle
# above). Tile rows longer than a block (64 tiles for 64+64 channels), blocks that end inside
# images and inside tile rows, a batch smaller than the thread count, odd sizes with padding 2,
# and channels wide enough for F(4x4)'s larger blocks (96 tiles for 192 -> 192: blocks end
# inside an image) and, at 2 threads, for the channel split (wide layers with few tiles: 117 tiles
# in two blocks; one block of 12; 8 tiles), with channel counts that leave partial panels of the
# packed filters (200 = 16*12 + 8, 150 = 12*12 + 6, 230 = 19*12 + 2).
LARGE_CASES = [((1, 64, 3, 301), 64, 1), ((3, 64, 9, 33), 64, 1), ((2, 20, 30, 31), 12, 2),
               ((7, 16, 28, 28), 16, 1), ((13, 192, 11, 11), 192, 1), ((3, 200, 7, 7), 180, 1),
               ((2, 150, 9, 9), 230, 0)]


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("algorithm", WINOGRAD)
@pytest.mark.parametrize("case", LARGE_CASES, ids=[f"x{c[0]}-oc{c[1]}-p{c[2]}".replace(" ", "")
                                                   for c in LARGE_CASES])
def test_winograd_matches_im2col_on_large_shapes(dtype, case, algorithm, threads, rng):
    x, w, b, padding = _inputs(rng, case, dtype)
    with num_threads(threads):
        y = F.conv2d(x, w, b, padding=padding, relu=True, algorithm=algorithm)
        y_ref = F.conv2d(x, w, b, padding=padding, relu=True, algorithm="im2col")
        dy = randn(rng, y.shape, dtype)
        got = F.conv2d_backward(dy, x, w, padding=padding, algorithm=algorithm)
        ref = F.conv2d_backward(dy, x, w, padding=padding, algorithm="im2col")
    assert_close(y, y_ref.astype(np.float64), dtype)
    for g, r in zip(got, ref):
        assert_close(g, r.astype(np.float64), dtype)


def test_winograd6_channel_split_is_thread_count_independent(simd, rng):
    """Wide layers with few tiles split each block's channels between the threads: every output
    element, dU row and dx channel is then computed whole by one thread, so 2, 3 and 4 threads
    give the same bits (a race between the transforms and the GEMMs behind the barriers would
    not, nor would BLAS calls over rows split differently: OpenBLAS's Haswell kernels round a
    row by the height of its block), and the result matches im2col. Every SIMD level: below
    AVX-512 dU is BLAS's, in fixed blocks of rows."""
    x, w, b, padding = _inputs(rng, ((3, 200, 7, 7), 180, 1), np.float32)
    with num_threads(1):
        y_ref = F.conv2d(x, w, b, padding=padding, algorithm="im2col")
        dy = randn(rng, y_ref.shape, np.float32)
        ref = (y_ref, *F.conv2d_backward(dy, x, w, padding=padding, algorithm="im2col"))
    runs = []
    for n in (2, 3, 4):
        with num_threads(n):
            y = F.conv2d(x, w, b, padding=padding, algorithm="winograd4")
            runs.append((y, *F.conv2d_backward(dy, x, w, padding=padding, algorithm="winograd4")))
    for other in runs[1:]:
        for a, c in zip(runs[0], other):
            np.testing.assert_array_equal(a, c)
    for g, r in zip(runs[0], ref):
        assert_close(g, r.astype(np.float64), np.float32)


@pytest.mark.parametrize("C", [150, 170])
def test_winograd6_channel_split_weight_gradient_tails(simd, dtype, C, rng):
    """The channel split's weight gradient, each thread's rows of dU (+)= dY^ V^T per block (AVX2:
    V transposed 2 vectors of channels at a time, wgt2_gemm; AVX-512: wgt_gemm): 117 tiles in a
    full block and a partial one (the second accumulates; its tiles end inside a transposed
    8x8 / 4x4 block), channel strips ending partway into the first or the second vector (150 and
    170 channels: 6 and 10 past the last 16 in float, 6 and 2 past 8 in double), 230 rows split
    128 + 102 (the last register block of 6 rows 2 high). Against im2col."""
    x, w, b, padding = _inputs(rng, ((13, C, 11, 11), 230, 1), dtype)
    y_ref = F.conv2d(x, w, b, padding=padding, algorithm="im2col")
    dy = randn(rng, y_ref.shape, dtype)
    ref = F.conv2d_backward(dy, x, w, padding=padding, algorithm="im2col")
    with num_threads(2):
        got = F.conv2d_backward(dy, x, w, padding=padding, algorithm="winograd4")
    for g, r in zip(got, ref):
        assert_close(g, r.astype(np.float64), dtype)


def test_winograd4_row_gathers_every_width(simd, dtype, rng):
    """F(4x4,3x3)'s row gathers on every SIMD level (float: the input's in runs of 8 tiles of a
    row, masked at the row's ends, in AVX2 also the gradient's, scalar below 4 tiles a row;
    AVX-512: groups across rows on maps up to 16 wide, its own gradient gather in runs of 8):
    images 1 to 41 wide with padding 0, 1 and 3, so runs start in the padding, end past the
    row, and leave tails of every length."""
    for width in range(1, 42):
        for padding in (0, 1, 3):
            if width + 2 * padding < 3:
                continue
            x = randn(rng, (2, 2, 6, width), dtype)
            w = randn(rng, (3, 2, 3, 3), dtype, scale=0.5)
            b = randn(rng, 3, dtype)
            y = F.conv2d(x, w, b, padding=padding, algorithm="winograd4")
            assert_close(y, naive.conv2d(x, w, b, 1, padding, False), dtype)
            dy = randn(rng, y.shape, dtype)
            got = F.conv2d_backward(dy, x, w, padding=padding, algorithm="winograd4")
            for g, want in zip(got, naive.conv2d_backward(dy, x, w, 1, padding)):
                assert_close(g, want, dtype)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("case", [((7, 32, 5, 38), 32, 1), ((9, 16, 12, 11), 32, 1)],
                         ids=["wide", "narrow"])
def test_winograd4_blocks_cut_tile_rows(simd, dtype, threads, case, rng):
    """Blocks of tiles that end inside a tile row (csrc's wg6_block: 32 -> 32 channels take
    48-tile blocks, 16 -> 32 64-tile ones). Wide: 38-wide images, 20 tiles each, 10 a row: the
    row gathers' whole-vector stores past a segment's last tile land in the planes' slack or in
    later segments' places, never in earlier ones. Narrow: 12x11 images, 9 tiles each, 3 a row
    (at 1 thread the first block ends 1 tile into a row, leaving segments of 1 and 2 tiles): the
    AVX2 scatters of whole segments of a narrow map (csrc/winograd6_avx2_rows.h) on segments
    that are not a whole row. Against im2col (the loop oracle takes seconds on these shapes;
    im2col is held to it above)."""
    x, w, b, padding = _inputs(rng, case, dtype)
    with num_threads(threads):
        y = F.conv2d(x, w, b, padding=padding, algorithm="winograd4")
        dy = randn(rng, y.shape, dtype)
        got = F.conv2d_backward(dy, x, w, padding=padding, algorithm="winograd4")
        want = (F.conv2d(x, w, b, padding=padding, algorithm="im2col"),
                *F.conv2d_backward(dy, x, w, padding=padding, algorithm="im2col"))
    for g, r in zip((y, *got), want):
        assert_close(g, r.astype(np.float64), dtype)


@pytest.mark.parametrize("threads", [1, 2])
def test_winograd6_every_panel_height(simd, dtype, threads, rng):
    """The AVX-512 and AVX2 GEMMs of the 6x6-tile kernels take the filters packed in panels of 12
    rows (output channels forward, input channels for dx), the last panel 1 to 12 rows high (in
    AVX2 two register blocks of up to 6): every height on both sides (OC + C = 25), 27 tiles (a
    full and a partial vector of them, or two partial ones split between two threads)."""
    for oc in range(1, 25):
        x, w, b, padding = _inputs(rng, ((3, 25 - oc, 9, 9), oc, 1), dtype)
        with num_threads(threads):
            y = F.conv2d(x, w, b, padding=padding, algorithm="winograd4")
            dy = randn(rng, y.shape, dtype)
            got = F.conv2d_backward(dy, x, w, padding=padding, algorithm="winograd4")
        assert_close(y, naive.conv2d(x, w, b, 1, padding), dtype)
        for g, want in zip(got, naive.conv2d_backward(dy, x, w, 1, padding)):
            assert_close(g, want, dtype)


def test_winograd6_packed_gemm_every_column_tail(simd, dtype, rng):
    """The packed GEMMs' columns are a block's tiles, two vectors at a time: 4 to 36 tiles (7x7
    maps, 4 tiles each, 1 to 9 images) end on every multiple of 4 lanes, so two full vectors,
    one full one, and partial ones of either width, in float (8 or 16 lanes) and double (4, 8)."""
    for n in range(1, 10):
        x, w, b, padding = _inputs(rng, ((n, 5, 7, 7), 13, 1), dtype)
        y = F.conv2d(x, w, b, padding=padding, algorithm="winograd4")
        assert_close(y, naive.conv2d(x, w, b, 1, padding), dtype)
        dy = randn(rng, y.shape, dtype)
        got = F.conv2d_backward(dy, x, w, padding=padding, algorithm="winograd4")
        for g, want in zip(got, naive.conv2d_backward(dy, x, w, 1, padding)):
            assert_close(g, want, dtype)


def _on_blas(fn):
    """fn() with the dispatched kernels capped below AVX-512, where im2col runs every GEMM on
    BLAS (under AVX-512 its double GEMMs and the Winograd ones are fastcnn's own): a reference
    independent of those kernels."""
    previous = fastcnn.set_simd("portable")
    try:
        return fn()
    finally:
        fastcnn.set_simd(previous)


@pytest.mark.parametrize("channels", [1, 15, 16, 17, 31, 32, 33, 40, 64, 65])
def test_winograd6_weight_gradient_widths(simd, dtype, channels, rng):
    """The AVX-512 weight-gradient GEMM of the 6x6-tile kernels (dU = dY^ V^T, 16 to 64 input
    channels and from 32 output channels; OpenBLAS otherwise) transposes V 32 (double: 16)
    channels at a time in 16 x 16 (8 x 8) blocks; the AVX2 one (up to 64 input channels) takes
    dot products in blocks of 3 output by 4 input channels, over tiles in vectors of 8 (4):
    every kind of last block of channels, 72 tiles (more than one block of them, the last
    partial: the products added to the previous blocks'), 50 output channels (full panels and a
    partial one), with and without dx; against im2col on BLAS (itself checked against the
    oracle)."""
    x, w, b, padding = _inputs(rng, ((8, channels, 9, 9), 50, 1), dtype)
    dy = randn(rng, F.conv2d(x, w, b, padding=padding).shape, dtype)
    want = [a.astype(np.float64) for a in _on_blas(
        lambda: F.conv2d_backward(dy, x, w, padding=padding, algorithm="im2col"))]
    for threads in (1, 2):
        with num_threads(threads):
            got = F.conv2d_backward(dy, x, w, padding=padding, algorithm="winograd4")
            _, dw, _ = F.conv2d_backward(dy, x, w, padding=padding, need_dx=False,
                                         algorithm="winograd4")
        for g, ref in zip(got, want):
            assert_close(g, ref, dtype)
        np.testing.assert_array_equal(dw, got[1])


def test_winograd6_weight_gradient_panel_heights(simd, dtype, rng):
    """That GEMM's last panel of dU rows is 1 to 12 high (37..48 output channels; in AVX2 every
    remainder of 3 rows), on 20 input channels (one vector and a partial one; 5 blocks of 4)."""
    for oc in range(37, 49):
        x, w, b, padding = _inputs(rng, ((2, 20, 9, 9), oc, 1), dtype)
        dy = randn(rng, F.conv2d(x, w, b, padding=padding).shape, dtype)
        got = F.conv2d_backward(dy, x, w, padding=padding, algorithm="winograd4")
        want = _on_blas(lambda: F.conv2d_backward(dy, x, w, padding=padding, algorithm="im2col"))
        for g, ref in zip(got, want):
            assert_close(g, ref.astype(np.float64), dtype)


# im2col shapes for its own double GEMMs under AVX-512: (x shape, w shape, stride, padding)
OWN_GEMM_CASES = [
    ((3, 1, 28, 28), (30, 1, 5, 5), 1, 0),    # MNIST's first layer: K = 25, 36 full strips
    ((3, 2, 9, 7), (1, 2, 3, 3), 1, 1),       # one output channel: a one-row panel, 63 columns
    ((2, 3, 10, 10), (13, 3, 3, 3), 1, 0),    # panels of 6 and 7 rows
    ((4, 5, 6, 6), (37, 5, 3, 3), 1, 1),      # dweight on the own GEMM: panels 12, 12, 12, 1;
                                              # 45 columns (16, 16, 13), 4 images added up
    ((2, 28, 5, 5), (40, 28, 3, 3), 1, 1),    # K = 252: the widest on the own GEMMs
    ((2, 29, 5, 5), (40, 29, 3, 3), 1, 1),    # K = 261: BLAS again
    ((3, 16, 7, 7), (33, 16, 1, 1), 1, 0),    # 1x1: forward on BLAS, dx straight into dx
    ((2, 1, 5, 5), (40, 1, 1, 1), 1, 0),      # 1x1 on one channel: dx is a one-row panel
    ((2, 3, 11, 11), (32, 3, 3, 3), 2, 1),    # strided
    ((3, 16, 6, 6), (13, 16, 3, 3), 1, 1),    # dweight on the own GEMM below 32 channels:
                                              # 13 x 144 (panels 7, 6)
]


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("case", OWN_GEMM_CASES,
                         ids=[f"x{c[0]}-w{c[1]}-s{c[2]}".replace(" ", "") for c in OWN_GEMM_CASES])
def test_im2col_own_gemms(case, threads, rng):
    """im2col in double runs its three per-image GEMMs on fastcnn's own AVX-512 kernels (forward
    and dx up to K = C*KH*KW = 256, dweight from 32 output channels or 12 with OC*K >= 1700):
    against the same kernel on BLAS, every output, 1 and 2 threads (each thread's dweight partial
    summed over its images)."""
    xs, ws, stride, padding = case
    x, w, b = randn(rng, xs, np.float64), randn(rng, ws, np.float64), randn(rng, ws[0], np.float64)
    kw = dict(stride=stride, padding=padding, algorithm="im2col")
    with num_threads(threads):
        y = F.conv2d(x, w, b, relu=True, **kw)
        dy = randn(rng, y.shape, np.float64)
        got = F.conv2d_backward(dy, x, w, **kw)
        want_y = _on_blas(lambda: F.conv2d(x, w, b, relu=True, **kw))
        want = _on_blas(lambda: F.conv2d_backward(dy, x, w, **kw))
    assert_close(y, want_y, np.float64)
    for g, ref in zip(got, want):
        assert_close(g, ref, np.float64)


@pytest.mark.parametrize("threads", [1, 2])
def test_im2col_own_gemm_fused_epilogue(threads, rng):
    """In double the own forward GEMM adds the bias and applies ReLU in its registers (the BLAS
    path in a pass after): bitwise the same as the unfused forward plus bias then F.relu, NaN
    and +Inf kept, every negative (and -0) made +0; panels of 1, 7, 6 and 7, and 10 rows (1, 7,
    13, 30 output channels), and last column blocks of one whole vector (8x9 outputs: 72 =
    4 x 16 + 8) and of 15 lanes (7x9: 63)."""
    for oc, height in ((1, 10), (7, 9), (13, 10), (30, 9)):
        x = randn(rng, (3, 2, height, 11), np.float64)
        x[0, 0, 2, 3], x[1, 1, 5, 5] = np.nan, np.inf
        w, b = np.abs(randn(rng, (oc, 2, 3, 3), np.float64)), randn(rng, oc, np.float64)
        w[:, 0] *= -1                       # channel 0 pulls outputs negative; channel 1's Inf
        with num_threads(threads):          # stays +Inf
            plain = F.conv2d(x, w, None, algorithm="im2col")
            fused = F.conv2d(x, w, b, relu=True, algorithm="im2col")
            biased = F.conv2d(x, w, b, algorithm="im2col")
        np.testing.assert_array_equal(biased, plain + b[None, :, None, None])
        np.testing.assert_array_equal(fused, F.relu(biased))
        assert np.isnan(fused).any() and np.isposinf(fused).any()
        assert not np.signbit(fused[~np.isnan(fused)]).any()


def test_im2col_own_gemm_panel_heights(rng):
    """The own GEMMs share a matrix's rows evenly between panels of at most 12: every row count
    from 1 to 26, as output channels (forward) and as K (dx: a 1 x K/2 kernel on 2 channels);
    against the loop oracle."""
    for rows in range(1, 27):
        x, w = randn(rng, (2, 2, 6, 5), np.float64), randn(rng, (rows, 2, 3, 3), np.float64)
        assert_close(F.conv2d(x, w, algorithm="im2col"), naive.conv2d(x, w, None, 1, 0),
                     np.float64)
    for half in range(1, 14):
        x, w = randn(rng, (2, 2, 3, 17), np.float64), randn(rng, (5, 2, 1, half), np.float64)
        dy = randn(rng, F.conv2d(x, w, algorithm="im2col").shape, np.float64)
        dx, _, _ = F.conv2d_backward(dy, x, w, algorithm="im2col")
        assert_close(dx, naive.conv2d_backward(dy, x, w, 1, 0)[0], np.float64)


@pytest.mark.parametrize("algorithm", WINOGRAD)
@pytest.mark.parametrize("relu", [False, True], ids=["linear", "relu"])
@pytest.mark.parametrize("case", [WINO_CASES[i] for i in (0, 2, 3, 4, 5, 7, 12)],
                         ids=[WINO_IDS[i] for i in (0, 2, 3, 4, 5, 7, 12)])
def test_winograd_gradients_numerical(case, relu, algorithm, rng):
    x, w, b, padding = _inputs(rng, case, np.float64)
    kw = dict(padding=padding, algorithm=algorithm)
    y0 = F.conv2d(x, w, b, relu=relu, **kw)
    r = rng.standard_normal(y0.shape)
    if relu:   # keep pre-activations away from the kink so differences stay on one side
        pre = F.conv2d(x, w, b, **kw)
        assert np.abs(pre).min() > 1e-4 and (pre < 0).any()

    def loss():
        return float(np.sum(F.conv2d(x, w, b, relu=relu, **kw) * r))

    dy = F.relu_backward(r, y0) if relu else r
    dx, dw, db = F.conv2d_backward(dy, x, w, **kw)
    check_gradients(loss, {"x": x, "weight": w, "bias": b}, {"x": dx, "weight": dw, "bias": db})


def _rel_err(got, ref):
    return float(np.abs(got.astype(np.float64) - ref).max() / np.abs(ref).max())


@pytest.mark.parametrize("shape", [((8, 64, 16, 16), 128), ((10, 16, 28, 28), 16),
                                   ((6, 32, 14, 14), 64), ((4, 256, 8, 8), 32),
                                   ((2, 384, 13, 13), 384)],
                         ids=["64-128@16", "16-16@28", "32-64@14", "256-32@8", "384-384@13"])
@pytest.mark.parametrize("algorithm", WINOGRAD)
def test_winograd_float32_accuracy(shape, algorithm, rng):
    """float32 Winograd stays within 1e-5 of the float64 result (max error over max magnitude)
    on random data, for forward, dx and dweight; the float64 reference is im2col in float64."""
    (xs, oc) = shape
    x = rng.standard_normal(xs)
    w = rng.standard_normal((oc, xs[1], 3, 3)) / np.sqrt(9 * xs[1])
    b = rng.standard_normal(oc)
    y64 = F.conv2d(x, w, b, padding=1, algorithm="im2col")
    dy = rng.standard_normal(y64.shape)
    ref = (y64, *F.conv2d_backward(dy, x, w, padding=1, algorithm="im2col"))
    f32 = [a.astype(np.float32) for a in (x, w, b, dy)]
    y32 = F.conv2d(*f32[:3], padding=1, algorithm=algorithm)
    got = (y32, *F.conv2d_backward(f32[3], f32[0], f32[1], padding=1, algorithm=algorithm))
    for name, g, r in zip(("y", "dx", "dweight", "dbias"), got, ref):
        assert g.dtype == np.float32
        err = _rel_err(g, r)
        assert err <= 1e-5, f"{name}: relative error {err:.3g} > 1e-5"


def test_algorithm_validation(rng):
    x, w, b, _ = _inputs(rng, ((2, 3, 7, 6), 4, 1), np.float32)
    with pytest.raises(ValueError, match="algorithm must be one of"):
        F.conv2d(x, w, b, algorithm="fft")
    with pytest.raises(ValueError, match="algorithm must be one of"):
        F.conv2d_backward(np.zeros((2, 4, 5, 4), np.float32), x, w, algorithm="gemm")
    with pytest.raises(ValueError, match="stride 1"):
        F.conv2d(x, w, b, stride=2, algorithm="winograd")


def test_auto_choice():
    def pick(n, c, oc, hw, kernel=3, stride=1, algorithm="auto", allow_direct=True):
        return F._conv_algorithm("conv2d", algorithm, n, c, oc, hw, hw, (kernel, kernel),
                                 (stride, stride), (1, 1), allow_direct=allow_direct)
    assert pick(100, 16, 16, 28) == "winograd4"
    assert pick(100, 8, 16, 28) == "winograd4"
    assert pick(100, 4, 16, 28) == "direct"             # 2..4 channels: direct first
    assert pick(100, 4, 16, 28, allow_direct=False) == "winograd4"   # F(4x4) down to 3
    assert pick(100, 16, 4, 28) == "winograd4"
    assert pick(100, 6, 16, 14) == "winograd4"
    assert pick(100, 16, 16, 10) == "winograd4"        # 10x10: 44% more cells than F(2x2)
    assert pick(100, 64, 64, 6) == "winograd"          # 6x6: 78% more: F(2x2)
    assert pick(128, 64, 128, 16) == "winograd4"
    assert pick(100, 64, 64, 8) == "winograd4"
    assert pick(100, 192, 192, 7) == "winograd4"       # 7x7: 2x2 tiles of 4 waste what 4x4 of 2 do
    assert pick(100, 32, 64, 14) == "winograd4"        # 14x14: 31% more cells
    assert pick(100, 16, 32, 14) == "winograd4"
    assert pick(8, 384, 384, 13) == "winograd4"        # 13x13, and tiles enough for F(4x4)
    assert pick(4, 384, 384, 13) == "im2col"           # half the tiles: too few for either
    assert pick(128, 3, 64, 32) == "direct"            # RGB first layers
    assert pick(100, 3, 64, 32, kernel=5) == "direct"
    assert pick(100, 1, 30, 28, kernel=5) == "im2col"  # one channel: im2col's GEMM is as fast
    assert pick(8, 3, 96, 55, kernel=11, stride=4) == "s2d"   # AlexNet conv1: space-to-depth
    assert pick(100, 64, 128, 15, kernel=5) == "winograd"   # F(2x2,5x5)
    assert pick(8, 96, 256, 27, kernel=5) == "winograd"
    assert pick(1, 96, 256, 27, kernel=5) == "im2col"       # too few tiles for its transforms
    assert pick(100, 1, 16, 28) == "im2col"            # C*OC < 64
    assert pick(1, 64, 128, 16) == "im2col"            # too few tiles for the weight transforms
    assert pick(2, 64, 128, 16) == "winograd4"
    assert pick(128, 64, 128, 16, stride=2) == "im2col"
    assert pick(128, 64, 128, 16, kernel=7) == "im2col"
    assert pick(128, 64, 128, 16, algorithm="im2col") == "im2col"
    assert pick(1, 1, 1, 3, algorithm="winograd") == "winograd"


def test_auto_direct_layers_backward_choice():
    """With dx, the RGB layers "auto" runs direct take the fused Winograd backward where "auto"
    would take Winograd without the direct kernel (it reads dy once for both gradients)."""
    def choice(n, c, oc, hw, kernel=3):
        return F._auto_direct_backward("conv2d_backward", n, c, oc, hw, hw, (kernel, kernel),
                                       (1, 1), (1, 1))
    assert choice(128, 3, 64, 32) == "winograd4"
    assert choice(100, 3, 64, 32, kernel=5) == "direct"   # F(2x2,5x5) wants 16 channels
    assert choice(100, 3, 64, 32, kernel=7) == "direct"   # no Winograd kernel
    assert choice(2, 2, 3, 9) == "direct"                 # C*OC < 64: too thin for Winograd


@pytest.mark.parametrize("kernel", [5, 10, 3])
def test_auto_one_channel_backward(simd, dtype, kernel, rng):
    """"auto" runs a one-channel layer's backward on the direct kernel where its 5-tap tiles run
    (kernel widths 5 and 10 on AVX-512), dx from im2col's code alongside; elsewhere on im2col.
    Which one ran shows in the bits: each gradient equals its named algorithm's, and the oracle."""
    x = randn(rng, (3, 1, 13, 14), dtype)
    w = randn(rng, (7, 1, kernel, kernel), dtype, scale=0.3)
    dy = randn(rng, F.conv2d(x, w, None, padding=1).shape, dtype)
    direct = simd == "avx512" and kernel in (5, 10)
    assert F._auto_direct_one_channel_backward(1, (kernel, kernel), (1, 1)) == direct
    assert not F._auto_direct_one_channel_backward(2, (kernel, kernel), (1, 1))
    assert not F._auto_direct_one_channel_backward(1, (kernel, kernel), (2, 2))
    want = naive.conv2d_backward(dy, x, w, 1, 1)
    named = F.conv2d_backward(dy, x, w, padding=1, algorithm="direct" if direct else "im2col")
    im2col_dx = F.conv2d_backward(dy, x, w, padding=1, algorithm="im2col")[0]
    for need_dx in (False, True):
        dx, dw, db = F.conv2d_backward(dy, x, w, padding=1, need_dx=need_dx)
        np.testing.assert_array_equal(dw, named[1])
        np.testing.assert_array_equal(db, named[2])
        if need_dx:
            np.testing.assert_array_equal(dx, im2col_dx)
        for g, ref in zip((dx, dw, db), want):
            if g is not None:
                assert_close(g, ref, dtype)


@pytest.mark.parametrize("kernel", [3, 5, 7])
def test_auto_direct_layer_dx_matches_naive(dtype, kernel, rng):
    """The RGB layers "auto" runs direct, through the backward routing above (3x3: Winograd),
    against the oracle, with and without dx."""
    x = randn(rng, (2, 3, 11, 10), dtype)
    w = randn(rng, (32, 3, kernel, kernel), dtype, scale=0.3)
    assert F._conv_algorithm("conv2d", "auto", 2, 3, 32, 11, 10, (kernel, kernel), (1, 1),
                             (2, 2)) == "direct"
    y = F.conv2d(x, w, None, padding=2)
    dy = randn(rng, y.shape, dtype)
    got = F.conv2d_backward(dy, x, w, padding=2)
    for g, want in zip(got, naive.conv2d_backward(dy, x, w, 1, 2)):
        assert_close(g, want, dtype)
    dx, dw, db = F.conv2d_backward(dy, x, w, padding=2, need_dx=False)
    assert dx is None
    assert_close(dw, naive.conv2d_backward(dy, x, w, 1, 2)[1], dtype)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_reference_backend_accepts_algorithm(algorithm, rng):
    x, w, b, _ = _inputs(rng, ((2, 9, 7, 6), 8, 1), np.float64)
    with F.use_backend("reference"):
        y = F.conv2d(x, w, b, padding=1, algorithm=algorithm)
        dx, dw, db = F.conv2d_backward(y, x, w, padding=1, algorithm=algorithm)
    assert_close(y, naive.conv2d(x, w, b, 1, 1), np.float64)
    for g, want in zip((dx, dw, db), naive.conv2d_backward(y, x, w, 1, 1)):
        assert_close(g, want, np.float64)


@pytest.mark.parametrize("algorithm", WINOGRAD + ["auto"])
def test_batch_size_zero(dtype, algorithm, rng):
    x = np.zeros((0, 9, 6, 6), dtype)
    w = randn(rng, (8, 9, 3, 3), dtype)
    y = F.conv2d(x, w, None, padding=1, algorithm=algorithm)
    assert y.shape == (0, 8, 6, 6)
    dx, dw, db = F.conv2d_backward(y, x, w, padding=1, algorithm=algorithm)
    assert dx.shape == x.shape and not dw.any() and not db.any()


# 5x5 stride-1 shapes: "winograd" is F(2x2,5x5) there (6x6 tiles, 2.8x fewer multiplications)
FIVE_CASES = [
    ((2, 3, 7, 6), 4, 0),          # 3x2 output: one row of tiles, the last one clipped
    ((2, 3, 9, 8), 5, 2),          # odd output height with padding 2 (AlexNet's)
    ((1, 2, 5, 5), 3, 4),          # padding wider than the kernel: border tiles all padding
    ((3, 16, 15, 15), 32, 2),      # AlexNet small conv2-like, odd sizes
    ((2, 4, 1, 9), 3, 2),          # one-row images
    ((2, 3, 3, 41), 4, 2),         # 41-wide rows: 21 tiles, more than one 32-cell vector run
    ((6, 3, 12, 12), 4, 2),        # 216 tiles on 12-wide rows: runs of 8 lane groups
]
FIVE_IDS = [f"x{c[0]}-oc{c[1]}-p{c[2]}".replace(" ", "") for c in FIVE_CASES]


def _inputs5(rng, case, dtype):
    xs, oc, padding = case
    return (randn(rng, xs, dtype), randn(rng, (oc, xs[1], 5, 5), dtype, scale=0.3),
            randn(rng, oc, dtype), padding)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("case", FIVE_CASES, ids=FIVE_IDS)
def test_winograd_5x5_matches_naive(dtype, case, threads, rng):
    x, w, b, padding = _inputs5(rng, case, dtype)
    with num_threads(threads):
        for bias, relu in ((b, False), (None, False), (b, True)):
            y = F.conv2d(x, w, bias, padding=padding, relu=relu, algorithm="winograd")
            assert_close(y, naive.conv2d(x, w, bias, 1, padding, relu), dtype)
        dy = randn(rng, y.shape, dtype)
        got = F.conv2d_backward(dy, x, w, padding=padding, algorithm="winograd")
        for g, want in zip(got, naive.conv2d_backward(dy, x, w, 1, padding)):
            assert_close(g, want, dtype)
        dx, dw, db = F.conv2d_backward(dy, x, w, padding=padding, need_dx=False,
                                       need_dbias=False, algorithm="winograd")
        assert dx is None and db is None
        np.testing.assert_array_equal(dw, got[1])


# The Winograd kernels are compiled once per instruction set and picked at run time
# (fastcnn.set_simd): the tests above run on the best level the CPU has, these on every level.
SIMD_CASES = ([(alg, WINO_CASES[i], 3) for alg in WINOGRAD for i in (1, 3, 4, 10, 12)]
              + [("winograd", FIVE_CASES[i], 5) for i in (1, 2, 4)])
SIMD_IDS = [f"{alg}-k{k}-x{c[0]}-oc{c[1]}-p{c[2]}".replace(" ", "") for alg, c, k in SIMD_CASES]


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("alg_case", SIMD_CASES, ids=SIMD_IDS)
def test_winograd_every_simd_level(simd, dtype, alg_case, threads, rng):
    algorithm, case, k = alg_case
    x, w, b, padding = _inputs(rng, case, dtype) if k == 3 else _inputs5(rng, case, dtype)
    with num_threads(threads):
        for bias, relu in ((b, False), (b, True)):
            y = F.conv2d(x, w, bias, padding=padding, relu=relu, algorithm=algorithm)
            assert_close(y, naive.conv2d(x, w, bias, 1, padding, relu), dtype)
        dy = randn(rng, y.shape, dtype)
        got = F.conv2d_backward(dy, x, w, padding=padding, algorithm=algorithm)
        for g, want in zip(got, naive.conv2d_backward(dy, x, w, 1, padding)):
            assert_close(g, want, dtype)
        dx, dw, _ = F.conv2d_backward(dy, x, w, padding=padding, need_dx=False,
                                      algorithm=algorithm)
        assert dx is None
        np.testing.assert_array_equal(dw, got[1])


def test_im2col_every_simd_level_every_row_length(simd, dtype, rng):
    """im2col's row copies (csrc/im2col_impl.h: moves of 64, 32, 16, 8 and 4 bytes), its col2im,
    bias/ReLU epilogue and bias-gradient sums, compiled per instruction set: images 1 to 37 wide
    with padding 1 copy rows of 0 to 37 elements, every remainder of a float or double vector;
    stride 2 takes the strided gather."""
    for width in range(1, 38):
        x = randn(rng, (2, 2, 3, width), dtype)
        w = randn(rng, (3, 2, 3, 3), dtype, scale=0.5)
        b = randn(rng, 3, dtype)
        for stride in (1, 2):
            for relu in (False, True):
                y = F.conv2d(x, w, b, stride=stride, padding=1, relu=relu, algorithm="im2col")
                assert_close(y, naive.conv2d(x, w, b, stride, 1, relu), dtype)
            dy = randn(rng, y.shape, dtype)
            got = F.conv2d_backward(dy, x, w, stride=stride, padding=1, algorithm="im2col")
            for g, want in zip(got, naive.conv2d_backward(dy, x, w, stride, 1)):
                assert_close(g, want, dtype)


# stride-1 unpadded im2col forwards, which the own double GEMM under AVX-512 computes reading
# the columns from x in place (K = C*KH*KW <= 256): panels of output channels (30: three of 10,
# 13: 7 + 6), rows one, two and three vectors wide with remainders, several input channels,
# non-square kernels; and K = 275, past the own GEMM, where im2col copies them
IMPLICIT_CASES = [((2, 1, 28, 28), (30, 1, 5, 5)), ((2, 3, 11, 13), (25, 3, 3, 3)),
                  ((1, 2, 9, 40), (13, 2, 4, 2)), ((3, 4, 6, 7), (5, 4, 1, 3)),
                  ((1, 11, 9, 9), (14, 11, 5, 5))]


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("case", IMPLICIT_CASES, ids=[f"x{c[0]}-w{c[1]}".replace(" ", "")
                                                      for c in IMPLICIT_CASES])
def test_im2col_forward_columns_in_place(simd, dtype, case, threads, rng):
    xs, ws = case
    x, w, b = randn(rng, xs, dtype), randn(rng, ws, dtype, scale=0.3), randn(rng, ws[0], dtype)
    with num_threads(threads):
        for bias, relu in ((b, False), (b, True), (None, False)):
            y = F.conv2d(x, w, bias, relu=relu, algorithm="im2col")
            assert_close(y, naive.conv2d(x, w, bias, 1, 0, relu), dtype)


@pytest.mark.parametrize("algorithm,k", [("winograd", 3), ("winograd4", 3), ("winograd", 5)])
def test_winograd_simd_levels_agree(dtype, algorithm, k, rng):
    """On a shape with many blocks of tiles, every level gives the result of the portable one to
    rounding."""
    x = randn(rng, (3, 24, 19, 21), dtype)
    w = randn(rng, (40, 24, k, k), dtype, scale=0.2)
    b = randn(rng, 40, dtype)
    dy = randn(rng, F.conv2d(x, w, b, padding=k // 2).shape, dtype)
    results = {}
    previous = fastcnn.get_simd()
    try:
        for level in fastcnn.simd_levels():
            fastcnn.set_simd(level)
            results[level] = (F.conv2d(x, w, b, padding=k // 2, relu=True, algorithm=algorithm),
                              *F.conv2d_backward(dy, x, w, padding=k // 2, algorithm=algorithm))
    finally:
        fastcnn.set_simd(previous)
    for level, got in results.items():
        for g, want in zip(got, results["portable"]):
            assert_close(g, want.astype(np.float64), dtype)


@pytest.mark.parametrize("case", [FIVE_CASES[i] for i in (0, 1, 2)],
                         ids=[FIVE_IDS[i] for i in (0, 1, 2)])
def test_winograd_5x5_gradients_numerical(case, rng):
    x, w, b, padding = _inputs5(rng, case, np.float64)
    kw = dict(padding=padding, algorithm="winograd")
    r = rng.standard_normal(F.conv2d(x, w, b, **kw).shape)

    def loss():
        return float(np.sum(F.conv2d(x, w, b, **kw) * r))

    dx, dw, db = F.conv2d_backward(r, x, w, **kw)
    check_gradients(loss, {"x": x, "weight": w, "bias": b}, {"x": dx, "weight": dw, "bias": db})


@pytest.mark.parametrize("shape", [((8, 64, 15, 15), 128), ((4, 96, 27, 27), 256),
                                   ((4, 256, 9, 9), 128)],
                         ids=["64-128@15", "96-256@27", "256-128@9"])
def test_winograd_5x5_float32_accuracy(shape, rng):
    """F(2x2,5x5) in float32 within 1e-5 of float64 (max error over max magnitude); measured
    1.3e-6 to 4e-6 on these shapes."""
    (xs, oc) = shape
    x = rng.standard_normal(xs)
    w = rng.standard_normal((oc, xs[1], 5, 5)) / np.sqrt(25 * xs[1])
    y64 = F.conv2d(x, w, None, padding=2, algorithm="im2col")
    dy = rng.standard_normal(y64.shape)
    ref = (y64, *F.conv2d_backward(dy, x, w, padding=2, algorithm="im2col"))
    f32 = [a.astype(np.float32) for a in (x, w, dy)]
    got = (F.conv2d(f32[0], f32[1], None, padding=2, algorithm="winograd"),
           *F.conv2d_backward(f32[2], f32[0], f32[1], padding=2, algorithm="winograd"))
    for name, g, r in zip(("y", "dx", "dweight", "dbias"), got, ref):
        err = _rel_err(g, r)
        assert err <= 1e-5, f"{name}: relative error {err:.3g} > 1e-5"


def test_winograd_kernel_sizes_refused(rng):
    x = randn(rng, (2, 4, 9, 9), np.float32)
    with pytest.raises(ValueError, match="winograd4.*3x3 kernel"):
        F.conv2d(x, randn(rng, (3, 4, 5, 5), np.float32), algorithm="winograd4")
    with pytest.raises(ValueError, match="3x3 or 5x5"):
        F.conv2d(x, randn(rng, (3, 4, 7, 7), np.float32), algorithm="winograd")
    with pytest.raises(ValueError, match="3x3 or 5x5"):
        F.conv2d(x, randn(rng, (3, 4, 5, 3), np.float32), algorithm="winograd")


# strided shapes for "s2d" (space-to-depth into a stride-1 convolution): (x, weight, stride, pad)
S2D_CASES = [
    ((2, 3, 27, 27), (5, 3, 11, 11), 4, 0),      # AlexNet conv1 in small: 11x11 stride 4
    ((1, 2, 9, 75), (3, 2, 5, 5), 4, 1),         # rows of 19 phase columns: the gather's
    ((1, 2, 7, 70), (3, 2, 3, 3), 2, 1),         # vectorised stride-4 and stride-2 loops
    ((2, 3, 20, 19), (4, 3, 5, 5), 2, 1),        # kernel not a multiple of the stride
    ((1, 2, 9, 11), (3, 2, 3, 3), 2, 2),         # padding 2, odd sizes
    ((2, 3, 15, 16), (4, 3, 7, 7), 3, 3),        # stride 3
    ((1, 2, 8, 8), (3, 2, 2, 2), 2, 0),          # kernel = stride: a 1x1 inner kernel
    ((2, 2, 13, 10), (3, 2, 3, 5), (2, 3), (1, 0)),   # per-axis stride, kernel and padding
    ((2, 2, 9, 9), (3, 2, 2, 2), 2, 0),          # the last row and column past the phases
]
S2D_IDS = [f"x{c[0]}-w{c[1]}-s{c[2]}-p{c[3]}".replace(" ", "") for c in S2D_CASES]


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("case", S2D_CASES, ids=S2D_IDS)
def test_s2d_matches_naive(dtype, case, threads, rng):
    xs, ws, stride, padding = case
    x, w, b = randn(rng, xs, dtype), randn(rng, ws, dtype, scale=0.3), randn(rng, ws[0], dtype)
    with num_threads(threads):
        for bias, relu in ((b, False), (b, True)):
            y = F.conv2d(x, w, bias, stride=stride, padding=padding, relu=relu, algorithm="s2d")
            assert y.flags.c_contiguous
            assert_close(y, naive.conv2d(x, w, bias, stride, padding, relu), dtype)
        dy = randn(rng, y.shape, dtype)
        out = np.full(x.shape, np.nan, dtype)   # every cell of out= must be written
        got = F.conv2d_backward(dy, x, w, stride=stride, padding=padding, algorithm="s2d",
                                out=out)
        assert got[0] is out
        for g, want in zip(got, naive.conv2d_backward(dy, x, w, stride, padding)):
            assert g.shape == want.shape and g.dtype == dtype
            assert_close(g, want, dtype)
        dx, dw, db = F.conv2d_backward(dy, x, w, stride=stride, padding=padding, need_dx=False,
                                       need_dbias=False, algorithm="s2d")
        assert dx is None and db is None
        assert_close(dw, got[1].astype(np.float64), dtype)


@pytest.mark.parametrize("case", [S2D_CASES[i] for i in (1, 3, 5)],
                         ids=[S2D_IDS[i] for i in (1, 3, 5)])
def test_s2d_gradients_numerical(case, rng):
    xs, ws, stride, padding = case
    x, w, b = rng.standard_normal(xs), 0.3 * rng.standard_normal(ws), rng.standard_normal(ws[0])
    kw = dict(stride=stride, padding=padding, algorithm="s2d")
    r = rng.standard_normal(F.conv2d(x, w, b, **kw).shape)

    def loss():
        return float(np.sum(F.conv2d(x, w, b, **kw) * r))

    dx, dw, db = F.conv2d_backward(r, x, w, **kw)
    check_gradients(loss, {"x": x, "weight": w, "bias": b}, {"x": dx, "weight": dw, "bias": db})


# the space-to-depth cut and its adjoint themselves (s2d.c), against NumPy slicing: widths where
# the phases' shared columns are empty, one, or most of the row, strides 1-5 (2 and 4: the
# interleaved loops), padding up to past the stride, frames shorter and longer than x
S2D_CUTS = [  # (H, W, SH, SW, PH, PW, H2, W2)
    (9, 75, 4, 4, 1, 1, 19, 19), (9, 75, 4, 4, 0, 3, 18, 20), (7, 70, 2, 2, 1, 1, 36, 36),
    (5, 9, 2, 2, 2, 2, 4, 4), (6, 7, 3, 3, 3, 3, 5, 5), (4, 5, 1, 5, 0, 4, 4, 2),
    (8, 3, 2, 4, 1, 2, 5, 2), (5, 6, 2, 4, 0, 5, 3, 1), (10, 33, 4, 4, 0, 0, 2, 8),
]


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("cut", S2D_CUTS, ids=[str(c).replace(" ", "") for c in S2D_CUTS])
def test_s2d_cut_and_fold_match_numpy(dtype, cut, threads, rng):
    from fastcnn import _kernels
    H, W, SH, SW, PH, PW, H2, W2 = cut
    N, C = 2, 3
    x = randn(rng, (N, C, H, W), dtype)
    # the padded frame: x placed at (PH, PW) in zeros of (H2*SH, W2*SW), cropped or extended
    frame = np.zeros((N, C, max(H2 * SH, H + PH), max(W2 * SW, W + PW)), dtype)
    frame[:, :, PH:PH + H, PW:PW + W] = x
    frame = frame[:, :, :H2 * SH, :W2 * SW]
    want = (frame.reshape(N, C, H2, SH, W2, SW).transpose(0, 1, 3, 5, 2, 4)
            .reshape(N, C * SH * SW, H2, W2))
    with num_threads(threads):
        xs = np.full(N * C * SH * SW * H2 * W2, np.nan, dtype)
        _kernels.s2d_gather(xs, x.ravel(), N, C, H, W, SH, SW, PH, PW, H2, W2, threads)
        np.testing.assert_array_equal(xs.reshape(want.shape), want)
        # the fold: each x cell takes its phase cell, cells outside the frame 0
        dxs = randn(rng, want.shape, dtype)
        big = np.zeros((N, C, max(H2 * SH, H + PH), max(W2 * SW, W + PW)), dtype)
        big[:, :, :H2 * SH, :W2 * SW] = (dxs.reshape(N, C, SH, SW, H2, W2)
                                         .transpose(0, 1, 4, 2, 5, 3)
                                         .reshape(N, C, H2 * SH, W2 * SW))
        dx = np.full(N * C * H * W, np.nan, dtype)
        _kernels.s2d_scatter(dx, dxs.ravel(), N, C, H, W, SH, SW, PH, PW, H2, W2, threads)
        np.testing.assert_array_equal(dx.reshape(x.shape), big[:, :, PH:PH + H, PW:PW + W])


def test_s2d_alexnet_conv1_float32(rng):
    """AlexNet's conv1 as "auto" runs it (space-to-depth, then F(4x4,3x3) on 48 channels):
    float32 within 1e-5 of float64 im2col (measured 1.3e-6 to 3.3e-6)."""
    x = rng.standard_normal((2, 3, 227, 227))
    w = 0.05 * rng.standard_normal((96, 3, 11, 11))
    assert F._conv_algorithm("conv2d", "auto", 2, 3, 96, 55, 55, (11, 11), (4, 4),
                             (0, 0)) == "s2d"
    y64 = F.conv2d(x, w, None, stride=4, algorithm="im2col")
    dy = rng.standard_normal(y64.shape)
    ref = (y64, *F.conv2d_backward(dy, x, w, stride=4, algorithm="im2col"))
    f32 = [a.astype(np.float32) for a in (x, w, dy)]
    got = (F.conv2d(f32[0], f32[1], None, stride=4),
           *F.conv2d_backward(f32[2], f32[0], f32[1], stride=4))
    for name, g, r in zip(("y", "dx", "dweight", "dbias"), got, ref):
        assert g.dtype == np.float32
        err = _rel_err(g, r)
        assert err <= 1e-5, f"{name}: relative error {err:.3g} > 1e-5"


def test_s2d_choice_and_refusal(rng):
    def pick(c, oc, hw, k, s):
        return F._conv_algorithm("conv2d", "auto", 8, c, oc, hw, hw, (k, k), (s, s), (0, 0))
    assert pick(3, 96, 55, 11, 4) == "s2d"        # 3x3 on 48 channels: Winograd
    assert pick(3, 1, 55, 11, 4) == "im2col"      # one output channel: too thin for Winograd
    assert pick(16, 32, 14, 3, 2) == "im2col"     # 3x3 stride 2: a 2x2 inner kernel
    x = randn(rng, (1, 2, 8, 8), np.float32)
    with pytest.raises(ValueError, match="s2d.*stride above 1"):
        F.conv2d(x, randn(rng, (3, 2, 3, 3), np.float32), algorithm="s2d")
