"""fastcnn._reference: the pure-NumPy twin of the compiled kernels (docs/functional-api.md's
backend contract). Readable and slow on purpose: the teaching copy and the benchmark baseline,
never a silent fallback. Convolution is whole-batch im2col + one matmul in the style of "Deep
Learning from Scratch" (Saito, 2016). No validation: functional.py checks every input first."""
import math

import numpy as np

__all__ = [
    "conv2d_forward", "conv2d_backward",
    "linear_forward", "linear_backward",
    "max_pool2d_forward", "max_pool2d_backward",
    "avg_pool2d_forward", "avg_pool2d_backward",
    "batch_norm_forward", "batch_norm_backward",
    "lrn_forward", "lrn_backward",
    "softmax_cross_entropy_forward", "softmax_cross_entropy_backward",
    "adam_update",
]


# ---- geometry -------------------------------------------------------------------------------

def _out_size(size, kernel, stride, padding):
    return (size + 2 * padding - kernel) // stride + 1


def _pad(x, ph, pw, value):
    # x: (N, C, H, W) -> (N, C, H + 2*ph, W + 2*pw), border filled with `value`, dtype kept.
    if ph == 0 and pw == 0:
        return x
    n, c, h, w = x.shape
    xp = np.full((n, c, h + 2 * ph, w + 2 * pw), value, dtype=x.dtype)
    xp[:, :, ph:ph + h, pw:pw + w] = x
    return xp


def _window(xp, i, j, oh, ow, sh, sw):
    # The input cells that kernel offset (i, j) sees for every output position: (N, C, OH, OW).
    return xp[:, :, i:i + sh * (oh - 1) + 1:sh, j:j + sw * (ow - 1) + 1:sw]


# ---- im2col / col2im ------------------------------------------------------------------------

def _im2col(x, kh, kw, stride, padding):
    # x: (N, C, H, W) -> col: (N*OH*OW, C*KH*KW); row = one output position, column = (c, i, j).
    # One strided slice per kernel offset instead of one loop iteration per output position.
    n, c, h, w = x.shape
    (sh, sw), (ph, pw) = stride, padding
    oh, ow = _out_size(h, kh, sh, ph), _out_size(w, kw, sw, pw)
    xp = _pad(x, ph, pw, 0)
    col = np.empty((n, c, kh, kw, oh, ow), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            col[:, :, i, j] = _window(xp, i, j, oh, ow, sh, sw)
    return col.transpose(0, 4, 5, 1, 2, 3).reshape(n * oh * ow, c * kh * kw)


def _col2im(col, x_shape, kh, kw, stride, padding):
    # col: (N*OH*OW, C*KH*KW) -> (N, C, H, W): the adjoint of _im2col, overlapping windows add up.
    n, c, h, w = x_shape
    (sh, sw), (ph, pw) = stride, padding
    oh, ow = _out_size(h, kh, sh, ph), _out_size(w, kw, sw, pw)
    col = col.reshape(n, oh, ow, c, kh, kw).transpose(0, 3, 4, 5, 1, 2)
    xp = np.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=col.dtype)
    for i in range(kh):
        for j in range(kw):
            _window(xp, i, j, oh, ow, sh, sw)[...] += col[:, :, i, j]
    return np.ascontiguousarray(xp[:, :, ph:ph + h, pw:pw + w])


# ---- convolution ----------------------------------------------------------------------------

def conv2d_forward(x, weight, bias, stride, padding, relu):
    """y[n, o, p, q] = sum_{c,i,j} weight[o, c, i, j] * xpad[n, c, p*SH + i, q*SW + j] + bias[o].

    x: (N, C, H, W)  weight: (OC, C, KH, KW)  bias: (OC,) or None  ->  y: (N, OC, OH, OW);
    with relu=True, y = max(y, 0). col: (N*OH*OW, C*KH*KW), y = col @ weight.reshape(OC, -1).T.
    """
    n, _, h, w = x.shape
    oc, c, kh, kw = weight.shape
    oh, ow = _out_size(h, kh, stride[0], padding[0]), _out_size(w, kw, stride[1], padding[1])
    col = _im2col(x, kh, kw, stride, padding)
    out = col @ weight.reshape(oc, c * kh * kw).T           # (N*OH*OW, OC)
    if bias is not None:
        out += bias
    if relu:
        np.maximum(out, 0, out=out)
    return np.ascontiguousarray(out.reshape(n, oh, ow, oc).transpose(0, 3, 1, 2))


