# _kernels.pyx: thin Cython wrappers over the C99 kernels of csrc/ (declared in _kernels.pxd).
# No validation here: fastcnn/functional.py has checked every shape and dtype and allocated every
# output and workspace. Arrays arrive as flat C-contiguous 1-D views; an EMPTY array stands for a
# NULL pointer (no bias, dx not wanted, no argmax, no running statistics). The GIL is released
# around every C call. Shapes are in csrc/fastcnn.h.
from cython cimport floating
from libc.stdint cimport int32_t, int64_t, intptr_t
from scipy.linalg.cython_blas cimport sgemm, dgemm

# The kernels call SciPy's BLAS through these pointers: no BLAS is linked into fastcnn itself.
fc_register_blas(<fc_sgemm_fn>sgemm, <fc_dgemm_fn>dgemm)


cdef inline floating* _ptr(floating[::1] a) noexcept nogil:
    return NULL if a.shape[0] == 0 else &a[0]


cdef inline const floating* _cptr(const floating[::1] a) noexcept nogil:
    return NULL if a.shape[0] == 0 else &a[0]


def register_blas_threads(intptr_t set_threads, intptr_t get_threads):
    """Hand the addresses of OpenBLAS's set/get_num_threads to C (0, 0 to disable pinning)."""
    fc_register_blas_threads(<fc_blas_set_threads_fn>set_threads,
                             <fc_blas_get_threads_fn>get_threads)


def blas_num_threads():
    """The BLAS's current thread count, or -1 when unknown."""
    return fc_blas_get_num_threads()


def build_info():
    return {
        "openmp": bool(fc_openmp_enabled()),
        "omp_max_threads": fc_omp_max_threads(),
        "simd": fc_simd_level().decode(),
        "cflags": fc_compile_flags().decode(),
    }


def simd_supported():
    """The best dispatched instruction set (0 portable, 1 AVX2+FMA, 2 AVX-512) CPU and build run."""
    return fc_simd_supported()


def simd_active():
    """The instruction set the dispatched kernels use now."""
    return fc_simd_active()


def simd_set_cap(int level):
    """Use no instruction set above `level`; returns the one now active."""
    return fc_simd_set_cap(level)


def conv2d_forward_workspace(Py_ssize_t C, Py_ssize_t H, Py_ssize_t W, Py_ssize_t KH,
                             Py_ssize_t KW, Py_ssize_t SH, Py_ssize_t SW, Py_ssize_t PH,
                             Py_ssize_t PW, Py_ssize_t OC, int n_threads):
    return fc_conv2d_forward_workspace(C, H, W, KH, KW, SH, SW, PH, PW, OC, n_threads)


def conv2d_backward_workspace(Py_ssize_t C, Py_ssize_t H, Py_ssize_t W, Py_ssize_t KH,
                              Py_ssize_t KW, Py_ssize_t SH, Py_ssize_t SW, Py_ssize_t PH,
                              Py_ssize_t PW, Py_ssize_t OC, int n_threads):
    return fc_conv2d_backward_workspace(C, H, W, KH, KW, SH, SW, PH, PW, OC, n_threads)


def conv2d_forward(floating[::1] y, floating[::1] workspace,                    # OUT
                   const floating[::1] x, const floating[::1] weight,            # IN
                   const floating[::1] bias,                                     # IN (empty: none)
                   Py_ssize_t N, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W, Py_ssize_t OC,
                   Py_ssize_t KH, Py_ssize_t KW, Py_ssize_t SH, Py_ssize_t SW, Py_ssize_t PH,
                   Py_ssize_t PW, bint relu, int n_threads):
    with nogil:
        if floating is float:
            fc_conv2d_forward_f32(_ptr(y), _ptr(workspace), _cptr(x), _cptr(weight), _cptr(bias),
                                  N, C, H, W, OC, KH, KW, SH, SW, PH, PW, relu, n_threads)
        else:
            fc_conv2d_forward_f64(_ptr(y), _ptr(workspace), _cptr(x), _cptr(weight), _cptr(bias),
                                  N, C, H, W, OC, KH, KW, SH, SW, PH, PW, relu, n_threads)


