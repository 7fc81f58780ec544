"""Bad input to every public function of fastcnn.functional: a table of cases, each asserting the
exception type and fragments of its message (the function, the argument, the shapes). Also: empty
batches are not errors, and shapes whose sizes would overflow are refused before any allocation
(faked with zero-stride views of a one-element array, so no test allocates them)."""
import numpy as np
import pytest

from fastcnn import functional as F

f32, f64 = np.float32, np.float64


def z(*shape, dtype=f32):
    return np.zeros(shape, dtype)


def huge(*shape, dtype=f32):
    """A read-only view with the given shape and no memory behind it (all strides 0)."""
    return np.broadcast_to(np.zeros(1, dtype), shape)


X = z(2, 3, 8, 8)                    # conv input
W = z(4, 3, 3, 3)                    # conv weight: y (2, 4, 6, 6)
B = z(4)
DY = z(2, 4, 6, 6)
XP = z(2, 3, 8, 8)                   # pool input: 2x2/2 -> (2, 3, 4, 4)
DYP = z(2, 3, 4, 4)
IDX = np.zeros((2, 3, 4, 4), np.int32)
XB = z(4, 3, 2, 2)                   # batch-norm input
G = np.ones(3, f32)
LOGITS = z(4, 3)
LABELS = np.array([0, 1, 2, 1])

BAD_DTYPES = [
    (np.int32, "int32"), (np.int64, "int64"), (np.uint8, "uint8"), (np.bool_, "bool"),
    (np.complex64, "complex64"), (np.complex128, "complex128"), (object, "object"),
    (np.float16, "float16"),
]


def _as(a, dt):
    return a.astype(dt)


CASES = []


def case(id, call, exc, *fragments):
    CASES.append(pytest.param(call, exc, fragments, id=id))


# ---- conv2d ----------------------------------------------------------------------------------------
case("conv-x-3d", lambda: F.conv2d(z(3, 8, 8), W), ValueError, "conv2d", "x", "3-D", "(3, 8, 8)")
case("conv-x-5d", lambda: F.conv2d(z(1, 2, 3, 8, 8), W), ValueError, "conv2d", "x", "5-D")
case("conv-w-2d", lambda: F.conv2d(X, z(4, 27)), ValueError, "conv2d", "weight", "(4, 27)")
case("conv-channels", lambda: F.conv2d(z(8, 1, 28, 28), z(16, 3, 5, 5)), ValueError,
     "conv2d", "weight", "3", "1", "x.shape=(8, 1, 28, 28)", "weight.shape=(16, 3, 5, 5)")
case("conv-bias-len", lambda: F.conv2d(X, W, z(5)), ValueError, "conv2d", "bias", "5", "4",
     "weight.shape=(4, 3, 3, 3)")
case("conv-bias-2d", lambda: F.conv2d(X, W, z(4, 1)), ValueError, "conv2d", "bias", "(4, 1)")
for dt, name in BAD_DTYPES:
    case(f"conv-x-{name}", lambda dt=dt: F.conv2d(_as(X, dt), W), TypeError, "conv2d", "x", name)
    case(f"conv-w-{name}", lambda dt=dt: F.conv2d(X, _as(W, dt)), TypeError, "conv2d", "weight", name)
case("conv-bias-int", lambda: F.conv2d(X, W, np.zeros(4, np.int64)), TypeError, "conv2d", "bias", "int64")
case("conv-mixed-x32-w64", lambda: F.conv2d(X, _as(W, f64)), TypeError, "conv2d", "weight",
     "float64", "float32")
