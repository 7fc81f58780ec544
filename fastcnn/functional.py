"""Stateless forward/backward functions over NumPy arrays (NCHW): fastcnn's one Python/C seam.

Every function here validates its inputs once (TypeError/ValueError naming the argument and the
shapes), makes non-contiguous, Fortran-ordered or read-only inputs usable (one copy only when
needed), allocates outputs and workspaces, and calls the selected backend: the compiled kernels
("fast", the default) or the pure-NumPy teaching copy fastcnn._reference ("reference").
Below this module nothing validates; above it nobody knows C exists. Spec: docs/functional-api.md.
"""
import contextlib
import math
import numbers
import os
import threading

import numpy as np

from fastcnn import _kernels
from fastcnn._config import get_num_threads, get_simd

__all__ = [
    "conv2d", "conv2d_backward", "linear", "linear_backward", "max_pool2d",
    "max_pool2d_backward", "avg_pool2d", "avg_pool2d_backward", "batch_norm",
    "batch_norm_backward", "lrn", "lrn_backward", "relu", "relu_backward",
    "softmax_cross_entropy", "softmax_cross_entropy_backward", "adam_update", "conv_output_size",
    "get_backend", "set_backend", "use_backend",
]

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
_INT32_MAX = 2**31 - 1            # BLAS dimensions and pooling indices are 32-bit
_BYTES_MAX = np.iinfo(np.intp).max

# ---------------------------------------------------------------------------------------------
# backend selection

_BACKENDS = ("fast", "reference")


def _backend_from_env():
    name = os.environ.get("FASTCNN_BACKEND", "fast").strip().lower() or "fast"
    if name not in _BACKENDS:
        raise ValueError(f"FASTCNN_BACKEND must be one of {_BACKENDS}, got {name!r}")
    return name


_backend = _backend_from_env()


def get_backend():
    """'fast' (compiled kernels, the default) or 'reference' (pure NumPy)."""
    return _backend


def set_backend(name):
    """Select the backend for every following call: 'fast' or 'reference'."""
    global _backend
    if name not in _BACKENDS:
        raise ValueError(f"set_backend: name must be one of {_BACKENDS}, got {name!r}")
    _backend = name


@contextlib.contextmanager
def use_backend(name):
    """Context manager: `with F.use_backend("reference"): ...` restores the previous backend."""
    previous = get_backend()
    set_backend(name)
    try:
        yield
    finally:
        set_backend(previous)


def _reference():
    from fastcnn import _reference as ref
    return ref


# ---------------------------------------------------------------------------------------------
# validation helpers (each error names the function, the argument and the shapes)

def _check_array(fn, name, a, ndims):
    """A float32/float64 ndarray of one of the given ndims (not yet made contiguous)."""
    if a is None:
        raise TypeError(f"{fn}: {name} must be an array, got None")
    if not isinstance(a, np.ndarray):
        if isinstance(a, (list, tuple)) or np.isscalar(a):
            a = np.asarray(a)
        else:
            raise TypeError(f"{fn}: {name} must be a numpy.ndarray, got {type(a).__name__}")
    if a.dtype not in _FLOATS:
        raise TypeError(f"{fn}: {name} must be float32 or float64, got dtype {a.dtype} "
                        f"({name}.shape={a.shape})")
    if a.ndim not in ndims:
        want = " or ".join(f"{d}-D" for d in ndims)
        raise ValueError(f"{fn}: {name} must be {want}, got {a.ndim}-D ({name}.shape={a.shape})")
    return a


def _check_same_dtype(fn, ref_name, ref, **others):
    for name, a in others.items():
        if a is not None and a.dtype != ref.dtype:
            raise TypeError(f"{fn}: {name} has dtype {a.dtype} but {ref_name} has dtype "
                            f"{ref.dtype}; convert both to one float dtype")


def _pair(fn, name, v, minimum):
    """An int or a pair of ints, each >= minimum -> (h, w)."""
    if isinstance(v, (tuple, list)) and len(v) == 2:
        items = tuple(v)
    elif isinstance(v, (tuple, list)):
        raise ValueError(f"{fn}: {name} must be an int or a pair (h, w), got {v!r}")
    else:
        items = (v, v)
    out = []
    for item in items:
        if isinstance(item, (bool, np.bool_)) or not isinstance(item, (int, np.integer)):
            raise TypeError(f"{fn}: {name} must be an int or a pair of ints, got {v!r}")
        if item < minimum:
            raise ValueError(f"{fn}: {name} must be >= {minimum}, got {v!r}")
        out.append(int(item))
    return tuple(out)


def _check_positive_dims(fn, name, shape, dims):
    for d in dims:
        if shape[d] < 1:
            raise ValueError(f"{fn}: {name} must have size >= 1 in dimension {d} "
                             f"({name}.shape={shape})")


def _check_size(fn, what, n_elements, itemsize):
    if n_elements * itemsize > _BYTES_MAX:
        raise ValueError(f"{fn}: {what} would need {n_elements} elements "
                         f"({n_elements * itemsize} bytes), more than this machine can address")


def _check_blas_dim(fn, what, value):
    if value > _INT32_MAX:
        raise ValueError(f"{fn}: {what} = {value} exceeds the 32-bit BLAS limit {_INT32_MAX}")


def _contig(a):
    """C-contiguous (copied only when needed); read-only arrays are fine for inputs."""
    return np.ascontiguousarray(a)


def _flat(a):
    return a.reshape(-1)


def _out_array(fn, name, out, shape, dtype):
    """A caller's output buffer (reused across steps by the layers), or a fresh array."""
    shape = tuple(shape)
    if out is None:
        return np.empty(shape, dtype=dtype)
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{fn}: {name} must be a numpy.ndarray or None, got {type(out).__name__}")
    if out.shape != shape or out.dtype != dtype:
        raise ValueError(f"{fn}: {name} must have shape {shape} and dtype {np.dtype(dtype)}, "
                         f"got shape {out.shape} and dtype {out.dtype}")
    if not out.flags.c_contiguous or not out.flags.writeable:
        raise ValueError(f"{fn}: {name} must be a writeable C-contiguous array")
    return out


def _into(out, result):
    """Copy a reference-backend result into the caller's buffer when one was given."""
    if out is None:
        return result
    np.copyto(out, result)
    return out


def conv_output_size(size, kernel, stride=1, padding=0):
    """floor((size + 2*padding - kernel) / stride) + 1, the convention of every framework."""
    return (size + 2 * padding - kernel) // stride + 1


def _output_hw(fn, x_shape, kernel, stride, padding, kernel_name="kernel"):
    (H, W), (KH, KW), (SH, SW), (PH, PW) = x_shape[-2:], kernel, stride, padding
    if KH > H + 2 * PH or KW > W + 2 * PW:
        raise ValueError(f"{fn}: {kernel_name} ({KH}, {KW}) is larger than the padded input "
                         f"({H + 2 * PH}, {W + 2 * PW}) (x.shape={tuple(x_shape)}, "
                         f"padding={padding})")
    OH, OW = conv_output_size(H, KH, SH, PH), conv_output_size(W, KW, SW, PW)
    if OH < 1 or OW < 1:
        raise ValueError(f"{fn}: output size ({OH}, {OW}) < 1 for x.shape={tuple(x_shape)}, "
                         f"{kernel_name}=({KH}, {KW}), stride={stride}, padding={padding}")
    return OH, OW


def _check_grad_shape(fn, dy, expected, what="the forward output"):
    if tuple(dy.shape) != tuple(expected):
        raise ValueError(f"{fn}: dy.shape={tuple(dy.shape)} does not match {what} shape "
                         f"{tuple(expected)}")


# A grow-only scratch buffer per thread and dtype, so steady-state training allocates no
# workspace: the per-thread im2col columns are reused from call to call.
_scratch = threading.local()


def _workspace(n_elements, dtype, slot="kernel"):
    """n_elements of the thread's scratch buffer `slot` of dtype: "kernel" for the C kernels'
    workspaces; "s2d x" and "s2d dx" for the phases of a strided layer and their gradient, which
    live across the inner convolution's call (and its kernel workspace)."""
    cache = getattr(_scratch, "buffers", None)
    if cache is None:
        cache = _scratch.buffers = {}
    key = (slot, np.dtype(dtype))
    buf = cache.get(key)
    if buf is None or buf.size < n_elements:
        buf = np.empty(max(n_elements, 1), dtype=dtype)
        cache[key] = buf
    return buf[:n_elements]


