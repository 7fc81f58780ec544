"""F.batch_norm / F.batch_norm_backward against tests/naive.py (both backends): training and eval,
4-D per-channel and 2-D per-feature, running statistics, numerical gradients, layouts, threads."""
import numpy as np
import pytest

import naive
from conftest import LAYOUTS, assert_close, check_gradients, layout, num_threads, randn
from fastcnn import functional as F

# (23, 3, 7, 7): short maps summed in blocks of 11 samples (the last one 1); (3, 2, 17, 31): maps of
# over 512 elements, summed one by one, with a lane tail
SHAPES = [(4, 3, 5, 6), (2, 1, 3, 3), (1, 3, 2, 2), (3, 2, 1, 7), (7, 5), (2, 3), (16, 1),
          (23, 3, 7, 7), (3, 2, 17, 31)]
SHAPE_IDS = ["x" + str(s).replace(" ", "") for s in SHAPES]


def _params(rng, shape, dtype, offset=2.0, spread=3.0):
    c = shape[1]
    x = (offset + spread * rng.standard_normal(shape)).astype(dtype)
    gamma = (1 + 0.5 * rng.standard_normal(c)).astype(dtype)
    beta = rng.standard_normal(c).astype(dtype)
    rmean = rng.standard_normal(c).astype(dtype)
    rvar = rng.uniform(0.5, 2.0, c).astype(dtype)
    return x, gamma, beta, rmean, rvar


# ---- forward -------------------------------------------------------------------------------------

@pytest.mark.parametrize("momentum", [0.1, 0.0, 1.0, 0.37])
@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
def test_forward_training_matches_naive(backend, dtype, shape, momentum, rng):
    x, gamma, beta, rmean, rvar = _params(rng, shape, dtype)
    rm, rv = rmean.copy(), rvar.copy()
    y, mean, invstd = F.batch_norm(x, gamma, beta, rm, rv, training=True, momentum=momentum, eps=1e-5)
    ny, nmean, ninvstd, nrm, nrv = naive.batch_norm(x, gamma, beta, rmean, rvar, True, momentum, 1e-5)
    assert_close(y, ny, dtype)
    assert_close(mean, nmean, dtype)
    assert_close(invstd, ninvstd, dtype)
    assert y.flags.c_contiguous
    # running statistics are updated in place, in their own arrays, variance unbiased
    assert_close(rm, nrm, dtype)
    assert_close(rv, nrv, dtype)
    if momentum == 0.0:
        np.testing.assert_array_equal(rm, rmean)
        np.testing.assert_array_equal(rv, rvar)


@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
def test_forward_eval_matches_naive(backend, dtype, shape, rng):
    x, gamma, beta, rmean, rvar = _params(rng, shape, dtype)
    rm, rv = rmean.copy(), rvar.copy()
    y, mean, invstd = F.batch_norm(x, gamma, beta, rm, rv, training=False)
    ny, nmean, ninvstd, _, _ = naive.batch_norm(x, gamma, beta, rmean, rvar, False)
    assert_close(y, ny, dtype)
    assert_close(mean, nmean, dtype)          # eval: save_* are the running statistics
    assert_close(invstd, ninvstd, dtype)
    np.testing.assert_array_equal(rm, rmean)  # and eval never touches them
    np.testing.assert_array_equal(rv, rvar)


def test_running_stats_optional_in_training(backend, dtype, rng):
    x, gamma, beta, rmean, rvar = _params(rng, SHAPES[0], dtype)
    y1, m1, s1 = F.batch_norm(x, gamma, beta, None, None, training=True)
    y2, m2, s2 = F.batch_norm(x, gamma, beta, rmean.copy(), rvar.copy(), training=True)
    y3, m3, s3 = F.batch_norm(x, gamma, beta)                 # defaults: training, no running
    for a, b, c in ((y1, y2, y3), (m1, m2, m3), (s1, s2, s3)):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)


