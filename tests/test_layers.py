"""fastcnn.layers: numerical gradients of every layer (float64, via the public
fastcnn.testing.check_backward), forward values against independent oracles (tests/naive.py,
loops, PyTorch where installed), train/eval behaviour of Dropout and BatchNorm, state dicts,
buffer reuse, dtype preservation and bad arguments."""
import math

import numpy as np
import pytest

import naive
from fastcnn import functional as F
from fastcnn import layers as L
from fastcnn import testing

F64 = np.float64


def away_from_zero(rng, shape, gap=0.05):
    """Normal draws with |x| >= gap, so kinks (ReLU at 0) are far from the finite differences."""
    x = rng.standard_normal(shape)
    return np.where(np.abs(x) < gap, np.sign(x + 1e-300) * (gap + np.abs(x)), x)


def distinct(rng, shape, scale=0.1):
    """Distinct values (no ties in max pooling)."""
    return rng.permutation(math.prod(shape)).reshape(shape) * scale + rng.uniform(0, 0.01)


# ---- numerical gradient checks ----------------------------------------------------------------

def _cases():
    return [
        ("conv_s2_p1", lambda r: L.Conv2D(2, 3, 3, stride=2, padding=1, dtype=F64, rng=r),
         lambda r: r.standard_normal((2, 2, 7, 6))),
        ("conv_rect_nobias", lambda r: L.Conv2D(2, 3, (3, 2), stride=(1, 2), padding=(0, 1),
                                                bias=False, dtype=F64, rng=r),
         lambda r: r.standard_normal((2, 2, 7, 6))),
        ("conv_1x1_batch1", lambda r: L.Conv2D(3, 4, 1, dtype=F64, rng=r),
         lambda r: r.standard_normal((1, 3, 4, 5))),
        ("maxpool2", lambda r: L.MaxPool2D(2), lambda r: distinct(r, (2, 3, 6, 6))),
        ("maxpool3_s2_p1", lambda r: L.MaxPool2D(3, 2, padding=1),
         lambda r: distinct(r, (2, 2, 7, 7))),
        ("avgpool3_s2_p1", lambda r: L.AvgPool2D(3, 2, padding=1),
         lambda r: r.standard_normal((2, 3, 7, 7))),
        ("avgpool2_nopad_count", lambda r: L.AvgPool2D(3, 2, padding=1, count_include_pad=False),
         lambda r: r.standard_normal((2, 2, 5, 5))),
        ("batchnorm2d", lambda r: L.BatchNorm2D(3, dtype=F64),
         lambda r: r.standard_normal((4, 3, 3, 3))),
        ("batchnorm1d", lambda r: L.BatchNorm1D(5, dtype=F64), lambda r: r.standard_normal((6, 5))),
        ("affine", lambda r: L.Affine(12, 4, dtype=F64, rng=r),
         lambda r: r.standard_normal((3, 12))),
        ("affine_flattens", lambda r: L.Dense(12, 4, dtype=F64, rng=r),
         lambda r: r.standard_normal((3, 3, 2, 2))),
        ("affine_nobias", lambda r: L.Affine(7, 2, bias=False, dtype=F64, rng=r),
         lambda r: r.standard_normal((1, 7))),
        ("relu", lambda r: L.ReLU(), lambda r: away_from_zero(r, (3, 7))),
        ("leaky_relu", lambda r: L.LeakyReLU(0.1), lambda r: away_from_zero(r, (3, 2, 2, 2))),
        ("sigmoid", lambda r: L.Sigmoid(), lambda r: 3 * r.standard_normal((3, 7))),
        ("tanh", lambda r: L.Tanh(), lambda r: r.standard_normal((3, 7))),
        ("dropout", lambda r: L.Dropout(0.3, rng=r), lambda r: r.standard_normal((4, 9))),
        ("flatten", lambda r: L.Flatten(), lambda r: r.standard_normal((2, 3, 2, 2))),
        ("lrn_paper", lambda r: L.LRN(), lambda r: 10 * r.standard_normal((2, 7, 3, 3))),
        ("lrn_even_size", lambda r: L.LRN(size=4, alpha=0.1, beta=0.6, k=1.0),
         lambda r: r.standard_normal((2, 6, 2, 2))),
        ("sequential", lambda r: L.Sequential(L.Conv2D(1, 2, 3, padding=1, dtype=F64, rng=r),
                                              L.BatchNorm2D(2, dtype=F64), L.Tanh(),
                                              L.AvgPool2D(2), L.Flatten(),
                                              L.Affine(8, 3, dtype=F64, rng=r), L.Sigmoid()),
         lambda r: r.standard_normal((3, 1, 4, 4))),
    ]


