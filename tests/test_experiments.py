"""Each experiment at its --quick size, on a seeded run: its summary.json is strict JSON with the
expected fields, its plots exist (when matplotlib is installed), and its key numbers show the
effect the lesson teaches. The full-size runs are @slow.
"""
import json
import math

import numpy as np
import pytest

import fastcnn
from fastcnn import experiments, plotting

SEED = 0


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Seeded results do not depend on the thread count; one thread (ours and NumPy's BLAS when
    threadpoolctl is installed) keeps the quick runs quick on a busy host."""
    old = fastcnn.set_num_threads(1)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        limiter = None
    else:
        limiter = threadpool_limits(1, user_api="blas")
    yield
    if limiter is not None:
        limiter.restore_original_limits()
    fastcnn.set_num_threads(old)


def _strict(text):
    def no_constants(name):
        raise AssertionError(f"summary.json holds {name}, which is not strict JSON")
    return json.loads(text, parse_constant=no_constants)


_cache = {}


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    """quick(name) -> (summary, folder): each experiment runs once per module."""
    def get(name):
        if name not in _cache:
            out = tmp_path_factory.mktemp(name)
            summary = experiments.run(name, out, quick=True, seed=SEED, dpi=40, log=None)
            _cache[name] = (summary, out)
        return _cache[name]
    return get


def check_files(name, summary, out):
    on_disk = _strict((out / "summary.json").read_text())
    assert on_disk == summary
    assert on_disk["experiment"] == name and on_disk["quick"] is True
    assert on_disk["seed"] == SEED and on_disk["runtime_s"] >= 0
    for field in ("config", "key", "results", "plots"):
        assert field in on_disk
    assert all(isinstance(v, (int, float)) and math.isfinite(v) for v in on_disk["key"].values())
    if plotting.available():
        assert on_disk["plots"], "no plots written"
        for png in on_disk["plots"]:
            data = (out / png).read_bytes()
            assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) < 200_000
    else:
        assert on_disk["plots"] == []


def test_registry_names_match_the_issue():
    assert list(experiments.EXPERIMENTS) == ["activations", "init", "batchnorm", "optimizers",
                                             "lr-schedules", "overfitting", "cnn", "alexnet"]
    with pytest.raises(ValueError, match="unknown experiment 'resnet'"):
        experiments.run("resnet")


def test_activations(quick):
    s, out = quick("activations")
    check_files("activations", s, out)
    k = s["key"]
    # the issue's example: a ReLU net's last-layer activation std under He init is more than 10x
    # that under std 0.01
    assert k["relu_last_std_he"] > 10 * k["relu_last_std_std001"]
    assert 0.3 < k["relu_last_std_he"] < 3                      # He keeps the scale
    assert k["tanh_last_std_xavier"] > 100 * k["tanh_last_std_std001"]
    assert k["sigmoid_std1_saturated_fraction"] > 0.5           # std 1 saturates sigmoid
    # the gradient vanishes on its way down through sigmoids, much less through ReLU + He
    assert k["sigmoid_xavier_grad_first_over_last"] < 0.01
    assert k["relu_he_grad_first_over_last"] > 10 * k["sigmoid_xavier_grad_first_over_last"]
    res = s["results"]
    assert set(res) == {"sigmoid", "tanh", "relu"}
    assert set(res["relu"]) == {"std 1", "std 0.01", "Xavier", "He"}
    assert len(res["relu"]["He"]["std"]) == 5 and len(res["relu"]["He"]["grad_norm"]) == 5


def test_init(quick):
    s, out = quick("init")
    check_files("init", s, out)
    k = s["key"]
    assert k["final_loss_std001"] > 2.25                        # stuck at log(10) = 2.30
    assert k["final_loss_he"] < k["final_loss_std001"] - 0.5
    assert k["final_loss_he"] <= k["final_loss_xavier"]
    assert k["val_acc_he"] > k["val_acc_std001"]


def test_batchnorm(quick):
    s, out = quick("batchnorm")
    check_files("batchnorm", s, out)
    k = s["key"]
    # batch norm trains faster at a poor init (std 0.01): lower loss early and at the end
    assert k["early_loss_bn_at_poor_init"] < k["early_loss_plain_at_poor_init"] - 0.2
    assert k["final_loss_bn_at_poor_init"] < 0.5 * k["final_loss_plain_at_poor_init"]
    assert k["train_acc_bn_at_poor_init"] > k["train_acc_plain_at_poor_init"] + 0.5
    assert k["scales_where_bn_trains_faster"] == k["n_scales"]
    # std 1 without batch norm diverges, and the summary says so instead of crashing
    assert s["results"]["history"]["1"]["plain"]["diverged"]


def test_optimizers(quick):
    s, out = quick("optimizers")
    check_files("optimizers", s, out)
    k = s["key"]
    # the issue's example: Adam's loss after the same iterations is below plain SGD's
    assert k["adam_final_loss"] < k["sgd_final_loss"]
    res = s["results"]
    assert set(res["final_loss"]) == {"SGD", "Momentum", "Nesterov", "AdaGrad", "RMSProp",
                                      "Adam"}
    assert all(len(c) == s["config"]["network"]["iterations"]
               for c in res["loss_curves"].values())
    # every path starts at (-7, 2) and gets much closer to the minimum of x^2/20 + y^2
    start_f = 49 / 20 + 4
    for name, p in res["paths"].items():
        assert p[0] == [-7.0, 2.0] and len(p) == 31
        assert res["path_final"][name]["f"] < 0.1 * start_f, name
    # plain SGD at lr 0.95 zig-zags across the valley: y changes sign at almost every step
    y = np.array(res["paths"]["SGD"])[:, 1]
    assert np.mean(np.sign(y[1:11]) != np.sign(y[:10])) > 0.8


def test_optimizer_path_matches_hand_computed_steps():
    from fastcnn.experiments.optimizers import trajectory
    p = trajectory("SGD", 0.95, steps=2)
    # step 1: grad (-0.7, 4) -> (-7 + 0.665, 2 - 3.8); step 2 from there
    x1, y1 = -7 + 0.95 * 0.7, 2 - 0.95 * 4
    np.testing.assert_allclose(p[1], [x1, y1])
    np.testing.assert_allclose(p[2], [x1 - 0.95 * x1 / 10, y1 - 0.95 * 2 * y1])
    m = trajectory("Momentum", 0.1, steps=2)
    v1 = -0.1 * np.array([-0.7, 4.0])
    np.testing.assert_allclose(m[1], np.array([-7.0, 2.0]) + v1)
    g2 = np.array([m[1][0] / 10, 2 * m[1][1]])
    np.testing.assert_allclose(m[2], m[1] + 0.9 * v1 - 0.1 * g2)


def test_lr_schedules(quick):
    s, out = quick("lr-schedules")
    check_files("lr-schedules", s, out)
    k = s["key"]
    h = s["results"]["history"]
    # the smooth decays end steadier than the constant rate: a smaller spread of the iteration
    # losses over the last quarter, and cosine's lower on average too (over seeds 0-4 at this size
    # these hold with margins of 1.4-6x). The last epoch's mean loss of each schedule against the
    # constant one is not asserted: at lr 0.01 Adam's constant run spikes or not by chance (0.23
    # or 0.022 at seed 0 with the loss's exp rounded 1 ulp differently), and the step schedule,
    # down to 1e-4 after two thirds of the epochs, mostly ends above it.
    tail = {name: np.asarray(v["iter_loss"][-len(v["iter_loss"]) // 4:]) for name, v in h.items()}
    for name in ("exponential", "cosine"):
        assert tail[name].std() < tail["constant"].std(), name
    assert tail["cosine"].mean() < tail["constant"].mean()
    assert 0 <= k["decayed_schedules_below_constant"] <= 3
    assert h["constant"]["lr"] == [0.01] * len(h["constant"]["lr"])
    assert h["cosine"]["lr"][-1] < 0.01 * 0.1 and h["step"]["lr"][-1] < h["step"]["lr"][0]


def test_overfitting(quick):
    s, out = quick("overfitting")
    check_files("overfitting", s, out)
    k = s["key"]
    assert k["train_acc_none"] > 0.95 and k["gap_none"] > 0.3  # it does overfit
    # the issue's example: dropout and weight decay shrink the train-test accuracy gap
    assert k["gap_dropout"] < k["gap_none"]
    assert k["gap_l2"] < k["gap_none"]
    assert k["gap_l1"] < k["gap_none"]
    assert k["test_acc_l2"] > k["test_acc_none"]


def test_cnn(quick):
    s, out = quick("cnn")
    check_files("cnn", s, out)
    k = s["key"]
    assert k["test_acc"] > 0.6
    # trained first-layer filters are smooth (neighbouring weights correlate); random ones not
    assert abs(k["filter_neighbor_corr_before"]) < 0.15
    assert k["filter_neighbor_corr_after"] > k["filter_neighbor_corr_before"] + 0.2
    assert k["active_feature_maps"] > 0
    assert np.array(s["results"]["filters_after"]).shape == (30, 5, 5)
    if plotting.available():
        assert {"filters_before.png", "filters_after.png", "feature_maps.png"} <= set(s["plots"])


def test_alexnet(quick):
    s, out = quick("alexnet")
    check_files("alexnet", s, out)
    k = s["key"]
    # the quick (narrowed) AlexNet memorizes its 200 images: train accuracy near 1, test lower.
    # Whether dropout narrows the gap needs the default size (test below): at the quick size it
    # does not reliably (measured on seeds 0-2), so that is not asserted here.
    assert k["train_acc_no_dropout"] > 0.9
    assert k["gap_no_dropout"] > 0.03
    h = s["results"]["history"]
    assert set(h) == {"no dropout", "dropout 0.5"}
    assert len(h["dropout 0.5"]["test_acc"]) == s["config"]["epochs"] == 12


@pytest.mark.slow
def test_alexnet_default_size_overfits(tmp_path):
    # ~3-4 minutes on 2 cores. Only what holds whatever the rounding: the net memorises its 200
    # images and tests well below that. Whether dropout narrows the gap flipped for the same seed
    # when a kernel's rounding changed (see docs/experiments.md), so it is recorded, not
    # asserted; the dropout/weight-decay lesson is asserted on the overfitting experiment.
    s = experiments.run("alexnet", tmp_path, seed=SEED, log=None)
    k = s["key"]
    assert k["train_acc_no_dropout"] > 0.95
    assert k["gap_no_dropout"] > 0.03
    assert {"gap_dropout", "test_acc_dropout", "test_acc_no_dropout"} <= set(k)


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in experiments.EXPERIMENTS if n != "alexnet"])
def test_full_size(name, tmp_path):
    s = experiments.run(name, tmp_path, quick=False, seed=SEED, log=None)
    assert s["quick"] is False and (tmp_path / "summary.json").is_file()
