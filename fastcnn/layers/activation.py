"""Element-wise activations: ReLU, LeakyReLU, Sigmoid, Tanh (NumPy ufuncs into kept buffers).

Each forward writes into an output array the layer keeps, each backward into a kept dx array
(see the buffer-reuse contract in `fastcnn.layers.base`). float32 stays float32.
"""
import math

import numpy as np
from scipy.special import expit

from fastcnn import functional as F
from fastcnn.layers.base import Layer, check_float_input

__all__ = ["ReLU", "LeakyReLU", "Sigmoid", "Tanh"]


class _Activation(Layer):
    def __init__(self):
        super().__init__()
        self._y = None

    def _check_dy(self, dy, ref):
        if ref is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward")
        if dy.shape != ref.shape:
            raise ValueError(f"{type(self).__name__}.backward: dy has shape {dy.shape}, expected "
                             f"{ref.shape}")


class ReLU(_Activation):
    """``y = max(x, 0)``; ``dx = dy`` where ``y > 0``, else 0 (the gradient at exactly 0 is 0).
    NaN inputs stay NaN, so a diverging run shows up in the loss.

    ``inplace`` (set by ``Sequential`` just before it calls ``forward``, where that is safe; see
    ``Sequential.forward``): y is written over x and, in the matching backward, dx over dy, so
    the layer keeps no output or gradient buffer of its own. With ``input_rectified`` too (the
    previous layer, a Conv2D, applied max(., 0) in its own epilogue) forward only records its
    input. ``forward`` consumes both flags: a later call on its own works as usual."""

    def __init__(self):
        super().__init__()
        self.inplace = False
        self.input_rectified = False   # set with inplace when the previous layer fused max(., 0)
        self._in_place = False   # how the last forward ran (its backward does the same)
        # set by Sequential when the next layer (MaxPool2D) masks its own gradient by its
        # output > 0, which is this layer's mask on every cell the gradient reaches: backward
        # then passes dy through (consumed by forward, as inplace)
        self.grad_masked_by_next = False
        self._pass_grad = False

    def forward(self, x):
        x = check_float_input(x, "ReLU")
        self._in_place, self.inplace = self.inplace, False
        rectified, self.input_rectified = self.input_rectified and self._in_place, False
        self._pass_grad, self.grad_masked_by_next = self.grad_masked_by_next, False
        y = x if self._in_place else self._workspace("y", x.shape, x.dtype)
        if not rectified and y.flags.c_contiguous:
            F.relu(x, out=y)                 # one threaded pass
        elif not rectified:
            np.maximum(x, 0, out=y)          # in place over a strided input
        self._y = y
        return y

    def backward(self, dy):
        self._check_dy(dy, self._y)
        if not self.need_input_grad:
            return None
        if self._pass_grad:
            return dy   # already masked by the max pooling after this layer
        dx = dy if self._in_place else self._workspace("dx", dy.shape, self._y.dtype)
        return F.relu_backward(dy, self._y, out=dx)   # one threaded pass, in place or not


class LeakyReLU(_Activation):
    """``y = x if x > 0 else slope * x``; ``dx = dy`` where ``x > 0``, else ``slope * dy``."""

    def __init__(self, slope=0.01):
        super().__init__()
        slope = float(slope)
        if not math.isfinite(slope):
            raise ValueError(f"LeakyReLU: slope must be finite, got {slope}")
        self.slope = slope
        self._set_config(slope=slope)
        self._mask = None

    def forward(self, x):
        x = check_float_input(x, "LeakyReLU")
        mask = self._workspace("mask", x.shape, np.bool_)
        np.greater(x, 0, out=mask)
        y = self._workspace("y", x.shape, x.dtype)
        np.multiply(x, self.slope, out=y)
        np.copyto(y, x, where=mask)
        self._y, self._mask = y, mask
        return y

    def backward(self, dy):
        self._check_dy(dy, self._y)
        if not self.need_input_grad:
            return None
        dx = self._workspace("dx", dy.shape, self._y.dtype)
        np.multiply(dy, self.slope, out=dx)
        np.copyto(dx, dy, where=self._mask)
        return dx


class Sigmoid(_Activation):
    """``y = 1 / (1 + exp(-x))``; ``dx = dy * y * (1 - y)``.

    Computed by ``scipy.special.expit``, which never overflows: ``x = -1000`` gives exactly 0
    with no warning (the naive formula overflows ``exp(1000)``)."""

    def forward(self, x):
        x = check_float_input(x, "Sigmoid")
        y = self._workspace("y", x.shape, x.dtype)
        expit(x, out=y)
        self._y = y
        return y

    def backward(self, dy):
        self._check_dy(dy, self._y)
        if not self.need_input_grad:
            return None
        y = self._y
        dx = self._workspace("dx", dy.shape, y.dtype)
        np.subtract(1, y, out=dx)
        dx *= y
        dx *= dy
        return dx


class Tanh(_Activation):
    """``y = tanh(x)``; ``dx = dy * (1 - y^2)``."""

    def forward(self, x):
        x = check_float_input(x, "Tanh")
        y = self._workspace("y", x.shape, x.dtype)
        np.tanh(x, out=y)
        self._y = y
        return y

    def backward(self, dy):
        self._check_dy(dy, self._y)
        if not self.need_input_grad:
            return None
        y = self._y
        dx = self._workspace("dx", dy.shape, y.dtype)
        np.multiply(y, y, out=dx)
        np.subtract(1, dx, out=dx)
        dx *= dy
        return dx