case("conv-mixed-x64-w32", lambda: F.conv2d(_as(X, f64), W), TypeError, "conv2d", "float64", "float32")
case("conv-mixed-bias", lambda: F.conv2d(X, W, z(4, dtype=f64)), TypeError, "conv2d", "bias", "float64")
case("conv-x-none", lambda: F.conv2d(None, W), TypeError, "conv2d", "x")
case("conv-w-none", lambda: F.conv2d(X, None), TypeError, "conv2d", "weight")
case("conv-x-str", lambda: F.conv2d("abc", W), TypeError, "conv2d", "x")
case("conv-stride-0", lambda: F.conv2d(X, W, stride=0), ValueError, "conv2d", "stride", "0")
case("conv-stride-neg", lambda: F.conv2d(X, W, stride=-1), ValueError, "conv2d", "stride", "-1")
case("conv-stride-pair-0", lambda: F.conv2d(X, W, stride=(1, 0)), ValueError, "conv2d", "stride")
case("conv-stride-float", lambda: F.conv2d(X, W, stride=1.5), TypeError, "conv2d", "stride", "1.5")
case("conv-stride-str", lambda: F.conv2d(X, W, stride="2"), TypeError, "conv2d", "stride")
case("conv-stride-none", lambda: F.conv2d(X, W, stride=None), TypeError, "conv2d", "stride")
case("conv-stride-triple", lambda: F.conv2d(X, W, stride=(1, 1, 1)), ValueError, "conv2d", "stride")
case("conv-pad-neg", lambda: F.conv2d(X, W, padding=-1), ValueError, "conv2d", "padding", "-1")
case("conv-pad-pair-neg", lambda: F.conv2d(X, W, padding=(0, -2)), ValueError, "conv2d", "padding")
case("conv-pad-float", lambda: F.conv2d(X, W, padding=0.5), TypeError, "conv2d", "padding")
case("conv-kernel-too-big", lambda: F.conv2d(z(1, 3, 2, 2), W), ValueError, "conv2d", "(3, 3)",
     "(2, 2)", "x.shape=(1, 3, 2, 2)")
case("conv-kernel-too-big-w", lambda: F.conv2d(z(1, 3, 9, 2), z(4, 3, 1, 3), padding=(0, 0)),
     ValueError, "conv2d", "x.shape=(1, 3, 9, 2)")
case("conv-empty-height", lambda: F.conv2d(z(2, 3, 0, 8), W), ValueError, "conv2d", "x", "(2, 3, 0, 8)")
# sizes that overflow (faked views: nothing behind them is ever allocated)
case("conv-huge-output", lambda: F.conv2d(huge(2**40, 1, 2**10, 2**10), z(2**12, 1, 1, 1)),
     ValueError, "conv2d", "output")
# a 32768x32768 kernel over a 65536x65536 plane: K = 2**30, OH*OW > 2**30, columns > 2**63 bytes
case("conv-huge-workspace", lambda: F.conv2d(huge(1, 1, 2**16, 2**16, dtype=f64),
                                             huge(1, 1, 2**15, 2**15, dtype=f64)),
     ValueError, "conv2d", "workspace")
case("conv-blas-int32", lambda: F.conv2d(huge(1, 1, 2**16, 2**16), z(1, 1, 1, 1)),
     ValueError, "conv2d", "OH*OW")
case("conv-blas-int32-k", lambda: F.conv2d(huge(1, 2**31, 1, 1), huge(1, 2**31, 1, 1)),
     ValueError, "conv2d", "C*KH*KW")

# ---- conv2d_backward ------------------------------------------------------------------------------
case("convb-dy-shape", lambda: F.conv2d_backward(z(2, 4, 5, 5), X, W), ValueError,
     "conv2d_backward", "dy.shape=(2, 4, 5, 5)", "(2, 4, 6, 6)")
case("convb-dy-channels", lambda: F.conv2d_backward(z(2, 5, 6, 6), X, W), ValueError,
     "conv2d_backward", "dy.shape=(2, 5, 6, 6)")
case("convb-dy-batch", lambda: F.conv2d_backward(z(3, 4, 6, 6), X, W), ValueError,
     "conv2d_backward", "dy.shape=(3, 4, 6, 6)")
case("convb-dy-stride", lambda: F.conv2d_backward(DY, X, W, stride=2), ValueError,
     "conv2d_backward", "dy.shape=(2, 4, 6, 6)", "(2, 4, 3, 3)")
case("convb-dy-3d", lambda: F.conv2d_backward(z(4, 6, 6), X, W), ValueError, "conv2d_backward", "dy")
case("convb-dy-none", lambda: F.conv2d_backward(None, X, W), TypeError, "conv2d_backward", "dy")
case("convb-dy-int", lambda: F.conv2d_backward(_as(DY, np.int32), X, W), TypeError,
     "conv2d_backward", "dy", "int32")
case("convb-dy-f64", lambda: F.conv2d_backward(_as(DY, f64), X, W), TypeError,
     "conv2d_backward", "dy", "float64")
case("convb-channels", lambda: F.conv2d_backward(DY, X, z(4, 2, 3, 3)), ValueError,
     "conv2d_backward", "x.shape=(2, 3, 8, 8)", "weight.shape=(4, 2, 3, 3)")
case("convb-x-none", lambda: F.conv2d_backward(DY, None, W), TypeError, "conv2d_backward", "x")
case("convb-stride-0", lambda: F.conv2d_backward(DY, X, W, stride=0), ValueError,
     "conv2d_backward", "stride")