def test_momentum_one_stores_the_batch_statistics(backend, dtype, rng):
    x, gamma, beta, rmean, rvar = _params(rng, (5, 3, 4, 2), dtype)
    y, mean, invstd = F.batch_norm(x, gamma, beta, rmean, rvar, training=True, momentum=1.0)
    x64 = x.astype(np.float64)
    assert_close(rmean, x64.mean(axis=(0, 2, 3)), dtype)
    assert_close(rvar, x64.var(axis=(0, 2, 3), ddof=1), dtype)             # unbiased
    biased = 1 / invstd.astype(np.float64) ** 2 - 1e-5
    np.testing.assert_allclose(biased, x64.var(axis=(0, 2, 3)), rtol=1e-5 if dtype == np.float32 else 1e-12)


def test_repeated_updates_converge_like_torch(backend, dtype, rng):
    """Ten steps of the torch convention on a fixed batch: running -> batch stats geometrically."""
    x, gamma, beta, rmean, rvar = _params(rng, (8, 2, 3, 3), dtype)
    rm0, rv0 = rmean.astype(np.float64), rvar.astype(np.float64)
    for _ in range(10):
        F.batch_norm(x, gamma, beta, rmean, rvar, training=True, momentum=0.25)
    mu = x.astype(np.float64).mean(axis=(0, 2, 3))
    var = x.astype(np.float64).var(axis=(0, 2, 3), ddof=1)
    keep = 0.75 ** 10
    assert_close(rmean, keep * rm0 + (1 - keep) * mu, dtype, rtol=1e-5 if dtype == np.float32 else 1e-12)
    assert_close(rvar, keep * rv0 + (1 - keep) * var, dtype, rtol=1e-5 if dtype == np.float32 else 1e-12)


def test_float32_statistics_survive_a_large_offset(backend, rng):
    """Mean 1e4, std 1: a one-pass float32 E[x^2] - E[x]^2 would lose every digit of the variance."""
    x, gamma, beta, rmean, rvar = _params(rng, (16, 2, 8, 8), np.float32, offset=1e4, spread=1.0)
    y, mean, invstd = F.batch_norm(x, gamma, beta, rmean, rvar, training=True)
    ny, nmean, ninvstd, nrm, nrv = naive.batch_norm(x, gamma, beta, rmean, rvar, True)
    assert_close(invstd, ninvstd, np.float32, rtol=1e-5)
    assert_close(y, ny, np.float32, rtol=1e-3)  # x - mean in float32 costs ~1e4 * 6e-8 absolute


def test_2d_equals_4d_with_unit_spatial(backend, dtype, rng):
    x, gamma, beta, rmean, rvar = _params(rng, (6, 4), dtype)
    y2, m2, s2 = F.batch_norm(x, gamma, beta, rmean.copy(), rvar.copy())
    y4, m4, s4 = F.batch_norm(x.reshape(6, 4, 1, 1), gamma, beta, rmean.copy(), rvar.copy())
    assert y2.shape == (6, 4)
    assert_close(y2, y4.reshape(6, 4).astype(np.float64), dtype, rtol=1e-6 if dtype == np.float32 else 1e-14)
    np.testing.assert_allclose(m2, m4, rtol=1e-6)
    np.testing.assert_allclose(s2, s4, rtol=1e-6)


# ---- backward ------------------------------------------------------------------------------------

@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
def test_backward_matches_naive(backend, dtype, shape, training, rng):
    x, gamma, beta, rmean, rvar = _params(rng, shape, dtype)
    y, mean, invstd = F.batch_norm(x, gamma, beta, rmean, rvar, training=training)
    dy = randn(rng, shape, dtype)
    dx, dgamma, dbeta = F.batch_norm_backward(dy, x, gamma, mean, invstd, training=training)
    ndx, ndgamma, ndbeta = naive.batch_norm_backward(dy, x, gamma, mean, invstd, training)
    assert_close(dx, ndx, dtype)
    assert_close(dgamma, ndgamma, dtype)
    assert_close(dbeta, ndbeta, dtype)
    for a in (dx, dgamma, dbeta):
        assert a.flags.c_contiguous


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
def test_fast_matches_reference(dtype, shape, training, rng):
    x, gamma, beta, rmean, rvar = _params(rng, shape, dtype)
    dy = randn(rng, shape, dtype)
    out = {}
    for name in ("fast", "reference"):
        with F.use_backend(name):
            rm, rv = rmean.copy(), rvar.copy()
            y, mean, invstd = F.batch_norm(x, gamma, beta, rm, rv, training=training, momentum=0.2)
            out[name] = (y, mean, invstd, rm, rv,
                         *F.batch_norm_backward(dy, x, gamma, mean, invstd, training=training))
    for a, b in zip(out["fast"], out["reference"]):
        assert a.dtype == b.dtype == dtype and a.shape == b.shape
        assert_close(a, b.astype(np.float64), dtype)


