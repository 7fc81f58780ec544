"""F.adam_update, the fused one-pass Adam kernel the Adam optimizer runs: both backends against
an element-by-element loop of the update rule, several steps, threads, and bad input."""
import math

import numpy as np
import pytest

from conftest import assert_close, num_threads, randn
from fastcnn import functional as F


def naive_adam(w, g, m, v, lr, b1, b2, eps, t):
    w, m, v = (a.astype(np.float64).ravel() for a in (w, m, v))
    g = g.astype(np.float64).ravel()
    for i in range(w.size):
        m[i] = b1 * m[i] + (1 - b1) * g[i]
        v[i] = b2 * v[i] + (1 - b2) * g[i] ** 2
        m_hat, v_hat = m[i] / (1 - b1 ** t), v[i] / (1 - b2 ** t)
        w[i] -= lr * m_hat / (math.sqrt(v_hat) + eps)
    return w, m, v


@pytest.mark.parametrize("shape", [(1,), (7,), (3, 5, 2, 2), (1000,)], ids=str)
def test_three_steps_match_the_rule(backend, dtype, shape, rng):
    w, m, v = randn(rng, shape, dtype), np.zeros(shape, dtype), np.zeros(shape, dtype)
    nw, nm, nv = w.copy(), m.copy(), v.copy()
    for t in (1, 2, 3):
        g = randn(rng, shape, dtype)
        out = F.adam_update(w, g, m, v, 0.01, 0.9, 0.999, 1e-8, t)
        assert out is w
        nw, nm, nv = naive_adam(nw, g, nm, nv, 0.01, 0.9, 0.999, 1e-8, t)
        nw, nm, nv = (a.reshape(shape) for a in (nw, nm, nv))
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    assert_close(w, nw, dtype, rtol=rtol)
    assert_close(m, nm, dtype, rtol=rtol)
    assert_close(v, nv, dtype, rtol=rtol)


def test_threads_give_the_same_bits(dtype, rng):
    base = randn(rng, 300_000, dtype), randn(rng, 300_000, dtype)
    results = []
    for n in (1, 2):
        w, g = base[0].copy(), base[1]
        m, v = np.zeros_like(w), np.zeros_like(w)
        with num_threads(n):
            for t in (1, 2):
                F.adam_update(w, g, m, v, 0.001, 0.9, 0.999, 1e-8, t)
        results.append((w, m, v))
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


def test_non_contiguous_grad(backend, rng):
    w = randn(rng, (4, 6), np.float32)
    g = np.asfortranarray(randn(rng, (4, 6), np.float32))
    m, v = np.zeros_like(w), np.zeros_like(w)
    nw, _, _ = naive_adam(w, g, m, v, 0.1, 0.9, 0.99, 1e-8, 1)
    F.adam_update(w, g, m, v, 0.1, 0.9, 0.99, 1e-8, 1)
    assert_close(w, nw.reshape(4, 6), np.float32, rtol=1e-5)


def _bad(**kw):
    a = dict(param=np.zeros(3, np.float32), grad=np.zeros(3, np.float32),
             m=np.zeros(3, np.float32), v=np.zeros(3, np.float32), step=1)
    a.update(kw)
    return lambda: F.adam_update(a["param"], a["grad"], a["m"], a["v"], 0.1, 0.9, 0.99, 1e-8,
                                 a["step"])


def _readonly():
    a = np.zeros(3, np.float32)
    a.flags.writeable = False
    return a


@pytest.mark.parametrize("call, exc, fragment", [
    (_bad(grad=np.zeros(4, np.float32)), ValueError, "grad.shape"),
    (_bad(m=np.zeros(3, np.float64)), TypeError, "dtype"),
    (_bad(v=np.zeros(3, np.int32)), TypeError, "float32 or float64"),
    (_bad(param=_readonly()), ValueError, "writeable"),
    (_bad(m=np.zeros(6, np.float32)[::2]), ValueError, "C-contiguous"),
    (_bad(step=0), ValueError, "step must be"),
    (_bad(grad=None), TypeError, "got None"),
])
def test_bad_input(call, exc, fragment):
    with pytest.raises(exc, match=fragment):
        call()
