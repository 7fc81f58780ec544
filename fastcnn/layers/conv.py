"""Conv2D: 2-D convolution (cross-correlation, NCHW) over `fastcnn.functional.conv2d`.

The arithmetic (im2col + GEMM + bias epilogue) lives in the compiled kernels behind
``F.conv2d`` / ``F.conv2d_backward``; this class only holds the weight, bias and the saved input.
"""
import numpy as np

from fastcnn import functional as F
from fastcnn import init
from fastcnn.layers.base import Layer, check_float_input, conv_output_size, pair, store_grad

__all__ = ["Conv2D"]


def _positive_int(v, who, name):
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
        raise ValueError(f"{who}: {name} must be a positive integer, got {v!r}")
    return int(v)


def float_dtype(dtype, who):
    dtype = np.dtype(dtype)
    if dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise TypeError(f"{who}: dtype must be float32 or float64, got {dtype}")
    return dtype


class Conv2D(Layer):
    """``y[n, o] = sum_c weight[o, c] (*) x[n, c] + bias[o]`` (cross-correlation, like PyTorch).

    Shapes: x (N, C, H, W), weight (OC, C, KH, KW), bias (OC,), y (N, OC, OH, OW) with
    ``OH = (H + 2*PH - KH) // SH + 1``. ``kernel_size``, ``stride`` and ``padding`` take an int or
    an ``(h, w)`` pair; padding is zeros. The weight is drawn by ``weight_init`` (default He:
    ``std = sqrt(2 / (C*KH*KW))``, see `fastcnn.init`); the bias starts at zero and is excluded
    from weight decay.
    """

    backward_reads_output = False   # it keeps its input, not y

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True,
                 weight_init="he", dtype=np.float32, rng=None):
        super().__init__()
        who = "Conv2D"
        self.in_channels = _positive_int(in_channels, who, "in_channels")
        self.out_channels = _positive_int(out_channels, who, "out_channels")
        self.kernel_size = pair(kernel_size, who, "kernel_size", 1)
        self.stride = pair(stride, who, "stride", 1)
        self.padding = pair(padding, who, "padding", 0)
        dtype = float_dtype(dtype, who)
        shape = (self.out_channels, self.in_channels) + self.kernel_size
        self.weight = self.add_parameter("weight", init.get(weight_init)(shape, rng, dtype))
        self.bias = (self.add_parameter("bias", np.zeros(self.out_channels, dtype), decay=False)
                     if bias else None)
        self._set_config(in_channels=self.in_channels, out_channels=self.out_channels,
                         kernel_size=kernel_size, stride=stride, padding=padding, bias=bool(bias),
                         weight_init=init.config_of(weight_init), dtype=dtype.name)
        self._x = None
        # set by Sequential just before forward when a ReLU follows in place: the kernels'
        # epilogue applies it, and the ReLU layer only records the result
        self.fuse_relu = False

    def forward(self, x):
        # x: (N, C, H, W) -> y: (N, OC, OH, OW)
        x = check_float_input(x, "Conv2D", self.weight.dtype, ndim=4)
        self._x = x
        oshape = x.shape[:1] + self.output_shape(x.shape[1:])
        relu, self.fuse_relu = self.fuse_relu, False   # consumed: a call on its own is plain
        return F.conv2d(x, self.weight.data, None if self.bias is None else self.bias.data,
                        stride=self.stride, padding=self.padding, relu=relu,
                        out=self._workspace("y", oshape, x.dtype))

    def backward(self, dy):
        if self._x is None:
            raise RuntimeError("Conv2D.backward called before forward")
        dx, dweight, dbias = F.conv2d_backward(
            dy, self._x, self.weight.data, stride=self.stride, padding=self.padding,
            need_dx=self.need_input_grad, need_dbias=self.bias is not None,
            out=self._workspace("dx", self._x.shape, self._x.dtype) if self.need_input_grad
            else None)
        store_grad(self.weight, dweight)
        if self.bias is not None:
            store_grad(self.bias, dbias)
        return dx

    def output_shape(self, input_shape):
        c, h, w = input_shape
        if c != self.in_channels:
            raise ValueError(f"Conv2D: expects {self.in_channels} input channels, got shape "
                             f"{tuple(input_shape)}")
        oh = conv_output_size(h, self.kernel_size[0], self.stride[0], self.padding[0], "Conv2D")
        ow = conv_output_size(w, self.kernel_size[1], self.stride[1], self.padding[1], "Conv2D")
        return (self.out_channels, oh, ow)

    def extra_repr(self):
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={_fmt(self.kernel_size)}"
        if self.stride != (1, 1):
            s += f", stride={_fmt(self.stride)}"
        if self.padding != (0, 0):
            s += f", padding={_fmt(self.padding)}"
        if self.bias is None:
            s += ", bias=False"
        return s


def _fmt(p):
    return p[0] if p[0] == p[1] else p
