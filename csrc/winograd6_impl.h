/* winograd6_impl.h: type-generic body of the Winograd kernels on 6x6 input tiles (Lavin & Gray,
 * arXiv:1509.09308; interpolation points 0, 1, -1, 1/2, -2, inf), F(WG_M x WG_M, WG_R x WG_R)
 * with WG_M + WG_R - 1 = 6: F(4x4,3x3) and F(2x2,5x5). Included by winograd6.c once per (dtype,
 * variant) with REAL, FN(name), GEMM, WG_M, WG_R and the variant's 1-D transforms WG_AT (6 -> M),
 * WG_A (its adjoint, M -> 6), WG_G (R -> 6) and WG_GT (6 -> R) defined; B^T depends only on the
 * points and is here. Each transform macro reads its inputs p[0], p[s], p[2s], ... and writes
 * o[0..].
 * y = A^T [(G g G^T) .* (B^T d B)] A per 6x6 input tile d and MxM output tile; the elementwise
 * product over channels is 36 GEMMs on planes xi = 6*row + col of (channels, tiles of a block).
 * The backward runs the adjoints in one pass: dd = B [U^T (A dy A^T)] B^T overlap-added into dx
 * and dg = G^T [(A dy A^T) .* V] G summed over tiles; only for a batch smaller than the thread
 * count (on a layer whose threads split tiles, not channels: wg6_split_channels) is
 * backward-data this forward run on dy with the flipped, transposed kernel (a stride-1
 * convolution's adjoint is one). In AVX-512 the 36 GEMMs with the transformed filters run on
 * wg_gemm_avx512.h's kernel, so do the weight-gradient ones on 16 to 64 input channels; in
 * AVX-512 float on maps at most 16 wide the transforms take 16-tile groups across tile rows
 * (the narrow ones). In float F(4x4) AVX2 and AVX-512 gather rows in runs of 8 tiles
 * (winograd6_avx2_rows.h, WG6_ROWS8). */
#include "wg_segments.h"

#ifndef WG6_BT
/* B^T (6x6) on p[0], p[s], ..., p[5s]. Lavin's points 0, +-1, +-2 give float32 errors twice
 * as large (measured for F(4x4,3x3): 5e-6 vs 2.5e-6 of the output range over 128 channels,
 * 1.7e-5 vs < 1e-5 over 384), the choice Barabasz et al. (2018) recommend. */
#define WG6_BT_T(T, o, p, s)  /* T: the element type (REAL, or a GCC vector of them) */        \
    do {                                                                                      \
        const T d0 = (p)[0], d1 = (p)[(s)], d2 = (p)[2 * (s)], d3 = (p)[3 * (s)];             \
        const T d4 = (p)[4 * (s)], d5 = (p)[5 * (s)];                                         \
        o[0] = d0 + (REAL)1.5 * (d3 - d1) - (REAL)2 * d2 + d4;                                \
        o[1] = (REAL)0.5 * d2 + (REAL)2.5 * d3 + d4 - d1;                                     \
        o[2] = d1 - (REAL)2.5 * d2 + (REAL)0.5 * d3 + d4;                                     \
        o[3] = (REAL)2 * (d3 - d1) - d2 + d4;                                                 \
        o[4] = (REAL)0.5 * (d1 - d3) - d2 + d4;                                               \
        o[5] = d1 + (REAL)1.5 * (d4 - d2) - (REAL)2 * d3 + d5;                                \
    } while (0)
#define WG6_BT(o, p, s) WG6_BT_T(REAL, o, p, s)
/* B (6x6), the adjoint of B^T, for backward-data: column i of B^T above is row i here. */
#define WG6_B(o, p, s)                                                                        \
    do {                                                                                      \
        const WG_ELEM(p) e0 = (p)[0], e1 = (p)[(s)], e2 = (p)[2 * (s)], e3 = (p)[3 * (s)];    \
        const WG_ELEM(p) e4 = (p)[4 * (s)], e5 = (p)[5 * (s)];                                \
        o[0] = e0;                                                                            \
        o[1] = e2 - e1 + e5 + (REAL)0.5 * e4 - (REAL)1.5 * e0 - (REAL)2 * e3;                 \
        o[2] = (REAL)0.5 * e1 - (REAL)2 * e0 - (REAL)2.5 * e2 - e3 - e4 - (REAL)1.5 * e5;     \
        o[3] = (REAL)1.5 * e0 + (REAL)2.5 * e1 + (REAL)0.5 * e2 + (REAL)2 * e3                \
               - (REAL)0.5 * e4 - (REAL)2 * e5;                                               \
        o[4] = e0 + e1 + e2 + e3 + e4 + (REAL)1.5 * e5;                                       \
        o[5] = e5;                                                                            \
    } while (0)
#endif

#define WG_MM (WG_M * WG_M)

/* Prefetch the two cache lines from address `at` (an integer or a pointer) plus `plane`
 * elements: the row the gathers below read next, one channel on. Each channel's rows are a
 * stream of their own that the hardware prefetchers pick up only after its first misses. In the
 * input and gradient gathers, against none (float32, alternating processes, 1 | 2 threads):
 * fwd 0.91 | 0.90 and weight gradient 0.84 | 0.84 on DeepConvNet's 16->16 (28x28), weight
 * gradient 0.81 | 0.81 on 3->64 (32x32); on narrow maps weight gradient 0.88-0.91 | 0.89-0.91,
 * fwd 0.92-0.97 (64->128 on 16x16, 32->64 on 14x14, 128->192 on 7x7); AlexNet's 13x13 at
 * batch 8 even. Double, 1 thread (the
 * scalar gathers): 16->16 fwd 0.93, weight gradient 0.89; 3->64 0.98, 0.92. In the output
 * transforms (the next channel's rows of y) the forward again 0.90-0.96 | 0.91-0.98; not in the
 * dx scatters (even). */
#define WG6_PREFETCH_NEXT(at, plane)                                                          \
    do {                                                                                      \
        const uintptr_t nx_ = (uintptr_t)(at) + (uintptr_t)((plane) * (ptrdiff_t)sizeof(REAL)); \
        __builtin_prefetch((const void *)nx_);                                                \
        __builtin_prefetch((const void *)(nx_ + 64));                                         \
    } while (0)
/* Every line of the `cells` elements from `at`, one channel on: in double two lines are 16
 * cells, a quarter of a 56-wide row, and the gradient gather waited on the rest (perf). */
#define WG6_PREFETCH_SPAN(at, plane, cells)                                                   \
    do {                                                                                      \
        const uintptr_t nx_ = (uintptr_t)(at) + (uintptr_t)((plane) * (ptrdiff_t)sizeof(REAL)); \
        const uintptr_t end_ = nx_ + (uintptr_t)((cells) * (ptrdiff_t)sizeof(REAL));          \
        for (uintptr_t a_ = nx_ & ~(uintptr_t)63; a_ < end_; a_ += 64)                        \
            __builtin_prefetch((const void *)a_);                                             \
    } while (0)

/* C (rows, n), rows ldc apart, = A (rows, K) B (K, n), rows ldb apart, for A a plane of the
 * filter transform: in AVX-512 the packed-panel GEMM of wg_gemm_avx512.h (A packed in panels of
 * WGP_R rows), in AVX2 wg_gemm_avx2.h's on the same panels, elsewhere BLAS on plain row-major
 * A. WG_GEMM(name): its float or double copy. */
/* Rows per BLAS call where the threads split a GEMM's rows (see WG6_PLANE_GEMM below): each call
 * packs its whole B again, so the fewer the better, as long as two threads still get equal
 * shares of 256 and 384 rows. 64 instead of 32, AlexNet's 13x13 layers at batch 8, 2 threads,
 * fwd+bwd: AVX2 (the weight gradient's GEMMs, where OpenBLAS's packing of V had been 14% of
 * the time) 0.93 of the time in float, 0.98 in double; portable 0.88. */
#define WG6_BLAS_ROWS 64
#if defined(FC_ISA_AVX512)
#ifdef WG_F32
#define WG_GEMM(name) name##_f32
#else
#define WG_GEMM(name) name##_f64
#endif
#define WG6_PACK WGP_R
#define WG6_SPLIT WGP_R
#define WG6_PLANE_GEMM(c, ldc, a, b, ldb, rows, K, n, split)                                  \
    WG_GEMM(wgp_gemm)(c, ldc, a, b, ldb, rows, K, n)
#elif defined(FC_ISA_AVX2)
/* its AVX2 twin (wg_gemm_avx2.h), on the same packing */
#ifdef WG_F32
#define WG_GEMM(name) name##_f32
#else
#define WG_GEMM(name) name##_f64
#endif
#define WG6_PACK WGP2_R
#define WG6_SPLIT WGP2_R
#define WG6_PLANE_GEMM(c, ldc, a, b, ldb, rows, K, n, split)                                  \
    WG_GEMM(wgp2_gemm)(c, ldc, a, b, ldb, rows, K, n)
#else
/* BLAS rounds a row by the height of the block it comes in (OpenBLAS's Haswell kernels): where
 * the threads split the rows (`split`), they split them at multiples of WG6_SPLIT and each call
 * covers at most that many rows, so every row meets the same call whatever the thread count
 * (wgp_gemm sums each row in the same order however the rows are split). Only there: repacking
 * B per 32 rows made 384->384 (13x13, batch 8) 1.3x slower than one call. */
#define WG6_PACK 1
#define WG6_SPLIT WG6_BLAS_ROWS
#define WG6_PLANE_GEMM(c, ldc, a, b, ldb, rows, K, n, split)                                  \
    do {                                                                                      \
        const ptrdiff_t step_ = (split) ? WG6_SPLIT : (rows);                                 \
        for (ptrdiff_t r0_ = 0; r0_ < (rows); r0_ += step_) {                                 \
            const ptrdiff_t m_ = (rows) - r0_ < step_ ? (rows) - r0_ : step_;                 \
            GEMM(0, 0, m_, n, K, (REAL)1, (a) + r0_ * (K), K, b, ldb, (REAL)0,                \
                 (c) + r0_ * (ldc), ldc);                                                     \
        }                                                                                     \
    } while (0)
#endif

/* The 36 planes U[xi] = (G g G^T)[xi] of the filters g = w[oc][c] of w (OC, C, R, R), each plane
 * an (OC, C) matrix or with `transposed` its transpose (C, OC), for backward-data's dV = U^T dY^,
 * stored as WG6_PLANE_GEMM reads it (packed in panels of WG6_PACK rows). Chunk by chunk, as
 * winograd_impl.h's (same reason), walking the destinations in order; this call does share
 * `part` of `parts` of the chunks, so that the threads split it on wide layers. */