case("convb-pad-neg", lambda: F.conv2d_backward(DY, X, W, padding=-1), ValueError,
     "conv2d_backward", "padding")
case("convb-huge-workspace",
     lambda: F.conv2d_backward(huge(1, 1, 2**15 + 1, 2**15 + 1, dtype=f64),
                               huge(1, 1, 2**16, 2**16, dtype=f64),
                               huge(1, 1, 2**15, 2**15, dtype=f64)),
     ValueError, "conv2d_backward", "workspace")

# ---- max_pool2d / avg_pool2d -------------------------------------------------------------------------
for fn_name, fn in (("max_pool2d", F.max_pool2d), ("avg_pool2d", F.avg_pool2d)):
    p = fn_name[:3]
    case(f"{p}-x-3d", lambda fn=fn: fn(z(3, 8, 8), 2), ValueError, fn_name, "x", "(3, 8, 8)")
    case(f"{p}-x-2d", lambda fn=fn: fn(z(8, 8), 2), ValueError, fn_name, "x")
    for dt, name in BAD_DTYPES:
        case(f"{p}-x-{name}", lambda fn=fn, dt=dt: fn(_as(XP, dt), 2), TypeError, fn_name, "x", name)
    case(f"{p}-x-none", lambda fn=fn: fn(None, 2), TypeError, fn_name, "x")
    case(f"{p}-kernel-0", lambda fn=fn: fn(XP, 0), ValueError, fn_name, "kernel_size")
    case(f"{p}-kernel-neg", lambda fn=fn: fn(XP, (2, -1)), ValueError, fn_name, "kernel_size")
    case(f"{p}-kernel-none", lambda fn=fn: fn(XP, None), TypeError, fn_name, "kernel_size")
    case(f"{p}-kernel-float", lambda fn=fn: fn(XP, 2.0), TypeError, fn_name, "kernel_size")
    case(f"{p}-stride-0", lambda fn=fn: fn(XP, 2, 0), ValueError, fn_name, "stride")
    case(f"{p}-stride-pair-neg", lambda fn=fn: fn(XP, 2, (2, -2)), ValueError, fn_name, "stride")
    case(f"{p}-pad-neg", lambda fn=fn: fn(XP, 2, 2, -1), ValueError, fn_name, "padding")
    case(f"{p}-pad-over-half", lambda fn=fn: fn(XP, 2, 2, 2), ValueError, fn_name, "padding", "kernel_size")
    case(f"{p}-pad-over-half-k3", lambda fn=fn: fn(XP, 3, 1, 2), ValueError, fn_name, "padding")
    case(f"{p}-pad-over-half-w", lambda fn=fn: fn(XP, (3, 3), 1, (1, 2)), ValueError, fn_name, "padding")
    case(f"{p}-pad-over-half-1x1", lambda fn=fn: fn(XP, 1, 1, 1), ValueError, fn_name, "padding")
    case(f"{p}-kernel-too-big", lambda fn=fn: fn(z(1, 1, 2, 2), 3), ValueError, fn_name,
         "x.shape=(1, 1, 2, 2)")
    case(f"{p}-kernel-too-big-h", lambda fn=fn: fn(z(1, 1, 2, 9), (3, 1)), ValueError, fn_name,
         "x.shape=(1, 1, 2, 9)")
    case(f"{p}-empty-plane", lambda fn=fn: fn(z(1, 1, 0, 4), 1), ValueError, fn_name, "x")
    case(f"{p}-huge-plane", lambda fn=fn: fn(huge(1, 1, 2**16, 2**16), 2), ValueError, fn_name, "32-bit")

# ---- max_pool2d_backward ----------------------------------------------------------------------------
case("mpb-idx-float", lambda: F.max_pool2d_backward(DYP, IDX.astype(f32), XP.shape), TypeError,
     "max_pool2d_backward", "indices", "float32")
case("mpb-idx-bool", lambda: F.max_pool2d_backward(DYP, IDX.astype(bool), XP.shape), TypeError,
     "max_pool2d_backward", "indices")
case("mpb-idx-none", lambda: F.max_pool2d_backward(DYP, None, XP.shape), TypeError,
     "max_pool2d_backward", "indices")
case("mpb-idx-shape", lambda: F.max_pool2d_backward(DYP, IDX[:, :, :3], XP.shape), ValueError,
     "max_pool2d_backward", "indices.shape=(2, 3, 3, 4)", "dy.shape=(2, 3, 4, 4)")