@pytest.mark.parametrize("name, make, data", _cases(), ids=[c[0] for c in _cases()])
def test_check_backward(name, make, data):
    r = np.random.default_rng(sum(map(ord, name)))
    layer = make(r)
    errors = testing.check_backward(layer, data(r))
    assert "x" in errors
    assert set(errors) == {"x"} | {n for n, _ in layer.named_parameters()}
    assert max(errors.values()) < 1e-6


def test_check_backward_eval_mode_batchnorm():
    bn = L.BatchNorm2D(3, dtype=F64)
    bn.running_mean[:] = [0.5, -1.0, 2.0]
    bn.running_var[:] = [2.0, 0.5, 1.0]
    bn.eval()
    x = np.random.default_rng(0).standard_normal((2, 3, 2, 2))
    assert max(testing.check_backward(bn, x).values()) < 1e-6


def test_check_backward_loss_layer():
    loss = L.SoftmaxCrossEntropy()
    errors = testing.check_backward(loss, np.random.default_rng(1).standard_normal((5, 4)),
                                    target=np.array([0, 1, 2, 3, 1]))
    assert errors["x"] < 1e-6


def test_check_backward_catches_a_wrong_gradient():
    class BadTanh(L.Tanh):
        def backward(self, dy):
            return super().backward(dy) * 1.01

    with pytest.raises(AssertionError, match="gradient mismatch"):
        testing.check_backward(BadTanh(), np.random.default_rng(0).standard_normal((3, 4)))


def test_check_backward_needs_float64_and_restores_state():
    with pytest.raises(TypeError, match="float64"):
        testing.check_backward(L.Affine(3, 2), np.zeros((1, 3)))
    bn = L.BatchNorm1D(3, dtype=F64)
    drop = L.Dropout(0.5, rng=4)
    seq = L.Sequential(bn, drop)
    state = seq.state_dict()
    rng_state = drop.rng.bit_generator.state
    testing.check_backward(seq, np.random.default_rng(0).standard_normal((4, 3)), max_checks=3)
    for k, v in seq.state_dict().items():
        np.testing.assert_array_equal(v, state[k])
    assert drop.rng.bit_generator.state == rng_state
    assert not bn.weight.grad.any()


# ---- forward values against independent oracles ----------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv_and_pool_layers_match_naive(dtype, rng):
    conv = L.Conv2D(3, 4, (3, 2), stride=(2, 1), padding=(1, 0), dtype=dtype, rng=rng)
    conv.bias.data[:] = rng.standard_normal(4)
    x = rng.standard_normal((2, 3, 7, 5)).astype(dtype)
    y = conv(x)
    assert y.dtype == dtype
    tol = 1e-4 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(y, naive.conv2d(x, conv.weight.data, conv.bias.data, (2, 1), (1, 0)),
                               rtol=tol, atol=tol)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx = conv.backward(dy)
    ndx, ndw, ndb = naive.conv2d_backward(dy, x, conv.weight.data, (2, 1), (1, 0))
    np.testing.assert_allclose(dx, ndx, rtol=tol, atol=tol)
    np.testing.assert_allclose(conv.weight.grad, ndw, rtol=tol, atol=tol * 10)
    np.testing.assert_allclose(conv.bias.grad, ndb, rtol=tol, atol=tol * 10)

    pool = L.MaxPool2D(3, stride=2, padding=1)
    np.testing.assert_array_equal(pool(x), naive.max_pool2d(x, 3, 2, 1)[0])
    avg = L.AvgPool2D(2)
    np.testing.assert_allclose(avg(x), naive.avg_pool2d(x, 2), rtol=tol, atol=tol)


def test_affine_matches_formula(rng):
    aff = L.Affine(5, 3, dtype=F64, rng=rng)
    aff.bias.data[:] = [1.0, -2.0, 0.5]
    x = rng.standard_normal((4, 5))
    expect = np.array([[sum(x[n, i] * aff.weight.data[o, i] for i in range(5)) + aff.bias.data[o]
                        for o in range(3)] for n in range(4)])
    np.testing.assert_allclose(aff(x), expect, rtol=1e-12)


