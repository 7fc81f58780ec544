"""The one registry of fastcnn's benchmark cases, shared by bench/compare.py and the
pytest-benchmark files (bench/test_bench_*.py), so both always time the same work.

Vocabulary
----------
op        a kind of work with one set of step builders: "conv", "pool", "bn", "model" (a whole
          training step of a bundled model: see the "model" section below).
case      one op at one shape (a row of PERFORMANCE.md's peer table), e.g. "cifar-3-64".
impl      who computes it: "fastcnn" (compiled backend), "numpy" (fastcnn's pure-numpy reference
          backend, ``F.use_backend("reference")``) or "torch" (PyTorch CPU, optional).
step      a zero-argument callable doing one benchmark iteration (forward + backward of one
          layer); it returns its outputs so they can be compared across impls (``--check``).

Every step treats its outputs as the library's own layers do in training: fastcnn's layer steps
write y and dx into out= buffers allocated once (fastcnn's layers keep and reuse theirs; a fresh
32 MB array costs page faults on every call), torch and the numpy reference allocate as they
always do. Inputs, weights and the upstream
gradient are built once, outside the timing, from one seeded generator and shared by all impls
(torch wraps the same numpy arrays), so all three compute the same numbers.

Adding a case
-------------
* A new shape of an existing op: append ``Case(...)`` to CASES (or call ``add_case``).
* A new op (as the "model" op -- a whole training step, issue 5 -- was added):
  ``register_op("model", work=..., traffic=...)``
  then decorate one builder per impl with ``@builder("model", "fastcnn", "numpy")`` /
  ``@builder("model", "torch")``; a builder is ``fn(params, dtype, rng) -> step``. Then add
  cases with ``op="model"`` and a ``small`` override for smoke runs. compare.py picks it up via
  ``--ops model``; a pytest file needs only ``OP = "model"`` and a 3-line test (see
  test_bench_conv.py). A case may also carry ``check`` overrides (the variant ``--check`` runs,
  e.g. dropout p=0) and ``heavy=True`` (pytest skips it unless ``--bench-heavy``).
* Peak memory of a model step: ``peak_memory(case, impl, threads)`` (a fresh subprocess; see
  its docstring for the method); compare.py shows it for the model op.

Thread control (``impl_context``): fastcnn.set_num_threads(n) for fastcnn, torch.set_num_threads(n)
for torch, and numpy's BLAS limited to n threads (threadpoolctl, when importable) for every impl.
"""
from __future__ import annotations

import contextlib
import dataclasses
import importlib
import importlib.util
import math
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np

IMPLS: tuple[str, ...] = ("fastcnn", "torch", "numpy")
THREADS: tuple[int, ...] = (1, 2)
DTYPES: tuple[str, ...] = ("float32",)
SMALL_BATCH = 2          # batch used by the small-shape smoke variant of each case

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# --------------------------------------------------------------------------------------------
# Imports of the things we time (lazy: torch and the compiled module are optional here)
# --------------------------------------------------------------------------------------------
def _ensure_fastcnn_on_path() -> None:
    """Make `import fastcnn` work from a source checkout built in place (`python setup.py
    build_ext --inplace`) when the package is not installed. The repo root goes at the END of
    sys.path so an installed fastcnn always wins over the source tree."""
    if importlib.util.find_spec("fastcnn") is None and os.path.isdir(
        os.path.join(_REPO_ROOT, "fastcnn")
    ):
        sys.path.append(_REPO_ROOT)


def fastcnn_module():
    _ensure_fastcnn_on_path()
    return importlib.import_module("fastcnn")


def functional():
    """fastcnn.functional (raises ImportError with fastcnn's build hint when not built)."""
    fastcnn_module()
    return importlib.import_module("fastcnn.functional")


def torch_module():
    return importlib.import_module("torch")


def openmp_runtime(impls: Sequence[str]) -> str:
    """Load PyTorch before fastcnn when both are timed; returns the OpenMP runtime and wait policy
    they run on, for the record.

    The two share one OpenMP runtime per process: both link libgomp.so.1 (PyTorch a copy of its
    own) and the first loaded serves both. It reads OMP_WAIT_POLICY once, when it loads. Unless
    the user set it, fastcnn sets PASSIVE before loading its kernels (fastcnn/__init__.py); loaded
    first, that made PyTorch wait passively too, which is not PyTorch's default: its
    SimpleConvNet step at 2 threads took 16.2-19.0 ms instead of 12.7-14.6 (Zen 4), and the
    ratios flattered fastcnn. Loaded first, PyTorch's runtime starts with the user's setting
    (unset: libgomp's default, idle workers spin for a while, ~10 ms here, then sleep) and fastcnn
    runs on it too (its SimpleConvNet step at 2 threads then 0.91 of its passive time, DeepConvNet
    0.94). Set OMP_WAIT_POLICY to compare both under another policy."""
    user = os.environ.get("OMP_WAIT_POLICY")
    fastcnn_first = "fastcnn._kernels" in sys.modules
    if "torch" in impls and not fastcnn_first:
        try:
            torch_module()
        except ImportError:
            pass
    if user is not None:
        return f"OMP_WAIT_POLICY={user} (the user's)"
    if "torch" in sys.modules and not fastcnn_first:
        return "PyTorch's runtime, loaded first: libgomp's default wait policy"
    return "OMP_WAIT_POLICY=PASSIVE (fastcnn's default)"


def available(impl: str) -> tuple[bool, str]:
    """(usable, reason-if-not) for an impl, without timing anything."""
    try:
        if impl == "torch":
            torch_module()
        else:
            functional()
    except ImportError as err:
        return False, f"{type(err).__name__}: {err}"
    return True, ""


# --------------------------------------------------------------------------------------------
# Threads and backend selection
# --------------------------------------------------------------------------------------------
_CONTROLLERS: dict = {}


