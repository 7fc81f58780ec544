"""Optimizers: SGD, Momentum, Nesterov, AdaGrad, RMSProp, Adam -- one mechanism, six update rules.

Each optimizer keeps per-parameter state (``init_state(param) -> dict of arrays``) and applies
its rule in place (``update(param, state, scratch)``); ``Optimizer.step`` runs the regularizer
hooks (weight decay, L1, L2) and then the rule for every parameter. Not a scheduler: learning-rate
schedules live in `fastcnn.schedules` and set ``optimizer.lr``.
References: the study notes' four methods; Sutskever et al. 2013 (Nesterov); Duchi et al. 2011
(AdaGrad); Hinton's lecture 6e (RMSProp); Kingma & Ba 2015 (Adam); torch/optim for conventions.

Notation in the docstrings: ``W`` a parameter, ``g`` its gradient (after the hooks), ``eta`` the
learning rate ``lr``, ``t`` the step count starting at 1. All updates are in place, in the
parameter's dtype, and use no randomness: the same gradients give bitwise the same parameters.
"""
import math
import types

import numpy as np

from fastcnn import functional as F
from fastcnn import regularizers as _reg

__all__ = [
    "Optimizer", "SGD", "Momentum", "Nesterov", "AdaGrad", "Adagrad", "RMSProp", "RMSprop",
    "Adam", "clip_grad_norm", "from_state_dict",
]


def _as_params(params):
    if hasattr(params, "parameters") and callable(params.parameters):
        params = params.parameters()
    params = list(params)
    if not params:
        raise ValueError("optimizer got an empty parameter list")
    for i, p in enumerate(params):
        if not (hasattr(p, "data") and hasattr(p, "grad")):
            raise TypeError(f"optimizer: item {i} is not a Parameter (has no .data/.grad): {p!r}")
    if len({id(p) for p in params}) != len(params):
        raise ValueError("optimizer: a parameter appears more than once in the list")
    return params


def _check(name, value, ok, rule):
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"Invalid {name}: {value!r} (must be a number)") from None
    if not (math.isfinite(value) and ok(value)):
        raise ValueError(f"Invalid {name}: {value} (must be {rule})")
    return value


def _check_lr(lr):
    return _check("learning rate", lr, lambda v: v >= 0, ">= 0")


def _check_unit(name, value):
    return _check(name, value, lambda v: 0.0 <= v < 1.0, "in [0, 1)")


def _check_eps(eps):
    return _check("eps", eps, lambda v: v > 0, "> 0")


def _scaled_step(param, g, h, lr, eps, scratch):
    """W <- W - lr * g / (sqrt(h) + eps): the step AdaGrad and RMSProp share (in place)."""
    np.sqrt(h, out=scratch)
    scratch += eps
    np.divide(g, scratch, out=scratch)
    scratch *= lr
    param.data -= scratch


