/* winograd.c: 3x3 stride-1 convolution by Winograd's minimal filtering F(2x2,3x3) (Lavin & Gray,
 * "Fast Algorithms for Convolutional Neural Networks", CVPR 2016 / arXiv:1509.09308): forward,
 * backward-data and backward-weights, any padding. 2.25x fewer multiplications than im2col; the
 * elementwise stage becomes 16 GEMMs over channels. The type-generic body is in winograd_impl.h,
 * included once per (dtype, instruction set); conventions as conv.c (outputs first, fc_ prefix,
 * 64-bit sizes). */
#include <string.h>

#include "fastcnn.h"
#include "parallel.h"
#include "simd.h"

/* Elements a block's transformed planes may take; tuned on Zen 4 (1 MB L2 per core). */
#ifndef FC_WG_BLOCK_ELEMS
#define FC_WG_BLOCK_ELEMS (128 * 1024)
#endif

/* Tiles per block: the 16 transformed input planes (C, Tb) and the 16 product planes (OC, Tb) of
 * a block should stay near L2 (1 MB here) while each GEMM keeps a wide N dimension. */
static ptrdiff_t wg_block(ptrdiff_t C, ptrdiff_t OC)
{
    ptrdiff_t tb = (ptrdiff_t)FC_WG_BLOCK_ELEMS / (16 * (C + OC));
    if (tb < 64) tb = 64;
    if (tb > 1024) tb = 1024;
    return tb & ~(ptrdiff_t)15;
}

/* Distance between two of the 16 transformed planes: rows*Tb plus one cache line, so the 16
 * streams a transform writes never sit a multiple of 4 KB apart (that aliased the same L1 sets
 * and made the transforms several times slower). */
static ptrdiff_t wg_plane(ptrdiff_t rows, ptrdiff_t Tb) { return rows * Tb + 16; }

static ptrdiff_t wg_ceil2(ptrdiff_t v) { return (v + 1) / 2; }

int fc_conv2d_winograd_supported(ptrdiff_t KH, ptrdiff_t KW, ptrdiff_t SH, ptrdiff_t SW,
                                 ptrdiff_t PH, ptrdiff_t PW)
{
    return KH == 3 && KW == 3 && SH == 1 && SW == 1 && PH >= 0 && PW >= 0;
}

/* Forward: U (16*OC*C) shared, then per thread V (16*C*Tb), M (16*OC*Tb), row scratch. */
ptrdiff_t fc_conv2d_winograd_forward_workspace(ptrdiff_t C, ptrdiff_t H, ptrdiff_t W,
                                               ptrdiff_t PH, ptrdiff_t PW, ptrdiff_t OC,
                                               int n_threads)
{
    (void)H; (void)PH;
    ptrdiff_t tb = wg_block(C, OC), TW = wg_ceil2(W + 2 * PW - 2);
    ptrdiff_t per = 16 * (wg_plane(C, tb) + wg_plane(OC, tb)) + 16 * tb + 32 * (TW + 1);
    return 16 * OC * C + (ptrdiff_t)(n_threads < 1 ? 1 : n_threads) * per;
}

/* Backward: U (16*OC*C) shared, then per thread V/dV (16*C*Tb), dY^ (16*OC*Tb), partial dW^
 * (16*OC*C), partial dbias (OC), row scratch. */
ptrdiff_t fc_conv2d_winograd_backward_workspace(ptrdiff_t C, ptrdiff_t H, ptrdiff_t W,
                                                ptrdiff_t PH, ptrdiff_t PW, ptrdiff_t OC,
                                                int n_threads)
{
    (void)H; (void)PH;
    ptrdiff_t tb = wg_block(C, OC), TW = wg_ceil2(W + 2 * PW - 2);
    ptrdiff_t per = 16 * (wg_plane(C, tb) + wg_plane(OC, tb)) + 16 * OC * C + OC + 16 * tb
                    + 32 * (TW + 1);
    return 16 * OC * C + (ptrdiff_t)(n_threads < 1 ? 1 : n_threads) * per;
}

/* ---- instantiations: each dtype once per instruction set (the transforms are vectorised loops:
 * 4-lane SSE code on the x86-64 baseline), picked at run time by fc_simd_active() ----------- */
#define FC_SIMD_BODY "winograd_variants.h"
#include "simd_targets.h"
#undef FC_SIMD_BODY

#define WG_PUBLIC(real, sfx)                                                                       \
    void fc_conv2d_winograd_forward_##sfx(real *y, real *workspace, const real *x,                 \
                                          const real *weight, const real *bias, ptrdiff_t N,       \
                                          ptrdiff_t C, ptrdiff_t H, ptrdiff_t W, ptrdiff_t OC,     \
                                          ptrdiff_t PH, ptrdiff_t PW, int relu, int n_threads)     \
    {                                                                                              \
        FC_SIMD_PICK(wg_forward, sfx)(y, workspace, x, weight, bias, N, C, H, W, OC, PH, PW,       \
                                      relu, n_threads);                                            \
    }                                                                                              \
    void fc_conv2d_winograd_backward_##sfx(real *dx, real *dweight, real *dbias,                   \
                                           real *workspace, const real *dy, const real *x,         \
                                           const real *weight, ptrdiff_t N, ptrdiff_t C,           \
                                           ptrdiff_t H, ptrdiff_t W, ptrdiff_t OC,                 \
                                           ptrdiff_t PH, ptrdiff_t PW, int n_threads)              \
    {                                                                                              \
        FC_SIMD_PICK(wg_backward, sfx)(dx, dweight, dbias, workspace, dy, x, weight, N, C, H,      \
                                       W, OC, PH, PW, n_threads);                                  \
    }

WG_PUBLIC(float, f32)
WG_PUBLIC(double, f64)
