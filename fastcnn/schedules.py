"""Learning-rate schedules: StepLR, ExponentialLR, CosineLR and ReduceLROnPlateau.

A schedule sets ``optimizer.lr`` once per epoch (``fastcnn.train.fit`` calls ``step()`` after
each epoch). The first three are closed forms of the epoch count, so a resumed run gets bitwise the
same rates; ReduceLROnPlateau reacts to a monitored metric. Names and meanings follow
torch.optim.lr_scheduler; the "manual decay" of the study notes' learning-rate section.
"""
import math

__all__ = ["LRScheduler", "StepLR", "ExponentialLR", "CosineLR", "CosineAnnealingLR",
           "ReduceLROnPlateau", "from_state_dict"]


def _positive_int(name, v):
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise ValueError(f"Invalid {name}: {v!r} (must be a positive integer)")
    return v


def _positive(name, v, upper=None):
    v = float(v)
    if not (v > 0 and math.isfinite(v)) or (upper is not None and v >= upper):
        rule = f"in (0, {upper})" if upper is not None else "> 0"
        raise ValueError(f"Invalid {name}: {v} (must be {rule})")
    return v


class LRScheduler:
    """Base: ``epoch`` counts ``step()`` calls; ``optimizer.lr = lr_at(epoch)``.

    ``base_lr`` is the optimizer's rate when the schedule is built.
    """

    needs_metric = False

    def __init__(self, optimizer):
        self.optimizer = optimizer
        self.base_lr = float(optimizer.lr)
        self.epoch = 0

    def lr_at(self, epoch):  # pragma: no cover - abstract
        raise NotImplementedError

    def step(self, metric=None):
        """Advance one epoch and set the optimizer's rate; returns the new rate."""
        self.epoch += 1
        self.optimizer.lr = float(self.lr_at(self.epoch))
        return self.optimizer.lr

    def _params(self):
        return {}

    def state_dict(self):
        return {"class": type(self).__name__, "params": self._params(),
                "base_lr": self.base_lr, "epoch": self.epoch}

    def load_state_dict(self, state):
        if state.get("class") not in (type(self).__name__, None):
            raise ValueError(f"{type(self).__name__}.load_state_dict: the state belongs to a "
                             f"{state.get('class')}")
        self.base_lr = float(state["base_lr"])
        self.epoch = int(state["epoch"])
        for k, v in state.get("params", {}).items():
            setattr(self, k, v)

    def __repr__(self):
        p = ", ".join(f"{k}={v!r}" for k, v in self._params().items())
        return f"{type(self).__name__}({p})"


