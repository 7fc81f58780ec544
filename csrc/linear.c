/* linear.c: the fully connected layer y = x W^T + b (forward, backward) through the registered
 * BLAS GEMM, or for small batches kernels of its own, parallel over feature blocks. The body is
 * in linear_impl.h, instantiated for float and double here; the small-batch kernels in
 * linear_small_impl.h, compiled per instruction set. */
#include <string.h>

#include "fastcnn.h"
#include "parallel.h"
#include "simd.h"

/* Column blocks start on 16-element (64-byte for float) boundaries. */
#define LINEAR_ALIGN 16

/* Below LINEAR_PARALLEL_MIN multiply-adds (`gemms` GEMMs of N*IN*OUT each) a second thread
 * costs more to wake than it saves. Measured on a 2-core KVM guest (Zen 4, float, 1 | 2
 * threads, microseconds): forward 128x100 -> 100 37 | 81, 128x150 -> 150 74 | 98, 128x200 ->
 * 200 121 | 130, 128x250 -> 250 179 | 186, 128x300 -> 300 262 | 232; backward with dx 128x150
 * -> 150 144 | 150, 128x200 -> 200 237 | 216. (The former 256k put the study's MLPs, 100 wide
 * at batch 128, on two threads at twice the time.) A bare-metal core wakes faster: 4M, under the
 * 8M where the guest's forward breaks even, is between the two. */
#define LINEAR_PARALLEL_MIN 4.0e6

static int linear_threads(int n_threads, ptrdiff_t N, ptrdiff_t IN, ptrdiff_t OUT, ptrdiff_t cols,
                          int gemms)
{
    if ((double)gemms * (double)N * (double)IN * (double)OUT < LINEAR_PARALLEL_MIN) return 1;
    return fc_clamp_threads(n_threads, (cols + LINEAR_ALIGN - 1) / LINEAR_ALIGN);
}

/* Batches of at most this many rows (and at most ls_max_n: two vectors of them, 8 double rows
 * on AVX2) take the small-batch kernels (linear_small_impl.h), which
 * stream W once instead of BLAS, which packs it per call: AlexNet's 9216 -> 4096 at batch 8,
 * forward 35.6 -> 16.7 ms at 1 thread, 18.4 -> 7.8 at 2; dx 33.6 -> 22.8 (1 thread). Above 16
 * rows the GEMM's arithmetic outweighs the packing. */
#define LINEAR_SMALL_N 16

/* The small-batch forward reads the batch transposed, (IN, 16) elements per group of 64 bytes
 * of batch rows (16 float rows, 8 double ones: at most two groups of double rows). */
#define LINEAR_SMALL_XT 16

ptrdiff_t fc_linear_forward_workspace(ptrdiff_t N, ptrdiff_t IN)
{
    return N > 0 && N <= LINEAR_SMALL_N ? LINEAR_SMALL_XT * IN : 0;
}

/* The small-batch dx: dy transposed, then dx built transposed (as the forward's x). */
ptrdiff_t fc_linear_backward_workspace(ptrdiff_t N, ptrdiff_t IN, ptrdiff_t OUT)
{
    return N > 0 && N <= LINEAR_SMALL_N ? LINEAR_SMALL_XT * (OUT + IN) : 0;
}

#define FC_IMPL "linear_small_impl.h"
#define FC_SIMD_BODY "dtype_variants.h"
#include "simd_targets.h"
#undef FC_SIMD_BODY
#undef FC_IMPL

/* Float batches of up to half a vector of rows take the small-batch kernels' pair forms (two
 * columns of W per vector: linear_small_impl.h). */
#define REAL float
#define FN(name) name##_f32
#define SMALL(name) FC_SIMD_PICK(name, f32)
#define GEMM fc_gemm_f32
#define LINEAR_HAS_PAIRS 1
#include "linear_impl.h"
#undef REAL
#undef FN
#undef SMALL
#undef GEMM
#undef LINEAR_HAS_PAIRS

#define REAL double
#define FN(name) name##_f64
#define SMALL(name) FC_SIMD_PICK(name, f64)
#define GEMM fc_gemm_f64
#define LINEAR_HAS_PAIRS 0
#include "linear_impl.h"
#undef LINEAR_HAS_PAIRS
#undef REAL
#undef FN
#undef SMALL
#undef GEMM
