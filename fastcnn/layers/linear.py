"""Affine (alias Dense): the fully connected layer ``y = x W^T + b`` over ``F.linear``.

Weight layout is (out_features, in_features), like PyTorch and like conv's (OC, C, KH, KW), so
one fan computation serves both (`fastcnn.init.compute_fans`). Not a conv: input with more than
two axes is flattened per sample, as the classic book's Affine does.
"""
import math

import numpy as np

from fastcnn import functional as F
from fastcnn import init
from fastcnn.layers.base import Layer, check_float_input
from fastcnn.layers.conv import _positive_int, float_dtype

__all__ = ["Affine", "Dense"]


class Affine(Layer):
    """``y = x @ weight.T + bias``.

    Shapes: x (N, in_features) (or (N, ...) with ``prod(...) == in_features``, flattened),
    weight (out_features, in_features), bias (out_features,), y (N, out_features).
    Backward: ``dW += dy^T x``, ``db += sum_n dy``, ``dx = dy W`` (skipped when
    ``need_input_grad`` is False). The bias is excluded from weight decay by default.
    """

    backward_reads_output = False   # it keeps its input, not y

    def __init__(self, in_features, out_features, bias=True, weight_init="he",
                 dtype=np.float32, rng=None):
        super().__init__()
        self.in_features = _positive_int(in_features, "Affine", "in_features")
        self.out_features = _positive_int(out_features, "Affine", "out_features")
        dtype = float_dtype(dtype, "Affine")
        shape = (self.out_features, self.in_features)
        self.weight = self.add_parameter("weight", init.get(weight_init)(shape, rng, dtype))
        self.bias = (self.add_parameter("bias", np.zeros(self.out_features, dtype), decay=False)
                     if bias else None)
        self._set_config(in_features=self.in_features, out_features=self.out_features,
                         bias=bool(bias), weight_init=init.config_of(weight_init),
                         dtype=dtype.name)
        self._x = None
        self._x_shape = None

    def forward(self, x):
        x = check_float_input(x, type(self).__name__, self.weight.dtype)
        if x.ndim < 2:
            raise ValueError(f"Affine: input must have a batch axis, got shape {x.shape}")
        self._x_shape = x.shape
        if x.ndim > 2:
            x = x.reshape(x.shape[0], -1)
        if x.shape[1] != self.in_features:
            raise ValueError(f"Affine: expects {self.in_features} input features, got input "
                             f"shape {self._x_shape}")
        self._x = x
        return F.linear(x, self.weight.data, None if self.bias is None else self.bias.data,
                        out=self._workspace("y", (x.shape[0], self.out_features), x.dtype))

    def backward(self, dy):
        if self._x is None:
            raise RuntimeError("Affine.backward called before forward")
        x = self._x
        if dy.shape != (x.shape[0], self.out_features):
            raise ValueError(f"Affine.backward: dy has shape {dy.shape}, expected "
                             f"{(x.shape[0], self.out_features)}")
        need_dx = self.need_input_grad
        # the gradients are added into .grad by the kernel: no weight-sized temporary (151 MB
        # for AlexNet's fc6) to allocate, fill and add; stored there instead when zero_grad()
        # left them unwritten, which spares the kernel's read of them
        params = [self.weight] if self.bias is None else [self.weight, self.bias]
        taken = [p.take_grad() for p in params]
        overwrite = all(o for _, o in taken)
        if not overwrite:   # the two disagree (only one was cleared): add into both
            for g, o in taken:
                if o:
                    g.fill(0)
        try:
            dx, _, _ = F.linear_backward(
                dy, x, self.weight.data, need_dx=need_dx, need_dbias=self.bias is not None,
                out=self._workspace("dx", x.shape, x.dtype) if need_dx else None,
                grads=(taken[0][0], None if self.bias is None else taken[1][0]),
                accumulate=not overwrite)
        except BaseException:   # nothing was stored: the cleared gradients still read as zeros
            if overwrite:
                for p in params:
                    p.zero_grad()
            raise
        return dx.reshape(self._x_shape) if need_dx else None

    def output_shape(self, input_shape):
        if math.prod(input_shape) != self.in_features:
            raise ValueError(f"Affine: expects {self.in_features} input features, got per-sample "
                             f"shape {tuple(input_shape)}")
        return (self.out_features,)

    def extra_repr(self):
        s = f"{self.in_features}, {self.out_features}"
        return s if self.bias is not None else s + ", bias=False"


Dense = Affine