static void FN(wg6_weight_transform)(REAL *restrict U, const REAL *restrict w, ptrdiff_t OC,
                                     ptrdiff_t C, int transposed, int part, int parts)
{
    /* chunks of whole groups of WG6_PACK destinations (a column of a full panel) */
    enum { CH = WG_WCHUNK / WG6_PACK * WG6_PACK };
    const ptrdiff_t plane = OC * C, chunks = (plane + CH - 1) / CH;
    const ptrdiff_t rows = transposed ? C : OC, K = transposed ? OC : C;
    REAL g[WG_R * WG_R][WG_WCHUNK], u[36][WG_WCHUNK];
    for (ptrdiff_t k0 = chunks * part / parts; k0 < chunks * (part + 1) / parts; ++k0) {
        const ptrdiff_t q0 = k0 * CH;
        const ptrdiff_t n = plane - q0 < CH ? plane - q0 : CH;
        ptrdiff_t row, k;
        wgp_locate(q0, rows, K, WG6_PACK, &row, &k);
        for (ptrdiff_t j = 0; j < n;) {
#if defined(FC_ISA_AVX512) && defined(WG_F32) && WG_R == 3
            /* a full panel's column k: the 9 taps of its 12 filters, rows 9 (transposed: rows of
             * w's row k, consecutive filters) or 9*C apart, transposed into g in registers
             * (one by one these were 9 scalar loads and stores a filter, 2/3 of the transform's
             * compute); its 16-lane stores end within g's rows (j + 16 <= CH + 4 <= WG_WCHUNK) */
            _Static_assert(CH - WG6_PACK + 16 <= WG_WCHUNK, "the transposes' stores fit g");
            if (row % WG6_PACK == 0 && rows - row >= WG6_PACK && n - j >= WG6_PACK) {
                const REAL *src = transposed ? w + (k * C + row) * 9 : w + (row * C + k) * 9;
                wgt_transpose_f32(&g[0][j], WG_WCHUNK, src, transposed ? 9 : 9 * C, WG6_PACK, 9);
                j += WG6_PACK;
                if (++k == K) {
                    k = 0;
                    row += WG6_PACK;
                }
                continue;
            }
#endif
            const ptrdiff_t src = transposed ? k * C + row : row * C + k;   /* w[oc][c] */
            for (int i = 0; i < WG_R * WG_R; ++i) g[i][j] = w[src * WG_R * WG_R + i];
            ++j;
            wgp_next(&row, &k, rows, K, WG6_PACK);
        }
#pragma omp simd
        for (ptrdiff_t j = 0; j < n; ++j) {
            REAL t[6][WG_R], col[6], r[WG_R], o[6];
            for (int k = 0; k < WG_R; ++k) {   /* G g: column k */
                for (int i = 0; i < WG_R; ++i) r[i] = g[i * WG_R + k][j];
                WG_G(col, r, 1);
                for (int i = 0; i < 6; ++i) t[i][k] = col[i];
            }
            for (int i = 0; i < 6; ++i) {      /* (G g) G^T: row i */
                WG_G(o, t[i], 1);
                for (int k = 0; k < 6; ++k) u[i * 6 + k][j] = o[k];
            }
        }
        for (int xi = 0; xi < 36; ++xi) memcpy(U + xi * plane + q0, u[xi], n * sizeof(REAL));
    }
}

/* dw_q = G^T dU_q G for the chunk of filters [q0, q0 + n), n <= WG_WCHUNK, from the partial dU
 * of nparts threads (36 planes each, part apart) summed in thread order (deterministic). */
static void FN(wg6_weight_adjoint)(REAL *restrict dw, const REAL *restrict dU, ptrdiff_t plane,
                                   int nparts, ptrdiff_t part, ptrdiff_t q0, ptrdiff_t n)
{
    REAL x[36][WG_WCHUNK], g[WG_R * WG_R][WG_WCHUNK];
    WG_SUM_PARTIALS(x, 36, dU, plane, nparts, part, q0, n);
#pragma omp simd
    for (ptrdiff_t j = 0; j < n; ++j) {
        REAL Z[WG_R][6], c6[6], col[WG_R], o[WG_R];
        for (int k = 0; k < 6; ++k) {   /* G^T X: column k */
            for (int i = 0; i < 6; ++i) c6[i] = x[i * 6 + k][j];
            WG_GT(col, c6, 1);
            for (int i = 0; i < WG_R; ++i) Z[i][k] = col[i];
        }
        for (int i = 0; i < WG_R; ++i) {   /* (G^T X) G: row i */
            WG_GT(o, Z[i], 1);
            for (int k = 0; k < WG_R; ++k) g[i * WG_R + k][j] = o[k];
        }
    }
    for (ptrdiff_t j = 0; j < n; ++j)
        for (int k = 0; k < WG_R * WG_R; ++k) dw[(q0 + j) * WG_R * WG_R + k] = g[k][j];
}

/* The transforms below run over whole blocks of tiles, one 1-D transform per loop over the
 * block's tiles j (contiguous planes of Tb in the scratch rb): short, independent loop bodies the
 * compiler vectorises whatever the image width. (Transforming tile row segments directly from x
 * left 14x14 images with 4-tile segments: scalar code, twice the time.) */

#if defined(FC_ISA_AVX512) && !defined(WG6_RUN_CELLS)
#define WG6_RUN_CELLS
/* The cells of a run of `span` < 64 input columns from column s that lie inside a row of W:
 * bit c for column s + c (the AVX-512 gathers' load mask; the others, padding, load as 0). */
static inline uint64_t wg6_run_cells(ptrdiff_t s, ptrdiff_t span, ptrdiff_t W)
{
    const ptrdiff_t e0 = s < 0 ? -s : 0, e1 = W - s < span ? W - s : span;
    if (e1 <= e0) return 0;
    return ((UINT64_C(1) << e1) - 1) & ~((UINT64_C(1) << e0) - 1);
}
#endif

#if defined(FC_ISA_AVX512) && defined(WG_F32)
/* The AVX-512 form of wg6_gather_segment (float): the scalar one stored the 36 cells of a tile
 * one by one, 6 to each of 6 planes: 60% of the input transform, itself ~20% of a DeepConvNet
 * step (perf, 1 thread).
 * Here a run of up to G tiles of one input row is one masked load of the 6 + M*(G-1) cells it
 * spans (cells outside the plane masked off: they load as the padding's 0), and column k of
 * every tile is a two-register permute (lane j <- cell M*j + k); unlike the scalar gather it
 * stores the rows transformed, P[r*6 + k] = (d B)[r][k], with a len-lane mask. */
static void FN(wg6_gather_avx512)(REAL *restrict P, ptrdiff_t Tb, const REAL *restrict xc,
                                  ptrdiff_t H, ptrdiff_t W, ptrdiff_t ih0, ptrdiff_t iw0,
                                  ptrdiff_t len)
{
    enum { G = (32 - 6) / WG_M + 1 < 16 ? (32 - 6) / WG_M + 1 : 16 };   /* 7 for M=4, 14 for M=2 */
    /* lane j of column k takes cell M*j + k (lanes >= G wrap mod 32 and are never stored);
     * constants the compiler folds, not a table built per call */
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512i cell0 = _mm512_mullo_epi32(lane, _mm512_set1_epi32(WG_M));
    __m512i perm[6];
    for (int k = 0; k < 6; ++k) perm[k] = _mm512_add_epi32(cell0, _mm512_set1_epi32(k));
    for (ptrdiff_t j0 = 0; j0 < len; j0 += G) {
        const ptrdiff_t n = len - j0 < G ? len - j0 : G;
        const ptrdiff_t s = iw0 + WG_M * j0;              /* first input column of the run */
        const uint64_t cells = wg6_run_cells(s, WG_M * (n - 1) + 6, W);
        const __mmask16 out = (__mmask16)((1u << n) - 1);
        for (int r = 0; r < 6; ++r) {
            const ptrdiff_t ih = ih0 + r;
            REAL *p = P + (r * 6) * Tb + j0;
            __m512 lo = _mm512_setzero_ps(), hi = _mm512_setzero_ps();
            if (ih >= 0 && ih < H && cells) {
                /* masked-off lanes are not read, so the run may start before the row or end
                 * past the plane; its address is formed as an integer (no out-of-bounds pointer) */
                const uintptr_t src =
                    (uintptr_t)(xc + ih * W) + (uintptr_t)(s * (ptrdiff_t)sizeof(REAL));
                lo = _mm512_maskz_loadu_ps((__mmask16)(cells & 0xFFFF), (const void *)src);
                hi = _mm512_maskz_loadu_ps((__mmask16)(cells >> 16),
                                           (const void *)(src + 16 * sizeof(REAL)));
                WG6_PREFETCH_NEXT(src, H * W);
            }
            /* d B: row r of every tile transformed while in registers, which saves the
             * input transform one pass over the block's planes */
            __m512 col[6], o[6];
            for (int k = 0; k < 6; ++k) col[k] = _mm512_permutex2var_ps(lo, perm[k], hi);
            WG6_BT_T(__m512, o, col, 1);
            for (int k = 0; k < 6; ++k) _mm512_mask_storeu_ps(p + k * Tb, out, o[k]);
        }
    }
}

/* Lane constants of the row gathers and scatters below: GT tiles of M cells span 32 (two
 * registers); `lane` counts 0..15. */
#define WG6_GT (32 / WG_M)
#define WG6_LANES _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)

/* z[k*Tb + j] = src[M*j + k] for the len tiles j of one output row segment, cells at or past cnt
 * being 0 (the output's right edge): the AVX-512 form of wg6_grad_block's scalar gather, which
 * was a third of a 16->32 weight gradient (perf, 14x14 maps). A run of up to GT tiles is one
 * masked load of its 32 cells, and column k of every tile one permute (lane j <- cell M*j + k). */
static void FN(wg6_row_gather_avx512)(REAL *restrict z, ptrdiff_t Tb, const REAL *restrict src,
                                      ptrdiff_t cnt, ptrdiff_t len)
{
    const __m512i cell0 = _mm512_mullo_epi32(WG6_LANES, _mm512_set1_epi32(WG_M));
    for (ptrdiff_t j0 = 0; j0 < len; j0 += WG6_GT) {
        const ptrdiff_t n = len - j0 < WG6_GT ? len - j0 : WG6_GT;
        ptrdiff_t cells = cnt - WG_M * j0;
        cells = cells < 0 ? 0 : cells > 32 ? 32 : cells;
        const uint64_t in = (UINT64_C(1) << cells) - 1;
        /* masked-off lanes are not read: the address is formed as an integer, as in the gather */
        const uintptr_t at = (uintptr_t)src + (uintptr_t)(WG_M * j0 * (ptrdiff_t)sizeof(REAL));
        const __m512 lo = _mm512_maskz_loadu_ps((__mmask16)(in & 0xFFFF), (const void *)at);
        const __m512 hi = _mm512_maskz_loadu_ps((__mmask16)(in >> 16),
                                                (const void *)(at + 16 * sizeof(REAL)));
        const __mmask16 out = (__mmask16)((1u << n) - 1);
        for (int k = 0; k < WG_M; ++k)
            _mm512_mask_storeu_ps(z + k * Tb + j0, out,
                                  _mm512_permutex2var_ps(lo, _mm512_add_epi32(cell0,
                                                         _mm512_set1_epi32(k)), hi));
    }
}

/* The float vocabulary of the row scatters below (winograd6_avx512_f64.h has the double one):
 * the vector, its lanes and mask, and the few operations they use. */
#define WG6V __m512
#define WG6V_LANES 16
#define WG6V_MASK __mmask16
#define WG6V_ZERO() _mm512_setzero_ps()
#define WG6V_ADD(a, b) _mm512_add_ps(a, b)
#define WG6V_PERM(a, idx, b) _mm512_permutex2var_ps(a, idx, b)
#define WG6V_LOADZ(m, p) _mm512_maskz_loadu_ps(m, p)
#define WG6V_STORE(p, m, v) _mm512_mask_storeu_ps(p, m, v)
#define WG6V_IDX_PLUS(idx, k) _mm512_add_epi32(idx, _mm512_set1_epi32(k))
#define WG6V_HALF_LOADZ(m, p) _mm256_maskz_loadu_ps(m, p)   /* half a vector */
#define WG6V_JOIN(lo, hi) _mm512_insertf32x8(_mm512_castps256_ps512(lo), hi, 1)

/* For the scatters below: lane l of a 16-cell output vector is tile l/M, column l%M, which two
 * sources of GT tiles per column (planes side by side) hold at lane (l%M)*GT + l/M. */
static inline __m512i FN(wg6_cell_source)(void)
{
    const __m512i lane = WG6_LANES;
    const __m512i column = _mm512_and_epi32(lane, _mm512_set1_epi32(WG_M - 1));
    return _mm512_add_epi32(_mm512_mullo_epi32(column, _mm512_set1_epi32(WG6_GT)),
                            _mm512_srli_epi32(lane, WG_M == 4 ? 2 : 1));
}

#undef WG6_LANES
#undef WG6_GT
#elif defined(FC_ISA_AVX512)
#include "winograd6_avx512_f64.h"
#endif

#if defined(FC_ISA_AVX512)
/* The row scatters of both dtypes, on the vocabulary above: a run is two vectors of cells, RUN =
 * 2*LANES (32 floats, 16 doubles), whose GT = RUN/M tiles' planes are two sources a and b
 * (wg6_sources below); cell l (tile l/M, column l%M) is lane wg6_cell_source()[l] of them, the
 * second vector's cells LANES/M tiles on. */

