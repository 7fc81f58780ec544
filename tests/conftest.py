"""Shared test helpers: seeded rng, both-backends parametrization, tolerances, input layouts,
thread-count switching and a float64 central-difference gradient checker.

The oracle the helpers compare against is tests/naive.py; nothing here computes a result itself.
"""
import contextlib
import os
import sys
import warnings

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))   # `import naive` from every test module

import fastcnn  # noqa: E402
from fastcnn import _config  # noqa: E402
from fastcnn import functional as F  # noqa: E402

FLOATS = [np.float32, np.float64]
BACKENDS = ["fast", "reference"]

# Relative tolerance of one result against the float64 oracle, as a fraction of the largest
# magnitude in the expected result (errors of a sum scale with its terms, not with its value).
RTOL = {np.dtype(np.float32): 1e-4, np.dtype(np.float64): 1e-10}

# Layouts an input may arrive in; every public function must give the C-contiguous answer.
LAYOUTS = ["C", "F", "sliced", "transposed", "reversed", "readonly"]

GRAD_RTOL = 1e-6          # relative error of an analytic gradient vs central differences


@pytest.fixture
def rng(request):
    """A Generator seeded from the test's id, so every test sees its own fixed numbers."""
    seed = sum(map(ord, request.node.nodeid)) * 7919 % 2**32
    return np.random.default_rng(seed)


@pytest.fixture(params=BACKENDS)
def backend(request):
    """Run the test once with the compiled backend and once with fastcnn._reference."""
    with F.use_backend(request.param):
        yield request.param


@pytest.fixture(params=FLOATS, ids=["f32", "f64"])
def dtype(request):
    return np.dtype(request.param)


def randn(rng, shape, dtype, scale=1.0):
    return (scale * rng.standard_normal(shape)).astype(dtype)


def assert_close(actual, expected, dtype=None, rtol=None, scale=None, equal_nan=False):
    """actual has expected's shape, dtype `dtype` (when given), is C-contiguous, and agrees with it
    to rtol * max(1, max|expected|) absolutely and rtol relatively."""
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, f"shape {actual.shape} != expected {expected.shape}"
    if dtype is not None:
        assert actual.dtype == np.dtype(dtype), f"dtype {actual.dtype} != {np.dtype(dtype)}"
        if rtol is None:
            rtol = RTOL[np.dtype(dtype)]
    if rtol is None:
        rtol = RTOL[actual.dtype]
    if scale is None:
        finite = np.abs(expected[np.isfinite(expected)])
        scale = max(1.0, float(finite.max())) if finite.size else 1.0
    np.testing.assert_allclose(actual.astype(np.float64), expected.astype(np.float64),
                               rtol=rtol, atol=rtol * scale, equal_nan=equal_nan)


def layout(a, kind):
    """The same values as `a`, in memory layout `kind` (a view or a fresh array)."""
    a = np.asarray(a)
    if kind == "C":
        out = np.ascontiguousarray(a)
    elif kind == "F":
        out = np.asfortranarray(a)
        if a.ndim > 1 and a.size > 1 and min(a.shape) > 1:
            assert not out.flags.c_contiguous
    elif kind == "sliced":
        # every other element of a buffer twice as wide in the last axis
        # (the gaps hold NaN / -1, so reading them shows up in the result)
        fill = np.nan if a.dtype.kind in "fc" else -1
        big = np.full(a.shape[:-1] + (2 * a.shape[-1],), fill, dtype=a.dtype)
        big[..., ::2] = a
        out = big[..., ::2]
    elif kind == "transposed":
        # stored channels-last (or reversed axes for 1-D/2-D), viewed back in the logical order
        perm = (0,) + tuple(range(2, a.ndim)) + (1,) if a.ndim >= 3 else tuple(reversed(range(a.ndim)))
        inverse = np.argsort(perm)
        out = np.ascontiguousarray(a.transpose(perm)).transpose(inverse)
    elif kind == "reversed":
        out = np.ascontiguousarray(a[..., ::-1])[..., ::-1]
    elif kind == "readonly":
        out = np.array(a)
        out.flags.writeable = False
    else:
        raise AssertionError(kind)
    np.testing.assert_array_equal(out, a)
    return out


@contextlib.contextmanager
def num_threads(n):
    old = fastcnn.get_num_threads()
    with warnings.catch_warnings():   # a build without OpenMP warns and stays on 1 thread
        warnings.simplefilter("ignore", RuntimeWarning)
        fastcnn.set_num_threads(n)
    try:
        openmp = _config._BUILD["openmp"]
        assert fastcnn.get_num_threads() == (n if openmp else 1)
        yield
    finally:
        fastcnn.set_num_threads(old)


def numerical_grad(f, x, eps=1e-6):
    """Central differences of the scalar function f() with respect to the float64 array x,
    which f reads; x is perturbed in place one element at a time and restored."""
    assert x.dtype == np.float64
    g = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        old = x[idx]
        x[idx] = old + eps
        fp = f()
        x[idx] = old - eps
        fm = f()
        x[idx] = old
        g[idx] = (fp - fm) / (2 * eps)
    return g


def rel_error(analytic, numeric):
    """||a - n|| / max(||a||, ||n||), 0 when both are 0."""
    analytic = np.asarray(analytic, dtype=np.float64)
    numeric = np.asarray(numeric, dtype=np.float64)
    denom = max(np.linalg.norm(analytic), np.linalg.norm(numeric))
    return 0.0 if denom == 0 else float(np.linalg.norm(analytic - numeric) / denom)


def check_gradients(loss, inputs, analytic, eps=1e-6, tol=GRAD_RTOL):
    """For every name in analytic: central differences of loss() w.r.t. inputs[name] (float64
    arrays loss() reads) agree with analytic[name] to relative error < tol."""
    for name, grad in analytic.items():
        assert grad is not None, f"no gradient for {name}"
        numeric = numerical_grad(loss, inputs[name], eps)
        assert np.asarray(grad).shape == numeric.shape, name
        err = rel_error(grad, numeric)
        assert err < tol, f"d{name}: relative error {err:.3g} >= {tol:g}"
        assert np.linalg.norm(numeric) > 0, f"d{name}: the check is vacuous (zero gradient)"


@pytest.fixture(params=fastcnn.simd_levels())
def simd(request):
    """Every instruction-set variant of the dispatched kernels this machine runs, one at a time."""
    previous = fastcnn.set_simd(request.param)
    try:
        assert fastcnn.get_simd() == request.param
        yield request.param
    finally:
        fastcnn.set_simd(previous)
