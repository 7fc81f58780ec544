"""F.relu / F.relu_backward and F.softmax_cross_entropy(_backward) against tests/naive.py, numerical
gradients in float64, extreme logits, label dtypes, layouts, NaN/Inf, both backends, threads."""
import numpy as np
import pytest

import naive
from conftest import LAYOUTS, assert_close, check_gradients, layout, num_threads, randn
from fastcnn import functional as F

RELU_SHAPES = [(2, 3, 4, 5), (7, 5), (11,), (1, 1, 1, 1), (3, 1, 5, 2)]


# ---- ReLU ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", RELU_SHAPES, ids=[str(s).replace(" ", "") for s in RELU_SHAPES])
def test_relu_matches_naive(backend, dtype, shape, rng):
    x = randn(rng, shape, dtype)
    y = F.relu(x)
    assert y.flags.c_contiguous and not np.shares_memory(y, x)
    assert_close(y, naive.relu(x), dtype, rtol=0)
    dy = randn(rng, shape, dtype)
    dx = F.relu_backward(dy, y)
    assert dx.flags.c_contiguous
    assert_close(dx, naive.relu_backward(dy, y), dtype, rtol=0)


def test_relu_zero_and_special_values(backend, dtype):
    x = np.array([-np.inf, -1.0, -0.0, 0.0, 1e-30, 2.5, np.inf, np.nan], dtype)
    y = F.relu(x)
    np.testing.assert_array_equal(y[:-1], [0, 0, 0, 0, dtype.type(1e-30), 2.5, np.inf])
    assert np.isnan(y[-1])                                   # NaN propagates
    assert not np.signbit(y[2])                              # -0.0 gives +0, as NumPy's maximum
    dy = np.arange(1, 9, dtype=dtype)
    dx = F.relu_backward(dy, y)
    # the gradient flows only where the output is strictly positive (not at 0, not through NaN)
    np.testing.assert_array_equal(dx, [0, 0, 0, 0, 5, 6, 7, 0])


@pytest.mark.parametrize("threads", [1, 2])
def test_relu_out_and_in_place(backend, dtype, threads, rng):
    """F.relu's out= takes y, also when it is x itself (the in-place ReLU layer's use), on arrays
    large enough to be split over threads (FC_STREAM_PARALLEL_MIN elements and more), with NaN,
    infinities and signed zeros among them."""
    x = randn(rng, (3, 300, 301), dtype)
    flat = x.reshape(-1)
    flat[::97], flat[1::89], flat[2::83], flat[3::79] = np.nan, np.inf, -np.inf, -0.0
    want = naive.relu(x).astype(dtype)
    with num_threads(threads):
        out = np.empty_like(x)
        assert F.relu(x, out=out) is out
        np.testing.assert_array_equal(out, want)
        inplace = x.copy()
        assert F.relu(inplace, out=inplace) is inplace
        np.testing.assert_array_equal(inplace, want)
    assert not np.signbit(out).any()
    with pytest.raises(ValueError, match="out must have shape"):
        F.relu(x, out=np.empty((3, 300), dtype))
    with pytest.raises(ValueError, match="C-contiguous"):
        F.relu(x, out=np.empty((3, 301, 300), dtype).transpose(0, 2, 1))


@pytest.mark.parametrize("threads", [1, 2])
def test_relu_backward_out_and_in_place(backend, dtype, threads, rng):
    """out= takes the result, also when it is dy itself (the in-place ReLU layer's use), on
    arrays large enough to be split over threads (FC_STREAM_PARALLEL_MIN elements and more); a
    NaN dy where y <= 0 gives 0 either way."""
    y = F.relu(randn(rng, (3, 300, 301), dtype))
    dy = randn(rng, y.shape, dtype)
    dy.reshape(-1)[::97] = np.nan
    want = naive.relu_backward(dy, y)
    with num_threads(threads):
        out = np.empty_like(dy)
        assert F.relu_backward(dy, y, out=out) is out
        np.testing.assert_array_equal(out, want.astype(dtype))
        inplace = dy.copy()
        assert F.relu_backward(inplace, y, out=inplace) is inplace
        np.testing.assert_array_equal(inplace, want.astype(dtype))
    with pytest.raises(ValueError, match="out must have shape"):
        F.relu_backward(dy, y, out=np.empty((3, 200), dtype))


