"""tests/naive.py: the test oracle, every operation written straight from its definition.

Plain Python loops over output (or input) positions, scalars in float64, no im2col, no shared
code with fastcnn._reference or the kernels. Obviously correct and very slow: keep shapes tiny.
Imported only by the tests. Every function returns float64 arrays (indices: int64).
"""
import math

import numpy as np


def _pair(v):
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def out_size(size, kernel, stride, padding):
    """Number of window positions: the largest o with (o-1)*stride + kernel <= size + 2*padding."""
    o = 0
    while o * stride + kernel <= size + 2 * padding:
        o += 1
    return o


# ---- convolution: y[n,o,p,q] = b[o] + sum_{c,i,j} w[o,c,i,j] * x[n, c, p*SH+i-PH, q*SW+j-PW] --

def conv2d(x, weight, bias=None, stride=1, padding=0, relu=False):
    x = np.asarray(x, dtype=np.float64)
    weight = np.asarray(weight, dtype=np.float64)
    (sh, sw), (ph, pw) = _pair(stride), _pair(padding)
    n_img, c_in, h, w = x.shape
    c_out, _, kh, kw = weight.shape
    oh, ow = out_size(h, kh, sh, ph), out_size(w, kw, sw, pw)
    y = np.zeros((n_img, c_out, oh, ow))
    for n in range(n_img):
        for o in range(c_out):
            for p in range(oh):
                for q in range(ow):
                    acc = 0.0 if bias is None else float(bias[o])
                    for c in range(c_in):
                        for i in range(kh):
                            r = p * sh + i - ph
                            if r < 0 or r >= h:
                                continue
                            for j in range(kw):
                                s = q * sw + j - pw
                                if 0 <= s < w:
                                    acc += weight[o, c, i, j] * x[n, c, r, s]
                    y[n, o, p, q] = max(acc, 0.0) if relu else acc
    return y