def _threadpool_controller():
    """A threadpoolctl controller (library discovery is slow, so cached), or None. Re-made when
    fastcnn or torch got imported since, as they load more BLAS/OpenMP libraries (fastcnn's GEMM
    is SciPy's OpenBLAS, numpy has its own)."""
    key = tuple(m in sys.modules for m in ("fastcnn._kernels", "scipy.linalg", "torch"))
    if key not in _CONTROLLERS:
        try:
            import threadpoolctl
        except ImportError:
            _CONTROLLERS[key] = None
        else:
            _CONTROLLERS[key] = threadpoolctl.ThreadpoolController()
    return _CONTROLLERS[key]


def blas_info() -> list[dict]:
    """What threadpoolctl reports (BLAS and OpenMP libraries, kernel/architecture, threads)."""
    try:
        import threadpoolctl
    except ImportError:
        return []
    keys = ("user_api", "internal_api", "prefix", "version", "architecture", "threading_layer",
            "num_threads", "filepath")
    return [{k: d.get(k) for k in keys if k in d} for d in threadpoolctl.threadpool_info()]


@contextlib.contextmanager
def impl_context(impl: str, threads: int):
    """Run `impl` on `threads` threads: fastcnn.set_num_threads for fastcnn, torch.set_num_threads
    for torch, and every BLAS (numpy's and SciPy's OpenBLAS) limited to `threads` for all impls
    (the numpy reference's parallelism is its BLAS; fastcnn pins BLAS to 1 inside its own
    parallel regions anyway). Also selects fastcnn's backend: "fast" or "reference"."""
    with contextlib.ExitStack() as stack:
        if impl == "torch":
            torch = torch_module()
            prev = torch.get_num_threads()
            torch.set_num_threads(threads)
            stack.callback(torch.set_num_threads, prev)
        else:
            F = functional()
            if impl == "fastcnn":
                fc = fastcnn_module()
                prev = fc.set_num_threads(threads)
                stack.callback(fc.set_num_threads, prev)
            stack.enter_context(F.use_backend("fast" if impl == "fastcnn" else "reference"))
        ctl = _threadpool_controller()
        if ctl is not None:
            stack.enter_context(ctl.limit(limits=threads, user_api="blas"))
        yield


def quiesce(impl: str, threads: int) -> None:
    """Sleep long enough after timing `impl` that its idle worker threads stop spinning before
    the next impl is timed: OpenBLAS workers (the numpy reference's BLAS) busy-wait up to
    ~2**28 cycles (~0.07 s) after a call; libgomp workers (fastcnn and torch share one runtime,
    see openmp_runtime) at libgomp's default policy ~10 ms (Zen 4: the CPU time an idle worker
    burned after a PyTorch convolution), none when passive."""
    if threads > 1:
        time.sleep(0.1 if impl == "numpy" else 0.03)


def max_threads(impl: str) -> int | None:
    """The most threads `impl` can use here (1 for a fastcnn build without OpenMP), or None when
    unlimited/unknown."""
    if impl == "fastcnn":
        from fastcnn import _kernels
        info = _kernels.build_info()
        return None if info.get("openmp") else 1
    return None


# --------------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------------
Builder = Callable[[Mapping[str, Any], np.dtype, np.random.Generator], Callable[[], Any]]


@dataclass
class OpSpec:
    name: str
    work: Callable[[Mapping[str, Any]], float | None]            # FLOPs of one step
    traffic: Callable[[Mapping[str, Any], int], float | None]    # compulsory bytes of one step
    outputs: tuple[str, ...]                                     # names of what a step returns
    advisory: tuple[str, ...] = ()     # outputs --check reports but does not fail on
    builders: dict[str, Builder] = field(default_factory=dict)


OPS: dict[str, OpSpec] = {}


def register_op(name, *, work=lambda p: None, traffic=lambda p, itemsize: None, outputs=(),
                advisory=()):
    OPS[name] = OpSpec(name, work, traffic, tuple(outputs), tuple(advisory))
    return OPS[name]


def builder(op: str, *impls: str):
    def deco(fn: Builder) -> Builder:
        for impl in impls:
            OPS[op].builders[impl] = fn
        return fn
    return deco


@dataclass(frozen=True)
class Case:
    op: str
    name: str                     # stable id, unique within the op
    title: str                    # human label for tables
    params: Mapping[str, Any]
    small: Mapping[str, Any] = field(default_factory=dict)   # overrides for the smoke variant
    check: Mapping[str, Any] = field(default_factory=dict)   # overrides for --check (e.g. p=0)
    heavy: bool = False           # pytest skips it unless --bench-heavy (CI smoke stays fast)
    suite: str = "peers"          # "peers" (PERFORMANCE.md's table) or "layers" (every model layer)

    @property
    def spec(self) -> OpSpec:
        return OPS[self.op]

    def smallified(self) -> "Case":
        return dataclasses.replace(self, params={**self.params, **self.small},
                                   title=self.title + " [small]")

    def checkified(self) -> "Case":
        """The variant the agreement check runs (e.g. dropout p=0 so the impls can agree)."""
        if not self.check:
            return self
        return dataclasses.replace(self, params={**self.params, **self.check})

    def flops(self) -> float | None:
        return self.spec.work(self.params)

    def traffic(self, dtype="float32") -> float | None:
        return self.spec.traffic(self.params, np.dtype(dtype).itemsize)

    def group(self, dtype: str, threads: int) -> str:
        return f"{self.op}:{self.name}:{dtype}:t{threads}"

    def shape_str(self) -> str:
        x = self.params.get("x_shape")
        return "x" + str(tuple(x)).replace(" ", "") if x is not None else ""

    def setup(self, impl: str, dtype="float32", seed: int = 0) -> Callable[[], Any]:
        """Build inputs (outside any timing) and return the step for `impl`."""
        try:
            make = self.spec.builders[impl]
        except KeyError:
            raise KeyError(f"op {self.op!r} has no builder for impl {impl!r}") from None
        return make(self.params, np.dtype(dtype), np.random.default_rng(seed))

    def rate(self, seconds: float, dtype="float32") -> tuple[float | None, str]:
        """(rate, unit) for one step taking `seconds`: GFLOP/s when the op has a FLOP count,
        else GB/s of compulsory memory traffic, else (None, "")."""
        if not seconds or seconds <= 0:
            return None, ""
        f = self.flops()
        if f:
            return f / seconds / 1e9, "GFLOP/s"
        b = self.traffic(dtype)
        if b:
            return b / seconds / 1e9, "GB/s"
        return None, ""