def conv2d_backward(floating[::1] dx, floating[::1] dweight, floating[::1] dbias,  # OUT (dx, dbias may be empty)
                    floating[::1] workspace,                                       # OUT (scratch)
                    const floating[::1] dy, const floating[::1] x,                 # IN
                    const floating[::1] weight,                                    # IN
                    Py_ssize_t N, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W, Py_ssize_t OC,
                    Py_ssize_t KH, Py_ssize_t KW, Py_ssize_t SH, Py_ssize_t SW, Py_ssize_t PH,
                    Py_ssize_t PW, int n_threads):
    with nogil:
        if floating is float:
            fc_conv2d_backward_f32(_ptr(dx), _ptr(dweight), _ptr(dbias), _ptr(workspace),
                                   _cptr(dy), _cptr(x), _cptr(weight),
                                   N, C, H, W, OC, KH, KW, SH, SW, PH, PW, n_threads)
        else:
            fc_conv2d_backward_f64(_ptr(dx), _ptr(dweight), _ptr(dbias), _ptr(workspace),
                                   _cptr(dy), _cptr(x), _cptr(weight),
                                   N, C, H, W, OC, KH, KW, SH, SW, PH, PW, n_threads)



# Winograd variants: 2 = F(2x2,3x3) (winograd.c); 4 = F(4x4,3x3) and 25 = F(2x2,5x5)
# (winograd6.c, 6x6 tiles).
cdef inline Py_ssize_t _wg6_r(int variant) noexcept nogil:
    return 5 if variant == 25 else 3


def conv2d_winograd_supported(int variant, Py_ssize_t KH, Py_ssize_t KW, Py_ssize_t SH,
                              Py_ssize_t SW, Py_ssize_t PH, Py_ssize_t PW):
    """True where the Winograd variant (2, 4 or 25) applies to this kernel, stride, padding."""
    if variant == 2:
        return bool(fc_conv2d_winograd_supported(KH, KW, SH, SW, PH, PW))
    return bool(fc_conv2d_winograd6_supported(_wg6_r(variant), KH, KW, SH, SW, PH, PW))


def conv2d_winograd_forward_workspace(int variant, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W,
                                      Py_ssize_t PH, Py_ssize_t PW, Py_ssize_t OC, int n_threads):
    if variant == 2:
        return fc_conv2d_winograd_forward_workspace(C, H, W, PH, PW, OC, n_threads)
    return fc_conv2d_winograd6_forward_workspace(_wg6_r(variant), C, H, W, PH, PW, OC, n_threads)


def conv2d_winograd_backward_workspace(int variant, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W,
                                       Py_ssize_t PH, Py_ssize_t PW, Py_ssize_t OC, int n_threads):
    if variant == 2:
        return fc_conv2d_winograd_backward_workspace(C, H, W, PH, PW, OC, n_threads)
    return fc_conv2d_winograd6_backward_workspace(_wg6_r(variant), C, H, W, PH, PW, OC,
                                                  n_threads)


def conv2d_winograd_forward(int variant,
                            floating[::1] y, floating[::1] workspace,          # OUT
                            const floating[::1] x, const floating[::1] weight,  # IN
                            const floating[::1] bias,                           # IN (empty: none)
                            Py_ssize_t N, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W, Py_ssize_t OC,
                            Py_ssize_t PH, Py_ssize_t PW, bint relu, int n_threads):
    cdef Py_ssize_t R = _wg6_r(variant)
    with nogil:
        if floating is float:
            if variant == 2:
                fc_conv2d_winograd_forward_f32(_ptr(y), _ptr(workspace), _cptr(x),
                                               _cptr(weight), _cptr(bias), N, C, H, W, OC,
                                               PH, PW, relu, n_threads)
            else:
                fc_conv2d_winograd6_forward_f32(R, _ptr(y), _ptr(workspace), _cptr(x),
                                                _cptr(weight), _cptr(bias), N, C, H, W, OC,
                                                PH, PW, relu, n_threads)
        else:
            if variant == 2:
                fc_conv2d_winograd_forward_f64(_ptr(y), _ptr(workspace), _cptr(x),
                                               _cptr(weight), _cptr(bias), N, C, H, W, OC,
                                               PH, PW, relu, n_threads)
            else:
                fc_conv2d_winograd6_forward_f64(R, _ptr(y), _ptr(workspace), _cptr(x),
                                                _cptr(weight), _cptr(bias), N, C, H, W, OC,
                                                PH, PW, relu, n_threads)


