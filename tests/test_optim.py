"""fastcnn.optim, fastcnn.regularizers, fastcnn.schedules: three hand-computed steps of every
update rule, PyTorch as a second oracle where installed, hyper-parameter validation, state dicts,
hooks and penalties, gradient clipping and learning-rate schedules."""
import math

import numpy as np
import pytest

from fastcnn import optim, regularizers, schedules
from fastcnn.layers import Parameter

W0 = [1.0, -2.0]
GRADS = [[0.5, -1.0], [0.2, 0.4], [-1.0, 0.1]]


def run_three_steps(make):
    p = Parameter(np.array(W0), name="w")
    opt = make([p])
    out = []
    for g in GRADS:
        p.grad[:] = g
        opt.step()
        out.append(p.data.copy())
    assert opt.step_count == 3
    return out


# Each expected trajectory is worked out by hand from the rule in the optimizer's docstring.
def sgd_expected():
    # w <- w - 0.1 g
    return [[0.95, -1.9], [0.93, -1.94], [1.03, -1.95]]


def momentum_expected():
    # v1 = [-0.05, 0.1], v2 = 0.9 v1 - 0.1 g2 = [-0.065, 0.05], v3 = [0.0415, 0.035]; w += v
    return [[0.95, -1.9], [0.885, -1.85], [0.9265, -1.815]]


def nesterov_expected():
    # same v; w += 0.9 v - 0.1 g
    return [[0.905, -1.81], [0.8265, -1.805], [0.96385, -1.7835]]


def adagrad_expected():
    e = 1e-7
    # h1 = [0.25, 1], h2 = [0.29, 1.16], h3 = [1.29, 1.17]; w -= 0.1 g / (sqrt(h) + eps)
    w1 = [1 - 0.1 * 0.5 / (0.5 + e), -2 + 0.1 * 1.0 / (1.0 + e)]
    w2 = [w1[0] - 0.1 * 0.2 / (math.sqrt(0.29) + e), w1[1] - 0.1 * 0.4 / (math.sqrt(1.16) + e)]
    w3 = [w2[0] + 0.1 * 1.0 / (math.sqrt(1.29) + e), w2[1] - 0.1 * 0.1 / (math.sqrt(1.17) + e)]
    return [w1, w2, w3]


def rmsprop_expected():
    e = 1e-7
    # alpha 0.9: h1 = [0.025, 0.1], h2 = [0.0265, 0.106], h3 = [0.12385, 0.0964]
    w1 = [1 - 0.01 * 0.5 / (math.sqrt(0.025) + e), -2 + 0.01 * 1.0 / (math.sqrt(0.1) + e)]
    w2 = [w1[0] - 0.01 * 0.2 / (math.sqrt(0.0265) + e), w1[1] - 0.01 * 0.4 / (math.sqrt(0.106) + e)]
    w3 = [w2[0] + 0.01 * 1.0 / (math.sqrt(0.12385) + e),
          w2[1] - 0.01 * 0.1 / (math.sqrt(0.0964) + e)]
    return [w1, w2, w3]


def adam_expected():
    e = 1e-8
    # m1 = [0.05, -0.1], v1 = [0.00025, 0.001]  -> m_hat = g1, v_hat = g1^2
    w1 = [1 - 0.1 * 0.5 / (0.5 + e), -2 + 0.1 * 1.0 / (1.0 + e)]
    # m2 = [0.065, -0.05], v2 = [0.00028975, 0.001159]; corrections 1 - 0.9^2, 1 - 0.999^2
    c1, c2 = 0.19, 0.001999
    w2 = [w1[i] - 0.1 * (m / c1) / (math.sqrt(v / c2) + e)
          for i, (m, v) in enumerate([(0.065, 0.00028975), (-0.05, 0.001159)])]
    # m3 = [-0.0415, -0.035], v3 = [0.00128946025, 0.001167841]; 1 - 0.9^3, 1 - 0.999^3
    c1, c2 = 0.271, 0.002997001
    w3 = [w2[i] - 0.1 * (m / c1) / (math.sqrt(v / c2) + e)
          for i, (m, v) in enumerate([(-0.0415, 0.00128946025), (-0.035, 0.001167841)])]
    return [w1, w2, w3]


