"""The training loop: ``fit``, ``evaluate``, ``predict``, the ``History`` they record, and the
EarlyStopping / Checkpoint callbacks.

What it is: mini-batch gradient descent over in-memory arrays, one shuffled pass per epoch
(seeded ``np.random.Generator``; the last partial batch is used, not dropped), with optional
schedules, gradient clipping and callbacks. What it is not: a data pipeline (see
`fastcnn.data`) or a CLI (see `fastcnn.cli`, built on this API).

Conventions: losses are means over samples; accuracy is the fraction of samples whose arg-max
logit equals the label; epochs are numbered from 1 in messages, callbacks and progress events.
"""
import dataclasses
import math
import time
import warnings

import numpy as np

from fastcnn import optim as _optim
from fastcnn.layers import SoftmaxCrossEntropy

__all__ = ["History", "NonFiniteLossError", "fit", "evaluate", "predict", "Callback",
           "EarlyStopping", "Checkpoint", "TrainContext"]

_METRICS = {"train_loss": "epoch_train_loss", "train_acc": "epoch_train_acc",
            "val_loss": "epoch_val_loss", "val_acc": "epoch_val_acc"}


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite (the run diverged)."""


@dataclasses.dataclass
class History:
    """What ``fit`` records.

    iter_loss: the training loss of every iteration, measured on the batch in train mode before
        the update, plus the regularizers' penalty when the optimizer has any (the objective
        being minimised).
    epoch_train_loss / epoch_train_acc: per epoch, on the training set in eval mode
        (``eval_train=True``), on its first ``n`` samples (``eval_train=n``), or the running means
        over the epoch's training batches (``eval_train=False``). Data loss only, no penalty, so
        it compares with the validation loss.
    epoch_val_loss / epoch_val_acc: per epoch, on ``val_data`` in eval mode (empty without it).
    lr: the learning rate used during each epoch.
    """

    iter_loss: list = dataclasses.field(default_factory=list)
    epoch_train_loss: list = dataclasses.field(default_factory=list)
    epoch_train_acc: list = dataclasses.field(default_factory=list)
    epoch_val_loss: list = dataclasses.field(default_factory=list)
    epoch_val_acc: list = dataclasses.field(default_factory=list)
    lr: list = dataclasses.field(default_factory=list)

    @property
    def epochs(self):
        """Number of completed epochs."""
        return len(self.epoch_train_loss)

    def metric(self, name):
        """The per-epoch list for "train_loss", "train_acc", "val_loss" or "val_acc"."""
        if name not in _METRICS:
            raise ValueError(f"unknown metric {name!r}; choose one of {sorted(_METRICS)}")
        return getattr(self, _METRICS[name])

    def to_dict(self):
        return {f.name: [float(v) for v in getattr(self, f.name)]
                for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, d):
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"History.from_dict: unknown keys {sorted(unknown)}")
        return cls(**{k: [float(v) for v in d.get(k, [])] for k in names})


@dataclasses.dataclass
class TrainContext:
    """Handed to callbacks that define ``on_train_begin(context)`` before the first epoch:
    what a resumable checkpoint needs besides the model and optimizer, and where a resumed run
    starts (``start_epoch`` epochs done, their metrics in ``history``)."""

    rng: np.random.Generator
    scheduler: object
    loss: object
    epochs: int
    batch_size: int
    has_val: bool
    start_epoch: int = 0
    history: object = None


class Callback:
    """Base class. ``on_epoch_end(epoch, history, model, optimizer) -> bool`` (True stops
    training) is the interface ``fit`` calls; ``epoch`` is the 1-based number of the epoch that
    just ended. ``on_train_begin(context)`` is optional."""

    def on_train_begin(self, context):
        pass

    def on_epoch_end(self, epoch, history, model, optimizer):
        return False


def _mode_for(monitor, mode):
    if mode == "auto":
        return "max" if monitor.endswith("acc") else "min"
    if mode not in ("min", "max"):
        raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
    return mode


def _earlier_values(monitor, context):
    """(epoch, value) of ``monitor`` for the epochs a resumed run has already done (none for a
    fresh run): callbacks that track a best value rebuild it from them, so that a resume does
    what the uninterrupted run would have done."""
    if context is None or not context.start_epoch or context.history is None:
        return []
    values = context.history.metric(monitor)[:context.start_epoch]
    return list(enumerate(values, start=context.start_epoch - len(values) + 1))


def _check_monitor(who, monitor, context):
    if monitor not in _METRICS:
        raise ValueError(f"{who}: monitor must be one of {sorted(_METRICS)}, got {monitor!r}")
    if monitor.startswith("val") and context is not None and not context.has_val:
        raise ValueError(f"{who}: monitors {monitor!r} but fit() got no val_data")


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by more than ``min_delta`` for ``patience`` epochs.

    monitor: "val_loss" (default), "val_acc", "train_loss" or "train_acc"; mode "auto" minimises
    losses and maximises accuracies. restore_best=True copies the best epoch's weights back into
    the model when stopping (or at the end). ``stopped_epoch`` is the epoch it stopped at.
    Resumed (``fit(..., start_epoch=k, history=h)``) it rebuilds its best value and patience count
    from ``h``, so it stops where the uninterrupted run would have; weights from before the resume
    it cannot restore (it warns and keeps the last epoch's).
    """

    def __init__(self, monitor="val_loss", patience=5, min_delta=0.0, mode="auto",
                 restore_best=False):
        _check_monitor("EarlyStopping", monitor, None)
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
            raise ValueError(f"EarlyStopping: patience must be an integer >= 1, got {patience!r}")
        min_delta = float(min_delta)
        if not (min_delta >= 0):
            raise ValueError(f"EarlyStopping: min_delta must be >= 0, got {min_delta}")
        self.monitor, self.patience, self.min_delta = monitor, patience, min_delta
        self.mode = _mode_for(monitor, mode)
        self.restore_best = bool(restore_best)
        self.best = None
        self.best_epoch = None
        self.wait = 0
        self.stopped_epoch = None
        self._best_state = None

    def on_train_begin(self, context):
        _check_monitor("EarlyStopping", self.monitor, context)
        earlier = _earlier_values(self.monitor, context)
        if earlier:   # a resumed run: the state follows from the history alone (also on reuse)
            kept_epoch, kept_state = self.best_epoch, self._best_state
            self.best, self.best_epoch, self.wait = None, None, 0
            for epoch, value in earlier:
                if self._improved(value):
                    self.best, self.best_epoch, self.wait = value, epoch, 0
                else:
                    self.wait += 1
            self._best_state = kept_state if kept_epoch == self.best_epoch else None

    def _improved(self, value):
        if self.best is None:
            return True
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def on_epoch_end(self, epoch, history, model, optimizer):
        value = history.metric(self.monitor)[-1]
        if self._improved(value):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best:
                self._best_state = model.state_dict()
            return False
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            if self.restore_best and self._best_state is not None:
                model.load_state_dict(self._best_state)
            elif self.restore_best:
                warnings.warn(f"EarlyStopping: the best epoch ({self.best_epoch}) came before "
                              f"this run resumed and its weights were not kept: the model keeps "
                              f"epoch {epoch}'s weights (save them with "
                              f"Checkpoint(save_best=True))", RuntimeWarning, stacklevel=2)
            return True
        return False


