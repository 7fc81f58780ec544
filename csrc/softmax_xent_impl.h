/* softmax_xent_impl.h: the type-generic body of softmax_xent.c (REAL, FN), included once per
 * dtype and instruction set through dtype_variants.h. */
#include "vexp_impl.h"

#ifndef SX_BLOCK
#define SX_BLOCK 2048      /* elements a block of rows takes: 8-16 KB, in L1 through its passes */
#define SX_SIMD_MIN 32     /* rows this wide take simd reductions */
#endif

/* The row's max into *m, and 0; or 1 if the row holds NaN or its max is +-inf: then NaN is
 * its every probability and its loss, as the NumPy formula gives (inf - inf). -inf entries
 * under a finite max get p = 0. */
static int FN(sx_max)(REAL *m, const REAL *restrict x, ptrdiff_t K)
{
    REAL mx = x[0];
    int nan = 0;
    if (K >= SX_SIMD_MIN) {
#pragma omp simd reduction(max : mx) reduction(| : nan)
        for (ptrdiff_t k = 0; k < K; ++k) {
            const REAL v = x[k];
            mx = v > mx ? v : mx;
            nan |= v != v;
        }
    } else {
        for (ptrdiff_t k = 0; k < K; ++k) {
            const REAL v = x[k];
            mx = v > mx ? v : mx;
            nan |= v != v;
        }
    }
    *m = mx;
    return nan || mx == (REAL)INFINITY || mx == -(REAL)INFINITY;
}

/* The sum of a row of exponentials: lanes on long rows; on short ones (the study's 10 classes)
 * a plain loop, since a simd reduction's lanes cost more to set up and fold than it saves. */
static REAL FN(sx_sum)(const REAL *restrict e, ptrdiff_t K)
{
    REAL s = 0;
    if (K >= SX_SIMD_MIN) {
#pragma omp simd reduction(+ : s)
        for (ptrdiff_t k = 0; k < K; ++k) s += e[k];
    } else {
        for (ptrdiff_t k = 0; k < K; ++k) s += e[k];
    }
    return s;
}

/* The gradient of row n from its probabilities: g = s * (p - onehot(label)) (the backward's
 * arithmetic, so that either gives the same bits). */
static inline void FN(sx_grad_row)(REAL *restrict g, const REAL *restrict p, ptrdiff_t K,
                                   int64_t label, REAL s)
{
#pragma omp simd
    for (ptrdiff_t k = 0; k < K; ++k) g[k] = p[k] * s;
    g[label] -= s;
}

/* Rows [n0, n1): probs, each row's loss log(sum exp(x - max)) - (x[label] - max) and, if grad is
 * not NULL, the gradient of the mean loss (1/N: s). Three passes over the rows' block, which
 * stays in L1: shifted logits by rows, exp over the whole block (one long vector loop even when
 * rows are 10 wide), then sums, scaling and the gradient by rows. */
static void FN(sx_rows)(REAL *restrict probs, REAL *restrict grad, double *restrict row_loss,
                        const REAL *restrict logits, const int64_t *restrict labels,
                        ptrdiff_t n0, ptrdiff_t n1, ptrdiff_t K, REAL s)
{
    REAL *restrict p = probs + n0 * K;
    const REAL *restrict x = logits + n0 * K;
    for (ptrdiff_t n = n0; n < n1; ++n, p += K, x += K) {
        REAL m;
        if (FN(sx_max)(&m, x, K)) {   /* NaN filled in after the exp, which maps NaN to 0 */
            for (ptrdiff_t k = 0; k < K; ++k) p[k] = 0;
            row_loss[n] = NAN;
            continue;
        }
        row_loss[n] = (double)m - (double)x[labels[n]];
#pragma omp simd
        for (ptrdiff_t k = 0; k < K; ++k) {   /* clamped to vexp's domain: -inf and below: +0 */
            const REAL d = x[k] - m;
            p[k] = d > FN(vexp_lo) ? d : FN(vexp_lo);
        }
    }
    p = probs + n0 * K;
    const ptrdiff_t len = (n1 - n0) * K;
#pragma omp simd
    for (ptrdiff_t i = 0; i < len; ++i) p[i] = FN(vexp_nonpos)(p[i]);
    for (ptrdiff_t n = n0; n < n1; ++n, p += K) {
        if (row_loss[n] != row_loss[n]) {
            for (ptrdiff_t k = 0; k < K; ++k) p[k] = (REAL)NAN;
        } else {
            const REAL sum = FN(sx_sum)(p, K);   /* >= 1: the max's term is exp(0) */
            const REAL inv = 1 / sum;
#pragma omp simd
            for (ptrdiff_t k = 0; k < K; ++k) p[k] *= inv;
            row_loss[n] += log((double)sum);
        }
        if (grad) FN(sx_grad_row)(grad + n * K, p, K, labels[n], s);
    }
}

/* Per-row losses into row_loss (N), summed in row order afterwards by the caller so that every
 * thread count gives the same bits. Blocks of about SX_BLOCK elements (whole rows); the threads
 * split them past FC_STREAM_PARALLEL_MIN elements. */
static void FN(sx_forward)(REAL *probs, REAL *grad, double *row_loss, const REAL *logits,
                           const int64_t *labels, ptrdiff_t N, ptrdiff_t K, int n_threads)
{
    const REAL s = (REAL)(1.0 / (double)N);
    const ptrdiff_t rows = K >= SX_BLOCK ? 1 : SX_BLOCK / K;
    const ptrdiff_t blocks = (N + rows - 1) / rows;
    int nt = fc_clamp_threads(n_threads, N * K / FC_STREAM_PARALLEL_MIN + 1);
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
    for (ptrdiff_t b = 0; b < blocks; ++b) {
        const ptrdiff_t n0 = b * rows, n1 = n0 + rows < N ? n0 + rows : N;
        FN(sx_rows)(probs, grad, row_loss, logits, labels, n0, n1, K, s);
    }
}

/* d = scale * (probs - onehot(labels)). */
static void FN(sx_backward)(REAL *d, const REAL *probs, const int64_t *labels, ptrdiff_t N,
                            ptrdiff_t K, double scale, int n_threads)
{
    const REAL s = (REAL)scale;
    int nt = fc_clamp_threads(n_threads, N * K / FC_STREAM_PARALLEL_MIN + 1);
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
    for (ptrdiff_t n = 0; n < N; ++n) FN(sx_grad_row)(d + n * K, probs + n * K, K, labels[n], s);
}
