/* linear.c: the fully connected layer y = x W^T + b (forward, backward) through the registered
 * BLAS GEMM, parallel over feature blocks. The body is in linear_impl.h, instantiated for float
 * and double here. */
#include "fastcnn.h"
#include "parallel.h"

/* Column blocks start on 16-element (64-byte for float) boundaries. */
#define LINEAR_ALIGN 16

/* Below ~256k multiply-adds a second thread costs more to wake than it saves. */
static int linear_threads(int n_threads, ptrdiff_t N, ptrdiff_t IN, ptrdiff_t OUT, ptrdiff_t cols)
{
    if ((double)N * (double)IN * (double)OUT < 262144.0) return 1;
    return fc_clamp_threads(n_threads, (cols + LINEAR_ALIGN - 1) / LINEAR_ALIGN);
}

#define REAL float
#define FN(name) name##_f32
#define GEMM fc_gemm_f32
#include "linear_impl.h"
#undef REAL
#undef FN
#undef GEMM

#define REAL double
#define FN(name) name##_f64
#define GEMM fc_gemm_f64
#include "linear_impl.h"
#undef REAL
#undef FN
#undef GEMM