/* The two sources of a run's tiles `tm` (bit t: tile t of the run) from the integer address
 * `at` (plane 0 of the run's first tile), planes ps bytes apart: M = 4, [p0 | p0 + 1] and
 * [p0 + 2 | p0 + 3] (half a vector of tiles each; the second zero unless `four`), M = 2, p0 and
 * p0 + 1 (a vector each). Masked-off tiles are not read. */
static inline void FN(wg6_sources)(WG6V *a, WG6V *b, uintptr_t at, uintptr_t ps, int p0,
                                   unsigned tm, int four)
{
#if WG_M == 4
    const __mmask8 t = (__mmask8)tm;
    *a = WG6V_JOIN(WG6V_HALF_LOADZ(t, (const void *)(at + p0 * ps)),
                   WG6V_HALF_LOADZ(t, (const void *)(at + (p0 + 1) * ps)));
    *b = WG6V_ZERO();
    if (four)
        *b = WG6V_JOIN(WG6V_HALF_LOADZ(t, (const void *)(at + (p0 + 2) * ps)),
                       WG6V_HALF_LOADZ(t, (const void *)(at + (p0 + 3) * ps)));
#else
    (void)four;
    *a = WG6V_LOADZ((WG6V_MASK)tm, (const void *)(at + p0 * ps));
    *b = WG6V_LOADZ((WG6V_MASK)tm, (const void *)(at + (p0 + 1) * ps));
#endif
}

/* dst[M*j + k] = z[k*Tb + j] for the cnt cells of one output row segment: the AVX-512 form of
 * wg6_output_block's scalar scatter (half of that function, perf). */
static void FN(wg6_row_scatter_avx512)(REAL *restrict dst, const REAL *restrict z, ptrdiff_t Tb,
                                       ptrdiff_t cnt)
{
    enum { RUN = 2 * WG6V_LANES, GT = RUN / WG_M };
    const __m512i idx_lo = FN(wg6_cell_source)();
    const __m512i idx_hi = WG6V_IDX_PLUS(idx_lo, WG6V_LANES / WG_M);
    const uintptr_t ps = (uintptr_t)(Tb * (ptrdiff_t)sizeof(REAL));
    for (ptrdiff_t c0 = 0, j0 = 0; c0 < cnt; c0 += RUN, j0 += GT) {
        const ptrdiff_t cells = cnt - c0 < RUN ? cnt - c0 : RUN;
        const ptrdiff_t n = (cells + WG_M - 1) / WG_M;   /* tiles the run touches */
        const uint64_t out = (UINT64_C(1) << cells) - 1;
        WG6V a, b;
        FN(wg6_sources)(&a, &b, (uintptr_t)(z + j0), ps, 0, (1u << n) - 1, 1);
        WG6V_STORE(dst + c0, (WG6V_MASK)out, WG6V_PERM(a, idx_lo, b));
        if (cells > WG6V_LANES)
            WG6V_STORE(dst + c0 + WG6V_LANES, (WG6V_MASK)(out >> WG6V_LANES),
                       WG6V_PERM(a, idx_hi, b));
    }
}

/* dst[M*j + k] += Z[k][j] (Z: 6 planes Tb apart, z at tile 0) for the len tiles of one input row
 * segment, k < 6: neighbouring tiles share 6 - M columns, summed here. dst is the row at the
 * segment's first column iw0 (negative: padding) of a row of W cells; cells outside [0, W)
 * are dropped. A run is the sum of the permutes (as the scatter's) of the plane groups g = 0,
 * 1, ... (planes g*M .. g*M + M - 1, absent ones zero), group g taken g tiles back. */
static void FN(wg6_row_add_avx512)(REAL *restrict dst, ptrdiff_t iw0, ptrdiff_t W,
                                   const REAL *restrict z, ptrdiff_t Tb, ptrdiff_t len)
{
    enum { GROUPS = (6 + WG_M - 1) / WG_M, RUN = 2 * WG6V_LANES, GT = RUN / WG_M };
    const __m512i idx_lo = FN(wg6_cell_source)();
    const __m512i idx_hi = WG6V_IDX_PLUS(idx_lo, WG6V_LANES / WG_M);
    const uintptr_t ps = (uintptr_t)(Tb * (ptrdiff_t)sizeof(REAL));
    const ptrdiff_t span = WG_M * (len - 1) + 6;
    /* cells [lo, hi) of the span fall inside the row */
    const ptrdiff_t lo = iw0 < 0 ? -iw0 : 0, hi = W - iw0 < span ? W - iw0 : span;
    for (ptrdiff_t c0 = 0, j0 = 0; c0 < span; c0 += RUN, j0 += GT) {
        WG6V acc_lo = WG6V_ZERO(), acc_hi = WG6V_ZERO();
        for (int g = 0; g < GROUPS; ++g) {
            /* tiles j0 - g + t, t < GT, that exist */
            const ptrdiff_t first = j0 - g;
            const ptrdiff_t t0 = first < 0 ? -first : 0;
            const ptrdiff_t t1 = len - first < GT ? len - first : GT;
            if (t1 <= t0) continue;
            const unsigned tm = ((1u << t1) - 1) & ~((1u << t0) - 1);
            WG6V a, b;
            /* the address as an integer: the run may start before z (masked off, not read) */
            FN(wg6_sources)(&a, &b,
                            (uintptr_t)z + (uintptr_t)(first * (ptrdiff_t)sizeof(REAL)), ps,
                            WG_M * g, tm, WG_M * g + 4 <= 6);
            acc_lo = WG6V_ADD(acc_lo, WG6V_PERM(a, idx_lo, b));
            acc_hi = WG6V_ADD(acc_hi, WG6V_PERM(a, idx_hi, b));
        }
        /* cells c0 + l inside [lo, hi) */
        const ptrdiff_t a0 = lo - c0 < 0 ? 0 : lo - c0 > RUN ? RUN : lo - c0;
        const ptrdiff_t a1 = hi - c0 < 0 ? 0 : hi - c0 > RUN ? RUN : hi - c0;
        if (a1 <= a0) continue;
        const uint64_t cells = ((UINT64_C(1) << a1) - 1) & ~((UINT64_C(1) << a0) - 1);
        const WG6V_MASK m_lo = (WG6V_MASK)cells, m_hi = (WG6V_MASK)(cells >> WG6V_LANES);
        const uintptr_t d = (uintptr_t)dst + (uintptr_t)((iw0 + c0) * (ptrdiff_t)sizeof(REAL));
        REAL *d_lo = (REAL *)d, *d_hi = (REAL *)(d + WG6V_LANES * sizeof(REAL));
        if (m_lo) WG6V_STORE(d_lo, m_lo, WG6V_ADD(WG6V_LOADZ(m_lo, d_lo), acc_lo));
        if (m_hi) WG6V_STORE(d_hi, m_hi, WG6V_ADD(WG6V_LOADZ(m_hi, d_hi), acc_hi));
    }
}
#undef WG6V
#undef WG6V_LANES
#undef WG6V_MASK
#undef WG6V_ZERO
#undef WG6V_ADD
#undef WG6V_PERM
#undef WG6V_LOADZ
#undef WG6V_STORE
#undef WG6V_IDX_PLUS
#undef WG6V_HALF_LOADZ
#undef WG6V_JOIN
#endif

/* Float F(4x4,3x3) in AVX2 and AVX-512: the gathers of winograd6_avx2_rows.h (runs of 8 tiles,
 * of one row or two), in AVX2 on rows of at least WG6_ROWS8_MIN_TW tiles; in AVX-512 the
 * input's on rows of 8 tiles or more (maps of 29 or more; narrower than 17 take the narrow
 * transforms), where AVX-512's own gather takes runs of 7 tiles in 16 lanes: fwd+bwd against it
 * (Zen 4, float, in-process A/B) 32->32 on 32x32 0.94-0.96 of the time at 1 thread and 0.93 at
 * 2, 8->32 on 32x32 0.95, 16->16 on 40x40 0.975; where a tile row is one run of 7 either way
 * (DeepConvNet's 28x28) it measured 1.00-1.015 and stays AVX-512's. AVX-512's gradient gather
 * measured even against it and stays. */
#if (defined(FC_ISA_AVX2) || defined(FC_ISA_AVX512)) && defined(WG_F32) && WG_M == 4
#define WG6_ROWS8 1
#define WG6_ROWS8_MIN_TW 4
#include "winograd6_avx2_rows.h"
#else
#define WG6_ROWS8 0
#endif

/* The 36 raw inputs of len tiles of one tile row segment of the plane xc (H, W), inputs starting
 * at row ih0, column iw0 + M*j (either may be negative: padding; or run past the plane:
 * cropping), into planes P[r*6 + k][j] (Tb apart); cells outside the plane are 0 (the AVX-512
 * copies store them row-transformed, as d B: see wg6_gather_avx512 and wg6_input_block; so does
 * wg6_gather8_avx2, which the float F(4x4) copies run instead: see WG6_ROWS8).
 * Only the tiles at the ends of a row reach into the padding: they alone test their columns. */
static void FN(wg6_gather_segment)(REAL *restrict P, ptrdiff_t Tb, const REAL *restrict xc,
                                   ptrdiff_t H, ptrdiff_t W, ptrdiff_t ih0, ptrdiff_t iw0,
                                   ptrdiff_t len)
{
#if defined(FC_ISA_AVX512)
    FN(wg6_gather_avx512)(P, Tb, xc, H, W, ih0, iw0, len);
    return;
#endif
    /* tiles [jlo, jhi) have all six columns inside the plane */
    ptrdiff_t jlo = iw0 < 0 ? (WG_M - 1 - iw0) / WG_M : 0;
    ptrdiff_t jhi = W - 6 - iw0 >= 0 ? (W - 6 - iw0) / WG_M + 1 : 0;
    if (jhi > len) jhi = len;
    if (jlo > jhi) jlo = jhi;
    for (int r = 0; r < 6; ++r) {
        const ptrdiff_t ih = ih0 + r;
        REAL *p = P + (r * 6) * Tb;
        if (ih < 0 || ih >= H) {
            for (int k = 0; k < 6; ++k)
                for (ptrdiff_t j = 0; j < len; ++j) p[k * Tb + j] = 0;
            continue;
        }
        const REAL *row = xc + ih * W;
        WG6_PREFETCH_NEXT(row + (iw0 > 0 ? iw0 : 0), H * W);
        for (ptrdiff_t j = 0; j < len; ++j) {
            const ptrdiff_t iw = iw0 + WG_M * j;
            if (j >= jlo && j < jhi) {
                for (int k = 0; k < 6; ++k) p[k * Tb + j] = row[iw + k];
            } else {
                for (int k = 0; k < 6; ++k)
                    p[k * Tb + j] = (iw + k >= 0 && iw + k < W) ? row[iw + k] : (REAL)0;
            }
        }
    }
}

#if defined(FC_ISA_AVX512) && defined(WG_F32)
/* The narrow transforms (maps at most 16 wide: a register holds a row) run over groups of 16
 * consecutive tiles of a block rather than tile row segments: on 14x14 maps a segment has 4
 * tiles, so the segment gathers filled 4 lanes of 16 (80% of the input transform, perf,
 * DeepConvNet's 16->32). A group's tiles come from up to 16 tile rows ("slots"); each pair of
 * slots fills its lanes of a cell column k with one permute of the two slots' rows (lane <- cell
 * M*tj - P + k of its row). The lanes of a group, built once for all the channels: */
typedef struct {
    ptrdiff_t off[17], row[17];   /* slot s: its image's offset, its first row M*ti - PH (a
                                   * missing last slot of an odd count: a row never in a plane) */
    __m512i idx[8];               /* pair p, lane l: its tile's cell 0, +16 from the second slot */
    __mmask16 valid[8][6];        /* pair p's lanes whose cell k lies in [0, 16) */
    int np, ns;                   /* pairs, slots */
    int lane[16], len[16];        /* slot s: its first lane, its tiles */
    ptrdiff_t col[16];            /* slot s: its first tile's cell 0, M*tj - PW */
} FN(wg6_lanes);