CASES: list[Case] = []


def add_case(case: Case) -> Case:
    if any(c.op == case.op and c.name == case.name for c in CASES):
        raise ValueError(f"duplicate case {case.op}:{case.name}")
    CASES.append(case)
    return case


SUITES: tuple[str, ...] = ("peers", "layers")


def get_cases(ops: Sequence[str] | None = None, names: Sequence[str] | None = None,
              small: bool = False, suites: Sequence[str] | None = ("peers",)) -> list[Case]:
    """Cases of the given ops, names and suites (None: any); named cases count whatever their
    suite."""
    out = [c for c in CASES
           if (ops is None or c.op in ops) and (names is None or c.name in names)
           and (suites is None or names is not None or c.suite in suites)]
    return [c.smallified() if small else c for c in out]


# --------------------------------------------------------------------------------------------
# Shared helpers
# --------------------------------------------------------------------------------------------
def _out_size(size, k, s, p):
    return (size + 2 * p - k) // s + 1


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def _small(x_shape):
    return {"x_shape": (min(SMALL_BATCH, x_shape[0]),) + tuple(x_shape[1:])}


def to_numpy(v):
    """Step outputs -> numpy (torch tensors are detached; None stays None)."""
    if v is None:
        return None
    if hasattr(v, "detach"):
        return v.detach().cpu().numpy()
    return np.asarray(v)


# --------------------------------------------------------------------------------------------
# conv: forward with bias, backward with dx, dweight, dbias
# --------------------------------------------------------------------------------------------
def _conv_geom(p):
    N, C, H, W = p["x_shape"]
    KH, KW = _pair(p["kernel"])
    SH, SW = _pair(p["stride"])
    PH, PW = _pair(p["padding"])
    OC = p["out_channels"]
    OH, OW = _out_size(H, KH, SH, PH), _out_size(W, KW, SW, PW)
    return N, C, H, W, OC, KH, KW, SH, SW, PH, PW, OH, OW


def _conv_work(p):
    N, C, H, W, OC, KH, KW, SH, SW, PH, PW, OH, OW = _conv_geom(p)
    return 3.0 * 2.0 * N * OC * C * KH * KW * OH * OW      # fwd + dx + dW


def _conv_traffic(p, itemsize):
    N, C, H, W, OC, KH, KW, SH, SW, PH, PW, OH, OW = _conv_geom(p)
    return itemsize * (3 * N * C * H * W + 3 * N * OC * OH * OW + 3 * OC * C * KH * KW)


register_op("conv", work=_conv_work, traffic=_conv_traffic,
            outputs=("y", "dx", "dweight", "dbias"))


def _conv_data(p, dtype, rng):
    N, C, H, W, OC, KH, KW, SH, SW, PH, PW, OH, OW = _conv_geom(p)
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    w = (rng.standard_normal((OC, C, KH, KW)) * np.sqrt(2.0 / (C * KH * KW))).astype(dtype)
    b = (0.1 * rng.standard_normal(OC)).astype(dtype)
    dy = rng.standard_normal((N, OC, OH, OW)).astype(dtype)
    return x, w, b, dy, (SH, SW), (PH, PW)


@builder("conv", "fastcnn", "numpy")
def _conv_fastcnn(p, dtype, rng):
    F = functional()
    x, w, b, dy, stride, padding = _conv_data(p, dtype, rng)
    y_buf, dx_buf = np.empty(dy.shape, dtype), np.empty(x.shape, dtype)

    def step():
        fast = F.get_backend() == "fast"   # out= buffers only where the layers use them
        y = F.conv2d(x, w, b, stride=stride, padding=padding, out=y_buf if fast else None)
        dx, dw, db = F.conv2d_backward(dy, x, w, stride=stride, padding=padding,
                                       need_dx=True, need_dbias=True,
                                       out=dx_buf if fast else None)
        return y, dx, dw, db
    return step


@builder("conv", "torch")
def _conv_torch(p, dtype, rng):
    torch = torch_module()
    tf = torch.nn.functional
    x, w, b, dy, stride, padding = _conv_data(p, dtype, rng)
    tx, tw, tb = (torch.from_numpy(a).requires_grad_(True) for a in (x, w, b))
    tdy = torch.from_numpy(dy)

    def step():
        y = tf.conv2d(tx, tw, tb, stride=stride, padding=padding)
        dx, dw, db = torch.autograd.grad(y, (tx, tw, tb), tdy)
        return y, dx, dw, db
    return step


# --------------------------------------------------------------------------------------------
# max pool: forward with argmax indices, backward
# --------------------------------------------------------------------------------------------
def _pool_geom(p):
    N, C, H, W = p["x_shape"]
    KH, KW = _pair(p["kernel"])
    SH, SW = _pair(p.get("stride") or p["kernel"])
    PH, PW = _pair(p.get("padding", 0))
    return N, C, H, W, KH, KW, SH, SW, PH, PW, _out_size(H, KH, SH, PH), _out_size(W, KW, SW, PW)


def _pool_traffic(p, itemsize):
    # fwd: read x, write y and int32 indices; bwd: read dy and indices, write dx
    N, C, H, W, KH, KW, SH, SW, PH, PW, OH, OW = _pool_geom(p)
    nx, ny = N * C * H * W, N * C * OH * OW
    return itemsize * (2 * nx + 2 * ny) + 4 * 2 * ny