def conv2d_winograd_backward(int variant,
                             floating[::1] dx, floating[::1] dweight,          # OUT (each may be
                             floating[::1] dbias, floating[::1] workspace,     #  empty: skipped)
                             const floating[::1] dy, const floating[::1] x,    # IN
                             const floating[::1] weight,                       # IN
                             Py_ssize_t N, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W,
                             Py_ssize_t OC, Py_ssize_t PH, Py_ssize_t PW, int n_threads):
    cdef Py_ssize_t R = _wg6_r(variant)
    with nogil:
        if floating is float:
            if variant == 2:
                fc_conv2d_winograd_backward_f32(_ptr(dx), _ptr(dweight), _ptr(dbias),
                                                _ptr(workspace), _cptr(dy), _cptr(x),
                                                _cptr(weight), N, C, H, W, OC, PH, PW, n_threads)
            else:
                fc_conv2d_winograd6_backward_f32(R, _ptr(dx), _ptr(dweight), _ptr(dbias),
                                                 _ptr(workspace), _cptr(dy), _cptr(x),
                                                 _cptr(weight), N, C, H, W, OC, PH, PW,
                                                 n_threads)
        else:
            if variant == 2:
                fc_conv2d_winograd_backward_f64(_ptr(dx), _ptr(dweight), _ptr(dbias),
                                                _ptr(workspace), _cptr(dy), _cptr(x),
                                                _cptr(weight), N, C, H, W, OC, PH, PW, n_threads)
            else:
                fc_conv2d_winograd6_backward_f64(R, _ptr(dx), _ptr(dweight), _ptr(dbias),
                                                 _ptr(workspace), _cptr(dy), _cptr(x),
                                                 _cptr(weight), N, C, H, W, OC, PH, PW,
                                                 n_threads)


def conv2d_direct_supported(Py_ssize_t SH, Py_ssize_t SW):
    """True where the direct convolution applies (stride 1)."""
    return bool(fc_conv2d_direct_supported(SH, SW))


def conv2d_direct_workspace(Py_ssize_t C, Py_ssize_t H, Py_ssize_t W, Py_ssize_t KH,
                            Py_ssize_t KW, Py_ssize_t PH, Py_ssize_t PW, Py_ssize_t OC,
                            int n_threads):
    return fc_conv2d_direct_workspace(C, H, W, KH, KW, PH, PW, OC, n_threads)


def conv2d_direct_forward(floating[::1] y, floating[::1] workspace,            # OUT
                          const floating[::1] x, const floating[::1] weight,    # IN
                          const floating[::1] bias,                             # IN (empty: none)
                          Py_ssize_t N, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W, Py_ssize_t OC,
                          Py_ssize_t KH, Py_ssize_t KW, Py_ssize_t PH, Py_ssize_t PW, bint relu,
                          int n_threads):
    with nogil:
        if floating is float:
            fc_conv2d_direct_forward_f32(_ptr(y), _ptr(workspace), _cptr(x), _cptr(weight),
                                         _cptr(bias), N, C, H, W, OC, KH, KW, PH, PW, relu,
                                         n_threads)
        else:
            fc_conv2d_direct_forward_f64(_ptr(y), _ptr(workspace), _cptr(x), _cptr(weight),
                                         _cptr(bias), N, C, H, W, OC, KH, KW, PH, PW, relu,
                                         n_threads)


def conv2d_direct_backward_data(floating[::1] dx, floating[::1] workspace,      # OUT
                                const floating[::1] dy, const floating[::1] weight,  # IN
                                Py_ssize_t N, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W,
                                Py_ssize_t OC, Py_ssize_t KH, Py_ssize_t KW, Py_ssize_t PH,
                                Py_ssize_t PW, int n_threads):
    with nogil:
        if floating is float:
            fc_conv2d_direct_backward_data_f32(_ptr(dx), _ptr(workspace), _cptr(dy),
                                               _cptr(weight), N, C, H, W, OC, KH, KW, PH, PW,
                                               n_threads)
        else:
            fc_conv2d_direct_backward_data_f64(_ptr(dx), _ptr(workspace), _cptr(dy),
                                               _cptr(weight), N, C, H, W, OC, KH, KW, PH, PW,
                                               n_threads)


