"""Dropout (inverted; Srivastava et al. 2014): zero each unit with probability p while training.

Inverted: kept units are scaled by ``1 / (1 - p)`` during training so that ``eval()`` is exactly
the identity (no rescaling at test time), as in PyTorch. The mask comes from the layer's own
``np.random.Generator`` (``self.rng``), whose state checkpoints save for an exact resume.
"""
import numpy as np

from fastcnn.layers.base import Layer, check_float_input

__all__ = ["Dropout"]


class Dropout(Layer):
    """Training: ``mask = [u >= p]`` with ``u ~ U[0, 1)``, ``y = x * mask / (1 - p)``,
    ``dx = dy * mask / (1 - p)``. Eval: ``y = x``, ``dx = dy``.

    ``p`` in [0, 1). ``rng``: a Generator, a seed, or None (a fresh unseeded generator).
    """

    def __init__(self, p=0.5, rng=None):
        super().__init__()
        p = float(p)
        if not (0.0 <= p < 1.0):
            raise ValueError(f"Dropout: p must be in [0, 1), got {p}")
        self.p = p
        self.rng = np.random.default_rng(rng)
        self._set_config(p=p)
        self._mask = None
        self._train_fwd = False

    def forward(self, x):
        x = check_float_input(x, "Dropout")
        self._train_fwd = self.training and self.p > 0
        if not self._train_fwd:
            return x
        u = self._workspace("u", x.shape, x.dtype)
        self.rng.random(dtype=x.dtype, out=u)
        mask = self._workspace("mask", x.shape, np.bool_)
        np.greater_equal(u, self.p, out=mask)
        y = self._workspace("y", x.shape, x.dtype)
        np.multiply(x, mask, out=y)
        y *= 1.0 / (1.0 - self.p)
        self._mask = mask
        return y

    def backward(self, dy):
        if not self.need_input_grad:
            return None
        if not self._train_fwd:
            return dy
        if dy.shape != self._mask.shape:
            raise ValueError(f"Dropout.backward: dy has shape {dy.shape}, expected "
                             f"{self._mask.shape}")
        dx = self._workspace("dx", dy.shape, dy.dtype)
        np.multiply(dy, self._mask, out=dx)
        dx *= 1.0 / (1.0 - self.p)
        return dx

    def extra_repr(self):
        return f"p={self.p}"
