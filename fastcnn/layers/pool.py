"""MaxPool2D and AvgPool2D over `fastcnn.functional`'s pooling kernels (NCHW, per plane).

Max pooling keeps the argmax index of each window (``h*W + w`` within its plane) from forward to
backward; average pooling needs nothing but the input shape.
"""
import numpy as np

from fastcnn import functional as F
from fastcnn.layers.base import Layer, check_float_input, conv_output_size, pair
from fastcnn.layers.conv import _fmt

__all__ = ["MaxPool2D", "AvgPool2D"]


class _Pool2D(Layer):
    _name = "Pool2D"
    backward_reads_output = False   # it keeps the input shape (and indices), not y

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size = pair(kernel_size, self._name, "kernel_size", 1)
        self.stride = self.kernel_size if stride is None else pair(stride, self._name, "stride", 1)
        self.padding = pair(padding, self._name, "padding", 0)
        for k, p in zip(self.kernel_size, self.padding):
            if p > k // 2:
                raise ValueError(f"{self._name}: padding {padding!r} must be <= kernel_size // 2 "
                                 f"(kernel_size={kernel_size!r})")
        self._x_shape = None

    def output_shape(self, input_shape):
        c, h, w = input_shape
        oh = conv_output_size(h, self.kernel_size[0], self.stride[0], self.padding[0], self._name)
        ow = conv_output_size(w, self.kernel_size[1], self.stride[1], self.padding[1], self._name)
        return (c, oh, ow)

    def extra_repr(self):
        s = f"kernel_size={_fmt(self.kernel_size)}"
        if self.stride != self.kernel_size:
            s += f", stride={_fmt(self.stride)}"
        if self.padding != (0, 0):
            s += f", padding={_fmt(self.padding)}"
        return s


class MaxPool2D(_Pool2D):
    """``y[n, c, i, j] = max`` of the ``kernel_size`` window at ``(i*SH - PH, j*SW - PW)``.

    ``stride`` defaults to ``kernel_size``; padded cells never win. Backward routes each ``dy``
    to its window's winner (the first maximum in row-major order on ties).
    """


    _name = "MaxPool2D"

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__(kernel_size, stride, padding)
        self._set_config(kernel_size=kernel_size, stride=stride, padding=padding)
        self._indices = None
        # Set by Sequential just before forward when the previous layer is a ReLU: backward then
        # applies that ReLU's mask on its own, smaller gradient (see forward); forward consumes it
        self.mask_rectified_grad = False
        self._mask_grad = False
        self._y = None

    def forward(self, x):
        # x: (N, C, H, W) -> y, indices: (N, C, OH, OW)
        x = check_float_input(x, "MaxPool2D", ndim=4)
        oshape = x.shape[:2] + self.output_shape(x.shape[1:])[1:]
        y, self._indices = F.max_pool2d(
            x, self.kernel_size, stride=self.stride, padding=self.padding, return_indices=True,
            out=self._workspace("y", oshape, x.dtype),
            out_indices=self._workspace("indices", oshape, np.dtype(np.int32)))
        self._x_shape = x.shape
        # The ReLU before passes every gradient back masked by x > 0 at the cells that get one:
        # only window winners, where x is this layer's y. So masking dy by y > 0 here gives the
        # same dx (a NaN winner is y, and gets 0 either way) in a pass over a quarter (2x2) of
        # the data instead of the ReLU's over all of it. backward then reads y: a ReLU after
        # this layer must not overwrite it (Sequential reads backward_reads_output).
        self._mask_grad, self.mask_rectified_grad = self.mask_rectified_grad, False
        self.backward_reads_output = self._mask_grad
        self._y = y if self._mask_grad else None
        return y

    def backward(self, dy):
        if self._indices is None:
            raise RuntimeError("MaxPool2D.backward called before forward")
        if not self.need_input_grad:
            return None
        if self._mask_grad:
            dy = F.relu_backward(dy, self._y, out=self._workspace("dy_masked", self._y.shape,
                                                                   self._y.dtype))
        return F.max_pool2d_backward(dy, self._indices, self._x_shape,
                                     out=self._workspace("dx", self._x_shape, dy.dtype))


class AvgPool2D(_Pool2D):
    """``y[n, c, i, j] = mean`` of the window; padded zeros count (``count_include_pad=True``,
    PyTorch's default: every window is divided by ``KH*KW``)."""

    _name = "AvgPool2D"

    def __init__(self, kernel_size, stride=None, padding=0, count_include_pad=True):
        super().__init__(kernel_size, stride, padding)
        self.count_include_pad = bool(count_include_pad)
        self._set_config(kernel_size=kernel_size, stride=stride, padding=padding,
                         count_include_pad=self.count_include_pad)

    def forward(self, x):
        x = check_float_input(x, "AvgPool2D", ndim=4)
        self._x_shape = x.shape
        oshape = x.shape[:2] + self.output_shape(x.shape[1:])[1:]
        return F.avg_pool2d(x, self.kernel_size, stride=self.stride, padding=self.padding,
                            count_include_pad=self.count_include_pad,
                            out=self._workspace("y", oshape, x.dtype))

    def backward(self, dy):
        if self._x_shape is None:
            raise RuntimeError("AvgPool2D.backward called before forward")
        if not self.need_input_grad:
            return None
        return F.avg_pool2d_backward(dy, self._x_shape, self.kernel_size, stride=self.stride,
                                     padding=self.padding,
                                     count_include_pad=self.count_include_pad,
                                     out=self._workspace("dx", self._x_shape, dy.dtype))
