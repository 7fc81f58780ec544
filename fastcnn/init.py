"""Weight initializers: a fixed-std normal, Xavier/Glorot and He, all one variance-scaling rule.

Not layers: an initializer only draws an array; layers call it once in their constructor.
References: Glorot & Bengio 2010 (Xavier), He et al. 2015 ("Delving deep into rectifiers"),
Keras `VarianceScaling` / Chainer `HeNormal(rng=)` for the one-mechanism design.

Every initializer is a callable ``init(shape, rng=None, dtype=np.float32) -> ndarray`` and draws
from the ``np.random.Generator`` it is given (``rng=None`` means a fresh unseeded generator; pass
one to make results reproducible). Nothing here touches the global ``np.random`` state.

Fans are computed one way for every weight (``compute_fans``)::

    (out_features, in_features)      fan_in = in_features,       fan_out = out_features
    (OC, C, KH, KW)                  fan_in = C * KH * KW,       fan_out = OC * KH * KW

Variance scaling draws with ``std = sqrt(scale / fan)``; the uniform form draws from
``U(-limit, limit)`` with ``limit = sqrt(3) * std`` (same variance). The presets:

===================  =======  =========  ===========================================================
name                 scale    fan        std
===================  =======  =========  ===========================================================
``xavier_*``         1        fan_in     ``1 / sqrt(fan_in)``  (the study notes' "Xavier")
``glorot_*``         1        fan_avg    ``sqrt(2 / (fan_in + fan_out))``  (Glorot & Bengio's paper)
``he_*``             2        fan_in     ``sqrt(2 / fan_in)``
``normal(std)``      --       --         fixed, 0.01 by default (the notes' plain Gaussian)
===================  =======  =========  ===========================================================

The notes call ``1/sqrt(fan_in)`` "Xavier"; Glorot's paper averages the two fans. Both are offered,
named honestly: ``xavier_normal`` is the notes' form, ``glorot_normal`` (= ``xavier_normal`` with
``mode="fan_avg"``) the paper's.
"""
import math
import numbers

import numpy as np

__all__ = [
    "Initializer", "Normal", "VarianceScaling", "Zeros", "compute_fans", "get", "normal",
    "xavier", "xavier_normal", "xavier_uniform", "glorot_normal", "glorot_uniform",
    "he_normal", "he_uniform", "zeros",
]

_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _check_shape_dtype(shape, dtype):
    shape = (int(shape),) if isinstance(shape, numbers.Integral) else tuple(int(s) for s in shape)
    if any(s < 0 for s in shape):
        raise ValueError(f"initializer: shape must be non-negative, got {shape}")
    dtype = np.dtype(dtype)
    if dtype not in _FLOAT_DTYPES:
        raise TypeError(f"initializer: dtype must be float32 or float64, got {dtype}")
    return shape, dtype


