"""fastcnn.models: parameter counts against hand-computed totals, numerical gradients of every
model in float64, output shapes, configs that rebuild the same network, summaries, bad
arguments."""
import json

import numpy as np
import pytest

from fastcnn import layers, models, testing

F64 = np.float64


# ---- parameter counts (worked out by hand: weights + biases per layer) -----------------------

def test_simple_convnet_parameter_count():
    # conv 30*1*5*5 + 30 = 780; 28-5+1 = 24 -> pool 12 -> 30*12*12 = 4320 features
    # affine 4320*100 + 100 = 432100; affine 100*10 + 10 = 1010
    assert models.SimpleConvNet(rng=0).num_parameters() == 780 + 432100 + 1010 == 433890


def test_deep_convnet_parameter_count():
    convs = [(1, 16), (16, 16), (16, 32), (32, 32), (32, 64), (64, 64)]
    conv_total = sum(o * i * 9 + o for i, o in convs)
    assert conv_total == 160 + 2320 + 4640 + 9248 + 18496 + 36928 == 71792
    # 28 -> 28 -> pool 14 -> 14 -> 16 (pad 2) -> pool 8 -> 8 -> 8 -> pool 4: 64*4*4 = 1024
    fc = (1024 * 50 + 50) + (50 * 10 + 10)
    assert models.DeepConvNet(rng=0).num_parameters() == conv_total + fc == 123552


def test_deep_convnet_with_batchnorm_adds_gamma_beta():
    extra = 2 * (16 + 16 + 32 + 32 + 64 + 64)
    assert models.DeepConvNet(batchnorm=True, rng=0).num_parameters() == 123552 + extra


def test_mlp_parameter_count():
    # 784*100+100, three times 100*100+100, 100*10+10
    assert models.MLP(rng=0).num_parameters() == 78500 + 3 * 10100 + 1010 == 109810
    bn = models.MLP(input_shape=20, hidden_sizes=(7, 5), num_classes=3, batchnorm=True, rng=0)
    assert bn.num_parameters() == (20 * 7 + 7) + 2 * 7 + (7 * 5 + 5) + 2 * 5 + (5 * 3 + 3)


def test_alexnet_small_parameter_count():
    convs = [(3, 64, 5), (64, 128, 5), (128, 192, 3), (192, 192, 3), (192, 128, 3)]
    conv_total = sum(o * i * k * k + o for i, o, k in convs)
    # 32 -> pool(3, s2) 15 -> 15 -> pool 7 -> 7 -> pool 3: 128*3*3 = 1152 features
    fc = (1152 * 512 + 512) + (512 * 512 + 512) + (512 * 10 + 10)
    m = models.AlexNet(input_shape=(3, 32, 32), num_classes=10, variant="small", rng=0)
    assert m.num_parameters() == conv_total + fc == 1842570
    bn = models.AlexNet(input_shape=(3, 32, 32), num_classes=10, variant="small",
                        norm="batchnorm", rng=0)
    assert bn.num_parameters() == 1842570 + 2 * (64 + 128 + 192 + 192 + 128)
    assert not any(isinstance(l, layers.LRN) for l in bn)


def test_alexnet_original_parameter_count_and_shape():
    # conv1 96*3*11*11+96 = 34944; conv2 256*96*25+256 = 614656; conv3 384*256*9+384 = 885120
    # conv4 384*384*9+384 = 1327488; conv5 256*384*9+256 = 884992
    # 227 -> 55 -> pool 27 -> 27 -> pool 13 -> 13 -> pool 6: 256*6*6 = 9216 features
    # fc6 9216*4096+4096 = 37752832; fc7 4096*4096+4096 = 16781312; fc8 4096*1000+1000 = 4097000
    m = models.AlexNet(rng=0)
    assert m.num_parameters() == (34944 + 614656 + 885120 + 1327488 + 884992 + 37752832
                                  + 16781312 + 4097000) == 62378344
    assert sum(isinstance(l, layers.LRN) for l in m) == 2
    assert sum(isinstance(l, layers.MaxPool2D) for l in m) == 3
    assert sum(isinstance(l, layers.Dropout) for l in m) == 2
    m.eval()
    y = m(np.zeros((1, 3, 227, 227), np.float32))
    assert y.shape == (1, 1000) and y.dtype == np.float32


# ---- numerical gradients of whole models -----------------------------------------------------

