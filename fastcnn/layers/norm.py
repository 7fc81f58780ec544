"""BatchNorm2D (per channel over N, H, W) and BatchNorm1D (per feature over N).

Ioffe & Szegedy 2015. The statistics, running-average update and backward live in
``F.batch_norm`` / ``F.batch_norm_backward``; this class holds gamma, beta and the running buffers.
"""
import math

import numpy as np

from fastcnn import functional as F
from fastcnn.layers.base import Layer, check_float_input, store_grad
from fastcnn.layers.conv import float_dtype

__all__ = ["BatchNorm2D", "BatchNorm1D"]


class _BatchNorm(Layer):
    """Training: ``y = gamma * (x - mean_B) / sqrt(var_B + eps) + beta`` with the batch's biased
    variance, and ``running = (1 - momentum) * running + momentum * batch_stat`` (PyTorch's
    meaning of ``momentum``: the weight of the NEW statistic; ``running_var`` stores the unbiased
    variance ``var_B * m / (m - 1)``). Eval: the running statistics replace the batch ones.
    gamma (``weight``) starts at 1 and beta (``bias``) at 0; neither is weight-decayed by default.
    """

    backward_reads_output = False   # it keeps its input, not y

    _ndim = None
    _name = "BatchNorm"

    def __init__(self, num_features, eps=1e-5, momentum=0.1, dtype=np.float32):
        super().__init__()
        who = self._name
        if isinstance(num_features, bool) or not isinstance(num_features, (int, np.integer)) \
                or num_features < 1:
            raise ValueError(f"{who}: num_features must be a positive integer, "
                             f"got {num_features!r}")
        eps, momentum = float(eps), float(momentum)
        if not (eps > 0 and math.isfinite(eps)):
            raise ValueError(f"{who}: eps must be > 0, got {eps}")
        if not (0.0 <= momentum <= 1.0):
            raise ValueError(f"{who}: momentum must be in [0, 1], got {momentum}")
        dtype = float_dtype(dtype, who)
        self.num_features, self.eps, self.momentum = int(num_features), eps, momentum
        c = self.num_features
        self.weight = self.add_parameter("weight", np.ones(c, dtype), decay=False)
        self.bias = self.add_parameter("bias", np.zeros(c, dtype), decay=False)
        self.add_buffer("running_mean", np.zeros(c, dtype))
        self.add_buffer("running_var", np.ones(c, dtype))
        self._set_config(num_features=c, eps=eps, momentum=momentum, dtype=dtype.name)
        self._saved = None

    running_mean = property(lambda self: self._buffers["running_mean"])
    running_var = property(lambda self: self._buffers["running_var"])

    def forward(self, x):
        x = check_float_input(x, self._name, self.weight.dtype, ndim=self._ndim)
        if x.shape[1] != self.num_features:
            raise ValueError(f"{self._name}: expects {self.num_features} channels, got input "
                             f"shape {x.shape}")
        # running_* are registered buffers: updated in place by the kernel when training
        y, mean, invstd = F.batch_norm(
            x, self.weight.data, self.bias.data, self._buffers["running_mean"],
            self._buffers["running_var"], training=self.training, momentum=self.momentum,
            eps=self.eps, out=self._workspace("y", x.shape, x.dtype))
        self._saved = (x, mean, invstd, self.training)
        return y

    def backward(self, dy):
        if self._saved is None:
            raise RuntimeError(f"{self._name}.backward called before forward")
        x, mean, invstd, training = self._saved
        dx, dgamma, dbeta = F.batch_norm_backward(dy, x, self.weight.data, mean, invstd,
                                                  training=training,
                                                  out=self._workspace("dx", x.shape, x.dtype))
        store_grad(self.weight, dgamma)
        store_grad(self.bias, dbeta)
        return dx

    def output_shape(self, input_shape):
        if len(input_shape) != self._ndim - 1 or input_shape[0] != self.num_features:
            raise ValueError(f"{self._name}({self.num_features}) cannot take per-sample shape "
                             f"{tuple(input_shape)}")
        return tuple(input_shape)

    def extra_repr(self):
        s = f"{self.num_features}"
        if self.eps != 1e-5:
            s += f", eps={self.eps}"
        if self.momentum != 0.1:
            s += f", momentum={self.momentum}"
        return s


class BatchNorm2D(_BatchNorm):
    __doc__ = ("Batch normalization of (N, C, H, W) input, statistics per channel over N, H, W.\n\n"
               + _BatchNorm.__doc__)
    _ndim = 4
    _name = "BatchNorm2D"


class BatchNorm1D(_BatchNorm):
    __doc__ = ("Batch normalization of (N, F) input, statistics per feature over the batch.\n\n"
               + _BatchNorm.__doc__)
    _ndim = 2
    _name = "BatchNorm1D"
