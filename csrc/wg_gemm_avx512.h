/* wg_gemm_avx512.h: GEMMs of fastcnn's own in AVX-512, float and double (the body, once per dtype:
 * wg_gemm_avx512_impl.h, names ending _f32 / _f64). For the Winograd planes: C (rows, n) =
 * A (rows, K) B (K, n) for an A (the transformed filters) that the filter transform wrote already
 * packed (wgp_gemm), and the weight gradient's C (+)= A B^T over the tiles (wgt_gemm). For
 * im2col's small per-image GEMMs: C (+)= A B with A read in place, plain or transposed
 * (wgs_gemm). Included by the AVX-512 copies of winograd6_variants.h and conv.c only.
 *
 * Why not BLAS: per block of tiles each of the 36 planes is one GEMM with n = the block's tiles
 * (<= 128) while A is the whole (OC, C) plane. OpenBLAS packs A afresh on every call and then
 * reads the packed copy once: on AlexNet's 384->384 (13x13, batch 8) that packing was 14.6% of
 * the forward at 2 threads (memory-bound: both threads stream all 36*OC*C filters through it).
 * Here A is packed once per call by the filter transform, and B (a transformed-data plane,
 * (K, n) with rows ldb apart, in L2) is read as it is. im2col's GEMMs are small too (MNIST's
 * 30 x 576 x 25 per image), where OpenBLAS's small-matrix kernels ran double at ~45 GFLOP/s.
 *
 * Packed A: panels of WGP_R rows, panel after panel; within one, k-major: the rb <= WGP_R
 * values of column k of the panel's rows are contiguous. The kernel keeps a panel's rb x 2L
 * block of C (L: lanes of a vector) in 2*rb registers, broadcasting A and loading two vectors
 * of a row of B per k. */
#ifndef FASTCNN_WG_GEMM_AVX512_H
#define FASTCNN_WG_GEMM_AVX512_H

#include <immintrin.h>
#include <stddef.h>

#define WGP_R 12   /* rows per panel: 24 accumulators + 2 rows of B of the 32 vector registers */
#define WGT_MIN_N 16     /* wgt_gemm's narrowest and widest C and fewest rows: outside them, */
#define WGT_MAX_N 64     /* OpenBLAS (see winograd6_impl.h) */
#define WGT_MIN_ROWS 32

/* The first min(max(w, 0), 16) (8) lanes. */
static inline __mmask16 wgp_mask_f32(ptrdiff_t w)
{
    return w >= 16 ? (__mmask16)0xFFFF : w > 0 ? (__mmask16)((1u << w) - 1) : (__mmask16)0;
}

static inline __mmask8 wgp_mask_f64(ptrdiff_t w)
{
    return w >= 8 ? (__mmask8)0xFF : w > 0 ? (__mmask8)((1u << w) - 1) : (__mmask8)0;
}

/* v where v > 0 or NaN, else +0: the scalar epilogue's ReLU (conv_impl.h), lane by lane. */
static inline __m512 wgp_relu_f32(__m512 v)
{
    return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_NLE_UQ), v);
}

static inline __m512d wgp_relu_f64(__m512d v)
{
    return _mm512_maskz_mov_pd(_mm512_cmp_pd_mask(v, _mm512_setzero_pd(), _CMP_NLE_UQ), v);
}

/* dst[k*ldd + i] = src[i*lds + k] for i < rows (<= 16; the other lanes 0), k < kn (<= 16): a
 * 16 x 16 float transpose in registers (four rounds of shuffles). */
static inline void wgt_transpose_f32(float *restrict dst, ptrdiff_t ldd, const float *restrict src,
                                     ptrdiff_t lds, ptrdiff_t rows, ptrdiff_t kn)
{
    const __mmask16 km = wgp_mask_f32(kn);
    __m512 r[16], t[16];
    for (int i = 0; i < 16; ++i)
        r[i] = i < rows ? _mm512_maskz_loadu_ps(km, src + i * lds) : _mm512_setzero_ps();
    for (int i = 0; i < 8; ++i) {   /* 128-bit lane L of row pairs: (a, b) of columns 4L.. */
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 4; ++i) {   /* r[4i + m], lane L: column 4L + m of rows 4i..4i+3 */
        const __m512d a0 = _mm512_castps_pd(t[4 * i]), a1 = _mm512_castps_pd(t[4 * i + 1]);
        const __m512d b0 = _mm512_castps_pd(t[4 * i + 2]), b1 = _mm512_castps_pd(t[4 * i + 3]);
        r[4 * i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a0, b0));
        r[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a0, b0));
        r[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(a1, b1));
        r[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(a1, b1));
    }
    for (int m = 0; m < 4; ++m) {   /* lanes: columns m, m+8 (0x88) or m+4, m+12 (0xdd) */
        t[m] = _mm512_shuffle_f32x4(r[m], r[4 + m], 0x88);
        t[4 + m] = _mm512_shuffle_f32x4(r[m], r[4 + m], 0xdd);
        t[8 + m] = _mm512_shuffle_f32x4(r[8 + m], r[12 + m], 0x88);
        t[12 + m] = _mm512_shuffle_f32x4(r[8 + m], r[12 + m], 0xdd);
    }
    for (int m = 0; m < 4; ++m) {   /* whole columns */
        r[m] = _mm512_shuffle_f32x4(t[m], t[8 + m], 0x88);
        r[8 + m] = _mm512_shuffle_f32x4(t[m], t[8 + m], 0xdd);
        r[4 + m] = _mm512_shuffle_f32x4(t[4 + m], t[12 + m], 0x88);
        r[12 + m] = _mm512_shuffle_f32x4(t[4 + m], t[12 + m], 0xdd);
    }
    for (int k = 0; k < kn; ++k) _mm512_storeu_ps(dst + k * ldd, r[k]);
}