GRAD_MODELS = [
    ("mlp_tanh_bn_dropout", lambda: models.MLP(input_shape=6, num_classes=3, hidden_sizes=(5, 4),
                                               activation="tanh", batchnorm=True, dropout=0.3,
                                               dtype=F64, rng=1), (4, 6)),
    ("mlp_sigmoid_images", lambda: models.MLP(input_shape=(1, 3, 3), num_classes=4,
                                              hidden_sizes=(6,), activation="sigmoid",
                                              weight_init="xavier", dtype=F64, rng=2),
     (3, 1, 3, 3)),
    ("simple_convnet", lambda: models.SimpleConvNet(input_shape=(1, 10, 10), num_classes=3,
                                                    conv_channels=4, hidden_size=6, dtype=F64,
                                                    rng=3), (2, 1, 10, 10)),
    ("deep_convnet", lambda: models.DeepConvNet(input_shape=(1, 12, 12), num_classes=3,
                                                conv_channels=(4, 4, 6, 6, 8, 8), hidden_size=6,
                                                dtype=F64, rng=4), (2, 1, 12, 12)),
    ("deep_convnet_bn", lambda: models.DeepConvNet(input_shape=(2, 8, 8), num_classes=3,
                                                   conv_channels=(3, 3, 4, 4, 4, 4), hidden_size=5,
                                                   batchnorm=True, dtype=F64, rng=5), (3, 2, 8, 8)),
    ("alexnet_small_lrn", lambda: models.AlexNet(input_shape=(3, 16, 16), num_classes=3,
                                                 variant="small", channels=(4, 5, 6, 6, 4),
                                                 hidden_size=8, dtype=F64, rng=6), (2, 3, 16, 16)),
    ("alexnet_small_bn", lambda: models.AlexNet(input_shape=(3, 16, 16), num_classes=3,
                                                variant="small", norm="batchnorm",
                                                channels=(4, 5, 6, 6, 4), hidden_size=8,
                                                dtype=F64, rng=7), (3, 3, 16, 16)),
    ("alexnet_original_narrow", lambda: models.AlexNet(input_shape=(3, 67, 67), num_classes=3,
                                                       channels=(4, 4, 4, 4, 4), hidden_size=8,
                                                       dtype=F64, rng=8), (2, 3, 67, 67)),
]


@pytest.mark.parametrize("name, make, xshape", GRAD_MODELS, ids=[g[0] for g in GRAD_MODELS])
def test_model_numerical_gradients(name, make, xshape):
    model = make()
    rng = np.random.default_rng(sum(map(ord, name)))
    # a generic point: zero biases put ReLU inputs exactly on the kink when a whole input row is
    # zero (all dropped out), where finite differences see half the slope
    for p in model.parameters():
        if p.data.ndim == 1:
            p.data += 0.1 * rng.standard_normal(p.data.shape)
    x = rng.standard_normal(xshape)
    errors = testing.check_backward(model, x, max_checks=12, rng=1)
    assert set(errors) == {"x"} | {n for n, _ in model.named_parameters()}
    assert max(errors.values()) < 1e-6, errors


def test_loss_gradient_through_a_model():
    model = models.SimpleConvNet(input_shape=(1, 8, 8), num_classes=4, conv_channels=3,
                                 hidden_size=5, dtype=F64, rng=0)
    seq = layers.Sequential(*model.layers)
    x = np.random.default_rng(0).standard_normal((3, 1, 8, 8))
    labels = np.array([0, 3, 1])
    loss = layers.SoftmaxCrossEntropy()

    class WithLoss(layers.Layer):  # a user-defined layer, checked with the public checker
        def children(self):
            return [("net", seq)]

        def forward(self, x, target):
            return loss.forward(seq.forward(x), target)

        def backward(self, dout=1.0):
            return seq.backward(loss.backward(dout))

    errors = testing.check_backward(WithLoss(), x, target=labels, max_checks=10)
    assert max(errors.values()) < 1e-6


# ---- structure, configs, summaries -----------------------------------------------------------

ALL = [
    lambda: models.MLP(rng=0),
    lambda: models.MLP(input_shape=(1, 8, 8), hidden_sizes=[30, 20], activation="sigmoid",
                       weight_init=0.01, batchnorm=True, dropout=0.5, dtype=F64, rng=0),
    lambda: models.SimpleConvNet(rng=0),
    lambda: models.SimpleConvNet(input_shape=(1, 8, 8), kernel_size=3, padding=1, rng=0),
    lambda: models.DeepConvNet(rng=0),
    lambda: models.DeepConvNet(batchnorm=True, dropout=0.0, rng=0),
    lambda: models.AlexNet(input_shape=(3, 32, 32), num_classes=10, variant="small", rng=0),
    lambda: models.AlexNet(input_shape=(3, 32, 32), num_classes=10, variant="small",
                           norm=None, channels=(8, 8, 8, 8, 8), hidden_size=16, rng=0),
]


