/* wg_gemm_avx512.h: the GEMMs of the Winograd planes in AVX-512 float: C (rows, n) = A (rows, K)
 * B (K, n) for an A (the transformed filters) that the filter transform wrote already packed
 * (wgp_gemm), and the weight gradient's C (+)= A B^T over the tiles (wgt_gemm, at the end).
 * Included by winograd6_variants.h in its AVX-512 copy only.
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
#define WGT_MAX_N 64     /* wgt_gemm's widest C and fewest rows: outside them, OpenBLAS */
#define WGT_MIN_ROWS 32  /* (see winograd6_impl.h) */

/* C[r][0..16*nv) (masked by m0, m1) (+)= sum_k A[r*ar + k*ak] B[k][0..16*nv) for r < rb (added
 * to C when acc); rb, nv, ar, ak and acc are constants after inlining (packed A: ar = 1, ak = rb). */
static inline __attribute__((always_inline)) void
wgp_kernel(float *restrict c, ptrdiff_t ldc, const float *restrict a, const float *restrict b,
           ptrdiff_t ldb, ptrdiff_t K, const int rb, const int nv, __mmask16 m0, __mmask16 m1,
           const ptrdiff_t ar, const ptrdiff_t ak, const int acc)
{
    __m512 c0[WGP_R], c1[WGP_R];
    for (int r = 0; r < rb; ++r) c0[r] = c1[r] = _mm512_setzero_ps();
    for (ptrdiff_t k = 0; k < K; ++k, a += ak, b += ldb) {
        const __m512 b0 = _mm512_maskz_loadu_ps(m0, b);
        const __m512 b1 = nv == 2 ? _mm512_maskz_loadu_ps(m1, b + 16) : b0;
        for (int r = 0; r < rb; ++r) {
            const __m512 av = _mm512_set1_ps(a[r * ar]);
            c0[r] = _mm512_fmadd_ps(av, b0, c0[r]);
            if (nv == 2) c1[r] = _mm512_fmadd_ps(av, b1, c1[r]);
        }
    }
    for (int r = 0; r < rb; ++r) {
        float *cr = c + r * ldc;
        if (acc) c0[r] = _mm512_add_ps(_mm512_maskz_loadu_ps(m0, cr), c0[r]);
        _mm512_mask_storeu_ps(cr, m0, c0[r]);
        if (nv == 2) {
            if (acc) c1[r] = _mm512_add_ps(_mm512_maskz_loadu_ps(m1, cr + 16), c1[r]);
            _mm512_mask_storeu_ps(cr + 16, m1, c1[r]);
        }
    }
}

/* The first min(max(w, 0), 16) lanes. */
static inline __mmask16 wgp_mask(ptrdiff_t w)
{
    return w >= 16 ? (__mmask16)0xFFFF : w > 0 ? (__mmask16)((1u << w) - 1) : (__mmask16)0;
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
            const __mmask16 m0 = wgp_mask(w), m1 = wgp_mask(w - 16);
            float *cj = c + p0 * ldc + j;
            const float *bj = b + j;
            if (w > 16) {
                switch (rb) {   /* one unrolled kernel per panel height */
#define WGP_CASE(R_) \
    case R_: wgp_kernel(cj, ldc, a, bj, ldb, K, R_, 2, m0, m1, 1, R_, 0); break;
                    WGP_CASE(12) WGP_CASE(11) WGP_CASE(10) WGP_CASE(9) WGP_CASE(8) WGP_CASE(7)
                    WGP_CASE(6) WGP_CASE(5) WGP_CASE(4) WGP_CASE(3) WGP_CASE(2) WGP_CASE(1)
#undef WGP_CASE
                }
            } else {
                switch (rb) {
#define WGP_CASE(R_) \
    case R_: wgp_kernel(cj, ldc, a, bj, ldb, K, R_, 1, m0, 0, 1, R_, 0); break;
                    WGP_CASE(12) WGP_CASE(11) WGP_CASE(10) WGP_CASE(9) WGP_CASE(8) WGP_CASE(7)
                    WGP_CASE(6) WGP_CASE(5) WGP_CASE(4) WGP_CASE(3) WGP_CASE(2) WGP_CASE(1)
#undef WGP_CASE
                }
            }
        }
    }
}

