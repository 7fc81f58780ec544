/* lrn_impl.h: type-generic body of local response normalisation across channels (lrn.c), with
 * REAL and FN(name) defined; included once per (dtype, instruction set) through
 * dtype_variants.h. No include guard.
 * Work goes in units of (image, chunk of LRN_CHUNK positions of the H*W plane): per channel c
 * every step is one loop down the chunk's contiguous positions, which the compiler vectorises,
 * the `size` channel rows of the window staying in L1/L2 from one channel to the next. */

/* r[p] = r[p]^-beta for p < len by `mode` (lrn_power_mode), the branch outside the loops so
 * that they vectorise: the paper's 0.75 as 1 / (S^1/2 S^1/4), two square roots (pow does not
 * vectorise). */
static void FN(lrn_inverse_power)(REAL *restrict r, ptrdiff_t len, int mode, REAL beta)
{
    switch (mode) {
    case LRN_BETA_075:
#pragma omp simd
        for (ptrdiff_t p = 0; p < len; ++p) {
            const REAL h = (REAL)sqrt(r[p]);
            r[p] = (REAL)1 / (h * (REAL)sqrt(h));
        }
        break;
    case LRN_BETA_05:
#pragma omp simd
        for (ptrdiff_t p = 0; p < len; ++p) r[p] = (REAL)1 / (REAL)sqrt(r[p]);
        break;
    case LRN_BETA_1:
#pragma omp simd
        for (ptrdiff_t p = 0; p < len; ++p) r[p] = (REAL)1 / r[p];
        break;
    case LRN_BETA_0:
        for (ptrdiff_t p = 0; p < len; ++p) r[p] = (REAL)1;
        break;
    default:
        for (ptrdiff_t p = 0; p < len; ++p) r[p] = (REAL)pow(r[p], -beta);
    }
}

/* out[p] = sum of rows[j*HW + p] (sq: squared) over j in [j0, j1], p < len. */
static void FN(lrn_window_sum)(REAL *restrict out, const REAL *restrict rows, ptrdiff_t HW,
                               ptrdiff_t j0, ptrdiff_t j1, ptrdiff_t len, int sq)
{
    const REAL *r0 = rows + j0 * HW;
#pragma omp simd
    for (ptrdiff_t p = 0; p < len; ++p) out[p] = sq ? r0[p] * r0[p] : r0[p];
    for (ptrdiff_t j = j0 + 1; j <= j1; ++j) {
        const REAL *r = rows + j * HW;
#pragma omp simd
        for (ptrdiff_t p = 0; p < len; ++p) out[p] += sq ? r[p] * r[p] : r[p];
    }
}

/* y = x S^-beta, scale = S = k + alpha * sum of x[j]^2 over j in [c - before, c + after] within
 * [0, C); x, y, scale (N, C, HW). */
static void FN(lrn_forward)(REAL *restrict y, REAL *restrict scale, const REAL *restrict x,
                            ptrdiff_t N, ptrdiff_t C, ptrdiff_t HW, ptrdiff_t before,
                            ptrdiff_t after, double alpha, double beta, double k, int n_threads)
{
    const ptrdiff_t units = N * lrn_chunks(HW);
    const int mode = lrn_power_mode(beta), nt = lrn_threads(n_threads, N, C, HW);
    const REAL a = (REAL)alpha, kk = (REAL)k, b = (REAL)beta;
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
    for (ptrdiff_t u = 0; u < units; ++u) {
        ptrdiff_t off, len;
        lrn_unit(u, C, HW, &off, &len);
        for (ptrdiff_t c = 0; c < C; ++c) {
            const ptrdiff_t j0 = c - before < 0 ? 0 : c - before;
            const ptrdiff_t j1 = c + after >= C ? C - 1 : c + after;
            REAL *restrict sc = scale + off + c * HW, *restrict yc = y + off + c * HW;
            const REAL *restrict xc = x + off + c * HW;
            FN(lrn_window_sum)(sc, x + off, HW, j0, j1, len, 1);
#pragma omp simd
            for (ptrdiff_t p = 0; p < len; ++p) yc[p] = sc[p] = kk + a * sc[p];
            FN(lrn_inverse_power)(yc, len, mode, b);   /* S^-beta, then times x */
#pragma omp simd
            for (ptrdiff_t p = 0; p < len; ++p) yc[p] *= xc[p];
        }
    }
}

/* dx = dy S^-beta - 2 alpha beta x sum over c with i in W(c) of dy[c] y[c] / S[c]; t (N, C, HW)
 * scratch for dy y / S. dx may not alias dy. */
static void FN(lrn_backward)(REAL *restrict dx, REAL *restrict t, const REAL *restrict dy,
                             const REAL *restrict x, const REAL *restrict y,
                             const REAL *restrict scale, ptrdiff_t N, ptrdiff_t C, ptrdiff_t HW,
                             ptrdiff_t before, ptrdiff_t after, double alpha, double beta,
                             int n_threads)
{
    const ptrdiff_t units = N * lrn_chunks(HW);
    const int mode = lrn_power_mode(beta), nt = lrn_threads(n_threads, N, C, HW);
    const REAL b = (REAL)beta, m2ab = (REAL)(-2.0 * alpha * beta);
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
    for (ptrdiff_t u = 0; u < units; ++u) {
        ptrdiff_t off, len;
        lrn_unit(u, C, HW, &off, &len);
        REAL r[LRN_CHUNK];   /* S^-beta of one channel's row */
        for (ptrdiff_t c = 0; c < C; ++c) {
            const REAL *restrict g = dy + off + c * HW, *restrict yc = y + off + c * HW;
            const REAL *restrict sc = scale + off + c * HW;
            REAL *restrict tc = t + off + c * HW;
#pragma omp simd
            for (ptrdiff_t p = 0; p < len; ++p) tc[p] = g[p] * yc[p] / sc[p];
        }
        /* i in W(c) <=> c in [i - after, i + before]: the adjoint window */
        for (ptrdiff_t c = 0; c < C; ++c) {
            const ptrdiff_t j0 = c - after < 0 ? 0 : c - after;
            const ptrdiff_t j1 = c + before >= C ? C - 1 : c + before;
            const REAL *restrict g = dy + off + c * HW, *restrict xc = x + off + c * HW;
            const REAL *restrict sc = scale + off + c * HW;
            REAL *restrict d = dx + off + c * HW;
            FN(lrn_window_sum)(d, t + off, HW, j0, j1, len, 0);
#pragma omp simd
            for (ptrdiff_t p = 0; p < len; ++p) r[p] = sc[p];
            FN(lrn_inverse_power)(r, len, mode, b);
#pragma omp simd
            for (ptrdiff_t p = 0; p < len; ++p) d[p] = m2ab * xc[p] * d[p] + g[p] * r[p];
        }
    }
}