# ---- numerical gradients -------------------------------------------------------------------------

@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("shape", [(3, 2, 3, 2), (1, 2, 2, 3), (5, 3), (2, 1, 1, 2)],
                         ids=["x(3,2,3,2)", "x(1,2,2,3)", "x(5,3)", "x(2,1,1,2)"])
def test_gradients_numerical(backend, shape, training, rng):
    x, gamma, beta, rmean, rvar = _params(rng, shape, np.float64)
    r = rng.standard_normal(shape)

    def loss():
        # running stats as constants in eval; in training they are outputs only (left None)
        rm, rv = (rmean, rvar) if not training else (None, None)
        y = F.batch_norm(x, gamma, beta, rm, rv, training=training)[0]
        return float(np.sum(y * r))

    rm, rv = (rmean, rvar) if not training else (None, None)
    _, mean, invstd = F.batch_norm(x, gamma, beta, rm, rv, training=training)
    dx, dgamma, dbeta = F.batch_norm_backward(r, x, gamma, mean, invstd, training=training)
    check_gradients(loss, {"x": x, "gamma": gamma, "beta": beta},
                    {"x": dx, "gamma": dgamma, "beta": dbeta})


# ---- layouts and in-place running statistics -----------------------------------------------------

@pytest.mark.parametrize("kind", LAYOUTS)
@pytest.mark.parametrize("shape", [(4, 3, 5, 6), (7, 5)], ids=["4d", "2d"])
def test_input_layouts(backend, dtype, shape, kind, rng):
    x, gamma, beta, rmean, rvar = _params(rng, shape, dtype)
    dy = randn(rng, shape, dtype)
    rm, rv = rmean.copy(), rvar.copy()
    want = F.batch_norm(x, gamma, beta, rm, rv, training=True)
    want_g = F.batch_norm_backward(dy, x, gamma, want[1], want[2], training=True)
    want_eval = F.batch_norm(x, gamma, beta, rmean, rvar, training=False)

    xl, gl, bl, dyl = (layout(a, kind) for a in (x, gamma, beta, dy))
    rm2, rv2 = rmean.copy(), rvar.copy()
    got = F.batch_norm(xl, gl, bl, rm2, rv2, training=True)
    got_g = F.batch_norm_backward(dyl, xl, gl, layout(got[1], kind), layout(got[2], kind),
                                  training=True)
    got_eval = F.batch_norm(xl, gl, bl, layout(rmean, kind), layout(rvar, kind), training=False)
    for a, b in zip(got + got_g + got_eval, want + want_g + want_eval):
        assert a.flags.c_contiguous
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(rm2, rm)
    np.testing.assert_array_equal(rv2, rv)


@pytest.mark.parametrize("kind", ["sliced", "reversed"])
def test_strided_running_stats_are_updated_in_place_or_refused(backend, dtype, kind, rng):
    """A copy made for contiguity must not swallow the update: write back, or raise."""
    x, gamma, beta, rmean, rvar = _params(rng, (4, 3, 2, 2), dtype)
    rm_c, rv_c = rmean.copy(), rvar.copy()
    F.batch_norm(x, gamma, beta, rm_c, rv_c, training=True)
    rm, rv = layout(rmean, kind), layout(rvar, kind)
    try:
        F.batch_norm(x, gamma, beta, rm, rv, training=True)
    except (ValueError, TypeError) as e:
        assert "running" in str(e)
        return
    np.testing.assert_array_equal(rm, rm_c)
    np.testing.assert_array_equal(rv, rv_c)