class Optimizer:
    """Base class: per-parameter state, regularizer hooks, ``step()``, ``zero_grad()``,
    ``state_dict()``/``load_state_dict()``.

    ``params``: a Layer (its ``parameters()``) or a list of Parameters. Their position in the list
    names their state in ``state_dict`` (entry ``i`` belongs to ``params[i]``).
    ``weight_decay`` (>= 0): L2 hook ``g += weight_decay * W`` (`fastcnn.regularizers.L2`);
    ``regularizers``: further hooks, e.g. ``[regularizers.L1(1e-4)]``. Hooks skip parameters with
    ``decay=False`` (biases, BatchNorm) unless built with ``all_params=True``; they add into
    ``param.grad`` in place (Chainer's convention), so after ``step()`` ``.grad`` holds the
    regularised gradient.
    """

    _hyper_names = ("lr",)

    def __init__(self, params, lr, *, weight_decay=0.0, regularizers=()):
        self.params = _as_params(params)
        self.lr = _check_lr(lr)
        self.weight_decay = weight_decay
        regs = list(regularizers)
        for r in regs:
            if not (hasattr(r, "apply") and hasattr(r, "penalty")):
                raise TypeError(f"regularizers: {r!r} has no apply()/penalty()")
        self.regularizers = regs
        self.step_count = 0
        self.state = [self.init_state(p) for p in self.params]
        self._scratch = {}
        for p in self.params:
            n = self._scratch.get(p.data.dtype, np.empty(0, p.data.dtype)).size
            if p.data.size > n:
                self._scratch[p.data.dtype] = np.empty(p.data.size, p.data.dtype)

    # weight decay is a hyper-parameter (restored by load_state_dict) backed by an L2 hook
    @property
    def weight_decay(self):
        return self._weight_decay

    @weight_decay.setter
    def weight_decay(self, value):
        self._weight_decay = _check("weight_decay", value, lambda v: v >= 0, ">= 0")
        self._wd_hook = _reg.L2(self._weight_decay) if self._weight_decay > 0 else None

    @property
    def hooks(self):
        return ([self._wd_hook] if self._wd_hook is not None else []) + self.regularizers

    # -- the mechanism ------------------------------------------------------------------------
    def init_state(self, param):
        """Fresh state for one parameter: a dict of arrays shaped like it (empty by default)."""
        return {}

    def update(self, param, state, scratch):  # pragma: no cover - abstract
        """Apply the rule to ``param.data`` in place using ``param.grad``; ``scratch`` is a
        work array of ``param``'s shape and dtype."""
        raise NotImplementedError

    def step(self):
        """One update of every parameter: hooks first, then the rule. Increments ``step_count``."""
        self.step_count += 1
        hooks = self.hooks
        for p, state in zip(self.params, self.state):
            scratch = self._scratch[p.data.dtype][:p.data.size].reshape(p.data.shape)
            for hook in hooks:
                if hook.applies_to(p):
                    hook.apply(p, scratch)
            self.update(p, state, scratch)

    def zero_grad(self):
        for p in self.params:
            if hasattr(p, "zero_grad"):
                p.zero_grad()
            else:   # a duck-typed parameter: a plain .grad array
                p.grad.fill(0)

    def penalty(self):
        """Sum of the hooks' penalties (e.g. ``(lam/2) ||W||^2``) for the logged loss."""
        return math.fsum(h.penalty(self.params) for h in self.hooks)

    # -- state ----------------------------------------------------------------------------------
    def hyperparams(self):
        h = {name: getattr(self, name) for name in self._hyper_names}
        h["weight_decay"] = self.weight_decay
        return h

    def state_dict(self):
        """``{"class", "hyperparams", "regularizers", "step_count", "state": [{name: array}]}``;
        the arrays are copies. JSON-able except for the arrays."""
        return {
            "class": type(self).__name__,
            "hyperparams": self.hyperparams(),
            "regularizers": [r.config for r in self.regularizers],
            "step_count": self.step_count,
            "state": [{k: v.copy() for k, v in s.items()} for s in self.state],
        }

    def load_state_dict(self, state_dict):
        """Restore hyper-parameters, step count and per-parameter state (copied in place).

        Checks the optimizer class, the number of entries, each entry's keys and each array's
        shape, and names the mismatch (ValueError). Regularizer hooks are not replaced.
        """
        who = type(self).__name__
        cls = state_dict.get("class")
        if cls not in (None, who) and _CANONICAL.get(cls) != _CANONICAL.get(who):
            raise ValueError(f"{who}.load_state_dict: the state belongs to a {cls} optimizer")
        entries = state_dict["state"]
        if len(entries) != len(self.state):
            raise ValueError(f"{who}.load_state_dict: the state has {len(entries)} parameter "
                             f"entries but the optimizer has {len(self.state)} parameters")
        for i, (src, dst) in enumerate(zip(entries, self.state)):
            if set(src) != set(dst):
                raise ValueError(f"{who}.load_state_dict: parameter {i} "
                                 f"({self.params[i].name!r}) has state keys {sorted(src)}, "
                                 f"expected {sorted(dst)}")
            for k in dst:
                a = np.asarray(src[k])
                if a.shape != dst[k].shape:
                    raise ValueError(f"{who}.load_state_dict: state {i}.{k} "
                                     f"({self.params[i].name!r}) has shape {a.shape}, "
                                     f"expected {dst[k].shape}")
        hyper = dict(state_dict.get("hyperparams", {}))
        # validate every value through a throw-away one-element instance before touching self
        dummy = types.SimpleNamespace(data=np.zeros(1), grad=np.zeros(1), name="", decay=True)
        type(self)([dummy], **hyper)
        for name, value in hyper.items():
            setattr(self, name, tuple(value) if isinstance(value, list) else value)
        for src, dst in zip(entries, self.state):
            for k in dst:
                np.copyto(dst[k], np.asarray(src[k]), casting="unsafe")
        self.step_count = int(state_dict.get("step_count", 0))

    def __repr__(self):
        h = ", ".join(f"{k}={v!r}" for k, v in self.hyperparams().items()
                      if not (k == "weight_decay" and v == 0))
        regs = f", regularizers={self.regularizers!r}" if self.regularizers else ""
        return f"{type(self).__name__}({h}{regs})"