@pytest.mark.parametrize("kind", LAYOUTS)
def test_relu_layouts(backend, dtype, kind, rng):
    x = randn(rng, (2, 3, 4, 5), dtype)
    dy = randn(rng, x.shape, dtype)
    y = F.relu(x)
    dx = F.relu_backward(dy, y)
    yl = F.relu(layout(x, kind))
    assert yl.flags.c_contiguous
    np.testing.assert_array_equal(yl, y)
    dxl = F.relu_backward(layout(dy, kind), layout(y, kind))
    assert dxl.flags.c_contiguous
    np.testing.assert_array_equal(dxl, dx)


def test_relu_gradient_numerical(backend, rng):
    x = rng.standard_normal((3, 2, 4, 3))
    x[np.abs(x) < 1e-3] = 0.5                    # stay off the kink
    r = rng.standard_normal(x.shape)

    def loss():
        return float(np.sum(F.relu(x) * r))

    check_gradients(loss, {"x": x}, {"x": F.relu_backward(r, F.relu(x))})


# ---- softmax cross-entropy -----------------------------------------------------------------------

SCE_SHAPES = [(1, 1), (1, 10), (5, 3), (32, 10), (7, 1000)]


@pytest.mark.parametrize("shape", SCE_SHAPES, ids=[str(s).replace(" ", "") for s in SCE_SHAPES])
def test_softmax_cross_entropy_matches_naive(backend, dtype, shape, rng):
    n, k = shape
    logits = randn(rng, shape, dtype, scale=3.0)
    labels = rng.integers(0, k, n)
    loss, probs = F.softmax_cross_entropy(logits, labels)
    nloss, nprobs = naive.softmax_cross_entropy(logits, labels)
    assert isinstance(loss, float)
    assert probs.dtype == dtype and probs.flags.c_contiguous
    assert_close(probs, nprobs, dtype, rtol=1e-5 if dtype == np.float32 else 1e-13)
    np.testing.assert_allclose(probs.sum(axis=1), 1, rtol=1e-5 if dtype == np.float32 else 1e-13)
    np.testing.assert_allclose(loss, nloss, rtol=1e-5 if dtype == np.float32 else 1e-13, atol=1e-6)
    d = F.softmax_cross_entropy_backward(probs, labels)
    assert d.dtype == dtype and d.flags.c_contiguous and d.shape == shape
    assert_close(d, naive.softmax_cross_entropy_backward(probs, labels), dtype,
                 rtol=1e-6 if dtype == np.float32 else 1e-15)
    np.testing.assert_allclose(d.sum(axis=1), 0, atol=1e-6 if dtype == np.float32 else 1e-15)


@pytest.mark.parametrize("label_dtype", [np.int8, np.uint8, np.int16, np.int32, np.int64, np.uint64])
def test_label_dtypes(backend, label_dtype, rng):
    logits = rng.standard_normal((6, 4)).astype(np.float32)
    labels = np.array([0, 3, 1, 2, 3, 0])
    want = F.softmax_cross_entropy(logits, labels)
    got = F.softmax_cross_entropy(logits, labels.astype(label_dtype))
    assert got[0] == want[0]
    np.testing.assert_array_equal(got[1], want[1])
    np.testing.assert_array_equal(F.softmax_cross_entropy_backward(want[1], labels.astype(label_dtype)),
                                  F.softmax_cross_entropy_backward(want[1], labels))