def conv2d_backward(dy, x, weight, stride=1, padding=0):
    """Returns (dx, dweight, dbias): each product in the forward sum sends dy back to both factors."""
    dy = np.asarray(dy, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    weight = np.asarray(weight, dtype=np.float64)
    (sh, sw), (ph, pw) = _pair(stride), _pair(padding)
    n_img, c_in, h, w = x.shape
    c_out, _, kh, kw = weight.shape
    oh, ow = dy.shape[2], dy.shape[3]
    dx = np.zeros(x.shape)
    dweight = np.zeros(weight.shape)
    dbias = np.zeros(c_out)
    for n in range(n_img):
        for o in range(c_out):
            for p in range(oh):
                for q in range(ow):
                    g = dy[n, o, p, q]
                    dbias[o] += g
                    for c in range(c_in):
                        for i in range(kh):
                            r = p * sh + i - ph
                            if r < 0 or r >= h:
                                continue
                            for j in range(kw):
                                s = q * sw + j - pw
                                if 0 <= s < w:
                                    dx[n, c, r, s] += g * weight[o, c, i, j]
                                    dweight[o, c, i, j] += g * x[n, c, r, s]
    return dx, dweight, dbias


# ---- pooling --------------------------------------------------------------------------------

def _window_cells(h, w, p, q, kernel, stride, padding):
    """The real (r, s) input cells of window (p, q), in row-major order; padded cells are absent."""
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    cells = []
    for i in range(kh):
        for j in range(kw):
            r, s = p * sh + i - ph, q * sw + j - pw
            if 0 <= r < h and 0 <= s < w:
                cells.append((r, s))
    return cells


def max_pool2d(x, kernel_size, stride=None, padding=0):
    """Returns (y, indices): y = max over the real cells of each window (NaN if any is NaN);
    indices = r*W + s of the first cell (row-major) holding that maximum (of a NaN, if any)."""
    x = np.asarray(x, dtype=np.float64)
    kernel = _pair(kernel_size)
    stride = kernel if stride is None else _pair(stride)
    padding = _pair(padding)
    n_img, chans, h, w = x.shape
    oh, ow = out_size(h, kernel[0], stride[0], padding[0]), out_size(w, kernel[1], stride[1], padding[1])
    y = np.zeros((n_img, chans, oh, ow))
    idx = np.zeros((n_img, chans, oh, ow), dtype=np.int64)
    for n in range(n_img):
        for c in range(chans):
            for p in range(oh):
                for q in range(ow):
                    cells = _window_cells(h, w, p, q, kernel, stride, padding)
                    values = [x[n, c, r, s] for (r, s) in cells]
                    nans = [k for k, v in enumerate(values) if math.isnan(v)]
                    if nans:
                        k = nans[0]
                    else:
                        k = values.index(max(values))   # list.index: the first occurrence
                    y[n, c, p, q] = values[k]
                    idx[n, c, p, q] = cells[k][0] * w + cells[k][1]
    return y, idx


def max_pool2d_backward(dy, indices, x_shape):
    dy = np.asarray(dy, dtype=np.float64)
    n_img, chans, h, w = x_shape
    dx = np.zeros(x_shape)
    for n in range(n_img):
        for c in range(chans):
            for p in range(dy.shape[2]):
                for q in range(dy.shape[3]):
                    k = int(indices[n, c, p, q])
                    dx[n, c, k // w, k % w] += dy[n, c, p, q]
    return dx


def _avg_divisor(cells, kernel, count_include_pad):
    return kernel[0] * kernel[1] if count_include_pad else len(cells)


def avg_pool2d(x, kernel_size, stride=None, padding=0, count_include_pad=True):
    """y = (sum of the real cells of the window) / (KH*KW, or the number of real cells)."""
    x = np.asarray(x, dtype=np.float64)
    kernel = _pair(kernel_size)
    stride = kernel if stride is None else _pair(stride)
    padding = _pair(padding)
    n_img, chans, h, w = x.shape
    oh, ow = out_size(h, kernel[0], stride[0], padding[0]), out_size(w, kernel[1], stride[1], padding[1])
    y = np.zeros((n_img, chans, oh, ow))
    for n in range(n_img):
        for c in range(chans):
            for p in range(oh):
                for q in range(ow):
                    cells = _window_cells(h, w, p, q, kernel, stride, padding)
                    total = sum(x[n, c, r, s] for (r, s) in cells)
                    y[n, c, p, q] = total / _avg_divisor(cells, kernel, count_include_pad)
    return y


def avg_pool2d_backward(dy, x_shape, kernel_size, stride=None, padding=0, count_include_pad=True):
    dy = np.asarray(dy, dtype=np.float64)
    kernel = _pair(kernel_size)
    stride = kernel if stride is None else _pair(stride)
    padding = _pair(padding)
    n_img, chans, h, w = x_shape
    dx = np.zeros(x_shape)
    for n in range(n_img):
        for c in range(chans):
            for p in range(dy.shape[2]):
                for q in range(dy.shape[3]):
                    cells = _window_cells(h, w, p, q, kernel, stride, padding)
                    share = dy[n, c, p, q] / _avg_divisor(cells, kernel, count_include_pad)
                    for (r, s) in cells:
                        dx[n, c, r, s] += share
    return dx


# ---- batch normalization --------------------------------------------------------------------

def _channel_values(x, c):
    """All samples of channel c (axis 1) of a 2-D or 4-D array, as a flat float64 array."""
    return np.asarray(x, dtype=np.float64)[:, c].reshape(-1)


def batch_norm(x, gamma, beta, running_mean=None, running_var=None, training=True,
               momentum=0.1, eps=1e-5):
    """Returns (y, mean, invstd, new_running_mean, new_running_var), all float64, inputs untouched.

    Training: mean_c = (1/M) sum x, var_c = (1/M) sum (x - mean_c)^2 (biased), over the M samples
    of channel c; new running = (1-momentum)*running + momentum*batch with var * M/(M-1).
    Eval: mean_c, var_c = running statistics. y = gamma_c * (x - mean_c) / sqrt(var_c + eps) + beta_c.
    """
    x64 = np.asarray(x, dtype=np.float64)
    chans = x64.shape[1]
    y = np.zeros(x64.shape)
    mean = np.zeros(chans)
    invstd = np.zeros(chans)
    new_rm = None if running_mean is None else np.array(running_mean, dtype=np.float64)
    new_rv = None if running_var is None else np.array(running_var, dtype=np.float64)
    for c in range(chans):
        if training:
            vals = _channel_values(x64, c)
            m = len(vals)
            mu = math.fsum(vals) / m
            var = math.fsum((v - mu) ** 2 for v in vals) / m
            if new_rm is not None:
                new_rm[c] = (1 - momentum) * new_rm[c] + momentum * mu
            if new_rv is not None:
                new_rv[c] = (1 - momentum) * new_rv[c] + momentum * var * m / (m - 1)
        else:
            mu, var = float(running_mean[c]), float(running_var[c])
        mean[c] = mu
        invstd[c] = 1.0 / math.sqrt(var + eps)
        y[:, c] = float(gamma[c]) * (x64[:, c] - mu) * invstd[c] + float(beta[c])
    return y, mean, invstd, new_rm, new_rv


def batch_norm_backward(dy, x, gamma, mean, invstd, training=True):
    """Returns (dx, dgamma, dbeta) in float64, by the chain rule through xhat = (x - mean)*invstd.

    With M samples per channel: dbeta = sum dy, dgamma = sum dy*xhat,
    training: dx_k = gamma*invstd/M * (M*dy_k - sum_l dy_l - xhat_k * sum_l dy_l*xhat_l)
    eval:     dx_k = gamma*invstd*dy_k
    """
    dy64 = np.asarray(dy, dtype=np.float64)
    x64 = np.asarray(x, dtype=np.float64)
    chans = x64.shape[1]
    dx = np.zeros(x64.shape)
    dgamma = np.zeros(chans)
    dbeta = np.zeros(chans)
    for c in range(chans):
        g = _channel_values(dy64, c)
        xhat = (_channel_values(x64, c) - float(mean[c])) * float(invstd[c])
        m = len(g)
        sum_g = math.fsum(g)
        sum_gx = math.fsum(gk * xk for gk, xk in zip(g, xhat))
        dbeta[c], dgamma[c] = sum_g, sum_gx
        k = float(gamma[c]) * float(invstd[c])
        if training:
            d = [k / m * (m * gk - sum_g - xk * sum_gx) for gk, xk in zip(g, xhat)]
        else:
            d = [k * gk for gk in g]
        dx[:, c] = np.array(d).reshape(dx[:, c].shape)
    return dx, dgamma, dbeta


# ---- activations and loss -------------------------------------------------------------------

def relu(x):
    x = np.asarray(x, dtype=np.float64)
    y = np.zeros(x.shape)
    for k, v in enumerate(x.reshape(-1)):
        y.reshape(-1)[k] = v if v > 0 else (v if math.isnan(v) else 0.0)
    return y


def relu_backward(dy, y):
    dy = np.asarray(dy, dtype=np.float64)
    dx = np.zeros(dy.shape)
    flat_y = np.asarray(y).reshape(-1)
    for k, g in enumerate(dy.reshape(-1)):
        dx.reshape(-1)[k] = g if flat_y[k] > 0 else 0.0
    return dx


def softmax_cross_entropy(logits, labels):
    """Returns (loss, probs): probs_nk = exp(z_nk) / sum_j exp(z_nj) (shifted by the row max for
    range), loss = -(1/N) sum_n log probs[n, labels[n]]."""
    z = np.asarray(logits, dtype=np.float64)
    n_rows, k_cls = z.shape
    probs = np.zeros(z.shape)
    total = 0.0
    for n in range(n_rows):
        top = max(z[n])
        exps = [math.exp(z[n, k] - top) for k in range(k_cls)]
        denom = math.fsum(exps)
        for k in range(k_cls):
            probs[n, k] = exps[k] / denom
        # log p = (z - top) - log(denom): exact even when p underflows to 0
        total += -((z[n, int(labels[n])] - top) - math.log(denom))
    return total / n_rows, probs


def softmax_cross_entropy_backward(probs, labels):
    probs = np.asarray(probs, dtype=np.float64)
    n_rows, k_cls = probs.shape
    d = np.zeros(probs.shape)
    for n in range(n_rows):
        for k in range(k_cls):
            d[n, k] = (probs[n, k] - (1.0 if k == int(labels[n]) else 0.0)) / n_rows
    return d


def _lrn_window(c, n_channels, size):
    """Channels j of c's LRN window: [c - size//2, c + (size-1)//2] within [0, C)."""
    return range(max(0, c - size // 2), min(n_channels - 1, c + (size - 1) // 2) + 1)


def lrn(x, size, alpha, beta, k):
    """Returns (y, S): S[c] = k + alpha sum_{j in W(c)} x[j]^2, y[c] = x[c] S[c]^-beta, per
    (image, position), channel by channel."""
    x = np.asarray(x, dtype=np.float64)
    n_channels = x.shape[1]
    s = np.zeros(x.shape)
    for c in range(n_channels):
        s[:, c] = k + alpha * sum(x[:, j] ** 2 for j in _lrn_window(c, n_channels, size))
    return x * s ** -beta, s


def lrn_backward(dy, x, size, alpha, beta, k):
    """dx[i] = sum_c dy[c] dy[c]/dx[i] from the derivative of y[c] = x[c] S[c]^-beta:
    dy[c]/dx[i] = [c == i] S[c]^-beta - 2 alpha beta x[c] x[i] S[c]^(-beta-1) for i in W(c)."""
    x = np.asarray(x, dtype=np.float64)
    dy = np.asarray(dy, dtype=np.float64)
    _, s = lrn(x, size, alpha, beta, k)
    n_channels = x.shape[1]
    dx = dy * s ** -beta
    for c in range(n_channels):
        for i in _lrn_window(c, n_channels, size):
            dx[:, i] -= 2 * alpha * beta * dy[:, c] * x[:, c] * x[:, i] * s[:, c] ** (-beta - 1)
    return dx
