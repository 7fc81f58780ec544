/* winograd6.c: stride-1 convolution by Winograd's minimal filtering on 6x6 input tiles (Lavin &
 * Gray, arXiv:1509.09308), forward, backward-data and backward-weights, any padding, for two
 * kernels: F(4x4,3x3) (4x fewer multiplications than im2col; F(2x2,3x3) in winograd.c: 2.25x)
 * and F(2x2,5x5) (2.8x fewer). Both take 36 GEMMs over channels per block of tiles and share the
 * input transform; the price is accuracy (transform entries up to 8: float32 relative error a
 * few 1e-6) and tiles that may overhang the output. The type-generic body is in
 * winograd6_impl.h, included once per (dtype, variant); conventions as conv.c. */
#include <string.h>

#include "fastcnn.h"
#include "parallel.h"
#include "simd.h"
#if FC_X86_VARIANTS
#include <immintrin.h>   /* the AVX-512 row gathers and scatters (winograd6_impl.h) */
#endif

/* Elements a block's transformed planes may take; tuned on Zen 4 (1 MB L2 per core): twice this
 * scaled worse at 2 threads (16->16 on 28x28: 8.7 ms instead of 5.8). */
#ifndef FC_WG6_BLOCK_ELEMS
#define FC_WG6_BLOCK_ELEMS (128 * 1024)
#endif

/* Tiles per block: the 36 transformed input planes (C, Tb) and product planes (OC, Tb) should
 * stay near L2 while each GEMM keeps a usefully wide N dimension. Wide layers instead take
 * blocks of up to 128 tiles, as many as OC*C / (C + OC): each block's 36 GEMMs read (and OpenBLAS
 * packs) all of the transformed filters U (36*OC*C), which outweighs the planes' trips past L2
 * there (AlexNet's 384->384 on 13x13 at batch 8, one thread: 83 -> 67 ms per fwd+bwd with 128
 * tiles instead of 32; 128->192 on 7x7 lost with 64, hence only from OC*C = 32768). */
static ptrdiff_t wg6_block(ptrdiff_t C, ptrdiff_t OC)
{
    ptrdiff_t tb = (ptrdiff_t)FC_WG6_BLOCK_ELEMS / (36 * (C + OC));
    ptrdiff_t wide = OC * C / (C + OC);
    if (OC * C >= 32768 && tb < wide) tb = wide < 128 ? wide : 128;
    if (tb < 32) tb = 32;
    if (tb > 1024) tb = 1024;
    return tb & ~(ptrdiff_t)15;
}

/* Distance between two transformed planes: rows*Tb plus one cache line, so the 36 streams a
 * transform writes do not alias the same L1 sets (as in winograd.c). */
static ptrdiff_t wg6_plane(ptrdiff_t rows, ptrdiff_t Tb) { return rows * Tb + 16; }

/* Elements past the block's tiles in each plane the row gathers fill (winograd6_impl.h: the AVX2
 * ones store whole vectors of 8 tiles). */
#define WG6_SLACK 8

/* Forward, per thread: V (36 planes of C*Tb), M (36 planes of OC*Tb), transform scratch of 40
 * planes of Tb + WG6_SLACK (the output's and the gradient's M*M + 6*M; the input's 36). */
static ptrdiff_t wg6_forward_per_thread(ptrdiff_t C, ptrdiff_t OC)
{
    ptrdiff_t tb = wg6_block(C, OC);
    return 36 * (wg6_plane(C, tb) + wg6_plane(OC, tb)) + 40 * (tb + WG6_SLACK);
}

/* Backward-weights, per thread: partial dU (36*OC*C), partial dbias (OC), then as forward. */
static ptrdiff_t wg6_weights_per_thread(ptrdiff_t C, ptrdiff_t OC)
{
    return 36 * OC * C + OC + wg6_forward_per_thread(C, OC);
}

int fc_conv2d_winograd6_supported(ptrdiff_t R, ptrdiff_t KH, ptrdiff_t KW, ptrdiff_t SH,
                                  ptrdiff_t SW, ptrdiff_t PH, ptrdiff_t PW)
{
    return (R == 3 || R == 5) && KH == R && KW == R && SH == 1 && SW == 1 && PH >= 0 && PW >= 0;
}

/* Whether the threads split the filter transform inside the parallel region (behind a barrier)
 * rather than one thread running it before: on wide layers it writes 36*OC*C elements, which on
 * AlexNet's 384->384 (13x13, batch 8) was 12% of the forward's samples at 2 threads with the
 * second thread idle. Small ones stay before the region: no barrier, which matters when a core
 * is shared and a waiting thread sleeps. */