def lrn_loops(x, size, alpha, beta, k):
    N, C = x.shape[:2]
    y = np.empty_like(x)
    for c in range(C):
        lo, hi = max(0, c - size // 2), min(C - 1, c + (size - 1) // 2)
        s = sum(x[:, j] ** 2 for j in range(lo, hi + 1))
        y[:, c] = x[:, c] / (k + alpha * s) ** beta
    return y


@pytest.mark.parametrize("beta", [0.75, 0.5, 1.0, 0.6])   # square-root paths and np.power
@pytest.mark.parametrize("size", [1, 3, 4, 5])
def test_lrn_matches_loops(size, beta, rng):
    x = 3 * rng.standard_normal((2, 6, 3, 2))
    layer = L.LRN(size=size, alpha=0.01, beta=beta, k=2.0)
    want = lrn_loops(x, size, 0.01, beta, 2.0)
    np.testing.assert_allclose(layer(x), want, rtol=1e-12)
    y32 = L.LRN(size=size, alpha=0.01, beta=beta, k=2.0)(x.astype(np.float32))
    assert y32.dtype == np.float32
    np.testing.assert_allclose(y32, want, rtol=2e-6, atol=1e-7)


def test_lrn_matches_torch_with_alpha_times_size(rng):
    torch = pytest.importorskip("torch")
    x = 5 * rng.standard_normal((2, 7, 3, 3))
    ours = L.LRN(size=5, alpha=1e-3, beta=0.75, k=2.0)(x)
    ref = torch.nn.LocalResponseNorm(5, alpha=5e-3, beta=0.75, k=2.0)(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(ours, ref, rtol=1e-10)


def test_sigmoid_does_not_overflow():
    x = np.array([[-1000.0, -80.0, 0.0, 80.0, 1000.0]], dtype=np.float32)
    with np.errstate(all="raise"):
        y = L.Sigmoid()(x)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, [[0.0, 1.8048513e-35, 0.5, 1.0, 1.0]], rtol=1e-6)
    assert np.all(np.isfinite(y))


def test_activation_values():
    x = np.array([[-2.0, -0.5, 0.0, 0.5, 2.0]])
    np.testing.assert_array_equal(L.ReLU()(x), [[0, 0, 0, 0.5, 2.0]])
    np.testing.assert_allclose(L.LeakyReLU(0.1)(x), [[-0.2, -0.05, 0, 0.5, 2.0]])
    np.testing.assert_allclose(L.Tanh()(x), np.tanh(x))
    np.testing.assert_allclose(L.Sigmoid()(x), 1 / (1 + np.exp(-x)))


def test_relu_propagates_nan():
    assert np.isnan(L.ReLU()(np.array([[np.nan, 1.0]]))[0, 0])


def test_softmax_cross_entropy_values():
    loss = L.SoftmaxCrossEntropy()
    assert loss(np.zeros((3, 4)), np.array([0, 1, 3])) == pytest.approx(math.log(4))
    big = np.array([[1000.0, 0.0], [0.0, 1000.0]])
    assert loss(big, np.array([0, 1])) == pytest.approx(0.0, abs=1e-12)
    d = loss.backward()
    np.testing.assert_allclose(d, 0.0, atol=1e-12)
    loss(np.zeros((2, 2)), np.array([0, 1]))
    np.testing.assert_allclose(loss.backward(2.0), [[-0.5, 0.5], [0.5, -0.5]])


@pytest.mark.parametrize("backend_name", ["fast", "reference"])
def test_softmax_cross_entropy_backward_after_forward(backend_name, rng):
    """forward computes the gradient in its pass and the first backward() hands it over; it is
    the functional backward's to the bit, and any later call (or another dout) computes it again
    from probs, so a caller that changes the array it got does not change the next one."""
    logits = rng.standard_normal((6, 5)).astype(np.float32)
    labels = rng.integers(0, 5, 6)
    with F.use_backend(backend_name):
        loss = L.SoftmaxCrossEntropy()
        loss(logits, labels)
        want = F.softmax_cross_entropy_backward(loss.probs, labels)
        d1 = loss.backward()
        np.testing.assert_array_equal(d1, want)
        d1[...] = 7
        d2 = loss.backward()
        assert d2 is not d1
        np.testing.assert_array_equal(d2, want)
        loss(logits, labels)
        np.testing.assert_allclose(loss.backward(-3.0), -3.0 * want, rtol=1e-6)
        np.testing.assert_array_equal(loss.backward(), want)


# ---- Dropout and BatchNorm: train vs eval --------------------------------------------------------

def test_dropout_inverted_scaling_and_eval_identity():
    d = L.Dropout(0.25, rng=0)
    x = np.ones((200, 500), dtype=np.float32)
    y = d(x)
    assert y.dtype == np.float32
    kept = y != 0
    assert abs(kept.mean() - 0.75) < 0.01
    np.testing.assert_allclose(y[kept], 1 / 0.75, rtol=1e-6)
    assert abs(y.mean() - 1.0) < 0.01            # expectation preserved
    dx = d.backward(np.full_like(x, 2.0))
    np.testing.assert_array_equal(dx != 0, kept)  # same mask
    d.eval()
    assert d(x) is x and d.backward(x) is x
    d.train()
    assert not np.array_equal(d(x) != 0, kept)    # a fresh mask per forward


def test_dropout_same_seed_same_mask():
    x = np.ones((10, 10))
    a, b = L.Dropout(0.5, rng=7)(x).copy(), L.Dropout(0.5, rng=7)(x).copy()
    np.testing.assert_array_equal(a, b)


def test_batchnorm_train_uses_batch_stats_and_updates_running(rng):
    bn = L.BatchNorm2D(3, momentum=0.1, dtype=F64)
    x = 2.0 + 3.0 * rng.standard_normal((8, 3, 4, 4))
    y = bn(x)
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=(0, 2, 3)), 1, rtol=1e-4)
    m = 8 * 16
    np.testing.assert_allclose(bn.running_mean, 0.1 * x.mean(axis=(0, 2, 3)), rtol=1e-12)
    np.testing.assert_allclose(bn.running_var,
                               0.9 + 0.1 * x.var(axis=(0, 2, 3)) * m / (m - 1), rtol=1e-12)
    bn.eval()
    rm, rv = bn.running_mean.copy(), bn.running_var.copy()
    y_eval = bn(x)
    np.testing.assert_allclose(y_eval, (x - rm[None, :, None, None])
                               / np.sqrt(rv[None, :, None, None] + 1e-5), rtol=1e-10)
    np.testing.assert_array_equal(bn.running_mean, rm)   # eval does not update
    np.testing.assert_array_equal(bn.running_var, rv)


