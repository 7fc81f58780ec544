"""fastcnn: fast CPU convolutional networks for learning and experimenting.

Hot kernels (im2col convolution, pooling, batch normalization) are C99 behind Cython; everything
above them (layers, optimizers, models, training, experiments) is plain Python over NumPy.
Subpackages load on first use, so `import fastcnn` stays cheap.
"""
import importlib as _importlib
import os as _os

__version__ = "0.1.0"

# libgomp reads this once, when the extension loads it. Its default spins idle threads for a
# while after every parallel region; on a laptop's few cores those spinning threads starve
# NumPy's own BLAS pool between our kernels (measured: a digits training run went from 0.5 s to
# 77 s under load). Passive waiting costs microseconds per region. A user's setting wins.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

try:
    from fastcnn import _kernels  # noqa: F401  (the compiled extension)
except ImportError as _err:  # pragma: no cover - exercised by a subprocess test
    raise ImportError(
        "fastcnn's compiled extension fastcnn._kernels could not be imported "
        f"({_err}). fastcnn never falls back silently to its slow reference code. "
        "Build it: `pip install .` from a checkout, or for development "
        "`pip install -e . --no-build-isolation` (re-run after editing csrc/ or .pyx files)."
    ) from _err

from fastcnn._config import (  # noqa: E402
    get_num_threads, get_simd, set_num_threads, set_simd, show_config, simd_levels,
)

_SUBMODULES = {
    "functional", "layers", "optim", "init", "regularizers", "schedules", "models", "train",
    "checkpoint", "data", "testing", "experiments", "cli",
}

__all__ = ["__version__", "get_num_threads", "set_num_threads", "get_simd", "set_simd",
           "simd_levels", "show_config", *sorted(_SUBMODULES)]


def __getattr__(name):
    if name in _SUBMODULES:
        module = _importlib.import_module(f"fastcnn.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'fastcnn' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | _SUBMODULES)