/* dst[k*ldd + i] = src[i*lds + k] for i < rows (<= 16; the other lanes 0), k < kn (<= 16): a
 * 16 x 16 transpose in registers (four rounds of shuffles). */
static inline void wgt_transpose16(float *restrict dst, ptrdiff_t ldd, const float *restrict src,
                                   ptrdiff_t lds, ptrdiff_t rows, ptrdiff_t kn)
{
    const __mmask16 km = wgp_mask(kn);
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

/* The weight-gradient GEMM of the Winograd planes: C (rows, n), rows ldc apart, (+)= A (rows, K)
 * B^T (acc: added to C), A's rows lda apart and B (n, K) rows ldb apart, both with K (the
 * block's tiles) contiguous. OpenBLAS's small-matrix kernel took these (e.g. 32 x 16 x 64 per
 * plane on DeepConvNet's 16->32) at ~66 GFLOP/s, 17% of that layer. Here 32 columns of B at a
 * time are transposed in 16 x 16 blocks into bt (K*32 floats; gathers took 40% of the time), and
 * the kernel above broadcasts A in place (rows lda apart). */
static void wgt_gemm(float *restrict c, ptrdiff_t ldc, const float *restrict a, ptrdiff_t lda,
                     const float *restrict b, ptrdiff_t ldb, ptrdiff_t rows, ptrdiff_t n,
                     ptrdiff_t K, int acc, float *restrict bt)
{
    for (ptrdiff_t j = 0; j < n; j += 32) {
        const ptrdiff_t w = n - j < 32 ? n - j : 32;
        const __mmask16 m0 = wgp_mask(w), m1 = wgp_mask(w - 16);
        for (ptrdiff_t k0 = 0; k0 < K; k0 += 16) {   /* bt[k][0..w) = B[j..j+w)[k] */
            const ptrdiff_t kn = K - k0 < 16 ? K - k0 : 16;
            wgt_transpose16(bt + k0 * 32, 32, b + j * ldb + k0, ldb, w < 16 ? w : 16, kn);
            if (w > 16)
                wgt_transpose16(bt + k0 * 32 + 16, 32, b + (j + 16) * ldb + k0, ldb, w - 16, kn);
        }
        for (ptrdiff_t p0 = 0; p0 < rows; p0 += WGP_R) {
            const int rb = rows - p0 < WGP_R ? (int)(rows - p0) : WGP_R;
            float *cj = c + p0 * ldc + j;
            const float *ap = a + p0 * lda;
#define WGT_CASE(R_)                                                                          \
    case R_:                                                                                  \
        if (w > 16 && acc) wgp_kernel(cj, ldc, ap, bt, 32, K, R_, 2, m0, m1, lda, 1, 1);      \
        else if (w > 16) wgp_kernel(cj, ldc, ap, bt, 32, K, R_, 2, m0, m1, lda, 1, 0);        \
        else if (acc) wgp_kernel(cj, ldc, ap, bt, 32, K, R_, 1, m0, 0, lda, 1, 1);            \
        else wgp_kernel(cj, ldc, ap, bt, 32, K, R_, 1, m0, 0, lda, 1, 0);                     \
        break;
            switch (rb) {   /* unrolled kernels per panel height (and 1 or 2 vectors) */
                WGT_CASE(12) WGT_CASE(11) WGT_CASE(10) WGT_CASE(9) WGT_CASE(8) WGT_CASE(7)
                WGT_CASE(6) WGT_CASE(5) WGT_CASE(4) WGT_CASE(3) WGT_CASE(2) WGT_CASE(1)
            }
#undef WGT_CASE
        }
    }
}

#endif /* FASTCNN_WG_GEMM_AVX512_H */