def test_batchnorm1d_shape_checks():
    with pytest.raises(ValueError, match="2-D"):
        L.BatchNorm1D(3)(np.zeros((2, 3, 1, 1), np.float32))
    with pytest.raises(ValueError, match="expects 3 channels"):
        L.BatchNorm2D(3)(np.zeros((2, 4, 2, 2), np.float32))


# ---- state dicts ---------------------------------------------------------------------------------

def small_net(seed, dtype=F64):
    r = np.random.default_rng(seed)
    return L.Sequential(L.Conv2D(1, 2, 3, dtype=dtype, rng=r), L.BatchNorm2D(2, dtype=dtype),
                        L.ReLU(), L.Flatten(), L.Affine(8, 3, dtype=dtype, rng=r))


def test_state_dict_round_trip_includes_buffers(rng):
    a, b = small_net(0), small_net(1)
    a(rng.standard_normal((4, 1, 4, 4)))  # moves BN running stats
    sd = a.state_dict()
    assert set(sd) == {"0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean",
                       "1.running_var", "4.weight", "4.bias"}
    sd_keys_are_copies = sd["0.weight"] is not a[0].weight.data
    assert sd_keys_are_copies
    ids = [id(p.data) for p in b.parameters()]
    b.load_state_dict(sd)
    assert [id(p.data) for p in b.parameters()] == ids  # loaded in place
    for k, v in b.state_dict().items():
        np.testing.assert_array_equal(v, sd[k])
    a.eval(), b.eval()
    x = rng.standard_normal((2, 1, 4, 4))
    np.testing.assert_array_equal(a(x), b(x))


def test_load_state_dict_errors():
    net = small_net(0)
    sd = net.state_dict()
    bad = dict(sd)
    del bad["1.running_var"]
    with pytest.raises(ValueError, match=r"missing keys \['1.running_var'\]"):
        net.load_state_dict(bad)
    bad = dict(sd, extra=np.zeros(1))
    with pytest.raises(ValueError, match=r"unexpected keys \['extra'\]"):
        net.load_state_dict(bad)
    bad = dict(sd)
    bad["4.weight"] = np.zeros((3, 9))
    with pytest.raises(ValueError, match=r"'4.weight' has shape \(3, 9\) .* \(3, 8\)"):
        net.load_state_dict(bad)
    del bad["4.weight"]
    missing, unexpected = net.load_state_dict(bad, strict=False)
    assert missing == ["4.weight"] and unexpected == []


def test_train_eval_and_zero_grad_recurse(rng):
    net = small_net(0)
    net.eval()
    assert all(not m.training for _, m in net.named_modules())
    net.train()
    assert all(m.training for _, m in net.named_modules())
    y = net(rng.standard_normal((2, 1, 4, 4)))
    net.backward(np.ones_like(y))
    assert any(p.grad.any() for p in net.parameters())
    net.zero_grad()
    assert not any(p.grad.any() for p in net.parameters())