register_op("pool", traffic=_pool_traffic, outputs=("y", "indices", "dx"))


def _pool_data(p, dtype, rng):
    N, C, H, W, KH, KW, SH, SW, PH, PW, OH, OW = _pool_geom(p)
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    dy = rng.standard_normal((N, C, OH, OW)).astype(dtype)
    return x, dy, (KH, KW), (SH, SW), (PH, PW)


@builder("pool", "fastcnn", "numpy")
def _pool_fastcnn(p, dtype, rng):
    F = functional()
    x, dy, kernel, stride, padding = _pool_data(p, dtype, rng)
    y_buf, i_buf = np.empty(dy.shape, dtype), np.empty(dy.shape, np.int32)
    dx_buf = np.empty(x.shape, dtype)

    def step():
        fast = F.get_backend() == "fast"   # out= buffers only where the layers use them
        y, idx = F.max_pool2d(x, kernel, stride=stride, padding=padding, return_indices=True,
                              out=y_buf if fast else None, out_indices=i_buf if fast else None)
        dx = F.max_pool2d_backward(dy, idx, x.shape, out=dx_buf if fast else None)
        return y, idx, dx
    return step


@builder("pool", "torch")
def _pool_torch(p, dtype, rng):
    torch = torch_module()
    tf = torch.nn.functional
    x, dy, kernel, stride, padding = _pool_data(p, dtype, rng)
    tx = torch.from_numpy(x).requires_grad_(True)
    tdy = torch.from_numpy(dy)

    def step():
        y, idx = tf.max_pool2d(tx, kernel, stride=stride, padding=padding, return_indices=True)
        (dx,) = torch.autograd.grad(y, (tx,), tdy)
        return y, idx, dx
    return step


# --------------------------------------------------------------------------------------------
# batch norm: training forward (batch statistics, running-stat update) + backward
# --------------------------------------------------------------------------------------------
def _bn_traffic(p, itemsize):
    # compulsory, one pass each: fwd read x, write y; bwd read x and dy, write dx
    n = int(np.prod(p["x_shape"]))
    return itemsize * 5 * n


register_op("bn", traffic=_bn_traffic, outputs=("y", "dx", "dweight", "dbias"))


def _bn_data(p, dtype, rng):
    shape = tuple(p["x_shape"])
    C = shape[1]
    x = (1.5 * rng.standard_normal(shape) + 0.3).astype(dtype)
    gamma = (1.0 + 0.1 * rng.standard_normal(C)).astype(dtype)
    beta = (0.1 * rng.standard_normal(C)).astype(dtype)
    dy = rng.standard_normal(shape).astype(dtype)
    return x, gamma, beta, dy, np.zeros(C, dtype), np.ones(C, dtype)


@builder("bn", "fastcnn", "numpy")
def _bn_fastcnn(p, dtype, rng):
    F = functional()
    x, gamma, beta, dy, rmean, rvar = _bn_data(p, dtype, rng)
    y_buf, dx_buf = np.empty(x.shape, dtype), np.empty(x.shape, dtype)

    def step():
        fast = F.get_backend() == "fast"   # out= buffers only where the layers use them
        y, mean, invstd = F.batch_norm(x, gamma, beta, rmean, rvar, training=True,
                                       momentum=0.1, eps=1e-5, out=y_buf if fast else None)
        dx, dgamma, dbeta = F.batch_norm_backward(dy, x, gamma, mean, invstd, training=True,
                                                  out=dx_buf if fast else None)
        return y, dx, dgamma, dbeta
    return step


@builder("bn", "torch")
def _bn_torch(p, dtype, rng):
    torch = torch_module()
    tf = torch.nn.functional
    x, gamma, beta, dy, rmean, rvar = _bn_data(p, dtype, rng)
    tx, tg, tb = (torch.from_numpy(a).requires_grad_(True) for a in (x, gamma, beta))
    tdy, trm, trv = (torch.from_numpy(a) for a in (dy, rmean, rvar))

    def step():
        y = tf.batch_norm(tx, trm, trv, tg, tb, training=True, momentum=0.1, eps=1e-5)
        dx, dg, db = torch.autograd.grad(y, (tx, tg, tb), tdy)
        return y, dx, dg, db
    return step


# --------------------------------------------------------------------------------------------
# ReLU: the layer's forward + backward (its own output and gradient buffers, as in a model
# where it cannot run in place)
# --------------------------------------------------------------------------------------------
def _relu_traffic(p, itemsize):
    # compulsory: fwd read x, write y; bwd read dy and y, write dx
    return itemsize * 5 * int(np.prod(p["x_shape"]))


register_op("relu", traffic=_relu_traffic, outputs=("y", "dx"))


def _relu_data(p, dtype, rng):
    shape = tuple(p["x_shape"])
    return rng.standard_normal(shape).astype(dtype), rng.standard_normal(shape).astype(dtype)


@builder("relu", "fastcnn", "numpy")
def _relu_fastcnn(p, dtype, rng):
    layer = fastcnn_module().layers.ReLU()
    x, dy = _relu_data(p, dtype, rng)

    def step():
        y = layer.forward(x)
        return y, layer.backward(dy)
    return step


@builder("relu", "torch")
def _relu_torch(p, dtype, rng):
    torch = torch_module()
    x, dy = _relu_data(p, dtype, rng)
    tx, tdy = torch.from_numpy(x).requires_grad_(True), torch.from_numpy(dy)

    def step():
        y = torch.relu(tx)
        (dx,) = torch.autograd.grad(y, (tx,), tdy)
        return y, dx
    return step


