/* direct.c: stride-1 convolution computed directly from a padded copy of each image, without
 * im2col or GEMM: forward (bias, fused ReLU), backward-weights (+ bias) and backward-data (the
 * forward on dy with the kernel turned). Meant for the layers
 * where im2col + GEMM wastes most of the machine: few input channels (a network's first layer,
 * C*KH*KW of 9..75), where the GEMM's inner dimension is too short for BLAS to reach speed and
 * the column matrix costs more to build than to multiply.
 *
 * The inner loops are compiled three times, for AVX-512, AVX2+FMA and the portable baseline
 * (direct_kernels.h under `#pragma GCC target`), and chosen at run time by fc_simd_active(). */
#include <stdint.h>
#include <string.h>

#include "fastcnn.h"
#include "parallel.h"
#include "simd.h"

#define DIRECT_OCB 8    /* output channels per block of repacked weights */
#define DIRECT_ROWS 2   /* output rows per forward register tile */
#define DIRECT_KWB 3    /* kernel taps per backward-weights register tile */
/* the same for kernel widths that are multiples of 5, where the registers allow (no group of
 * those reaches past KW, so the frame and the sums need no room for them) */
#define DIRECT_KWB_WIDE 5
#define DIRECT_KWB_MAX 5
#define DIRECT_VL 16    /* at least the lanes of any variant's vector */

/* The padded frame of one image: rows for whole DIRECT_ROWS tiles, columns for whole vectors
 * plus the kernel width and the taps a last DIRECT_KWB group may read past it. */
static void direct_frame(ptrdiff_t H, ptrdiff_t PH, ptrdiff_t KH, ptrdiff_t W, ptrdiff_t PW,
                         ptrdiff_t KW, ptrdiff_t *HP, ptrdiff_t *WP)
{
    const ptrdiff_t OH = H + 2 * PH - KH + 1, OW = W + 2 * PW - KW + 1;
    *HP = (OH + DIRECT_ROWS - 1) / DIRECT_ROWS * DIRECT_ROWS + KH - 1;
    *WP = (OW + DIRECT_VL - 1) / DIRECT_VL * DIRECT_VL + KW + DIRECT_KWB - 1;
}

/* Elements of the repacked weights: whole blocks of DIRECT_OCB channels (per K). */
static ptrdiff_t direct_blocks(ptrdiff_t OC)
{
    return (OC + DIRECT_OCB - 1) / DIRECT_OCB * DIRECT_OCB;
}

/* Backward-weights, per thread: the tap sums, vector and scalar, for every tap of kernel rows
 * rounded up to DIRECT_KWB, DIRECT_OCB channels (bounds every variant's). */
static ptrdiff_t direct_sums(ptrdiff_t C, ptrdiff_t KH, ptrdiff_t KW)
{
    const ptrdiff_t kwg = (KW + DIRECT_KWB - 1) / DIRECT_KWB * DIRECT_KWB;
    return C * KH * kwg * DIRECT_OCB * (DIRECT_VL + 1);
}

/* Rows of a dy strip: about 2048 elements for DIRECT_OCB channels (8 KB of float: L1-resident
 * beside the input rows), at least one row. */
static ptrdiff_t direct_strip_rows(ptrdiff_t OW)
{
    return OW * DIRECT_OCB >= 2048 ? 1 : 2048 / (OW * DIRECT_OCB);
}

static ptrdiff_t direct_strip(ptrdiff_t OW) { return DIRECT_OCB * direct_strip_rows(OW) * OW; }

/* partial dweight and dbias, 64 bytes of alignment slack, tap sums, dy strip, padded image */
static ptrdiff_t direct_weights_per_thread(ptrdiff_t C, ptrdiff_t KH, ptrdiff_t KW, ptrdiff_t HP,
                                           ptrdiff_t WP, ptrdiff_t OC, ptrdiff_t OW)
{
    return OC * C * KH * KW + OC + 16 + direct_sums(C, KH, KW) + direct_strip(OW) + C * HP * WP;
}

int fc_conv2d_direct_supported(ptrdiff_t SH, ptrdiff_t SW) { return SH == 1 && SW == 1; }

/* Forward: repacked weights, then one padded image per thread. Backward-weights: per thread a
 * partial dweight and dbias, a zero row and one padded image. */