def compute_fans(shape):
    """Return ``(fan_in, fan_out)`` of a weight of ``shape``.

    ``(out, in)`` gives ``(in, out)``; ``(OC, C, KH, KW)`` (any number of trailing kernel dims)
    gives ``(C*KH*KW, OC*KH*KW)``: the number of inputs and outputs each weight element touches.
    1-D shapes (biases) have no fan and raise ValueError.
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) < 2:
        raise ValueError(
            f"compute_fans: a weight needs at least 2 dimensions (out, in, ...), got shape {shape}"
        )
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


class Initializer:
    """Base class: ``init(shape, rng=None, dtype=np.float32) -> ndarray`` (C-contiguous)."""

    name = "initializer"

    def __call__(self, shape, rng=None, dtype=np.float32):
        shape, dtype = _check_shape_dtype(shape, dtype)
        return self._draw(shape, np.random.default_rng(rng), dtype)

    def _draw(self, shape, rng, dtype):  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def config(self):
        """A JSON-able description that ``get()`` turns back into an equal initializer."""
        return self.name


class Zeros(Initializer):
    """All zeros (biases, or a deliberately broken symmetric start for the lessons)."""

    name = "zeros"

    def _draw(self, shape, rng, dtype):
        return np.zeros(shape, dtype=dtype)

    def __repr__(self):
        return "init.zeros"


class Normal(Initializer):
    """``W ~ N(0, std^2)`` with a fixed ``std`` (the notes' ``0.01 * randn``)."""

    def __init__(self, std=0.01):
        std = float(std)
        if not (std >= 0 and math.isfinite(std)):
            raise ValueError(f"init.normal: std must be a finite number >= 0, got {std}")
        self.std = std

    @property
    def name(self):
        return "normal" if self.std == 0.01 else f"normal({self.std!r})"

    @property
    def config(self):
        return {"normal": self.std}

    def _draw(self, shape, rng, dtype):
        w = rng.standard_normal(shape, dtype=dtype)
        w *= self.std  # python float: float32 stays float32
        return w

    def __repr__(self):
        return f"init.normal(std={self.std!r})"


class VarianceScaling(Initializer):
    """``std = sqrt(scale / fan)`` with ``fan`` chosen by ``mode``; normal or uniform.

    mode: ``"fan_in"``, ``"fan_out"`` or ``"fan_avg"`` (``(fan_in + fan_out) / 2``).
    distribution: ``"normal"`` draws ``N(0, std^2)``; ``"uniform"`` draws ``U(-a, a)`` with
    ``a = sqrt(3) * std`` so the variance is the same ``std^2``.
    """

    _MODES = ("fan_in", "fan_out", "fan_avg")
    _DISTRIBUTIONS = ("normal", "uniform")

    def __init__(self, scale=1.0, mode="fan_in", distribution="normal", name=None):
        scale = float(scale)
        if not (scale > 0 and math.isfinite(scale)):
            raise ValueError(f"VarianceScaling: scale must be a finite number > 0, got {scale}")
        if mode not in self._MODES:
            raise ValueError(f"VarianceScaling: mode must be one of {self._MODES}, got {mode!r}")
        if distribution not in self._DISTRIBUTIONS:
            raise ValueError(
                f"VarianceScaling: distribution must be one of {self._DISTRIBUTIONS}, "
                f"got {distribution!r}"
            )
        self.scale, self.mode, self.distribution = scale, mode, distribution
        self._name = name

    @property
    def name(self):
        return self._name or f"variance_scaling({self.scale}, {self.mode}, {self.distribution})"

    @property
    def config(self):
        if self._name in _PRESETS:
            return self._name
        return {"variance_scaling": [self.scale, self.mode, self.distribution]}

    def std(self, shape):
        """The standard deviation this initializer gives a weight of ``shape``."""
        fan_in, fan_out = compute_fans(shape)
        fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[self.mode]
        if fan <= 0:
            raise ValueError(f"{self.name}: weight of shape {tuple(shape)} has an empty fan")
        return math.sqrt(self.scale / fan)

    def _draw(self, shape, rng, dtype):
        std = self.std(shape)
        if self.distribution == "normal":
            w = rng.standard_normal(shape, dtype=dtype)
            w *= std
        else:
            limit = math.sqrt(3.0) * std
            w = rng.random(shape, dtype=dtype)  # U[0, 1) drawn directly in the target dtype
            w *= 2.0 * limit
            w -= limit
        return w

    def __repr__(self):
        if self._name:
            return f"init.{self._name}"
        return f"init.VarianceScaling({self.scale}, {self.mode!r}, {self.distribution!r})"


def normal(std=0.01):
    """An initializer drawing ``N(0, std^2)``: ``init.normal(0.01)(shape, rng)``."""
    return Normal(std)


def xavier(mode="fan_in", distribution="normal"):
    """Xavier with an explicit fan: ``mode="fan_in"`` (notes, default) or ``"fan_avg"`` (Glorot)."""
    if mode == "fan_in":
        return xavier_normal if distribution == "normal" else xavier_uniform
    if mode == "fan_avg":
        return glorot_normal if distribution == "normal" else glorot_uniform
    return VarianceScaling(1.0, mode, distribution)


zeros = Zeros()
xavier_normal = VarianceScaling(1.0, "fan_in", "normal", name="xavier_normal")
xavier_uniform = VarianceScaling(1.0, "fan_in", "uniform", name="xavier_uniform")
glorot_normal = VarianceScaling(1.0, "fan_avg", "normal", name="glorot_normal")
glorot_uniform = VarianceScaling(1.0, "fan_avg", "uniform", name="glorot_uniform")
he_normal = VarianceScaling(2.0, "fan_in", "normal", name="he_normal")
he_uniform = VarianceScaling(2.0, "fan_in", "uniform", name="he_uniform")

_PRESETS = {
    "zeros": zeros,
    "normal": Normal(0.01),
    "xavier": xavier_normal,
    "xavier_normal": xavier_normal,
    "xavier_uniform": xavier_uniform,
    "glorot": glorot_normal,
    "glorot_normal": glorot_normal,
    "glorot_uniform": glorot_uniform,
    "he": he_normal,
    "he_normal": he_normal,
    "he_uniform": he_uniform,
}
# activation-flavoured synonyms, as in the classic book (weight_init_std="relu" / "sigmoid")
_ALIASES = {"relu": "he", "sigmoid": "xavier", "tanh": "xavier", "kaiming": "he",
            "kaiming_normal": "he_normal", "kaiming_uniform": "he_uniform"}


def get(spec):
    """Resolve an initializer specification.

    ``spec`` may be an Initializer or any callable ``(shape, rng, dtype)``; a name (``"he"``,
    ``"he_normal"``, ``"he_uniform"``, ``"xavier"``, ``"xavier_normal"``, ``"xavier_uniform"``,
    ``"glorot"``, ``"glorot_normal"``, ``"glorot_uniform"``, ``"normal"`` (std 0.01), ``"zeros"``,
    and the book's ``"relu"``/``"sigmoid"``); a number, meaning ``normal(std=number)``; or a
    ``config`` dict as produced by ``Initializer.config``.
    """
    if isinstance(spec, Initializer) or (callable(spec) and not isinstance(spec, type)):
        return spec
    if isinstance(spec, str):
        key = spec.lower()
        key = _ALIASES.get(key, key)
        if key in _PRESETS:
            return _PRESETS[key]
        raise ValueError(
            f"unknown weight_init {spec!r}; choose one of {sorted(_PRESETS) + sorted(_ALIASES)} "
            "or give a std as a number"
        )
    if isinstance(spec, numbers.Real) and not isinstance(spec, bool):
        return Normal(float(spec))
    if isinstance(spec, dict) and len(spec) == 1:
        (kind, arg), = spec.items()
        if kind == "normal":
            return Normal(arg)
        if kind == "variance_scaling":
            return VarianceScaling(*arg)
    raise TypeError(
        f"weight_init must be a name, a number (std) or a callable(shape, rng, dtype), got {spec!r}"
    )


def config_of(spec):
    """JSON-able form of a weight_init argument (name, number or Initializer.config)."""
    if isinstance(spec, (str, numbers.Real)) and not isinstance(spec, bool):
        return spec
    if isinstance(spec, Initializer):
        return spec.config
    raise TypeError(
        f"weight_init {spec!r} is a custom callable and cannot be stored in a model config; "
        "use a name, a number or a fastcnn.init initializer"
    )
