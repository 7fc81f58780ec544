"""L2 and L1 regularizers as optimizer hooks (Chainer's WeightDecay / Lasso hooks).

A hook adds the penalty's gradient to each parameter's gradient just before the optimizer's update
rule runs, and can report the penalty itself so the logged training loss is the objective really
being minimised. It is not a loss layer: the model never sees it.

By default only parameters with ``Parameter.decay == True`` are regularised: weights, not biases
and not BatchNorm's gamma/beta (their scale is what batch norm exists to learn).
"""
import math

import numpy as np

__all__ = ["Regularizer", "L2", "L1", "from_config"]


class Regularizer:
    """Base: ``apply(param, scratch)`` adds the penalty gradient into ``param.grad``;
    ``penalty(params)`` returns the penalty value (a float)."""

    def __init__(self, lam, all_params=False):
        lam = float(lam)
        if not (lam >= 0 and math.isfinite(lam)):
            raise ValueError(f"{type(self).__name__}: lam must be a finite number >= 0, got {lam}")
        self.lam = lam
        self.all_params = bool(all_params)

    def applies_to(self, param):
        """True if this regularizer acts on ``param`` (all of them with ``all_params=True``)."""
        return self.all_params or getattr(param, "decay", True)

    def penalty(self, params):
        return math.fsum(self._penalty(p.data) for p in params if self.applies_to(p))

    @property
    def config(self):
        return {"class": type(self).__name__, "lam": self.lam, "all_params": self.all_params}

    def __repr__(self):
        extra = ", all_params=True" if self.all_params else ""
        return f"{type(self).__name__}({self.lam}{extra})"


class L2(Regularizer):
    """L2 / weight decay: penalty ``(lam / 2) * sum W^2``, gradient hook ``grad += lam * W``."""

    def apply(self, param, scratch):
        np.multiply(param.data, self.lam, out=scratch)
        param.grad += scratch

    def _penalty(self, w):
        w = w.ravel()
        return 0.5 * self.lam * float(np.dot(w, w))


class L1(Regularizer):
    """L1 / lasso: penalty ``lam * sum |W|``, gradient hook ``grad += lam * sign(W)``
    (subgradient 0 at W = 0)."""

    def apply(self, param, scratch):
        np.sign(param.data, out=scratch)
        scratch *= self.lam
        param.grad += scratch

    def _penalty(self, w):
        return self.lam * float(np.abs(w).sum(dtype=np.float64))


def from_config(config):
    """Rebuild a regularizer from its ``.config`` dict."""
    cls = {"L2": L2, "L1": L1}.get(config.get("class"))
    if cls is None:
        raise ValueError(f"unknown regularizer config {config!r}")
    return cls(config["lam"], all_params=config.get("all_params", False))