case("mpb-idx-too-big-i32", lambda: F.max_pool2d_backward(DYP, IDX + 64, XP.shape), ValueError,
     "max_pool2d_backward", "indices", "64")
case("mpb-idx-neg-i32", lambda: F.max_pool2d_backward(DYP, IDX - 1, XP.shape), ValueError,
     "max_pool2d_backward", "indices")
case("mpb-idx-too-big-i64", lambda: F.max_pool2d_backward(DYP, IDX.astype(np.int64) + 2**40, XP.shape),
     ValueError, "max_pool2d_backward", "indices")
case("mpb-idx-neg-i64", lambda: F.max_pool2d_backward(DYP, IDX.astype(np.int64) - 1, XP.shape),
     ValueError, "max_pool2d_backward", "indices")
case("mpb-dy-int", lambda: F.max_pool2d_backward(_as(DYP, np.int64), IDX, XP.shape), TypeError,
     "max_pool2d_backward", "dy")
case("mpb-dy-none", lambda: F.max_pool2d_backward(None, IDX, XP.shape), TypeError,
     "max_pool2d_backward", "dy")
case("mpb-dy-3d", lambda: F.max_pool2d_backward(DYP[0], IDX[0], XP.shape), ValueError,
     "max_pool2d_backward", "dy")
case("mpb-xshape-3", lambda: F.max_pool2d_backward(DYP, IDX, (2, 3, 8)), ValueError,
     "max_pool2d_backward", "x_shape")
case("mpb-xshape-none", lambda: F.max_pool2d_backward(DYP, IDX, None), TypeError,
     "max_pool2d_backward", "x_shape")
case("mpb-xshape-neg", lambda: F.max_pool2d_backward(DYP, IDX, (2, 3, -8, 8)), ValueError,
     "max_pool2d_backward", "x_shape")
case("mpb-xshape-float", lambda: F.max_pool2d_backward(DYP, IDX, (2, 3, 8.7, 8)), TypeError,
     "max_pool2d_backward", "x_shape")
case("mpb-xshape-channels", lambda: F.max_pool2d_backward(DYP, IDX, (2, 4, 8, 8)), ValueError,
     "max_pool2d_backward", "dy.shape=(2, 3, 4, 4)", "(2, 4, 8, 8)")

# ---- avg_pool2d_backward -----------------------------------------------------------------------------
case("apb-dy-shape", lambda: F.avg_pool2d_backward(z(2, 3, 3, 4), XP.shape, 2), ValueError,
     "avg_pool2d_backward", "dy.shape=(2, 3, 3, 4)", "(2, 3, 4, 4)")
case("apb-dy-shape-stride", lambda: F.avg_pool2d_backward(DYP, XP.shape, 2, 1), ValueError,
     "avg_pool2d_backward", "dy.shape=(2, 3, 4, 4)", "(2, 3, 7, 7)")
case("apb-dy-int", lambda: F.avg_pool2d_backward(_as(DYP, np.int32), XP.shape, 2), TypeError,
     "avg_pool2d_backward", "dy", "int32")
case("apb-dy-none", lambda: F.avg_pool2d_backward(None, XP.shape, 2), TypeError,
     "avg_pool2d_backward", "dy")
case("apb-xshape-3", lambda: F.avg_pool2d_backward(DYP, (2, 3, 8), 2), ValueError,
     "avg_pool2d_backward", "x_shape")
case("apb-xshape-str", lambda: F.avg_pool2d_backward(DYP, "abcd", 2), (TypeError, ValueError),
     "avg_pool2d_backward", "x_shape")
case("apb-xshape-float", lambda: F.avg_pool2d_backward(DYP, (2, 3, 8.5, 8), 2), TypeError,
     "avg_pool2d_backward", "x_shape")
case("apb-pad-over-half", lambda: F.avg_pool2d_backward(DYP, XP.shape, 2, 2, 2), ValueError,
     "avg_pool2d_backward", "padding")
case("apb-kernel-0", lambda: F.avg_pool2d_backward(DYP, XP.shape, 0), ValueError,
     "avg_pool2d_backward", "kernel_size")
case("apb-kernel-too-big", lambda: F.avg_pool2d_backward(z(1, 1, 1, 1), (1, 1, 2, 2), 3), ValueError,
     "avg_pool2d_backward", "(1, 1, 2, 2)")