def conv2d_direct_backward_weights(floating[::1] dweight, floating[::1] dbias,  # OUT (dbias: or empty)
                                   floating[::1] dx, floating[::1] dx_workspace,  # OUT (or empty)
                                   floating[::1] workspace,                      # OUT
                                   const floating[::1] dy, const floating[::1] x,  # IN
                                   const floating[::1] weight,                   # IN
                                   Py_ssize_t N, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W,
                                   Py_ssize_t OC, Py_ssize_t KH, Py_ssize_t KW, Py_ssize_t PH,
                                   Py_ssize_t PW, int n_threads):
    """dweight, dbias and (unless dx is empty) dx image by image, dx by im2col's GEMM and
    col2im while each image's dy is in cache; dx_workspace: n_threads*C*KH*KW*OH*OW elements
    with dx."""
    with nogil:
        if floating is float:
            fc_conv2d_direct_backward_weights_f32(_ptr(dweight), _ptr(dbias), _ptr(dx),
                                                  _ptr(dx_workspace), _ptr(workspace), _cptr(dy), _cptr(x),
                                                  _cptr(weight), N, C, H, W, OC, KH, KW, PH, PW,
                                                  n_threads)
        else:
            fc_conv2d_direct_backward_weights_f64(_ptr(dweight), _ptr(dbias), _ptr(dx),
                                                  _ptr(dx_workspace), _ptr(workspace), _cptr(dy), _cptr(x),
                                                  _cptr(weight), N, C, H, W, OC, KH, KW, PH, PW,
                                                  n_threads)


def relu_forward(floating[::1] y, const floating[::1] x, int n_threads):          # y: OUT
    """y = x where x > 0 or NaN, else +0; y may be x."""
    with nogil:
        if floating is float:
            fc_relu_forward_f32(_ptr(y), _cptr(x), x.shape[0], n_threads)
        else:
            fc_relu_forward_f64(_ptr(y), _cptr(x), x.shape[0], n_threads)


def relu_backward(floating[::1] dx, const floating[::1] dy, const floating[::1] y,  # dx: OUT
                  int n_threads):
    """dx = dy where y > 0, else 0; dx may be dy."""
    with nogil:
        if floating is float:
            fc_relu_backward_f32(_ptr(dx), _cptr(dy), _cptr(y), y.shape[0], n_threads)
        else:
            fc_relu_backward_f64(_ptr(dx), _cptr(dy), _cptr(y), y.shape[0], n_threads)


def softmax_xent_forward(floating[:, ::1] probs, floating[::1] grad,       # OUT (grad may be
                         double[::1] row_loss,                                 #  empty: skipped)
                         const floating[:, ::1] logits, const int64_t[::1] labels,  # IN
                         int n_threads):
    """probs = softmax(logits) by rows, grad (flat, N*K) = (probs - onehot) / N; returns (mean
    cross-entropy, -1), or (0, n) with n the first label outside [0, K) and nothing written."""
    cdef double loss = 0.0
    cdef Py_ssize_t bad
    cdef Py_ssize_t N = logits.shape[0], K = logits.shape[1]
    with nogil:
        if floating is float:
            bad = fc_softmax_xent_forward_f32(&probs[0, 0], _ptr(grad), &loss, &row_loss[0],
                                              &logits[0, 0], &labels[0], N, K, n_threads)
        else:
            bad = fc_softmax_xent_forward_f64(&probs[0, 0], _ptr(grad), &loss, &row_loss[0],
                                              &logits[0, 0], &labels[0], N, K, n_threads)
    return loss, bad


def softmax_xent_backward(floating[:, ::1] d, const floating[:, ::1] probs,  # d: OUT
                          const int64_t[::1] labels, double scale, int n_threads):
    """d = scale * (probs - onehot(labels)); returns -1, or the first bad label's index."""
    cdef Py_ssize_t bad
    cdef Py_ssize_t N = probs.shape[0], K = probs.shape[1]
    with nogil:
        if floating is float:
            bad = fc_softmax_xent_backward_f32(&d[0, 0], &probs[0, 0], &labels[0], N, K, scale,
                                               n_threads)
        else:
            bad = fc_softmax_xent_backward_f64(&d[0, 0], &probs[0, 0], &labels[0], N, K, scale,
                                               n_threads)
    return bad


def s2d_gather(floating[::1] xs, const floating[::1] x,                       # xs: OUT
               Py_ssize_t N, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W, Py_ssize_t SH,
               Py_ssize_t SW, Py_ssize_t PH, Py_ssize_t PW, Py_ssize_t H2, Py_ssize_t W2,
               int n_threads):
    """xs (N, C*SH*SW, H2, W2) = the SH*SW phases of x (N, C, H, W) padded by (PH, PW)."""
    with nogil:
        if floating is float:
            fc_s2d_gather_f32(_ptr(xs), _cptr(x), N, C, H, W, SH, SW, PH, PW, H2, W2, n_threads)
        else:
            fc_s2d_gather_f64(_ptr(xs), _cptr(x), N, C, H, W, SH, SW, PH, PW, H2, W2, n_threads)