def _grad_layers(dtype, rng):
    """(layer, x) pairs of every layer kind with parameters, in both fully connected regimes
    (a small batch: the own kernel; a large one: BLAS)."""
    return [
        (L.Conv2D(2, 3, 3, padding=1, dtype=dtype, rng=rng), rng.standard_normal((2, 2, 5, 5))),
        (L.Affine(7, 5, dtype=dtype, rng=rng), rng.standard_normal((3, 7))),
        (L.Affine(7, 5, dtype=dtype, rng=rng), rng.standard_normal((70, 7))),
        (L.Affine(7, 5, bias=False, dtype=dtype, rng=rng), rng.standard_normal((3, 7))),
        (L.BatchNorm2D(2, dtype=dtype), rng.standard_normal((4, 2, 3, 3))),
    ]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_zero_grad_then_backward_stores_the_gradient(rng, dtype):
    """zero_grad() defers its zeros: the next backward stores its gradient instead of adding it
    (whatever the array held, NaN included), the one after adds, and a read in between sees
    zeros."""
    for layer, x in _grad_layers(dtype, rng):
        x = x.astype(dtype)
        params = list(layer.parameters())
        y = layer(x)
        dy = rng.standard_normal(y.shape).astype(dtype)
        layer.backward(dy)
        once = [p.grad.copy() for p in params]
        assert all(np.isfinite(g).all() and g.any() for g in once), layer

        for p in params:
            p.grad[...] = np.nan
        layer.zero_grad()
        layer(x)
        layer.backward(dy)   # stores: no NaN survives
        for p, g in zip(params, once):
            np.testing.assert_array_equal(p.grad, g, err_msg=repr(layer))
        layer(x)
        layer.backward(dy)   # adds
        for p, g in zip(params, once):
            np.testing.assert_allclose(p.grad, 2 * g, err_msg=repr(layer),
                                       rtol=1e-5 if dtype == np.float32 else 1e-12,
                                       atol=1e-5 if dtype == np.float32 else 1e-12)

        for p in params:
            p.grad[...] = np.nan
        layer.zero_grad()
        assert not any(p.grad.any() for p in params)   # read before backward: zeros
        layer(x)
        layer.backward(dy)
        for p, g in zip(params, once):
            np.testing.assert_array_equal(p.grad, g, err_msg=repr(layer))


def test_failed_backward_leaves_cleared_gradients_zero(rng):
    """A backward that raises after taking a cleared gradient (here: dy of the wrong dtype, which
    the functional call rejects) leaves it reading as zeros, not as the stale values."""
    aff = L.Affine(5, 3, dtype=F64, rng=rng)
    x = rng.standard_normal((2, 5))
    aff(x)
    aff.backward(rng.standard_normal((2, 3)))
    aff.zero_grad()
    aff(x)
    with pytest.raises((TypeError, ValueError)):
        aff.backward(rng.standard_normal((2, 3)).astype(np.float32))
    assert not aff.weight.grad.any() and not aff.bias.grad.any()


def test_parameter_grad_assignment():
    """grad stays one array: an assignment copies into it (shape checked), `+=` adds in place,
    and either one clears a pending zero_grad."""
    p = L.Parameter(np.ones((2, 3)), name="w")
    g = p.grad
    p.grad = np.full((2, 3), 2.0)
    assert p.grad is g and (g == 2).all()
    p.zero_grad()
    p.grad += 1.0
    assert p.grad is g and (g == 1).all()
    p.zero_grad()
    p.grad = np.full((2, 3), 5.0)
    assert p.grad is g and (g == 5).all()
    with pytest.raises(ValueError, match="'w'.*shape"):
        p.grad = np.zeros((3, 2))


def test_zero_grad_of_one_parameter_only(rng):
    """An Affine whose weight was cleared but not its bias (or the reverse): the cleared one
    gets the gradient, the other adds it to what it held."""
    aff = L.Affine(6, 4, dtype=F64, rng=rng)
    x = rng.standard_normal((3, 6))
    dy = rng.standard_normal((3, 4))
    aff(x)
    aff.backward(dy)
    gw, gb = aff.weight.grad.copy(), aff.bias.grad.copy()
    for cleared, kept in ((aff.weight, aff.bias), (aff.bias, aff.weight)):
        cleared.grad[...] = np.nan
        cleared.zero_grad()
        kept.grad[...] = 1.0
        aff(x)
        aff.backward(dy)
        g_cleared, g_kept = (gw, gb) if cleared is aff.weight else (gb, gw)
        np.testing.assert_allclose(cleared.grad, g_cleared, rtol=1e-12)
        np.testing.assert_allclose(kept.grad, 1.0 + g_kept, rtol=1e-12)


