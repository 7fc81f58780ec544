"""fastcnn.checkpoint: round trips, the on-disk format (npz without pickle, JSON header),
atomic writes, clear errors for truncated/corrupted/mismatched files, and exact resume:
2k steps straight == k steps + save + load + k steps, bitwise, for every optimizer."""
import json
import os

import numpy as np
import pytest

from conftest import num_threads
from fastcnn import checkpoint, layers, models, optim, regularizers, schedules, train


def small_model(dtype=np.float64, seed=0):
    # conv, batch norm (buffers), ReLU, max pool, dropout (an rng), affine
    return models.DeepConvNet(input_shape=(1, 8, 8), num_classes=4,
                              conv_channels=(2, 2, 3, 3, 4, 4), hidden_size=5, dropout=0.5,
                              batchnorm=True, dtype=dtype, rng=seed)


def data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 1, 8, 8)), rng.integers(0, 4, n)


def assert_same_state(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        np.testing.assert_array_equal(sa[k], sb[k], err_msg=k)


# ---- round trips -------------------------------------------------------------------------------

def test_round_trip_everything(tmp_path):
    x, y = data()
    model = small_model()
    opt = optim.Adam(model, lr=0.01, weight_decay=1e-3, regularizers=[regularizers.L1(1e-4)])
    sched = schedules.StepLR(opt, step_size=1, gamma=0.5)
    rng = np.random.default_rng(7)
    hist = train.fit(model, opt, (x, y), (x[:8], y[:8]), epochs=2, batch_size=16, rng=rng,
                     scheduler=sched)
    path = str(tmp_path / "run.npz")
    assert checkpoint.save(path, model, opt, scheduler=sched, rng=rng, history=hist, epoch=2,
                           note="hello", params={"a": [1, 2]}) == path
    c = checkpoint.load(path)
    assert type(c.model) is models.DeepConvNet and c.config == model.config
    assert_same_state(c.model, model)
    assert type(c.optimizer) is optim.Adam and c.optimizer.step_count == opt.step_count
    assert c.optimizer.hyperparams() == opt.hyperparams()
    assert [r.config for r in c.optimizer.regularizers] == [r.config for r in opt.regularizers]
    for sa, sb in zip(opt.state, c.optimizer.state):
        for k in sa:
            np.testing.assert_array_equal(sa[k], sb[k])
    assert c.scheduler.state_dict() == sched.state_dict() and c.scheduler.optimizer is c.optimizer
    assert c.rng.bit_generator.state == rng.bit_generator.state
    drop = [m for _, m in model.named_modules() if isinstance(m, layers.Dropout)][0]
    drop2 = [m for _, m in c.model.named_modules() if isinstance(m, layers.Dropout)][0]
    assert drop.rng.bit_generator.state == drop2.rng.bit_generator.state
    assert c.history == hist
    assert c.meta == {"epoch": 2, "note": "hello", "params": {"a": [1, 2]}} and c.epoch == 2
    assert c.fit_kwargs() == {"start_epoch": 2, "rng": c.rng, "scheduler": c.scheduler,
                              "history": c.history}


def test_file_format_is_plain_npz_with_a_json_header(tmp_path):
    model = models.MLP(input_shape=4, num_classes=2, hidden_sizes=(3,), rng=0)
    path = tmp_path / "m.npz"
    checkpoint.save(path, model, optim.Momentum(model))
    with np.load(path, allow_pickle=False) as z:
        assert "__header__" in z.files and z["__header__"].dtype == np.uint8
        header = json.loads(bytes(z["__header__"]).decode())
        assert {"model/0.weight", "model/0.bias", "optim/0/v"} <= set(z.files)
        assert z["model/0.weight"].dtype == np.float32
    assert header["format"] == "fastcnn-checkpoint" and header["format_version"] == 1
    assert header["model_config"]["class"] == "MLP"
    assert header["optimizer"]["class"] == "Momentum" and "library_version" in header
    assert set(header["arrays"]) == set(z.files) - {"__header__"}


def test_model_only_and_plain_sequential(tmp_path):
    seq = layers.Sequential(layers.Conv2D(1, 2, 3, rng=0), layers.ReLU(), layers.Flatten(),
                            layers.Affine(8, 2, rng=0))
    checkpoint.save(tmp_path / "s.npz", seq)
    c = checkpoint.load(tmp_path / "s.npz")
    assert type(c.model) is layers.Sequential and repr(c.model) == repr(seq)
    assert_same_state(c.model, seq)
    assert c.optimizer is None and c.rng is None and c.history is None and c.epoch == 0


def test_load_into_existing_objects(tmp_path):
    model, other = small_model(seed=0), small_model(seed=1)
    opt = optim.RMSProp(model)
    checkpoint.save(tmp_path / "c.npz", model, opt)
    opt_other = optim.RMSProp(other, lr=0.5)
    c = checkpoint.load_into(tmp_path / "c.npz", other, opt_other)
    assert c.model is other and c.optimizer is opt_other and opt_other.lr == opt.lr
    assert_same_state(other, model)


# ---- errors --------------------------------------------------------------------------------------

def test_mismatched_model_names_key_and_shapes(tmp_path):
    checkpoint.save(tmp_path / "c.npz", models.MLP(input_shape=4, hidden_sizes=(3,), rng=0))
    wrong = models.MLP(input_shape=4, hidden_sizes=(5,), rng=0)
    with pytest.raises(checkpoint.CheckpointError,
                       match=r"'0.weight' has shape \(3, 4\) in the state dict but \(5, 4\)"):
        checkpoint.load_into(tmp_path / "c.npz", wrong)
    with pytest.raises(checkpoint.CheckpointError, match="missing keys"):
        checkpoint.load_into(tmp_path / "c.npz", models.MLP(input_shape=4, hidden_sizes=(3, 3),
                                                            rng=0))
    with pytest.raises(checkpoint.CheckpointError, match="holds no optimizer state"):
        checkpoint.load_into(tmp_path / "c.npz", models.MLP(input_shape=4, hidden_sizes=(3,)),
                             optim.SGD(wrong))


def test_missing_truncated_and_corrupted_files(tmp_path):
    model = models.MLP(input_shape=30, hidden_sizes=(40,), dtype=np.float64, rng=0)
    path = tmp_path / "c.npz"
    checkpoint.save(path, model, optim.Adam(model))
    blob = path.read_bytes()

    with pytest.raises(FileNotFoundError):
        checkpoint.load(tmp_path / "nope.npz")

    (tmp_path / "trunc.npz").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(checkpoint.CheckpointError, match="truncated or corrupted"):
        checkpoint.load(tmp_path / "trunc.npz")

    (tmp_path / "garbage.npz").write_bytes(b"not a zip at all" * 10)
    with pytest.raises(checkpoint.CheckpointError, match="cannot read checkpoint"):
        checkpoint.load(tmp_path / "garbage.npz")

    # flip one byte inside the stored weight values
    weight = model[0].weight.data
    start = blob.find(weight.tobytes()[:64])
    assert start > 0
    bad = bytearray(blob)
    bad[start + 100] ^= 0xFF
    (tmp_path / "flip.npz").write_bytes(bytes(bad))
    with pytest.raises(checkpoint.CheckpointError, match="corrupted"):
        checkpoint.load(tmp_path / "flip.npz")

    np.savez(tmp_path / "plain.npz", a=np.zeros(3))
    with pytest.raises(checkpoint.CheckpointError, match="not a fastcnn checkpoint"):
        checkpoint.load(tmp_path / "plain.npz")


def test_manifest_mismatch_is_named(tmp_path):
    model = models.MLP(input_shape=4, hidden_sizes=(3,), rng=0)
    path = tmp_path / "c.npz"
    checkpoint.save(path, model)
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    header = json.loads(bytes(arrays["__header__"]).decode())
    header["arrays"]["model/0.bias"]["shape"] = [4]
    arrays["__header__"] = np.frombuffer(json.dumps(header).encode(), np.uint8)
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(checkpoint.CheckpointError, match=r"'model/0.bias' has shape \(3,\)"):
        checkpoint.load(tmp_path / "bad.npz")
    del arrays["model/0.bias"]
    np.savez(tmp_path / "bad2.npz", **arrays)
    with pytest.raises(checkpoint.CheckpointError, match=r"missing \['model/0.bias'\]"):
        checkpoint.load(tmp_path / "bad2.npz")


def test_meta_must_be_json(tmp_path):
    with pytest.raises(TypeError, match="JSON"):
        checkpoint.save(tmp_path / "c.npz", models.MLP(input_shape=2, hidden_sizes=(2,)),
                        thing=object())
    assert not os.listdir(tmp_path)


def test_writes_are_atomic(tmp_path, monkeypatch):
    model = models.MLP(input_shape=4, hidden_sizes=(3,), rng=0)
    path = tmp_path / "c.npz"
    checkpoint.save(path, model)
    good = path.read_bytes()
    assert os.listdir(tmp_path) == ["c.npz"]          # no temporary file left behind

    def exploding_savez(f, **arrays):
        f.write(b"PK\x03\x04 half a file")
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint.np, "savez", exploding_savez)
    other = models.MLP(input_shape=4, hidden_sizes=(3,), rng=1)
    with pytest.raises(OSError, match="disk full"):
        checkpoint.save(path, other)
    assert path.read_bytes() == good                  # the old checkpoint is intact
    assert os.listdir(tmp_path) == ["c.npz"]
    monkeypatch.undo()
    assert_same_state(checkpoint.load(path).model, model)


