"""Model: a Sequential that knows its input shape, class count and constructor arguments.

Models are plain Sequentials underneath (print, index, insert or replace layers at will); the
extra ``config`` lets checkpoints rebuild the same architecture with ``fastcnn.models.build``.
"""
import numpy as np

from fastcnn.layers import LeakyReLU, ReLU, Sequential, Sigmoid, Tanh

__all__ = ["Model", "make_activation", "child_rng"]

_ACTIVATIONS = {"relu": ReLU, "sigmoid": Sigmoid, "tanh": Tanh, "leaky_relu": LeakyReLU}


def make_activation(name):
    """A fresh activation layer from its name: relu, sigmoid, tanh or leaky_relu."""
    try:
        return _ACTIVATIONS[str(name).lower()]()
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; choose one of {sorted(_ACTIVATIONS)}") \
            from None


def child_rng(rng):
    """An independent Generator for a stochastic layer (Dropout), derived from ``rng``."""
    return rng.spawn(1)[0]


def as_shape(input_shape, who):
    if isinstance(input_shape, (int, np.integer)):
        input_shape = (int(input_shape),)
    shape = tuple(int(s) for s in input_shape)
    if not shape or any(s < 1 for s in shape):
        raise ValueError(f"{who}: input_shape must be positive sizes, got {input_shape!r}")
    return shape


def check_classes(num_classes, who):
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) \
            or num_classes < 1:
        raise ValueError(f"{who}: num_classes must be a positive integer, got {num_classes!r}")
    return int(num_classes)


def check_dropout(p, who):
    p = float(p)
    if not (0.0 <= p < 1.0):
        raise ValueError(f"{who}: dropout must be in [0, 1), got {p}")
    return p


class Model(Sequential):
    """Base of the bundled models.

    ``input_shape``: per-sample shape, e.g. (1, 28, 28); ``num_classes``: logits per sample;
    ``config``: ``{"class": name, **constructor args}`` (JSON-able, rng excluded, dtype as a
    string). ``need_input_grad`` is False: backward skips the gradient w.r.t. the images (set it
    True to get it, e.g. for saliency maps).
    """

    def __init__(self, layers, *, input_shape, num_classes, config):
        super().__init__(list(layers))
        self.input_shape = tuple(input_shape)
        self.num_classes = int(num_classes)
        self._model_config = dict(config)
        self.need_input_grad = False
        out = self.output_shape(self.input_shape)
        if out != (self.num_classes,):  # pragma: no cover - a bug in a model definition
            raise AssertionError(f"{type(self).__name__}: output shape {out}, expected "
                                 f"({self.num_classes},)")

    @property
    def config(self):
        return {"class": type(self).__name__, **self._model_config}

    def summary(self, input_shape=None):
        shape = self.input_shape if input_shape is None else input_shape
        dtype = self.dtype.name if self.dtype is not None else "?"
        head = f"{type(self).__name__}: input {tuple(shape)}, {self.num_classes} classes, {dtype}"
        return head + "\n" + super().summary(shape)

    def __repr__(self):
        return self.summary()