/* The lanes of the gn <= 16 tiles from t on, for cells k < K; images `image` apart. */
static void FN(wg6_lanes_of)(FN(wg6_lanes) *g, ptrdiff_t t, int gn, ptrdiff_t TH, ptrdiff_t TW,
                             ptrdiff_t image, ptrdiff_t PH, ptrdiff_t PW, int K)
{
    int32_t cell[16];
    int slot[16], ns = 0;
    ptrdiff_t n = t / (TH * TW), q = t - n * TH * TW, ti = q / TW, tj = q - ti * TW;
    for (int l = 0; l < gn; ++l) {
        if (l == 0 || tj == 0) {
            g->off[ns] = n * image;
            g->row[ns] = WG_M * ti - PH;
            g->lane[ns] = l;
            g->len[ns] = 0;
            g->col[ns++] = WG_M * tj - PW;
        }
        slot[l] = ns - 1;
        g->len[ns - 1]++;
        cell[l] = (int32_t)(WG_M * tj - PW);
        if (++tj == TW) {
            tj = 0;
            if (++ti == TH) { ti = 0; ++n; }
        }
    }
    g->off[ns] = 0;
    g->row[ns] = -64;
    g->ns = ns;
    g->np = (ns + 1) / 2;
    for (int p = 0; p < g->np; ++p) {
        int32_t id[16] = {0};
        unsigned m[6] = {0, 0, 0, 0, 0, 0};
        for (int l = 0; l < gn; ++l) {
            if (slot[l] / 2 != p) continue;
            id[l] = cell[l] + 16 * (slot[l] & 1);
            for (int k = 0; k < K; ++k)
                if (cell[l] + k >= 0 && cell[l] + k < 16) m[k] |= 1u << l;
        }
        g->idx[p] = _mm512_loadu_si512((const void *)id);
        for (int k = 0; k < 6; ++k) g->valid[p][k] = (__mmask16)m[k];
    }
}

/* The lanes of up to WG6_SG groups of 16 tiles from t0 on (tiles before b1) into g; returns how
 * many. The narrow transforms build a run of groups at once and then take each channel across
 * them: channel by channel the planes are walked in order (group by group, every channel's rows
 * of the 36 planes were touched per group: on wide layers, whose blocks outgrow L2, a 384->384
 * forward on 13x13 ran 4-12% slower than the segment transforms). */
#define WG6_SG 8
static int FN(wg6_groups_of)(FN(wg6_lanes) *g, ptrdiff_t t0, ptrdiff_t b1, ptrdiff_t TH,
                             ptrdiff_t TW, ptrdiff_t image, ptrdiff_t PH, ptrdiff_t PW, int K)
{
    int ng = 0;
    for (ptrdiff_t t = t0; t < b1 && ng < WG6_SG; t += 16, ++ng)
        FN(wg6_lanes_of)(g + ng, t, b1 - t < 16 ? (int)(b1 - t) : 16, TH, TW, image, PH, PW, K);
    return ng;
}

/* col[k] (k < K), lane l = cell k of its tile in row r of its slot, of the planes at src (rows W
 * apart, H of them, W <= 16); lanes outside the plane are 0. Each row read is prefetched
 * `plane` elements on: in the next channel, which the caller gathers next. */
static inline __attribute__((always_inline)) void
FN(wg6_lanes_gather)(__m512 *col, const FN(wg6_lanes) *g, const REAL *src, ptrdiff_t r,
                     ptrdiff_t H, ptrdiff_t W, const int K, ptrdiff_t plane)
{
    const __mmask16 wm = (__mmask16)((1u << W) - 1);
    for (int k = 0; k < K; ++k) col[k] = _mm512_setzero_ps();
    for (int p = 0; p < g->np; ++p) {
        __m512 row[2];
        for (int h = 0; h < 2; ++h) {
            const ptrdiff_t at = g->row[2 * p + h] + r;
            row[h] = _mm512_setzero_ps();
            if (at >= 0 && at < H) {
                const REAL *rp = src + g->off[2 * p + h] + at * W;
                row[h] = _mm512_maskz_loadu_ps(wm, rp);
                WG6_PREFETCH_NEXT(rp, plane);
            }
        }
        for (int k = 0; k < K; ++k)
            col[k] = _mm512_mask_mov_ps(col[k], g->valid[p][k],
                                        _mm512_permutex2var_ps(row[0], _mm512_add_epi32(
                                            g->idx[p], _mm512_set1_epi32(k)), row[1]));
    }
}

/* The input transform of narrow planes (W <= 16): per group and channel, row r of every tile
 * gathered, d B and B^T (d B) in registers, the 36 cells straight to V. */
static void FN(wg6_input_narrow_avx512)(REAL *restrict V, const REAL *restrict x, ptrdiff_t b0,
                                        ptrdiff_t b1, ptrdiff_t Tb, ptrdiff_t PV, ptrdiff_t C,
                                        ptrdiff_t c0, ptrdiff_t c1, ptrdiff_t H, ptrdiff_t W,
                                        ptrdiff_t PH, ptrdiff_t PW, ptrdiff_t TH, ptrdiff_t TW)
{
    for (ptrdiff_t s0 = 0; s0 < b1 - b0; s0 += 16 * WG6_SG) {
        FN(wg6_lanes) lanes[WG6_SG];
        const int ng = FN(wg6_groups_of)(lanes, b0 + s0, b1, TH, TW, C * H * W, PH, PW, 6);
        for (ptrdiff_t c = c0; c < c1; ++c) for (int gi = 0; gi < ng; ++gi) {
            const ptrdiff_t g0 = s0 + 16 * gi;
            __m512 s[6][6];   /* (d B) of every tile: s[r][k] */
            for (int r = 0; r < 6; ++r) {
                __m512 col[6];
                FN(wg6_lanes_gather)(col, lanes + gi, x + c * H * W, r, H, W, 6, H * W);
                WG6_BT_T(__m512, s[r], col, 1);
            }
            for (int k = 0; k < 6; ++k) {   /* B^T (d B): column k; plane i*6 + k */
                __m512 d[6], o[6];
                for (int r = 0; r < 6; ++r) d[r] = s[r][k];
                WG6_BT_T(__m512, o, d, 1);
                /* whole vectors: lanes past the block's end stay inside the plane's Tb */
                for (int i = 0; i < 6; ++i)
                    _mm512_storeu_ps(V + (i * 6 + k) * PV + c * Tb + g0, o[i]);
            }
        }
    }
}

/* The gradient transform of narrow outputs (OW <= 16), as the input's: per group and output
 * channel, row i of every tile's M x M cells of dy gathered, A e A^T in registers, the 36 cells
 * straight to dYh; db (if not NULL) += the group's sum of dy. */
static void FN(wg6_grad_narrow_avx512)(REAL *restrict dYh, ptrdiff_t PM, REAL *restrict db,
                                       const REAL *restrict dy, ptrdiff_t b0, ptrdiff_t b1,
                                       ptrdiff_t Tb, ptrdiff_t OC, ptrdiff_t oc0, ptrdiff_t oc1,
                                       ptrdiff_t OH, ptrdiff_t OW, ptrdiff_t TH, ptrdiff_t TW)
{
    for (ptrdiff_t s0 = 0; s0 < b1 - b0; s0 += 16 * WG6_SG) {
        FN(wg6_lanes) lanes[WG6_SG];
        const int ng = FN(wg6_groups_of)(lanes, b0 + s0, b1, TH, TW, OC * OH * OW, 0, 0, WG_M);
        for (ptrdiff_t oc = oc0; oc < oc1; ++oc) {
            __m512 sum = _mm512_setzero_ps();
            for (int gi = 0; gi < ng; ++gi) {
                const ptrdiff_t g0 = s0 + 16 * gi;
                __m512 e[WG_M][WG_M], S[6][WG_M];
                for (int i = 0; i < WG_M; ++i) {
                    FN(wg6_lanes_gather)(e[i], lanes + gi, dy + oc * OH * OW, i, OH, OW, WG_M,
                                         OH * OW);
                    for (int k = 0; k < WG_M; ++k) sum = _mm512_add_ps(sum, e[i][k]);
                }
                for (int k = 0; k < WG_M; ++k) {   /* A e: column k */
                    __m512 c[WG_M], v[6];
                    for (int i = 0; i < WG_M; ++i) c[i] = e[i][k];
                    WG_A(v, c, 1);
                    for (int i = 0; i < 6; ++i) S[i][k] = v[i];
                }
                for (int i = 0; i < 6; ++i) {   /* (A e) A^T: row i, planes i*6 + k */
                    __m512 v[6];
                    WG_A(v, S[i], 1);
                    for (int k = 0; k < 6; ++k)
                        _mm512_storeu_ps(dYh + (i * 6 + k) * PM + oc * Tb + g0, v[k]);
                }
            }
            /* the run's sum of dy, one horizontal reduction per channel */
            if (db) db[oc] += _mm512_reduce_add_ps(sum);
        }
    }
}

/* The output transform of narrow outputs (OW <= 16), as the input's: per group and output
 * channel, A^T m A (+ bias, ReLU) of every tile in registers, then each output row of a slot
 * is one masked store: cell x of it is tile x/M's column x%M, one permute of two of the M
 * column vectors (M = 4: two permutes and a blend). Lanes past the block's end are never stored. */
static void FN(wg6_output_narrow_avx512)(REAL *restrict y, const REAL *restrict Mt, ptrdiff_t PM,
                                         const REAL *bias, int relu, ptrdiff_t b0, ptrdiff_t b1,
                                         ptrdiff_t Tb, ptrdiff_t OC, ptrdiff_t oc0, ptrdiff_t oc1,
                                         ptrdiff_t OH, ptrdiff_t OW, ptrdiff_t TH, ptrdiff_t TW)
{
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    /* cell x: tile x/M; columns 1 and 3 from the second source */
    const __m512i cell_src = _mm512_add_epi32(
        _mm512_srli_epi32(lane, WG_M == 4 ? 2 : 1),
        _mm512_slli_epi32(_mm512_and_epi32(lane, _mm512_set1_epi32(1)), 4));
    const __mmask16 high = WG_M == 4 ? (__mmask16)0xCCCC : (__mmask16)0;   /* columns 2, 3 */
    for (ptrdiff_t s0 = 0; s0 < b1 - b0; s0 += 16 * WG6_SG) {
        FN(wg6_lanes) lanes[WG6_SG];
        const int ng = FN(wg6_groups_of)(lanes, b0 + s0, b1, TH, TW, OC * OH * OW, 0, 0, WG_M);
        for (ptrdiff_t oc = oc0; oc < oc1; ++oc) for (int gi = 0; gi < ng; ++gi) {
            const FN(wg6_lanes) *g = lanes + gi;
            const ptrdiff_t g0 = s0 + 16 * gi;
            const __m512 b = _mm512_set1_ps(bias ? bias[oc] : (REAL)0);
            __m512 S[WG_M][6], o[WG_M][WG_M];
            for (int k = 0; k < 6; ++k) {   /* A^T m: column k */
                __m512 m[6], v[WG_M];
                for (int i = 0; i < 6; ++i)
                    m[i] = _mm512_loadu_ps(Mt + (i * 6 + k) * PM + oc * Tb + g0);
                WG_AT(v, m, 1);
                for (int i = 0; i < WG_M; ++i) S[i][k] = v[i];
            }
            for (int i = 0; i < WG_M; ++i) {   /* (A^T m) A: row i, plus the bias */
                WG_AT(o[i], S[i], 1);
                for (int k = 0; k < WG_M; ++k) {
                    o[i][k] = _mm512_add_ps(o[i][k], b);
                    /* v where v > 0 or NaN (unordered), else +0: the scalar path's ReLU */
                    if (relu)
                        o[i][k] = _mm512_maskz_mov_ps(
                            _mm512_cmp_ps_mask(o[i][k], _mm512_setzero_ps(), _CMP_NLE_UQ), o[i][k]);
                }
            }
            for (int s = 0; s < g->ns; ++s) {
                const __m512i idx = _mm512_add_epi32(cell_src, _mm512_set1_epi32(g->lane[s]));
                ptrdiff_t cnt = OW - g->col[s];
                if (cnt > WG_M * g->len[s]) cnt = WG_M * g->len[s];
                const __mmask16 cells = (__mmask16)((1u << cnt) - 1);
                REAL *dst = y + g->off[s] + oc * OH * OW + g->row[s] * OW + g->col[s];
                for (int i = 0; i < WG_M && g->row[s] + i < OH; ++i) {
                    __m512 v = _mm512_permutex2var_ps(o[i][0], idx, o[i][1]);
                    if (WG_M == 4)
                        v = _mm512_mask_mov_ps(v, high, _mm512_permutex2var_ps(
                                                            o[i][WG_M - 2], idx, o[i][WG_M - 1]));
                    _mm512_mask_storeu_ps(dst + i * OW, cells, v);
                    WG6_PREFETCH_NEXT(dst + i * OW, OH * OW);
                }
            }
        }
    }
}

