"""fastcnn.init: fans, the std of every preset against its formula, uniform bounds, names,
dtypes, rng determinism and bad arguments."""
import math

import numpy as np
import pytest

from fastcnn import init, layers


@pytest.mark.parametrize("shape, fans", [
    ((30, 20), (20, 30)),                 # (out, in)
    ((16, 3, 5, 5), (75, 400)),           # (OC, C, KH, KW)
    ((8, 4, 3, 1), (12, 24)),
])
def test_compute_fans(shape, fans):
    assert init.compute_fans(shape) == fans


def test_compute_fans_rejects_vectors():
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        init.compute_fans((10,))


# name, expected std for a weight with fan_in, fan_out
FAN_IN, FAN_OUT = 64 * 3 * 3, 32 * 3 * 3
SHAPE = (32, 64, 3, 3)
PRESETS = [
    ("xavier_normal", 1 / math.sqrt(FAN_IN), "normal"),
    ("xavier_uniform", 1 / math.sqrt(FAN_IN), "uniform"),
    ("glorot_normal", math.sqrt(2 / (FAN_IN + FAN_OUT)), "normal"),
    ("glorot_uniform", math.sqrt(2 / (FAN_IN + FAN_OUT)), "uniform"),
    ("he_normal", math.sqrt(2 / FAN_IN), "normal"),
    ("he_uniform", math.sqrt(2 / FAN_IN), "uniform"),
]


@pytest.mark.parametrize("name, std, dist", PRESETS, ids=[p[0] for p in PRESETS])
def test_preset_std_matches_formula(name, std, dist):
    f = getattr(init, name)
    w = np.concatenate([f(SHAPE, rng=np.random.default_rng(s), dtype=np.float64).ravel()
                        for s in range(8)])
    # 147k draws: the sample std is within 1% of the target
    assert abs(w.std() / std - 1) < 0.01
    assert abs(w.mean()) < 0.05 * std
    if dist == "uniform":
        limit = math.sqrt(3) * std
        assert w.max() < limit and w.min() >= -limit
        assert w.max() > 0.99 * limit
    assert getattr(init, name).std(SHAPE) == pytest.approx(std, rel=1e-12)


def test_normal_fixed_std():
    w = init.normal(0.01)((400, 500), rng=np.random.default_rng(1), dtype=np.float64)
    assert abs(w.std() / 0.01 - 1) < 0.01
    assert init.get("normal").std == 0.01
    assert init.get(0.05).std == 0.05


def test_zeros():
    assert not init.zeros((3, 4), rng=0).any()


@pytest.mark.parametrize("name", ["he", "he_normal", "he_uniform", "xavier", "xavier_normal",
                                  "xavier_uniform", "glorot", "glorot_normal", "glorot_uniform",
                                  "normal", "zeros", "relu", "sigmoid"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_by_name_dtype_and_determinism(name, dtype):
    f = init.get(name)
    a = f((6, 5), rng=np.random.default_rng(3), dtype=dtype)
    b = f((6, 5), rng=np.random.default_rng(3), dtype=dtype)
    assert a.dtype == dtype and a.shape == (6, 5) and a.flags.c_contiguous
    np.testing.assert_array_equal(a, b)


def test_xavier_modes():
    assert init.xavier(mode="fan_in") is init.xavier_normal
    assert init.xavier(mode="fan_avg") is init.glorot_normal
    assert init.xavier(mode="fan_avg", distribution="uniform") is init.glorot_uniform
    assert init.get("he") is init.he_normal


def test_global_random_state_untouched():
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    init.he_normal((10, 10), rng=np.random.default_rng(0))
    layers.Conv2D(1, 2, 3, rng=0)
    np.testing.assert_array_equal(np.random.get_state()[1], before)


def test_layers_use_named_initializers():
    conv = layers.Conv2D(3, 8, 5, weight_init="xavier", dtype=np.float64, rng=0)
    expect = init.xavier_normal((8, 3, 5, 5), rng=np.random.default_rng(0), dtype=np.float64)
    np.testing.assert_array_equal(conv.weight.data, expect)
    aff = layers.Affine(20, 10, weight_init=0.01, rng=1)
    expect = init.normal(0.01)((10, 20), rng=np.random.default_rng(1), dtype=np.float32)
    np.testing.assert_array_equal(aff.weight.data, expect)
    assert not aff.bias.data.any()


@pytest.mark.parametrize("spec, exc, msg", [
    ("kaiming_magic", ValueError, "unknown weight_init"),
    (object(), TypeError, "weight_init must be"),
    (-0.1, ValueError, "std must be"),
])
def test_bad_specs(spec, exc, msg):
    with pytest.raises(exc, match=msg):
        init.get(spec)


def test_bad_dtype_and_scale():
    with pytest.raises(TypeError, match="float32 or float64"):
        init.he_normal((3, 3), dtype=np.int32)
    with pytest.raises(ValueError, match="mode must be"):
        init.VarianceScaling(1.0, mode="fan_max")
    with pytest.raises(ValueError, match="scale must be"):
        init.VarianceScaling(0.0)
