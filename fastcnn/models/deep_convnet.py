"""DeepConvNet: the classic book's VGG-like network (Saito, "Deep Learning from Scratch", 8.1):
six 3x3 convolutions 16-16-32-32-64-64 with ReLU, a 2x2 max pool after each pair, then
affine 50 - ReLU - dropout - affine. (The book also drops out the logits; we do not.)"""
import numpy as np

from fastcnn import init
from fastcnn.layers import (Affine, BatchNorm2D, Conv2D, Dropout, Flatten, MaxPool2D, ReLU,
                            Sequential)
from fastcnn.models.base import Model, as_shape, check_classes, check_dropout, child_rng

__all__ = ["DeepConvNet"]


class DeepConvNet(Model):
    """``[Conv3x3 - (BN) - ReLU] x2 - MaxPool2 - [..] x2 - MaxPool2 - [..] x2 - MaxPool2 - Flatten
    - Affine(hidden_size) - ReLU - Dropout(dropout) - Affine(num_classes)``.

    ``conv_channels`` (six widths) and ``padding`` (six paddings; the book pads the fourth
    convolution by 2 so 28x28 input ends at 4x4) follow the book; 123,552 parameters for
    (1, 28, 28) and 10 classes. ``batchnorm=True`` inserts BatchNorm2D before each ReLU.
    """

    def __init__(self, input_shape=(1, 28, 28), num_classes=10,
                 conv_channels=(16, 16, 32, 32, 64, 64), padding=(1, 1, 1, 2, 1, 1),
                 hidden_size=50, dropout=0.5, batchnorm=False, weight_init="he",
                 dtype=np.float32, rng=None):
        who = "DeepConvNet"
        shape = as_shape(input_shape, who)
        if len(shape) != 3:
            raise ValueError(f"{who}: input_shape must be (C, H, W), got {input_shape!r}")
        num_classes = check_classes(num_classes, who)
        channels = [int(c) for c in conv_channels]
        pads = [int(p) for p in padding]
        if len(channels) != 6 or len(pads) != 6:
            raise ValueError(f"{who}: conv_channels and padding need six entries each, got "
                             f"{conv_channels!r} and {padding!r}")
        dropout = check_dropout(dropout, who)
        dtype = np.dtype(dtype)
        rng = np.random.default_rng(rng)
        features, c_in = [], shape[0]
        for i, (c, p) in enumerate(zip(channels, pads)):
            features.append(Conv2D(c_in, c, 3, padding=p, weight_init=weight_init, dtype=dtype,
                                   rng=rng))
            if batchnorm:
                features.append(BatchNorm2D(c, dtype=dtype))
            features.append(ReLU())
            if i % 2 == 1:
                features.append(MaxPool2D(2))
            c_in = c
        features.append(Flatten())
        (flat,) = Sequential(features).output_shape(shape)
        layers = features + [
            Affine(flat, hidden_size, weight_init=weight_init, dtype=dtype, rng=rng),
            ReLU(),
        ]
        if dropout > 0:
            layers.append(Dropout(dropout, rng=child_rng(rng)))
        layers.append(Affine(hidden_size, num_classes, weight_init=weight_init, dtype=dtype,
                             rng=rng))
        config = dict(input_shape=list(shape), num_classes=num_classes, conv_channels=channels,
                      padding=pads, hidden_size=int(hidden_size), dropout=dropout,
                      batchnorm=bool(batchnorm), weight_init=init.config_of(weight_init),
                      dtype=dtype.name)
        super().__init__(layers, input_shape=shape, num_classes=num_classes, config=config)