# --------------------------------------------------------------------------------------------
# softmax cross-entropy: the loss layer's forward (mean loss) + backward (dL/dlogits)
# --------------------------------------------------------------------------------------------
def _loss_traffic(p, itemsize):
    # compulsory: read the logits, read them (or the probabilities) again and write the
    # gradient; the labels once (int64)
    N, K = p["x_shape"]
    return itemsize * 3 * N * K + 8 * N


register_op("loss", traffic=_loss_traffic, outputs=("loss", "dlogits"))


def _loss_data(p, dtype, rng):
    N, K = p["x_shape"]
    logits = (3 * rng.standard_normal((N, K))).astype(dtype)
    return logits, rng.integers(0, K, size=N).astype(np.int64)


@builder("loss", "fastcnn", "numpy")
def _loss_fastcnn(p, dtype, rng):
    layer = fastcnn_module().layers.SoftmaxCrossEntropy()
    logits, labels = _loss_data(p, dtype, rng)

    def step():
        loss = layer.forward(logits, labels)
        return np.asarray(loss, np.float64), layer.backward()
    return step


@builder("loss", "torch")
def _loss_torch(p, dtype, rng):
    torch = torch_module()
    logits, labels = _loss_data(p, dtype, rng)
    tl, tlab = torch.from_numpy(logits).requires_grad_(True), torch.from_numpy(labels)

    def step():
        loss = torch.nn.functional.cross_entropy(tl, tlab)
        (d,) = torch.autograd.grad(loss, (tl,))
        return loss, d
    return step


# --------------------------------------------------------------------------------------------
# The cases: PERFORMANCE.md's peer table
# --------------------------------------------------------------------------------------------
def _conv_case(name, title, x_shape, out_channels, kernel, stride=1, padding=0):
    return add_case(Case("conv", name, title,
                         dict(x_shape=x_shape, out_channels=out_channels, kernel=kernel,
                              stride=stride, padding=padding),
                         small=_small(x_shape)))


_conv_case("mnist-1-30-5x5", "MNIST conv 1->30 5x5", (100, 1, 28, 28), 30, 5)
_conv_case("deep-16-16-3x3", "DeepConvNet conv 16->16 3x3 p1", (100, 16, 28, 28), 16, 3, 1, 1)
_conv_case("deep-32-64-3x3", "DeepConvNet conv 32->64 3x3 p1", (100, 32, 14, 14), 64, 3, 1, 1)
_conv_case("cifar-3-64-3x3", "CIFAR conv 3->64 3x3 p1", (128, 3, 32, 32), 64, 3, 1, 1)
_conv_case("wide-64-128-3x3", "conv 64->128 3x3 p1", (128, 64, 16, 16), 128, 3, 1, 1)
_conv_case("alexnet-conv1", "AlexNet conv1 3->96 11x11 s4", (8, 3, 227, 227), 96, 11, 4, 0)

add_case(Case("pool", "max-2x2-s2", "max pool 2x2 s2",
              dict(x_shape=(100, 30, 24, 24), kernel=2, stride=2, padding=0),
              small=_small((100, 30, 24, 24))))

add_case(Case("bn", "bn-64", "batch norm 64 ch (train)", dict(x_shape=(128, 64, 32, 32)),
              small=_small((128, 64, 32, 32))))

# ReLU on SimpleConvNet's convolution output and AlexNet (227x227)'s first; the loss on
# MNIST's 10 classes at batch 100 and ImageNet's 1000 at batch 8 (4 KB and 32 KB of logits: a
# few microseconds whoever computes them, bound by per-call work rather than memory).
add_case(Case("relu", "relu-simple", "ReLU SimpleConvNet conv out", dict(x_shape=(100, 30, 24, 24)),
              small=_small((100, 30, 24, 24))))
add_case(Case("relu", "relu-alexo", "ReLU AlexNet conv1 out", dict(x_shape=(8, 96, 55, 55)),
              small=_small((8, 96, 55, 55))))
add_case(Case("loss", "loss-10", "softmax CE 10 classes", dict(x_shape=(100, 10)),
              small=_small((100, 10))))
add_case(Case("loss", "loss-1000", "softmax CE 1000 classes", dict(x_shape=(8, 1000)),
              small=_small((8, 1000))))


# --------------------------------------------------------------------------------------------
# The "layers" suite: every other conv / pool / batch-norm layer shape of the study's models
# (issue 5's per-layer targets; the shapes the peer table already has are not repeated).
# SimpleConvNet, DeepConvNet and AlexNet small at batch 100, AlexNet original at batch 8; batch
# norm where AlexNet(norm="batchnorm") puts it (the default models have none). Heavy: pytest
# runs them only with --bench-heavy; compare.py with --suite layers (or all).
# --------------------------------------------------------------------------------------------
def _layer_case(op, name, title, params):
    return add_case(Case(op, name, title, params, small=_small(params["x_shape"]), heavy=True,
                         suite="layers"))


for _name, _x, _oc, _k, _p in (
        ("deep.conv1", (100, 1, 28, 28), 16, 3, 1), ("deep.conv3", (100, 16, 14, 14), 32, 3, 1),
        ("deep.conv4", (100, 32, 14, 14), 32, 3, 2), ("deep.conv5", (100, 32, 8, 8), 64, 3, 1),
        ("deep.conv6", (100, 64, 8, 8), 64, 3, 1),
        ("alexs.conv1", (100, 3, 32, 32), 64, 5, 2), ("alexs.conv2", (100, 64, 15, 15), 128, 5, 2),
        ("alexs.conv3", (100, 128, 7, 7), 192, 3, 1), ("alexs.conv4", (100, 192, 7, 7), 192, 3, 1),
        ("alexs.conv5", (100, 192, 7, 7), 128, 3, 1),
        ("alexo.conv2", (8, 96, 27, 27), 256, 5, 2), ("alexo.conv3", (8, 256, 13, 13), 384, 3, 1),
        ("alexo.conv4", (8, 384, 13, 13), 384, 3, 1), ("alexo.conv5", (8, 384, 13, 13), 256, 3, 1)):
    _layer_case("conv", _name, f"{_name} {_x[1]}->{_oc} {_k}x{_k} p{_p}",
                dict(x_shape=_x, out_channels=_oc, kernel=_k, stride=1, padding=_p))