class StepLR(LRScheduler):
    """``lr = base_lr * gamma ** (epoch // step_size)``: divide by ``1/gamma`` every
    ``step_size`` epochs."""

    def __init__(self, optimizer, step_size, gamma=0.1):
        super().__init__(optimizer)
        self.step_size = _positive_int("step_size", step_size)
        self.gamma = _positive("gamma", gamma)

    def lr_at(self, epoch):
        return self.base_lr * self.gamma ** (epoch // self.step_size)

    def _params(self):
        return {"step_size": self.step_size, "gamma": self.gamma}


class ExponentialLR(LRScheduler):
    """``lr = base_lr * gamma ** epoch``."""

    def __init__(self, optimizer, gamma):
        super().__init__(optimizer)
        self.gamma = _positive("gamma", gamma)

    def lr_at(self, epoch):
        return self.base_lr * self.gamma ** epoch

    def _params(self):
        return {"gamma": self.gamma}


class CosineLR(LRScheduler):
    """Cosine annealing (Loshchilov & Hutter 2017, without restarts)::

        lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * min(epoch, T_max) / T_max)) / 2

    It reaches ``eta_min`` after ``T_max`` epochs and stays there (PyTorch's closed form would
    climb back up). Alias ``CosineAnnealingLR``.
    """

    def __init__(self, optimizer, T_max, eta_min=0.0):
        super().__init__(optimizer)
        self.T_max = _positive_int("T_max", T_max)
        eta_min = float(eta_min)
        if not (eta_min >= 0 and math.isfinite(eta_min)):
            raise ValueError(f"Invalid eta_min: {eta_min} (must be >= 0)")
        self.eta_min = eta_min

    def lr_at(self, epoch):
        e = min(epoch, self.T_max)
        cosine = (1 + math.cos(math.pi * e / self.T_max)) / 2
        return self.eta_min + (self.base_lr - self.eta_min) * cosine

    def _params(self):
        return {"T_max": self.T_max, "eta_min": self.eta_min}


CosineAnnealingLR = CosineLR


class ReduceLROnPlateau(LRScheduler):
    """Multiply the rate by ``factor`` when ``monitor`` has not improved for ``patience`` epochs.

    Improvement (``threshold_mode="rel"``): ``metric < best * (1 - threshold)`` in ``mode="min"``,
    ``metric > best * (1 + threshold)`` in ``mode="max"``; ``"abs"`` uses ``best -/+ threshold``.
    After a reduction, ``cooldown`` epochs pass before counting again; the rate never goes below
    ``min_lr``. ``monitor`` names what ``fit`` passes to ``step(metric)``: ``"val_loss"``
    (default), ``"val_acc"``, ``"train_loss"`` or ``"train_acc"``.
    """

    needs_metric = True

    def __init__(self, optimizer, mode="min", factor=0.1, patience=10, threshold=1e-4,
                 threshold_mode="rel", cooldown=0, min_lr=0.0, monitor="val_loss"):
        super().__init__(optimizer)
        if mode not in ("min", "max"):
            raise ValueError(f"Invalid mode: {mode!r} (must be 'min' or 'max')")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"Invalid threshold_mode: {threshold_mode!r} (must be 'rel' or 'abs')")
        self.mode, self.threshold_mode, self.monitor = mode, threshold_mode, monitor
        self.factor = _positive("factor", factor, upper=1.0)
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 0:
            raise ValueError(f"Invalid patience: {patience!r} (must be an integer >= 0)")
        if isinstance(cooldown, bool) or not isinstance(cooldown, int) or cooldown < 0:
            raise ValueError(f"Invalid cooldown: {cooldown!r} (must be an integer >= 0)")
        self.patience, self.cooldown = patience, cooldown
        self.threshold = float(threshold)
        if not (self.threshold >= 0 and math.isfinite(self.threshold)):
            raise ValueError(f"Invalid threshold: {threshold} (must be >= 0)")
        self.min_lr = float(min_lr)
        if not (self.min_lr >= 0 and math.isfinite(self.min_lr)):
            raise ValueError(f"Invalid min_lr: {min_lr} (must be >= 0)")
        self.best = None
        self.num_bad_epochs = 0
        self.cooldown_counter = 0

    def _improved(self, metric):
        if self.best is None:
            return True
        t = self.threshold
        if self.mode == "min":
            ref = self.best * (1 - t) if self.threshold_mode == "rel" else self.best - t
            return metric < ref
        ref = self.best * (1 + t) if self.threshold_mode == "rel" else self.best + t
        return metric > ref

    def step(self, metric=None):
        if metric is None:
            raise ValueError("ReduceLROnPlateau.step needs the monitored metric")
        metric = float(metric)
        self.epoch += 1
        if self._improved(metric):
            self.best = metric
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            new_lr = max(self.optimizer.lr * self.factor, self.min_lr)
            self.optimizer.lr = float(new_lr)
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        return self.optimizer.lr

    def _params(self):
        return {"mode": self.mode, "factor": self.factor, "patience": self.patience,
                "threshold": self.threshold, "threshold_mode": self.threshold_mode,
                "cooldown": self.cooldown, "min_lr": self.min_lr, "monitor": self.monitor}

    def state_dict(self):
        d = super().state_dict()
        d.update(best=self.best, num_bad_epochs=self.num_bad_epochs,
                 cooldown_counter=self.cooldown_counter)
        return d

    def load_state_dict(self, state):
        super().load_state_dict(state)
        self.best = state.get("best")
        self.num_bad_epochs = int(state.get("num_bad_epochs", 0))
        self.cooldown_counter = int(state.get("cooldown_counter", 0))


_CLASSES = {"StepLR": StepLR, "ExponentialLR": ExponentialLR, "CosineLR": CosineLR,
            "CosineAnnealingLR": CosineLR, "ReduceLROnPlateau": ReduceLROnPlateau}


def from_state_dict(optimizer, state):
    """Rebuild the schedule described by ``state`` around ``optimizer`` (its lr is untouched)."""
    cls = _CLASSES.get(state.get("class"))
    if cls is None:
        raise ValueError(f"unknown schedule class {state.get('class')!r}; "
                         f"known: {sorted(_CLASSES)}")
    sched = cls(optimizer, **state.get("params", {}))
    sched.load_state_dict(state)
    return sched
