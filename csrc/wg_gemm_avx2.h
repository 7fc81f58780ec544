/* wg_gemm_avx2.h: the Winograd planes' GEMM C (rows, n) = A (rows, K) B (K, n) in AVX2 + FMA,
 * float and double, for an A that the filter transform wrote packed in panels of WGP2_R rows
 * (the layout of wg_gemm_avx512.h's wgp_gemm: within a panel of rb rows, k-major, the rb values
 * of column k contiguous), B (a transformed-data plane, rows ldb apart) read in place.
 *
 * Why: through BLAS these per-block GEMMs (n = a block's tiles, A a whole (OC, C) plane) had
 * OpenBLAS pack A and B on every call: on DeepConvNet's 16->16 (28x28, batch 100, one thread,
 * the AVX2 build on Zen 4) its packing took 27% of the forward + backward and its kernel 17%.
 *
 * 16 vector registers: a register block is half a panel, 6 rows by two vectors of C (12
 * accumulators), with two vectors of a row of B and a broadcast of A. Each row's sum runs over
 * k in order whatever the blocking, so threads splitting the rows do not change the bits.
 * And the weight gradient's C (+)= A B^T over a block's tiles (wgd2_gemm), as dot products:
 * OpenBLAS's packing of these 16 x 16 x 112 GEMMs took 15% of that layer's time, its kernel 8%;
 * for wide B, the same product with B transposed a strip at a time into the register blocks of
 * the first GEMM (wgt2_gemm). Included by the AVX2 copies of winograd6_variants.h only. */
#ifndef FASTCNN_WG_GEMM_AVX2_H
#define FASTCNN_WG_GEMM_AVX2_H

#include <immintrin.h>
#include <stddef.h>

#define WGP2_R 12   /* rows per panel (as WGP_R: the filter transform packs for either) */
#define WGP2_H 6    /* rows per register block: half a panel */

/* Lanes [0, w) set (all for w >= the vector's lanes, none for w <= 0). */
static inline __m256i wgp2_mask_f32(ptrdiff_t w)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(w < 8 ? (w > 0 ? w : 0) : 8)),
                              _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

static inline __m256i wgp2_mask_f64(ptrdiff_t w)
{
    return _mm256_cmpgt_epi64(_mm256_set1_epi64x(w < 4 ? (w > 0 ? w : 0) : 4),
                              _mm256_setr_epi64x(0, 1, 2, 3));
}

/* The sums of the lanes of a0..a3, in that order (a float or double vector of four). Each sum
 * adds its own vector's lanes in a fixed tree, whatever the others hold. */
static inline __m128 wgp2_hsum4_f32(__m256 a0, __m256 a1, __m256 a2, __m256 a3)
{
    const __m256 t = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
    return _mm_add_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps(t, 1));
}

static inline __m256d wgp2_hsum4_f64(__m256d a0, __m256d a1, __m256d a2, __m256d a3)
{
    const __m256d t0 = _mm256_hadd_pd(a0, a1), t1 = _mm256_hadd_pd(a2, a3);
    return _mm256_add_pd(_mm256_permute2f128_pd(t0, t1, 0x20),
                         _mm256_permute2f128_pd(t0, t1, 0x31));
}

/* dst[k*ldd + i] = src[i*lds + k] for i < 8 (4 in double), k < kn (<= 8 | 4): rows i >= `rows`
 * give 0 (all of them for rows <= 0). Whole blocks through an 8 x 8 (4 x 4) transpose in
 * registers, a short kn (the end of a block's tiles) element by element. */
static inline void wgt2_transpose_f32(float *restrict dst, ptrdiff_t ldd, const float *restrict src,
                                      ptrdiff_t lds, ptrdiff_t rows, ptrdiff_t kn)
{
    if (kn < 8) {
        for (ptrdiff_t k = 0; k < kn; ++k)
            for (ptrdiff_t i = 0; i < 8; ++i) dst[k * ldd + i] = i < rows ? src[i * lds + k] : 0.0f;
        return;
    }
    __m256 r[8], t[8], u[8];
    for (int i = 0; i < 8; ++i)
        r[i] = i < rows ? _mm256_loadu_ps(src + i * lds) : _mm256_setzero_ps();
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);       /* r_i0 r_j0 r_i1 r_j1 | 4 5 */
        t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);   /* r_i2 r_j2 r_i3 r_j3 | 6 7 */
    }
    for (int i = 0; i < 8; i += 4) {
        u[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);       /* column 0 | 4 of 4 rows */
        u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);   /* 1 | 5 */
        u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);   /* 2 | 6 */
        u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);   /* 3 | 7 */
    }
    for (int k = 0; k < 4; ++k) {
        _mm256_storeu_ps(dst + k * ldd, _mm256_permute2f128_ps(u[k], u[k + 4], 0x20));
        _mm256_storeu_ps(dst + (k + 4) * ldd, _mm256_permute2f128_ps(u[k], u[k + 4], 0x31));
    }
}