def test_extreme_logits_do_not_overflow(backend, dtype):
    big = 1e4 if dtype == np.float32 else 1e300
    logits = np.array([[big, 0.0, -big], [0.0, big, big], [-big, -big, -big]], dtype)
    labels = np.array([0, 2, 1])
    loss, probs = F.softmax_cross_entropy(logits, labels)
    assert np.isfinite(probs).all() and np.isfinite(loss)
    np.testing.assert_allclose(probs, [[1, 0, 0], [0, .5, .5], [1 / 3, 1 / 3, 1 / 3]], rtol=1e-6)
    np.testing.assert_allclose(loss, (0 + np.log(2) + np.log(3)) / 3, rtol=1e-6)
    # a wrong label with a huge margin: a large but exact loss, not inf
    loss, _ = F.softmax_cross_entropy(np.array([[big, 0.0]], dtype), np.array([1]))
    np.testing.assert_allclose(loss, big, rtol=1e-6)


def test_minus_inf_logit_is_a_zero_probability(backend, dtype):
    logits = np.array([[0.0, -np.inf, 0.0]], dtype)
    loss, probs = F.softmax_cross_entropy(logits, np.array([0]))
    np.testing.assert_allclose(probs, [[0.5, 0, 0.5]])
    np.testing.assert_allclose(loss, np.log(2), rtol=1e-6)


def test_nan_logits_propagate_without_crash(backend, dtype):
    logits = np.array([[0.0, np.nan, 1.0], [1.0, 2.0, 3.0]], dtype)
    loss, probs = F.softmax_cross_entropy(logits, np.array([0, 2]))
    assert np.isnan(loss)
    assert np.isnan(probs[0]).all() and np.isfinite(probs[1]).all()
    d = F.softmax_cross_entropy_backward(probs, np.array([0, 2]))
    assert np.isnan(d[0]).all() and np.isfinite(d[1]).all()


@pytest.mark.parametrize("kind", LAYOUTS)
def test_softmax_layouts(backend, dtype, kind, rng):
    logits = randn(rng, (8, 5), dtype)
    labels = rng.integers(0, 5, 8)
    loss, probs = F.softmax_cross_entropy(logits, labels)
    d = F.softmax_cross_entropy_backward(probs, labels)
    loss2, probs2 = F.softmax_cross_entropy(layout(logits, kind), layout(labels, kind))
    np.testing.assert_allclose(loss2, loss, rtol=1e-6)
    assert probs2.flags.c_contiguous
    assert_close(probs2, probs.astype(np.float64), dtype, rtol=1e-6 if dtype == np.float32 else 1e-15)
    d2 = F.softmax_cross_entropy_backward(layout(probs, kind), layout(labels, kind))
    assert d2.flags.c_contiguous
    assert_close(d2, d.astype(np.float64), dtype, rtol=1e-6 if dtype == np.float32 else 1e-15)


def test_inputs_untouched(backend, dtype, rng):
    logits = randn(rng, (4, 3), dtype)
    labels = np.array([0, 1, 2, 1])
    keep = logits.copy()
    loss, probs = F.softmax_cross_entropy(logits, labels)
    keep_p = probs.copy()
    F.softmax_cross_entropy_backward(probs, labels)
    np.testing.assert_array_equal(logits, keep)
    np.testing.assert_array_equal(probs, keep_p)
    np.testing.assert_array_equal(labels, [0, 1, 2, 1])


@pytest.mark.parametrize("shape", [(1, 3), (4, 5), (6, 2)], ids=["1x3", "4x5", "6x2"])
def test_softmax_gradient_numerical(backend, shape, rng):
    logits = rng.standard_normal(shape) * 2
    labels = rng.integers(0, shape[1], shape[0])

    def loss():
        return F.softmax_cross_entropy(logits, labels)[0]

    _, probs = F.softmax_cross_entropy(logits, labels)
    check_gradients(loss, {"logits": logits},
                    {"logits": F.softmax_cross_entropy_backward(probs, labels)})