ptrdiff_t fc_conv2d_direct_workspace(ptrdiff_t C, ptrdiff_t H, ptrdiff_t W, ptrdiff_t KH,
                                     ptrdiff_t KW, ptrdiff_t PH, ptrdiff_t PW, ptrdiff_t OC,
                                     int n_threads)
{
    ptrdiff_t HP, WP, K = C * KH * KW, nt = n_threads < 1 ? 1 : n_threads;
    direct_frame(H, PH, KH, W, PW, KW, &HP, &WP);
    const ptrdiff_t OH = H + 2 * PH - KH + 1, OW = W + 2 * PW - KW + 1;
    ptrdiff_t forward = direct_blocks(OC) * K + nt * C * HP * WP;
    ptrdiff_t weights = nt * direct_weights_per_thread(C, KH, KW, HP, WP, OC, OW);
    /* backward-data: the turned kernel, then a forward of OC -> C channels on dy */
    ptrdiff_t HPd, WPd;
    direct_frame(OH, KH - 1 - PH, KH, OW, KW - 1 - PW, KW, &HPd, &WPd);
    ptrdiff_t data = C * OC * KH * KW + direct_blocks(C) * OC * KH * KW + nt * OC * HPd * WPd;
    ptrdiff_t most = forward > weights ? forward : weights;
    return most > data ? most : data;
}

/* ---- the per-image kernels, once per dtype and instruction set ------------------------------
 * DIRECT_VB: vector bytes; DIRECT_OCG_FWD/_DW/_DW_WIDE: channels per register tile, so that the
 * tiles fit the register file: 4x2 (forward; 8x2 measured slower), 8x3 and 4x5 (weights) of
 * AVX-512's 32 registers, 4x2 and 4x3 of AVX2's and SSE's 16 (no 5-tap tile there: 0).
 * DIRECT_PIN_DY: keep each dy vector in a register (dweight_tile), under AVX-512: on 16
 * registers a 4x3 tile and its 3 input vectors fill them, and the pin measured even there. float
 * uses 32-byte vectors under AVX-512 too: the same speed on Zen 4 and half the waste on the 24-
 * and 28-wide rows of MNIST-sized layers. */
#if FC_X86_VARIANTS
#pragma GCC push_options
#pragma GCC target("avx512f,avx512vl,avx512dq,avx512bw,avx2,fma")
#define DIRECT_OCG_FWD 4
#define DIRECT_OCG_DW 8
#define DIRECT_OCG_DW_WIDE 4
#define DIRECT_PIN_DY 1
#define REAL float
#define DIRECT_IREAL int32_t
#define DIRECT_VB 32
#define KN(name) name##_f32_avx512
#include "direct_kernels.h"
#undef REAL
#undef DIRECT_IREAL
#undef DIRECT_VB
#undef KN
#define REAL double
#define DIRECT_IREAL int64_t
#define DIRECT_VB 64
#define KN(name) name##_f64_avx512
#include "direct_kernels.h"
#undef REAL
#undef DIRECT_IREAL
#undef DIRECT_VB
#undef KN
#undef DIRECT_OCG_FWD
#undef DIRECT_OCG_DW
#undef DIRECT_OCG_DW_WIDE
#undef DIRECT_PIN_DY
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx2,fma")
#define DIRECT_OCG_FWD 4
#define DIRECT_OCG_DW 4
#define DIRECT_OCG_DW_WIDE 0
#define DIRECT_PIN_DY 0
#define DIRECT_VB 32
#define REAL float
#define DIRECT_IREAL int32_t
#define KN(name) name##_f32_avx2
#include "direct_kernels.h"
#undef REAL
#undef DIRECT_IREAL
#undef KN
#define REAL double
#define DIRECT_IREAL int64_t
#define KN(name) name##_f64_avx2
#include "direct_kernels.h"
#undef REAL
#undef DIRECT_IREAL
#undef KN
#undef DIRECT_VB
#undef DIRECT_OCG_FWD
#undef DIRECT_OCG_DW
#undef DIRECT_OCG_DW_WIDE
#undef DIRECT_PIN_DY
#pragma GCC pop_options
#endif

#define DIRECT_OCG_FWD 4
#define DIRECT_OCG_DW 4
#define DIRECT_OCG_DW_WIDE 0
#define DIRECT_PIN_DY 0
#define DIRECT_VB 16
#define REAL float
#define DIRECT_IREAL int32_t
#define KN(name) name##_f32_portable
#include "direct_kernels.h"
#undef REAL
#undef DIRECT_IREAL
#undef KN
#define REAL double
#define DIRECT_IREAL int64_t
#define KN(name) name##_f64_portable
#include "direct_kernels.h"
#undef REAL
#undef DIRECT_IREAL
#undef KN
#undef DIRECT_VB
#undef DIRECT_OCG_FWD
#undef DIRECT_OCG_DW
#undef DIRECT_OCG_DW_WIDE
#undef DIRECT_PIN_DY

/* ---- the drivers, once per dtype ------------------------------------------------------------ */
#define REAL float
#define FN(name) name##_f32
#define FN_ISA(name, isa) name##_f32_##isa
#include "direct_impl.h"
#undef REAL
#undef FN
#undef FN_ISA

#define REAL double
#define FN(name) name##_f64
#define FN_ISA(name, isa) name##_f64_##isa
#include "direct_impl.h"
#undef REAL
#undef FN
#undef FN_ISA