# ---- exact resume --------------------------------------------------------------------------------

OPTIMIZERS = [
    ("SGD", lambda m: optim.SGD(m, lr=0.05)),
    ("Momentum", lambda m: optim.Momentum(m, lr=0.05, momentum=0.9)),
    ("Nesterov", lambda m: optim.Nesterov(m, lr=0.05, momentum=0.9, weight_decay=1e-3)),
    ("AdaGrad", lambda m: optim.AdaGrad(m, lr=0.05)),
    ("RMSProp", lambda m: optim.RMSProp(m, lr=0.01, regularizers=[regularizers.L1(1e-4)])),
    ("Adam", lambda m: optim.Adam(m, lr=0.01, weight_decay=1e-3)),
]


def steps(model, opt, rng, k, x, y):
    loss = layers.SoftmaxCrossEntropy()
    model.train()
    for _ in range(k):
        idx = rng.choice(len(x), size=16, replace=False)
        opt.zero_grad()
        loss.forward(model.forward(x[idx]), y[idx])
        model.backward(loss.backward())
        opt.step()


@pytest.mark.parametrize("name, make_opt", OPTIMIZERS, ids=[o[0] for o in OPTIMIZERS])
def test_exact_resume_is_bitwise(tmp_path, name, make_opt):
    x, y = data()
    k = 5
    with num_threads(1):
        straight = small_model()
        opt = make_opt(straight)
        steps(straight, opt, np.random.default_rng(11), 2 * k, x, y)

        first = small_model()
        opt1 = make_opt(first)
        rng1 = np.random.default_rng(11)
        steps(first, opt1, rng1, k, x, y)
        checkpoint.save(tmp_path / "half.npz", first, opt1, rng=rng1, step=k)
        del first, opt1, rng1

        c = checkpoint.load(tmp_path / "half.npz")
        assert c.meta["step"] == k
        steps(c.model, c.optimizer, c.rng, k, x, y)

    assert_same_state(c.model, straight)   # parameters and BatchNorm buffers, bitwise
    assert c.optimizer.step_count == opt.step_count == 2 * k
    for sa, sb in zip(opt.state, c.optimizer.state):
        for key in sa:
            np.testing.assert_array_equal(sa[key], sb[key])


def test_fit_resumes_exactly_from_a_checkpoint_callback(tmp_path):
    x, y = data(50)
    xv, yv = data(10, seed=1)

    def setup():
        model = small_model()
        opt = optim.Adam(model, lr=0.01, weight_decay=1e-3)
        return model, opt, schedules.StepLR(opt, step_size=1, gamma=0.7)

    with num_threads(1):
        model, opt, sched = setup()
        cb = train.Checkpoint(str(tmp_path / "e{epoch}.npz"))
        h_straight = train.fit(model, opt, (x, y), (xv, yv), epochs=4, batch_size=16,
                               rng=np.random.default_rng(3), scheduler=sched, callbacks=[cb])
        c = checkpoint.load(tmp_path / "e2.npz")
        assert c.epoch == 2 and c.history.epochs == 2
        h_resumed = train.fit(c.model, c.optimizer, (x, y), (xv, yv), epochs=4, batch_size=16,
                              **c.fit_kwargs())
    assert h_resumed == h_straight
    assert_same_state(c.model, model)
    assert c.optimizer.lr == opt.lr
