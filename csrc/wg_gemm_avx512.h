/* wg_gemm_avx512.h: the GEMM of the Winograd planes, C (rows, n) = A (rows, K) B (K, n), in
 * AVX-512 float, for an A (the transformed filters) that the filter transform wrote already
 * packed. Included by winograd6_variants.h in its AVX-512 copy only.
 *
 * Why not BLAS: per block of tiles each of the 36 planes is one GEMM with n = the block's tiles
 * (<= 128) while A is the whole (OC, C) plane. OpenBLAS packs A afresh on every call and then
 * reads the packed copy once: on AlexNet's 384->384 (13x13, batch 8) that packing was 14.6% of
 * the forward at 2 threads (memory-bound: both threads stream all 36*OC*C filters through it).
 * Here A is packed once per call by the filter transform, and B (a transformed-data plane,
 * (K, n) with rows ldb apart, in L2) is read as it is.
 *
 * Packed A: panels of WGP_R rows, panel after panel; within one, k-major: the rb <= WGP_R
 * values of column k of the panel's rows are contiguous. The kernel keeps a panel's rb x 32
 * block of C in 2*rb registers, broadcasting A and loading two vectors of a row of B per k. */
#ifndef FASTCNN_WG_GEMM_AVX512_H
#define FASTCNN_WG_GEMM_AVX512_H

#include <immintrin.h>
#include <stddef.h>

#define WGP_R 12   /* rows per panel: 24 accumulators + 2 rows of B of the 32 vector registers */

/* C[r][0..16*nv) (masked by m0, m1) = sum_k A[k*rb + r] B[k][0..16*nv) for r < rb; rb and nv
 * (1 or 2 vectors of columns) are constants after inlining. */
static inline __attribute__((always_inline)) void
wgp_kernel(float *restrict c, ptrdiff_t ldc, const float *restrict a, const float *restrict b,
           ptrdiff_t ldb, ptrdiff_t K, const int rb, const int nv, __mmask16 m0, __mmask16 m1)
{
    __m512 c0[WGP_R], c1[WGP_R];
    for (int r = 0; r < rb; ++r) c0[r] = c1[r] = _mm512_setzero_ps();
    for (ptrdiff_t k = 0; k < K; ++k, a += rb, b += ldb) {
        const __m512 b0 = _mm512_maskz_loadu_ps(m0, b);
        const __m512 b1 = nv == 2 ? _mm512_maskz_loadu_ps(m1, b + 16) : b0;
        for (int r = 0; r < rb; ++r) {
            const __m512 av = _mm512_set1_ps(a[r]);
            c0[r] = _mm512_fmadd_ps(av, b0, c0[r]);
            if (nv == 2) c1[r] = _mm512_fmadd_ps(av, b1, c1[r]);
        }
    }
    for (int r = 0; r < rb; ++r) {
        _mm512_mask_storeu_ps(c + r * ldc, m0, c0[r]);
        if (nv == 2) _mm512_mask_storeu_ps(c + r * ldc + 16, m1, c1[r]);
    }
}

/* C (rows, n), rows ldc apart, = A (rows, K) packed in panels of WGP_R rows times B (K, n), rows
 * ldb apart. Panel by panel, so a panel (K*WGP_R, 18 KB for K = 384) is read from memory once
 * and again from L1/L2 for the next 32 columns; a last run of at most 16 columns takes the
 * one-vector kernel (on blocks of 48 tiles, two vectors there wasted a third of the FMAs). */
static void wgp_gemm(float *restrict c, ptrdiff_t ldc, const float *restrict ap,
                     const float *restrict b, ptrdiff_t ldb, ptrdiff_t rows, ptrdiff_t K,
                     ptrdiff_t n)
{
    for (ptrdiff_t p0 = 0; p0 < rows; p0 += WGP_R) {
        const int rb = rows - p0 < WGP_R ? (int)(rows - p0) : WGP_R;
        const float *a = ap + p0 * K;
        for (ptrdiff_t j = 0; j < n; j += 32) {
            const ptrdiff_t w = n - j < 32 ? n - j : 32;
            const __mmask16 m0 = w >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << w) - 1);
            const __mmask16 m1 = w >= 32   ? (__mmask16)0xFFFF
                                 : w > 16 ? (__mmask16)((1u << (w - 16)) - 1)
                                          : (__mmask16)0;
            float *cj = c + p0 * ldc + j;
            const float *bj = b + j;
            if (w > 16) {
                switch (rb) {   /* one unrolled kernel per panel height */
#define WGP_CASE(R_) \
    case R_: wgp_kernel(cj, ldc, a, bj, ldb, K, R_, 2, m0, m1); break;
                    WGP_CASE(12) WGP_CASE(11) WGP_CASE(10) WGP_CASE(9) WGP_CASE(8) WGP_CASE(7)
                    WGP_CASE(6) WGP_CASE(5) WGP_CASE(4) WGP_CASE(3) WGP_CASE(2) WGP_CASE(1)
#undef WGP_CASE
                }
            } else {
                switch (rb) {
#define WGP_CASE(R_) \
    case R_: wgp_kernel(cj, ldc, a, bj, ldb, K, R_, 1, m0, 0); break;
                    WGP_CASE(12) WGP_CASE(11) WGP_CASE(10) WGP_CASE(9) WGP_CASE(8) WGP_CASE(7)
                    WGP_CASE(6) WGP_CASE(5) WGP_CASE(4) WGP_CASE(3) WGP_CASE(2) WGP_CASE(1)
#undef WGP_CASE
                }
            }
        }
    }
}

#endif /* FASTCNN_WG_GEMM_AVX512_H */