for _name, _x, _k in (
        ("deep.pool1", (100, 16, 28, 28), 2), ("deep.pool2", (100, 32, 16, 16), 2),
        ("deep.pool3", (100, 64, 8, 8), 2), ("alexs.pool1", (100, 64, 32, 32), 3),
        ("alexs.pool2", (100, 128, 15, 15), 3), ("alexs.pool3", (100, 128, 7, 7), 3),
        ("alexo.pool1", (8, 96, 55, 55), 3), ("alexo.pool2", (8, 256, 27, 27), 3),
        ("alexo.pool3", (8, 256, 13, 13), 3)):
    _layer_case("pool", _name, f"{_name} max {_k}x{_k} s2",
                dict(x_shape=_x, kernel=_k, stride=2, padding=0))
for _name, _x in (("alexs-bn.bn1", (100, 64, 32, 32)), ("alexs-bn.bn2", (100, 128, 15, 15)),
                  ("alexs-bn.bn3", (100, 192, 7, 7)), ("alexs-bn.bn5", (100, 128, 7, 7))):
    _layer_case("bn", _name, f"{_name} {_x[1]} ch (train)", dict(x_shape=_x))


# --------------------------------------------------------------------------------------------
# model: one whole training step of a bundled model (issue 5)
# --------------------------------------------------------------------------------------------
# One step = zero_grad, forward (train mode: dropout active), softmax cross-entropy loss,
# backward, Adam update -- what fastcnn.train.fit does per batch, minus its NaN check.
#   fastcnn / numpy: the real fastcnn model (fastcnn.models), optim.Adam and
#                    layers.SoftmaxCrossEntropy; "numpy" runs it under F.use_backend("reference").
#   torch:           a torch.nn.Sequential built layer for layer from the SAME fastcnn model
#                    (same shapes; every parameter copied), nn.CrossEntropyLoss (mean) and
#                    torch.optim.Adam with the same hyper-parameters. ReLU is nn.ReLU(inplace=True)
#                    as in torchvision (the leaner, stronger peer); LRN maps to
#                    nn.LocalResponseNorm(size, alpha * size, beta, k) because torch divides alpha
#                    by size and fastcnn (the AlexNet paper) does not.
# A step returns (loss, logits, grad of the first layer's weight, grad of the last layer's weight)
# so --check compares them. The check runs each case's ``check`` variant: dropout p=0 (the
# models then build no Dropout layer at all), since the impls draw different dropout masks.
# Timing runs the real models (dropout 0.5 where the model has it).
#
# Parameters: model (class name in fastcnn.models.MODELS), kwargs (constructor arguments other
# than input_shape/num_classes/dtype/rng), x_shape (N, C, H, W), num_classes, lr (Adam).
MODEL_SEED = 1234        # the models' init seed (all impls start from the same weights)


def _model_kwargs(p, dtype):
    return dict(p.get("kwargs") or {}, input_shape=tuple(p["x_shape"][1:]),
                num_classes=int(p["num_classes"]), dtype=np.dtype(dtype))


def _build_fastcnn_model(p, dtype, seed=MODEL_SEED):
    fastcnn_module()
    models = importlib.import_module("fastcnn.models")
    return models.MODELS[p["model"]](**_model_kwargs(p, dtype), rng=seed)


_MODEL_FLOPS: dict = {}


def _model_work(p):
    """FLOPs of one training step, counting the GEMM-shaped work only: 2*MACs of every conv and
    affine layer for the forward pass, the same for dW and for dx (dx skipped for the first
    layer, as both fastcnn and torch skip it). Pooling, ReLU, LRN, loss and Adam not counted."""
    key = repr(sorted((k, repr(v)) for k, v in p.items()))
    if key not in _MODEL_FLOPS:
        L = importlib.import_module("fastcnn.layers")
        model = _build_fastcnn_model(p, np.float32)
        N = p["x_shape"][0]
        shape, total, first = tuple(p["x_shape"][1:]), 0.0, True
        for layer in model.layers:
            out = layer.output_shape(shape)
            if isinstance(layer, L.Conv2D):
                kh, kw = layer.kernel_size
                f = 2.0 * N * math.prod(out) * layer.in_channels * kh * kw
            elif isinstance(layer, L.Affine):
                f = 2.0 * N * layer.in_features * layer.out_features
            else:
                f = 0.0
            if f:
                total += f * (2 if first else 3)
                first = False
            shape = out
        _MODEL_FLOPS[key] = total
    return _MODEL_FLOPS[key]


# dweight_first is advisory in --check: a float32 max-pool argmax can flip on a 1-ulp near-tie
# (seen: AlexNet original pool1, 1 of 140k windows, 1.1481837 vs 1.1481836), re-routing one
# gradient and moving the first layer's dW by ~1e-2 relative; torch float32 is not immune either.
register_op("model", work=_model_work, outputs=("loss", "logits", "dweight_first", "dweight_last"),
            advisory=("dweight_first",))


def _model_data(p, dtype, rng):
    x = rng.standard_normal(tuple(p["x_shape"])).astype(dtype)
    labels = rng.integers(0, int(p["num_classes"]), size=p["x_shape"][0]).astype(np.int64)
    return x, labels


def _weighted(model):
    return [layer for layer in model.layers if getattr(layer, "weight", None) is not None]


