"""The fastcnn command line: exit codes, one-line errors, what `train` writes, exact `--resume`,
`evaluate`, `info`, the progress display, and `experiment --quick` smoke runs.

Runs are tiny (200 digits, 1-3 epochs) so the file stays within a few seconds; the default
`fastcnn train` accuracy is a slow test.
"""
import io
import json
import subprocess
import sys

import numpy as np
import pytest

import fastcnn
from fastcnn import cli, plotting
from fastcnn.data import DatasetNotFoundError

TINY = ["--n-train", "200", "--batch-size", "50", "--seed", "1"]


@pytest.fixture(autouse=True)
def one_thread():
    """Results do not depend on the thread count; one thread (ours and, when threadpoolctl is
    installed, NumPy's BLAS) keeps these tiny runs fast on a busy host, where spinning thread
    pools slow small matrix products down by 10x or more."""
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


def run(argv, capsys):
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


# ------------------------------------------------------------------------ exit codes, errors

def test_no_command_is_a_usage_error(capsys):
    code, out, err = run([], capsys)
    assert code == 2
    assert err.strip().count("\n") == 0 and "choose a command" in err


@pytest.mark.parametrize("argv, fragment", [
    (["train", "--lr", "fast"], "argument --lr: invalid number: 'fast'"),
    (["train", "--epochs", "0"], "argument --epochs: must be >= 1"),
    (["train", "--model", "resnet"], "argument --model: invalid choice: 'resnet'"),
    (["train", "--init", "magic"], "unknown init 'magic'"),
    (["train", "--weight-decay", "-1"], "must be a finite number >= 0"),
    (["experiment", "nope"], "argument NAME: invalid choice: 'nope'"),
    (["bogus"], "invalid choice: 'bogus'"),
    (["evaluate"], "the following arguments are required: CHECKPOINT"),
])
def test_usage_errors_exit_2_with_one_line(argv, fragment, capsys):
    code, out, err = run(argv, capsys)
    assert code == 2
    assert fragment in err
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err


def test_flag_combination_errors_exit_2(tmp_path, capsys):
    code, _, err = run(["train", "--dropout", "0.5", "--out", str(tmp_path)], capsys)
    assert code == 2 and "--model simple has no batch norm or dropout" in err
    code, _, err = run(["train", "--dataset", "digits", "--data", str(tmp_path)], capsys)
    assert code == 2 and "--data does not apply to --dataset digits" in err
    code, _, err = run(["train", "--image-shape", "1,8,8"], capsys)
    assert code == 2 and "synthetic only" in err
    code, _, err = run(["train", "--model", "alexnet-small", "--out", str(tmp_path)], capsys)
    assert code == 2 and "3x32x32" in err
    assert len(err.strip().splitlines()) == 1


def test_missing_data_is_a_runtime_error_without_traceback(tmp_path, capsys):
    code, out, err = run(["train", "--dataset", "mnist", "--data", str(tmp_path),
                          "--out", str(tmp_path / "o")], capsys)
    assert code == 1
    assert "train-images-idx3-ubyte" in err and str(tmp_path) in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_debug_shows_the_exception(tmp_path):
    with pytest.raises(DatasetNotFoundError):
        cli.main(["train", "--debug", "--dataset", "mnist", "--data", str(tmp_path)])
    with pytest.raises(DatasetNotFoundError):   # --debug also works before the command
        cli.main(["--debug", "train", "--dataset", "mnist", "--data", str(tmp_path)])