# ---- batch_norm ------------------------------------------------------------------------------------
RM, RV = z(3), np.ones(3, f32)
case("bn-x-3d", lambda: F.batch_norm(z(4, 3, 2), G, G), ValueError, "batch_norm", "x", "3-D", "(4, 3, 2)")
case("bn-x-1d", lambda: F.batch_norm(z(4), G[:1], G[:1]), ValueError, "batch_norm", "x", "1-D")
case("bn-x-5d", lambda: F.batch_norm(z(4, 3, 2, 2, 2), G, G), ValueError, "batch_norm", "x", "5-D")
for dt, name in BAD_DTYPES:
    case(f"bn-x-{name}", lambda dt=dt: F.batch_norm(_as(XB, dt), G, G), TypeError, "batch_norm", "x", name)
case("bn-x-none", lambda: F.batch_norm(None, G, G), TypeError, "batch_norm", "x")
case("bn-weight-len", lambda: F.batch_norm(XB, z(4), G), ValueError, "batch_norm", "weight", "4",
     "3", "x.shape=(4, 3, 2, 2)")
case("bn-bias-len", lambda: F.batch_norm(XB, G, z(2)), ValueError, "batch_norm", "bias", "2",
     "x.shape=(4, 3, 2, 2)")
case("bn-weight-2d", lambda: F.batch_norm(XB, z(3, 1), G), ValueError, "batch_norm", "weight")
case("bn-weight-f64", lambda: F.batch_norm(XB, G.astype(f64), G), TypeError, "batch_norm", "weight", "float64")
case("bn-weight-int", lambda: F.batch_norm(XB, G.astype(np.int32), G), TypeError, "batch_norm", "weight")
case("bn-rm-len", lambda: F.batch_norm(XB, G, G, z(4), RV), ValueError, "batch_norm", "running_mean",
     "x.shape=(4, 3, 2, 2)")
case("bn-rv-len", lambda: F.batch_norm(XB, G, G, RM, np.ones(2, f32)), ValueError, "batch_norm", "running_var")
case("bn-rm-f64", lambda: F.batch_norm(XB, G, G, z(3, dtype=f64), RV), TypeError, "batch_norm",
     "running_mean", "float64")
case("bn-rv-int", lambda: F.batch_norm(XB, G, G, RM, np.ones(3, np.int64)), TypeError, "batch_norm",
     "running_var")
case("bn-only-rm", lambda: F.batch_norm(XB, G, G, RM.copy(), None), ValueError, "batch_norm", "running_var")
case("bn-eval-no-running", lambda: F.batch_norm(XB, G, G, training=False), ValueError, "batch_norm",
     "running_mean")
case("bn-one-value-2d", lambda: F.batch_norm(z(1, 3), G, G), ValueError, "batch_norm", "(1, 3)")
case("bn-one-value-4d", lambda: F.batch_norm(z(1, 3, 1, 1), G, G, RM.copy(), RV.copy()), ValueError,
     "batch_norm", "(1, 3, 1, 1)")
case("bn-eps-0", lambda: F.batch_norm(XB, G, G, eps=0.0), ValueError, "batch_norm", "eps")
case("bn-eps-neg", lambda: F.batch_norm(XB, G, G, eps=-1e-5), ValueError, "batch_norm", "eps")
case("bn-eps-nan", lambda: F.batch_norm(XB, G, G, eps=float("nan")), ValueError, "batch_norm", "eps")
case("bn-momentum-neg", lambda: F.batch_norm(XB, G, G, momentum=-0.1), ValueError, "batch_norm", "momentum")
case("bn-momentum-big", lambda: F.batch_norm(XB, G, G, momentum=1.5), ValueError, "batch_norm", "momentum")
case("bn-momentum-nan", lambda: F.batch_norm(XB, G, G, momentum=float("nan")), ValueError,
     "batch_norm", "momentum")
case("bn-rm-readonly", lambda: F.batch_norm(XB, G, G, np.broadcast_to(z(1), (3,)), RV.copy()),
     ValueError, "batch_norm", "running_mean")

# ---- batch_norm_backward ---------------------------------------------------------------------------
SM, SI = z(3), np.ones(3, f32)
case("bnb-dy-shape", lambda: F.batch_norm_backward(z(4, 3, 2, 3), XB, G, SM, SI), ValueError,
     "batch_norm_backward", "dy.shape=(4, 3, 2, 3)", "(4, 3, 2, 2)")
case("bnb-dy-2d-vs-4d", lambda: F.batch_norm_backward(z(4, 3), XB, G, SM, SI), ValueError,
     "batch_norm_backward", "dy.shape=(4, 3)")
