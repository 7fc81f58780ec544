"""AlexNet (Krizhevsky, Sutskever & Hinton 2012): five convolutions with overlapping max pools
and LRN, three fully connected layers with dropout -- the model of the study notes' last section.

Single-tower: the paper split conv2/4/5 and the FC layers across two GPUs (grouped
convolutions); like torchvision we keep one tower with the paper's channel counts, which gives
the often-quoted ~62.4M parameters at 1000 classes. A "small" variant keeps the structure for
32x32 inputs (CIFAR-10) at a size a CPU trains in minutes.
"""
import numpy as np

from fastcnn import init
from fastcnn.layers import (LRN, Affine, BatchNorm2D, Conv2D, Dropout, Flatten, MaxPool2D, ReLU,
                            Sequential)
from fastcnn.models.base import Model, as_shape, check_classes, check_dropout, child_rng

__all__ = ["AlexNet"]

# (kernel, stride, padding) of the five convolutions, default widths, FC width
_VARIANTS = {
    "original": dict(convs=((11, 4, 0), (5, 1, 2), (3, 1, 1), (3, 1, 1), (3, 1, 1)),
                     channels=(96, 256, 384, 384, 256), hidden_size=4096),
    "small": dict(convs=((5, 1, 2), (5, 1, 2), (3, 1, 1), (3, 1, 1), (3, 1, 1)),
                  channels=(64, 128, 192, 192, 128), hidden_size=512),
}
_NORMS = ("lrn", "batchnorm", "none")


class AlexNet(Model):
    """AlexNet::

        conv1 - ReLU - LRN - MaxPool(3, s2)      original: 96 @ 11x11 stride 4, 227x227 -> 55 -> 27
        conv2 - ReLU - LRN - MaxPool(3, s2)      256 @ 5x5 pad 2                 27 -> 13
        conv3 - ReLU, conv4 - ReLU               384, 384 @ 3x3 pad 1
        conv5 - ReLU - MaxPool(3, s2)            256 @ 3x3 pad 1                 13 -> 6
        Flatten - Affine(4096) - ReLU - Dropout - Affine(4096) - ReLU - Dropout - Affine(classes)

    variant: "original" (input (3, 227, 227)) or "small" (input (3, 32, 32): 5x5/5x5/3x3x3
    convolutions at stride 1 with widths 64-128-192-192-128, FC width 512, same pools:
    32 -> 15 -> 7 -> 3). channels / hidden_size override the variant's widths.
    norm: "lrn" (the paper's LRN after conv1 and conv2, `fastcnn.layers.LRN` defaults),
    "batchnorm" (BatchNorm2D before every conv's ReLU instead) or "none".
    dropout: the paper's 0.5 on the first two FC layers' outputs.
    weight_init: He by default (the paper used N(0, 0.01) with some biases at 1).
    """

    def __init__(self, input_shape=(3, 227, 227), num_classes=1000, variant="original",
                 norm="lrn", dropout=0.5, channels=None, hidden_size=None, weight_init="he",
                 dtype=np.float32, rng=None):
        who = "AlexNet"
        shape = as_shape(input_shape, who)
        if len(shape) != 3:
            raise ValueError(f"{who}: input_shape must be (C, H, W), got {input_shape!r}")
        if variant not in _VARIANTS:
            raise ValueError(f"{who}: variant must be one of {sorted(_VARIANTS)}, got {variant!r}")
        norm = "none" if norm is None else str(norm).lower()
        if norm not in _NORMS:
            raise ValueError(f"{who}: norm must be one of {_NORMS} or None, got {norm!r}")
        num_classes = check_classes(num_classes, who)
        dropout = check_dropout(dropout, who)
        spec = _VARIANTS[variant]
        widths = [int(c) for c in (spec["channels"] if channels is None else channels)]
        if len(widths) != 5:
            raise ValueError(f"{who}: channels needs five widths, got {channels!r}")
        hidden = int(spec["hidden_size"] if hidden_size is None else hidden_size)
        dtype = np.dtype(dtype)
        rng = np.random.default_rng(rng)

        features, c_in = [], shape[0]
        for i, ((k, s, p), c) in enumerate(zip(spec["convs"], widths)):
            features.append(Conv2D(c_in, c, k, stride=s, padding=p, weight_init=weight_init,
                                   dtype=dtype, rng=rng))
            if norm == "batchnorm":
                features.append(BatchNorm2D(c, dtype=dtype))
            features.append(ReLU())
            if norm == "lrn" and i < 2:
                features.append(LRN())
            if i in (0, 1, 4):
                features.append(MaxPool2D(3, stride=2))
            c_in = c
        features.append(Flatten())
        try:
            (flat,) = Sequential(features).output_shape(shape)
        except ValueError as err:
            raise ValueError(f"{who}({variant!r}): input_shape {shape} is too small for this "
                             f"variant ({err})") from None
        layers = list(features)
        for _ in range(2):
            layers.append(Affine(flat, hidden, weight_init=weight_init, dtype=dtype, rng=rng))
            layers.append(ReLU())
            if dropout > 0:
                layers.append(Dropout(dropout, rng=child_rng(rng)))
            flat = hidden
        layers.append(Affine(hidden, num_classes, weight_init=weight_init, dtype=dtype, rng=rng))
        config = dict(input_shape=list(shape), num_classes=num_classes, variant=variant,
                      norm=norm, dropout=dropout, channels=widths, hidden_size=hidden,
                      weight_init=init.config_of(weight_init), dtype=dtype.name)
        super().__init__(layers, input_shape=shape, num_classes=num_classes, config=config)
