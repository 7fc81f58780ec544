/* conv.c: 2-D convolution (cross-correlation, as in every framework) by per-image im2col + GEMM,
 * forward with fused bias/ReLU, backward-data and backward-weights. The type-generic body is in
 * conv_impl.h (the per-image loop and its GEMMs), instantiated here for float and double; the
 * data movement around the GEMMs (im2col, col2im, epilogue, bias-gradient sums) in
 * im2col_impl.h, instantiated per dtype and instruction set. This file holds the dtype-free
 * helpers. */
#include "fastcnn.h"
#include "parallel.h"
#include "simd.h"
#if FC_X86_VARIANTS
#pragma GCC push_options
#pragma GCC target("avx512f,avx512vl,avx512dq,avx512bw,avx2,fma")
#include "wg_gemm_avx512.h"
#pragma GCC pop_options
#endif

/* The widest column matrix (K = C*KH*KW rows) whose double GEMMs run on wg_gemm_avx512.h's
 * kernels under AVX-512 (conv_impl.h): a 2-vector strip of it (K*128 bytes) stays in L1 over a
 * panel's kernels; wider, BLAS's blocking serves better. */
#define CONV_OWN_MAX_K 256

/* 1x1, stride 1, no padding: the image itself is the column matrix; no im2col needed. */
static int is_pointwise(ptrdiff_t KH, ptrdiff_t KW, ptrdiff_t SH, ptrdiff_t SW, ptrdiff_t PH,
                        ptrdiff_t PW)
{
    return KH == 1 && KW == 1 && SH == 1 && SW == 1 && PH == 0 && PW == 0;
}

/* Output columns ow whose input column ow*SW - PW + kw lies inside [0, W): [*lo, *hi). */
static void valid_range(ptrdiff_t kw, ptrdiff_t PW, ptrdiff_t SW, ptrdiff_t W, ptrdiff_t OW,
                        ptrdiff_t *lo, ptrdiff_t *hi)
{
    ptrdiff_t a = PW - kw;                       /* need ow*SW >= a */
    ptrdiff_t l = a > 0 ? (a + SW - 1) / SW : 0;
    ptrdiff_t b = W - 1 + PW - kw;               /* need ow*SW <= b */
    ptrdiff_t h = b >= 0 ? b / SW + 1 : 0;
    if (h > OW) h = OW;
    if (l > h) l = h;
    *lo = l;
    *hi = h;
}

/* Unaligned moves of 64, 32, 16, 8 and 4 bytes (im2col_impl.h's copy_row): GCC vectors, which
 * each instruction set's copy lowers to its widest moves. */
typedef char fc_bytes64 __attribute__((vector_size(64), aligned(1), may_alias));
typedef char fc_bytes32 __attribute__((vector_size(32), aligned(1), may_alias));
typedef char fc_bytes16 __attribute__((vector_size(16), aligned(1), may_alias));
typedef char fc_bytes8 __attribute__((vector_size(8), aligned(1), may_alias));
typedef char fc_bytes4 __attribute__((vector_size(4), aligned(1), may_alias));

#define FC_IMPL "im2col_impl.h"
#define FC_SIMD_BODY "dtype_variants.h"
#include "simd_targets.h"
#undef FC_SIMD_BODY
#undef FC_IMPL

/* conv_impl.h's im2col_f32 etc.: the instruction set's copy fc_simd_active() picks. */
#define CONV_HELPERS(real, sfx)                                                                    \
    static void im2col_##sfx(real *col, const real *x, ptrdiff_t C, ptrdiff_t H, ptrdiff_t W,      \
                             ptrdiff_t KH, ptrdiff_t KW, ptrdiff_t SH, ptrdiff_t SW, ptrdiff_t PH, \
                             ptrdiff_t PW, ptrdiff_t OH, ptrdiff_t OW)                             \
    {                                                                                              \
        FC_SIMD_PICK(im2col, sfx)(col, x, C, H, W, KH, KW, SH, SW, PH, PW, OH, OW);                \
    }                                                                                              \
    static void col2im_##sfx(real *dx, const real *dcol, ptrdiff_t C, ptrdiff_t H, ptrdiff_t W,    \
                             ptrdiff_t KH, ptrdiff_t KW, ptrdiff_t SH, ptrdiff_t SW, ptrdiff_t PH, \
                             ptrdiff_t PW, ptrdiff_t OH, ptrdiff_t OW)                             \
    {                                                                                              \
        FC_SIMD_PICK(col2im, sfx)(dx, dcol, C, H, W, KH, KW, SH, SW, PH, PW, OH, OW);              \
    }                                                                                              \
    static void epilogue_##sfx(real *y, const real *bias, ptrdiff_t OC, ptrdiff_t P, int relu)     \
    {                                                                                              \
        FC_SIMD_PICK(epilogue, sfx)(y, bias, OC, P, relu);                                         \
    }                                                                                              \
    static double sum_lanes_##sfx(const real *v, ptrdiff_t n)                                      \
    {                                                                                              \
        return FC_SIMD_PICK(sum_lanes, sfx)(v, n);                                                 \
    }

CONV_HELPERS(float, f32)
CONV_HELPERS(double, f64)

static ptrdiff_t out_size(ptrdiff_t n, ptrdiff_t k, ptrdiff_t s, ptrdiff_t p)
{
    return (n + 2 * p - k) / s + 1;
}

ptrdiff_t fc_conv2d_forward_workspace(ptrdiff_t C, ptrdiff_t H, ptrdiff_t W, ptrdiff_t KH,
                                      ptrdiff_t KW, ptrdiff_t SH, ptrdiff_t SW, ptrdiff_t PH,
                                      ptrdiff_t PW, ptrdiff_t OC, int n_threads)
{
    (void)OC;
    if (is_pointwise(KH, KW, SH, SW, PH, PW)) return 0;
    ptrdiff_t P = out_size(H, KH, SH, PH) * out_size(W, KW, SW, PW);
    return (ptrdiff_t)(n_threads < 1 ? 1 : n_threads) * C * KH * KW * P;
}

ptrdiff_t fc_conv2d_backward_workspace(ptrdiff_t C, ptrdiff_t H, ptrdiff_t W, ptrdiff_t KH,
                                       ptrdiff_t KW, ptrdiff_t SH, ptrdiff_t SW, ptrdiff_t PH,
                                       ptrdiff_t PW, ptrdiff_t OC, int n_threads)
{
    ptrdiff_t K = C * KH * KW;
    ptrdiff_t P = out_size(H, KH, SH, PH) * out_size(W, KW, SW, PW);
    ptrdiff_t col = is_pointwise(KH, KW, SH, SW, PH, PW) ? 0 : K * P;
    /* + the double weight-gradient GEMM's transposed column strip (conv_impl.h: 16 columns of P) */
    return (ptrdiff_t)(n_threads < 1 ? 1 : n_threads) * (col + OC * K + OC + 16 * P);
}

#define REAL float
#define FN(name) name##_f32
#define GEMM fc_gemm_f32
#include "conv_impl.h"
#undef REAL
#undef FN
#undef GEMM

#define REAL double
#define FN(name) name##_f64
#define GEMM fc_gemm_f64
#define OWN_GEMM(name) name##_f64
#include "conv_impl.h"
#undef REAL
#undef FN
#undef GEMM
#undef OWN_GEMM
