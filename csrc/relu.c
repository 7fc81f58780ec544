/* relu.c: ReLU, each direction one threaded pass. The forward, y = x where x > 0 or NaN, else
 * +0 (the convolution epilogue's rule), ran as NumPy's maximum on one thread: on AlexNet's first
 * activations (8x96x55x55, float) 0.89 ms, here 0.39 at 1 thread, 0.26 at 2; on SimpleConvNet's
 * (100x30x24x24) 0.66-0.82 ms, here 0.21 | 0.20 (KVM guest, Zen 4). The backward, dx = dy where
 * y > 0, else 0 (PyTorch's threshold_backward: a NaN in dy where y <= 0 gives 0); NumPy took two
 * single-threaded passes, a mask, then the product. Either may run in place. */
#include "fastcnn.h"
#include "parallel.h"

#define FC_RELU_FORWARD(REAL, sfx)                                                             \
    void fc_relu_forward_##sfx(REAL *y, const REAL *x, ptrdiff_t n, int n_threads)             \
    {                                                                                          \
        int nt = fc_clamp_threads(n_threads, n / FC_STREAM_PARALLEL_MIN + 1);                  \
        _Pragma("omp parallel for simd num_threads(nt) if (parallel : nt > 1) schedule(static)")\
        for (ptrdiff_t i = 0; i < n; ++i) {                                                    \
            const REAL v = x[i];                                                               \
            y[i] = !(v <= 0) ? v : (REAL)0;   /* NaN compares false: it passes */              \
        }                                                                                      \
    }

FC_RELU_FORWARD(float, f32)
FC_RELU_FORWARD(double, f64)

#define FC_RELU_BACKWARD(REAL, sfx)                                                            \
    void fc_relu_backward_##sfx(REAL *dx, const REAL *dy, const REAL *y, ptrdiff_t n,          \
                                int n_threads)                                                 \
    {                                                                                          \
        /* >= FC_STREAM_PARALLEL_MIN elements a thread; `if` on parallel only: on the combined \
         * construct it would switch the simd vectorisation off too */                          \
        int nt = fc_clamp_threads(n_threads, n / FC_STREAM_PARALLEL_MIN + 1);                  \
        _Pragma("omp parallel for simd num_threads(nt) if (parallel : nt > 1) schedule(static)")\
        for (ptrdiff_t i = 0; i < n; ++i) {                                                    \
            const REAL g = dy[i];   /* read unconditionally: the select then vectorises */     \
            dx[i] = y[i] > 0 ? g : (REAL)0;                                                    \
        }                                                                                      \
    }

FC_RELU_BACKWARD(float, f32)
FC_RELU_BACKWARD(double, f64)