@builder("model", "fastcnn", "numpy")
def _model_fastcnn(p, dtype, rng):
    optim = importlib.import_module("fastcnn.optim")
    L = importlib.import_module("fastcnn.layers")
    x, labels = _model_data(p, dtype, rng)
    model = _build_fastcnn_model(p, dtype)
    model.train()
    opt = optim.Adam(model.parameters(), lr=p.get("lr", 1e-3))
    loss_fn = L.SoftmaxCrossEntropy()
    first, last = _weighted(model)[0].weight, _weighted(model)[-1].weight

    def step():
        opt.zero_grad()
        logits = model.forward(x)
        loss = loss_fn.forward(logits, labels)
        model.backward(loss_fn.backward())
        opt.step()
        return loss, logits, first.grad, last.grad
    return step


def torch_mirror(model):
    """A torch.nn.Sequential equivalent to the fastcnn Sequential `model`, layer for layer, with
    every parameter (and BatchNorm buffer) copied from it."""
    torch = torch_module()
    nn = torch.nn
    L = importlib.import_module("fastcnn.layers")
    tdt = getattr(torch, model.dtype.name)
    mods = []

    def copy(dst, src):
        with torch.no_grad():
            dst.copy_(torch.from_numpy(np.ascontiguousarray(src)))

    for layer in model.layers:
        if isinstance(layer, L.Conv2D):
            m = nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size,
                          stride=layer.stride, padding=layer.padding,
                          bias=layer.bias is not None, dtype=tdt)
        elif isinstance(layer, L.Affine):
            m = nn.Linear(layer.in_features, layer.out_features, bias=layer.bias is not None,
                          dtype=tdt)
        elif isinstance(layer, (L.BatchNorm2D, L.BatchNorm1D)):
            cls = nn.BatchNorm2d if isinstance(layer, L.BatchNorm2D) else nn.BatchNorm1d
            m = cls(layer.num_features, eps=layer.eps, momentum=layer.momentum, dtype=tdt)
            copy(m.running_mean, layer._buffers["running_mean"])
            copy(m.running_var, layer._buffers["running_var"])
        elif isinstance(layer, L.ReLU):
            m = nn.ReLU(inplace=True)
        elif isinstance(layer, L.LeakyReLU):
            m = nn.LeakyReLU(layer.slope, inplace=True)
        elif isinstance(layer, L.Sigmoid):
            m = nn.Sigmoid()
        elif isinstance(layer, L.Tanh):
            m = nn.Tanh()
        elif isinstance(layer, L.MaxPool2D):
            m = nn.MaxPool2d(layer.kernel_size, layer.stride, layer.padding)
        elif isinstance(layer, L.LRN):
            m = nn.LocalResponseNorm(layer.size, alpha=layer.alpha * layer.size,
                                     beta=layer.beta, k=layer.k)
        elif isinstance(layer, L.Dropout):
            m = nn.Dropout(layer.p)
        elif isinstance(layer, L.Flatten):
            m = nn.Flatten()
        else:
            raise NotImplementedError(f"torch_mirror: no torch equivalent for {layer!r}")
        if getattr(layer, "weight", None) is not None:
            copy(m.weight, layer.weight.data)
            if getattr(layer, "bias", None) is not None:
                copy(m.bias, layer.bias.data)
        mods.append(m)
    return nn.Sequential(*mods)


@builder("model", "torch")
def _model_torch(p, dtype, rng):
    torch = torch_module()
    x, labels = _model_data(p, dtype, rng)
    fc_model = _build_fastcnn_model(p, dtype)
    model = torch_mirror(fc_model)
    del fc_model                       # only torch's own copy stays alive
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=p.get("lr", 1e-3))
    crit = torch.nn.CrossEntropyLoss()
    tx, ty = torch.from_numpy(x), torch.from_numpy(labels)
    weighted = [m for m in model if getattr(m, "weight", None) is not None]
    first, last = weighted[0].weight, weighted[-1].weight

    def step():
        opt.zero_grad()
        logits = model(tx)
        loss = crit(logits, ty)
        loss.backward()
        opt.step()
        return loss.detach(), logits.detach(), first.grad, last.grad
    return step


def _model_case(name, title, model, x_shape, num_classes, kwargs=None, heavy=False):
    kwargs = dict(kwargs or {})
    check = {"kwargs": {**kwargs, "dropout": 0.0}} if model in ("DeepConvNet", "AlexNet") else {}
    return add_case(Case("model", name, title,
                         dict(model=model, kwargs=kwargs, x_shape=x_shape,
                              num_classes=num_classes, lr=1e-3),
                         small=_small(x_shape), check=check, heavy=heavy))


_model_case("simple-convnet", "SimpleConvNet train step", "SimpleConvNet", (100, 1, 28, 28), 10)
_model_case("deep-convnet", "DeepConvNet train step", "DeepConvNet", (100, 1, 28, 28), 10)
_model_case("alexnet-small", "AlexNet small train step", "AlexNet", (100, 3, 32, 32), 10,
            dict(variant="small"))
_model_case("alexnet-original", "AlexNet original train step", "AlexNet", (8, 3, 227, 227),
            1000, dict(variant="original"), heavy=True)