def test_threads_do_not_change_results(dtype, rng):
    x = randn(rng, (4, 3, 5, 5), dtype)
    logits = randn(rng, (16, 10), dtype)
    labels = rng.integers(0, 10, 16)
    outs = []
    for n in (1, 2):
        with num_threads(n):
            loss, probs = F.softmax_cross_entropy(logits, labels)
            outs.append((F.relu(x), F.relu_backward(x, F.relu(x)), np.array(loss), probs,
                         F.softmax_cross_entropy_backward(probs, labels)))
    for a, b in zip(*outs):
        np.testing.assert_array_equal(a, b)


# ---- the compiled loss kernel: every instruction set, its exp, blocks and threads --------------

# (7, 10): the study's short rows (plain-loop sums); (5, 33) and (3, 1000): simd reductions with
# tails; (300, 7) and (2, 5000): more than one block of rows (SX_BLOCK elements) or rows past it
SIMD_SCE_SHAPES = [(7, 10), (5, 33), (3, 1000), (300, 7), (2, 5000), (1, 1)]


@pytest.mark.parametrize("shape", SIMD_SCE_SHAPES,
                         ids=[str(s).replace(" ", "") for s in SIMD_SCE_SHAPES])
def test_softmax_every_simd_path_matches_naive(simd, dtype, shape, rng):
    n, k = shape
    logits = randn(rng, shape, dtype, scale=4.0)
    labels = rng.integers(0, k, n)
    loss, probs = F.softmax_cross_entropy(logits, labels)
    nloss, nprobs = naive.softmax_cross_entropy(logits, labels)
    tol = 1e-5 if dtype == np.float32 else 1e-13
    assert_close(probs, nprobs, dtype, rtol=tol)
    np.testing.assert_allclose(loss, nloss, rtol=tol, atol=1e-6)
    d = F.softmax_cross_entropy_backward(probs, labels, 0.5)
    assert_close(d, 0.5 * naive.softmax_cross_entropy_backward(probs, labels), dtype, rtol=tol)
    # the forward's own gradient (return_grad): the backward's bits, probs and loss unchanged
    loss2, probs2, grad = F.softmax_cross_entropy(logits, labels, return_grad=True)
    assert loss2 == loss and grad.shape == shape and grad.dtype == dtype
    np.testing.assert_array_equal(probs2, probs)
    np.testing.assert_array_equal(grad, F.softmax_cross_entropy_backward(probs, labels))


def test_softmax_exp_is_accurate_to_the_subnormals(simd, dtype):
    # a row [0, x] has probabilities 1/(1 + e^x) and e^x/(1 + e^x): the second is the kernel's
    # exp(x) scaled once, checked in ulps against long double over the whole range down to the
    # smallest subnormal (and past it, where it must be +0 exactly when the true value rounds to 0)
    lo = 110.0 if dtype == np.float32 else 750.0
    xs = -np.linspace(0.0, lo, 100003).astype(dtype)
    logits = np.stack([np.zeros_like(xs), xs], axis=1)
    _, probs = F.softmax_cross_entropy(logits, np.zeros(len(xs), np.int64))
    e = np.exp(xs.astype(np.longdouble))
    want = e / (1 + e)
    rounded = want.astype(dtype)
    np.testing.assert_array_equal(probs[:, 1] == 0, rounded == 0)
    got = probs[:, 1].astype(np.longdouble)
    ulps = np.abs(got - want) / np.spacing(rounded).astype(np.longdouble)
    assert ulps.max() <= 3.0, f"exp off by {float(ulps.max()):.2f} ulp at x = {xs[ulps.argmax()]}"
    # the largest logit's own term, exp(0) = 1, is exact: a one-class row is probability 1
    np.testing.assert_array_equal(F.softmax_cross_entropy(np.ones((3, 1), dtype), [0, 0, 0])[1], 1)