def test_read_only_running_stats_in_training_are_refused(backend, dtype, rng):
    x, gamma, beta, rmean, rvar = _params(rng, (4, 3, 2, 2), dtype)
    rmean.flags.writeable = False
    with pytest.raises(ValueError, match="running_mean"):
        F.batch_norm(x, gamma, beta, rmean, rvar, training=True)
    # eval only reads them
    F.batch_norm(x, gamma, beta, rmean, rvar, training=False)


# ---- threads: per-channel statistics reduced in a fixed order, so bitwise equal ------------------

# the "threaded" shapes have more elements than FC_STREAM_PARALLEL_MIN (csrc/parallel.h), below
# which batch norm runs on one thread
@pytest.mark.parametrize("shape", [(6, 5, 9, 7), (33, 4), (3, 2, 1, 1), (70, 10, 20, 19),
                                   (9, 4, 91, 83), (2100, 130)],
                         ids=["4d", "2d", "tiny", "4d-blocks-threaded", "4d-long-threaded",
                              "2d-threaded"])
def test_threads_bitwise(dtype, shape, rng):
    x, gamma, beta, rmean, rvar = _params(rng, shape, dtype)
    dy = randn(rng, shape, dtype)
    outs = []
    for n in (1, 2):
        with num_threads(n):
            rm, rv = rmean.copy(), rvar.copy()
            y, m, s = F.batch_norm(x, gamma, beta, rm, rv, training=True)
            ye = F.batch_norm(x, gamma, beta, rmean, rvar, training=False)[0]
            outs.append((y, m, s, rm, rv, ye,
                         *F.batch_norm_backward(dy, x, gamma, m, s, training=True),
                         *F.batch_norm_backward(dy, x, gamma, rmean, 1 / np.sqrt(rvar + 1e-5),
                                                training=False)))
    for one, two in zip(*outs):
        np.testing.assert_array_equal(one, two)


# ---- every instruction set ----------------------------------------------------------------------
# The kernels are compiled once per instruction set and picked at run time (fastcnn.set_simd):
# the tests above run on the best level the CPU has, these on every level, threaded too.

@pytest.mark.parametrize("shape", [(23, 3, 7, 7), (3, 2, 17, 31), (4, 3, 5, 6), (70, 10, 7, 7),
                                   (33, 4)])
def test_every_simd_level_matches_naive(simd, dtype, shape, rng):
    x, gamma, beta, rmean, rvar = _params(rng, shape, dtype)
    dy = randn(rng, shape, dtype)
    for training in (True, False):
        with num_threads(2):
            rm, rv = rmean.copy(), rvar.copy()
            y, mean, invstd = F.batch_norm(x, gamma, beta, rm, rv, training=training)
            grads = F.batch_norm_backward(dy, x, gamma, mean, invstd, training=training)
        ny, nmean, ninvstd, nrm, nrv = naive.batch_norm(x, gamma, beta, rmean, rvar, training,
                                                        0.1, 1e-5)
        for got, want in zip((y, mean, invstd, rm, rv), (ny, nmean, ninvstd, nrm, nrv)):
            assert_close(got, want, dtype)
        for got, want in zip(grads, naive.batch_norm_backward(dy, x, gamma, mean, invstd,
                                                              training)):
            assert_close(got, want, dtype)


