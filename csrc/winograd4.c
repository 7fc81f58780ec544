/* winograd4.c: 3x3 stride-1 convolution by Winograd's minimal filtering F(4x4,3x3) (Lavin &
 * Gray, arXiv:1509.09308): forward, backward-data and backward-weights, any padding. 4x fewer
 * multiplications than im2col (F(2x2,3x3): 2.25x) and 44% less transformed data per output; the
 * price is accuracy (transform entries up to 8: float32 relative error a few 1e-6) and 4x4 tiles
 * (an output size that is not a multiple of 4 wastes part of its last tiles). The type-generic
 * body is in winograd4_impl.h, included once per dtype; conventions as conv.c. */
#include "fastcnn.h"
#include "parallel.h"

/* Elements a block's transformed planes may take; tuned on Zen 4 (1 MB L2 per core). */
#ifndef FC_WG4_BLOCK_ELEMS
#define FC_WG4_BLOCK_ELEMS (256 * 1024)
#endif

/* Tiles per block: the 36 transformed input planes (C, Tb) and product planes (OC, Tb) should
 * stay near L2 while each GEMM keeps a usefully wide N dimension. */
static ptrdiff_t wg4_block(ptrdiff_t C, ptrdiff_t OC)
{
    ptrdiff_t tb = (ptrdiff_t)FC_WG4_BLOCK_ELEMS / (36 * (C + OC));
    if (tb < 32) tb = 32;
    if (tb > 1024) tb = 1024;
    return tb & ~(ptrdiff_t)15;
}

/* Distance between two transformed planes: rows*Tb plus one cache line, so the 36 streams a
 * transform writes do not alias the same L1 sets (as in winograd.c). */
static ptrdiff_t wg4_plane(ptrdiff_t rows, ptrdiff_t Tb) { return rows * Tb + 16; }

static ptrdiff_t wg4_ceil4(ptrdiff_t v) { return (v + 3) / 4; }

/* per-thread transform scratch: 40 planes of Tb (output's and grad's need; input's 36 fit) */
static ptrdiff_t wg4_scratch(ptrdiff_t Tb) { return 40 * Tb; }

/* Forward, per thread: V (36 planes of C*Tb), M (36 planes of OC*Tb), scratch. */
static ptrdiff_t wg4_forward_per_thread(ptrdiff_t C, ptrdiff_t OC)
{
    ptrdiff_t tb = wg4_block(C, OC);
    return 36 * (wg4_plane(C, tb) + wg4_plane(OC, tb)) + wg4_scratch(tb);
}

/* Backward-weights, per thread: partial dU (36*OC*C), partial dbias (OC), then as forward. */
static ptrdiff_t wg4_weights_per_thread(ptrdiff_t C, ptrdiff_t OC)
{
    return 36 * OC * C + OC + wg4_forward_per_thread(C, OC);
}

int fc_conv2d_winograd4_supported(ptrdiff_t KH, ptrdiff_t KW, ptrdiff_t SH, ptrdiff_t SW,
                                  ptrdiff_t PH, ptrdiff_t PW)
{
    return KH == 3 && KW == 3 && SH == 1 && SW == 1 && PH >= 0 && PW >= 0;
}

static int wg4_nt(int n_threads) { return n_threads < 1 ? 1 : n_threads; }

/* U (36*OC*C) shared, then the per-thread parts. */
ptrdiff_t fc_conv2d_winograd4_forward_workspace(ptrdiff_t C, ptrdiff_t H, ptrdiff_t W,
                                                ptrdiff_t PH, ptrdiff_t PW, ptrdiff_t OC,
                                                int n_threads)
{
    (void)H; (void)W; (void)PH; (void)PW;
    return 36 * OC * C + wg4_nt(n_threads) * wg4_forward_per_thread(C, OC);
}

/* The larger of backward-weights' (U + per-thread parts) and backward-data's (the flipped
 * kernel, then a forward of OC -> C channels on dy (OH, OW) with padding 2 - P). */
ptrdiff_t fc_conv2d_winograd4_backward_workspace(ptrdiff_t C, ptrdiff_t H, ptrdiff_t W,
                                                 ptrdiff_t PH, ptrdiff_t PW, ptrdiff_t OC,
                                                 int n_threads)
{
    ptrdiff_t OH = H + 2 * PH - 2, OW = W + 2 * PW - 2;
    ptrdiff_t weights = 36 * OC * C + wg4_nt(n_threads) * wg4_weights_per_thread(C, OC);
    ptrdiff_t data = 9 * OC * C
                     + fc_conv2d_winograd4_forward_workspace(OC, OH, OW, 2 - PH, 2 - PW, C,
                                                             n_threads);
    return weights > data ? weights : data;
}

#define REAL float
#define FN(name) name##_f32
#define GEMM fc_gemm_f32
#include "winograd4_impl.h"
#undef REAL
#undef FN
#undef GEMM

#define REAL double
#define FN(name) name##_f64
#define GEMM fc_gemm_f64
#include "winograd4_impl.h"
#undef REAL
#undef FN
#undef GEMM