def s2d_scatter(floating[::1] dx, const floating[::1] dxs,                    # dx: OUT
                Py_ssize_t N, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W, Py_ssize_t SH,
                Py_ssize_t SW, Py_ssize_t PH, Py_ssize_t PW, Py_ssize_t H2, Py_ssize_t W2,
                int n_threads):
    """dx (N, C, H, W) from the phases' gradient dxs: s2d_gather's adjoint."""
    with nogil:
        if floating is float:
            fc_s2d_scatter_f32(_ptr(dx), _cptr(dxs), N, C, H, W, SH, SW, PH, PW, H2, W2,
                               n_threads)
        else:
            fc_s2d_scatter_f64(_ptr(dx), _cptr(dxs), N, C, H, W, SH, SW, PH, PW, H2, W2,
                               n_threads)


def lrn_forward(floating[::1] y, floating[::1] scale,                          # OUT
                const floating[::1] x, Py_ssize_t N, Py_ssize_t C, Py_ssize_t HW,
                Py_ssize_t size, double alpha, double beta, double k, int n_threads):
    """y = x * S^-beta and scale = S for local response normalisation (fastcnn.h)."""
    with nogil:
        if floating is float:
            fc_lrn_forward_f32(_ptr(y), _ptr(scale), _cptr(x), N, C, HW, size, alpha, beta, k,
                               n_threads)
        else:
            fc_lrn_forward_f64(_ptr(y), _ptr(scale), _cptr(x), N, C, HW, size, alpha, beta, k,
                               n_threads)


def lrn_backward(floating[::1] dx, floating[::1] scratch,                     # OUT
                 const floating[::1] dy, const floating[::1] x, const floating[::1] y,
                 const floating[::1] scale, Py_ssize_t N, Py_ssize_t C, Py_ssize_t HW,
                 Py_ssize_t size, double alpha, double beta, int n_threads):
    """dx of local response normalisation from the forward's y and scale (fastcnn.h)."""
    with nogil:
        if floating is float:
            fc_lrn_backward_f32(_ptr(dx), _ptr(scratch), _cptr(dy), _cptr(x), _cptr(y),
                                _cptr(scale), N, C, HW, size, alpha, beta, n_threads)
        else:
            fc_lrn_backward_f64(_ptr(dx), _ptr(scratch), _cptr(dy), _cptr(x), _cptr(y),
                                _cptr(scale), N, C, HW, size, alpha, beta, n_threads)


def max_pool2d_forward(floating[::1] y, int32_t[::1] argmax,                  # OUT (argmax may be empty)
                       const floating[::1] x,                                 # IN
                       Py_ssize_t P, Py_ssize_t H, Py_ssize_t W, Py_ssize_t KH, Py_ssize_t KW,
                       Py_ssize_t SH, Py_ssize_t SW, Py_ssize_t PH, Py_ssize_t PW, int n_threads):
    cdef int32_t *am = NULL if argmax.shape[0] == 0 else &argmax[0]
    with nogil:
        if floating is float:
            fc_max_pool2d_forward_f32(_ptr(y), am, _cptr(x), P, H, W, KH, KW, SH, SW, PH, PW,
                                      n_threads)
        else:
            fc_max_pool2d_forward_f64(_ptr(y), am, _cptr(x), P, H, W, KH, KW, SH, SW, PH, PW,
                                      n_threads)


def max_pool2d_backward(floating[::1] dx,                                     # OUT
                        const floating[::1] dy, const int32_t[::1] argmax,    # IN
                        Py_ssize_t P, Py_ssize_t H, Py_ssize_t W, Py_ssize_t OH, Py_ssize_t OW,
                        int n_threads):
    """Returns the number of out-of-range argmax entries (skipped)."""
    cdef Py_ssize_t bad
    cdef const int32_t *am = NULL if argmax.shape[0] == 0 else &argmax[0]
    with nogil:
        if floating is float:
            bad = fc_max_pool2d_backward_f32(_ptr(dx), _cptr(dy), am, P, H, W, OH, OW, n_threads)
        else:
            bad = fc_max_pool2d_backward_f64(_ptr(dx), _cptr(dy), am, P, H, W, OH, OW, n_threads)
    return bad