def test_softmax_nonfinite_rows_agree_with_the_reference(simd, dtype):
    # NaN anywhere, +inf as the max, all -inf: NaN rows (inf - inf in the formula); -inf under a
    # finite max: probability 0; the finite rows around them are untouched by their neighbours
    inf, nan = np.inf, np.nan
    logits = np.array([[1.0, 2.0, 3.0, 0.5], [0.0, nan, 1.0, 2.0], [inf, 0.0, 1.0, 2.0],
                       [-inf, -inf, -inf, -inf], [0.0, -inf, 0.0, 1.0], [3.0, 2.0, 1.0, 0.0]],
                      dtype)
    labels = np.array([2, 0, 1, 3, 0, 0])
    loss, probs = F.softmax_cross_entropy(logits, labels)
    with F.use_backend("reference"), np.errstate(invalid="ignore"):
        _, rprobs = F.softmax_cross_entropy(logits, labels)
    assert np.isnan(loss)
    np.testing.assert_array_equal(np.isnan(probs), np.isnan(rprobs))
    assert np.isnan(probs[1:4]).all() and np.isfinite(probs[[0, 4, 5]]).all()
    assert probs[4, 1] == 0
    ok = [0, 4, 5]
    assert_close(probs[ok], rprobs[ok].astype(np.float64), dtype, rtol=1e-6)
    d = F.softmax_cross_entropy_backward(probs, labels)
    np.testing.assert_array_equal(np.isnan(d), np.isnan(probs))
    # a -inf logit under the label: an infinite loss, not NaN
    loss, _ = F.softmax_cross_entropy(np.array([[0.0, -inf]], dtype), [1])
    assert loss == inf


@pytest.mark.parametrize("shape", [(300, 1000), (70000, 4)], ids=["300x1000", "70000x4"])
def test_softmax_threads_past_the_split_agree(dtype, shape, rng):
    # 300k and 280k elements: past FC_STREAM_PARALLEL_MIN, so 2 threads split the blocks; the
    # loss is summed row by row after the split, so the bits agree too
    logits = randn(rng, shape, dtype, scale=3.0)
    labels = rng.integers(0, shape[1], shape[0])
    outs = []
    for n in (1, 2):
        with num_threads(n):
            loss, probs = F.softmax_cross_entropy(logits, labels)
            outs.append((loss, probs, F.softmax_cross_entropy_backward(probs, labels, 3.0),
                         F.softmax_cross_entropy(logits, labels, return_grad=True)[2]))
    assert outs[0][0] == outs[1][0]
    for a, b in zip(outs[0][1:], outs[1][1:]):
        np.testing.assert_array_equal(a, b)
    nloss, nprobs = naive.softmax_cross_entropy(logits, labels)
    np.testing.assert_allclose(outs[1][0], nloss, rtol=1e-5 if dtype == np.float32 else 1e-12)
    assert_close(outs[1][1], nprobs, dtype, rtol=1e-5 if dtype == np.float32 else 1e-13)


def test_softmax_backward_dout(backend, dtype, rng):
    logits = randn(rng, (6, 4), dtype)
    labels = rng.integers(0, 4, 6)
    _, probs = F.softmax_cross_entropy(logits, labels)
    d1 = F.softmax_cross_entropy_backward(probs, labels)
    for dout in (2.5, np.float32(-0.25), 0, 3):
        assert_close(F.softmax_cross_entropy_backward(probs, labels, dout),
                     float(dout) * d1.astype(np.float64), dtype, rtol=1e-6)
    for bad in ("2", None, np.ones(2), True):
        with pytest.raises(TypeError, match="softmax_cross_entropy_backward: dout"):
            F.softmax_cross_entropy_backward(probs, labels, bad)


def test_softmax_bad_label_writes_nothing_and_names_the_range(backend, dtype):
    logits = np.zeros((3, 4), dtype)
    for labels in (np.array([0, 4, 1]), np.array([0, 1, -2]),
                   np.array([0, 2**63 + 5, 1], np.uint64)):
        for call in (lambda: F.softmax_cross_entropy(logits, labels),
                     lambda: F.softmax_cross_entropy_backward(logits, labels)):
            with pytest.raises(ValueError, match=r"labels must lie in \[0, 4\)"):
                call()