def test_outputs_past_24_mb_streamed(rng):
    # y and dx of 24 MB or more are written with non-temporal stores, whole cache lines only: an
    # odd map size puts every segment at a different offset from a line (scalar heads and tails).
    # The oracle is numpy in float64, vectorised (naive.py's exact sums take seconds here).
    shape = (3, 5, 677, 661)
    x, gamma, beta, rmean, rvar = _params(rng, shape, np.float32)
    dy = randn(rng, shape, np.float32)
    x64, dy64 = x.astype(np.float64), dy.astype(np.float64)
    ch = (slice(None), None, None)
    for training in (True, False):
        y, mean, invstd = F.batch_norm(x, gamma, beta, rmean.copy(), rvar.copy(),
                                       training=training)
        if training:
            assert_close(mean, x64.mean(axis=(0, 2, 3)), np.float32)
            assert_close(invstd, 1 / np.sqrt(x64.var(axis=(0, 2, 3)) + 1e-5), np.float32)
        m64, s64 = mean.astype(np.float64)[ch], invstd.astype(np.float64)[ch]
        xhat = (x64 - m64) * s64
        assert_close(y, xhat * gamma[ch] + beta[ch], np.float32)
        dx, dgamma, dbeta = F.batch_norm_backward(dy, x, gamma, mean, invstd, training=training)
        sdy, sdyx = dy64.sum(axis=(0, 2, 3)), (dy64 * xhat).sum(axis=(0, 2, 3))
        want = dy64
        if training:
            M = x.size // shape[1]
            want = dy64 - sdy[ch] / M - xhat * sdyx[ch] / M
        assert_close(dx, want * (gamma.astype(np.float64)[ch] * s64), np.float32)
        assert_close(dgamma, sdyx, np.float32)
        assert_close(dbeta, sdy, np.float32)


def test_kernel_refuses_a_short_workspace(dtype):
    from fastcnn import _kernels
    N, C, S = 4, 3, 10
    x = np.zeros(N * C * S, dtype)
    c = np.zeros(C, dtype)
    work = np.zeros(_kernels.batch_norm_workspace(N, C, S) - 1)
    with pytest.raises(ValueError, match="work has"):
        _kernels.batch_norm_forward_train(x.copy(), c.copy(), c.copy(), c.copy(), c.copy(), x, c,
                                          c, N, C, S, 1e-5, 0.1, work, 1)
    with pytest.raises(ValueError, match="work has"):
        _kernels.batch_norm_backward(x.copy(), c.copy(), c.copy(), x, x, c, c, c, N, C, S, True,
                                     work, 1)


# ---- special values, empty batches ---------------------------------------------------------------

def test_nan_and_inf_propagate(backend, dtype, rng):
    x, gamma, beta, rmean, rvar = _params(rng, (3, 3, 2, 2), dtype)
    x[1, 0, 1, 1] = np.nan
    x[2, 2, 0, 1] = np.inf
    y, mean, invstd = F.batch_norm(x, gamma, beta, None, None, training=True)
    assert np.isnan(y[:, 0]).all() and np.isnan(mean[0])     # the NaN poisons its channel's mean
    assert np.isfinite(y[:, 1]).all()                         # and nothing else
    assert not np.isfinite(y[:, 2]).all()
    ye = F.batch_norm(x, gamma, beta, rmean, rvar, training=False)[0]
    assert np.isnan(ye).sum() == 1 and np.isnan(ye[1, 0, 1, 1]) and np.isinf(ye[2, 2, 0, 1])
    dx, dg, db = F.batch_norm_backward(np.ones_like(x), x, gamma, mean, invstd, training=True)
    assert np.isnan(dx[:, 0]).all() and np.isfinite(dx[:, 1]).all() and np.isfinite(db).all()


@pytest.mark.parametrize("shape", [(0, 3, 4, 5), (0, 4)], ids=["4d", "2d"])
def test_batch_size_zero_eval(backend, dtype, shape, rng):
    _, gamma, beta, rmean, rvar = _params(rng, (2,) + shape[1:], dtype)
    x = np.zeros(shape, dtype)
    y, mean, invstd = F.batch_norm(x, gamma, beta, rmean, rvar, training=False)
    assert y.shape == shape and y.dtype == dtype
    np.testing.assert_array_equal(mean, rmean)
    dx, dg, db = F.batch_norm_backward(np.zeros(shape, dtype), x, gamma, mean, invstd, training=False)
    assert dx.shape == shape and not dg.any() and not db.any() and dg.shape == gamma.shape