def test_backward_accumulates(rng):
    aff = L.Affine(4, 3, dtype=F64, rng=rng)
    x, dy = rng.standard_normal((2, 4)), rng.standard_normal((2, 3))
    aff(x)
    aff.backward(dy)
    once = aff.weight.grad.copy()
    aff(x)
    aff.backward(dy)
    np.testing.assert_allclose(aff.weight.grad, 2 * once)


def test_decay_flags():
    net = small_net(0)
    flags = {n: p.decay for n, p in net.named_parameters()}
    assert flags == {"0.weight": True, "0.bias": False, "1.weight": False, "1.bias": False,
                     "4.weight": True, "4.bias": False}


# ---- buffers, dtypes, need_input_grad ------------------------------------------------------------

def test_numpy_layers_reuse_their_buffers(rng):
    x = rng.standard_normal((4, 6)).astype(np.float32)
    for layer in (L.Affine(6, 6, rng=0), L.ReLU(), L.Sigmoid(), L.Tanh(), L.LeakyReLU(),
                  L.Dropout(0.5, rng=0), L.LRN(size=3)):
        xin = x.reshape(4, 6, 1, 1) if isinstance(layer, L.LRN) else x
        y1 = layer(xin)
        dx1 = layer.backward(np.ones_like(y1))
        y2 = layer(xin)
        dx2 = layer.backward(np.ones_like(y2))
        assert np.shares_memory(y1, y2) and np.shares_memory(dx1, dx2), type(layer).__name__


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_preserved_through_a_network(dtype, rng):
    net = L.Sequential(L.Conv2D(1, 2, 3, padding=1, dtype=dtype, rng=rng),
                       L.BatchNorm2D(2, dtype=dtype), L.ReLU(), L.LRN(size=3), L.MaxPool2D(2),
                       L.Flatten(), L.Dropout(0.2, rng=rng), L.Affine(8, 5, dtype=dtype, rng=rng),
                       L.Sigmoid(), L.Affine(5, 3, dtype=dtype, rng=rng), L.Tanh(), L.LeakyReLU())
    x = rng.standard_normal((2, 1, 4, 4)).astype(dtype)
    y = net(x)
    dx = net.backward(np.ones_like(y))
    assert y.dtype == dtype and dx.dtype == dtype
    assert all(p.grad.dtype == dtype for p in net.parameters())


def test_dtype_mismatch_is_a_type_error():
    with pytest.raises(TypeError, match="does not match the layer's parameter dtype float32"):
        L.Affine(3, 2)(np.zeros((1, 3)))
    with pytest.raises(TypeError, match="float32 or float64"):
        L.ReLU()(np.zeros((1, 3), dtype=np.int64))
    with pytest.raises(TypeError, match="does not match"):
        L.Conv2D(1, 1, 1)(np.zeros((1, 1, 2, 2)))


def test_sequential_skips_input_grad_before_first_parametric_layer(rng):
    net = L.Sequential(L.Flatten(), L.ReLU(), L.Affine(4, 2, dtype=F64, rng=rng), L.Tanh())
    y = net(rng.standard_normal((3, 1, 2, 2)))
    assert net.backward(np.ones_like(y)) is not None
    net.need_input_grad = False
    assert net.backward(np.ones_like(y)) is None
    assert net[0].need_input_grad is False and net[2].need_input_grad is False
    assert net[3].need_input_grad is True


def test_sequential_rejects_a_missing_input_gradient(rng):
    class Forgetful(L.Tanh):
        def backward(self, dy):
            super().backward(dy)

    net = L.Sequential(L.Affine(3, 3, dtype=F64, rng=rng), Forgetful())
    y = net(rng.standard_normal((2, 3)))
    with pytest.raises(RuntimeError, match=r"layer 1 \(Forgetful\(\)\) returned no input gradient"):
        net.backward(np.ones_like(y))