def avg_pool2d_forward(floating[::1] y, const floating[::1] x,
                       Py_ssize_t P, Py_ssize_t H, Py_ssize_t W, Py_ssize_t KH, Py_ssize_t KW,
                       Py_ssize_t SH, Py_ssize_t SW, Py_ssize_t PH, Py_ssize_t PW,
                       bint count_include_pad, int n_threads):
    with nogil:
        if floating is float:
            fc_avg_pool2d_forward_f32(_ptr(y), _cptr(x), P, H, W, KH, KW, SH, SW, PH, PW,
                                      count_include_pad, n_threads)
        else:
            fc_avg_pool2d_forward_f64(_ptr(y), _cptr(x), P, H, W, KH, KW, SH, SW, PH, PW,
                                      count_include_pad, n_threads)


def avg_pool2d_backward(floating[::1] dx, const floating[::1] dy,
                        Py_ssize_t P, Py_ssize_t H, Py_ssize_t W, Py_ssize_t KH, Py_ssize_t KW,
                        Py_ssize_t SH, Py_ssize_t SW, Py_ssize_t PH, Py_ssize_t PW,
                        bint count_include_pad, int n_threads):
    with nogil:
        if floating is float:
            fc_avg_pool2d_backward_f32(_ptr(dx), _cptr(dy), P, H, W, KH, KW, SH, SW, PH, PW,
                                       count_include_pad, n_threads)
        else:
            fc_avg_pool2d_backward_f64(_ptr(dx), _cptr(dy), P, H, W, KH, KW, SH, SW, PH, PW,
                                       count_include_pad, n_threads)


def batch_norm_workspace(Py_ssize_t N, Py_ssize_t C, Py_ssize_t S):
    """Doubles of scratch batch_norm_forward_train and batch_norm_backward take."""
    return fc_batch_norm_workspace(N, C, S)


cdef _check_bn_work(double[::1] work, Py_ssize_t N, Py_ssize_t C, Py_ssize_t S):
    if work.shape[0] < fc_batch_norm_workspace(N, C, S):
        raise ValueError(f"batch norm: work has {work.shape[0]} doubles, needs "
                         f"{fc_batch_norm_workspace(N, C, S)} for N={N}, C={C}, S={S}")


def batch_norm_forward_train(floating[::1] y, floating[::1] save_mean,          # OUT
                             floating[::1] save_invstd,                          # OUT
                             floating[::1] running_mean, floating[::1] running_var,  # IN/OUT (may be empty)
                             const floating[::1] x, const floating[::1] gamma,   # IN
                             const floating[::1] beta,                           # IN
                             Py_ssize_t N, Py_ssize_t C, Py_ssize_t S, double eps,
                             double momentum, double[::1] work, int n_threads):
    _check_bn_work(work, N, C, S)
    with nogil:
        if floating is float:
            fc_batch_norm_forward_train_f32(_ptr(y), _ptr(save_mean), _ptr(save_invstd),
                                            _ptr(running_mean), _ptr(running_var), _cptr(x),
                                            _cptr(gamma), _cptr(beta), N, C, S, eps, momentum,
                                            _ptr(work), n_threads)
        else:
            fc_batch_norm_forward_train_f64(_ptr(y), _ptr(save_mean), _ptr(save_invstd),
                                            _ptr(running_mean), _ptr(running_var), _cptr(x),
                                            _cptr(gamma), _cptr(beta), N, C, S, eps, momentum,
                                            _ptr(work), n_threads)


def batch_norm_forward_eval(floating[::1] y, const floating[::1] x,
                            const floating[::1] gamma, const floating[::1] beta,
                            const floating[::1] running_mean, const floating[::1] running_var,
                            Py_ssize_t N, Py_ssize_t C, Py_ssize_t S, double eps, int n_threads):
    with nogil:
        if floating is float:
            fc_batch_norm_forward_eval_f32(_ptr(y), _cptr(x), _cptr(gamma), _cptr(beta),
                                           _cptr(running_mean), _cptr(running_var), N, C, S, eps,
                                           n_threads)
        else:
            fc_batch_norm_forward_eval_f64(_ptr(y), _cptr(x), _cptr(gamma), _cptr(beta),
                                           _cptr(running_mean), _cptr(running_var), N, C, S, eps,
                                           n_threads)


