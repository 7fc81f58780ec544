/* softmax_xent.c: the classifier's loss, softmax and cross-entropy fused, forward and backward,
 * each one pass over the logits (the max, then exp with the sum, then the scaling, all on a row
 * in L1), the forward optionally writing the gradient too (the layer's backward is then free).
 * It was ~10 NumPy operations: 23-25 us a forward and 31-33 a forward + backward on
 * (100, 10) or (8, 1000) float logits, almost all per-call overhead (KVM guest, Zen 4). exp is
 * our own vectorisable polynomial (vexp_impl.h), so the body is built per instruction set. */
#include <math.h>
#include <stdint.h>

#include "fastcnn.h"
#include "parallel.h"
#include "simd.h"

#define FC_IMPL "softmax_xent_impl.h"
#define FC_SIMD_BODY "dtype_variants.h"
#include "simd_targets.h"
#undef FC_SIMD_BODY
#undef FC_IMPL

/* The first label outside [0, K), or -1: checked before any work, so a bad call writes nothing. */
static ptrdiff_t sx_bad_label(const int64_t *labels, ptrdiff_t N, ptrdiff_t K)
{
    for (ptrdiff_t n = 0; n < N; ++n)
        if (labels[n] < 0 || labels[n] >= K) return n;
    return -1;
}

#define SX_PUBLIC(real, sfx)                                                                      \
    ptrdiff_t fc_softmax_xent_forward_##sfx(real *probs, real *grad, double *loss,                \
                                            double *row_loss, const real *logits,                 \
                                            const int64_t *labels, ptrdiff_t N, ptrdiff_t K,      \
                                            int n_threads)                                        \
    {                                                                                             \
        ptrdiff_t bad = sx_bad_label(labels, N, K);                                               \
        if (bad >= 0) return bad;                                                                 \
        FC_SIMD_PICK(sx_forward, sfx)(probs, grad, row_loss, logits, labels, N, K, n_threads);    \
        double sum = 0;                                                                           \
        for (ptrdiff_t n = 0; n < N; ++n) sum += row_loss[n];                                     \
        *loss = sum / (double)N;                                                                  \
        return -1;                                                                                \
    }                                                                                             \
    ptrdiff_t fc_softmax_xent_backward_##sfx(real *d, const real *probs, const int64_t *labels,   \
                                             ptrdiff_t N, ptrdiff_t K, double scale,              \
                                             int n_threads)                                       \
    {                                                                                             \
        ptrdiff_t bad = sx_bad_label(labels, N, K);                                               \
        if (bad >= 0) return bad;                                                                 \
        FC_SIMD_PICK(sx_backward, sfx)(d, probs, labels, N, K, scale, n_threads);                 \
        return -1;                                                                                \
    }

SX_PUBLIC(float, f32)
SX_PUBLIC(double, f64)