# ---------------------------------------------------------------------------------------------
# convolution

_CONV_ALGORITHMS = ("auto", "im2col", "winograd", "winograd4", "direct", "s2d")
_WINOGRAD = ("winograd", "winograd4")


def _winograd_variant(algorithm, KH):
    """The C kernels' name for a Winograd algorithm on a KH x KH kernel: 2 = F(2x2,3x3),
    4 = F(4x4,3x3), 25 = F(2x2,5x5) ("winograd" is 2x2 output tiles for a 3x3 or 5x5 kernel)."""
    if algorithm == "winograd4":
        return 4
    return 25 if KH == 5 else 2
# "auto" sends stride-1 layers with 2..4 input channels (3: RGB first layers) to "direct"; with
# one channel im2col's K = KH*KW GEMM is as fast (but for the backward of 5x5 layers:
# _auto_direct_one_channel_backward). Its dx kernel needs 3 input channels (the dx tiles hold 4);
# below, a GEMM-based kernel computes dx (im2col's inside the weight gradient's loop). (With dx,
# "auto" runs the RGB layers' whole backward elsewhere: _auto_direct_backward.)
_DIRECT_CHANNELS = range(2, 5)
_DIRECT_DX_MIN_CHANNELS = 3


def _auto_direct_one_channel_backward(C, kernel, stride):
    """Whether "auto" runs a one-channel layer's backward (forward: im2col) on the direct kernel:
    where its weight-gradient tiles of 5 taps fit (kernel widths 5, 10; AVX-512's registers),
    with dx from im2col's GEMM and col2im image by image alongside. MNIST's 1->30 5x5, batch
    100, 1 thread, float32 | float64: without dx 1.16 | 2.26 ms against im2col's 1.31 | 2.67,
    with dx 2.22 | 4.24 against 2.38 | 4.70. On tiles of 3 taps (1->16 3x3) it lost: 0.66 vs
    0.52 ms without dx."""
    return C == 1 and stride == (1, 1) and kernel[1] % 5 == 0 and get_simd() == "avx512"