case("bnb-dy-f64", lambda: F.batch_norm_backward(_as(XB, f64), XB, G, SM, SI), TypeError,
     "batch_norm_backward", "dy", "float64")
case("bnb-dy-int", lambda: F.batch_norm_backward(_as(XB, np.int32), XB, G, SM, SI), TypeError,
     "batch_norm_backward", "dy", "int32")
case("bnb-dy-none", lambda: F.batch_norm_backward(None, XB, G, SM, SI), TypeError,
     "batch_norm_backward", "dy")
case("bnb-x-3d", lambda: F.batch_norm_backward(z(4, 3, 2), z(4, 3, 2), G, SM, SI), ValueError,
     "batch_norm_backward", "x")
case("bnb-mean-none", lambda: F.batch_norm_backward(XB, XB, G, None, SI), TypeError,
     "batch_norm_backward", "save_mean")
case("bnb-invstd-none", lambda: F.batch_norm_backward(XB, XB, G, SM, None), TypeError,
     "batch_norm_backward", "save_invstd")
case("bnb-mean-len", lambda: F.batch_norm_backward(XB, XB, G, z(2), SI), ValueError,
     "batch_norm_backward", "save_mean", "x.shape=(4, 3, 2, 2)")
case("bnb-invstd-f64", lambda: F.batch_norm_backward(XB, XB, G, SM, SI.astype(f64)), TypeError,
     "batch_norm_backward", "save_invstd", "float64")
case("bnb-weight-len", lambda: F.batch_norm_backward(XB, XB, z(5), SM, SI), ValueError,
     "batch_norm_backward", "weight")

# ---- relu ----------------------------------------------------------------------------------------
case("relu-none", lambda: F.relu(None), TypeError, "relu", "x")
for dt, name in BAD_DTYPES:
    case(f"relu-{name}", lambda dt=dt: F.relu(_as(X, dt)), TypeError, "relu", "x", name)
case("relub-shape", lambda: F.relu_backward(z(2, 3), z(3, 2)), ValueError, "relu_backward",
     "dy.shape=(2, 3)", "(3, 2)")
case("relub-mixed", lambda: F.relu_backward(z(2, 3), z(2, 3, dtype=f64)), TypeError, "relu_backward",
     "float64", "float32")
case("relub-int", lambda: F.relu_backward(np.zeros((2, 3), np.int32), z(2, 3)), TypeError,
     "relu_backward", "dy", "int32")
case("relub-none", lambda: F.relu_backward(z(2, 3), None), TypeError, "relu_backward", "y")

# ---- softmax cross-entropy ------------------------------------------------------------------------
for fn_name, fn in (("softmax_cross_entropy", F.softmax_cross_entropy),
                    ("softmax_cross_entropy_backward", F.softmax_cross_entropy_backward)):
    p = "sce" if fn is F.softmax_cross_entropy else "sceb"
    case(f"{p}-label-too-big", lambda fn=fn: fn(LOGITS, np.array([0, 1, 3, 1])), ValueError,
         fn_name, "labels", "[0, 3)")
    case(f"{p}-label-neg", lambda fn=fn: fn(LOGITS, np.array([0, -1, 2, 1])), ValueError,
         fn_name, "labels", "-1")
    case(f"{p}-label-float", lambda fn=fn: fn(LOGITS, LABELS.astype(f64)), TypeError, fn_name,
         "labels", "float64")
    case(f"{p}-label-bool", lambda fn=fn: fn(LOGITS, np.array([0, 1, 1, 0], bool)), TypeError,
         fn_name, "labels", "bool")
    case(f"{p}-label-none", lambda fn=fn: fn(LOGITS, None), TypeError, fn_name, "labels")
    case(f"{p}-label-2d", lambda fn=fn: fn(LOGITS, LABELS[:, None]), ValueError, fn_name,
         "labels.shape=(4, 1)", "(4,)")
    case(f"{p}-label-len", lambda fn=fn: fn(LOGITS, LABELS[:3]), ValueError, fn_name,
         "labels.shape=(3,)", "(4,)")
    case(f"{p}-logits-1d", lambda fn=fn: fn(z(4), LABELS), ValueError, fn_name, "1-D")
    case(f"{p}-logits-3d", lambda fn=fn: fn(z(4, 3, 1), LABELS), ValueError, fn_name, "3-D")
    case(f"{p}-logits-int", lambda fn=fn: fn(np.zeros((4, 3), np.int64), LABELS), TypeError,
         fn_name, "int64")
    case(f"{p}-logits-none", lambda fn=fn: fn(None, LABELS), TypeError, fn_name)
