"""LRN: local response normalization across channels (Krizhevsky, Sutskever & Hinton 2012, 3.3).

The AlexNet paper's formula, with ``alpha`` NOT divided by ``size``:

    b[c] = a[c] / (k + alpha * sum_{j = c - size//2}^{c + (size-1)//2} a[j]^2) ** beta

(channels outside [0, C) are skipped). PyTorch's and Caffe's LocalResponseNorm divide alpha by
``size``: ``LRN(size, alpha, beta, k)`` here equals ``torch.nn.LocalResponseNorm(size,
alpha * size, beta, k)``. Defaults are the paper's (size 5, alpha 1e-4, beta 0.75, k 2).
"""
import math

import numpy as np

from fastcnn import functional as F
from fastcnn.layers.base import Layer, check_float_input

__all__ = ["LRN"]


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
        # x, y, S: (N, C, H, W) or (N, C); the window runs along axis 1
        x = check_float_input(x, "LRN", ndim=(2, 4))
        y, s = F.lrn(x, self.size, self.alpha, self.beta, self.k,
                     out=self._workspace("y", x.shape, x.dtype),
                     scale_out=self._workspace("s", x.shape, x.dtype))
        self._saved = (x, s, y)
        return y

    def backward(self, dy):
        if self._saved is None:
            raise RuntimeError("LRN.backward called before forward")
        if not self.need_input_grad:
            return None
        x, s, y = self._saved
        if dy.shape != x.shape:
            raise ValueError(f"LRN.backward: dy has shape {dy.shape}, expected {x.shape}")
        return F.lrn_backward(dy, x, y, s, self.size, self.alpha, self.beta,
                              out=self._workspace("dx", x.shape, x.dtype))

    def extra_repr(self):
        return f"size={self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"
