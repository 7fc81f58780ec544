"""Run-time configuration: fastcnn's thread count, BLAS thread pinning, the instruction set of
the run-time dispatched kernels, and show_config().

fastcnn owns parallelism: its kernels run OpenMP over images/planes/channels with the count set
here, and pin SciPy's BLAS to one thread while they run (per-image GEMMs gain nothing from BLAS
threads, and two pools would oversubscribe the cores).
"""
import ctypes
import glob
import os
import platform
import sys
import warnings

import numpy as np
import scipy

from fastcnn import _kernels

_BUILD = _kernels.build_info()


def _default_threads():
    if not _BUILD["openmp"]:
        return 1
    env = os.environ.get("FASTCNN_NUM_THREADS", "").strip()
    if env:
        try:
            n = int(env)
            if n >= 1:
                return n
        except ValueError:
            pass
        raise ValueError(f"FASTCNN_NUM_THREADS must be a positive integer, got {env!r}")
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, _BUILD["omp_max_threads"]))


_num_threads = _default_threads()


def set_num_threads(n):
    """Set how many threads fastcnn's kernels use (OpenMP). Returns the previous count.

    A build without OpenMP runs every kernel on one thread: asking for more warns and keeps 1.
    """
    global _num_threads
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"set_num_threads: n must be an int, got {type(n).__name__}")
    n = int(n)
    if n < 1:
        raise ValueError(f"set_num_threads: n must be >= 1, got {n}")
    if not _BUILD["openmp"] and n != 1:
        warnings.warn(f"set_num_threads({n}): this fastcnn build has no OpenMP, so its kernels "
                      f"run on 1 thread", RuntimeWarning, stacklevel=2)
        n = 1
    previous, _num_threads = _num_threads, n
    return previous


def get_num_threads():
    """The number of threads fastcnn's kernels use."""
    return _num_threads


SIMD_LEVELS = ("portable", "avx2", "avx512")   # the dispatched variants, in increasing order


def simd_levels():
    """The instruction-set variants of the dispatched kernels this CPU and build can run."""
    return SIMD_LEVELS[:_kernels.simd_supported() + 1]


def get_simd():
    """The variant the dispatched kernels (direct convolution, Winograd, pooling) use now."""
    return SIMD_LEVELS[_kernels.simd_active()]


def set_simd(level):
    """Cap the dispatched kernels at `level` ("portable", "avx2", "avx512", or "best");
    returns the previous variant. For comparisons and tests: every variant computes the same
    result to rounding. Asking for more than the CPU runs raises ValueError."""
    previous = get_simd()
    if level == "best":
        level = simd_levels()[-1]
    if level not in SIMD_LEVELS:
        raise ValueError(f"set_simd: level must be one of {SIMD_LEVELS + ('best',)}, "
                         f"got {level!r}")
    if level not in simd_levels():
        raise ValueError(f"set_simd: this CPU/build runs only {simd_levels()}, not {level!r}")
    _kernels.simd_set_cap(SIMD_LEVELS.index(level))
    return previous


def _simd_from_env():
    env = os.environ.get("FASTCNN_SIMD", "").strip()
    if env:
        try:
            set_simd(env)
        except ValueError as err:
            raise ValueError(f"FASTCNN_SIMD: {err}") from None


_simd_from_env()


def _find_scipy_openblas():
    """SciPy's bundled OpenBLAS and its thread setters, or (None, None, None)."""
    here = os.path.dirname(scipy.__file__)
    for path in sorted(glob.glob(os.path.join(here, os.pardir, "scipy.libs", "libscipy_openblas*"))):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix in ("scipy_openblas", "openblas"):
            try:
                set_fn = getattr(lib, f"{prefix}_set_num_threads")
                get_fn = getattr(lib, f"{prefix}_get_num_threads")
            except AttributeError:
                continue
            config = None
            try:
                cfg = getattr(lib, f"{prefix}_get_config")
                cfg.restype = ctypes.c_char_p
                config = cfg().decode()
            except AttributeError:
                pass
            return path, (set_fn, get_fn), config
    return None, None, None


_BLAS_PATH, _BLAS_FNS, _BLAS_CONFIG = _find_scipy_openblas()
if _BLAS_FNS is not None:
    _kernels.register_blas_threads(
        ctypes.cast(_BLAS_FNS[0], ctypes.c_void_p).value,
        ctypes.cast(_BLAS_FNS[1], ctypes.c_void_p).value,
    )


def config_info():
    """The facts show_config() prints, as a dict."""
    return {
        "fastcnn": _version(),
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "platform": platform.platform(),
        "compiler flags": _BUILD["cflags"],
        "openmp": "on" if _BUILD["openmp"] else "OFF (kernels run on one thread)",
        "fastcnn threads": get_num_threads(),
        "blas threads": _kernels.blas_num_threads(),
        "blas library": (
            f"{os.path.basename(_BLAS_PATH)} ({_BLAS_CONFIG})" if _BLAS_PATH else
            "SciPy's BLAS (not OpenBLAS: thread pinning unavailable)"
        ),
        "simd (cpu)": _BUILD["simd"],
        "simd (dispatched kernels)": f"{get_simd()} (of {', '.join(simd_levels())})",
    }


def _version():
    from fastcnn import __version__
    return __version__


def show_config(file=None):
    """Print version, compiler flags, OpenMP, thread counts, BLAS library and SIMD level."""
    info = config_info()
    width = max(len(k) for k in info)
    for key, value in info.items():
        print(f"{key:<{width}} : {value}", file=file or sys.stdout)
    return info
