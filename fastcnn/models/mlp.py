"""MLP: the fully connected network of the vanishing-gradient, initialisation, batch-norm and
overfitting lessons (the classic book's MultiLayerNet / MultiLayerNetExtend).

Each hidden block is Affine -> [BatchNorm1D] -> activation -> [Dropout]; the output is an Affine
producing logits (the softmax lives in the loss).
"""
import numpy as np

from fastcnn import init
from fastcnn.layers import Affine, BatchNorm1D, Dropout, Flatten
from fastcnn.models.base import (Model, as_shape, check_classes, check_dropout, child_rng,
                                 make_activation)

__all__ = ["MLP"]


class MLP(Model):
    """Fully connected classifier.

    input_shape: per-sample shape (an int or a tuple; images are flattened first);
    hidden_sizes: widths of the hidden layers (the book's lessons use five or six of 100);
    activation: "relu", "sigmoid", "tanh" or "leaky_relu"; weight_init: any `fastcnn.init` name
    or a std (e.g. 0.01, "xavier", "he"); batchnorm: BatchNorm1D before each activation;
    dropout: drop probability after each hidden activation (0 = none).
    """

    def __init__(self, input_shape=(1, 28, 28), num_classes=10, hidden_sizes=(100, 100, 100, 100),
                 activation="relu", weight_init="he", batchnorm=False, dropout=0.0,
                 dtype=np.float32, rng=None):
        who = "MLP"
        shape = as_shape(input_shape, who)
        num_classes = check_classes(num_classes, who)
        hidden = [int(h) for h in hidden_sizes]
        if any(h < 1 for h in hidden):
            raise ValueError(f"{who}: hidden_sizes must be positive, got {hidden_sizes!r}")
        dropout = check_dropout(dropout, who)
        make_activation(activation)  # validate the name early
        dtype = np.dtype(dtype)
        rng = np.random.default_rng(rng)
        layers = [Flatten()] if len(shape) > 1 else []
        fan_in = int(np.prod(shape))
        for h in hidden:
            layers.append(Affine(fan_in, h, weight_init=weight_init, dtype=dtype, rng=rng))
            if batchnorm:
                layers.append(BatchNorm1D(h, dtype=dtype))
            layers.append(make_activation(activation))
            if dropout > 0:
                layers.append(Dropout(dropout, rng=child_rng(rng)))
            fan_in = h
        layers.append(Affine(fan_in, num_classes, weight_init=weight_init, dtype=dtype, rng=rng))
        config = dict(input_shape=list(shape), num_classes=num_classes, hidden_sizes=hidden,
                      activation=str(activation), weight_init=init.config_of(weight_init),
                      batchnorm=bool(batchnorm), dropout=dropout, dtype=dtype.name)
        super().__init__(layers, input_shape=shape, num_classes=num_classes, config=config)