/* The same for double: an 8 x 8 block (rows, kn <= 8), in three rounds. */
static inline void wgt_transpose_f64(double *restrict dst, ptrdiff_t ldd,
                                     const double *restrict src, ptrdiff_t lds, ptrdiff_t rows,
                                     ptrdiff_t kn)
{
    const __mmask8 km = wgp_mask_f64(kn);
    __m512d r[8], t[8];
    for (int i = 0; i < 8; ++i)
        r[i] = i < rows ? _mm512_maskz_loadu_pd(km, src + i * lds) : _mm512_setzero_pd();
    for (int i = 0; i < 4; ++i) {   /* t[2i + m], 128-bit lane L: column 2L + m of rows 2i, 2i+1 */
        t[2 * i] = _mm512_unpacklo_pd(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_pd(r[2 * i], r[2 * i + 1]);
    }
    for (int m = 0; m < 2; ++m) {
        /* u0: columns m, 4+m; u1: 2+m, 6+m (of rows 0-3, two per lane); v0, v1: rows 4-7 */
        const __m512d u0 = _mm512_shuffle_f64x2(t[m], t[2 + m], 0x88);
        const __m512d u1 = _mm512_shuffle_f64x2(t[m], t[2 + m], 0xdd);
        const __m512d v0 = _mm512_shuffle_f64x2(t[4 + m], t[6 + m], 0x88);
        const __m512d v1 = _mm512_shuffle_f64x2(t[4 + m], t[6 + m], 0xdd);
        r[m] = _mm512_shuffle_f64x2(u0, v0, 0x88);
        r[4 + m] = _mm512_shuffle_f64x2(u0, v0, 0xdd);
        r[2 + m] = _mm512_shuffle_f64x2(u1, v1, 0x88);
        r[6 + m] = _mm512_shuffle_f64x2(u1, v1, 0xdd);
    }
    for (int k = 0; k < kn; ++k) _mm512_storeu_pd(dst + k * ldd, r[k]);
}

#define WGG_REAL float
#define WGG_V __m512
#define WGG_L 16
#define WGG_MASK __mmask16
#define WGG_LOAD(m, p) _mm512_maskz_loadu_ps(m, p)
#define WGG_STORE(p, m, v) _mm512_mask_storeu_ps(p, m, v)
#define WGG_STOREU _mm512_storeu_ps
#define WGG_SET1 _mm512_set1_ps
#define WGG_FMA _mm512_fmadd_ps
#define WGG_ADD _mm512_add_ps
#define WGG_ZERO _mm512_setzero_ps
#define WGG_TRANSPOSE wgt_transpose_f32
#define WGG_RELU wgp_relu_f32
#define WGG(name) name##_f32
#include "wg_gemm_avx512_impl.h"

#define WGG_REAL double
#define WGG_V __m512d
#define WGG_L 8
#define WGG_MASK __mmask8
#define WGG_LOAD(m, p) _mm512_maskz_loadu_pd(m, p)
#define WGG_STORE(p, m, v) _mm512_mask_storeu_pd(p, m, v)
#define WGG_STOREU _mm512_storeu_pd
#define WGG_SET1 _mm512_set1_pd
#define WGG_FMA _mm512_fmadd_pd
#define WGG_ADD _mm512_add_pd
#define WGG_ZERO _mm512_setzero_pd
#define WGG_TRANSPOSE wgt_transpose_f64
#define WGG_RELU wgp_relu_f64
#define WGG(name) name##_f64
#include "wg_gemm_avx512_impl.h"

#endif /* FASTCNN_WG_GEMM_AVX512_H */