def conv2d_backward(dy, x, weight, stride, padding, need_dx, need_dbias):
    """Gradients of conv2d_forward (without ReLU: the caller masks dy first).

    dy: (N, OC, OH, OW) -> dx (N, C, H, W) or None, dweight (OC, C, KH, KW), dbias (OC,) or None.
    dweight = dy_mat.T @ col;  dx = col2im(dy_mat @ weight_mat);  dbias = sum of dy over N, OH, OW.
    """
    oc, c, kh, kw = weight.shape
    n, _, oh, ow = dy.shape
    dy_mat = dy.transpose(0, 2, 3, 1).reshape(n * oh * ow, oc)   # (N*OH*OW, OC)
    col = _im2col(x, kh, kw, stride, padding)               # (N*OH*OW, C*KH*KW)
    dweight = np.ascontiguousarray((dy_mat.T @ col).reshape(oc, c, kh, kw))
    dbias = dy.sum(axis=(0, 2, 3)) if need_dbias else None
    dx = None
    if need_dx:
        dcol = dy_mat @ weight.reshape(oc, c * kh * kw)
        dx = _col2im(dcol, x.shape, kh, kw, stride, padding)
    return dx, dweight, dbias


# ---- fully connected -----------------------------------------------------------------------

def linear_forward(x, weight, bias):
    """y = x @ weight.T + bias.  x: (N, IN)  weight: (OUT, IN)  bias: (OUT,) or None."""
    y = x @ weight.T
    if bias is not None:
        y += bias
    return y


def linear_backward(dy, x, weight, need_dx, need_dbias):
    """dweight = dy.T @ x, dbias = sum over the batch of dy, dx = dy @ weight."""
    dx = dy @ weight if need_dx else None
    dbias = dy.sum(axis=0) if need_dbias else None
    return dx, dy.T @ x, dbias


# ---- max pooling ----------------------------------------------------------------------------

def max_pool2d_forward(x, kernel, stride, padding):
    """y[n, c, p, q] = max of the real cells in window (p, q); argmax = h*W + w of the winner.

    x: (N, C, H, W) -> y (N, C, OH, OW) in x's dtype, argmax (N, C, OH, OW) int32.
    Windows are scanned in row-major order and only a strictly larger value (or the first NaN)
    takes over, so ties go to the first maximum and NaN propagates. Padding is -inf and padded
    cells are masked out of the scan, so they never win, not even against a real -inf.
    """
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    oh, ow = _out_size(h, kh, sh, ph), _out_size(w, kw, sw, pw)
    xp = _pad(x, ph, pw, -np.inf)
    rows = np.arange(oh)[:, None] * sh - ph                 # input row of offset 0: (OH, 1)
    cols = np.arange(ow)[None, :] * sw - pw                 # input column of offset 0: (1, OW)
    y = np.full((n, c, oh, ow), -np.inf, dtype=x.dtype)
    argmax = np.full((n, c, oh, ow), -1, dtype=np.int32)
    found = np.zeros((n, c, oh, ow), dtype=bool)
    for i in range(kh):
        for j in range(kw):
            r, q = rows + i, cols + j
            real = (r >= 0) & (r < h) & (q >= 0) & (q < w)  # (OH, OW): not a padded cell
            v = _window(xp, i, j, oh, ow, sh, sw)
            take = real & (~found | (v > y) | (np.isnan(v) & ~np.isnan(y)))
            y[take] = v[take]
            argmax[take] = np.broadcast_to(r * w + q, take.shape)[take]
            found |= take
    return y, argmax


def max_pool2d_backward(dy, argmax, x_shape):
    """dx[n, c].flat[argmax[n, c, p, q]] += dy[n, c, p, q]; every other cell of dx is 0.

    dy, argmax: (N, C, OH, OW) -> dx: x_shape. Overlapping windows that share a winner add up.
    """
    n, c, h, w = x_shape
    planes = n * c
    dx = np.zeros((planes, h * w), dtype=dy.dtype)
    plane = np.repeat(np.arange(planes), dy.shape[2] * dy.shape[3])
    np.add.at(dx, (plane, argmax.reshape(-1)), dy.reshape(-1))
    return dx.reshape(x_shape)