# --------------------------------------------------------------------------------------------
# Peak memory of a step, measured in a fresh subprocess per (case, impl, threads)
# --------------------------------------------------------------------------------------------
def _proc_status_kb(field_name):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    raise KeyError(field_name)


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (VmHWM) to the current RSS (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _malloc_trim():
    try:
        import ctypes
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _peak_memory_child(spec: Mapping[str, Any]) -> dict:
    import gc
    impl, threads, steps = spec["impl"], int(spec["threads"]), int(spec["steps"])
    case = Case(spec["op"], spec["name"], spec["name"], spec["params"])
    # import (and thereby load) every library the impl uses before the baseline
    if impl == "torch":
        torch_module()
    fastcnn_module()
    functional()
    importlib.import_module("fastcnn.models")
    importlib.import_module("fastcnn.optim")
    _threadpool_controller()
    # one step of a tiny model through the same builder: pays lazy imports (torch.optim.Adam
    # pulls in ~70 MB of Python modules on first use), thread pools and JIT/dispatch setup
    tiny = Case("model", "warm-libraries", "", dict(model="SimpleConvNet", kwargs={},
                                                     x_shape=(1, 1, 8, 8), num_classes=2))
    with impl_context(impl, threads):
        tiny.setup(impl, spec["dtype"])()
    del tiny
    gc.collect()
    _malloc_trim()
    rss0 = _proc_status_kb("VmRSS")
    file0 = _proc_status_kb("RssFile") + _proc_status_kb("RssShmem")
    step = case.setup(impl, spec["dtype"])          # data, model, optimizer (no step yet)
    gc.collect()
    _malloc_trim()
    rss_built = _proc_status_kb("VmRSS")
    reset = _reset_peak_rss()
    with impl_context(impl, threads):
        for _ in range(steps):
            step()
    hwm = _proc_status_kb("VmHWM")
    rss_end = _proc_status_kb("VmRSS")
    code = _proc_status_kb("RssFile") + _proc_status_kb("RssShmem") - file0
    mb = 1.0 / 1024
    return {"peak_mb": (hwm - rss0 - code) * mb, "peak_total_mb": (hwm - rss0) * mb,
            "file_backed_mb": code * mb, "built_mb": (rss_built - rss0) * mb,
            "after_mb": (rss_end - rss0) * mb, "baseline_mb": rss0 * mb,
            "steps": steps, "threads": threads, "hwm_reset": reset}


def peak_memory(case: Case, impl: str, threads: int, dtype="float32", steps: int = 3,
                timeout: float = 900.0) -> dict:
    """Peak memory of `steps` training steps of `impl`, in a fresh Python process.

    Method (the same for every impl, so fair to numpy and torch alike; Linux only):
    the child imports everything the impl needs (numpy, fastcnn, and torch for the torch impl),
    runs one step of a tiny SimpleConvNet (8x8 input, batch 1) through the impl's own builder
    (lazy imports -- torch.optim.Adam alone pulls in ~70 MB of Python modules on first use --
    thread pools, dispatch setup), drops it, and records its resident set size (VmRSS) as the
    baseline; builds the data, the model and
    the optimizer; frees what construction left behind (gc + malloc_trim: the torch impl builds
    the fastcnn model to copy its weights, then drops it); resets the kernel's peak-RSS mark
    (``echo 5 > /proc/self/clear_refs``) so construction transients do not count; runs the
    steps (the first one included: fastcnn allocates its layer workspaces and torch its Adam
    state there); reads VmHWM. ``peak_total_mb`` = VmHWM - baseline: everything construction
    left resident and the steps kept or touched, above the imported interpreter. ``peak_mb``
    (the reported number) subtracts the growth of file-backed RSS (RssFile + RssShmem, read at
    the end): shared-library code pages faulted in on first use (tens of MB of libtorch/oneDNN
    code for torch, little for fastcnn) are not memory a step allocates and are shared between
    processes. What remains is anonymous memory: parameters, gradients, optimizer state,
    activations, layer workspaces, allocator and library scratch (OpenBLAS buffers, oneDNN's
    JIT code and scratchpads, torch's autograd and thread-pool state). RSS counts every
    allocator (numpy, torch's CPU allocator, C kernels, BLAS), which tracemalloc would not (it
    sees only Python/numpy allocations). ``built_mb`` is the RSS growth after construction.
    Returns a dict, or {"error": ...} when the child fails.
    """
    import json
    import subprocess
    spec = {"op": case.op, "name": case.name, "params": _jsonable(case.params), "impl": impl,
            "threads": threads, "dtype": dtype, "steps": steps}
    try:
        proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--peak-memory",
                               json.dumps(spec)], capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timeout after {timeout:.0f} s"}
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or ["exit %d" % proc.returncode])[-1]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _jsonable(v):
    if isinstance(v, Mapping):
        return {k: _jsonable(x) for k, x in v.items()}
    if isinstance(v, (tuple, list)):
        return [_jsonable(x) for x in v]
    return v


# --------------------------------------------------------------------------------------------
# Agreement check: are the impls computing the same thing?
# --------------------------------------------------------------------------------------------
def compare_outputs(case: Case, impls: Sequence[str], dtype="float32",
                    reference: str | None = None) -> dict[str, dict[str, float]]:
    """Run each impl's step once (default threads) and return, per impl, per output,
    max|a - ref| / max(max|ref|, tiny) against `reference` (default: torch if present, else
    the first impl). Integer outputs (indices) report the fraction of entries that differ."""
    case = case.checkified()
    results = {}
    for impl in impls:
        step = case.setup(impl, dtype)
        with impl_context(impl, threads=1 if impl == "numpy" else 2):
            results[impl] = [to_numpy(v) for v in step()]
        del step                 # free this impl's model before the next one is built
    ref = reference or ("torch" if "torch" in results else impls[0])
    out = {}
    for impl, vals in results.items():
        errs = {}
        for name, a, r in zip(case.spec.outputs, vals, results[ref]):
            if a is None or r is None:
                errs[name] = float("nan")
                continue
            if a.shape != r.shape:
                errs[name] = float("inf")
                continue
            if np.issubdtype(r.dtype, np.integer):
                errs[name] = float(np.mean(a.astype(np.int64) != r.astype(np.int64)))
            else:
                scale = max(float(np.max(np.abs(r))), np.finfo(np.float32).tiny)
                errs[name] = float(np.max(np.abs(a.astype(np.float64) - r))) / scale
        out[impl] = errs
    return out


if __name__ == "__main__":
    # child of peak_memory(): python bench/cases.py --peak-memory '<json spec>'
    import json
    if len(sys.argv) != 3 or sys.argv[1] != "--peak-memory":
        sys.exit("usage: cases.py --peak-memory '<json spec>' (internal: see peak_memory)")
    print(json.dumps(_peak_memory_child(json.loads(sys.argv[2]))))
