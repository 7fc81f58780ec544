"""fastcnn.models: MLP, SimpleConvNet, DeepConvNet, AlexNet -- Sequentials of fastcnn.layers.

Every model takes ``input_shape``, ``num_classes``, ``dtype`` and ``rng``, exposes ``config``
(JSON-able constructor arguments) and ``summary()``; ``build(config)`` rebuilds the architecture
(fresh weights: load a state dict or a checkpoint to restore trained ones).
"""
from fastcnn.models.alexnet import AlexNet
from fastcnn.models.base import Model
from fastcnn.models.deep_convnet import DeepConvNet
from fastcnn.models.mlp import MLP
from fastcnn.models.simple_convnet import SimpleConvNet

__all__ = ["Model", "MLP", "SimpleConvNet", "DeepConvNet", "AlexNet", "MODELS", "build"]

MODELS = {"MLP": MLP, "SimpleConvNet": SimpleConvNet, "DeepConvNet": DeepConvNet,
          "AlexNet": AlexNet}


def build(config, rng=None):
    """Rebuild a model (or a plain Sequential of built-in layers) from its ``config`` dict."""
    if not isinstance(config, dict) or "class" not in config:
        raise ValueError(f"model config must be a dict with a 'class' key, got {config!r}")
    args = dict(config)
    name = args.pop("class")
    if name == "Sequential":
        from fastcnn.layers import from_config
        return from_config(config)
    cls = MODELS.get(name)
    if cls is None:
        raise ValueError(f"unknown model class {name!r}; known: {sorted(MODELS)} and Sequential")
    return cls(**args, rng=rng)