def batch_norm_backward(floating[::1] dx, floating[::1] dgamma, floating[::1] dbeta,  # OUT
                        const floating[::1] dy, const floating[::1] x,                # IN
                        const floating[::1] gamma, const floating[::1] save_mean,     # IN
                        const floating[::1] save_invstd,                              # IN
                        Py_ssize_t N, Py_ssize_t C, Py_ssize_t S, bint training,
                        double[::1] work, int n_threads):
    _check_bn_work(work, N, C, S)
    with nogil:
        if floating is float:
            fc_batch_norm_backward_f32(_ptr(dx), _ptr(dgamma), _ptr(dbeta), _cptr(dy), _cptr(x),
                                       _cptr(gamma), _cptr(save_mean), _cptr(save_invstd),
                                       N, C, S, training, _ptr(work), n_threads)
        else:
            fc_batch_norm_backward_f64(_ptr(dx), _ptr(dgamma), _ptr(dbeta), _cptr(dy), _cptr(x),
                                       _cptr(gamma), _cptr(save_mean), _cptr(save_invstd),
                                       N, C, S, training, _ptr(work), n_threads)


def linear_forward_workspace(Py_ssize_t N, Py_ssize_t IN):
    return fc_linear_forward_workspace(N, IN)


def linear_forward(floating[::1] y, floating[::1] workspace,                   # OUT
                   const floating[::1] x, const floating[::1] weight,          # IN
                   const floating[::1] bias,                                   # IN (empty: none)
                   Py_ssize_t N, Py_ssize_t IN, Py_ssize_t OUT, int n_threads):
    if workspace.shape[0] < fc_linear_forward_workspace(N, IN):
        raise ValueError("linear_forward: workspace too small")
    with nogil:
        if floating is float:
            fc_linear_forward_f32(_ptr(y), _ptr(workspace), _cptr(x), _cptr(weight),
                                  _cptr(bias), N, IN, OUT, n_threads)
        else:
            fc_linear_forward_f64(_ptr(y), _ptr(workspace), _cptr(x), _cptr(weight),
                                  _cptr(bias), N, IN, OUT, n_threads)


def linear_backward_workspace(Py_ssize_t N, Py_ssize_t IN, Py_ssize_t OUT):
    return fc_linear_backward_workspace(N, IN, OUT)


def linear_backward(floating[::1] dx, floating[::1] dweight, floating[::1] dbias,  # OUT (dx, dbias may be empty)
                    floating[::1] workspace,                                       # scratch
                    const floating[::1] dy, const floating[::1] x,                 # IN
                    const floating[::1] weight,                                    # IN
                    Py_ssize_t N, Py_ssize_t IN, Py_ssize_t OUT, bint accumulate,
                    int n_threads):
    """accumulate: dweight and dbias are added to, not overwritten."""
    if dx.shape[0] > 0 and workspace.shape[0] < fc_linear_backward_workspace(N, IN, OUT):
        raise ValueError("linear_backward: workspace too small")
    with nogil:
        if floating is float:
            fc_linear_backward_f32(_ptr(dx), _ptr(dweight), _ptr(dbias), _ptr(workspace),
                                   _cptr(dy), _cptr(x), _cptr(weight), N, IN, OUT, accumulate,
                                   n_threads)
        else:
            fc_linear_backward_f64(_ptr(dx), _ptr(dweight), _ptr(dbias), _ptr(workspace),
                                   _cptr(dy), _cptr(x), _cptr(weight), N, IN, OUT, accumulate,
                                   n_threads)


def adam_update(floating[::1] w, floating[::1] m, floating[::1] v,            # IN/OUT
                const floating[::1] g,                                         # IN
                double lr, double beta1, double beta2, double eps, double bias_correction1,
                double bias_correction2, int n_threads):
    cdef Py_ssize_t n = w.shape[0]
    with nogil:
        if floating is float:
            fc_adam_update_f32(_ptr(w), _ptr(m), _ptr(v), _cptr(g), n, lr, beta1, beta2, eps,
                               bias_correction1, bias_correction2, n_threads)
        else:
            fc_adam_update_f64(_ptr(w), _ptr(m), _ptr(v), _cptr(g), n, lr, beta1, beta2, eps,
                               bias_correction1, bias_correction2, n_threads)