/* The dx scatter of narrow planes (W <= 16), as the input transform's: per group and channel,
 * B X B^T of every tile in registers, then each dx row a slot's tiles reach gets their
 * overlapping cells in one load-add-store: cell x (u = x - the slot's first cell) takes tile
 * u/M - g's column g*M + u%M for the plane groups g < 6/M (as wg6_row_add_avx512's), each group
 * one permute of two of the six column vectors (F(4x4)'s first: two and a blend). */
static void FN(wg6_scatter_narrow_avx512)(REAL *restrict dx, const REAL *restrict dV,
                                          ptrdiff_t PV, ptrdiff_t b0, ptrdiff_t b1, ptrdiff_t Tb,
                                          ptrdiff_t C, ptrdiff_t c0, ptrdiff_t c1, ptrdiff_t H,
                                          ptrdiff_t W, ptrdiff_t PH, ptrdiff_t PW, ptrdiff_t TH,
                                          ptrdiff_t TW)
{
    enum { GROUPS = (6 + WG_M - 1) / WG_M };   /* 2 for M=4, 3 for M=2 */
    const __mmask16 wm = (__mmask16)((1u << W) - 1);
    for (ptrdiff_t s0 = 0; s0 < b1 - b0; s0 += 16 * WG6_SG) {
        FN(wg6_lanes) lanes[WG6_SG];
        const int ng = FN(wg6_groups_of)(lanes, b0 + s0, b1, TH, TW, C * H * W, PH, PW, 6);
        /* group gi, slot s: the lanes plane group gr reads per cell, the cells it adds to; the
         * cells of F(4x4)'s columns 2 and 3 */
        struct { __m512i idx[16][GROUPS]; __mmask16 take[16][GROUPS], high[16]; } adds[WG6_SG];
        for (int gi = 0; gi < ng; ++gi) {
            const FN(wg6_lanes) *g = lanes + gi;
            for (int s = 0; s < g->ns; ++s) {
                int32_t id[GROUPS][16];
                unsigned m[GROUPS] = {0}, hi = 0;
                for (int x = 0; x < 16; ++x) {
                    const ptrdiff_t u = x - g->col[s];
                    for (int gr = 0; gr < GROUPS; ++gr) {
                        const ptrdiff_t tile = u >= 0 ? u / WG_M - gr : -1;
                        const ptrdiff_t col = gr * WG_M + u % WG_M;
                        id[gr][x] = (int32_t)(g->lane[s] + (tile >= 0 ? tile : 0) + 16 * (u & 1));
                        if (x < W && tile >= 0 && tile < g->len[s] && col < 6) m[gr] |= 1u << x;
                    }
                    if (u >= 0 && u % WG_M >= 2) hi |= 1u << x;
                }
                for (int gr = 0; gr < GROUPS; ++gr) {
                    adds[gi].idx[s][gr] = _mm512_loadu_si512((const void *)id[gr]);
                    adds[gi].take[s][gr] = (__mmask16)m[gr];
                }
                adds[gi].high[s] = WG_M == 4 ? (__mmask16)hi : (__mmask16)0;
            }
        }
        for (ptrdiff_t c = c0; c < c1; ++c) for (int gi = 0; gi < ng; ++gi) {
            const FN(wg6_lanes) *g = lanes + gi;
            const ptrdiff_t g0 = s0 + 16 * gi;
            __m512 Zc[6][6], Z[6][6];
            for (int k = 0; k < 6; ++k) {   /* B X: column k */
                __m512 v[6], o[6];
                for (int i = 0; i < 6; ++i)
                    v[i] = _mm512_loadu_ps(dV + (i * 6 + k) * PV + c * Tb + g0);
                WG6_B(o, v, 1);
                for (int i = 0; i < 6; ++i) Zc[i][k] = o[i];
            }
            for (int i = 0; i < 6; ++i) WG6_B(Z[i], Zc[i], 1);   /* (B X) B^T: row i */
            for (int s = 0; s < g->ns; ++s) {
                REAL *plane = dx + g->off[s] + c * H * W;
                for (int r = 0; r < 6; ++r) {
                    const ptrdiff_t ih = g->row[s] + r;
                    if (ih < 0 || ih >= H) continue;
                    __m512 add = _mm512_setzero_ps();
                    for (int gr = 0; gr < GROUPS; ++gr) {
                        const int k0 = gr * WG_M;   /* the group's first column */
                        const __m512i idx = adds[gi].idx[s][gr];
                        __m512 v = _mm512_permutex2var_ps(Z[r][k0], idx, Z[r][k0 + 1]);
                        if (WG_M == 4 && gr == 0)
                            v = _mm512_mask_mov_ps(v, adds[gi].high[s],
                                                   _mm512_permutex2var_ps(Z[r][2], idx, Z[r][3]));
                        add = _mm512_mask_add_ps(add, adds[gi].take[s][gr], add, v);
                    }
                    REAL *row = plane + ih * W;
                    _mm512_mask_storeu_ps(row, wm, _mm512_add_ps(_mm512_maskz_loadu_ps(wm, row),
                                                                 add));
                }
            }
        }
    }
}
#endif

/* Transformed input of the tiles [b0, b1), channels [c0, c1), into V (36 planes PV apart of
 * (C, Tb)); rb: 36*(Tb + WG6_SLACK). */
static void FN(wg6_input_block)(REAL *restrict V, REAL *restrict rb, const REAL *restrict x,
                                ptrdiff_t b0, ptrdiff_t b1, ptrdiff_t Tb, ptrdiff_t PV,
                                ptrdiff_t C, ptrdiff_t c0, ptrdiff_t c1, ptrdiff_t H,
                                ptrdiff_t W, ptrdiff_t PH, ptrdiff_t PW, ptrdiff_t TH,
                                ptrdiff_t TW)
{
    const ptrdiff_t nb = b1 - b0, TP = Tb + WG6_SLACK;   /* P's planes: TP apart */
    REAL *restrict P = rb;
#if defined(FC_ISA_AVX512) && defined(WG_F32)
    if (W <= 16) {
        FN(wg6_input_narrow_avx512)(V, x, b0, b1, Tb, PV, C, c0, c1, H, W, PH, PW, TH, TW);
        return;
    }
#endif
    /* whether the 8-tile gather runs, and whether the gather stores the rows transformed, d B
     * (both the 8-tile and the AVX-512 ones do) */
#if WG6_ROWS8 && defined(FC_ISA_AVX512)
    const int rows8 = TW >= 8, rows_dB = 1;
#elif WG6_ROWS8
    const int rows8 = TW >= WG6_ROWS8_MIN_TW, rows_dB = rows8;
#elif defined(FC_ISA_AVX512)
    const int rows_dB = 1;
#else
    const int rows_dB = 0;
#endif
    for (ptrdiff_t c = c0; c < c1; ++c) {
#if WG6_ROWS8
        if (rows8) {
            /* a half: its input cells from row WG_M*ti - PH, column WG_M*tj - PW of x's plane */
#define WG6_IN_HALF(n, ti, tj)                                                                \
    ((FN(wg6a_half)){(uintptr_t)(x + ((n) * C + c) * H * W)                                   \
                         + (uintptr_t)((WG_M * (tj) - PW) * (ptrdiff_t)sizeof(REAL)),         \
                     (int32_t)(WG_M * (ti) - PH), (int32_t)(WG_M * (tj) - PW)})
#define WG6_IN_RUN(at, a, b, has_b) FN(wg6_gather8_avx2)(P + (at), TP, a, b, has_b, H, W)
            WG6A_RUNS(b0, b1, TH, TW, WG6_IN_HALF, WG6_IN_RUN);
#undef WG6_IN_HALF
#undef WG6_IN_RUN
        } else
#endif
        WG_SEGMENTS(b0, b1, TH, TW, {
            FN(wg6_gather_segment)(P + (t - b0), TP, x + (n * C + c) * H * W, H, W,
                                   WG_M * ti - PH, WG_M * tj0 - PW, len);
        });
        if (rows_dB) {
            for (int k = 0; k < 6; ++k) {   /* B^T (d B): column k of every tile into V */
                const REAL *p = P + k * TP;
                REAL *v = V + k * PV + c * Tb;
#pragma omp simd
                for (ptrdiff_t j = 0; j < nb; ++j) {
                    REAL o[6];
                    WG6_BT(o, p + j, 6 * TP);
                    for (int i = 0; i < 6; ++i) v[i * 6 * PV + j] = o[i];
                }
            }
            continue;
        }
        for (int k = 0; k < 6; ++k) {   /* B^T d, in place, column k of every tile */
            REAL *p = P + k * TP;
#pragma omp simd
            for (ptrdiff_t j = 0; j < nb; ++j) {
                REAL o[6];
                WG6_BT(o, p + j, 6 * TP);
                for (int i = 0; i < 6; ++i) p[i * 6 * TP + j] = o[i];
            }
        }
        for (int i = 0; i < 6; ++i) {   /* (B^T d) B: row i of every tile into V */
            const REAL *p = P + i * 6 * TP;
            REAL *v = V + (i * 6) * PV + c * Tb;
#pragma omp simd
            for (ptrdiff_t j = 0; j < nb; ++j) {
                REAL o[6];
                WG6_BT(o, p + j, TP);
                for (int k = 0; k < 6; ++k) v[k * PV + j] = o[k];
            }
        }
    }
}

/* y tiles of [b0, b1), channels [oc0, oc1), = A^T M A (+ bias, ReLU), clipped to (OH, OW). Per
 * output channel the M*M outputs of every tile go to o (M*M planes of Tb in rb, via S: 6*M
 * planes), then the stores go segment by segment, row by row. rb: 40*Tb. */