def test_missing_sklearn_says_how_to_install(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    code, _, err = run(["train", "--out", str(tmp_path)], capsys)
    assert code == 1 and 'pip install "fastcnn[data]"' in err


def test_evaluate_missing_and_corrupted_checkpoint(tmp_path, capsys):
    code, _, err = run(["evaluate", str(tmp_path / "none.npz")], capsys)
    assert code == 1 and "does not exist" in err
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    code, _, err = run(["evaluate", str(bad)], capsys)
    assert code == 1 and "bad.npz" in err and "Traceback" not in err


# ------------------------------------------------------------------------ info, version, -m

def test_info(capsys):
    code, out, _ = run(["info"], capsys)
    assert code == 0
    for fragment in ("fastcnn", "openmp", "fastcnn threads", "blas", "optional", "data folder"):
        assert fragment in out


def test_python_dash_m_version(tmp_path):
    # run outside the checkout: `python -m` puts the cwd first on sys.path
    p = subprocess.run([sys.executable, "-m", "fastcnn", "--version"], capture_output=True,
                       text=True, timeout=120, cwd=tmp_path)
    assert p.returncode == 0 and p.stdout.strip() == f"fastcnn {fastcnn.__version__}"


def test_experiment_list(capsys):
    code, out, _ = run(["experiment", "list"], capsys)
    assert code == 0
    for name in ("activations", "init", "batchnorm", "optimizers", "lr-schedules",
                 "overfitting", "cnn", "alexnet"):
        assert name in out


# ------------------------------------------------------------------------ train / resume / evaluate

def test_train_writes_everything(tmp_path, capsys):
    out_dir = tmp_path / "run"
    code, out, err = run(["train", "--epochs", "2", "--out", str(out_dir)] + TINY, capsys)
    assert code == 0, err
    for name in ("checkpoint.npz", "history.json", "history.csv", "results.json",
                 "config.json"):
        assert (out_dir / name).is_file(), name
    assert (out_dir / "curves.png").is_file() == plotting.available()
    # not a terminal: one plain line per epoch, no carriage returns
    assert "\r" not in out
    lines = [ln for ln in out.splitlines() if ln.startswith("epoch ")]
    assert len(lines) == 2 and "train loss" in lines[0] and "val loss" in lines[0]
    assert "test: loss" in out and "accuracy" in out
    h = json.loads((out_dir / "history.json").read_text())
    assert len(h["epoch_train_loss"]) == 2 and len(h["iter_loss"]) == 2 * 4
    rows = (out_dir / "history.csv").read_text().splitlines()
    assert rows[0] == "epoch,train_loss,train_acc,val_loss,val_acc,lr" and len(rows) == 3
    res = json.loads((out_dir / "results.json").read_text())
    assert 0 <= res["test_acc"] <= 1 and res["epochs"] == 2
    cfg = json.loads((out_dir / "config.json").read_text())
    assert cfg["train_config"]["optimizer"] == "adam" and cfg["model"]["class"] == "SimpleConvNet"


def test_default_output_folder_is_under_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, out, _ = run(["train", "--epochs", "1", "--name", "demo"] + TINY, capsys)
    assert code == 0 and (tmp_path / "runs" / "demo" / "checkpoint.npz").is_file()
    code, out, _ = run(["train", "--epochs", "1", "--quiet"] + TINY, capsys)
    assert code == 0
    made = sorted(p.name for p in (tmp_path / "runs").iterdir())
    assert any(n.startswith("simple-digits-") for n in made)
    assert "epoch 1/1" not in out and "test: loss" in out        # --quiet: final result only


def test_resume_reproduces_the_uninterrupted_run(tmp_path, capsys):
    flags = TINY + ["--optimizer", "momentum", "--schedule", "step", "--step-size", "1"]
    a, b = tmp_path / "a", tmp_path / "b"
    assert cli.main(["train", "--epochs", "3", "--out", str(a)] + flags) == 0
    assert cli.main(["train", "--epochs", "2", "--out", str(b)] + flags) == 0
    capsys.readouterr()
    code, out, err = run(["train", "--resume", str(b / "checkpoint.npz"), "--epochs", "3"],
                         capsys)
    assert code == 0, err
    assert "resuming" in out and "epoch 3/3" in out and "epoch 1/3" not in out
    ha = json.loads((a / "history.json").read_text())
    hb = json.loads((b / "history.json").read_text())
    assert ha == hb                              # every loss, accuracy and rate, bit for bit
    from fastcnn import checkpoint
    ma, mb = checkpoint.load(a / "checkpoint.npz"), checkpoint.load(b / "checkpoint.npz")
    for (ka, va), (kb, vb) in zip(ma.model.state_dict().items(), mb.model.state_dict().items()):
        assert ka == kb
        np.testing.assert_array_equal(va, vb)


def test_resume_rejects_changed_settings(tmp_path, capsys):
    assert cli.main(["train", "--epochs", "1", "--out", str(tmp_path)] + TINY) == 0
    capsys.readouterr()
    ck = str(tmp_path / "checkpoint.npz")
    code, _, err = run(["train", "--resume", ck, "--epochs", "2", "--lr", "0.1"], capsys)
    assert code == 2 and "--lr" in err
    code, _, err = run(["train", "--resume", ck, "--epochs", "1"], capsys)
    assert code == 2 and "already done 1 epochs" in err


def test_evaluate(tmp_path, capsys):
    assert cli.main(["train", "--epochs", "2", "--out", str(tmp_path)] + TINY) == 0
    capsys.readouterr()
    ck = str(tmp_path / "checkpoint.npz")
    code, out, err = run(["evaluate", ck, "--out", str(tmp_path / "ev")], capsys)
    assert code == 0, err
    assert "digits test (359 images)" in out and "confusion matrix" in out
    ev = json.loads((tmp_path / "ev" / "evaluation.json").read_text())
    cm = np.array(ev["confusion_matrix"])
    assert cm.shape == (10, 10) and cm.sum() == 359
    assert abs(np.trace(cm) / 359 - ev["accuracy"]) < 1e-12
    res = json.loads((tmp_path / "results.json").read_text())
    assert abs(ev["accuracy"] - res["test_acc"]) < 1e-12     # same split as training used
    assert (tmp_path / "ev" / "confusion.png").is_file() == plotting.available()
    code, out, _ = run(["evaluate", ck, "--split", "val"], capsys)
    assert code == 0 and "digits val (180 images)" in out


def test_evaluate_a_checkpoint_saved_from_python(tmp_path, capsys):
    from fastcnn import checkpoint, data, models, optim, train
    ds = data.load_dataset("digits", resize=28, n_train=100)
    model = models.SimpleConvNet(input_shape=(1, 28, 28), conv_channels=4, hidden_size=16,
                                 rng=0)
    opt = optim.SGD(model, lr=0.01)
    train.fit(model, opt, ds.train, epochs=1, batch_size=50)
    ck = tmp_path / "api.npz"
    checkpoint.save(ck, model, opt, epoch=1)
    code, _, err = run(["evaluate", str(ck)], capsys)
    assert code == 2 and "--dataset" in err                   # no train config inside
    code, out, err = run(["evaluate", str(ck), "--dataset", "digits"], capsys)
    assert code == 0, err                                     # resized to the model's 28x28
    assert "digits test (359 images)" in out and "epoch 1" in out


def test_train_mlp_with_regularization_and_schedule(tmp_path, capsys):
    code, out, err = run(["train", "--model", "mlp", "--hidden", "32,32", "--batchnorm",
                          "--dropout", "0.1", "--weight-decay", "1e-4", "--l1", "1e-5",
                          "--optimizer", "nesterov", "--schedule", "cosine", "--epochs", "2",
                          "--out", str(tmp_path)] + TINY, capsys)
    assert code == 0, err
    assert "Nesterov" in out and "cosine schedule" in out and "weight decay" in out
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert cfg["model"]["batchnorm"] is True and cfg["model"]["dropout"] == 0.1


def test_train_synthetic_and_resize(tmp_path, capsys):
    code, out, err = run(["train", "--dataset", "synthetic", "--image-shape", "1,12,12",
                          "--n-samples", "300", "--epochs", "1", "--out", str(tmp_path / "s")],
                         capsys)
    assert code == 0, err and "input (1, 12, 12)" in out
    code, out, err = run(["train", "--resize", "16", "--epochs", "1",
                          "--out", str(tmp_path / "r")] + TINY, capsys)
    assert code == 0, err
    assert "input (1, 16, 16)" in out


def test_diverging_run_exits_1(tmp_path, capsys):
    code, _, err = run(["train", "--model", "mlp", "--optimizer", "sgd", "--lr", "1e6",
                        "--init", "10", "--epochs", "3", "--out", str(tmp_path)] + TINY, capsys)
    assert code == 1 and "diverged" in err and "Traceback" not in err


def test_without_matplotlib_writes_json_and_says_how(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(plotting, "available", lambda: False)
    code, out, _ = run(["train", "--epochs", "1", "--out", str(tmp_path)] + TINY, capsys)
    assert code == 0
    assert not (tmp_path / "curves.png").exists() and (tmp_path / "history.json").is_file()
    assert 'pip install "fastcnn[plot]"' in out
    code, out, _ = run(["experiment", "activations", "--quick", "--out", str(tmp_path / "x")],
                       capsys)
    assert code == 0 and 'pip install "fastcnn[plot]"' in out
    assert (tmp_path / "x" / "summary.json").is_file()
    assert not list((tmp_path / "x").glob("*.png"))


# ------------------------------------------------------------------------ progress display

def _events():
    yield "batch", {"epoch": 1, "epochs": 2, "iteration": 1, "iterations": 2,
                    "global_iteration": 1, "loss": 2.0, "lr": 0.1}
    yield "batch", {"epoch": 1, "epochs": 2, "iteration": 2, "iterations": 2,
                    "global_iteration": 2, "loss": 1.0, "lr": 0.1}
    yield "epoch", {"epoch": 1, "epochs": 2, "train_loss": 1.2, "train_acc": 0.5,
                    "val_loss": 1.3, "val_acc": 0.4, "lr": 0.1, "seconds": 0.5}


class _Tap:
    count, correct = 10, 7


def test_progress_bar_on_a_terminal(monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)           # the built-in bar
    s = io.StringIO()
    p = cli.Progress(_Tap(), stream=s, bar=True)
    for e, info in _events():
        p(e, info)
    text = s.getvalue()
    assert "\r" in text and "[" in text and "loss 1.5000 acc 0.7000" in text
    assert text.rstrip().endswith("lr 0.1  0.5s")
    assert "epoch 1/2  train loss 1.2000 acc 0.5000  val loss 1.3000 acc 0.4000" in text


def test_progress_bar_with_tqdm():
    tqdm = pytest.importorskip("tqdm")
    s = io.StringIO()
    p = cli.Progress(_Tap(), stream=s, bar=True)
    events = list(_events())
    for e, info in events[:2]:
        p(e, info)
    assert isinstance(p._tqdm, tqdm.tqdm) and p._tqdm.n == 2 and p._tqdm.total == 2
    assert p._tqdm.postfix == "loss 1.5000 acc 0.7000"
    p(*events[2])
    assert p._tqdm is None                                   # closed at the epoch's end
    text = s.getvalue()
    assert "epoch 1/2:" in text and "0/2" in text            # tqdm's bar, on the given stream
    assert text.endswith("epoch 1/2  train loss 1.2000 acc 0.5000  val loss 1.3000 acc 0.4000  "
                         "lr 0.1  0.5s\n")


def test_progress_plain_lines():
    s = io.StringIO()
    p = cli.Progress(_Tap(), stream=s, bar=False)
    for e, info in _events():
        p(e, info)
    assert s.getvalue() == "epoch 1/2  train loss 1.2000 acc 0.5000  val loss 1.3000 acc " \
                           "0.4000  lr 0.1  0.5s\n"


# ------------------------------------------------------------------------ experiments via the CLI

def test_experiment_quick_via_cli(tmp_path, capsys):
    code, out, err = run(["experiment", "optimizers", "--quick", "--out", str(tmp_path),
                          "--dpi", "40"], capsys)
    assert code == 0, err
    s = json.loads((tmp_path / "summary.json").read_text())
    assert s["experiment"] == "optimizers" and s["quick"] is True
    assert "adam_final_loss" in out


@pytest.mark.slow
def test_default_train_reaches_97_percent(tmp_path, capsys):
    code, out, err = run(["train", "--out", str(tmp_path)], capsys)
    assert code == 0, err
    res = json.loads((tmp_path / "results.json").read_text())
    assert res["test_acc"] >= 0.97