HAND = [
    ("SGD", lambda ps: optim.SGD(ps, lr=0.1), sgd_expected),
    ("Momentum", lambda ps: optim.Momentum(ps, lr=0.1, momentum=0.9), momentum_expected),
    ("SGD(momentum)", lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9), momentum_expected),
    ("Nesterov", lambda ps: optim.Nesterov(ps, lr=0.1, momentum=0.9), nesterov_expected),
    ("SGD(nesterov)", lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True),
     nesterov_expected),
    ("AdaGrad", lambda ps: optim.AdaGrad(ps, lr=0.1, eps=1e-7), adagrad_expected),
    ("Adagrad", lambda ps: optim.Adagrad(ps, lr=0.1, eps=1e-7), adagrad_expected),
    ("RMSProp", lambda ps: optim.RMSProp(ps, lr=0.01, alpha=0.9, eps=1e-7), rmsprop_expected),
    ("RMSprop", lambda ps: optim.RMSprop(ps, lr=0.01, alpha=0.9, eps=1e-7), rmsprop_expected),
    ("Adam", lambda ps: optim.Adam(ps, lr=0.1, betas=(0.9, 0.999), eps=1e-8), adam_expected),
]


@pytest.mark.parametrize("name, make, expected", HAND, ids=[h[0] for h in HAND])
def test_three_hand_computed_steps(name, make, expected):
    got = run_three_steps(make)
    for step, (g, e) in enumerate(zip(got, expected()), 1):
        np.testing.assert_allclose(g, e, rtol=1e-12, atol=1e-14, err_msg=f"{name} step {step}")


TORCH = [
    ("SGD", lambda ps: optim.SGD(ps, lr=0.05, weight_decay=0.01),
     lambda t, ps: t.optim.SGD(ps, lr=0.05, weight_decay=0.01)),
    ("Momentum", lambda ps: optim.Momentum(ps, lr=0.05, momentum=0.8),
     lambda t, ps: t.optim.SGD(ps, lr=0.05, momentum=0.8)),
    ("Nesterov", lambda ps: optim.Nesterov(ps, lr=0.05, momentum=0.8, weight_decay=0.01),
     lambda t, ps: t.optim.SGD(ps, lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.01)),
    ("AdaGrad", lambda ps: optim.AdaGrad(ps, lr=0.05, eps=1e-7),
     lambda t, ps: t.optim.Adagrad(ps, lr=0.05, eps=1e-7)),
    ("RMSProp", lambda ps: optim.RMSProp(ps, lr=0.01, alpha=0.95, eps=1e-7),
     lambda t, ps: t.optim.RMSprop(ps, lr=0.01, alpha=0.95, eps=1e-7)),
    ("Adam", lambda ps: optim.Adam(ps, lr=0.01, betas=(0.8, 0.99), eps=1e-8, weight_decay=0.01),
     lambda t, ps: t.optim.Adam(ps, lr=0.01, betas=(0.8, 0.99), eps=1e-8, weight_decay=0.01)),
]


@pytest.mark.parametrize("name, ours, theirs", TORCH, ids=[t[0] for t in TORCH])
def test_matches_pytorch(name, ours, theirs):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    w = rng.standard_normal((3, 4))
    p = Parameter(w.copy(), decay=True)
    tp = torch.nn.Parameter(torch.from_numpy(w.copy()))
    opt, topt = ours([p]), theirs(torch, [tp])
    for _ in range(5):
        g = rng.standard_normal((3, 4))
        p.grad[:] = g
        tp.grad = torch.from_numpy(g.copy())
        opt.step()
        topt.step()
    np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cls", [optim.SGD, optim.Momentum, optim.Nesterov, optim.AdaGrad,
                                 optim.RMSProp, optim.Adam])
def test_dtype_preserved(cls, dtype):
    p = Parameter(np.ones((2, 3), dtype))
    p.grad[:] = 0.5
    opt = cls([p], lr=0.01, weight_decay=0.1, regularizers=[regularizers.L1(0.01)])
    opt.step()
    assert p.data.dtype == dtype and p.grad.dtype == dtype
    assert all(v.dtype == dtype for s in opt.state for v in s.values())


# ---- validation ------------------------------------------------------------------------------

P = [Parameter(np.zeros(2))]
BAD = [
    (lambda: optim.SGD(P, lr=-0.1), ValueError, r"Invalid learning rate: -0.1"),
    (lambda: optim.Adam(P, lr=float("nan")), ValueError, "Invalid learning rate: nan"),
    (lambda: optim.Momentum(P, momentum=1.0), ValueError, r"Invalid momentum value: 1.0"),
    (lambda: optim.Momentum(P, momentum=-0.5), ValueError, r"Invalid momentum value: -0.5"),
    (lambda: optim.SGD(P, momentum=0.0, nesterov=True), ValueError, "momentum > 0"),
    (lambda: optim.Adam(P, betas=(1.0, 0.999)), ValueError, r"beta parameter at index 0: 1.0"),
    (lambda: optim.Adam(P, betas=(0.9, -0.1)), ValueError, r"beta parameter at index 1: -0.1"),
    (lambda: optim.Adam(P, betas=0.9), ValueError, "Invalid betas"),
    (lambda: optim.Adam(P, eps=0.0), ValueError, r"Invalid eps: 0.0"),
    (lambda: optim.AdaGrad(P, eps=-1e-8), ValueError, r"Invalid eps: -1e-08"),
    (lambda: optim.RMSProp(P, alpha=1.2), ValueError, r"Invalid alpha: 1.2"),
    (lambda: optim.SGD(P, weight_decay=-1), ValueError, r"Invalid weight_decay: -1.0"),
    (lambda: optim.SGD(P, lr="fast"), TypeError, "Invalid learning rate"),
    (lambda: optim.SGD([], lr=0.1), ValueError, "empty parameter list"),
    (lambda: optim.SGD([P[0], P[0]]), ValueError, "more than once"),
    (lambda: optim.SGD([np.zeros(2)]), TypeError, "not a Parameter"),
    (lambda: optim.SGD(P, regularizers=[0.1]), TypeError, "regularizers"),
    (lambda: regularizers.L2(-1.0), ValueError, "lam must be"),
]