static inline void wgt2_transpose_f64(double *restrict dst, ptrdiff_t ldd,
                                      const double *restrict src, ptrdiff_t lds, ptrdiff_t rows,
                                      ptrdiff_t kn)
{
    if (kn < 4) {
        for (ptrdiff_t k = 0; k < kn; ++k)
            for (ptrdiff_t i = 0; i < 4; ++i) dst[k * ldd + i] = i < rows ? src[i * lds + k] : 0.0;
        return;
    }
    __m256d r[4];
    for (int i = 0; i < 4; ++i)
        r[i] = i < rows ? _mm256_loadu_pd(src + i * lds) : _mm256_setzero_pd();
    const __m256d t0 = _mm256_unpacklo_pd(r[0], r[1]), t1 = _mm256_unpackhi_pd(r[0], r[1]);
    const __m256d t2 = _mm256_unpacklo_pd(r[2], r[3]), t3 = _mm256_unpackhi_pd(r[2], r[3]);
    _mm256_storeu_pd(dst, _mm256_permute2f128_pd(t0, t2, 0x20));
    _mm256_storeu_pd(dst + ldd, _mm256_permute2f128_pd(t1, t3, 0x20));
    _mm256_storeu_pd(dst + 2 * ldd, _mm256_permute2f128_pd(t0, t2, 0x31));
    _mm256_storeu_pd(dst + 3 * ldd, _mm256_permute2f128_pd(t1, t3, 0x31));
}

#define WGD2_R 3        /* the weight gradient's register block: 3 rows of A by 4 of B */
#define WGD2_C 4
/* Its widest B and shortest blocks of tiles: past 64 input channels and on blocks under 48
 * tiles (where C + OC >= 72: the lane sums then outweigh the dot products), BLAS. AVX2 float,
 * 1 thread, fwd + bwd against BLAS there: 16->16 0.86, 32->32 0.92 (blocks of 112 and 48
 * tiles); 32->64 1.08, 64->64 1.09 (blocks of 32). */
#define WGD2_MAX_N 64
#define WGD2_MIN_K 48

#define WG2_REAL float
#define WG2_V __m256
#define WG2_L 8
#define WG2_LOADU _mm256_loadu_ps
#define WG2_MASKLOAD _mm256_maskload_ps
#define WG2_STOREU _mm256_storeu_ps
#define WG2_BROADCAST _mm256_broadcast_ss
#define WG2_HSUM4 wgp2_hsum4_f32
#define WG2_STORE4 _mm_storeu_ps
#define WG2_FMA _mm256_fmadd_ps
#define WG2_ZERO _mm256_setzero_ps
#define WG2_TRANSPOSE wgt2_transpose_f32
#define WG2(name) name##_f32
#include "wg_gemm_avx2_impl.h"

#define WG2_REAL double
#define WG2_V __m256d
#define WG2_L 4
#define WG2_LOADU _mm256_loadu_pd
#define WG2_MASKLOAD _mm256_maskload_pd
#define WG2_STOREU _mm256_storeu_pd
#define WG2_BROADCAST _mm256_broadcast_sd
#define WG2_HSUM4 wgp2_hsum4_f64
#define WG2_STORE4 _mm256_storeu_pd
#define WG2_FMA _mm256_fmadd_pd
#define WG2_ZERO _mm256_setzero_pd
#define WG2_TRANSPOSE wgt2_transpose_f64
#define WG2(name) name##_f64
#include "wg_gemm_avx2_impl.h"

#endif /* FASTCNN_WG_GEMM_AVX2_H */
