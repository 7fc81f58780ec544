"""fastcnn.layers: stateful layers over `fastcnn.functional` (params, grads, buffers, train/eval).

Every layer: ``forward(x)`` / ``layer(x)``, ``backward(dy)`` (accumulates into
``Parameter.grad``), ``parameters()``, ``train()``/``eval()``, ``zero_grad()``,
``state_dict()``/``load_state_dict(d, strict=True)``. Outputs are the layer's own reused buffers:
see `fastcnn.layers.base` for that contract.
"""
from fastcnn.layers.activation import LeakyReLU, ReLU, Sigmoid, Tanh
from fastcnn.layers.base import Layer, Parameter, Sequential
from fastcnn.layers.conv import Conv2D
from fastcnn.layers.dropout import Dropout
from fastcnn.layers.flatten import Flatten
from fastcnn.layers.linear import Affine, Dense
from fastcnn.layers.loss import SoftmaxCrossEntropy
from fastcnn.layers.lrn import LRN
from fastcnn.layers.norm import BatchNorm1D, BatchNorm2D
from fastcnn.layers.pool import AvgPool2D, MaxPool2D

__all__ = [
    "Parameter", "Layer", "Sequential", "Conv2D", "MaxPool2D", "AvgPool2D", "BatchNorm2D",
    "BatchNorm1D", "Affine", "Dense", "ReLU", "LeakyReLU", "Sigmoid", "Tanh", "Dropout",
    "Flatten", "LRN", "SoftmaxCrossEntropy", "from_config",
]

_REGISTRY = {name: globals()[name] for name in __all__
             if name not in ("Parameter", "Layer", "Dense", "from_config")}


def from_config(config):
    """Rebuild a layer (or a Sequential of layers) from its ``.config`` dict.

    The weights are freshly initialised: load a state dict to restore trained values.
    """
    if not isinstance(config, dict) or "class" not in config:
        raise ValueError(f"layer config must be a dict with a 'class' key, got {config!r}")
    args = dict(config)
    name = args.pop("class")
    if name == "Sequential":
        return Sequential([from_config(c) for c in args.get("layers", [])])
    cls = _REGISTRY.get(name)
    if cls is None:
        raise ValueError(f"unknown layer class {name!r} in config; known: {sorted(_REGISTRY)}")
    return cls(**args)
