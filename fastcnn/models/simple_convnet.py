"""SimpleConvNet: conv - ReLU - max pool - affine - ReLU - affine, the classic book's first CNN
(Saito, "Deep Learning from Scratch", ch. 7: 30 filters of 5x5, pool 2, 100 hidden units)."""
import numpy as np

from fastcnn import init
from fastcnn.layers import Affine, Conv2D, Flatten, MaxPool2D, ReLU, Sequential
from fastcnn.models.base import Model, as_shape, check_classes

__all__ = ["SimpleConvNet"]


class SimpleConvNet(Model):
    """``Conv2D(C, conv_channels, kernel_size, stride, padding) - ReLU - MaxPool2D(2) - Flatten -
    Affine(hidden_size) - ReLU - Affine(num_classes)``.

    Defaults are the book's (input (1, 28, 28), 30 filters of 5x5, 100 hidden units: 433,890
    parameters for 10 classes) except the initialisation: He (the book draws with std 0.01; pass
    ``weight_init=0.01`` for that).
    """

    def __init__(self, input_shape=(1, 28, 28), num_classes=10, conv_channels=30, kernel_size=5,
                 stride=1, padding=0, hidden_size=100, weight_init="he", dtype=np.float32,
                 rng=None):
        who = "SimpleConvNet"
        shape = as_shape(input_shape, who)
        if len(shape) != 3:
            raise ValueError(f"{who}: input_shape must be (C, H, W), got {input_shape!r}")
        num_classes = check_classes(num_classes, who)
        dtype = np.dtype(dtype)
        rng = np.random.default_rng(rng)
        features = [
            Conv2D(shape[0], conv_channels, kernel_size, stride=stride, padding=padding,
                   weight_init=weight_init, dtype=dtype, rng=rng),
            ReLU(),
            MaxPool2D(2),
            Flatten(),
        ]
        (flat,) = Sequential(features).output_shape(shape)
        layers = features + [
            Affine(flat, hidden_size, weight_init=weight_init, dtype=dtype, rng=rng),
            ReLU(),
            Affine(hidden_size, num_classes, weight_init=weight_init, dtype=dtype, rng=rng),
        ]
        config = dict(input_shape=list(shape), num_classes=num_classes,
                      conv_channels=int(conv_channels), kernel_size=kernel_size, stride=stride,
                      padding=padding, hidden_size=int(hidden_size),
                      weight_init=init.config_of(weight_init), dtype=dtype.name)
        super().__init__(layers, input_shape=shape, num_classes=num_classes, config=config)