class SGD(Optimizer):
    """Stochastic gradient descent, optionally with (Nesterov) momentum.

    ``momentum = 0``:  ``W <- W - eta * g``

    ``momentum = mu > 0`` (the study notes' form, velocity ``v`` starts at 0)::

        v <- mu * v - eta * g
        W <- W + v

    ``nesterov=True`` (Sutskever et al. 2013, in the form of Bengio et al. 2012)::

        v <- mu * v - eta * g
        W <- W + mu * v - eta * g

    With a constant ``eta`` these are exactly PyTorch's ``SGD(momentum=mu, nesterov=...)``
    (whose buffer is ``-v / eta``); when ``eta`` changes, the notes' ``v`` keeps the old rate's
    steps in its memory while PyTorch rescales them.
    """

    _hyper_names = ("lr", "momentum", "nesterov")

    def __init__(self, params, lr=0.01, momentum=0.0, nesterov=False, *, weight_decay=0.0,
                 regularizers=()):
        self.momentum = _check_unit("momentum value", momentum)
        self.nesterov = bool(nesterov)
        if self.nesterov and self.momentum == 0:
            raise ValueError("Invalid momentum value: 0.0 (Nesterov momentum needs momentum > 0)")
        super().__init__(params, lr, weight_decay=weight_decay, regularizers=regularizers)

    def init_state(self, param):
        return {"v": np.zeros_like(param.data)} if self.momentum > 0 else {}

    def update(self, param, state, scratch):
        lr, mu = self.lr, self.momentum
        np.multiply(param.grad, lr, out=scratch)          # eta * g
        if mu == 0:
            param.data -= scratch
            return
        v = state["v"]
        v *= mu
        v -= scratch                                       # v = mu v - eta g
        if self.nesterov:
            param.data -= scratch                          # W += mu v - eta g
            np.multiply(v, mu, out=scratch)
            param.data += scratch
        else:
            param.data += v


class Momentum(SGD):
    """Momentum SGD (the notes' first method): ``v <- mu v - eta g``, ``W <- W + v``.

    Same as ``SGD(params, lr, momentum=mu)``; ``momentum`` in [0, 1), default 0.9.
    """

    _hyper_names = ("lr", "momentum")

    def __init__(self, params, lr=0.01, momentum=0.9, *, weight_decay=0.0, regularizers=()):
        super().__init__(params, lr, momentum=momentum, nesterov=False,
                         weight_decay=weight_decay, regularizers=regularizers)


class Nesterov(SGD):
    """Nesterov accelerated gradient: ``v <- mu v - eta g``, ``W <- W + mu v - eta g``.

    Same as ``SGD(params, lr, momentum=mu, nesterov=True)`` and PyTorch's nesterov SGD (at a
    constant ``eta``). ``momentum`` in (0, 1), default 0.9.
    """

    _hyper_names = ("lr", "momentum")

    def __init__(self, params, lr=0.01, momentum=0.9, *, weight_decay=0.0, regularizers=()):
        super().__init__(params, lr, momentum=momentum, nesterov=True,
                         weight_decay=weight_decay, regularizers=regularizers)


class AdaGrad(Optimizer):
    """AdaGrad (Duchi et al. 2011), the notes' second method; ``h`` starts at 0::

        h <- h + g * g
        W <- W - eta * g / (sqrt(h) + eps)

    ``eps`` (> 0, default 1e-7 as in the classic book) is added after the square root, as in
    PyTorch's Adagrad (whose default is 1e-10).
    """

    _hyper_names = ("lr", "eps")

    def __init__(self, params, lr=0.01, eps=1e-7, *, weight_decay=0.0, regularizers=()):
        self.eps = _check_eps(eps)
        super().__init__(params, lr, weight_decay=weight_decay, regularizers=regularizers)

    def init_state(self, param):
        return {"h": np.zeros_like(param.data)}

    def update(self, param, state, scratch):
        h, g = state["h"], param.grad
        np.multiply(g, g, out=scratch)
        h += scratch
        _scaled_step(param, g, h, self.lr, self.eps, scratch)