@pytest.mark.parametrize("make, exc, msg", BAD)
def test_bad_hyperparameters_raise(make, exc, msg):
    with pytest.raises(exc, match=msg):
        make()


# ---- state dicts -----------------------------------------------------------------------------

@pytest.mark.parametrize("cls", [optim.SGD, optim.Momentum, optim.Nesterov, optim.AdaGrad,
                                 optim.RMSProp, optim.Adam])
def test_state_dict_round_trip_continues_identically(cls):
    rng = np.random.default_rng(1)
    w = rng.standard_normal(5)
    a, b = Parameter(w.copy()), Parameter(w.copy())
    opt_a = cls([a], lr=0.01)
    for _ in range(3):
        a.grad[:] = rng.standard_normal(5)
        opt_a.step()
    b.data[:] = a.data
    sd = opt_a.state_dict()
    opt_b = optim.from_state_dict([b], sd)
    assert type(opt_b) is cls and opt_b.step_count == 3
    for entry in sd["state"]:  # state_dict() and load_state_dict() copy: this changes nothing
        for v in entry.values():
            v.fill(123.0)
    for _ in range(3):
        g = rng.standard_normal(5)
        a.grad[:] = g
        b.grad[:] = g
        opt_a.step()
        opt_b.step()
    np.testing.assert_array_equal(a.data, b.data)


def test_load_state_dict_checks_and_names_mismatches():
    p = [Parameter(np.zeros((2, 3))), Parameter(np.zeros(3))]
    opt = optim.Adam(p)
    sd = opt.state_dict()
    with pytest.raises(ValueError, match="state belongs to a SGD"):
        optim.Adam(p).load_state_dict(optim.SGD(p).state_dict())
    with pytest.raises(ValueError, match="2 parameter entries but the optimizer has 1"):
        optim.Adam(p[:1]).load_state_dict(sd)
    bad = opt.state_dict()
    bad["state"][1]["m"] = np.zeros(4)
    with pytest.raises(ValueError, match=r"state 1.m .* shape \(4,\), expected \(3,\)"):
        optim.Adam(p).load_state_dict(bad)
    bad = opt.state_dict()
    del bad["state"][0]["v"]
    with pytest.raises(ValueError, match=r"state keys \['m'\], expected \['m', 'v'\]"):
        optim.Adam(p).load_state_dict(bad)
    bad = opt.state_dict()
    bad["hyperparams"]["lr"] = -1
    with pytest.raises(ValueError, match="Invalid learning rate"):
        optim.Adam(p).load_state_dict(bad)


def test_load_state_dict_restores_hyperparameters():
    p = [Parameter(np.zeros(2))]
    src = optim.Adam(p, lr=0.5, betas=(0.8, 0.9), eps=1e-6, weight_decay=0.1)
    dst = optim.Adam(p)
    dst.load_state_dict(src.state_dict())
    assert (dst.lr, dst.betas, dst.eps, dst.weight_decay) == (0.5, (0.8, 0.9), 1e-6, 0.1)


def test_accepts_a_layer_and_zero_grad():
    from fastcnn.layers import Affine
    layer = Affine(3, 2, rng=0)
    opt = optim.SGD(layer, lr=0.1)
    assert opt.params == layer.parameters()
    layer.weight.grad[:] = 1
    opt.zero_grad()
    assert not layer.weight.grad.any()


# ---- regularizers --------------------------------------------------------------------------------

def test_weight_decay_skips_biases_by_default():
    w, b = Parameter(np.array([1.0, -2.0])), Parameter(np.array([3.0]), decay=False)
    opt = optim.SGD([w, b], lr=0.1, weight_decay=0.5)
    assert opt.penalty() == pytest.approx(0.25 * (1 + 4))   # (lam / 2) ||w||^2, bias excluded
    opt.step()  # zero data gradient: only the decay acts
    np.testing.assert_allclose(w.data, [1.0 - 0.1 * 0.5 * 1.0, -2.0 + 0.1 * 0.5 * 2.0])
    np.testing.assert_array_equal(b.data, [3.0])


