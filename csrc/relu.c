/* relu.c: ReLU's backward, dx = dy where y > 0, else 0 (PyTorch's threshold_backward: a NaN in
 * dy where y <= 0 gives 0), in one threaded pass (NumPy took two single-threaded ones: a mask,
 * then the product). dx may be dy (in place). */
#include "fastcnn.h"
#include "parallel.h"

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