case("sce-no-classes", lambda: F.softmax_cross_entropy(z(4, 0), LABELS), ValueError,
     "softmax_cross_entropy", "(4, 0)")

# ---- backend selection ---------------------------------------------------------------------------
case("set-backend-bad", lambda: F.set_backend("torch"), ValueError, "set_backend", "torch")


@pytest.mark.parametrize("call, exc, fragments", CASES)
def test_bad_input_raises(backend, call, exc, fragments):
    with pytest.raises(exc) as info:
        call()
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"


def test_the_table_covers_every_public_function():
    names = {p.id.split("-")[0] for p in CASES}
    assert names >= {"conv", "convb", "max", "avg", "mpb", "apb", "bn", "bnb", "relu", "relub",
                     "sce", "sceb", "set"}


def test_use_backend_restores_after_an_error():
    before = F.get_backend()
    with pytest.raises(ZeroDivisionError):
        with F.use_backend("reference"):
            assert F.get_backend() == "reference"
            1 / 0
    assert F.get_backend() == before
    with pytest.raises(ValueError):
        with F.use_backend("nonsense"):
            pass
    assert F.get_backend() == before


# ---- a failed call leaves nothing half-done -----------------------------------------------------

def test_bad_running_stats_are_left_untouched(backend):
    rm, rv = np.full(3, 7.0, f32), np.full(3, 9.0, f32)
    with pytest.raises(TypeError):
        F.batch_norm(XB, G, G.astype(f64), rm, rv)
    with pytest.raises(ValueError):
        F.batch_norm(XB, G, G, rm, rv, momentum=2.0)
    np.testing.assert_array_equal(rm, 7.0)
    np.testing.assert_array_equal(rv, 9.0)


# ---- empty batches are not errors ---------------------------------------------------------------

EMPTY = [   # (name, call(dtype), expected output shapes)
    ("conv2d", lambda d: F.conv2d(z(0, 3, 8, 8, dtype=d), W.astype(d), B.astype(d), stride=2,
                                  padding=1), [(0, 4, 4, 4)]),
    ("conv2d-relu", lambda d: F.conv2d(z(0, 3, 8, 8, dtype=d), W.astype(d), relu=True), [(0, 4, 6, 6)]),
    ("conv2d_backward", lambda d: F.conv2d_backward(z(0, 4, 6, 6, dtype=d), z(0, 3, 8, 8, dtype=d),
                                                    W.astype(d)),
     [(0, 3, 8, 8), (4, 3, 3, 3), (4,)]),
    ("max_pool2d", lambda d: F.max_pool2d(z(0, 3, 7, 7, dtype=d), 2, return_indices=True),
     [(0, 3, 3, 3), (0, 3, 3, 3)]),
    ("max_pool2d_backward", lambda d: F.max_pool2d_backward(
        z(0, 3, 3, 3, dtype=d), np.zeros((0, 3, 3, 3), np.int32), (0, 3, 7, 7)), [(0, 3, 7, 7)]),
    ("avg_pool2d", lambda d: F.avg_pool2d(z(0, 3, 7, 7, dtype=d), 3, 2, 1), [(0, 3, 4, 4)]),
    ("avg_pool2d_backward", lambda d: F.avg_pool2d_backward(z(0, 3, 4, 4, dtype=d), (0, 3, 7, 7),
                                                            3, 2, 1), [(0, 3, 7, 7)]),
    ("batch_norm-eval", lambda d: F.batch_norm(z(0, 3, 2, 2, dtype=d), G.astype(d), G.astype(d),
                                               RM.astype(d), RV.astype(d), training=False),
     [(0, 3, 2, 2), (3,), (3,)]),
    ("batch_norm-eval-2d", lambda d: F.batch_norm(z(0, 3, dtype=d), G.astype(d), G.astype(d),
                                                  RM.astype(d), RV.astype(d), training=False),
     [(0, 3), (3,), (3,)]),
    ("batch_norm_backward", lambda d: F.batch_norm_backward(
        z(0, 3, 2, 2, dtype=d), z(0, 3, 2, 2, dtype=d), G.astype(d), SM.astype(d), SI.astype(d)),
     [(0, 3, 2, 2), (3,), (3,)]),
    ("relu", lambda d: F.relu(z(0, 3, 2, 2, dtype=d)), [(0, 3, 2, 2)]),
    ("relu_backward", lambda d: F.relu_backward(z(0, 5, dtype=d), z(0, 5, dtype=d)), [(0, 5)]),
]