static int wg6_split_weights(ptrdiff_t OC, ptrdiff_t C, int nt)
{
    return nt > 1 && OC * C >= 16384;
}

/* Whether the threads split the channels of each block of tiles rather than the tiles: on wide
 * layers (as wg6_block's) with fewer tiles than one block per thread. Split by tiles, every
 * thread streams all of U (36*OC*C) through its GEMMs for its few tiles, and in the backward
 * sums a partial dU of that size; split by channels, each streams its share of U and writes its
 * rows of dU, for two barriers per block. Fwd+bwd at 2 threads, tiles -> channels split
 * (alternating runs, medians): AlexNet's 384->384, 256->384, 384->256 on 13x13 at batch 8 (128
 * tiles) 40.1 -> 32.6, 27.3 -> 22.6, 29.5 -> 23.7 ms; 192->192 on 11x11 x13 14.4 -> 8.7. */
static int wg6_split_channels(ptrdiff_t C, ptrdiff_t OC, ptrdiff_t T, int n_threads)
{
    return n_threads > 1 && OC * C >= 32768 && T > 0
           && T < (ptrdiff_t)n_threads * wg6_block(C, OC);
}

/* How the fused backward (wg6_backward_pass) splits the work between the threads. */
enum { WG6_BY_TILES, WG6_BY_IMAGES, WG6_BY_CHANNELS };

static int wg6_nt(int n_threads) { return n_threads < 1 ? 1 : n_threads; }

/* U (36*OC*C) shared, then the per-thread parts. */
ptrdiff_t fc_conv2d_winograd6_forward_workspace(ptrdiff_t R, ptrdiff_t C, ptrdiff_t H,
                                                ptrdiff_t W, ptrdiff_t PH, ptrdiff_t PW,
                                                ptrdiff_t OC, int n_threads)
{
    (void)R; (void)H; (void)W; (void)PH; (void)PW;
    return 36 * OC * C + wg6_nt(n_threads) * wg6_forward_per_thread(C, OC);
}

/* The larger of the fused backward's (U^T, then the per-thread parts of wg6_backward_pass) and,
 * for batches smaller than the thread count, backward-data's (the flipped kernel, then a forward
 * of OC -> C channels on dy (OH, OW) with padding R - 1 - P). */
ptrdiff_t fc_conv2d_winograd6_backward_workspace(ptrdiff_t R, ptrdiff_t C, ptrdiff_t H,
                                                 ptrdiff_t W, ptrdiff_t PH, ptrdiff_t PW,
                                                 ptrdiff_t OC, int n_threads)
{
    ptrdiff_t OH = H + 2 * PH - R + 1, OW = W + 2 * PW - R + 1;
    ptrdiff_t weights = 36 * OC * C + wg6_nt(n_threads) * wg6_weights_per_thread(C, OC);
    ptrdiff_t data = R * R * OC * C
                     + fc_conv2d_winograd6_forward_workspace(R, OC, OH, OW, R - 1 - PH,
                                                             R - 1 - PW, C, n_threads);
    return weights > data ? weights : data;
}

/* The element type of the inputs p: REAL, or a vector of them (A and A^T run on registers in
 * the AVX-512 narrow transforms of winograd6_impl.h). */
#define WG_ELEM(p) __typeof__((p)[0])

/* G's and G^T's fractions as products with the rounded reciprocals (each differs from the
 * quotient by an ulp at most): as divisions (vdivps, 36 a filter in the transform, 45 in its
 * adjoint) the filter-bound case of 384->384 on one 4x4 image took 5.8-6.3 ms forward and
 * 11.8-12.4 backward against 5.3-5.8 and 10.9-11.5 (Zen 4, 1 thread, alternating processes). */
#define WG_THIRD ((REAL)(1.0 / 3))
#define WG_FIFTEENTH ((REAL)(1.0 / 15))