static void FN(wg6_output_block)(REAL *restrict y, REAL *restrict rb, const REAL *restrict Mt,
                                 ptrdiff_t PM, const REAL *bias, int relu, ptrdiff_t b0,
                                 ptrdiff_t b1, ptrdiff_t Tb, ptrdiff_t OC, ptrdiff_t oc0,
                                 ptrdiff_t oc1, ptrdiff_t OH, ptrdiff_t OW, ptrdiff_t TH,
                                 ptrdiff_t TW)
{
    const ptrdiff_t nb = b1 - b0;
    REAL *restrict o = rb, *restrict S = rb + WG_MM * Tb;
#if defined(FC_ISA_AVX512) && defined(WG_F32)
    if (OW <= 16) {
        FN(wg6_output_narrow_avx512)(y, Mt, PM, bias, relu, b0, b1, Tb, OC, oc0, oc1, OH, OW, TH,
                                     TW);
        return;
    }
#endif
    for (ptrdiff_t oc = oc0; oc < oc1; ++oc) {
        const REAL b = bias ? bias[oc] : (REAL)0;
        for (int k = 0; k < 6; ++k) {   /* A^T m: column k of every tile, S[i*6 + k] */
            const REAL *m = Mt + k * PM + oc * Tb;
#pragma omp simd
            for (ptrdiff_t j = 0; j < nb; ++j) {
                REAL v[WG_M];
                WG_AT(v, m + j, 6 * PM);
                for (int i = 0; i < WG_M; ++i) S[(i * 6 + k) * Tb + j] = v[i];
            }
        }
        for (int i = 0; i < WG_M; ++i) {   /* (A^T m) A: row i, plus the bias */
            const REAL *s = S + i * 6 * Tb;
#pragma omp simd
            for (ptrdiff_t j = 0; j < nb; ++j) {
                REAL v[WG_M];
                WG_AT(v, s + j, Tb);
                for (int k = 0; k < WG_M; ++k) o[(i * WG_M + k) * Tb + j] = v[k] + b;
            }
        }
        if (relu) {   /* max(v, 0) with NaN propagating */
            for (int xi = 0; xi < WG_MM; ++xi) {
                REAL *a = o + xi * Tb;
#pragma omp simd
                for (ptrdiff_t j = 0; j < nb; ++j)
                    a[j] = a[j] > 0 ? a[j] : (a[j] != a[j] ? a[j] : (REAL)0);
            }
        }
        WG_SEGMENTS(b0, b1, TH, TW, {
            const ptrdiff_t q = t - b0, ow0 = WG_M * tj0;
            /* tiles whose M output columns all exist; then at most one partial tile */
            ptrdiff_t full = (OW - ow0) / WG_M;
            if (full > len) full = len;
            const ptrdiff_t rest = full < len ? OW - ow0 - WG_M * full : 0;
#if WG6_ROWS8 && defined(FC_ISA_AVX2)
            if (len <= 4) {
                FN(wg6_segment_scatter_avx2)(
                    y + ((n * OC + oc) * OH + WG_M * ti) * OW + ow0, OW,
                    OH - WG_M * ti < WG_M ? (int)(OH - WG_M * ti) : WG_M, o + q, Tb, len,
                    WG_M * full + rest);
            } else
#endif
            for (int i = 0; i < WG_M && WG_M * ti + i < OH; ++i) {
                REAL *dst = y + ((n * OC + oc) * OH + WG_M * ti + i) * OW + ow0;
                const REAL *z = o + (i * WG_M) * Tb + q;
                WG6_PREFETCH_NEXT(dst, OH * OW);
#if defined(FC_ISA_AVX512)
                FN(wg6_row_scatter_avx512)(dst, z, Tb, WG_M * full + rest);
                continue;
#endif
                for (ptrdiff_t j = 0; j < full; ++j)
                    for (int k = 0; k < WG_M; ++k) dst[WG_M * j + k] = z[k * Tb + j];
                for (ptrdiff_t k = 0; k < rest; ++k) dst[WG_M * full + k] = z[k * Tb + full];
            }
        });
    }
}

/* dYh[xi][oc][t - b0] = (A dy_t A^T)[xi] for oc in [oc0, oc1), dy cells outside (OH, OW) being 0;
 * when db is not NULL the block's sum of dy is added to it (every cell is in exactly one tile).
 * Per output channel the tiles' M*M dy cells are gathered into e (M*M planes of Tb in rb), then
 * transformed via S (6*M planes). rb: 40*(Tb + WG6_SLACK). */
static void FN(wg6_grad_block)(REAL *restrict dYh, ptrdiff_t PM, REAL *restrict db,
                               REAL *restrict rb, const REAL *restrict dy, ptrdiff_t b0,
                               ptrdiff_t b1, ptrdiff_t Tb, ptrdiff_t OC, ptrdiff_t oc0,
                               ptrdiff_t oc1, ptrdiff_t OH, ptrdiff_t OW, ptrdiff_t TH,
                               ptrdiff_t TW)
{
    const ptrdiff_t nb = b1 - b0;
    const ptrdiff_t TE = Tb + WG6_SLACK;   /* e's planes: TE apart */
    REAL *restrict e = rb, *restrict S = rb + WG_MM * TE;
#if defined(FC_ISA_AVX512) && defined(WG_F32)
    if (OW <= 16) {
        FN(wg6_grad_narrow_avx512)(dYh, PM, db, dy, b0, b1, Tb, OC, oc0, oc1, OH, OW, TH, TW);
        return;
    }
#endif
    for (ptrdiff_t oc = oc0; oc < oc1; ++oc) {
#if WG6_ROWS8 && defined(FC_ISA_AVX2)
        if (TW >= WG6_ROWS8_MIN_TW) {
            /* in runs of two halves, as wg6_input_block's; a half: its dy cells from row
             * WG_M*ti, column WG_M*tj */
#define WG6_DY_HALF(n, ti, tj)                                                                \
    ((FN(wg6a_half)){(uintptr_t)(dy + (((n) * OC + oc) * OH + WG_M * (ti)) * OW + WG_M * (tj)), \
                     (int32_t)(WG_M * (ti)), (int32_t)(WG_M * (tj))})
#define WG6_DY_RUN(at, a, b, has_b) FN(wg6_row_gather8_avx2)(e + (at), TE, a, b, has_b, OH, OW)
            WG6A_RUNS(b0, b1, TH, TW, WG6_DY_HALF, WG6_DY_RUN);
#undef WG6_DY_HALF
#undef WG6_DY_RUN
        } else
#endif
        WG_SEGMENTS(b0, b1, TH, TW, {
            const ptrdiff_t q = t - b0, ow0 = WG_M * tj0;
            ptrdiff_t full = (OW - ow0) / WG_M;
            if (full > len) full = len;
            const ptrdiff_t rest = full < len ? OW - ow0 - WG_M * full : 0;
            for (int i = 0; i < WG_M; ++i) {
                REAL *z = e + (i * WG_M) * TE + q;   /* cell (i, k) of tile j at z[k*TE + j] */
                if (WG_M * ti + i >= OH) {
                    for (int k = 0; k < WG_M; ++k)
                        for (ptrdiff_t j = 0; j < len; ++j) z[k * TE + j] = 0;
                    continue;
                }
                const REAL *src = dy + ((n * OC + oc) * OH + WG_M * ti + i) * OW + ow0;
#if defined(FC_ISA_AVX512)
                FN(wg6_row_gather_avx512)(z, TE, src, WG_M * full + rest, len);
#ifdef WG_F32
                WG6_PREFETCH_NEXT(src, OH * OW);
#else
                WG6_PREFETCH_SPAN(src, OH * OW, WG_M * full + rest);
#endif
                continue;
#endif
                WG6_PREFETCH_NEXT(src, OH * OW);
                for (ptrdiff_t j = 0; j < full; ++j)
                    for (int k = 0; k < WG_M; ++k) z[k * TE + j] = src[WG_M * j + k];
                if (full < len)
                    for (ptrdiff_t k = 0; k < WG_M; ++k)
                        z[k * TE + full] = k < rest ? src[WG_M * full + k] : (REAL)0;
            }
        });
        if (db) {
            /* the cells of each tile summed first: one horizontal reduction per channel, not
             * one per cell plane (those were 14% of the function) */
            REAL sum = 0;
#pragma omp simd reduction(+ : sum)
            for (ptrdiff_t j = 0; j < nb; ++j) {
                REAL cells = 0;
                for (int xi = 0; xi < WG_MM; ++xi) cells += e[xi * TE + j];
                sum += cells;
            }
            db[oc] += sum;
        }
        for (int k = 0; k < WG_M; ++k) {   /* A e: column k of every tile, S[i*M + k] */
            const REAL *z = e + k * TE;
#pragma omp simd
            for (ptrdiff_t j = 0; j < nb; ++j) {
                REAL v[6];
                WG_A(v, z + j, WG_M * TE);
                for (int i = 0; i < 6; ++i) S[(i * WG_M + k) * Tb + j] = v[i];
            }
        }
        for (int i = 0; i < 6; ++i) {   /* (A e) A^T: row i into dYh */
            const REAL *s = S + i * WG_M * Tb;
            REAL *out = dYh + (i * 6) * PM + oc * Tb;
#pragma omp simd
            for (ptrdiff_t j = 0; j < nb; ++j) {
                REAL v[6];
                WG_A(v, s + j, Tb);
                for (int k = 0; k < 6; ++k) out[k * PM + j] = v[k];
            }
        }
    }
}

/* dx tiles of [b0, b1), channels [c0, c1), += B dV B^T (dV: 36 planes PV apart of (C, Tb)),
 * overlap-added: the 6x6 input tiles of neighbouring output tiles share 6 - M rows and
 * columns. Padded cells are dropped; dx must be zeroed. Per input channel the 36 entries of
 * every tile go to Z (36 planes of Tb in rb) by two vectorised passes, then row by row of each
 * segment into dx. rb: 36*Tb. */
static void FN(wg6_scatter_block)(REAL *restrict dx, REAL *restrict rb, const REAL *restrict dV,
                                  ptrdiff_t PV, ptrdiff_t b0, ptrdiff_t b1, ptrdiff_t Tb,
                                  ptrdiff_t C, ptrdiff_t c0, ptrdiff_t c1, ptrdiff_t H,
                                  ptrdiff_t W, ptrdiff_t PH, ptrdiff_t PW, ptrdiff_t TH,
                                  ptrdiff_t TW)
{
    const ptrdiff_t nb = b1 - b0;
    REAL *restrict Z = rb;
#if defined(FC_ISA_AVX512) && defined(WG_F32)
    if (W <= 16) {
        FN(wg6_scatter_narrow_avx512)(dx, dV, PV, b0, b1, Tb, C, c0, c1, H, W, PH, PW, TH, TW);
        return;
    }
#endif
    for (ptrdiff_t c = c0; c < c1; ++c) {
        for (int k = 0; k < 6; ++k) {   /* B X: column k of every tile, Z[i*6 + k] */
            const REAL *v = dV + k * PV + c * Tb;
#pragma omp simd
            for (ptrdiff_t j = 0; j < nb; ++j) {
                REAL o[6];
                WG6_B(o, v + j, 6 * PV);
                for (int i = 0; i < 6; ++i) Z[(i * 6 + k) * Tb + j] = o[i];
            }
        }
        for (int i = 0; i < 6; ++i) {   /* (B X) B^T: row i, in place */
            REAL *z = Z + i * 6 * Tb;
#pragma omp simd
            for (ptrdiff_t j = 0; j < nb; ++j) {
                REAL o[6];
                WG6_B(o, z + j, Tb);
                for (int k = 0; k < 6; ++k) z[k * Tb + j] = o[k];
            }
        }
        WG_SEGMENTS(b0, b1, TH, TW, {
            const ptrdiff_t q = t - b0, ih0 = WG_M * ti - PH, iw0 = WG_M * tj0 - PW;
            REAL *xc = dx + (n * C + c) * H * W;
#if WG6_ROWS8 && defined(FC_ISA_AVX2)
            if (len <= 4) {
                FN(wg6_segment_add_avx2)(xc, H, W, ih0, iw0, Z + q, Tb, len);
            } else
#endif
            for (int r = 0; r < 6; ++r) {
                const ptrdiff_t ih = ih0 + r;
                if (ih < 0 || ih >= H) continue;
                const REAL *z = Z + (r * 6) * Tb + q;   /* cell (r, k) of tile j: z[k*Tb + j] */
#if defined(FC_ISA_AVX512)
                FN(wg6_row_add_avx512)(xc + ih * W, iw0, W, z, Tb, len);
#else
                REAL *row = xc + ih * W;
                for (ptrdiff_t j = 0; j < len; ++j) {
                    const ptrdiff_t iw = iw0 + WG_M * j;
                    if (iw >= 0 && iw + 6 <= W) {
                        for (int k = 0; k < 6; ++k) row[iw + k] += z[k * Tb + j];
                    } else {
                        for (int k = 0; k < 6; ++k)
                            if (iw + k >= 0 && iw + k < W) row[iw + k] += z[k * Tb + j];
                    }
                }
#endif
            }
        });
    }
}

