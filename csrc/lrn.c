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

#define FC_SIMD_BODY "lrn_variants.h"
#include "simd_targets.h"
#undef FC_SIMD_BODY

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