@pytest.mark.parametrize("dt", [f32, f64], ids=["f32", "f64"])
@pytest.mark.parametrize("name, call, shapes", EMPTY, ids=[e[0] for e in EMPTY])
def test_empty_batch_gives_empty_outputs(backend, dt, name, call, shapes):
    out = call(dt)
    out = out if isinstance(out, tuple) else (out,)
    assert [o.shape for o in out] == shapes
    for k, o in enumerate(out):
        assert o.dtype == (np.int32 if (name == "max_pool2d" and k == 1) else dt)
        assert o.flags.c_contiguous
    if name == "conv2d_backward" or name == "batch_norm_backward":
        assert not out[1].any() and not out[2].any()        # gradients of an empty sum are 0
    if name == "batch_norm-eval":
        np.testing.assert_array_equal(out[1], RM)
        np.testing.assert_allclose(out[2], 1 / np.sqrt(RV.astype(np.float64) + 1e-5), rtol=1e-6)


def test_empty_batch_training_batch_norm_does_not_touch_running_stats(backend):
    rm, rv = np.full(3, 7.0, f32), np.full(3, 9.0, f32)
    try:
        y, mean, invstd = F.batch_norm(z(0, 3, 2, 2), G, G, rm, rv, training=True)
    except ValueError as e:               # refusing an empty training batch is acceptable too
        assert "batch_norm" in str(e)
    else:
        assert y.shape == (0, 3, 2, 2) and mean.shape == invstd.shape == (3,)
    np.testing.assert_array_equal(rm, 7.0)
    np.testing.assert_array_equal(rv, 9.0)


def test_empty_batch_softmax_cross_entropy_is_refused_or_empty(backend):
    try:
        loss, probs = F.softmax_cross_entropy(z(0, 3), np.zeros(0, np.int64))
    except ValueError as e:
        assert "softmax_cross_entropy" in str(e)
    else:
        assert probs.shape == (0, 3)
    d = F.softmax_cross_entropy_backward(z(0, 3), np.zeros(0, np.int64))
    assert d.shape == (0, 3) and d.dtype == f32


@pytest.mark.parametrize("dt", [f32, f64], ids=["f32", "f64"])
def test_reference_backend_contract_handles_empty_batches(dt):
    """functional.py short-cuts N == 0, so call the backend contract directly: empty arrays of
    the right shapes and dtype, zero parameter gradients, running statistics untouched."""
    from fastcnn import _reference as R
    x = z(0, 3, 8, 8, dtype=dt)
    w, b, g = W.astype(dt), B.astype(dt) + 1, np.ones(3, dt)
    assert R.conv2d_forward(x, w, b, (2, 2), (1, 1), True).shape == (0, 4, 4, 4)
    dx, dw, db = R.conv2d_backward(z(0, 4, 4, 4, dtype=dt), x, w, (2, 2), (1, 1), True, True)
    assert dx.shape == x.shape and dw.shape == w.shape and db.shape == (4,)
    assert not dw.any() and not db.any() and dx.dtype == dw.dtype == db.dtype == dt
    y, idx = R.max_pool2d_forward(x, (2, 2), (2, 2), (1, 1))
    assert y.shape == idx.shape == (0, 3, 5, 5) and idx.dtype == np.int32 and y.dtype == dt
    assert R.max_pool2d_backward(y, idx, x.shape).shape == x.shape
    ya = R.avg_pool2d_forward(x, (3, 3), (2, 2), (1, 1), False)
    assert ya.shape == (0, 3, 4, 4) and ya.dtype == dt
    assert R.avg_pool2d_backward(ya, x.shape, (3, 3), (2, 2), (1, 1), False).shape == x.shape
    rm, rv = np.full(3, 7, dt), np.full(3, 9, dt)
    for training in (False, True):
        for xb in (z(0, 3, 2, 2, dtype=dt), z(0, 3, dtype=dt)):
            yb, mean, invstd = R.batch_norm_forward(xb, g, g, rm, rv, training, 0.1, 1e-5)
            assert yb.shape == xb.shape and mean.shape == invstd.shape == (3,) and yb.dtype == dt
            dxb, dg, dbeta = R.batch_norm_backward(xb, xb, g, mean, invstd, training)
            assert dxb.shape == xb.shape and not dg.any() and not dbeta.any()
    np.testing.assert_array_equal(rm, 7)
    np.testing.assert_array_equal(rv, 9)