/* ---- F(4x4,3x3): A^T (4x6), its adjoint A, G (6x3), its adjoint G^T; inputs p[0], p[s], ... */
#define WG_AT_43(o, p, s)                                                                     \
    do {                                                                                      \
        const WG_ELEM(p) m0 = (p)[0], m1 = (p)[(s)], m2 = (p)[2 * (s)], m3 = (p)[3 * (s)];    \
        const WG_ELEM(p) m4 = (p)[4 * (s)], m5 = (p)[5 * (s)], p_ = m1 + m2, q_ = m1 - m2;    \
        o[0] = m0 + p_ + m3 + m4;                                                             \
        o[1] = q_ + (REAL)0.5 * m3 - (REAL)2 * m4;                                            \
        o[2] = p_ + (REAL)0.25 * m3 + (REAL)4 * m4;                                           \
        o[3] = q_ + (REAL)0.125 * m3 - (REAL)8 * m4 + m5;                                     \
    } while (0)
#define WG_A_43(o, p, s)                                                                      \
    do {                                                                                      \
        const WG_ELEM(p) e0 = (p)[0], e1 = (p)[(s)], e2 = (p)[2 * (s)], e3 = (p)[3 * (s)];    \
        const WG_ELEM(p) ev_ = e0 + e2, od_ = e1 + e3;                                        \
        o[0] = e0;                                                                            \
        o[1] = ev_ + od_;                                                                     \
        o[2] = ev_ - od_;                                                                     \
        o[3] = e0 + (REAL)0.5 * e1 + (REAL)0.25 * e2 + (REAL)0.125 * e3;                      \
        o[4] = e0 - (REAL)2 * e1 + (REAL)4 * e2 - (REAL)8 * e3;                               \
        o[5] = e3;                                                                            \
    } while (0)
#define WG_G_43(o, p, s)                                                                      \
    do {                                                                                      \
        const REAL g0 = (p)[0], g1 = (p)[(s)], g2 = (p)[2 * (s)];                             \
        o[0] = g0;                                                                            \
        o[1] = (g0 + g1 + g2) * WG_THIRD;                                                     \
        o[2] = (g1 - g0 - g2) * WG_THIRD;                                                     \
        o[3] = -((REAL)16 * g0 + (REAL)8 * g1 + (REAL)4 * g2) * WG_FIFTEENTH;                 \
        o[4] = (g0 - (REAL)2 * g1 + (REAL)4 * g2) * WG_FIFTEENTH;                             \
        o[5] = g2;                                                                            \
    } while (0)
#define WG_GT_43(o, p, s)                                                                     \
    do {                                                                                      \
        const REAL v0 = (p)[0], v1 = (p)[(s)], v2 = (p)[2 * (s)], v3 = (p)[3 * (s)];          \
        const REAL v4 = (p)[4 * (s)], v5 = (p)[5 * (s)];                                      \
        o[0] = v0 + (v1 - v2) * WG_THIRD + (v4 - (REAL)16 * v3) * WG_FIFTEENTH;               \
        o[1] = (v1 + v2) * WG_THIRD - ((REAL)8 * v3 + (REAL)2 * v4) * WG_FIFTEENTH;           \
        o[2] = (v1 - v2) * WG_THIRD + ((REAL)4 * (v4 - v3)) * WG_FIFTEENTH + v5;              \
    } while (0)

/* ---- F(2x2,5x5): A^T (2x6), A, G (6x5), G^T, at the same points ------------------------------ */
#define WG_AT_25(o, p, s)                                                                     \
    do {                                                                                      \
        const WG_ELEM(p) m0 = (p)[0], m1 = (p)[(s)], m2 = (p)[2 * (s)], m3 = (p)[3 * (s)];    \
        const WG_ELEM(p) m4 = (p)[4 * (s)], m5 = (p)[5 * (s)];                                \
        o[0] = m0 + (m1 + m2) + (m3 + m4);                                                    \
        o[1] = (m1 - m2) + (REAL)0.5 * m3 - (REAL)2 * m4 + m5;                                \
    } while (0)
#define WG_A_25(o, p, s)                                                                      \
    do {                                                                                      \
        const WG_ELEM(p) e0 = (p)[0], e1 = (p)[(s)];                                          \
        o[0] = e0;                                                                            \
        o[1] = e0 + e1;                                                                       \
        o[2] = e0 - e1;                                                                       \
        o[3] = e0 + (REAL)0.5 * e1;                                                           \
        o[4] = e0 - (REAL)2 * e1;                                                             \
        o[5] = e1;                                                                            \
    } while (0)