def test_sequential_is_a_list(rng):
    net = L.Sequential([L.Flatten(), L.Affine(4, 2, rng=0)])
    net.append(L.ReLU())
    net.insert(1, L.Dropout(0.1))
    assert [type(l).__name__ for l in net] == ["Flatten", "Dropout", "Affine", "ReLU"]
    del net[1]
    net[2] = L.Tanh()
    assert len(net) == 3 and isinstance(net[-1], L.Tanh)
    assert isinstance(net[:2], L.Sequential)
    assert "Affine(4, 2)" in repr(net)
    assert "total" in net.summary((1, 2, 2)) and "(2,)" in net.summary((1, 2, 2))
    with pytest.raises(TypeError, match="not a Layer"):
        net.append(np.zeros(3))


def test_layer_config_round_trip():
    net = L.Sequential(L.Conv2D(1, 2, (3, 1), stride=2, padding=(1, 0), weight_init="xavier",
                                rng=0),
                       L.BatchNorm2D(2, eps=1e-3, momentum=0.2), L.LeakyReLU(0.2),
                       L.MaxPool2D(2, 1),
                       L.AvgPool2D(3, padding=1), L.LRN(3, 1e-3, 0.5, 1.0), L.Flatten(),
                       L.Dropout(0.3), L.Affine(4, 2, bias=False, weight_init=0.02), L.Sigmoid())
    import json
    config = json.loads(json.dumps(net.config))
    rebuilt = L.from_config(config)
    assert rebuilt.config == config
    assert repr(rebuilt) == repr(net)


# ---- bad arguments -------------------------------------------------------------------------------

@pytest.mark.parametrize("make, exc, msg", [
    (lambda: L.Conv2D(0, 2, 3), ValueError, "in_channels must be a positive integer"),
    (lambda: L.Conv2D(1, 2, 0), ValueError, "kernel_size must be >= 1"),
    (lambda: L.Conv2D(1, 2, 3, stride=0), ValueError, "stride must be >= 1"),
    (lambda: L.Conv2D(1, 2, 3, padding=-1), ValueError, "padding must be >= 0"),
    (lambda: L.Conv2D(1, 2, 3, dtype=np.int32), TypeError, "float32 or float64"),
    (lambda: L.MaxPool2D(2, padding=2), ValueError, "padding"),
    (lambda: L.Affine(3, 0), ValueError, "out_features"),
    (lambda: L.Dropout(1.0), ValueError, r"p must be in \[0, 1\)"),
    (lambda: L.Dropout(-0.1), ValueError, r"p must be in \[0, 1\)"),
    (lambda: L.BatchNorm2D(3, eps=0), ValueError, "eps must be > 0"),
    (lambda: L.BatchNorm2D(3, momentum=1.5), ValueError, "momentum"),
    (lambda: L.LRN(size=0), ValueError, "size"),
    (lambda: L.LRN(k=0), ValueError, "k must be"),
    (lambda: L.Sequential(L.ReLU(), 3), TypeError, "item 1 is not a Layer"),
])
def test_bad_constructor_arguments(make, exc, msg):
    with pytest.raises(exc, match=msg):
        make()


def test_bad_inputs():
    with pytest.raises(ValueError, match="expects 4 input features"):
        L.Affine(4, 2)(np.zeros((2, 5), np.float32))
    with pytest.raises(ValueError, match="4-D"):
        L.Conv2D(1, 1, 1)(np.zeros((2, 1), np.float32))
    with pytest.raises(RuntimeError, match="before forward"):
        L.Affine(4, 2).backward(np.zeros((1, 2), np.float32))
    relu = L.ReLU()
    relu(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"dy has shape \(3, 2\)"):
        relu.backward(np.zeros((3, 2)))


def test_sequential_runs_relu_in_place_only_where_safe(rng):
    """After a layer whose backward does not read its output (Conv2D, Affine, BatchNorm,
    pooling) and before the last layer, Sequential runs ReLU in place: no output or dx buffer of
    its own, and the same numbers as out of place. After a layer that reads its output (Sigmoid,
    LRN, ReLU) or as the last layer, ReLU keeps its own buffers; a ReLU called on its own never
    writes over its input."""
    x = rng.standard_normal((3, 2, 6, 6))

    def build():
        r = np.random.default_rng(7)
        return L.Sequential(L.Conv2D(2, 4, 3, padding=1, dtype=np.float64, rng=r), L.ReLU(),
                            L.Sigmoid(), L.ReLU(), L.Flatten(),
                            L.Affine(144, 5, dtype=np.float64, rng=r), L.ReLU())
    net = build()
    y = net.forward(x).copy()
    dy = rng.standard_normal(y.shape)
    dx = net.backward(dy.copy()).copy()
    conv, relu1, _, relu2 = net.layers[:4]
    assert relu1._in_place and not relu2._in_place and not net.layers[-1]._in_place
    assert relu1._y is conv._work["y"] and "y" not in relu1._work
    # every layer's dx lives in one of the Sequential's two shared gradient buffers
    for layer in net.layers[1:]:
        if "dx" in layer._work:
            assert any(np.shares_memory(layer._work["dx"], b) for b in net._grad_buffers)
    # the same numbers as every layer run on its own, out of place
    ref = build()
    h = x
    for layer in ref.layers:
        h = layer.forward(h)
    np.testing.assert_allclose(y, h, rtol=1e-12)
    g = dy.copy()
    for layer in reversed(ref.layers):
        g = layer.backward(g)
    np.testing.assert_allclose(dx, g, rtol=1e-12)
    np.testing.assert_allclose(net.layers[0].weight.grad, ref.layers[0].weight.grad, rtol=1e-12)
    # on its own, after Sequential used it in place, ReLU leaves its input alone
    a = rng.standard_normal((4, 5))
    a0 = a.copy()
    relu1.forward(a)
    np.testing.assert_array_equal(a, a0)


