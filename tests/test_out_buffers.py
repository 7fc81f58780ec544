"""The `out=` buffers of the functional API: results land in the caller's array (the layers reuse
theirs across steps), equal a fresh call's, and a wrong buffer is refused with a clear error."""
import numpy as np
import pytest

from fastcnn import functional as F

BACKENDS = ["fast", "reference"]


def _calls(rng, dtype):
    x = rng.standard_normal((3, 4, 7, 6)).astype(dtype)
    x2 = rng.standard_normal((5, 6)).astype(dtype)
    g, b = rng.standard_normal(4).astype(dtype), rng.standard_normal(4).astype(dtype)
    y, idx = F.max_pool2d(x, 3, 2, 1, return_indices=True)
    dyp = rng.standard_normal(y.shape).astype(dtype)
    ya = F.avg_pool2d(x, 2, 1, 1, count_include_pad=False)
    dya = rng.standard_normal(ya.shape).astype(dtype)
    _, m, s = F.batch_norm(x, g, b)
    dyb = rng.standard_normal(x.shape).astype(dtype)
    first = lambda r: r[0]  # noqa: E731
    w = rng.standard_normal((5, 4, 3, 3)).astype(dtype)
    yc = F.conv2d(x, w, None, 1, 1)
    dyc = rng.standard_normal(yc.shape).astype(dtype)
    return [
        ("conv2d", lambda out: F.conv2d(x, w, None, 1, 1, out=out), yc.shape, lambda r: r),
        ("conv2d im2col", lambda out: F.conv2d(x, w, None, 2, 0, algorithm="im2col", out=out),
         (3, 5, 3, 2), lambda r: r),
        ("conv2d_backward", lambda out: F.conv2d_backward(dyc, x, w, 1, 1, out=out), x.shape,
         first),
        ("linear", lambda out: F.linear(x2, x2[:3].copy(), out=out), (5, 3), lambda r: r),
        ("max_pool2d", lambda out: F.max_pool2d(x, 3, 2, 1, out=out), y.shape, lambda r: r),
        ("max_pool2d_backward", lambda out: F.max_pool2d_backward(dyp, idx, x.shape, out=out),
         x.shape, lambda r: r),
        ("avg_pool2d", lambda out: F.avg_pool2d(x, 2, 1, 1, False, out=out), ya.shape,
         lambda r: r),
        ("avg_pool2d_backward",
         lambda out: F.avg_pool2d_backward(dya, x.shape, 2, 1, 1, False, out=out), x.shape,
         lambda r: r),
        ("batch_norm", lambda out: F.batch_norm(x, g, b, out=out), x.shape, first),
        ("batch_norm 2-D", lambda out: F.batch_norm(x2, None, None, out=out), x2.shape, first),
        ("batch_norm_backward", lambda out: F.batch_norm_backward(dyb, x, g, m, s, out=out),
         x.shape, first),
    ]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_out_receives_the_result(backend, dtype):
    with F.use_backend(backend):
        for name, call, shape, pick in _calls(np.random.default_rng(0), dtype):
            fresh = pick(call(None))
            buf = np.full(shape, np.nan, dtype)
            got = pick(call(buf))
            assert got is buf, name
            np.testing.assert_array_equal(buf, fresh, err_msg=name)


@pytest.mark.parametrize("backend", BACKENDS)
def test_out_indices_receives_the_argmax(backend):
    x = np.random.default_rng(1).standard_normal((2, 3, 6, 6)).astype(np.float32)
    with F.use_backend(backend):
        y0, i0 = F.max_pool2d(x, 2, return_indices=True)
        yb, ib = np.empty_like(y0), np.full(i0.shape, -7, np.int32)
        y1, i1 = F.max_pool2d(x, 2, return_indices=True, out=yb, out_indices=ib)
    assert y1 is yb and i1 is ib
    np.testing.assert_array_equal(i1, i0)
    np.testing.assert_array_equal(y1, y0)


@pytest.mark.parametrize("make_bad, exc, fragment", [
    (lambda shape, dt: np.empty(shape[:-1] + (shape[-1] + 1,), dt), ValueError, "must have shape"),
    (lambda shape, dt: np.empty(shape, np.float64 if dt == np.float32 else np.float32),
     ValueError, "dtype"),
    (lambda shape, dt: np.empty(shape, dt, order="F"), ValueError, "C-contiguous"),
    (lambda shape, dt: np.empty(shape, dt)[..., ::-1], ValueError, "C-contiguous"),
    (lambda shape, dt: _readonly(np.empty(shape, dt)), ValueError, "writeable"),
    (lambda shape, dt: [[0.0]], TypeError, "numpy.ndarray"),
])
def test_bad_out_is_refused(make_bad, exc, fragment):
    for name, call, shape, _ in _calls(np.random.default_rng(2), np.float32):
        if len(shape) < 2 or shape[-1] < 2 and "C-contiguous" in fragment:
            continue
        with pytest.raises(exc, match=fragment):
            call(make_bad(shape, np.float32))


def _readonly(a):
    a.flags.writeable = False
    return a