/* The forward of channels [o0, o1) (a multiple of WG6_SPLIT from o0) of the tiles [b0, b1) on all
 * the block's planes V (36 planes PV apart of (C, Tb)): products into Mt, then y; rows_split: the
 * threads split the channels (WG6_PLANE_GEMM). */
static void FN(wg6_forward_block)(REAL *y, REAL *restrict Mt, REAL *restrict rb,
                                  const REAL *restrict U, const REAL *restrict V, const REAL *bias,
                                  int relu, ptrdiff_t b0, ptrdiff_t b1, ptrdiff_t Tb, ptrdiff_t PV,
                                  ptrdiff_t PM, ptrdiff_t C, ptrdiff_t OC, ptrdiff_t o0,
                                  ptrdiff_t o1, ptrdiff_t OH, ptrdiff_t OW, ptrdiff_t TH,
                                  ptrdiff_t TW, int rows_split)
{
    if (o1 <= o0) return;
    for (int xi = 0; xi < 36; ++xi)
        WG6_PLANE_GEMM(Mt + xi * PM + o0 * Tb, Tb, U + xi * OC * C + o0 * C, V + xi * PV, Tb,
                       o1 - o0, C, b1 - b0, rows_split);
    FN(wg6_output_block)(y, rb, Mt, PM, bias, relu, b0, b1, Tb, OC, o0, o1, OH, OW, TH, TW);
}

/* The forward pass (also backward-data's on small batches): y (N, OC, OH, OW) from x
 * (N, C, H, W) and w (OC, C, R, R), padding PH, PW (negative: cropping), OH = H + 2*PH - R + 1.
 * Tiles are split between the threads (a batch smaller than the thread count still uses them
 * all), or on wide layers with few tiles channels (wg6_split_channels): then the threads take
 * the blocks together, sharing thread 0's planes, and each transforms its share of the input
 * channels and computes its share of the output channels, behind two barriers per block. */
static void FN(wg6_forward)(REAL *y, REAL *workspace, const REAL *x, const REAL *weight,
                            const REAL *bias, ptrdiff_t N, ptrdiff_t C, ptrdiff_t H, ptrdiff_t W,
                            ptrdiff_t OC, ptrdiff_t PH, ptrdiff_t PW, int relu, int n_threads)
{
    const ptrdiff_t OH = H + 2 * PH - WG_R + 1, OW = W + 2 * PW - WG_R + 1;
    const ptrdiff_t TH = (OH + WG_M - 1) / WG_M, TW = (OW + WG_M - 1) / WG_M, T = N * TH * TW;
    const ptrdiff_t Tb = wg6_block(C, OC), PV = wg6_plane(C, Tb), PM = wg6_plane(OC, Tb);
    const ptrdiff_t per = wg6_forward_per_thread(C, OC);
    REAL *U = workspace;
    if (N <= 0 || OH <= 0 || OW <= 0) return;
    const int by_channels = wg6_split_channels(C, OC, T, n_threads);
    int nt = fc_clamp_threads(n_threads, by_channels ? OC : T);
    const int split_u = wg6_split_weights(OC, C, nt);
    if (!split_u) FN(wg6_weight_transform)(U, weight, OC, C, 0, 0, 1);
    int blas_prev = fc_blas_threads_begin(nt);
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        int tid = fc_thread_id(), nth = fc_thread_count();
        if (split_u) {
            FN(wg6_weight_transform)(U, weight, OC, C, 0, tid, nth);
#pragma omp barrier
        }
        REAL *mine = workspace + 36 * OC * C + (ptrdiff_t)tid * per;
        REAL *V = by_channels ? workspace + 36 * OC * C : mine;
        REAL *Mt = V + 36 * PV;
        REAL *rb = mine + 36 * (PV + PM);   /* transform scratch */
        if (by_channels) {
            ptrdiff_t c0, c1, o0, o1;
            fc_split(C, tid, nth, 1, &c0, &c1);
            fc_split(OC, tid, nth, WG6_SPLIT, &o0, &o1);
            for (ptrdiff_t b0 = 0; b0 < T; b0 += Tb) {
                const ptrdiff_t b1 = b0 + Tb < T ? b0 + Tb : T;
                if (b0 > 0) {
#pragma omp barrier
                }   /* every thread's GEMMs are done with V */
                FN(wg6_input_block)(V, rb, x, b0, b1, Tb, PV, C, c0, c1, H, W, PH, PW, TH, TW);
#pragma omp barrier
                FN(wg6_forward_block)(y, Mt, rb, U, V, bias, relu, b0, b1, Tb, PV, PM, C, OC, o0,
                                      o1, OH, OW, TH, TW, 1);
            }
        } else {
            const ptrdiff_t t0 = T * tid / nth, t1 = T * (tid + 1) / nth;
            for (ptrdiff_t b0 = t0; b0 < t1; b0 += Tb) {
                const ptrdiff_t b1 = b0 + Tb < t1 ? b0 + Tb : t1;
                FN(wg6_input_block)(V, rb, x, b0, b1, Tb, PV, C, 0, C, H, W, PH, PW, TH, TW);
                FN(wg6_forward_block)(y, Mt, rb, U, V, bias, relu, b0, b1, Tb, PV, PM, C, OC, 0,
                                      OC, OH, OW, TH, TW, 0);
            }
        }
    }
    fc_blas_threads_end(blas_prev);
}

/* dx's channels [c0, c1) zeroed from (image *zn, row *zr) up to (image n, row r), which moves
 * (*zn, *zr) on. The backward zeroes rows just before the overlap-add first reaches them, while
 * they are still in cache (whole images zeroed at their first tile: a double image of 48
 * channels on 57x57 is 1.2 MB, past L2, and the adds waited on its lines: 38% of the dx
 * scatter, perf). Tiles go in row order, so the target only moves on. */
static void FN(wg6_zero_dx_rows)(REAL *restrict dx, ptrdiff_t *zn, ptrdiff_t *zr, ptrdiff_t n,
                                 ptrdiff_t r, ptrdiff_t C, ptrdiff_t c0, ptrdiff_t c1,
                                 ptrdiff_t H, ptrdiff_t W)
{
    while (*zn < n || (*zn == n && *zr < r)) {
        const ptrdiff_t end = *zn < n ? H : r;
        for (ptrdiff_t c = c0; c < c1; ++c)
            memset(dx + ((*zn * C + c) * H + *zr) * W, 0, (size_t)((end - *zr) * W) * sizeof(REAL));
        if (*zn < n) {
            ++*zn;
            *zr = 0;
        } else {
            *zr = end;
        }
    }
}

/* The image of tile t and the row its input tile ends before (clipped to [0, H]). */
static void FN(wg6_tile_reach)(ptrdiff_t t, ptrdiff_t Timg, ptrdiff_t TW, ptrdiff_t PH,
                               ptrdiff_t H, ptrdiff_t *n, ptrdiff_t *r)
{
    *n = t / Timg;
    ptrdiff_t end = WG_M * ((t - *n * Timg) / TW) - PH + 6;
    *r = end < 0 ? 0 : end > H ? H : end;
}

/* One block's GEMMs of the backward, on rows of the planes: dU rows [g0, g1) (+)= dY^ V^T (beta 0:
 * overwritten) when dU is not NULL, and dV rows [c0, c1) (c0 a multiple of WG6_PACK) = Ut dY^ when
 * dV is not NULL. V, dY^, dV: 36 planes PV, PM, PV apart. dV may be V: its plane xi is
 * consumed first. bt: scratch of 32*nb (wgt_gemm's and wgt2_gemm's transposed V). */
static void FN(wg6_backward_gemms)(REAL *dU, REAL *dV, const REAL *Ut, const REAL *V,
                                   const REAL *dYh, REAL beta, ptrdiff_t nb, ptrdiff_t Tb,
                                   ptrdiff_t PV, ptrdiff_t PM, ptrdiff_t C, ptrdiff_t OC,
                                   ptrdiff_t g0, ptrdiff_t g1, ptrdiff_t c0, ptrdiff_t c1,
                                   int rows_split, REAL *bt)
{
    (void)bt;
    for (int xi = 0; xi < 36; ++xi) {
        /* dU (OC, C) += dY^ (OC, nb) @ V^T (nb, C) */
        if (dU && g1 > g0) {
#if defined(FC_ISA_AVX512)
            /* 16 to 64 input channels: wgt_gemm reads dY^ once per 32 (double: 16) of them
             * (OpenBLAS, which blocks for the wide layers' large dU, ran their backward 6-18%
             * faster on Zen 4, even on Zen 5; below 16 its vectors are mostly empty: the weight
             * gradient of 3->64 on 32x32 took 1.43x OpenBLAS's time in float, 1.22x in double,
             * 8->64 1.37x in float); from 32 rows of dU: its transposition of V pays over them
             * (16->16 on 28x28: 7% slower). With the rows split between threads, always: each
             * row's sum runs in the same order whatever rows the thread has. */
            if (rows_split || (C >= WGT_MIN_N && C <= WGT_MAX_N && g1 - g0 >= WGT_MIN_ROWS))
                WG_GEMM(wgt_gemm)(dU + xi * OC * C + g0 * C, C, dYh + xi * PM + g0 * Tb, Tb,
                                  V + xi * PV, Tb, g1 - g0, C, nb, beta != 0, bt);
            else
#elif defined(FC_ISA_AVX2)
            /* up to 64 input channels, dot products (wg_gemm_avx2.h): OpenBLAS's packing took
             * these small GEMMs; each element's sum runs in one order whoever computes it.
             * Wider, with the rows split between threads (few tiles: AlexNet's 13x13 layers at
             * batch 8), B transposed a strip at a time (wgt2_gemm): OpenBLAS repacked V for
             * each of its calls there (2 threads, backward: 256->384 0.90 of the time, 384->384
             * 0.90, 384->256 0.925; double 0.96-0.99). Not on the unsplit GEMMs of many-tile
             * blocks: 1 thread even on those 13x13 layers, AlexNet (32x32)'s 7x7 ones 1.07-1.22. */
            if (C <= WGD2_MAX_N && Tb >= WGD2_MIN_K)
                WG_GEMM(wgd2_gemm)(dU + xi * OC * C + g0 * C, C, dYh + xi * PM + g0 * Tb, Tb,
                                   V + xi * PV, Tb, g1 - g0, C, nb, beta != 0);
            else if (rows_split)
                WG_GEMM(wgt2_gemm)(dU + xi * OC * C + g0 * C, C, dYh + xi * PM + g0 * Tb, Tb,
                                   V + xi * PV, Tb, g1 - g0, C, nb, beta != 0, bt);
            else
#endif
                for (ptrdiff_t r0 = g0; r0 < g1;) {
                    /* split rows (the portable build): calls of WG6_BLAS_ROWS from a multiple
                     * of it, as WG6_PLANE_GEMM's there (when the AVX2 build took this path,
                     * under OPENBLAS_CORETYPE=Haswell 2 and 3 threads disagreed in 7% of dw) */
                    const ptrdiff_t r1 = rows_split && g1 - r0 > WG6_BLAS_ROWS ? r0 + WG6_BLAS_ROWS
                                                                                : g1;
                    GEMM(0, 1, r1 - r0, C, nb, (REAL)1, dYh + xi * PM + r0 * Tb, Tb,
                         V + xi * PV, Tb, beta, dU + xi * OC * C + r0 * C, C);
                    r0 = r1;
                }
        }
        /* dV (C, nb) = Ut (C, OC) @ dY^ (OC, nb) */
        if (dV && c1 > c0)
            WG6_PLANE_GEMM(dV + xi * PV + c0 * Tb, Tb, Ut + xi * OC * C + c0 * OC,
                           dYh + xi * PM, Tb, c1 - c0, OC, nb, rows_split);
    }
}