@pytest.mark.parametrize("pool", [(2, None, 0), (3, 2, 0), (3, 2, 1), (2, 1, 0)],
                         ids=["2x2", "3x3s2", "3x3s2p1", "2x2s1-overlap"])
def test_sequential_relu_before_max_pool_leaves_its_mask_to_the_pool(pool, rng):
    """ReLU -> MaxPool2D in a Sequential: the ReLU's backward passes dy through and the pooling
    masks its own (smaller) gradient by its output > 0, which equals the ReLU's mask on every cell
    a gradient reaches. The numbers must match every layer run on its own, with ties (ReLU's
    zeros), NaN winners, overlapping windows (a cell winning two windows) and padding; a ReLU
    after the pooling must not run in place over the pooled output the backward reads."""
    k, s, p = pool
    x = rng.standard_normal((3, 2, 7, 7))
    x[0, 0, :3, :3] = -1.0       # a window of ReLU zeros: all tie at 0, the winner gets no gradient
    x[1, 1, 2, 2] = np.nan       # a NaN winner: no gradient through the ReLU either
    x[2, 0, 4:, :] = -0.5

    def build():
        r = np.random.default_rng(11)
        return L.Sequential(L.Conv2D(2, 3, 1, dtype=np.float64, rng=r), L.ReLU(),
                            L.MaxPool2D(k, s, p), L.Flatten(),
                            L.Affine(3 * L.MaxPool2D(k, s, p).output_shape((3, 7, 7))[1] ** 2, 4,
                                     dtype=np.float64, rng=r))
    # the 1x1 convolution with weight 1 and no bias: the ReLU sees x itself (NaN and ties intact)
    net = build()
    for m in (net, ref := build()):
        m.layers[0].weight.data[...] = 0
        for c in range(2):
            m.layers[0].weight.data[c, c] = 1
        m.layers[0].bias.data[...] = 0
    y = net.forward(x).copy()
    relu, pooling = net.layers[1:3]
    assert relu._pass_grad and pooling._mask_grad and pooling.backward_reads_output
    dy = rng.standard_normal(y.shape)
    dx = net.backward(dy.copy())
    h = x
    for layer in ref.layers:
        h = layer.forward(h)
    assert not ref.layers[1]._pass_grad and not ref.layers[2]._mask_grad
    np.testing.assert_array_equal(y, h)
    g = dy.copy()
    for layer in reversed(ref.layers):
        g = layer.backward(g)
        if layer is ref.layers[1]:
            relu_dx = g.copy()   # the ReLU's input gradient, unfused
    assert relu_dx[0, 0, :2, :2].sum() == 0 and relu_dx[1, 1, 2, 2] == 0
    assert np.isfinite(relu_dx).all()
    np.testing.assert_array_equal(dx, g)
    np.testing.assert_array_equal(net.layers[0].weight.grad, ref.layers[0].weight.grad)
    # on its own, after Sequential fused it, each layer computes its full backward again
    relu.forward(x)
    pooling.forward(relu._y)
    assert not relu._pass_grad and not pooling._mask_grad and not pooling.backward_reads_output
    # a ReLU after the pooling must not run in place: it would write over the pooled y that the
    # backward masks by
    net = L.Sequential(L.ReLU(), L.MaxPool2D(2), L.ReLU(), L.Flatten(), L.Affine(18, 2, rng=0))
    net.forward(rng.standard_normal((1, 2, 6, 6)).astype(np.float32))
    assert net.layers[1]._mask_grad and not net.layers[2]._in_place
