/* lrn.c: local response normalisation across channels (Krizhevsky et al. 2012, 3.3), forward
 * and backward, in one threaded pass each (API: fastcnn.h). NumPy took ~12 single-threaded
 * passes over the tensor per direction: AlexNet (32x32)'s two LRN layers were a quarter of its
 * 2-thread training step. Bodies in lrn_impl.h, compiled per instruction set (the square roots
 * and divisions vectorise 16 wide on AVX-512) and picked at run time. */
#include <math.h>
#include <stddef.h>

#include "fastcnn.h"
#include "parallel.h"
#include "simd.h"

/* Positions of one H*W plane per unit of work: 4 KB rows of float, `size` of them live. */
#define LRN_CHUNK 1024
/* Below this many elements one thread (the fork costs more than the pass). */
#define LRN_PARALLEL_MIN 65536

enum { LRN_BETA_OTHER, LRN_BETA_075, LRN_BETA_05, LRN_BETA_1, LRN_BETA_0 };

static int lrn_power_mode(double beta)
{
    return beta == 0.75 ? LRN_BETA_075 : beta == 0.5 ? LRN_BETA_05 : beta == 1.0 ? LRN_BETA_1
           : beta == 0.0 ? LRN_BETA_0 : LRN_BETA_OTHER;
}

/* Units of work: (image, chunk of LRN_CHUNK positions). */
static ptrdiff_t lrn_chunks(ptrdiff_t HW) { return (HW + LRN_CHUNK - 1) / LRN_CHUNK; }

/* Unit u's offset into the (N, C, HW) tensors (image n, channel 0, its first position) and its
 * number of positions. */
static void lrn_unit(ptrdiff_t u, ptrdiff_t C, ptrdiff_t HW, ptrdiff_t *off, ptrdiff_t *len)
{
    const ptrdiff_t chunks = lrn_chunks(HW), n = u / chunks, p0 = (u - n * chunks) * LRN_CHUNK;
    *len = HW - p0 < LRN_CHUNK ? HW - p0 : LRN_CHUNK;
    *off = n * C * HW + p0;
}

static int lrn_threads(int n_threads, ptrdiff_t N, ptrdiff_t C, ptrdiff_t HW)
{
    return fc_clamp_threads(n_threads, N * C * HW >= LRN_PARALLEL_MIN ? N * lrn_chunks(HW) : 1);
}

#define FC_IMPL "lrn_impl.h"
#define FC_SIMD_BODY "dtype_variants.h"
#include "simd_targets.h"
#undef FC_SIMD_BODY
#undef FC_IMPL

#define LRN_PUBLIC(real, sfx)                                                                      \
    void fc_lrn_forward_##sfx(real *y, real *scale, const real *x, ptrdiff_t N, ptrdiff_t C,       \
                              ptrdiff_t HW, ptrdiff_t size, double alpha, double beta, double k,   \
                              int n_threads)                                                       \
    {                                                                                              \
        FC_SIMD_PICK(lrn_forward, sfx)(y, scale, x, N, C, HW, size / 2, (size - 1) / 2, alpha,     \
                                       beta, k, n_threads);                                        \
    }                                                                                              \
    void fc_lrn_backward_##sfx(real *dx, real *scratch, const real *dy, const real *x,             \
                               const real *y, const real *scale, ptrdiff_t N, ptrdiff_t C,         \
                               ptrdiff_t HW, ptrdiff_t size, double alpha, double beta,            \
                               int n_threads)                                                      \
    {                                                                                              \
        FC_SIMD_PICK(lrn_backward, sfx)(dx, scratch, dy, x, y, scale, N, C, HW, size / 2,          \
                                        (size - 1) / 2, alpha, beta, n_threads);                   \
    }

LRN_PUBLIC(float, f32)
LRN_PUBLIC(double, f64)