# ---- average pooling ------------------------------------------------------------------------

def _avg_divisor(h, w, kernel, stride, padding, count_include_pad, dtype):
    # (OH, OW): KH*KW for every window, or the number of real (non-padded) cells in it.
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    oh, ow = _out_size(h, kh, sh, ph), _out_size(w, kw, sw, pw)
    if count_include_pad:
        return np.full((oh, ow), kh * kw, dtype=dtype)
    r0 = np.arange(oh) * sh - ph
    q0 = np.arange(ow) * sw - pw
    real_rows = np.minimum(r0 + kh, h) - np.maximum(r0, 0)
    real_cols = np.minimum(q0 + kw, w) - np.maximum(q0, 0)
    return (real_rows[:, None] * real_cols[None, :]).astype(dtype)


def avg_pool2d_forward(x, kernel, stride, padding, count_include_pad):
    """y[n, c, p, q] = sum of window (p, q), zero padding included, / divisor(p, q).

    x: (N, C, H, W) -> y: (N, C, OH, OW). divisor = KH*KW when count_include_pad (PyTorch's
    default), else the number of real cells in the window.
    """
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    oh, ow = _out_size(h, kh, sh, ph), _out_size(w, kw, sw, pw)
    xp = _pad(x, ph, pw, 0)
    y = np.zeros((n, c, oh, ow), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            y += _window(xp, i, j, oh, ow, sh, sw)
    y /= _avg_divisor(h, w, kernel, stride, padding, count_include_pad, x.dtype)
    return y


def avg_pool2d_backward(dy, x_shape, kernel, stride, padding, count_include_pad):
    """dx[n, c, h, w] = sum over the windows (p, q) containing (h, w) of dy[n, c, p, q] / divisor.

    dy: (N, C, OH, OW) -> dx: x_shape.
    """
    n, c, h, w = x_shape
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    oh, ow = dy.shape[2], dy.shape[3]
    share = dy / _avg_divisor(h, w, kernel, stride, padding, count_include_pad, dy.dtype)
    dxp = np.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=dy.dtype)
    for i in range(kh):
        for j in range(kw):
            _window(dxp, i, j, oh, ow, sh, sw)[...] += share
    return np.ascontiguousarray(dxp[:, :, ph:ph + h, pw:pw + w])


# ---- batch normalization --------------------------------------------------------------------

def _as_ncs(a):
    # (N, C, H, W) -> (N, C, H*W) and (N, F) -> (N, F, 1): one channel axis, one spatial axis.
    return a.reshape(a.shape[0], a.shape[1], math.prod(a.shape[2:]))


def batch_norm_forward(x, gamma, beta, running_mean, running_var, training, momentum, eps):
    """y = (x - mean) * invstd * gamma + beta, per channel (4-D) or per feature (2-D).

    x: (N, C, H, W) or (N, C); gamma, beta, running_*: (C,) -> y like x, save_mean, save_invstd (C,).
    Training: mean and biased var over N (and H, W), accumulated in float64 (two passes);
    invstd = 1 / sqrt(var + eps); running_* (when given) are updated in place as
    running = (1 - momentum) * running + momentum * batch, with the variance unbiased
    (var * M / (M - 1), M = samples per channel), PyTorch's convention.
    Eval: mean, var = running_mean, running_var, and save_* hold those statistics.
    """
    xs = _as_ncs(x)
    m = xs.shape[0] * xs.shape[2]
    if training:
        with np.errstate(invalid="ignore", divide="ignore"):   # M == 0: NaN stats, empty y
            mean = xs.sum(axis=(0, 2), dtype=np.float64) / m
            var = np.square(xs - mean[:, None]).sum(axis=(0, 2)) / m  # float64 (mean is)
        # The caller refuses M == 1 in training (no unbiased variance); M == 0 teaches nothing.
        if running_mean is not None and m > 1:
            running_mean[...] = (1 - momentum) * running_mean.astype(np.float64) + momentum * mean
        if running_var is not None and m > 1:
            unbiased = var * (m / (m - 1))
            running_var[...] = (1 - momentum) * running_var.astype(np.float64) + momentum * unbiased
    else:
        mean = running_mean.astype(np.float64)
        var = running_var.astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        invstd = 1.0 / np.sqrt(var + eps)
    save_mean = mean.astype(x.dtype)
    save_invstd = invstd.astype(x.dtype)
    scale = (invstd * gamma).astype(x.dtype)                # fold invstd and gamma: one multiply
    y = (xs - save_mean[:, None]) * scale[:, None] + beta[:, None]
    return y.reshape(x.shape), save_mean, save_invstd