@pytest.mark.parametrize("make", ALL)
def test_config_rebuilds_the_same_model(make):
    m = make()
    config = json.loads(json.dumps(m.config))   # JSON-able
    assert config["class"] == type(m).__name__
    rebuilt = models.build(config, rng=0)
    assert type(rebuilt) is type(m) and rebuilt.config == config
    assert repr(rebuilt) == repr(m)
    for (na, a), (nb, b) in zip(m.named_parameters(), rebuilt.named_parameters()):
        assert na == nb and a.data.dtype == b.data.dtype
        np.testing.assert_array_equal(a.data, b.data)   # same rng, same weights


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_forward_backward_shapes_and_dtype(dtype):
    m = models.DeepConvNet(dtype=dtype, rng=0)
    x = np.random.default_rng(0).standard_normal((3, 1, 28, 28)).astype(dtype)
    y = m(x)
    assert y.shape == (3, 10) and y.dtype == dtype
    assert m.backward(np.ones_like(y)) is None           # models skip the image gradient
    assert all(p.grad.dtype == dtype and p.grad.any() for p in m.parameters())
    m.need_input_grad = True
    assert m.backward(np.ones_like(y)).shape == x.shape


def test_summary_lists_layers_shapes_and_total():
    text = models.SimpleConvNet(rng=0).summary()
    assert "SimpleConvNet: input (1, 28, 28), 10 classes, float32" in text
    assert "(30, 24, 24)" in text and "(4320,)" in text and "432,100" in text
    assert text.strip().endswith("433,890")
    assert repr(models.MLP(rng=0)).startswith("MLP:")


def test_models_can_be_changed_like_lists():
    m = models.SimpleConvNet(input_shape=(1, 8, 8), rng=0)
    m.insert(2, layers.Dropout(0.1, rng=0))
    m[-2] = layers.Tanh()
    y = m(np.zeros((2, 1, 8, 8), np.float32))
    assert y.shape == (2, 10)
    assert "Dropout(p=0.1)" in m.summary()


def test_same_seed_same_weights_different_seed_different():
    a, b, c = models.MLP(rng=5), models.MLP(rng=5), models.MLP(rng=6)
    np.testing.assert_array_equal(a[1].weight.data, b[1].weight.data)
    assert not np.array_equal(a[1].weight.data, c[1].weight.data)


def test_dropout_layers_get_independent_streams():
    m = models.MLP(input_shape=10, hidden_sizes=(10, 10), dropout=0.5, rng=0)
    drops = [l for l in m if isinstance(l, layers.Dropout)]
    x = np.ones((4, 10), np.float32)
    masks = [d(x).copy() for d in drops]
    assert not np.array_equal(masks[0], masks[1])


@pytest.mark.parametrize("make, exc, msg", [
    (lambda: models.MLP(num_classes=0), ValueError, "num_classes"),
    (lambda: models.MLP(activation="swish"), ValueError, "unknown activation"),
    (lambda: models.MLP(dropout=1.0), ValueError, "dropout"),
    (lambda: models.MLP(hidden_sizes=(10, 0)), ValueError, "hidden_sizes"),
    (lambda: models.MLP(weight_init="bogus"), ValueError, "unknown weight_init"),
    (lambda: models.SimpleConvNet(input_shape=(28, 28)), ValueError, r"\(C, H, W\)"),
    (lambda: models.SimpleConvNet(input_shape=(1, 4, 4)), ValueError, "does not fit"),
    (lambda: models.DeepConvNet(conv_channels=(16, 16)), ValueError, "six entries"),
    (lambda: models.AlexNet(variant="tiny"), ValueError, "variant"),
    (lambda: models.AlexNet(norm="layernorm"), ValueError, "norm"),
    (lambda: models.AlexNet(input_shape=(3, 32, 32)), ValueError, "too small"),
    (lambda: models.build({"class": "ResNet"}), ValueError, "unknown model class"),
])
def test_bad_model_arguments(make, exc, msg):
    with pytest.raises(exc, match=msg):
        make()
