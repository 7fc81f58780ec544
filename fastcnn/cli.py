"""The ``fastcnn`` command line: ``train``, ``evaluate``, ``info`` and ``experiment NAME``.

A thin layer over the Python API (fastcnn.data, models, optim, schedules, train, checkpoint,
experiments): argparse flags map onto the ``TrainConfig`` dataclass (nanoGPT's GPTConfig habit),
which is also stored in every checkpoint so ``evaluate`` and ``--resume`` rebuild the same run.
Exit codes: 0 success, 1 runtime error (one line, no traceback unless ``--debug``), 2 usage
error (one line), 130 interrupted. Reference: docs/cli.md.
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import math
import shutil
import sys
import time
from pathlib import Path

import numpy as np

__all__ = ["main", "TrainConfig", "UsageError", "build_parser", "run_training"]

PROG = "fastcnn"

MODEL_NAMES = ("simple", "deep", "alexnet", "alexnet-small", "mlp")
DATASET_NAMES = ("digits", "mnist", "fashion-mnist", "cifar10", "synthetic")
OPTIMIZER_NAMES = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam")
SCHEDULE_NAMES = ("constant", "step", "exponential", "cosine", "plateau")
# default learning rate per optimizer when --lr is not given (tuned on the digits defaults)
DEFAULT_LR = {"sgd": 0.05, "momentum": 0.02, "nesterov": 0.02, "adagrad": 0.02,
              "rmsprop": 0.001, "adam": 0.002}


class UsageError(Exception):
    """A bad flag or flag combination: exit status 2, one line on stderr."""


@dataclasses.dataclass
class TrainConfig:
    """Everything ``fastcnn train`` needs; each field is one flag (``batch_size`` is
    ``--batch-size``). Stored in checkpoints as ``meta["train_config"]``."""

    # what to learn from
    dataset: str = "digits"            # digits | mnist | fashion-mnist | cifar10 | synthetic
    data: str | None = None            # folder/file of local data (mnist, fashion-mnist, cifar10)
    resize: int | None = None          # resize images to RESIZE x RESIZE (bilinear); digits: 8x8
    n_train: int | None = None         # keep only the first N training images (class-balanced)
    image_shape: tuple | None = None   # synthetic only: C,H,W (default 1,28,28)
    n_samples: int | None = None       # synthetic only: images in total (default 2000)
    # the model
    model: str = "simple"              # simple | deep | alexnet | alexnet-small | mlp
    init: str = "he"                   # he | xavier | glorot | normal | a std such as 0.01
    batchnorm: bool = False            # deep, mlp, alexnet*: BatchNorm before each activation
    dropout: float | None = None       # None: the model's own default (deep/alexnet 0.5, mlp 0)
    hidden: tuple = (100, 100, 100, 100)  # mlp only: hidden layer widths
    activation: str = "relu"           # mlp only: relu | sigmoid | tanh | leaky_relu
    dtype: str = "float32"             # float32 | float64
    # how to learn
    optimizer: str = "adam"            # sgd | momentum | nesterov | adagrad | rmsprop | adam
    lr: float | None = None            # None: DEFAULT_LR[optimizer] (adam 0.002)
    momentum: float = 0.9              # momentum / nesterov
    schedule: str = "constant"         # constant | step | exponential | cosine | plateau
    step_size: int | None = None       # step: epochs between decays (default epochs // 3)
    gamma: float | None = None         # step: 0.1, exponential: 0.9, plateau factor: 0.5
    epochs: int = 20
    batch_size: int = 32
    weight_decay: float = 0.0          # L2 hook: grad += weight_decay * W (weights only)
    l1: float = 0.0                    # L1 hook: grad += l1 * sign(W) (weights only)
    clip_grad_norm: float | None = None
    seed: int = 0                      # data split, weights, shuffling and dropout
    # where
    out: str | None = None             # default runs/<name or model-dataset-timestamp>

    def to_dict(self):
        d = dataclasses.asdict(self)
        d["image_shape"] = list(self.image_shape) if self.image_shape else None
        d["hidden"] = list(self.hidden)
        return d

    @classmethod
    def from_dict(cls, d):
        names = {f.name for f in dataclasses.fields(cls)}
        d = {k: v for k, v in d.items() if k in names}
        for k in ("image_shape", "hidden"):
            if d.get(k) is not None:
                d[k] = tuple(d[k])
        return cls(**d)

    @property
    def learning_rate(self):
        return DEFAULT_LR[self.optimizer] if self.lr is None else self.lr


# -------------------------------------------------------------------------------- argparse

class _Parser(argparse.ArgumentParser):
    """Usage errors as one line: ``fastcnn train: error: ... (see fastcnn train --help)``."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _positive_int(text):
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid positive integer: {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {v}")
    return v


def _nonneg_float(text):
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number: {text!r}") from None
    if not (v >= 0 and math.isfinite(v)):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return v


def _positive_float(text):
    v = _nonneg_float(text)
    if v == 0:
        raise argparse.ArgumentTypeError("must be > 0")
    return v


def _int_list(text):
    try:
        vals = tuple(int(s) for s in text.replace("x", ",").split(",") if s.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") \
            from None
    if not vals or any(v < 1 for v in vals):
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return vals


def _init_spec(text):
    """A weight-init name known to fastcnn.init, or a positive std such as 0.01."""
    try:
        std = float(text)
    except ValueError:
        from fastcnn import init
        try:
            init.get(text)
        except (ValueError, TypeError):
            raise argparse.ArgumentTypeError(
                f"unknown init {text!r}: use he, xavier, glorot, normal or a std like 0.01") \
                from None
        return text
    if not (std > 0 and math.isfinite(std)):
        raise argparse.ArgumentTypeError(f"a std must be > 0, got {text}")
    return text


def _common(debug_default):
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--debug", action="store_true", default=debug_default,
                   help="show the full traceback of runtime errors")
    return p


def build_parser():
    common = _common(argparse.SUPPRESS)
    parser = _Parser(prog=PROG, description="fastcnn: fast CPU convolutional networks for "
                     "learning and experimenting.", parents=[_common(False)])
    from fastcnn import __version__
    parser.add_argument("--version", action="version", version=f"fastcnn {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    # ---- train
    d = TrainConfig()
    t = sub.add_parser("train", parents=[common], help="train a model and save a checkpoint",
                       description="Train a model (default: SimpleConvNet with Adam on the "
                       "bundled digits) and write a checkpoint, the history (JSON, CSV) and "
                       "loss/accuracy curves (PNG) into the output folder.",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    g = t.add_argument_group("data")
    g.add_argument("--dataset", choices=DATASET_NAMES, default=d.dataset)
    g.add_argument("--data", metavar="PATH", help="folder or file holding the data set's "
                   "files (mnist, fashion-mnist, cifar10); default $FASTCNN_DATA/<dataset> "
                   "or ~/.fastcnn/data/<dataset>")
    g.add_argument("--resize", type=_positive_int, metavar="N",
                   help="resize images to N x N (e.g. 28 for MNIST-shaped models)")
    g.add_argument("--n-train", type=_positive_int, metavar="N",
                   help="use only N training images")
    g.add_argument("--image-shape", type=_int_list, metavar="C,H,W",
                   help="synthetic data: image shape (default 1,28,28)")
    g.add_argument("--n-samples", type=_positive_int, metavar="N",
                   help="synthetic data: number of images (default 2000)")
    g = t.add_argument_group("model")
    g.add_argument("--model", choices=MODEL_NAMES, default=d.model)
    g.add_argument("--init", type=_init_spec, default=d.init, metavar="NAME|STD",
                   help="weight init: he, xavier (1/sqrt(fan_in)), glorot (Glorot's fan_avg), "
                   "normal (std 0.01) or a std")
    g.add_argument("--batchnorm", action="store_true", help="batch norm before activations "
                   "(deep, mlp, alexnet, alexnet-small)")
    g.add_argument("--dropout", type=_nonneg_float, metavar="P",
                   help="dropout probability (deep, mlp, alexnet*; default: the model's own)")
    g.add_argument("--hidden", type=_int_list, default=d.hidden, metavar="W,W,...",
                   help="mlp: hidden layer widths")
    g.add_argument("--activation", choices=("relu", "sigmoid", "tanh", "leaky_relu"),
                   default=d.activation, help="mlp: activation function")
    g.add_argument("--dtype", choices=("float32", "float64"), default=d.dtype)
    g = t.add_argument_group("optimization")
    g.add_argument("--optimizer", choices=OPTIMIZER_NAMES, default=d.optimizer)
    g.add_argument("--lr", type=_positive_float, help="learning rate (default per optimizer: "
                   + ", ".join(f"{k} {v}" for k, v in DEFAULT_LR.items()) + ")")
    g.add_argument("--momentum", type=_nonneg_float, default=d.momentum,
                   help="momentum and nesterov: the momentum factor")
    g.add_argument("--schedule", choices=SCHEDULE_NAMES, default=d.schedule,
                   help="learning-rate schedule, stepped once per epoch")
    g.add_argument("--step-size", type=_positive_int, metavar="EPOCHS",
                   help="step schedule: epochs between decays (default epochs // 3)")
    g.add_argument("--gamma", type=_positive_float,
                   help="decay factor (step 0.1, exponential 0.9, plateau 0.5)")
    g.add_argument("--epochs", type=_positive_int, default=d.epochs,
                   help="total number of epochs (also when resuming)")
    g.add_argument("--batch-size", type=_positive_int, default=d.batch_size)
    g.add_argument("--weight-decay", type=_nonneg_float, default=d.weight_decay,
                   help="L2 regularization strength (weights only)")
    g.add_argument("--l1", type=_nonneg_float, default=d.l1,
                   help="L1 regularization strength (weights only)")
    g.add_argument("--clip-grad-norm", type=_positive_float, metavar="MAX",
                   help="scale gradients to this global L2 norm")
    g.add_argument("--seed", type=int, default=d.seed,
                   help="seed of the data split, weights, shuffling and dropout")
    g = t.add_argument_group("run")
    g.add_argument("--threads", type=_positive_int, help="fastcnn kernel threads "
                   "(default: all available cores, or $FASTCNN_NUM_THREADS)")
    g.add_argument("--out", metavar="DIR", help="output folder (default runs/<name>)")
    g.add_argument("--name", help="run name: output folder runs/NAME (default "
                   "<model>-<dataset>-<YYYYmmdd-HHMMSS>)")
    g.add_argument("--resume", metavar="CHECKPOINT", help="continue the run saved in "
                   "CHECKPOINT up to --epochs (output folder: the checkpoint's)")
    g.add_argument("--quiet", action="store_true", help="print only the final result")
    t.set_defaults(handler=cmd_train)

    # ---- evaluate
    e = sub.add_parser("evaluate", parents=[common], help="accuracy, loss and confusion matrix "
                       "of a checkpoint", description="Evaluate a checkpoint on a split of its "
                       "data set: loss, accuracy, per-class accuracy and the confusion matrix.")
    e.add_argument("checkpoint", metavar="CHECKPOINT")
    e.add_argument("--dataset", choices=DATASET_NAMES,
                   help="data set (default: the one the checkpoint was trained on)")
    e.add_argument("--data", metavar="PATH", help="folder or file of the data set's files")
    e.add_argument("--split", choices=("test", "val", "train"), default="test")
    e.add_argument("--batch-size", type=_positive_int, default=500)
    e.add_argument("--threads", type=_positive_int)
    e.add_argument("--out", metavar="DIR",
                   help="also write evaluation.json and confusion.png into DIR")
    e.set_defaults(handler=cmd_evaluate)

    # ---- info
    i = sub.add_parser("info", parents=[common], help="build configuration, threads, BLAS",
                       description="Print fastcnn's build configuration (compiler flags, "
                       "OpenMP), thread counts, BLAS library, SIMD level and optional extras.")
    i.set_defaults(handler=cmd_info)

    # ---- experiment
    from fastcnn.experiments import EXPERIMENTS
    x = sub.add_parser("experiment", parents=[common], help="run one of the study's "
                       "experiments (plots + JSON)",
                       description="Run an experiment of the study notes; it writes PNG plots "
                       "and summary.json into the output folder. NAME 'list' lists them, 'all' "
                       "runs every one.", formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="experiments:\n" + "\n".join(
                           f"  {n:13s} {EXPERIMENTS[n].describe}" for n in EXPERIMENTS))
    x.add_argument("name", metavar="NAME", choices=tuple(EXPERIMENTS) + ("all", "list"),
                   help="one of: " + ", ".join(EXPERIMENTS) + ", all, list")
    x.add_argument("--quick", action="store_true", help="a reduced size for tests and smoke "
                   "runs (seconds instead of minutes)")
    x.add_argument("--out", metavar="DIR", help="output folder (default "
                   "runs/experiment-NAME; with 'all', one subfolder per experiment)")
    x.add_argument("--seed", type=int, default=0)
    x.add_argument("--threads", type=_positive_int)
    x.add_argument("--dpi", type=_positive_int, default=80, help="resolution of the PNGs")
    x.set_defaults(handler=cmd_experiment)
    return parser


# -------------------------------------------------------------------------------- helpers

def _set_threads(n):
    if n is None:
        return
    import fastcnn
    try:
        fastcnn.set_num_threads(n)
    except ValueError as err:
        raise UsageError(f"--threads: {err}") from None


def _out(*a, file=None):
    print(*a, file=file or sys.stdout, flush=True)


def _load_data(cfg: TrainConfig):
    from fastcnn import data
    kw = {}
    if cfg.dataset == "synthetic":
        kw["image_shape"] = cfg.image_shape or (1, 28, 28)
        kw["n_samples"] = cfg.n_samples or 2000
    elif cfg.image_shape or cfg.n_samples:
        raise UsageError("--image-shape and --n-samples apply to --dataset synthetic only")
    if cfg.data is not None and cfg.dataset in ("digits", "synthetic"):
        raise UsageError(f"--data does not apply to --dataset {cfg.dataset} (it needs no file)")
    try:
        return data.load_dataset(cfg.dataset, cfg.data, seed=cfg.seed, resize=cfg.resize,
                                 n_train=cfg.n_train, **kw)
    except ValueError as err:
        if "n_train" in str(err):
            raise UsageError(f"--n-train: {err}") from None
        raise


def _weight_init(spec):
    try:
        return float(spec)
    except ValueError:
        return spec


def build_model(cfg: TrainConfig, input_shape, num_classes):
    """The model ``cfg`` names, for ``input_shape`` images; UsageError for unsupported flags
    and for input shapes the model cannot take."""
    try:
        return _build_model(cfg, input_shape, num_classes)
    except ValueError as err:
        hint = {"alexnet-small": "; it needs 3x32x32 images (e.g. --dataset cifar10, or "
                "--dataset synthetic --image-shape 3,32,32)",
                "alexnet": "; it needs 3x227x227 images",
                "deep": "; it needs at least 28x28 images (e.g. --resize 28)"}.get(cfg.model, "")
        raise UsageError(f"--model {cfg.model}: {err}{hint}") from None


def _build_model(cfg, input_shape, num_classes):
    from fastcnn import models
    shape = tuple(int(s) for s in input_shape)
    rng = np.random.default_rng(cfg.seed)
    common = dict(input_shape=shape, num_classes=num_classes, dtype=np.dtype(cfg.dtype),
                  weight_init=_weight_init(cfg.init), rng=rng)
    name = cfg.model
    if name == "simple":
        if cfg.batchnorm or cfg.dropout:
            raise UsageError("--model simple has no batch norm or dropout; use --model deep, "
                             "mlp, alexnet or alexnet-small")
        # the book's 5x5 filters do not fit 8x8 digits well: 3x3 with padding 1 there
        small = min(shape[1:]) < 16
        return models.SimpleConvNet(kernel_size=3 if small else 5, padding=1 if small else 0,
                                    **common)
    opt = {} if cfg.dropout is None else {"dropout": cfg.dropout}
    if name == "deep":
        return models.DeepConvNet(batchnorm=cfg.batchnorm, **opt, **common)
    if name == "mlp":
        return models.MLP(hidden_sizes=cfg.hidden, activation=cfg.activation,
                          batchnorm=cfg.batchnorm, **opt, **common)
    variant = "small" if name == "alexnet-small" else "original"
    if shape[0] != 3:
        raise ValueError(f"input has {shape[0]} channel(s), not 3")
    return models.AlexNet(variant=variant, norm="batchnorm" if cfg.batchnorm else "lrn",
                          **opt, **common)


def build_optimizer(cfg: TrainConfig, model):
    from fastcnn import optim, regularizers
    regs = [regularizers.L1(cfg.l1)] if cfg.l1 > 0 else []
    kw = dict(lr=cfg.learning_rate, weight_decay=cfg.weight_decay, regularizers=regs)
    name = cfg.optimizer
    if name in ("momentum", "nesterov"):
        if not 0 < cfg.momentum < 1:
            raise UsageError(f"--momentum must be in (0, 1) for {name}, got {cfg.momentum}")
        kw["momentum"] = cfg.momentum
    cls = {"sgd": optim.SGD, "momentum": optim.Momentum, "nesterov": optim.Nesterov,
           "adagrad": optim.AdaGrad, "rmsprop": optim.RMSProp, "adam": optim.Adam}[name]
    return cls(model, **kw)


def build_schedule(cfg: TrainConfig, optimizer):
    from fastcnn import schedules
    s = cfg.schedule
    if s == "constant":
        return None
    if s == "step":
        return schedules.StepLR(optimizer, step_size=cfg.step_size or max(1, cfg.epochs // 3),
                                gamma=cfg.gamma or 0.1)
    if s == "exponential":
        return schedules.ExponentialLR(optimizer, gamma=cfg.gamma or 0.9)
    if s == "cosine":
        return schedules.CosineLR(optimizer, T_max=cfg.epochs)
    if cfg.gamma is not None and cfg.gamma >= 1:
        raise UsageError(f"--gamma must be < 1 for the plateau schedule, got {cfg.gamma}")
    return schedules.ReduceLROnPlateau(optimizer, factor=cfg.gamma or 0.5, patience=2,
                                       monitor="val_loss")


# -------------------------------------------------------------------------------- progress

class _AccuracyTap:
    """Wraps the loss layer to remember the last batch's accuracy for the live progress bar
    (fit's batch events report the loss only). Forward/backward are the loss layer's own."""

    def __init__(self, loss):
        self.loss = loss
        self.correct = 0
        self.count = 0

    def forward(self, logits, labels):
        self.correct = int(np.count_nonzero(np.argmax(logits, axis=1) == labels))
        self.count = len(labels)
        return self.loss.forward(logits, labels)

    def backward(self, *a, **k):
        return self.loss.backward(*a, **k)


class Progress:
    """fit's ``progress`` callback. On a terminal: a live bar per epoch (running loss and
    accuracy; tqdm when installed); otherwise, or after each epoch, one plain line per epoch."""

    def __init__(self, tap=None, stream=None, quiet=False, bar=None):
        self.stream = stream or sys.stdout
        self.tap = tap
        self.quiet = quiet
        self.bar = (self.stream.isatty() if bar is None else bar) and not quiet
        self._tqdm = None
        self._reset()

    def _reset(self):
        self.loss_sum = 0.0
        self.seen = 0
        self.correct = 0
        self._last_draw = 0.0

    def __call__(self, event, info):
        if event == "batch":
            n = self.tap.count if self.tap is not None else 1
            self.loss_sum += info["loss"] * n
            self.seen += n
            if self.tap is not None:
                self.correct += self.tap.correct
            if self.bar:
                self._draw(info)
        elif event == "epoch":
            self._end_bar()
            if not self.quiet:
                print(format_epoch(info), file=self.stream, flush=True)
            self._reset()

    def _postfix(self):
        loss = self.loss_sum / max(self.seen, 1)
        s = f"loss {loss:.4f}"
        if self.tap is not None:
            s += f" acc {self.correct / max(self.seen, 1):.4f}"
        return s

    def _draw(self, info):
        it, its = info["iteration"], info["iterations"]
        try:
            from tqdm import tqdm
        except ImportError:
            tqdm = None
        if tqdm is not None:
            if self._tqdm is None:
                self._tqdm = tqdm(total=its, desc=f"epoch {info['epoch']}/{info['epochs']}",
                                  file=self.stream, leave=False, dynamic_ncols=True)
            self._tqdm.update(1)
            self._tqdm.set_postfix_str(self._postfix(), refresh=False)
            return
        now = time.perf_counter()
        if it != its and now - self._last_draw < 0.1:     # redraw at most 10 times a second
            return
        self._last_draw = now
        width = 24
        fill = int(width * it / its)
        bar = "#" * fill + "-" * (width - fill)
        line = f"\repoch {info['epoch']}/{info['epochs']} [{bar}] {it}/{its} {self._postfix()}"
        cols = shutil.get_terminal_size((80, 20)).columns
        self.stream.write(line[:cols] + "\x1b[K")
        self.stream.flush()

    def _end_bar(self):
        if self._tqdm is not None:
            self._tqdm.close()
            self._tqdm = None
        elif self.bar:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


def format_epoch(info):
    width = len(str(info["epochs"]))
    s = (f"epoch {info['epoch']:>{width}}/{info['epochs']}  "
         f"train loss {info['train_loss']:.4f} acc {info['train_acc']:.4f}")
    if info.get("val_loss") is not None:
        s += f"  val loss {info['val_loss']:.4f} acc {info['val_acc']:.4f}"
    return s + f"  lr {info['lr']:.3g}  {info['seconds']:.1f}s"


# -------------------------------------------------------------------------------- train

class _SaveCheckpoint:
    """fit callback: write ``path`` after every epoch with the train config in its metadata,
    so an interrupted run resumes with ``--resume`` (fastcnn.train.Checkpoint takes no extra
    metadata, hence this small twin)."""

    def __init__(self, path, meta):
        self.path, self.meta, self.ctx = path, meta, None

    def on_train_begin(self, context):
        self.ctx = context

    def on_epoch_end(self, epoch, history, model, optimizer):
        from fastcnn import checkpoint
        checkpoint.save(self.path, model, optimizer, scheduler=self.ctx.scheduler,
                        rng=self.ctx.rng, history=history, epoch=epoch, **self.meta)
        return False


def write_history(out_dir, history):
    """history.json (``History.to_dict()``) and history.csv (one row per epoch)."""
    from fastcnn.experiments._common import write_json
    h = history.to_dict()
    write_json(Path(out_dir) / "history.json", h)
    with open(Path(out_dir) / "history.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr"])
        for e in range(len(h["epoch_train_loss"])):
            row = [e + 1, h["epoch_train_loss"][e], h["epoch_train_acc"][e],
                   h["epoch_val_loss"][e] if e < len(h["epoch_val_loss"]) else "",
                   h["epoch_val_acc"][e] if e < len(h["epoch_val_acc"]) else "", h["lr"][e]]
            w.writerow([f"{v:.6g}" if isinstance(v, float) else v for v in row])


def _dataset_meta(ds):
    return {"name": ds.name, "input_shape": list(ds.input_shape), "num_classes": ds.num_classes,
            "class_names": list(ds.class_names),
            "sizes": [len(ds.y_train), len(ds.y_val), len(ds.y_test)]}


def run_training(cfg: TrainConfig, *, resume=None, quiet=False, stream=None, bar=None):
    """Train as ``fastcnn train`` does; returns a dict of the results. Python entry point of the
    CLI (tests and notebooks can call it directly)."""
    from fastcnn import checkpoint, plotting, train
    from fastcnn.experiments._common import write_json
    from fastcnn.layers import SoftmaxCrossEntropy

    stream = stream or sys.stdout

    def say(msg):
        print(msg, file=stream, flush=True)

    t_start = time.perf_counter()
    ds = _load_data(cfg)
    if resume is not None:
        ck = checkpoint.load(resume)
        model, optimizer = ck.model, ck.optimizer
        if optimizer is None:
            raise ValueError(f"{resume}: the checkpoint holds no optimizer state; cannot resume")
        if tuple(model.input_shape) != ds.input_shape:
            raise ValueError(f"{resume}: model input {tuple(model.input_shape)} does not match "
                             f"the data's {ds.input_shape}")
        fit_kw = ck.fit_kwargs()
        scheduler = fit_kw.pop("scheduler", None)
        if ck.epoch >= cfg.epochs:
            raise UsageError(f"--resume: the checkpoint has already done {ck.epoch} epochs; "
                             f"pass --epochs larger than that")
    else:
        model = build_model(cfg, ds.input_shape, ds.num_classes)
        optimizer = build_optimizer(cfg, model)
        scheduler = build_schedule(cfg, optimizer)
        fit_kw = {"rng": np.random.default_rng(cfg.seed)}
    if cfg.schedule == "plateau" and len(ds.y_val) == 0:
        raise UsageError("--schedule plateau monitors the validation loss; this data set has "
                         "no validation split")

    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    import fastcnn
    lr_text = f"lr {optimizer.lr:g}" + (f", {cfg.schedule} schedule" if scheduler else "")
    reg = "".join([f", weight decay {cfg.weight_decay:g}" if cfg.weight_decay else "",
                   f", L1 {cfg.l1:g}" if cfg.l1 else ""])
    say(f"fastcnn train: {type(model).__name__} ({model.num_parameters():,} parameters) on "
        f"{ds.summary()}")
    say(f"  {type(optimizer).__name__} {lr_text}{reg}, {cfg.epochs} epochs, batch "
        f"{cfg.batch_size}, seed {cfg.seed}, {fastcnn.get_num_threads()} thread(s)")
    if resume is not None:
        say(f"  resuming {resume} after epoch {fit_kw['start_epoch']}")
    say(f"  output: {out}")

    meta = {"train_config": cfg.to_dict(), "dataset": _dataset_meta(ds)}
    if ds.mean is not None:
        meta["dataset"]["mean"] = [float(v) for v in np.ravel(ds.mean)]
        meta["dataset"]["std"] = [float(v) for v in np.ravel(ds.std)]
    ckpt_path = out / "checkpoint.npz"
    write_json(out / "config.json", {"train_config": cfg.to_dict(), "model": model.config,
                                     "optimizer": repr(optimizer),
                                     "dataset": _dataset_meta(ds)})
    tap = _AccuracyTap(SoftmaxCrossEntropy())
    progress = Progress(tap, stream=stream, quiet=quiet, bar=bar)
    t0 = time.perf_counter()
    # a diverging run ends with fit's NonFiniteLossError, which says what happened; NumPy's
    # overflow warnings on the way there would only clutter the output
    with np.errstate(over="ignore", invalid="ignore"):
        history = train.fit(model, optimizer, ds.train, ds.val if len(ds.y_val) else None,
                            epochs=cfg.epochs, batch_size=cfg.batch_size, loss=tap,
                            scheduler=scheduler, clip_grad_norm=cfg.clip_grad_norm,
                            callbacks=[_SaveCheckpoint(ckpt_path, meta)], progress=progress,
                            **fit_kw)
    train_seconds = time.perf_counter() - t0
    test_loss, test_acc = train.evaluate(model, *ds.test)
    n_test = len(ds.y_test)
    write_history(out, history)
    files = ["checkpoint.npz", "history.json", "history.csv"]
    if plotting.available():
        plotting.plot_history(history.to_dict(), out / "curves.png",
                              title=f"{type(model).__name__} on {ds.name}")
        files.append("curves.png")
    results = {"test_loss": test_loss, "test_acc": test_acc, "n_test": n_test,
               "epochs": history.epochs, "train_seconds": round(train_seconds, 2),
               "wall_seconds": round(time.perf_counter() - t_start, 2),
               "final_val_acc": history.epoch_val_acc[-1] if history.epoch_val_acc else None,
               "threads": fastcnn.get_num_threads()}
    write_json(out / "results.json", results)
    files.append("results.json")
    say(f"test: loss {test_loss:.4f}  accuracy {test_acc:.4f} "
        f"({round(test_acc * n_test)}/{n_test})  [{results['wall_seconds']:.1f} s]")
    say(f"wrote {', '.join(files)} in {out}")
    if not plotting.available():
        say(plotting.PLOT_HINT)
    results["out"] = str(out)
    return results


def _explicit(args, parser_defaults):
    """Names of train flags given on the command line (their value differs from the default
    sentinel or was set at all)."""
    return {k for k, v in vars(args).items() if k in parser_defaults and v != parser_defaults[k]}


def cmd_train(args):
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    _set_threads(args.threads)
    if args.resume:
        from fastcnn import checkpoint
        header, _ = checkpoint.read(args.resume)
        saved = (header.get("meta") or {}).get("train_config")
        if saved is None:
            raise ValueError(f"{args.resume}: no train_config in the checkpoint (it was not "
                             "written by 'fastcnn train'); resume it from Python with "
                             "fastcnn.checkpoint.load(...).fit_kwargs()")
        cfg = TrainConfig.from_dict(saved)
        defaults = vars(build_parser().parse_args(["train"]))
        changed = _explicit(args, defaults) & fields - {"epochs", "out"}
        if changed:
            raise UsageError("--resume continues the saved run; it accepts only --epochs, "
                             "--out and --threads, not " + ", ".join(
                                 "--" + c.replace("_", "-") for c in sorted(changed)))
        cfg.epochs = args.epochs
        cfg.out = args.out or str(Path(args.resume).parent)
        if args.name:
            raise UsageError("--name does not apply with --resume")
    else:
        kw = {k: getattr(args, k) for k in fields if hasattr(args, k)}
        cfg = TrainConfig(**kw)
        if cfg.data is not None:
            cfg.data = str(Path(cfg.data).expanduser().resolve())
        if cfg.out is None:
            name = args.name or f"{cfg.model}-{cfg.dataset}-{time.strftime('%Y%m%d-%H%M%S')}"
            cfg.out = str(Path("runs") / name)
        elif args.name:
            raise UsageError("give --out or --name, not both")
    run_training(cfg, resume=args.resume, quiet=args.quiet)
    return 0


# -------------------------------------------------------------------------------- evaluate

def confusion_matrix(y_true, y_pred, k):
    cm = np.zeros((k, k), dtype=np.int64)
    np.add.at(cm, (y_true, y_pred), 1)
    return cm


def format_confusion(cm, names):
    k = len(cm)
    labels = [str(n)[:6] for n in names]
    w = max(5, max(len(s) for s in labels), len(str(cm.max())) + 1)
    lines = ["confusion matrix (rows: true class, columns: predicted)",
             " " * (w + 1) + "".join(f"{s:>{w}}" for s in labels) + f"{'acc':>8}"]
    for i in range(k):
        total = cm[i].sum()
        acc = f"{cm[i, i] / total:8.3f}" if total else f"{'-':>8}"
        lines.append(f"{labels[i]:>{w}} " + "".join(f"{v:>{w}}" for v in cm[i]) + acc)
    return "\n".join(lines)


def cmd_evaluate(args):
    from fastcnn import checkpoint, plotting, train
    from fastcnn.experiments._common import write_json
    _set_threads(args.threads)
    ck = checkpoint.load(args.checkpoint)
    model = ck.model
    saved = ck.meta.get("train_config")
    if saved is not None:
        cfg = TrainConfig.from_dict(saved)
    else:
        if args.dataset is None:
            raise UsageError(f"{args.checkpoint} was not written by 'fastcnn train'; "
                             "say which data to use with --dataset")
        cfg = TrainConfig()
    if args.dataset is not None and args.dataset != cfg.dataset:
        cfg = dataclasses.replace(cfg, dataset=args.dataset, data=None, resize=None,
                                  image_shape=None, n_samples=None)
        if model.input_shape[1:] != (8, 8) or args.dataset != "digits":
            cfg.resize = None
    if args.data is not None:
        cfg.data = args.data
    if cfg.dataset == "synthetic" and cfg.image_shape is None:
        cfg.image_shape = tuple(model.input_shape)
    ds = _load_data(cfg)
    if ds.input_shape != tuple(model.input_shape) and len(model.input_shape) == 3 \
            and ds.input_shape[0] == model.input_shape[0] and saved is None:
        from fastcnn.data import resize_images
        size = tuple(model.input_shape[1:])
        ds.x_train, ds.x_val, ds.x_test = (resize_images(a, size) if len(a) else a
                                           for a in (ds.x_train, ds.x_val, ds.x_test))
    if ds.input_shape != tuple(model.input_shape):
        raise ValueError(f"the model expects images of shape {tuple(model.input_shape)} but "
                         f"{ds.name} gives {ds.input_shape}")
    x, y = {"test": ds.test, "val": ds.val, "train": ds.train}[args.split]
    if len(y) == 0:
        raise ValueError(f"{ds.name} has no {args.split} split")
    logits = train.predict(model, x, batch_size=args.batch_size)
    loss, acc = train.evaluate(model, x, y, batch_size=args.batch_size)
    pred = np.argmax(logits, axis=1)
    cm = confusion_matrix(y, pred, ds.num_classes)
    _out(f"{args.checkpoint}: {type(model).__name__}, epoch {ck.epoch}")
    _out(f"{ds.name} {args.split} ({len(y)} images): loss {loss:.4f}  accuracy {acc:.4f} "
         f"({int(np.trace(cm))}/{len(y)})")
    _out(format_confusion(cm, ds.class_names or range(ds.num_classes)))
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / "evaluation.json", {
            "checkpoint": str(args.checkpoint), "dataset": ds.name, "split": args.split,
            "loss": loss, "accuracy": acc, "n": len(y), "confusion_matrix": cm,
            "class_names": list(ds.class_names)})
        if plotting.available():
            plotting.plot_confusion(cm, out / "confusion.png", class_names=list(ds.class_names),
                                    title=f"{ds.name} {args.split}: accuracy {acc:.4f}")
            _out(f"wrote evaluation.json and confusion.png in {out}")
        else:
            _out(f"wrote evaluation.json in {out}; {plotting.PLOT_HINT}")
    return 0


# -------------------------------------------------------------------------------- info

def cmd_info(args):
    import fastcnn
    from fastcnn.data import data_root
    fastcnn.show_config()
    extras = []
    for module, extra in (("matplotlib", "plot"), ("sklearn", "data"), ("tqdm", "progress")):
        try:
            mod = __import__(module)
            extras.append(f"{module} {getattr(mod, '__version__', '?')}")
        except ImportError:
            extras.append(f"{module} missing (pip install \"fastcnn[{extra}]\")")
    width = len("fastcnn threads")
    _out(f"{'optional':<{width}} : " + ", ".join(extras))
    _out(f"{'data folder':<{width}} : {data_root()} (set FASTCNN_DATA to change)")
    return 0


# -------------------------------------------------------------------------------- experiment

def cmd_experiment(args):
    from fastcnn.experiments import EXPERIMENTS
    if args.name == "list":
        for n, e in EXPERIMENTS.items():
            _out(f"{n:13s} {e.describe}")
        return 0
    _set_threads(args.threads)
    names = list(EXPERIMENTS) if args.name == "all" else [args.name]
    for n in names:
        if args.out is None:
            out = Path("runs") / f"experiment-{n}"
        else:
            out = Path(args.out) / n if args.name == "all" else Path(args.out)
        _out(f"experiment {n}{' (quick)' if args.quick else ''}: {EXPERIMENTS[n].describe}")
        t0 = time.perf_counter()
        summary = EXPERIMENTS[n].run(out, quick=args.quick, seed=args.seed, dpi=args.dpi,
                                     log=_out)
        _out(f"{n}: " + ", ".join(f"{k} {_fmt(v)}" for k, v in summary["key"].items()))
        _out(f"{n}: done in {time.perf_counter() - t0:.1f} s -> {out}")
    return 0


def _fmt(v):
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


# -------------------------------------------------------------------------------- main

def main(argv=None):
    """Run the command line; returns the exit status (0 ok, 1 error, 2 usage, 130 interrupt)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:        # argparse: --help/--version (0) or a usage error (2)
        return int(e.code or 0) if isinstance(e.code, int) or e.code is None else 2
    if getattr(args, "command", None) is None:
        _out(f"{PROG}: error: choose a command: train, evaluate, info or experiment "
             f"(see '{PROG} --help')", file=sys.stderr)
        return 2
    debug = getattr(args, "debug", False)
    try:
        return int(args.handler(args) or 0)
    except UsageError as err:
        _out(f"{PROG} {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        _out(f"{PROG} {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as err:                                    # noqa: BLE001
        if debug:
            raise
        msg = str(err) or type(err).__name__
        if isinstance(err, (FileNotFoundError,)) and err.filename and str(err.filename) not in msg:
            msg = f"{msg}: {err.filename}"
        _out(f"{PROG} {args.command}: error: {' '.join(msg.split(chr(10)))}"
             + (" (rerun with --debug for the traceback)" if not _is_expected(err) else ""),
             file=sys.stderr)
        return 1


def _is_expected(err):
    """Errors whose message says it all (bad data, missing files, diverged run)."""
    from fastcnn.checkpoint import CheckpointError
    from fastcnn.data import DatasetError, DatasetNotFoundError
    from fastcnn.train import NonFiniteLossError
    return isinstance(err, (DatasetError, DatasetNotFoundError, CheckpointError,
                            NonFiniteLossError, FileNotFoundError, ImportError,
                            PermissionError))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