def test_l1_and_l2_hooks_and_penalties():
    w = Parameter(np.array([0.5, -2.0, 0.0]))
    b = Parameter(np.array([1.0]), decay=False)
    l1, l2 = regularizers.L1(0.1), regularizers.L2(0.2, all_params=True)
    scratch = np.empty(3)
    l1.apply(w, scratch)
    np.testing.assert_allclose(w.grad, [0.1, -0.1, 0.0])
    l2.apply(w, scratch)
    np.testing.assert_allclose(w.grad, [0.1 + 0.1, -0.1 - 0.4, 0.0])
    assert l1.penalty([w, b]) == pytest.approx(0.1 * 2.5)          # bias excluded
    assert l2.penalty([w, b]) == pytest.approx(0.1 * (0.25 + 4 + 1))  # all_params
    opt = optim.SGD([w, b], lr=0.0, regularizers=[l1, l2])
    assert opt.penalty() == pytest.approx(0.25 + 0.525)
    assert regularizers.from_config(l2.config).all_params


# ---- clipping ------------------------------------------------------------------------------------

def test_clip_grad_norm():
    a, b = Parameter(np.zeros(1)), Parameter(np.zeros(1))
    a.grad[:], b.grad[:] = 3.0, 4.0
    assert optim.clip_grad_norm([a, b], 1.0) == pytest.approx(5.0)
    np.testing.assert_allclose([a.grad[0], b.grad[0]], [0.6, 0.8])
    assert optim.clip_grad_norm([a, b], 2.0) == pytest.approx(1.0)
    np.testing.assert_allclose([a.grad[0], b.grad[0]], [0.6, 0.8])
    with pytest.raises(ValueError, match="max_norm"):
        optim.clip_grad_norm([a], 0)


# ---- schedules -----------------------------------------------------------------------------------

def lrs(sched, n, metrics=None):
    out = []
    for i in range(n):
        sched.step(None if metrics is None else metrics[i])
        out.append(sched.optimizer.lr)
    return out


def test_step_exponential_cosine():
    opt = optim.SGD(P, lr=1.0)
    assert lrs(schedules.StepLR(opt, step_size=2, gamma=0.5), 5) == [1.0, 0.5, 0.5, 0.25, 0.25]
    opt.lr = 1.0
    np.testing.assert_allclose(lrs(schedules.ExponentialLR(opt, 0.9), 3), [0.9, 0.81, 0.729])
    opt.lr = 1.0
    got = lrs(schedules.CosineLR(opt, T_max=4, eta_min=0.1), 6)
    np.testing.assert_allclose(got, [0.1 + 0.9 * (1 + math.cos(math.pi * e / 4)) / 2
                                     for e in (1, 2, 3, 4, 4, 4)])


def test_reduce_on_plateau():
    opt = optim.SGD(P, lr=1.0)
    s = schedules.ReduceLROnPlateau(opt, factor=0.5, patience=1, cooldown=1, min_lr=0.2)
    got = lrs(s, 8, metrics=[1.0, 0.9, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95])
    # bad epochs 3, 4 -> reduce at 4; cooldown at 5; bad 6, 7 -> reduce at 7 (0.25); then floor
    assert got == [1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25, 0.25]
    with pytest.raises(ValueError, match="needs the monitored metric"):
        s.step()


@pytest.mark.parametrize("make", [
    lambda o: schedules.StepLR(o, 3, 0.5), lambda o: schedules.ExponentialLR(o, 0.9),
    lambda o: schedules.CosineLR(o, 5), lambda o: schedules.ReduceLROnPlateau(o, patience=0)])
def test_schedule_state_round_trip(make):
    opt = optim.SGD(P, lr=1.0)
    s = make(opt)
    for m in (1.0, 2.0):
        s.step(m)
    opt2 = optim.SGD(P, lr=opt.lr)
    s2 = schedules.from_state_dict(opt2, s.state_dict())
    for m in (3.0, 0.5, 4.0):
        assert s.step(m) == s2.step(m)


@pytest.mark.parametrize("make, msg", [
    (lambda o: schedules.StepLR(o, 0), "step_size"),
    (lambda o: schedules.StepLR(o, 2, gamma=0), "gamma"),
    (lambda o: schedules.CosineLR(o, 0), "T_max"),
    (lambda o: schedules.ReduceLROnPlateau(o, factor=1.0), "factor"),
    (lambda o: schedules.ReduceLROnPlateau(o, mode="up"), "mode"),
    (lambda o: schedules.ReduceLROnPlateau(o, patience=-1), "patience"),
])
def test_bad_schedule_arguments(make, msg):
    with pytest.raises(ValueError, match=msg):
        make(optim.SGD(P, lr=1.0))
