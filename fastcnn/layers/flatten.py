"""Flatten: (N, C, H, W) -> (N, C*H*W), the bridge from convolutions to Affine layers.

A reshape: no copy for contiguous input, and backward reshapes dy back.
"""
import math

from fastcnn.layers.base import Layer, check_float_input

__all__ = ["Flatten"]


class Flatten(Layer):
    """``y = x.reshape(N, -1)``; ``dx = dy.reshape(x.shape)``."""

    def __init__(self):
        super().__init__()
        self._x_shape = None

    def forward(self, x):
        x = check_float_input(x, "Flatten")
        if x.ndim < 1:
            raise ValueError(f"Flatten: input must have a batch axis, got shape {x.shape}")
        self._x_shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dy):
        if self._x_shape is None:
            raise RuntimeError("Flatten.backward called before forward")
        if not self.need_input_grad:
            return None
        return dy.reshape(self._x_shape)

    def output_shape(self, input_shape):
        return (math.prod(input_shape),)