class Checkpoint(Callback):
    """Save a resumable checkpoint (`fastcnn.checkpoint.save`) during training.

    path: file name; may contain ``{epoch}`` (e.g. ``"runs/ckpt-{epoch:03d}.npz"``).
    every: save every ``every`` epochs. save_best=True: instead save only when ``monitor``
    improves (mode "auto": losses down, accuracies up). Each file holds the model, optimizer,
    scheduler, the shuffling rng's state, the history and ``epoch``, so
    ``fit(..., **checkpoint.load(path).fit_kwargs())`` continues exactly. With save_best, a
    resumed run compares against the best value in the history, not just its own epochs.
    """

    def __init__(self, path, every=1, save_best=False, monitor="val_loss", mode="auto"):
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"Checkpoint: every must be an integer >= 1, got {every!r}")
        _check_monitor("Checkpoint", monitor, None)
        self.path, self.every, self.save_best = str(path), every, bool(save_best)
        self.monitor, self.mode = monitor, _mode_for(monitor, mode)
        self.best = None
        self.saved = []
        self._context = None

    def on_train_begin(self, context):
        if self.save_best:
            _check_monitor("Checkpoint", self.monitor, context)
            # a resumed run: the best so far is in the history (else the first epoch after the
            # resume would overwrite the best file with a worse model)
            earlier = _earlier_values(self.monitor, context)
            if earlier:
                self.best = None
                for _, value in earlier:
                    if self._better(value):
                        self.best = value
        self._context = context

    def _better(self, value):
        return self.best is None or (value < self.best if self.mode == "min"
                                     else value > self.best)

    def on_epoch_end(self, epoch, history, model, optimizer):
        if self.save_best:
            value = history.metric(self.monitor)[-1]
            if not self._better(value):
                return False
            self.best = value
        elif epoch % self.every:
            return False
        from fastcnn import checkpoint  # late import: checkpoint imports this module
        ctx = self._context
        path = self.path.format(epoch=epoch)
        checkpoint.save(path, model, optimizer, scheduler=ctx.scheduler if ctx else None,
                        rng=ctx.rng if ctx else None, history=history, epoch=epoch)
        self.saved.append(path)
        return False


