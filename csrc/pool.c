/* pool.c: max and average 2-D pooling, forward and backward (API and shapes: fastcnn.h).
 * The bodies live once in pool_impl.h and are instantiated for float (_f32) and double (_f64),
 * once per instruction set (AVX-512, AVX2+FMA, portable; picked at run time by fc_simd_active()):
 * the row kernels are vectorised loops whose compares and selects ran on 4-lane SSE2 on the
 * x86-64 baseline, which has no blend (3x3 stride-2 max pooling: 13.4 ms for 100x64x32x32).
 * Parallel over planes with OpenMP when the build has it; serial otherwise. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fastcnn.h"
#include "parallel.h"
#include "simd.h"
#if FC_X86_VARIANTS
#include <immintrin.h>   /* the AVX-512 3x3 / stride 2 max pooling (pool_impl.h) */
#endif

#define FC_IMPL "pool_impl.h"
#define FC_SIMD_BODY "dtype_variants.h"
#include "simd_targets.h"
#undef FC_SIMD_BODY
#undef FC_IMPL

#define POOL_PUBLIC(real, sfx)                                                                     \
    void fc_max_pool2d_forward_##sfx(real *y, int32_t *argmax, const real *x, ptrdiff_t P,         \
                                     ptrdiff_t H, ptrdiff_t W, ptrdiff_t KH, ptrdiff_t KW,         \
                                     ptrdiff_t SH, ptrdiff_t SW, ptrdiff_t PH, ptrdiff_t PW,       \
                                     int n_threads)                                                \
    {                                                                                              \
        FC_SIMD_PICK(max_pool_forward, sfx)(y, argmax, x, P, H, W, KH, KW, SH, SW, PH, PW,         \
                                            n_threads);                                            \
    }                                                                                              \
    ptrdiff_t fc_max_pool2d_backward_##sfx(real *dx, const real *dy, const int32_t *argmax,        \
                                           ptrdiff_t P, ptrdiff_t H, ptrdiff_t W, ptrdiff_t OH,    \
                                           ptrdiff_t OW, int n_threads)                            \
    {                                                                                              \
        return FC_SIMD_PICK(max_pool_backward, sfx)(dx, dy, argmax, P, H, W, OH, OW,               \
                                                    n_threads);                                    \
    }                                                                                              \
    void fc_avg_pool2d_forward_##sfx(real *y, const real *x, ptrdiff_t P, ptrdiff_t H,             \
                                     ptrdiff_t W, ptrdiff_t KH, ptrdiff_t KW, ptrdiff_t SH,        \
                                     ptrdiff_t SW, ptrdiff_t PH, ptrdiff_t PW,                     \
                                     int count_include_pad, int n_threads)                         \
    {                                                                                              \
        FC_SIMD_PICK(avg_pool_forward, sfx)(y, x, P, H, W, KH, KW, SH, SW, PH, PW,                 \
                                            count_include_pad, n_threads);                         \
    }                                                                                              \
    void fc_avg_pool2d_backward_##sfx(real *dx, const real *dy, ptrdiff_t P, ptrdiff_t H,          \
                                      ptrdiff_t W, ptrdiff_t KH, ptrdiff_t KW, ptrdiff_t SH,       \
                                      ptrdiff_t SW, ptrdiff_t PH, ptrdiff_t PW,                    \
                                      int count_include_pad, int n_threads)                        \
    {                                                                                              \
        FC_SIMD_PICK(avg_pool_backward, sfx)(dx, dy, P, H, W, KH, KW, SH, SW, PH, PW,              \
                                             count_include_pad, n_threads);                        \
    }

POOL_PUBLIC(float, f32)
POOL_PUBLIC(double, f64)