def batch_norm_backward(dy, x, gamma, save_mean, save_invstd, training):
    """Gradients of batch_norm_forward; xhat = (x - save_mean) * save_invstd.

    dy, x: (N, C, H, W) or (N, C) -> dx like x, dgamma (C,), dbeta (C,).
    dbeta = sum(dy), dgamma = sum(dy * xhat) (float64 accumulators, over N and H, W).
    Training (the statistics depend on x):
        dx = gamma * invstd * (dy - dbeta / M - xhat * dgamma / M)
    Eval (the running statistics are constants): dx = gamma * invstd * dy.
    """
    dys, xs = _as_ncs(dy), _as_ncs(x)
    m = xs.shape[0] * xs.shape[2]
    xhat = (xs - save_mean[:, None]) * save_invstd[:, None]
    dbeta = dys.sum(axis=(0, 2), dtype=np.float64)
    dgamma = (dys * xhat).sum(axis=(0, 2), dtype=np.float64)
    scale = (gamma * save_invstd)[:, None]
    if training and m > 0:
        mean_dy = (dbeta / m).astype(x.dtype)[:, None]
        mean_dy_xhat = (dgamma / m).astype(x.dtype)[:, None]
        dxs = scale * (dys - mean_dy - xhat * mean_dy_xhat)
    else:
        dxs = scale * dys
    return dxs.reshape(x.shape), dgamma.astype(x.dtype), dbeta.astype(x.dtype)


# ---- the loss ---------------------------------------------------------------------------------

def softmax_cross_entropy_forward(logits, labels):
    """(mean cross-entropy, probs); each row's max subtracted first so exp cannot overflow."""
    n = logits.shape[0]
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    sums = exp.sum(axis=1, keepdims=True)
    picked = shifted[np.arange(n), labels]
    loss = float(np.mean(np.log(sums[:, 0]).astype(np.float64) - picked))
    return loss, exp / sums


def softmax_cross_entropy_backward(probs, labels, dout):
    """dout * (probs - onehot(labels)) / N."""
    n = probs.shape[0]
    d = probs.copy()
    d[np.arange(n), labels] -= 1
    d *= dout / n
    return d


# ---- optimizer updates ----------------------------------------------------------------------

def adam_update(w, g, m, v, lr, beta1, beta2, eps, bias_correction1, bias_correction2):
    """In place: m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
    w -= (lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps). One NumPy temporary per operation."""
    m *= beta1
    m += (1.0 - beta1) * g
    v *= beta2
    v += (1.0 - beta2) * g * g
    w -= (lr / bias_correction1) * m / (np.sqrt(v) / math.sqrt(bias_correction2) + eps)


def _lrn_window_sum(a, before, after):
    """out[:, c] = sum of a[:, j] for j in [c - before, c + after] within [0, C)."""
    out = a.copy()
    for d in range(1, before + 1):
        out[:, d:] += a[:, :-d]
    for d in range(1, after + 1):
        out[:, :-d] += a[:, d:]
    return out


def lrn_forward(x, size, alpha, beta, k):
    s = k + alpha * _lrn_window_sum(x * x, size // 2, (size - 1) // 2)
    return x * s ** -beta, s


def lrn_backward(dy, x, y, s, size, alpha, beta):
    # i in W(c)  <=>  c in [i - (size-1)//2, i + size//2]: the adjoint window
    u = _lrn_window_sum(dy * y / s, (size - 1) // 2, size // 2)
    return dy * s ** -beta - 2.0 * alpha * beta * x * u