# ---------------------------------------------------------------------------------------------

def _model_dtype(model, x):
    dtype = getattr(model, "dtype", None)
    if dtype is None:
        dtype = x.dtype if x.dtype in (np.float32, np.float64) else np.dtype(np.float32)
    return np.dtype(dtype)


def _as_x(x, name, dtype):
    x = np.asarray(x)
    if x.dtype.kind not in "fiub":
        raise TypeError(f"{name}: images must be real numbers, got dtype {x.dtype}")
    if x.ndim < 2:
        raise ValueError(f"{name}: x must have a batch axis and sample axes, got shape {x.shape}")
    if len(x) == 0:
        raise ValueError(f"{name}: x is empty")
    return np.ascontiguousarray(x, dtype=dtype)  # no copy when already right


def _as_y(y, name, n):
    y = np.asarray(y)
    if y.dtype.kind not in "iu":
        raise TypeError(f"{name}: labels must be integers (class indices), got dtype {y.dtype}")
    if y.shape != (n,):
        raise ValueError(f"{name}: labels must have shape ({n},) to match x, got {y.shape}")
    return y


def _as_data(data, name, dtype):
    if not (isinstance(data, (tuple, list)) and len(data) == 2):
        raise TypeError(f"{name} must be an (x, y) pair of arrays, got {type(data).__name__}")
    x = _as_x(data[0], name, dtype)
    return x, _as_y(data[1], name, len(x))


def _positive_int(name, v):
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
        raise ValueError(f"{name} must be a positive integer, got {v!r}")
    return int(v)


def _save_modes(model):
    return [(m, m.training) for _, m in model.named_modules()]


def _restore_modes(modes):
    for m, training in modes:
        m.training = training


def _evaluate(model, x, y, batch_size, loss_fn):
    total, correct = 0.0, 0
    for s in range(0, len(x), batch_size):
        xb, yb = x[s:s + batch_size], y[s:s + batch_size]
        logits = model.forward(xb)
        total += loss_fn.forward(logits, yb) * len(xb)
        correct += int(np.count_nonzero(np.argmax(logits, axis=1) == yb))
    return total / len(x), correct / len(x)


def evaluate(model, x, y, batch_size=500, loss=None):
    """Mean loss and accuracy of ``model`` on ``(x, y)``, in batches, in eval mode.

    x: (N, ...) images (converted once to the model's dtype), y: (N,) integer labels; loss
    defaults to SoftmaxCrossEntropy. Every layer's train/eval mode is restored afterwards.
    Returns ``(loss, accuracy)`` as floats.
    """
    batch_size = _positive_int("batch_size", batch_size)
    x = _as_x(x, "evaluate", _model_dtype(model, np.asarray(x)))
    y = _as_y(y, "evaluate", len(x))
    modes = _save_modes(model)
    model.eval()
    try:
        loss_fn = loss if loss is not None else SoftmaxCrossEntropy()
        return _evaluate(model, x, y, batch_size, loss_fn)
    finally:
        _restore_modes(modes)


