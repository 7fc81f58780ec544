"""Hypothesis property tests: over random valid shapes, strides and paddings the compiled backend
agrees with tests/naive.py; over random invalid (or merely odd) arguments every public function
either returns the right answer or raises ValueError/TypeError, never anything else, never a crash.
Examples are kept tiny (the oracle is pure Python) so the file runs in seconds."""
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import naive
from conftest import assert_close
from fastcnn import functional as F

SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

floats = st.sampled_from([np.float32, np.float64])
seeds = st.integers(0, 2**32 - 1)


@pytest.fixture(autouse=True)
def fast_backend():
    with F.use_backend("fast"):
        yield


@st.composite
def window_geometry(draw, max_kernel=4, pool=False):
    """(kernel, stride, padding, input size) along one axis, valid: output size >= 1."""
    k = draw(st.integers(1, max_kernel))
    s = draw(st.integers(1, 3))
    p = draw(st.integers(0, k // 2 if pool else 3))
    size = draw(st.integers(max(1, k - 2 * p), k + 6))
    return k, s, p, size


# ---- valid inputs: fast == naive ---------------------------------------------------------------

@st.composite
def conv_problem(draw):
    kh, sh, ph, h = draw(window_geometry())
    kw, sw, pw, w = draw(window_geometry())
    n = draw(st.integers(0, 3))
    c = draw(st.integers(1, 3))
    oc = draw(st.integers(1, 3))
    return dict(n=n, c=c, oc=oc, h=h, w=w, kh=kh, kw=kw, stride=(sh, sw), padding=(ph, pw),
                bias=draw(st.booleans()), relu=draw(st.booleans()), dtype=draw(floats),
                seed=draw(seeds), stride_as_int=draw(st.booleans()))


@SETTINGS
@given(conv_problem())
def test_conv_matches_naive(p):
    rng = np.random.default_rng(p["seed"])
    dt = p["dtype"]
    x = rng.standard_normal((p["n"], p["c"], p["h"], p["w"])).astype(dt)
    w = rng.standard_normal((p["oc"], p["c"], p["kh"], p["kw"])).astype(dt)
    b = rng.standard_normal(p["oc"]).astype(dt) if p["bias"] else None
    stride, padding = p["stride"], p["padding"]
    if p["stride_as_int"] and stride[0] == stride[1]:
        stride = stride[0]
    y = F.conv2d(x, w, b, stride=stride, padding=padding, relu=p["relu"])
    assert_close(y, naive.conv2d(x, w, b, stride, padding, p["relu"]), dt)
    dy = rng.standard_normal(y.shape).astype(dt)
    if p["relu"]:
        dy = F.relu_backward(dy, y)
    dx, dw, db = F.conv2d_backward(dy, x, w, stride=stride, padding=padding)
    ndx, ndw, ndb = naive.conv2d_backward(dy, x, w, stride, padding)
    assert_close(dx, ndx, dt)
    assert_close(dw, ndw, dt)
    assert_close(db, ndb, dt)


@st.composite
def pool_problem(draw):
    kh, sh, ph, h = draw(window_geometry(pool=True))
    kw, sw, pw, w = draw(window_geometry(pool=True))
    default_stride = draw(st.booleans())
    return dict(n=draw(st.integers(0, 2)), c=draw(st.integers(1, 3)), h=h, w=w,
                kernel=(kh, kw), stride=None if default_stride else (sh, sw), padding=(ph, pw),
                dtype=draw(floats), seed=draw(seeds), ties=draw(st.booleans()),
                count_include_pad=draw(st.booleans()))


@SETTINGS
@given(pool_problem())
def test_max_pool_matches_naive(p):
    rng = np.random.default_rng(p["seed"])
    dt = p["dtype"]
    shape = (p["n"], p["c"], p["h"], p["w"])
    x = (rng.integers(-2, 3, shape) if p["ties"] else rng.standard_normal(shape)).astype(dt)
    args = (p["kernel"], p["stride"], p["padding"])
    y, idx = F.max_pool2d(x, *args, return_indices=True)
    ny, nidx = naive.max_pool2d(x, *args)
    np.testing.assert_array_equal(y, ny.astype(dt))
    np.testing.assert_array_equal(idx, nidx)
    assert idx.dtype == np.int32
    dy = rng.standard_normal(y.shape).astype(dt)
    assert_close(F.max_pool2d_backward(dy, idx, shape), naive.max_pool2d_backward(dy, idx, shape), dt)


@SETTINGS
@given(pool_problem())
def test_avg_pool_matches_naive(p):
    rng = np.random.default_rng(p["seed"])
    dt = p["dtype"]
    shape = (p["n"], p["c"], p["h"], p["w"])
    x = rng.standard_normal(shape).astype(dt)
    args = (p["kernel"], p["stride"], p["padding"], p["count_include_pad"])
    y = F.avg_pool2d(x, *args)
    assert_close(y, naive.avg_pool2d(x, *args), dt)
    dy = rng.standard_normal(y.shape).astype(dt)
    assert_close(F.avg_pool2d_backward(dy, shape, *args), naive.avg_pool2d_backward(dy, shape, *args), dt)


@st.composite
def bn_problem(draw):
    four_d = draw(st.booleans())
    n = draw(st.integers(1, 4))
    c = draw(st.integers(1, 4))
    spatial = (draw(st.integers(1, 4)), draw(st.integers(1, 4))) if four_d else ()
    training = draw(st.booleans())
    if training:
        assume(n * int(np.prod(spatial)) > 1)
    return dict(shape=(n, c) + spatial, training=training, dtype=draw(floats), seed=draw(seeds),
                momentum=draw(st.floats(0, 1)), eps=draw(st.sampled_from([1e-5, 1e-3, 0.5])),
                offset=draw(st.sampled_from([0.0, 3.0, -50.0])), track=draw(st.booleans()))


@SETTINGS
@given(bn_problem())
def test_batch_norm_matches_naive(p):
    rng = np.random.default_rng(p["seed"])
    dt, shape, c = p["dtype"], p["shape"], p["shape"][1]
    x = (p["offset"] + rng.standard_normal(shape)).astype(dt)
    gamma = rng.standard_normal(c).astype(dt)
    beta = rng.standard_normal(c).astype(dt)
    rm = rng.standard_normal(c).astype(dt)
    rv = rng.uniform(0.2, 3, c).astype(dt)
    track = p["track"] or not p["training"]
    rm2, rv2 = (rm.copy(), rv.copy()) if track else (None, None)
    y, mean, invstd = F.batch_norm(x, gamma, beta, rm2, rv2, training=p["training"],
                                   momentum=p["momentum"], eps=p["eps"])
    ny, nmean, ninvstd, nrm, nrv = naive.batch_norm(x, gamma, beta, rm if track else None,
                                                    rv if track else None, p["training"],
                                                    p["momentum"], p["eps"])
    # y's error scales with |x - mean| * invstd * gamma: compare on the scale of the offset
    scale = max(1.0, float(np.abs(ny).max()), abs(p["offset"]) * float(np.abs(gamma).max()))
    assert_close(y, ny, dt, scale=scale)
    assert_close(mean, nmean, dt)
    assert_close(invstd, ninvstd, dt)
    if track:
        assert_close(rm2, nrm, dt)
        assert_close(rv2, nrv, dt)
    dy = rng.standard_normal(shape).astype(dt)
    dx, dg, db = F.batch_norm_backward(dy, x, gamma, mean, invstd, training=p["training"])
    ndx, ndg, ndb = naive.batch_norm_backward(dy, x, gamma, mean, invstd, p["training"])
    assert_close(dx, ndx, dt)
    assert_close(dg, ndg, dt)
    assert_close(db, ndb, dt)


@SETTINGS
@given(st.integers(1, 6), st.integers(1, 8), floats, seeds, st.sampled_from([1.0, 10.0, 300.0]))
def test_softmax_cross_entropy_matches_naive(n, k, dt, seed, scale):
    rng = np.random.default_rng(seed)
    logits = (scale * rng.standard_normal((n, k))).astype(dt)
    labels = rng.integers(0, k, n)
    loss, probs = F.softmax_cross_entropy(logits, labels)
    nloss, nprobs = naive.softmax_cross_entropy(logits, labels)
    tol = 1e-5 if dt == np.float32 else 1e-12
    np.testing.assert_allclose(loss, nloss, rtol=tol, atol=tol * scale)
    assert_close(probs, nprobs, dt, rtol=tol)
    assert_close(F.softmax_cross_entropy_backward(probs, labels),
                 naive.softmax_cross_entropy_backward(probs, labels), dt, rtol=tol)


# ---- invalid or odd inputs: the right answer or ValueError/TypeError, nothing else ---------------

def _odd_array(draw, max_ndim=5):
    ndim = draw(st.integers(0, max_ndim))
    shape = tuple(draw(st.lists(st.integers(0, 4), min_size=ndim, max_size=ndim)))
    dt = draw(st.sampled_from([np.float32, np.float64, np.float32, np.float64, np.int32,
                               np.int64, np.bool_, np.complex64, np.float16, object]))
    a = np.zeros(shape, dt) if dt is not object else np.full(shape, 1.0, object)
    if a.size and a.dtype.kind == "f":
        a[...] = np.random.default_rng(draw(seeds)).standard_normal(shape)
    return a


def _odd_int(draw):
    return draw(st.one_of(st.integers(-2, 4), st.tuples(st.integers(-1, 4), st.integers(-1, 4)),
                          st.sampled_from([None, 1.0, "2", (1, 2, 3), True, (1,), np.int64(2)])))


def _accepts_valueerror_or_typeerror(call):
    try:
        return call(), None
    except (ValueError, TypeError) as e:
        assert str(e), "an error without a message"
        return None, e


@st.composite
def odd_conv(draw):
    x = _odd_array(draw)
    # mostly 4-D float weights whose channels may or may not match, sometimes anything at all
    if draw(st.booleans()):
        w = _odd_array(draw)
    else:
        w = np.random.default_rng(draw(seeds)).standard_normal(
            (draw(st.integers(1, 3)), draw(st.integers(0, 3)), draw(st.integers(1, 4)),
             draw(st.integers(1, 4)))).astype(draw(floats))
    b = draw(st.one_of(st.none(), st.builds(lambda n: np.ones(n, np.float32), st.integers(0, 4)),
                       st.builds(lambda n: np.ones(n, np.float64), st.integers(0, 4))))
    return x, w, b, _odd_int(draw), _odd_int(draw)


@SETTINGS
@given(odd_conv(), st.booleans())
def test_conv_odd_arguments(args, relu):
    x, w, b, stride, padding = args
    y, err = _accepts_valueerror_or_typeerror(
        lambda: F.conv2d(x, w, b, stride=stride, padding=padding, relu=relu))
    if err is None:             # accepted: then it must be valid and right
        assert_close(y, naive.conv2d(x, w, b, stride if not isinstance(stride, np.integer) else int(stride),
                                     padding if not isinstance(padding, np.integer) else int(padding), relu),
                     x.dtype)
        dy = np.ones(y.shape, x.dtype)
        out, err = _accepts_valueerror_or_typeerror(
            lambda: F.conv2d_backward(dy, x, w, stride=stride, padding=padding))
        assert err is None, f"forward accepted what backward refused: {err}"
    # and a wrongly shaped gradient is always refused
    dy = _wrong_dy(x, w)
    if dy is not None:
        _, err = _accepts_valueerror_or_typeerror(
            lambda: F.conv2d_backward(dy, x, w, stride=stride, padding=padding))
        assert err is not None


def _wrong_dy(x, w):
    """A float array whose shape is certainly not conv2d's output shape (one extra row)."""
    if x.ndim != 4 or w.ndim != 4:
        return None
    return np.zeros((x.shape[0], w.shape[0], 50, 50), np.float32)


@st.composite
def odd_pool(draw):
    return (_odd_array(draw), _odd_int(draw),
            draw(st.one_of(st.none(), st.just(1), st.just(2))) if draw(st.booleans()) else _odd_int(draw),
            _odd_int(draw))


@SETTINGS
@given(odd_pool(), st.booleans())
def test_pool_odd_arguments(args, count_include_pad):
    x, kernel, stride, padding = args

    def norm(v):
        return int(v) if isinstance(v, np.integer) else v

    y, err = _accepts_valueerror_or_typeerror(
        lambda: F.max_pool2d(x, kernel, stride, padding, return_indices=True))
    if err is None:
        ny, nidx = naive.max_pool2d(x, norm(kernel), norm(stride), norm(padding))
        np.testing.assert_array_equal(y[0], ny.astype(x.dtype))
        np.testing.assert_array_equal(y[1], nidx)
        dx = F.max_pool2d_backward(np.ones(y[0].shape, x.dtype), y[1], x.shape)
        assert dx.shape == x.shape
    ya, err_a = _accepts_valueerror_or_typeerror(
        lambda: F.avg_pool2d(x, kernel, stride, padding, count_include_pad))
    assert (err is None) == (err_a is None), (err, err_a)      # one geometry, one verdict
    if err_a is None:
        assert_close(ya, naive.avg_pool2d(x, norm(kernel), norm(stride), norm(padding),
                                          count_include_pad), x.dtype)
        _, err_b = _accepts_valueerror_or_typeerror(
            lambda: F.avg_pool2d_backward(np.ones(ya.shape, x.dtype), x.shape, kernel, stride,
                                          padding, count_include_pad))
        assert err_b is None


@SETTINGS
@given(st.data())
def test_max_pool_backward_odd_indices(data):
    """Any integer indices: in range -> the scatter; out of range -> ValueError, never a write
    outside dx (the kernel counts and the caller raises)."""
    shape = (data.draw(st.integers(1, 2)), data.draw(st.integers(1, 2)), 3, 3)
    idx_dtype = data.draw(st.sampled_from([np.int32, np.int64, np.int16, np.uint8]))
    lo = 0 if np.dtype(idx_dtype).kind == "u" else -3
    idx = np.array(data.draw(st.lists(st.integers(lo, 12), min_size=shape[0] * shape[1] * 4,
                                      max_size=shape[0] * shape[1] * 4)), idx_dtype)
    idx = idx.reshape(shape[0], shape[1], 2, 2)
    dy = np.arange(1, idx.size + 1, dtype=np.float64).reshape(idx.shape)
    in_range = bool(((idx >= 0) & (idx < 9)).all())
    for backend in ("fast", "reference"):
        with F.use_backend(backend):
            if in_range:
                dx = F.max_pool2d_backward(dy, idx, shape)
                assert_close(dx, naive.max_pool2d_backward(dy, idx, shape), np.float64)
            else:
                with pytest.raises(ValueError, match="indices"):
                    F.max_pool2d_backward(dy, idx, shape)


@st.composite
def odd_bn(draw):
    x = _odd_array(draw)
    c = x.shape[1] if x.ndim >= 2 else 1
    def vec():
        return draw(st.one_of(st.none(),
                              st.builds(lambda n, d: np.ones(n, d), st.sampled_from([c, c, c, c + 1, 0]),
                                        st.sampled_from([np.float32, np.float64, np.int32]))))
    return (x, vec(), vec(), vec(), vec(), draw(st.booleans()),
            draw(st.sampled_from([0.1, 0.0, 1.0, -0.5, 2.0, float("nan")])),
            draw(st.sampled_from([1e-5, 0.0, -1.0, 1.0])))


@SETTINGS
@given(odd_bn())
def test_batch_norm_odd_arguments(args):
    x, gamma, beta, rm, rv, training, momentum, eps = args
    rm0 = None if rm is None else rm.copy()
    out, err = _accepts_valueerror_or_typeerror(
        lambda: F.batch_norm(x, gamma, beta, rm, rv, training=training, momentum=momentum, eps=eps))
    if err is not None:
        if rm is not None:
            np.testing.assert_array_equal(rm, rm0)     # a refused call changes nothing
        return
    y, mean, invstd = out
    assert y.shape == x.shape and y.dtype == x.dtype
    if x.shape[0] > 0:
        g = np.ones(x.shape[1]) if gamma is None else gamma
        b = np.zeros(x.shape[1]) if beta is None else beta
        ny = naive.batch_norm(x, g, b, rm0, None if rv is None else rv, training, momentum, eps)[0]
        assert_close(y, ny, x.dtype, equal_nan=True)
    _, err = _accepts_valueerror_or_typeerror(
        lambda: F.batch_norm_backward(np.ones(x.shape, x.dtype), x, gamma, mean, invstd, training))
    assert err is None


@SETTINGS
@given(st.data())
def test_softmax_cross_entropy_odd_arguments(data):
    logits = _odd_array(data.draw, max_ndim=3)
    n = logits.shape[0] if logits.ndim else 1
    labels = data.draw(st.one_of(
        st.none(),
        st.builds(lambda v, d: np.array(v, np.int64).astype(d),
                  st.lists(st.integers(-2, 5), min_size=max(0, n - 1), max_size=n + 1),
                  st.sampled_from([np.int64, np.int32, np.uint8, np.float64, np.bool_]))))
    out, err = _accepts_valueerror_or_typeerror(lambda: F.softmax_cross_entropy(logits, labels))
    if err is None:
        nloss, nprobs = naive.softmax_cross_entropy(logits, labels)
        np.testing.assert_allclose(out[0], nloss, rtol=1e-5)
        assert_close(out[1], nprobs, logits.dtype, rtol=1e-5)
        d = F.softmax_cross_entropy_backward(out[1], labels)
        assert d.shape == logits.shape