/* dx (or NULL), dweight (or NULL) and dbias (or NULL) in one pass over the tiles, by the
 * adjoints (as winograd_impl.h's backward): per block dY^ = A dy A^T feeds both dU += dY^ V^T and
 * dV = U^T dY^, and dx += B dV B^T overlap-added. (The forward-on-dy form of backward-data
 * transformed dy a second time, on the OC side: 36 cells per tile and channel, and read it again
 * from memory.) The split (split):
 * - WG6_BY_IMAGES: whole images per thread, so the overlap-add never races; dU is reduced from
 *   per-thread partials in thread order (deterministic);
 * - WG6_BY_TILES (dx must be NULL): tiles are split, which keeps every thread busy on a batch
 *   smaller than the thread count; partials as above;
 * - WG6_BY_CHANNELS (wide layers with few tiles, wg6_split_channels): the threads take every
 *   block together on thread 0's planes, each transforming its share of x's and dy's channels,
 *   then (after a barrier) computing its rows of dU (no partials) and of dV and scattering its
 *   channels of dx; dV goes to thread 1's planes.
 * Workspace: U^T (36*OC*C), then per thread wg6_weights_per_thread. */
static void FN(wg6_backward_pass)(REAL *dx, REAL *dweight, REAL *dbias, REAL *workspace,
                                  const REAL *dy, const REAL *x, const REAL *weight,
                                  ptrdiff_t N, ptrdiff_t C, ptrdiff_t H, ptrdiff_t W,
                                  ptrdiff_t OC, ptrdiff_t PH, ptrdiff_t PW, int split,
                                  int n_threads)
{
    const ptrdiff_t OH = H + 2 * PH - WG_R + 1, OW = W + 2 * PW - WG_R + 1;
    const ptrdiff_t TH = (OH + WG_M - 1) / WG_M, TW = (OW + WG_M - 1) / WG_M, Timg = TH * TW;
    const ptrdiff_t T = N * Timg, Tb = wg6_block(C, OC), UC = 36 * OC * C;
    const ptrdiff_t PV = wg6_plane(C, Tb), PM = wg6_plane(OC, Tb);
    const ptrdiff_t per = wg6_weights_per_thread(C, OC);
    REAL *Ut = workspace, *parts = workspace + UC;
    int nt = fc_clamp_threads(n_threads, split == WG6_BY_IMAGES ? N
                                         : split == WG6_BY_TILES ? T : OC);
    int used = 1;   /* partials of dU and db */
    /* Ut[xi] = U[xi]^T (C, OC), so that dV = Ut dY^ is a plain GEMM like the forward's:
     * OpenBLAS's transposed-A GEMM on these thin blocks ran 1.5x slower on 384->384 (13x13,
     * batch 8) and erratically elsewhere. */
    const int split_u = dx && wg6_split_weights(OC, C, nt);
    if (dx && !split_u) FN(wg6_weight_transform)(Ut, weight, OC, C, 1, 0, 1);
    int blas_prev = fc_blas_threads_begin(nt);
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        int tid = fc_thread_id(), nth = fc_thread_count();
        if (tid == 0) used = split == WG6_BY_CHANNELS ? 1 : nth;
        if (split_u) {
            FN(wg6_weight_transform)(Ut, weight, OC, C, 1, tid, nth);
#pragma omp barrier
        }
        REAL *mine = parts + (ptrdiff_t)tid * per;   /* partial dU, partial db, V, dY^, rb */
        REAL *rb = mine + UC + OC + 36 * (PV + PM);
        if (split == WG6_BY_CHANNELS) {
            REAL *dU = dweight ? parts : (REAL *)0, *db = parts + UC;
            REAL *V = db + OC, *dYh = V + 36 * PV, *dV = dx ? parts + per + UC + OC : (REAL *)0;
            ptrdiff_t ci0, ci1, g0, g1, c0, c1;
            fc_split(C, tid, nth, 1, &ci0, &ci1);          /* x's channels to transform */
            fc_split(OC, tid, nth, WG6_BLAS_ROWS, &g0, &g1); /* dy's, the rows of dU */
            fc_split(C, tid, nth, WG6_SPLIT, &c0, &c1);    /* rows of dV, channels of dx */
            ptrdiff_t zn = 0, zr = 0;   /* dx's channels [c0, c1) zeroed up to (image, row) */
            for (ptrdiff_t oc = g0; oc < g1; ++oc) db[oc] = 0;
            for (ptrdiff_t b0 = 0; b0 < T; b0 += Tb) {
                const ptrdiff_t b1 = b0 + Tb < T ? b0 + Tb : T;
                if (b0 > 0) {
#pragma omp barrier
                }   /* every thread's GEMMs are done with V and dY^ */
                if (dweight)
                    FN(wg6_input_block)(V, rb, x, b0, b1, Tb, PV, C, ci0, ci1, H, W, PH, PW, TH,
                                        TW);
                FN(wg6_grad_block)(dYh, PM, dbias ? db : (REAL *)0, rb, dy, b0, b1, Tb, OC, g0,
                                   g1, OH, OW, TH, TW);
#pragma omp barrier
                FN(wg6_backward_gemms)(dU, dV, Ut, V, dYh, b0 == 0 ? (REAL)0 : (REAL)1, b1 - b0,
                                       Tb, PV, PM, C, OC, g0, g1, c0, c1, 1, rb);
                if (!dx) continue;
                ptrdiff_t zn_to, zr_to;
                FN(wg6_tile_reach)(b1 - 1, Timg, TW, PH, H, &zn_to, &zr_to);
                FN(wg6_zero_dx_rows)(dx, &zn, &zr, zn_to, zr_to, C, c0, c1, H, W);
                FN(wg6_scatter_block)(dx, rb, dV, PV, b0, b1, Tb, C, c0, c1, H, W, PH, PW, TH,
                                      TW);
            }
            if (dx)   /* images with no tiles (empty output) */
                FN(wg6_zero_dx_rows)(dx, &zn, &zr, N, 0, C, c0, c1, H, W);
        } else {
            REAL *dWp = mine, *dbp = mine + UC, *V = dbp + OC, *dYh = V + 36 * PV;
            const int by_images = split == WG6_BY_IMAGES;
            const ptrdiff_t n0 = N * tid / nth, n1 = N * (tid + 1) / nth;
            const ptrdiff_t t0 = by_images ? n0 * Timg : T * tid / nth;
            const ptrdiff_t t1 = by_images ? n1 * Timg : T * (tid + 1) / nth;
            ptrdiff_t zn = n0, zr = 0;   /* dx zeroed up to (image, row) */
            for (ptrdiff_t oc = 0; oc < OC; ++oc) dbp[oc] = 0;
            /* the first block's GEMMs overwrite the partial dU: no 36*OC*C zeroing pass */
            if (dweight && t0 == t1) for (ptrdiff_t i = 0; i < UC; ++i) dWp[i] = 0;
            for (ptrdiff_t b0 = t0; b0 < t1; b0 += Tb) {
                const ptrdiff_t b1 = b0 + Tb < t1 ? b0 + Tb : t1;
                if (dweight)
                    FN(wg6_input_block)(V, rb, x, b0, b1, Tb, PV, C, 0, C, H, W, PH, PW, TH, TW);
                FN(wg6_grad_block)(dYh, PM, dbias ? dbp : (REAL *)0, rb, dy, b0, b1, Tb, OC, 0,
                                   OC, OH, OW, TH, TW);
                /* dV over V (its plane xi is consumed first) */
                FN(wg6_backward_gemms)(dweight ? dWp : (REAL *)0, dx ? V : (REAL *)0, Ut, V,
                                       dYh, b0 == t0 ? (REAL)0 : (REAL)1, b1 - b0, Tb, PV, PM,
                                       C, OC, 0, OC, 0, C, 0, rb);
                if (!dx) continue;
                ptrdiff_t zn_to, zr_to;
                FN(wg6_tile_reach)(b1 - 1, Timg, TW, PH, H, &zn_to, &zr_to);
                FN(wg6_zero_dx_rows)(dx, &zn, &zr, zn_to, zr_to, C, 0, C, H, W);
                FN(wg6_scatter_block)(dx, rb, V, PV, b0, b1, Tb, C, 0, C, H, W, PH, PW, TH, TW);
            }
            if (dx)   /* images with no tiles (empty output) */
                FN(wg6_zero_dx_rows)(dx, &zn, &zr, n1, 0, C, 0, C, H, W);
        }
#pragma omp barrier
        /* dw = G^T dU G, the threads' partials summed chunk by chunk as it goes */
        const ptrdiff_t nq = dweight ? OC * C : 0;
        const int nparts = split == WG6_BY_CHANNELS ? 1 : nth;
#pragma omp for schedule(static)
        for (ptrdiff_t q0 = 0; q0 < nq; q0 += WG_WCHUNK)
            FN(wg6_weight_adjoint)(dweight, parts, OC * C, nparts, per, q0,
                                   nq - q0 < WG_WCHUNK ? nq - q0 : WG_WCHUNK);
    }
    if (dbias) {
        for (ptrdiff_t oc = 0; oc < OC; ++oc) {
            REAL s = parts[UC + oc];
            for (int t = 1; t < used; ++t) s += parts[t * per + UC + oc];
            dbias[oc] = s;
        }
    }
    fc_blas_threads_end(blas_prev);
}

/* dx (or NULL), dweight (or NULL), dbias (or NULL). */
static void FN(wg6_backward)(REAL *dx, REAL *dweight, REAL *dbias, REAL *workspace,
                             const REAL *dy, const REAL *x, const REAL *weight, ptrdiff_t N,
                             ptrdiff_t C, ptrdiff_t H, ptrdiff_t W, ptrdiff_t OC, ptrdiff_t PH,
                             ptrdiff_t PW, int n_threads)
{
    const ptrdiff_t OH = H + 2 * PH - WG_R + 1, OW = W + 2 * PW - WG_R + 1, RR = WG_R * WG_R;
    if (N <= 0) {
        if (dweight) for (ptrdiff_t i = 0; i < OC * C * RR; ++i) dweight[i] = 0;
        if (dbias) for (ptrdiff_t i = 0; i < OC; ++i) dbias[i] = 0;
        return;
    }
    /* one fused pass when images are enough for every thread or channels are split (also for
     * dweight alone: the same split gives the same dweight with or without dx); else (a batch
     * smaller than the thread count) tiles are split: weights first, then dx as a forward
     * convolution of dy */
    const ptrdiff_t T = ((OH + WG_M - 1) / WG_M) * ((OW + WG_M - 1) / WG_M) * N;
    const int split = wg6_split_channels(C, OC, T, n_threads) ? WG6_BY_CHANNELS
                      : (ptrdiff_t)wg6_nt(n_threads) <= N   ? WG6_BY_IMAGES
                                                            : WG6_BY_TILES;
    const int fused = split != WG6_BY_TILES;
    if (fused || dweight || dbias)
        FN(wg6_backward_pass)(fused ? dx : (REAL *)0, dweight, dbias, workspace, dy, x, weight, N,
                              C, H, W, OC, PH, PW, split, n_threads);
    if (fused || !dx) return;
    /* dx = dy (N, OC, OH, OW) convolved with wf[c][oc] = w[oc][c] rotated 180 degrees, padding
     * R - 1 - P: its output is (H, W) again. wf goes first in the workspace, the forward's
     * after. */
    REAL *wf = workspace;
    for (ptrdiff_t oc = 0; oc < OC; ++oc)
        for (ptrdiff_t c = 0; c < C; ++c)
            for (ptrdiff_t k = 0; k < RR; ++k)
                wf[(c * OC + oc) * RR + k] = weight[(oc * C + c) * RR + RR - 1 - k];
    FN(wg6_forward)(dx, workspace + RR * OC * C, dy, wf, (const REAL *)0, N, OC, OH, OW, C,
                    WG_R - 1 - PH, WG_R - 1 - PW, 0, n_threads);
}

#undef WG_MM
#undef WG_GEMM
#undef WG6_PACK
#undef WG6_PLANE_GEMM
#undef WG6_PREFETCH_NEXT
#undef WG6_PREFETCH_SPAN
#undef WG6_SPLIT
#undef WG6_ROWS8
#undef WG6_ROWS8_MIN_TW
#undef WG6A_RUNS
#undef WG6_BLAS_ROWS