def predict(model, x, batch_size=500):
    """Logits ``(N, num_classes)`` of ``model`` on ``x`` in batches, in eval mode (modes restored
    afterwards). The result is a fresh array in the model's dtype; ``argmax(axis=1)`` gives
    the predicted classes."""
    batch_size = _positive_int("batch_size", batch_size)
    x = _as_x(x, "predict", _model_dtype(model, np.asarray(x)))
    modes = _save_modes(model)
    model.eval()
    out = None
    try:
        for s in range(0, len(x), batch_size):
            logits = model.forward(x[s:s + batch_size])
            if out is None:
                out = np.empty((len(x),) + logits.shape[1:], dtype=logits.dtype)
            out[s:s + len(logits)] = logits  # copy: the layer reuses its output buffer
    finally:
        _restore_modes(modes)
    return out


def fit(model, optimizer, train_data, val_data=None, *, epochs=10, batch_size=100, rng=None,
        loss=None, scheduler=None, callbacks=(), clip_grad_norm=None, eval_train=True,
        progress=None, start_epoch=0, history=None):
    """Train ``model`` with ``optimizer`` on ``train_data`` and return the ``History``.

    train_data, val_data: ``(x, y)`` pairs, x (N, ...) images (converted once to the model's
        dtype), y (N,) integer labels.
    epochs: total number of epochs; training runs epochs ``start_epoch + 1 .. epochs``.
    batch_size: samples per iteration. An epoch is one pass over a fresh permutation drawn from
        ``rng``; the last partial batch is used, so an epoch has ``ceil(N / batch_size)``
        iterations.
    rng: ``np.random.Generator`` (or seed) for the shuffles; default ``default_rng(0)``. A
        Generator is used (and advanced) in place, so saving its state resumes exactly.
    loss: a loss layer (``forward(logits, labels) -> float``, ``backward() -> dlogits``);
        default ``layers.SoftmaxCrossEntropy()``.
    scheduler: a `fastcnn.schedules` schedule, stepped after every epoch (ReduceLROnPlateau gets
        its ``monitor`` metric).
    callbacks: objects with ``on_epoch_end(epoch, history, model, optimizer) -> bool`` (True
        stops after this epoch) and optionally ``on_train_begin(context)``; see EarlyStopping
        and Checkpoint.
    clip_grad_norm: if set, gradients are scaled to this global L2 norm before each step.
    eval_train: True measures the epoch's train loss/accuracy on the whole training set in eval
        mode; an int ``n`` on its first ``n`` samples; False uses the running means over the
        epoch's training batches (cheapest, but in train mode and with moving weights).
    progress: optional ``callable(event, info)``: ``("batch", {epoch, epochs, iteration,
        iterations, global_iteration, loss, lr})`` after every iteration and ``("epoch",
        {epoch, epochs, train_loss, train_acc, val_loss, val_acc, lr, seconds})`` after every
        epoch (val_* None without val_data); epochs and iterations count from 1.
    start_epoch: number of epochs already done (resume); history: the History to append to.

    One iteration: ``optimizer.zero_grad()``; forward in train mode; loss; NaN/inf check;
    backward; optional clipping; ``optimizer.step()``. A non-finite loss raises
    NonFiniteLossError("loss became nan at epoch E, iteration I ...") before the update, so the
    parameters stay those that produced it.
    """
    epochs = int(epochs)
    if epochs < 0:
        raise ValueError(f"epochs must be >= 0, got {epochs}")
    batch_size = _positive_int("batch_size", batch_size)
    start_epoch = int(start_epoch)
    if start_epoch < 0:
        raise ValueError(f"start_epoch must be >= 0, got {start_epoch}")
    if clip_grad_norm is not None and not float(clip_grad_norm) > 0:
        raise ValueError(f"clip_grad_norm must be > 0, got {clip_grad_norm}")
    if not (isinstance(eval_train, bool) or (isinstance(eval_train, int) and eval_train > 0)):
        raise ValueError(f"eval_train must be True, False or a positive int, got {eval_train!r}")
    if not (isinstance(train_data, (tuple, list)) and len(train_data) == 2):
        raise TypeError(f"train_data must be an (x, y) pair of arrays, got "
                        f"{type(train_data).__name__}")
    dtype = _model_dtype(model, np.asarray(train_data[0]))
    x, y = _as_data(train_data, "train_data", dtype)
    val = _as_data(val_data, "val_data", dtype) if val_data is not None else None
    rng = np.random.default_rng(0) if rng is None else np.random.default_rng(rng)
    loss_fn = loss if loss is not None else SoftmaxCrossEntropy()
    history = History() if history is None else history
    callbacks = list(callbacks)
    context = TrainContext(rng=rng, scheduler=scheduler, loss=loss_fn, epochs=epochs,
                           batch_size=batch_size, has_val=val is not None,
                           start_epoch=start_epoch, history=history)
    monitor = getattr(scheduler, "monitor", None) if getattr(scheduler, "needs_metric", False) \
        else None
    if monitor is not None:
        _check_monitor(type(scheduler).__name__, monitor, context)
    for cb in callbacks:
        if hasattr(cb, "on_train_begin"):
            cb.on_train_begin(context)

    n = len(x)
    bs = min(batch_size, n)
    iterations = math.ceil(n / bs)
    xb_buf = np.empty((bs,) + x.shape[1:], dtype=x.dtype)  # batches are gathered, not allocated
    yb_buf = np.empty(bs, dtype=y.dtype)
    has_hooks = bool(getattr(optimizer, "hooks", None))
    global_it = len(history.iter_loss)
    train_eval = (x, y) if eval_train is True else (x[:eval_train], y[:eval_train]) \
        if eval_train else None

    for epoch in range(start_epoch + 1, epochs + 1):
        t0 = time.perf_counter()
        model.train()
        perm = rng.permutation(n)
        lr = float(optimizer.lr)
        run_loss, run_correct = 0.0, 0
        for it in range(iterations):
            idx = perm[it * bs:(it + 1) * bs]
            m = len(idx)
            xb, yb = xb_buf[:m], yb_buf[:m]
            np.take(x, idx, axis=0, out=xb, mode="clip")
            np.take(y, idx, out=yb, mode="clip")
            optimizer.zero_grad()
            logits = model.forward(xb)
            value = loss_fn.forward(logits, yb)
            if not math.isfinite(value):
                raise NonFiniteLossError(
                    f"loss became {value} at epoch {epoch}, iteration {it + 1} (of {iterations}; "
                    f"global iteration {global_it + 1}); the run diverged -- try a smaller "
                    f"learning rate (lr={lr:g}), gradient clipping, or check the inputs")
            if not eval_train:
                run_loss += value * m
                run_correct += int(np.count_nonzero(np.argmax(logits, axis=1) == yb))
            logged = value + optimizer.penalty() if has_hooks else value
            model.backward(loss_fn.backward())
            if clip_grad_norm is not None:
                _optim.clip_grad_norm(optimizer.params, clip_grad_norm)
            optimizer.step()
            history.iter_loss.append(float(logged))
            global_it += 1
            if progress is not None:
                progress("batch", {"epoch": epoch, "epochs": epochs, "iteration": it + 1,
                                   "iterations": iterations, "global_iteration": global_it,
                                   "loss": float(logged), "lr": lr})

        if train_eval is not None:
            modes = _save_modes(model)
            model.eval()
            try:
                tr_loss, tr_acc = _evaluate(model, *train_eval, 500, loss_fn)
            finally:
                _restore_modes(modes)
        else:
            tr_loss, tr_acc = run_loss / n, run_correct / n
        history.epoch_train_loss.append(float(tr_loss))
        history.epoch_train_acc.append(float(tr_acc))
        va_loss = va_acc = None
        if val is not None:
            va_loss, va_acc = evaluate(model, *val, batch_size=500, loss=loss_fn)
            history.epoch_val_loss.append(float(va_loss))
            history.epoch_val_acc.append(float(va_acc))
        history.lr.append(lr)

        if scheduler is not None:
            if monitor is not None:
                scheduler.step(history.metric(monitor)[-1])
            else:
                scheduler.step()
        stop = False
        for cb in callbacks:
            stop = bool(cb.on_epoch_end(epoch, history, model, optimizer)) or stop
        if progress is not None:
            progress("epoch", {"epoch": epoch, "epochs": epochs, "train_loss": tr_loss,
                               "train_acc": tr_acc, "val_loss": va_loss, "val_acc": va_acc,
                               "lr": lr, "seconds": time.perf_counter() - t0})
        if stop:
            break
    model.train()
    return history
