"""LRN: local response normalization across channels (Krizhevsky, Sutskever & Hinton 2012, 3.3).

The AlexNet paper's formula, with ``alpha`` NOT divided by ``size``:

    b[c] = a[c] / (k + alpha * sum_{j = c - size//2}^{c + (size-1)//2} a[j]^2) ** beta

(channels outside [0, C) are skipped). PyTorch's and Caffe's LocalResponseNorm divide alpha by
``size``: ``LRN(size, alpha, beta, k)`` here equals ``torch.nn.LocalResponseNorm(size,
alpha * size, beta, k)``. Defaults are the paper's (size 5, alpha 1e-4, beta 0.75, k 2).
"""
import math

import numpy as np

from fastcnn.layers.base import Layer, check_float_input

__all__ = ["LRN"]


def _window_sum(a, before, after, out):
    """out[:, c] = sum of a[:, j] for j in [c - before, c + after] within [0, C)."""
    np.copyto(out, a)
    for d in range(1, before + 1):
        out[:, d:] += a[:, :-d]
    for d in range(1, after + 1):
        out[:, :-d] += a[:, d:]
    return out


def _inverse_power(s, beta, out):
    """out = s ** -beta. The paper's beta 0.75 (and 0.5, 1) by square roots and a division:
    np.power's general path took most of the layer's forward (20 ms of AlexNet small's first
    LRN); sqrt is correctly rounded, so this stays within a few float ulps of pow."""
    if beta == 0.75:
        np.sqrt(s, out=out)            # s^1/2
        root4 = np.sqrt(out)           # s^1/4
        out *= root4                   # s^3/4
        np.reciprocal(out, out=out)
    elif beta == 0.5:
        np.sqrt(s, out=out)
        np.reciprocal(out, out=out)
    elif beta == 1.0:
        np.reciprocal(s, out=out)
    else:
        np.power(s, -beta, out=out)
    return out


class LRN(Layer):
    """Cross-channel LRN on (N, C, H, W) (or (N, C)) input.

    With ``S[c] = k + alpha * sum_{j in W(c)} x[j]^2`` and ``y[c] = x[c] * S[c]^-beta``:
    ``dx[i] = dy[i] S[i]^-beta - 2 alpha beta x[i] sum_{c : i in W(c)} dy[c] x[c] S[c]^(-beta-1)``.
    """

    def __init__(self, size=5, alpha=1e-4, beta=0.75, k=2.0):
        super().__init__()
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
            raise ValueError(f"LRN: size must be a positive integer, got {size!r}")
        alpha, beta, k = float(alpha), float(beta), float(k)
        for name, v in (("alpha", alpha), ("beta", beta)):
            if not (v >= 0 and math.isfinite(v)):
                raise ValueError(f"LRN: {name} must be a finite number >= 0, got {v}")
        if not (k > 0 and math.isfinite(k)):
            raise ValueError(f"LRN: k must be a finite number > 0, got {k}")
        self.size, self.alpha, self.beta, self.k = int(size), alpha, beta, k
        self._set_config(size=self.size, alpha=alpha, beta=beta, k=k)
        self._saved = None

    def forward(self, x):
        # x, y, S: (N, C, H, W); the window runs along axis 1
        x = check_float_input(x, "LRN", ndim=(2, 4))
        sq = self._workspace("sq", x.shape, x.dtype)
        np.multiply(x, x, out=sq)
        s = self._workspace("s", x.shape, x.dtype)
        _window_sum(sq, self.size // 2, (self.size - 1) // 2, s)
        s *= self.alpha
        s += self.k
        spow = self._workspace("spow", x.shape, x.dtype)  # S^-beta
        _inverse_power(s, self.beta, spow)
        y = self._workspace("y", x.shape, x.dtype)
        np.multiply(x, spow, out=y)
        self._saved = (x, s, spow, y)
        return y

    def backward(self, dy):
        if self._saved is None:
            raise RuntimeError("LRN.backward called before forward")
        if not self.need_input_grad:
            return None
        x, s, spow, y = self._saved
        if dy.shape != x.shape:
            raise ValueError(f"LRN.backward: dy has shape {dy.shape}, expected {x.shape}")
        t = self._workspace("t", x.shape, x.dtype)
        np.multiply(dy, y, out=t)        # dy[c] x[c] S[c]^-beta
        t /= s                           # ... S[c]^(-beta-1)
        u = self._workspace("u", x.shape, x.dtype)
        # i in W(c)  <=>  c in [i - (size-1)//2, i + size//2]: the adjoint window
        _window_sum(t, (self.size - 1) // 2, self.size // 2, u)
        dx = self._workspace("dx", x.shape, x.dtype)
        np.multiply(x, u, out=dx)
        dx *= -2.0 * self.alpha * self.beta
        np.multiply(dy, spow, out=t)
        dx += t
        return dx

    def extra_repr(self):
        return f"size={self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"