#define WG_G_25(o, p, s)                                                                      \
    do {                                                                                      \
        const REAL g0 = (p)[0], g1 = (p)[(s)], g2 = (p)[2 * (s)], g3 = (p)[3 * (s)];          \
        const REAL g4 = (p)[4 * (s)];                                                         \
        o[0] = g0;                                                                            \
        o[1] = (g0 + g1 + g2 + g3 + g4) * WG_THIRD;                                           \
        o[2] = (g1 + g3 - g0 - g2 - g4) * WG_THIRD;                                           \
        o[3] = -((REAL)16 * g0 + (REAL)8 * g1 + (REAL)4 * g2 + (REAL)2 * g3 + g4) * WG_FIFTEENTH; \
        o[4] = (g0 - (REAL)2 * g1 + (REAL)4 * g2 - (REAL)8 * g3 + (REAL)16 * g4) * WG_FIFTEENTH;  \
        o[5] = g4;                                                                            \
    } while (0)
#define WG_GT_25(o, p, s)                                                                     \
    do {                                                                                      \
        const REAL v0 = (p)[0], v1 = (p)[(s)], v2 = (p)[2 * (s)], v3 = (p)[3 * (s)];          \
        const REAL v4 = (p)[4 * (s)], v5 = (p)[5 * (s)];                                      \
        const REAL a_ = (v1 + v2) * WG_THIRD, b_ = (v1 - v2) * WG_THIRD;                      \
        o[0] = v0 + b_ + (v4 - (REAL)16 * v3) * WG_FIFTEENTH;                                 \
        o[1] = a_ - ((REAL)8 * v3 + (REAL)2 * v4) * WG_FIFTEENTH;                             \
        o[2] = b_ + (REAL)4 * (v4 - v3) * WG_FIFTEENTH;                                       \
        o[3] = a_ - ((REAL)2 * v3 + (REAL)8 * v4) * WG_FIFTEENTH;                             \
        o[4] = b_ + ((REAL)16 * v4 - v3) * WG_FIFTEENTH + v5;                                 \
    } while (0)

/* ---- instantiations: every (dtype, variant) once per instruction set --------------------------
 * The transforms are loops the compiler vectorises; built for the x86-64 baseline alone they ran
 * on 4-lane SSE vectors and were 60% of a 16->16 layer's forward. winograd6_variants.h holds the
 * four (dtype, variant) instantiations; FC_ISA names the instruction set in every function. */
#define FC_SIMD_BODY "winograd6_variants.h"
#include "simd_targets.h"
#undef FC_SIMD_BODY

/* ---- the public entry points: R picks the variant (3: F(4x4,3x3), 5: F(2x2,5x5)), then
 * fc_simd_active() the instruction set ------------------------------------------------------- */
#define WG6_PUBLIC(real, sfx)                                                                      \
    void fc_conv2d_winograd6_forward_##sfx(ptrdiff_t R, real *y, real *workspace,                  \
                                           const real *x, const real *weight,                      \
                                           const real *bias, ptrdiff_t N, ptrdiff_t C,             \
                                           ptrdiff_t H, ptrdiff_t W, ptrdiff_t OC,                 \
                                           ptrdiff_t PH, ptrdiff_t PW, int relu,                   \
                                           int n_threads)                                          \
    {                                                                                              \
        if (R == 5)                                                                                \
            FC_SIMD_PICK(wg6_forward, sfx##_25)(y, workspace, x, weight, bias, N, C, H, W, OC,     \
                                                PH, PW, relu, n_threads);                          \
        else                                                                                       \
            FC_SIMD_PICK(wg6_forward, sfx##_43)(y, workspace, x, weight, bias, N, C, H, W, OC,     \
                                                PH, PW, relu, n_threads);                          \
    }                                                                                              \
    void fc_conv2d_winograd6_backward_##sfx(ptrdiff_t R, real *dx, real *dweight, real *dbias,     \
                                            real *workspace, const real *dy, const real *x,        \
                                            const real *weight, ptrdiff_t N, ptrdiff_t C,          \
                                            ptrdiff_t H, ptrdiff_t W, ptrdiff_t OC,                \
                                            ptrdiff_t PH, ptrdiff_t PW, int n_threads)             \
    {                                                                                              \
        if (R == 5)                                                                                \
            FC_SIMD_PICK(wg6_backward, sfx##_25)(dx, dweight, dbias, workspace, dy, x, weight,     \
                                                 N, C, H, W, OC, PH, PW, n_threads);               \
        else                                                                                       \
            FC_SIMD_PICK(wg6_backward, sfx##_43)(dx, dweight, dbias, workspace, dy, x, weight,     \
                                                 N, C, H, W, OC, PH, PW, n_threads);               \
    }

WG6_PUBLIC(float, f32)
WG6_PUBLIC(double, f64)