class RMSProp(Optimizer):
    """RMSProp (Hinton, lecture 6e), the notes' third method; ``h`` starts at 0::

        h <- alpha * h + (1 - alpha) * g * g
        W <- W - eta * g / (sqrt(h) + eps)

    ``alpha`` in [0, 1) (default 0.99, the book's decay_rate and PyTorch's alpha); ``eps`` > 0
    (default 1e-7) after the square root, as in PyTorch's RMSprop.
    """

    _hyper_names = ("lr", "alpha", "eps")

    def __init__(self, params, lr=0.01, alpha=0.99, eps=1e-7, *, weight_decay=0.0,
                 regularizers=()):
        self.alpha = _check_unit("alpha", alpha)
        self.eps = _check_eps(eps)
        super().__init__(params, lr, weight_decay=weight_decay, regularizers=regularizers)

    def init_state(self, param):
        return {"h": np.zeros_like(param.data)}

    def update(self, param, state, scratch):
        h, g = state["h"], param.grad
        h *= self.alpha
        np.multiply(g, g, out=scratch)
        scratch *= 1.0 - self.alpha
        h += scratch
        _scaled_step(param, g, h, self.lr, self.eps, scratch)


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015), the notes' fourth method; ``m``, ``v`` start at 0::

        m <- beta1 * m + (1 - beta1) * g
        v <- beta2 * v + (1 - beta2) * g * g
        W <- W - (eta / (1 - beta1^t)) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)

    i.e. ``eta * m_hat / (sqrt(v_hat) + eps)`` with the bias-corrected moments, arranged as in
    PyTorch's Adam. ``betas`` each in [0, 1) (default (0.9, 0.999)); ``eps`` > 0 (default 1e-8).
    """

    _hyper_names = ("lr", "betas", "eps")

    def __init__(self, params, lr=0.001, betas=(0.9, 0.999), eps=1e-8, *, weight_decay=0.0,
                 regularizers=()):
        try:
            b1, b2 = betas
        except (TypeError, ValueError):
            raise ValueError(f"Invalid betas: {betas!r} (must be a pair)") from None
        self.betas = (_check_unit("beta parameter at index 0", b1),
                      _check_unit("beta parameter at index 1", b2))
        self.eps = _check_eps(eps)
        super().__init__(params, lr, weight_decay=weight_decay, regularizers=regularizers)

    def init_state(self, param):
        return {"m": np.zeros_like(param.data), "v": np.zeros_like(param.data)}

    def update(self, param, state, scratch):
        # one fused pass over w, m, v, g (NumPy would need about eleven)
        b1, b2 = self.betas
        F.adam_update(param.data, param.grad, state["m"], state["v"], self.lr, b1, b2,
                      self.eps, self.step_count)


Adagrad = AdaGrad
RMSprop = RMSProp

_CLASSES = {"SGD": SGD, "Momentum": Momentum, "Nesterov": Nesterov, "AdaGrad": AdaGrad,
            "Adagrad": AdaGrad, "RMSProp": RMSProp, "RMSprop": RMSProp, "Adam": Adam}
_CANONICAL = {name: cls.__name__ for name, cls in _CLASSES.items()}


def clip_grad_norm(params, max_norm):
    """Scale all gradients in place so their global L2 norm is at most ``max_norm``.

    ``norm = sqrt(sum_i ||g_i||^2)`` over every parameter; if ``norm > max_norm`` each ``g_i`` is
    multiplied by ``max_norm / norm``. Returns the norm before clipping (a float; nan/inf when a
    gradient is not finite, in which case nothing is scaled).
    """
    max_norm = _check("max_norm", max_norm, lambda v: v > 0, "> 0")
    params = _as_params(params)
    total = math.sqrt(math.fsum(float(np.dot(p.grad.ravel(), p.grad.ravel())) for p in params))
    if math.isfinite(total) and total > max_norm:
        scale = max_norm / total
        for p in params:
            p.grad *= scale
    return total


def from_state_dict(params, state_dict):
    """Build the optimizer described by ``state_dict`` over ``params`` and load its state."""
    cls = _CLASSES.get(state_dict.get("class"))
    if cls is None:
        raise ValueError(f"unknown optimizer class {state_dict.get('class')!r}; "
                         f"known: {sorted(_CLASSES)}")
    regs = [_reg.from_config(c) for c in state_dict.get("regularizers", [])]
    opt = cls(params, **state_dict.get("hyperparams", {}), regularizers=regs)
    opt.load_state_dict(state_dict)
    return opt