def _tiles(N, OH, OW, m):
    """Output tiles of side m a batch of (OH, OW) outputs needs."""
    return N * (-(-OH // m)) * (-(-OW // m))


def _conv_algorithm(fn, algorithm, N, C, OC, OH, OW, kernel, stride, padding,
                    allow_direct=True):
    """The kernel family to run: "im2col" (any shape), "direct" (stride 1), "winograd"
    (F(2x2,3x3) or F(2x2,5x5): 3x3 or 5x5 kernels, stride 1), "winograd4" (F(4x4,3x3)), or "s2d"
    (stride > 1, rewritten into a stride-1 convolution run by one of the others).

    "auto" picks what measured fastest (Zen 4, fwd+bwd, float32, 1 and 2 threads; the study's
    layer shapes). "direct" for stride-1 layers with 2..4 input channels (an RGB first layer:
    im2col's GEMM has an inner dimension of 27..75 there, too short for BLAS). Winograd for 3x3
    stride-1 layers with C*OC >= 64, unless the batch has so few output tiles that the per-call
    weight transforms (16*OC*C each way) outweigh the per-tile savings (tiles*(C+OC) < 2*C*OC,
    e.g. one 16x16 image through a 64->128 layer); below C*OC = 64 (1->16, 3->8) the transform
    GEMMs are too thin to pay for the transforms. Of the two, F(4x4,3x3) (44% fewer GEMM flops,
    fewer transformed cells per output) where its 4x4 tiles cover the output with at most 50%
    more cells than F(2x2)'s (none
    more on 8x8, 16x16, 28x28; 31% on 13x13 and 14x14, 44% on 9x9 and 10x10, where it measured
    5-25% faster since its backward-data runs fused with the weight gradient; 78% on 5x5 and
    6x6, where it lost), and there are tiles enough for its larger weight transforms (36*OC*C):
    2*tiles4*(C+OC) >= C*OC (AlexNet's 13x13 layers at batch 8 just pass); with vectorised
    transforms on both it won down to 3 channels too (fwd, dx and dweight each, 1 and 2 threads:
    3->8 on 32x32, 4->16 and 16->4 on 28x28, 6->16 and 5->5 on 14x14, 3->64). "s2d" for strided
    layers whose space-to-depth rewrite (see _s2d_input) is a 3x3 or 5x5 stride-1 layer that
    takes Winograd (AlexNet's 11x11 stride-4 conv1 becomes a 3x3 conv on 48 channels, which
    F(4x4,3x3) computes with 3.4x fewer multiplications than im2col needs for the original).
    allow_direct=False: the best of the others.
    """
    if algorithm not in _CONV_ALGORITHMS:
        raise ValueError(f"{fn}: algorithm must be one of {_CONV_ALGORITHMS}, got {algorithm!r}")
    (KH, KW), (SH, SW), (PH, PW) = kernel, stride, padding
    if algorithm in _WINOGRAD and not _kernels.conv2d_winograd_supported(
            _winograd_variant(algorithm, KH), KH, KW, SH, SW, PH, PW):
        kernels = "a 3x3 or 5x5" if algorithm == "winograd" else "a 3x3"
        raise ValueError(f"{fn}: algorithm={algorithm!r} needs {kernels} kernel and stride 1 "
                         f"(kernel=({KH}, {KW}), stride={stride})")
    if algorithm == "direct" and not _kernels.conv2d_direct_supported(SH, SW):
        raise ValueError(f"{fn}: algorithm='direct' needs stride 1 (stride={stride})")
    if algorithm == "s2d" and (SH, SW) == (1, 1):
        raise ValueError(f"{fn}: algorithm='s2d' needs a stride above 1 (stride={stride})")
    if algorithm != "auto":
        return algorithm
    if (SH, SW) != (1, 1):
        # space-to-depth pays where the stride-1 convolution it leads to takes Winograd
        K2 = (-(-KH // SH), -(-KW // SW))
        inner = _conv_algorithm(fn, "auto", N, C * SH * SW, OC, OH, OW, K2, (1, 1), (0, 0),
                                allow_direct=False)
        return "s2d" if inner in _WINOGRAD and SH * SW <= 16 else "im2col"
    if allow_direct and C in _DIRECT_CHANNELS and _kernels.conv2d_direct_supported(SH, SW):
        return "direct"
    if _kernels.conv2d_winograd_supported(25, KH, KW, SH, SW, PH, PW):
        # F(2x2,5x5): 36 transformed values of each filter (vs 25) pay off with channels to
        # spare and enough tiles for the per-call weight transforms
        fast = min(C, OC) >= 16 and _tiles(N, OH, OW, 2) * (C + OC) >= 4 * C * OC
        return "winograd" if fast else "im2col"
    if not (_kernels.conv2d_winograd_supported(2, KH, KW, SH, SW, PH, PW) and C * OC >= 64
            and _tiles(N, OH, OW, 2) * (C + OC) >= 2 * C * OC):
        return "im2col"
    tiles4 = _tiles(N, OH, OW, 4)
    if 16 * tiles4 <= 1.5 * 4 * _tiles(N, OH, OW, 2) and 2 * tiles4 * (C + OC) >= C * OC:
        return "winograd4"
    return "winograd"


def _conv_checks(fn, x, weight, stride, padding, algorithm="auto"):
    x = _check_array(fn, "x", x, (4,))
    weight = _check_array(fn, "weight", weight, (4,))
    _check_same_dtype(fn, "x", x, weight=weight)
    stride = _pair(fn, "stride", stride, 1)
    padding = _pair(fn, "padding", padding, 0)
    if weight.shape[1] != x.shape[1]:
        raise ValueError(f"{fn}: weight has {weight.shape[1]} input channels but x has "
                         f"{x.shape[1]} (x.shape={x.shape}, weight.shape={weight.shape})")
    _check_positive_dims(fn, "x", x.shape, (1, 2, 3))
    _check_positive_dims(fn, "weight", weight.shape, (0, 1, 2, 3))
    OH, OW = _output_hw(fn, x.shape, weight.shape[2:], stride, padding)
    N, C, H, W = x.shape
    OC, _, KH, KW = weight.shape
    K, P = C * KH * KW, OH * OW
    for what, value in (("C*KH*KW", K), ("OH*OW", P), ("out_channels", OC)):
        _check_blas_dim(fn, what, value)
    algorithm = _conv_algorithm(fn, algorithm, N, C, OC, OH, OW, (KH, KW), stride, padding)
    nt = get_num_threads()
    _check_size(fn, "the output", N * OC * P, x.itemsize)
    _check_size(fn, "the im2col workspace", nt * (K * P + OC * K + OC + 16 * P), x.itemsize)
    used = {algorithm}
    if algorithm == "direct":   # below 3 input channels its backward leaves dx to another
        used.add(_conv_algorithm(fn, "auto", N, C, OC, OH, OW, (KH, KW), stride, padding,
                                 allow_direct=False))
    for wino in used & set(_WINOGRAD):
        # an upper bound of fc_conv2d_winograd{,6}_*_workspace in Python integers (no overflow):
        # a2 transformed planes of (channels, <= 1024 tiles) per thread, plus the transformed
        # kernel (and backward-data's flipped copy), per-thread partials and row scratch
        a2 = 16 if _winograd_variant(wino, KH) == 2 else 36
        per_thread = (a2 * ((C + OC) * 1024 + 32 + OC * C) + OC + 16 * 1024
                      + 32 * (max(W, OW) + 4))
        _check_size(fn, "the Winograd workspace", (a2 + 25) * OC * C + nt * per_thread,
                    x.itemsize)
    if algorithm == "direct":
        # an upper bound of fc_conv2d_direct_workspace: the (turned) kernel repacked in blocks
        # of 8 channels; per thread a padded image or padded dy (frames up to KH+1 rows and
        # KW+18 columns larger), the partial gradients, tap sums and a dy strip
        frames = (C * (OH + KH + 1) * (OW + KW + 18) + OC * (H + KH + 1) * (W + KW + 18))
        sums = C * KH * (KW + 2) * 8 * 17 + 8 * (OW + 256) + OC * K + OC + 16
        _check_size(fn, "the direct workspace", (2 * OC + C + 16) * K + nt * (frames + sums),
                    x.itemsize)
    return x, weight, stride, padding, (OH, OW), algorithm


# Space-to-depth: a stride-(SH, SW) KHxKW convolution equals a stride-1 one on the input cut
# into SH*SW phase planes, xs[n, c*SH*SW + a*SW + b, i, j] = xpad[n, c, i*SH + a, j*SW + b], with
# the kernel cut the same way (zero-padded to whole phases), ws[o, c*SH*SW + a*SW + b, p, q] =
# w[o, c, p*SH + a, q*SW + b], of size ceil(KH/SH) x ceil(KW/SW): y = conv(xs, ws), no padding.
def _s2d_frame(x_shape, w_shape, stride, out_hw):
    """(H2, W2, (K2H, K2W)): the phase planes' size and the stride-1 kernel."""
    (SH, SW), (OH, OW), (KH, KW) = stride, out_hw, w_shape[2:]
    K2 = (-(-KH // SH), -(-KW // SW))
    return OH + K2[0] - 1, OW + K2[1] - 1, K2


def _s2d_input(x, stride, padding, H2, W2):
    """The SH*SW phases of x (padded): (N, C*SH*SW, H2, W2), channel (c*SH + a)*SW + b holding
    xpad[c][a::SH][b::SW], in the thread's "s2d x" scratch (C: s2d.c)."""
    N, C, H, W = x.shape
    (SH, SW), (PH, PW) = stride, padding
    xs = _workspace(N * C * SH * SW * H2 * W2, x.dtype, "s2d x")
    _kernels.s2d_gather(xs, _flat(x), N, C, H, W, SH, SW, PH, PW, H2, W2, get_num_threads())
    return xs.reshape(N, C * SH * SW, H2, W2)


def _s2d_weight(w, stride, K2):
    OC, C, KH, KW = w.shape
    (SH, SW), (K2H, K2W) = stride, K2
    wp = np.zeros((OC, C, K2H * SH, K2W * SW), w.dtype)
    wp[:, :, :KH, :KW] = w
    return (wp.reshape(OC, C, K2H, SH, K2W, SW).transpose(0, 1, 3, 5, 2, 4)
            .reshape(OC, C * SH * SW, K2H, K2W))


def _s2d_unfold(a, stride):
    """The inverse of the phase cut: (N, C*SH*SW, h, w) -> (N, C, h*SH, w*SW)."""
    (SH, SW), (N, CSS, h, w) = stride, a.shape
    C = CSS // (SH * SW)
    return a.reshape(N, C, SH, SW, h, w).transpose(0, 1, 4, 2, 5, 3).reshape(N, C, h * SH, w * SW)


def conv2d(x, weight, bias=None, stride=1, padding=0, relu=False, algorithm="auto", out=None):
    """2-D convolution (cross-correlation), optionally with the ReLU fused into the same pass.

    x (N, C, H, W), weight (OC, C, KH, KW), bias (OC,) or None -> y (N, OC, OH, OW) with
    OH = (H + 2*PH - KH) // SH + 1 (likewise OW);
    y[n, o, i, j] = bias[o] + sum_{c,u,v} weight[o, c, u, v] * xpad[n, c, i*SH + u, j*SW + v],
    then max(y, 0) when relu=True. stride and padding: an int or a pair (h, w).
    algorithm: "im2col" (any shape), "winograd" (Lavin & Gray's F(2x2,3x3) for 3x3 kernels,
    2.25x fewer multiplications, float32 error about 1e-6 relative; F(2x2,5x5) for 5x5, 2.8x
    fewer, error up to ~4e-6; stride 1, any padding),
    "winograd4" (F(4x4,3x3): 4x fewer multiplications, error up to ~6e-6), "direct" (stride 1,
    no im2col: for layers with few input channels), "s2d" (stride > 1: space-to-depth into a
    stride-1 convolution on SH*SW times the channels, itself run by "auto") or "auto" (default:
    what measured fastest, see _conv_algorithm). The reference backend ignores it.
    out: an optional preallocated C-contiguous buffer for y (the layers reuse theirs).
    """
    fn = "conv2d"
    x, weight, stride, padding, (OH, OW), algorithm = _conv_checks(fn, x, weight, stride,
                                                                   padding, algorithm)
    if bias is not None:
        bias = _check_array(fn, "bias", bias, (1,))
        _check_same_dtype(fn, "x", x, bias=bias)
        if bias.shape[0] != weight.shape[0]:
            raise ValueError(f"{fn}: bias has {bias.shape[0]} entries but weight has "
                             f"{weight.shape[0]} output channels (bias.shape={bias.shape}, "
                             f"weight.shape={weight.shape})")
    N, C, H, W = x.shape
    OC, _, KH, KW = weight.shape
    y = _out_array(fn, "out", out, (N, OC, OH, OW), x.dtype)
    if N == 0:
        return y
    x, weight = _contig(x), _contig(weight)
    bias = _contig(bias) if bias is not None else None
    if _backend == "reference":
        return _into(out, _reference().conv2d_forward(x, weight, bias, stride, padding,
                                                      bool(relu)))
    if algorithm == "s2d":
        H2, W2, K2 = _s2d_frame(x.shape, weight.shape, stride, (OH, OW))
        return conv2d(_s2d_input(x, stride, padding, H2, W2), _s2d_weight(weight, stride, K2),
                      bias, relu=relu, out=y)
    nt = get_num_threads()
    empty = np.empty(0, dtype=x.dtype)
    if algorithm == "direct":
        ws = _workspace(_kernels.conv2d_direct_workspace(C, H, W, KH, KW, *padding, OC, nt),
                        x.dtype)
        _kernels.conv2d_direct_forward(_flat(y), ws, _flat(x), _flat(weight),
                                       empty if bias is None else bias, N, C, H, W, OC, KH, KW,
                                       *padding, bool(relu), nt)
        return y
    if algorithm in _WINOGRAD:
        variant = _winograd_variant(algorithm, KH)
        ws = _workspace(_kernels.conv2d_winograd_forward_workspace(variant, C, H, W, *padding,
                                                                   OC, nt), x.dtype)
        _kernels.conv2d_winograd_forward(variant, _flat(y), ws, _flat(x), _flat(weight),
                                         empty if bias is None else bias, N, C, H, W, OC,
                                         *padding, bool(relu), nt)
        return y
    ws = _workspace(_kernels.conv2d_forward_workspace(C, H, W, KH, KW, *stride, *padding, OC, nt),
                    x.dtype)
    _kernels.conv2d_forward(_flat(y), ws, _flat(x), _flat(weight),
                            empty if bias is None else bias, N, C, H, W, OC, KH, KW,
                            *stride, *padding, bool(relu), nt)
    return y


def conv2d_backward(dy, x, weight, stride=1, padding=0, need_dx=True, need_dbias=True,
                    algorithm="auto", out=None):
    """Gradients of conv2d: (dx or None, dweight, dbias or None).

    dy (N, OC, OH, OW) is dL/dy; if the forward fused a ReLU, mask it first with
    relu_backward(dy, y). dweight[o,c,u,v] = sum_{n,i,j} dy[n,o,i,j] * xpad[n,c,i*SH+u,j*SW+v],
    dbias[o] = sum_{n,i,j} dy[n,o,i,j], dx = the adjoint of the forward map applied to dy.
    need_dx=False skips dx (a network's first layer needs no input gradient).
    algorithm: "auto" | "im2col" | "winograd" | "winograd4" | "direct" | "s2d", as for conv2d.
    With a named algorithm dweight and dbias are bitwise the same with or without dx; "auto" may
    pick another kernel with dx than without (RGB layers: _auto_direct_backward), and another
    than conv2d's (one-channel 5x5 layers: _auto_direct_one_channel_backward); dweight then
    agrees to rounding.
    out: an optional preallocated C-contiguous buffer for dx.
    """
    fn = "conv2d_backward"
    requested = algorithm
    x, weight, stride, padding, (OH, OW), algorithm = _conv_checks(fn, x, weight, stride,
                                                                   padding, algorithm)
    dy = _check_array(fn, "dy", dy, (4,))
    _check_same_dtype(fn, "x", x, dy=dy)
    N, C, H, W = x.shape
    OC, _, KH, KW = weight.shape
    _check_grad_shape(fn, dy, (N, OC, OH, OW))
    dx = _out_array(fn, "out", out, x.shape, x.dtype) if need_dx else None
    if N == 0:
        if dx is not None:
            dx[...] = 0
        return dx, np.zeros(weight.shape, x.dtype), (np.zeros(OC, x.dtype) if need_dbias else None)
    x, weight, dy = _contig(x), _contig(weight), _contig(dy)
    if _backend == "reference":
        rdx, dweight, dbias = _reference().conv2d_backward(dy, x, weight, stride, padding,
                                                           bool(need_dx), bool(need_dbias))
        return (_into(out, rdx) if need_dx else None), dweight, dbias
    if algorithm == "s2d":
        H2, W2, K2 = _s2d_frame(x.shape, weight.shape, stride, (OH, OW))
        xs = _s2d_input(x, stride, padding, H2, W2)
        dxs = _workspace(xs.size, x.dtype, "s2d dx").reshape(xs.shape) if need_dx else None
        dxs, dws, dbias = conv2d_backward(dy, xs, _s2d_weight(weight, stride, K2),
                                          need_dx=need_dx, need_dbias=need_dbias, out=dxs)
        dweight = np.ascontiguousarray(_s2d_unfold(dws, stride)[:, :, :KH, :KW])
        if dx is not None:
            _kernels.s2d_scatter(_flat(dx), _flat(dxs), N, C, H, W, *stride, *padding, H2, W2,
                                 get_num_threads())
        return dx, dweight, dbias
    nt = get_num_threads()
    dweight = np.empty(weight.shape, dtype=x.dtype)
    dbias = np.empty(OC, dtype=x.dtype) if need_dbias else None
    if algorithm == "direct" and requested == "auto" and dx is not None:
        algorithm = _auto_direct_backward(fn, N, C, OC, OH, OW, (KH, KW), stride, padding)
    if (algorithm == "im2col" and requested == "auto"
            and _auto_direct_one_channel_backward(C, (KH, KW), stride)):
        algorithm = "direct"
    if algorithm == "direct":
        ws = _workspace(_kernels.conv2d_direct_workspace(C, H, W, KH, KW, *padding, OC, nt),
                        x.dtype)
        # too few channels to fill the direct dx tiles: a GEMM-based kernel computes dx, im2col's
        # inside the weight gradient's loop over images (each image's dy read once for both)
        dx_algorithm = None
        if dx is not None and C < _DIRECT_DX_MIN_CHANNELS:
            dx_algorithm = _conv_algorithm(fn, "auto", N, C, OC, OH, OW, (KH, KW), stride,
                                           padding, allow_direct=False)
        fused_dx = dx if dx_algorithm == "im2col" else None
        dx_ws = _workspace(nt * C * KH * KW * OH * OW if fused_dx is not None else 0, x.dtype,
                           "direct dx columns")
        _kernels.conv2d_direct_backward_weights(_flat(dweight), _empty_or(dbias, x.dtype),
                                                _flat(_empty_or(fused_dx, x.dtype)), dx_ws, ws,
                                                _flat(dy), _flat(x), _flat(weight), N, C, H, W,
                                                OC, KH, KW, *padding, nt)
        if dx is not None and C >= _DIRECT_DX_MIN_CHANNELS:
            _kernels.conv2d_direct_backward_data(_flat(dx), ws, _flat(dy), _flat(weight), N, C,
                                                 H, W, OC, KH, KW, *padding, nt)
        elif dx_algorithm not in (None, "im2col"):
            _conv_backward_kernel(dx_algorithm, dx, None, None, dy, x, weight, stride, padding,
                                  nt)
        return dx, dweight, dbias
    _conv_backward_kernel(algorithm, dx, dweight, dbias, dy, x, weight, stride, padding, nt)
    return dx, dweight, dbias


def _auto_direct_backward(fn, N, C, OC, OH, OW, kernel, stride, padding):
    """The backward of a layer "auto" runs direct (2..4 input channels: RGB layers) when dx is
    wanted too: Winograd where "auto" would take it but for the direct kernel, as its fused
    backward reads dy (the larger tensor there: 21x x's size for 3->64) once for both gradients;
    the direct kernels read it once each. 3->64 on 32x32, batch 128, 1 thread, backward float32 |
    float64: F(4x4,3x3) 10.6 | 23.9 ms, direct 17.4 | 31.6 (its weights alone 7.7 | 15.9, which
    is why a first layer, without dx, stays direct). Else direct."""
    algorithm = _conv_algorithm(fn, "auto", N, C, OC, OH, OW, kernel, stride, padding,
                                allow_direct=False)
    return algorithm if algorithm in _WINOGRAD else "direct"


def _empty_or(a, dtype):
    """a, or an empty array of dtype: the C kernels read an empty array as NULL ("skip")."""
    return np.empty(0, dtype=dtype) if a is None else a


def _conv_backward_kernel(algorithm, dx, dweight, dbias, dy, x, weight, stride, padding, nt):
    """One im2col or Winograd backward call; dx, dweight, dbias: output arrays or None (skip)."""
    N, C, H, W = x.shape
    OC, _, KH, KW = weight.shape
    dt = x.dtype
    dx_, dw_, db_ = (_flat(_empty_or(a, dt)) for a in (dx, dweight, dbias))
    if algorithm in _WINOGRAD:
        variant = _winograd_variant(algorithm, KH)
        ws = _workspace(_kernels.conv2d_winograd_backward_workspace(variant, C, H, W, *padding,
                                                                    OC, nt), dt)
        _kernels.conv2d_winograd_backward(variant, dx_, dw_, db_, ws, _flat(dy), _flat(x),
                                          _flat(weight), N, C, H, W, OC, *padding, nt)
        return
    ws = _workspace(_kernels.conv2d_backward_workspace(C, H, W, KH, KW, *stride, *padding, OC, nt),
                    dt)
    _kernels.conv2d_backward(dx_, dw_, db_, ws, _flat(dy), _flat(x), _flat(weight),
                             N, C, H, W, OC, KH, KW, *stride, *padding, nt)


# ---------------------------------------------------------------------------------------------
# fully connected

def _linear_checks(fn, x, weight):
    x = _check_array(fn, "x", x, (2,))
    weight = _check_array(fn, "weight", weight, (2,))
    _check_same_dtype(fn, "x", x, weight=weight)
    if weight.shape[1] != x.shape[1]:
        raise ValueError(f"{fn}: weight has {weight.shape[1]} input features but x has "
                         f"{x.shape[1]} (x.shape={x.shape}, weight.shape={weight.shape})")
    _check_positive_dims(fn, "weight", weight.shape, (0, 1))
    for what, value in (("N", x.shape[0]), ("in_features", weight.shape[1]),
                        ("out_features", weight.shape[0])):
        _check_blas_dim(fn, what, value)
    return x, weight


def linear(x, weight, bias=None, out=None):
    """Fully connected layer: y = x @ weight.T + bias.

    x (N, IN), weight (OUT, IN) (PyTorch's layout, like conv's (OC, C, KH, KW)), bias (OUT,) or
    None -> y (N, OUT). The GEMM runs on fastcnn's threads (BLAS pinned to one per thread), so
    NumPy's BLAS pool never competes with the convolution kernels for the cores.
    out: an optional preallocated C-contiguous buffer for y.
    """
    fn = "linear"
    x, weight = _linear_checks(fn, x, weight)
    N, IN = x.shape
    OUT = weight.shape[0]
    if bias is not None:
        bias = _check_array(fn, "bias", bias, (1,))
        _check_same_dtype(fn, "x", x, bias=bias)
        if bias.shape[0] != OUT:
            raise ValueError(f"{fn}: bias has {bias.shape[0]} entries but weight has {OUT} "
                             f"output features (bias.shape={bias.shape}, "
                             f"weight.shape={weight.shape})")
        bias = _contig(bias)
    y = _out_array(fn, "out", out, (N, OUT), x.dtype)
    if N == 0:
        return y
    x, weight = _contig(x), _contig(weight)
    if _backend == "reference":
        return _into(out, _reference().linear_forward(x, weight, bias))
    ws = _workspace(_kernels.linear_forward_workspace(N, IN), x.dtype)
    _kernels.linear_forward(_flat(y), ws, _flat(x), _flat(weight),
                            np.empty(0, x.dtype) if bias is None else bias, N, IN, OUT,
                            get_num_threads())
    return y


def linear_backward(dy, x, weight, need_dx=True, need_dbias=True, out=None, grads=None,
                    accumulate=True):
    """Gradients of linear: (dx or None, dweight, dbias or None).

    dweight = dy.T @ x, dbias = dy.sum(0), dx = dy @ weight. out: optional buffer for dx.
    grads: optional (dweight, dbias) C-contiguous arrays (a layer's Parameter.grad; dbias None
    when need_dbias is False) the gradients are added into (accumulate=False: stored into,
    whatever they held), without a temporary the size of the weight; they are what is returned
    then.
    """
    fn = "linear_backward"
    x, weight = _linear_checks(fn, x, weight)
    dy = _check_array(fn, "dy", dy, (2,))
    _check_same_dtype(fn, "x", x, dy=dy)
    N, IN = x.shape
    OUT = weight.shape[0]
    _check_grad_shape(fn, dy, (N, OUT))
    dx = _out_array(fn, "out", out, (N, IN), x.dtype) if need_dx else None
    if grads is not None:
        if not isinstance(grads, (tuple, list)) or len(grads) != 2:
            raise TypeError(f"{fn}: grads must be a (dweight, dbias) pair, got {grads!r:.80}")
        wanted = [("grads[0]", grads[0], (OUT, IN))]
        if need_dbias:
            wanted.append(("grads[1]", grads[1], (OUT,)))
        for name, g, shape in wanted:
            if not isinstance(g, np.ndarray) or g.shape != shape or g.dtype != x.dtype \
                    or not g.flags.c_contiguous or not g.flags.writeable:
                raise ValueError(f"{fn}: {name} must be a writeable C-contiguous array of shape "
                                 f"{shape} and dtype {x.dtype}, got "
                                 f"{getattr(g, 'shape', type(g).__name__)}")
    x, weight, dy = _contig(x), _contig(weight), _contig(dy)
    if _backend == "reference":
        rdx, dweight, dbias = _reference().linear_backward(dy, x, weight, bool(need_dx),
                                                           bool(need_dbias))
        if grads is not None:
            for g, value in ((grads[0], dweight), (grads[1] if need_dbias else None, dbias)):
                if g is not None:
                    if accumulate:
                        g[...] += value
                    else:
                        g[...] = value
            dweight, dbias = grads[0], grads[1] if need_dbias else None
        return (_into(out, rdx) if need_dx else None), dweight, dbias
    if grads is None:
        dweight = np.empty((OUT, IN), x.dtype)
        dbias = np.empty(OUT, x.dtype) if need_dbias else None
    else:
        dweight, dbias = grads[0], grads[1] if need_dbias else None
    empty = np.empty(0, x.dtype)
    ws = _workspace(_kernels.linear_backward_workspace(N, IN, OUT) if need_dx else 0, x.dtype)
    _kernels.linear_backward(empty if dx is None else _flat(dx), _flat(dweight),
                             empty if dbias is None else dbias, ws, _flat(dy), _flat(x),
                             _flat(weight), N, IN, OUT, grads is not None and bool(accumulate),
                             get_num_threads())
    return dx, dweight, dbias


# ---------------------------------------------------------------------------------------------
# pooling

def _pool_checks(fn, x_shape, kernel_size, stride, padding):
    kernel = _pair(fn, "kernel_size", kernel_size, 1)
    stride = kernel if stride is None else _pair(fn, "stride", stride, 1)
    padding = _pair(fn, "padding", padding, 0)
    if padding[0] > kernel[0] // 2 or padding[1] > kernel[1] // 2:
        raise ValueError(f"{fn}: padding {padding} must be at most half the kernel_size "
                         f"{kernel} (so that every window holds a real cell)")
    _check_positive_dims(fn, "x", x_shape, (2, 3))
    if x_shape[2] * x_shape[3] > _INT32_MAX:
        raise ValueError(f"{fn}: a plane of {x_shape[2]}x{x_shape[3]} cells is too large for "
                         f"32-bit pooling indices")
    OH, OW = _output_hw(fn, x_shape, kernel, stride, padding, "kernel_size")
    return kernel, stride, padding, (OH, OW)


def _check_x_shape(fn, x_shape):
    if not isinstance(x_shape, (tuple, list)) or not all(
            isinstance(s, (int, np.integer)) and not isinstance(s, (bool, np.bool_))
            for s in x_shape):
        raise TypeError(f"{fn}: x_shape must be a tuple of 4 ints, got {x_shape!r}")
    shape = tuple(int(s) for s in x_shape)
    if len(shape) != 4 or min(shape) < 0:
        raise ValueError(f"{fn}: x_shape must be 4 non-negative ints (N, C, H, W), got {x_shape!r}")
    return shape


def max_pool2d(x, kernel_size, stride=None, padding=0, return_indices=False, out=None,
               out_indices=None):
    """Max pooling over KH x KW windows. stride defaults to kernel_size; padding <= kernel//2.

    y[n, c, i, j] = max over the window's real cells (padded cells never win; ties go to the
    first in row-major order; a NaN wins, so NaN propagates). With return_indices=True also
    returns indices (int32, shape of y): h*W + w of each winner in its input plane.
    out / out_indices: optional preallocated C-contiguous buffers for y / indices.
    """
    fn = "max_pool2d"
    x = _check_array(fn, "x", x, (4,))
    kernel, stride, padding, (OH, OW) = _pool_checks(fn, x.shape, kernel_size, stride, padding)
    N, C, H, W = x.shape
    y = _out_array(fn, "out", out, (N, C, OH, OW), x.dtype)
    argmax = (_out_array(fn, "out_indices", out_indices, (N, C, OH, OW), np.dtype(np.int32))
              if return_indices else np.empty(0, np.int32))
    if N * C == 0:
        return (y, argmax) if return_indices else y
    x = _contig(x)
    if _backend == "reference":
        ry, rargmax = _reference().max_pool2d_forward(x, kernel, stride, padding)
        y = _into(out, ry)
        return (y, _into(out_indices, rargmax)) if return_indices else y
    _kernels.max_pool2d_forward(_flat(y), _flat(argmax), _flat(x), N * C, H, W, *kernel,
                                *stride, *padding, get_num_threads())
    return (y, argmax) if return_indices else y


def max_pool2d_backward(dy, indices, x_shape, out=None):
    """Gradient of max_pool2d: dx (x_shape) with dx[plane][indices] += dy (overlaps add).

    out: an optional preallocated C-contiguous buffer for dx."""
    fn = "max_pool2d_backward"
    dy = _check_array(fn, "dy", dy, (4,))
    x_shape = _check_x_shape(fn, x_shape)
    if indices is None or not isinstance(indices, np.ndarray):
        raise TypeError(f"{fn}: indices must be an integer ndarray (from max_pool2d(..., "
                        f"return_indices=True)), got {type(indices).__name__}")
    if indices.dtype.kind not in "iu":
        raise TypeError(f"{fn}: indices must have an integer dtype, got {indices.dtype}")
    if indices.shape != dy.shape:
        raise ValueError(f"{fn}: indices.shape={indices.shape} does not match "
                         f"dy.shape={dy.shape}")
    N, C, H, W = x_shape
    if dy.shape[:2] != (N, C):
        raise ValueError(f"{fn}: dy.shape={dy.shape} does not match x_shape={x_shape} in "
                         f"(N, C)")
    dx = _out_array(fn, "out", out, x_shape, dy.dtype)
    if N * C * H * W == 0 or dy.size == 0:
        dx[...] = 0
        return dx
    # The fast kernel counts (and skips) out-of-range int32 indices itself at no extra pass;
    # anything else is range-checked here, before a cast could wrap a bad value into range.
    if indices.dtype != np.int32 or _backend == "reference":
        lo, hi = int(indices.min()), int(indices.max())
        if lo < 0 or hi >= H * W:
            raise ValueError(f"{fn}: indices must lie in [0, {H * W}) for x_shape={x_shape}, "
                             f"got values in [{lo}, {hi}]")
        indices = indices.astype(np.int32, copy=False)
    dy, indices = _contig(dy), _contig(indices)
    if _backend == "reference":
        return _into(out, _reference().max_pool2d_backward(dy, indices, x_shape))
    bad = _kernels.max_pool2d_backward(_flat(dx), _flat(dy), _flat(indices), N * C, H, W,
                                       dy.shape[2], dy.shape[3], get_num_threads())
    if bad:
        raise ValueError(f"{fn}: {bad} indices lie outside [0, {H * W}) for x_shape={x_shape}")
    return dx


def avg_pool2d(x, kernel_size, stride=None, padding=0, count_include_pad=True, out=None):
    """Average pooling. stride defaults to kernel_size; padding <= kernel//2.

    count_include_pad=True (PyTorch's default) divides every window sum by KH*KW, padded zeros
    included; False divides by the number of real cells in the window.
    out: an optional preallocated C-contiguous buffer for y.
    """
    fn = "avg_pool2d"
    x = _check_array(fn, "x", x, (4,))
    kernel, stride, padding, (OH, OW) = _pool_checks(fn, x.shape, kernel_size, stride, padding)
    N, C, H, W = x.shape
    y = _out_array(fn, "out", out, (N, C, OH, OW), x.dtype)
    if N * C == 0:
        return y
    x = _contig(x)
    if _backend == "reference":
        return _into(out, _reference().avg_pool2d_forward(x, kernel, stride, padding,
                                                          bool(count_include_pad)))
    _kernels.avg_pool2d_forward(_flat(y), _flat(x), N * C, H, W, *kernel, *stride, *padding,
                                bool(count_include_pad), get_num_threads())
    return y


def avg_pool2d_backward(dy, x_shape, kernel_size, stride=None, padding=0, count_include_pad=True,
                        out=None):
    """Gradient of avg_pool2d: each window spreads dy/den over its real cells (overlaps add).

    out: an optional preallocated C-contiguous buffer for dx."""
    fn = "avg_pool2d_backward"
    dy = _check_array(fn, "dy", dy, (4,))
    x_shape = _check_x_shape(fn, x_shape)
    kernel, stride, padding, (OH, OW) = _pool_checks(fn, x_shape, kernel_size, stride, padding)
    N, C, H, W = x_shape
    _check_grad_shape(fn, dy, (N, C, OH, OW))
    dx = _out_array(fn, "out", out, x_shape, dy.dtype)
    if N * C == 0:
        dx[...] = 0
        return dx
    dy = _contig(dy)
    if _backend == "reference":
        return _into(out, _reference().avg_pool2d_backward(dy, x_shape, kernel, stride, padding,
                                                           bool(count_include_pad)))
    _kernels.avg_pool2d_backward(_flat(dx), _flat(dy), N * C, H, W, *kernel, *stride, *padding,
                                 bool(count_include_pad), get_num_threads())
    return dx


# ---------------------------------------------------------------------------------------------
# batch normalization

def _bn_param(fn, name, a, x, C, default):
    if a is None:
        return np.full(C, default, dtype=x.dtype)
    a = _check_array(fn, name, a, (1,))
    _check_same_dtype(fn, "x", x, **{name: a})
    if a.shape[0] != C:
        raise ValueError(f"{fn}: {name} has {a.shape[0]} entries but x has {C} channels "
                         f"({name}.shape={a.shape}, x.shape={x.shape})")
    return _contig(a)


def _bn_running(fn, name, a, x, C):
    a = _check_array(fn, name, a, (1,))
    _check_same_dtype(fn, "x", x, **{name: a})
    if a.shape[0] != C:
        raise ValueError(f"{fn}: {name} has {a.shape[0]} entries but x has {C} channels "
                         f"({name}.shape={a.shape}, x.shape={x.shape})")
    return a


def _bn_layout(x):
    """(N, C, S): S = H*W for 4-D input, 1 for (N, F) input."""
    N, C = x.shape[:2]
    S = x.shape[2] * x.shape[3] if x.ndim == 4 else 1
    return N, C, S


def _bn_workspace(N, C, S):
    """The batch-norm kernels' scratch (partial sums per unit of samples, per-channel constants),
    in double for any dtype; at most 2.5 doubles per element of x: no overflow check needed."""
    return _workspace(_kernels.batch_norm_workspace(N, C, S), np.float64, "kernel")


def batch_norm(x, weight, bias, running_mean=None, running_var=None, training=True,
               momentum=0.1, eps=1e-5, out=None):
    """Batch normalization per channel (4-D (N, C, H, W)) or per feature (2-D (N, F)).

    Training: mean and biased variance of the batch (accumulated in double),
    y = (x - mean) / sqrt(var + eps) * weight + bias, and when running_* are given (updated in
    place): running = (1 - momentum) * running + momentum * batch_stat, with the variance
    unbiased (PyTorch's meaning of momentum). Eval (training=False): the running statistics
    replace the batch's. Returns (y, save_mean, save_invstd) for batch_norm_backward.
    weight/bias None mean 1/0. out: an optional preallocated C-contiguous buffer for y.
    """
    fn = "batch_norm"
    x = _check_array(fn, "x", x, (2, 4))
    _check_positive_dims(fn, "x", x.shape, range(1, x.ndim))
    N, C, S = _bn_layout(x)
    if isinstance(eps, bool) or not isinstance(eps, (int, float, np.floating)) or not eps > 0:
        raise ValueError(f"{fn}: eps must be a number > 0, got {eps!r}")
    if (isinstance(momentum, bool) or not isinstance(momentum, (int, float, np.floating))
            or not 0.0 <= momentum <= 1.0):
        raise ValueError(f"{fn}: momentum must be a number in [0, 1], got {momentum!r}")
    gamma = _bn_param(fn, "weight", weight, x, C, 1.0)
    beta = _bn_param(fn, "bias", bias, x, C, 0.0)
    if (running_mean is None) != (running_var is None):
        raise ValueError(f"{fn}: give both running_mean and running_var, or neither")
    tracking = running_mean is not None
    if tracking:
        running_mean = _bn_running(fn, "running_mean", running_mean, x, C)
        running_var = _bn_running(fn, "running_var", running_var, x, C)
        for name, a in (("running_mean", running_mean), ("running_var", running_var)):
            if training and (not a.flags.c_contiguous or not a.flags.writeable):
                raise ValueError(f"{fn}: {name} is updated in place, so it must be a writeable "
                                 f"C-contiguous array")
    elif not training:
        raise ValueError(f"{fn}: eval mode (training=False) needs running_mean and running_var")
    if training and N * S == 1:
        raise ValueError(f"{fn}: training needs more than one value per channel to compute a "
                         f"variance (x.shape={x.shape})")
    y = _out_array(fn, "out", out, x.shape, x.dtype)
    if N == 0:
        nan = np.full(C, np.nan, dtype=x.dtype)
        if not training:
            return (y, running_mean.copy(), (1.0 / np.sqrt(running_var + eps)).astype(x.dtype))
        return y, nan, nan.copy()
    x = _contig(x)
    eps, momentum = float(eps), float(momentum)
    if _backend == "reference":
        ry, mean, invstd = _reference().batch_norm_forward(x, gamma, beta, running_mean,
                                                           running_var, bool(training), momentum,
                                                           eps)
        return _into(out, ry), mean, invstd
    nt = get_num_threads()
    if training:
        save_mean = np.empty(C, x.dtype)
        save_invstd = np.empty(C, x.dtype)
        empty = np.empty(0, x.dtype)
        _kernels.batch_norm_forward_train(_flat(y), save_mean, save_invstd,
                                          running_mean if tracking else empty,
                                          running_var if tracking else empty,
                                          _flat(x), gamma, beta, N, C, S, eps, momentum,
                                          _bn_workspace(N, C, S), nt)
        return y, save_mean, save_invstd
    rm, rv = _contig(running_mean), _contig(running_var)
    _kernels.batch_norm_forward_eval(_flat(y), _flat(x), gamma, beta, rm, rv, N, C, S, eps, nt)
    save_invstd = (1.0 / np.sqrt(rv.astype(np.float64) + eps)).astype(x.dtype)
    return y, rm.copy(), save_invstd


def batch_norm_backward(dy, x, weight, save_mean, save_invstd, training=True, out=None):
    """Gradients of batch_norm: (dx, dweight, dbias), with xhat = (x - mean) * invstd.

    training=True (the batch statistics depend on x), means over the N*S values per channel:
      dx = weight * invstd * (dy - mean(dy) - xhat * mean(dy * xhat))
    training=False (running statistics are constants): dx = weight * invstd * dy.
    Always dweight = sum(dy * xhat), dbias = sum(dy). out: optional buffer for dx.
    """
    fn = "batch_norm_backward"
    x = _check_array(fn, "x", x, (2, 4))
    dy = _check_array(fn, "dy", dy, (2, 4))
    _check_same_dtype(fn, "x", x, dy=dy)
    _check_grad_shape(fn, dy, x.shape, "x's")
    N, C, S = _bn_layout(x)
    gamma = _bn_param(fn, "weight", weight, x, C, 1.0)
    if save_mean is None or save_invstd is None:
        raise TypeError(f"{fn}: save_mean and save_invstd (from batch_norm) are required")
    mean = _bn_param(fn, "save_mean", save_mean, x, C, 0.0)
    invstd = _bn_param(fn, "save_invstd", save_invstd, x, C, 1.0)
    dx = _out_array(fn, "out", out, x.shape, x.dtype)
    if N == 0 or C == 0:
        dx[...] = 0
        return dx, np.zeros(C, x.dtype), np.zeros(C, x.dtype)
    x, dy = _contig(x), _contig(dy)
    if _backend == "reference":
        rdx, dgamma, dbeta = _reference().batch_norm_backward(dy, x, gamma, mean, invstd,
                                                              bool(training))
        return _into(out, rdx), dgamma, dbeta
    dgamma = np.empty(C, x.dtype)
    dbeta = np.empty(C, x.dtype)
    _kernels.batch_norm_backward(_flat(dx), dgamma, dbeta, _flat(dy), _flat(x), gamma, mean,
                                 invstd, N, C, S, bool(training), _bn_workspace(N, C, S),
                                 get_num_threads())
    return dx, dgamma, dbeta


# ---------------------------------------------------------------------------------------------
# optimizer updates

def adam_update(param, grad, m, v, lr, beta1, beta2, eps, step):
    """One Adam step on one parameter, in place (param, m and v are updated), in a single pass:

        m <- beta1 m + (1 - beta1) g;   v <- beta2 v + (1 - beta2) g^2
        param <- param - (lr / (1 - beta1^step)) m / (sqrt(v) / sqrt(1 - beta2^step) + eps)

    param, m, v: writeable C-contiguous arrays of one float dtype and shape; grad alike (any
    layout); step >= 1 is the number of this update. Hyper-parameters are the optimizer's to check.
    """
    fn = "adam_update"
    arrays = {}
    for name, a in (("param", param), ("grad", grad), ("m", m), ("v", v)):
        arrays[name] = _check_array(fn, name, a, range(0, 33))
    param = arrays["param"]
    for name, a in arrays.items():
        if a.shape != param.shape:
            raise ValueError(f"{fn}: {name}.shape={a.shape} does not match "
                             f"param.shape={param.shape}")
        _check_same_dtype(fn, "param", param, **{name: a})
        if name != "grad" and (not a.flags.c_contiguous or not a.flags.writeable):
            raise ValueError(f"{fn}: {name} is updated in place, so it must be a writeable "
                             f"C-contiguous array")
    if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or step < 1:
        raise ValueError(f"{fn}: step must be an int >= 1, got {step!r}")
    bc1, bc2 = 1.0 - beta1 ** step, 1.0 - beta2 ** step
    grad = _contig(arrays["grad"])
    if _backend == "reference":
        _reference().adam_update(param, grad, arrays["m"], arrays["v"], lr, beta1, beta2, eps,
                                 bc1, bc2)
        return param
    _kernels.adam_update(_flat(param), _flat(arrays["m"]), _flat(arrays["v"]), _flat(grad),
                         float(lr), float(beta1), float(beta2), float(eps), bc1, bc2,
                         get_num_threads())
    return param


# ---------------------------------------------------------------------------------------------
# local response normalisation

def _lrn_params(fn, size, alpha, beta, k=None):
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
        raise ValueError(f"{fn}: size must be a positive integer, got {size!r}")
    for name, v in (("alpha", alpha), ("beta", beta), ("k", 1.0 if k is None else k)):
        if isinstance(v, bool) or not isinstance(v, (int, float, np.floating, np.integer)):
            raise TypeError(f"{fn}: {name} must be a number, got {type(v).__name__}")
        v = float(v)
        if not math.isfinite(v) or v < 0 or (name == "k" and v == 0):
            bound = "> 0" if name == "k" else ">= 0"
            raise ValueError(f"{fn}: {name} must be a finite number {bound}, got {v}")
    return int(size)


def _lrn_layout(x):
    """(N, C, H*W) of a 4-D (N, C, H, W) or 2-D (N, C) input: the window runs along C."""
    N, C = x.shape[:2]
    return N, C, (x.shape[2] * x.shape[3] if x.ndim == 4 else 1)


def lrn(x, size=5, alpha=1e-4, beta=0.75, k=2.0, out=None, scale_out=None):
    """Local response normalisation across channels (Krizhevsky et al. 2012, 3.3): (y, scale).

    scale = S = k + alpha * sum of x[:, j]^2 over j in [c - size//2, c + (size-1)//2] within
    [0, C) (alpha NOT divided by size, as in the paper; PyTorch's LocalResponseNorm(size, a)
    is alpha = a / size), y = x * S^-beta. x: (N, C, H, W) or (N, C). scale feeds
    lrn_backward. out, scale_out: optional preallocated C-contiguous buffers.
    """
    fn = "lrn"
    x = _check_array(fn, "x", x, (2, 4))
    size = _lrn_params(fn, size, alpha, beta, k)
    y = _out_array(fn, "out", out, x.shape, x.dtype)
    scale = _out_array(fn, "scale_out", scale_out, x.shape, x.dtype)
    if x.size == 0:
        return y, scale
    x = _contig(x)
    if _backend == "reference":
        ry, rs = _reference().lrn_forward(x, size, float(alpha), float(beta), float(k))
        return _into(out, ry), _into(scale_out, rs)
    _kernels.lrn_forward(_flat(y), _flat(scale), _flat(x), *_lrn_layout(x), size, float(alpha),
                         float(beta), float(k), get_num_threads())
    return y, scale


def lrn_backward(dy, x, y, scale, size=5, alpha=1e-4, beta=0.75, out=None):
    """dL/dx of lrn from its input x, output y and scale:
    dx = dy S^-beta - 2 alpha beta x * (sum over the channels c whose window holds i of
    dy[c] y[c] / S[c]). out: optional buffer for dx."""
    fn = "lrn_backward"
    x = _check_array(fn, "x", x, (2, 4))
    arrays = {name: _check_array(fn, name, a, (x.ndim,))
              for name, a in (("dy", dy), ("y", y), ("scale", scale))}
    _check_same_dtype(fn, "x", x, **arrays)
    _check_grad_shape(fn, arrays["dy"], x.shape, "x's")
    for name in ("y", "scale"):
        if arrays[name].shape != x.shape:
            raise ValueError(f"{fn}: {name}.shape={arrays[name].shape} must equal "
                             f"x.shape={x.shape} (lrn's outputs for this x)")
    size = _lrn_params(fn, size, alpha, beta)
    dx = _out_array(fn, "out", out, x.shape, x.dtype)
    if x.size == 0:
        return dx
    dy, y, scale = (_contig(arrays[n]) for n in ("dy", "y", "scale"))
    x = _contig(x)
    if _backend == "reference":
        return _into(out, _reference().lrn_backward(dy, x, y, scale, size, float(alpha),
                                                    float(beta)))
    t = _workspace(x.size, x.dtype)   # dy y / S, reused from call to call
    _kernels.lrn_backward(_flat(dx), t, _flat(dy), _flat(x), _flat(y), _flat(scale),
                          *_lrn_layout(x), size, float(alpha), float(beta), get_num_threads())
    return dx


# ---------------------------------------------------------------------------------------------
# activations and loss (NumPy: single memory-bound passes that numpy already does at speed)

def relu(x, out=None):
    """max(x, 0) elementwise; NaN propagates (and -0.0 gives +0).

    out: an optional C-contiguous buffer for y; it may be x itself (in place)."""
    fn = "relu"
    x = _check_array(fn, "x", x, range(0, 33))
    y = _out_array(fn, "out", out, x.shape, x.dtype)   # C order always
    if _backend == "reference" or x.size == 0:
        return np.maximum(x, x.dtype.type(0), out=y)
    _kernels.relu_forward(_flat(y), _flat(_contig(x)), get_num_threads())
    return y


def relu_backward(dy, y, out=None):
    """dL/dx of relu from its output y: dy where y > 0, else 0 (a NaN y or a y <= 0 gives 0).

    out: an optional C-contiguous buffer for dx; it may be dy itself (in place)."""
    fn = "relu_backward"
    dy = _check_array(fn, "dy", dy, range(0, 33))
    y = _check_array(fn, "y", y, range(0, 33))
    _check_same_dtype(fn, "dy", dy, y=y)
    _check_grad_shape(fn, dy, y.shape, "y's")
    dx = _out_array(fn, "out", out, dy.shape, dy.dtype)
    if _backend == "reference" or dy.size == 0:
        np.copyto(dx, np.where(y > 0, dy, dy.dtype.type(0)))
        return dx
    _kernels.relu_backward(_flat(dx), _flat(_contig(dy)), _flat(_contig(y)), get_num_threads())
    return dx


def _check_labels(fn, labels, N, K, check_range):
    """labels as a contiguous int64 (N,) array. The range check is the kernels' own (one pass
    in C instead of NumPy's min and max) unless check_range is set (the reference backend)."""
    if labels is None or not isinstance(labels, np.ndarray):
        if isinstance(labels, (list, tuple)):
            labels = np.asarray(labels)
        else:
            raise TypeError(f"{fn}: labels must be an integer ndarray, got "
                            f"{type(labels).__name__}")
    if labels.dtype.kind not in "iu":
        raise TypeError(f"{fn}: labels must be integers (class indices), got dtype {labels.dtype}")
    if labels.shape != (N,):
        raise ValueError(f"{fn}: labels.shape={labels.shape} must be ({N},) to match the batch")
    if check_range and N and (labels.min() < 0 or labels.max() >= K):
        _bad_labels(fn, labels, K)
    if labels.dtype != np.int64:
        # a uint64 label past 2**63 wraps negative here, which the range check then refuses
        labels = labels.astype(np.int64)
    return np.ascontiguousarray(labels)


def _bad_labels(fn, labels, K):
    raise ValueError(f"{fn}: labels must lie in [0, {K}), got values in "
                     f"[{labels.min()}, {labels.max()}]")


def softmax_cross_entropy(logits, labels, return_grad=False):
    """Mean cross-entropy of softmax(logits) against integer labels: (loss, probs).

    loss = mean_n (logsumexp(logits[n]) - logits[n, labels[n]]), computed after subtracting each
    row's max so large logits cannot overflow. probs = softmax(logits) in the logits' dtype. A
    row holding NaN, or +-inf as its largest logit, gives NaN probabilities and a NaN loss.
    return_grad: (loss, probs, dlogits), dlogits what softmax_cross_entropy_backward(probs,
    labels) returns, computed in the same pass (a training step's loss needs both).
    """
    fn = "softmax_cross_entropy"
    logits = _check_array(fn, "logits", logits, (2,))
    N, K = logits.shape
    if K < 1:
        raise ValueError(f"{fn}: logits must have at least one class (logits.shape={logits.shape})")
    if N == 0:
        raise ValueError(f"{fn}: the batch is empty (logits.shape={logits.shape}); "
                         f"a mean over zero samples is undefined")
    reference = _backend == "reference"
    checked = _check_labels(fn, labels, N, K, check_range=reference)
    logits = _contig(logits)
    if reference:
        loss, probs = _reference().softmax_cross_entropy_forward(logits, checked)
        if return_grad:
            return loss, probs, _reference().softmax_cross_entropy_backward(probs, checked, 1.0)
        return loss, probs
    probs = np.empty((N, K), logits.dtype)
    grad = np.empty((N, K) if return_grad else 0, logits.dtype)
    loss, bad = _kernels.softmax_xent_forward(probs, grad.reshape(-1), np.empty(N), logits,
                                              checked, get_num_threads())
    if bad >= 0:
        _bad_labels(fn, np.asarray(labels), K)
    return (loss, probs, grad) if return_grad else (loss, probs)


def softmax_cross_entropy_backward(probs, labels, dout=1.0):
    """dL/dlogits of the mean softmax cross-entropy, times dout: dout * (probs - onehot) / N."""
    fn = "softmax_cross_entropy_backward"
    probs = _check_array(fn, "probs", probs, (2,))
    N, K = probs.shape
    if isinstance(dout, (bool, np.bool_)) or not isinstance(dout, numbers.Real):
        raise TypeError(f"{fn}: dout must be a real number, got {type(dout).__name__}")
    if N == 0:
        return np.zeros(probs.shape, probs.dtype)
    reference = _backend == "reference"
    checked = _check_labels(fn, labels, N, K, check_range=reference)
    probs = _contig(probs)
    if reference:
        return _reference().softmax_cross_entropy_backward(probs, checked, dout)
    d = np.empty((N, K), probs.dtype)
    if _kernels.softmax_xent_backward(d, probs, checked, float(dout) / N, get_num_threads()) >= 0:
        _bad_labels(fn, np.asarray(labels), K)
    return d
