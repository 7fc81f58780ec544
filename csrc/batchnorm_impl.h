/* batchnorm_impl.h: type-generic bodies of the batch-norm kernels. NOT a translation unit and no
 * include guard on purpose: batchnorm.c includes it twice, with REAL = float / FN(name) =
 * name##_f32 and with REAL = double / FN(name) = name##_f64.
 *
 * Layout (see fastcnn.h): x, y, dy, dx: (N, C, S); channel c of sample n is the contiguous
 * segment x + (n*C + c)*S of length S. Per-channel vectors: (C). M = N*S samples per channel.
 *
 * Two code paths:
 *  - S > 1 (4-D input): one channel at a time, `parallel for` over channels. A channel's N
 *    segments (N*S*sizeof(REAL), e.g. 512 KB for 128x32x32 float) stay in L2 between passes,
 *    so only the first pass of each kernel streams from memory.
 *  - S == 1 ((N, F) input): channel c is a column with stride C, hostile to the per-channel walk.
 *    Rows are swept instead, for a block of BN_CB channels at a time, accumulating into
 *    per-channel double arrays on the stack (the inner loop runs across channels and
 *    vectorises); `parallel for` over channel blocks.
 * Either way every channel's statistics are summed by one thread in one fixed order (n ascending,
 * and a fixed SIMD split inside a segment), so results are bitwise identical for any thread
 * count. Sums are in double; elementwise maps are in REAL, like the reference. */

#ifndef REAL
#error "batchnorm_impl.h needs REAL and FN defined (include it from batchnorm.c)"
#endif

/* ---- per-channel helpers (S > 1): x points at channel c of sample 0, CS = C*S --------------
 * Segments are walked in blocks of BN_L elements (lanes: see batchnorm.c), prefetching the same
 * block of the next segment; a segment's last S % BN_L elements form a scalar tail. */

/* prefetch the BN_L elements at p (one 64-byte line for float, two for double) */
#define BN_PREFETCH_BLOCK(p, rw)                                                                \
    do {                                                                                        \
        FC_PREFETCH((const char *)(p), rw);                                                     \
        if (sizeof(REAL) * BN_L > 64)                                                           \
            FC_PREFETCH((const char *)(p) + 64, rw);                                            \
    } while (0)

/* Segments under BN_PF_SMALL bytes (a 7x7 map: 196 bytes of float) are done long before a
 * prefetch of the next one arrives (segments are a page or more apart, each a cold start for the
 * hardware prefetcher; the data come from L3 or memory): they are prefetched whole, about
 * BN_PF_BYTES ahead, at the start of each segment. Training fwd+bwd, 1 thread: (100,192,7,7)
 * 0.76 of the time, (100,256,5,5) 0.81, (100,128,7,7) 0.95; 2 threads 0.95-1.03. Not on 15x15
 * (900 bytes: 1.06 slower). Returns that many segments, or 0 for larger ones (the next
 * segment, block by block, as above). */
#define BN_PF_SMALL 512
#define BN_PF_BYTES 2048
static ptrdiff_t FN(bn_ahead)(ptrdiff_t S)
{
    const ptrdiff_t bytes = S * (ptrdiff_t)sizeof(REAL);
    return bytes >= BN_PF_SMALL ? 0 : (BN_PF_BYTES + bytes - 1) / bytes;
}

/* prefetch segment n + ahead (S elements at p + ahead*CS, p: segment n) if there is one */
#define BN_PREFETCH_SEGMENT(p, ahead, n, N, CS, S, rw)                                          \
    do {                                                                                        \
        if ((ahead) && (n) + (ahead) < (N)) {                                                   \
            const char *q_ = (const char *)((p) + (ahead) * (CS));                              \
            const ptrdiff_t b_ = (S) * (ptrdiff_t)sizeof(REAL);                                 \
            for (ptrdiff_t o_ = 0; o_ < b_; o_ += 64) FC_PREFETCH(q_ + o_, rw);                 \
            FC_PREFETCH(q_ + b_ - 1, rw);                                                       \
        }                                                                                       \
    } while (0)

/* sum over n, s of x[n, c, s] (pass 1: streams the channel from memory) */
static double FN(bn_sum)(const REAL *restrict x, ptrdiff_t N, ptrdiff_t CS, ptrdiff_t S)
{
    double acc[BN_L] = {0.0}, tail = 0.0;
    const ptrdiff_t SL = S - S % BN_L, ahead = FN(bn_ahead)(S);
    for (ptrdiff_t n = 0; n < N; ++n) {
        const REAL *restrict xs = x + n * CS;
        const REAL *next = n + 1 < N ? xs + CS : xs;
        BN_PREFETCH_SEGMENT(xs, ahead, n, N, CS, S, 0);
        for (ptrdiff_t s = 0; s < SL; s += BN_L) {
            if (!ahead)
                BN_PREFETCH_BLOCK(next + s, 0);
#pragma omp simd
            for (int l = 0; l < BN_L; ++l)
                acc[l] += (double)xs[s + l];
        }
        for (ptrdiff_t s = SL; s < S; ++s)
            tail += (double)xs[s];
    }
    return fc_bn_lanes_total(acc, tail);
}

/* sum over n, s of (x - mean)^2, the difference taken in double (pass 2: the channel is in L2,
 * no prefetch; two passes rather than E[x^2] - mean^2, which cancels catastrophically) */
static double FN(bn_sumsq_dev)(const REAL *restrict x, double mean, ptrdiff_t N, ptrdiff_t CS,
                               ptrdiff_t S)
{
    double acc[BN_L] = {0.0}, tail = 0.0;
    const ptrdiff_t SL = S - S % BN_L;
    for (ptrdiff_t n = 0; n < N; ++n) {
        const REAL *restrict xs = x + n * CS;
        for (ptrdiff_t s = 0; s < SL; s += BN_L) {
#pragma omp simd
            for (int l = 0; l < BN_L; ++l) {
                const double d = (double)xs[s + l] - mean;
                acc[l] += d * d;
            }
        }
        for (ptrdiff_t s = SL; s < S; ++s) {
            const double d = (double)xs[s] - mean;
            tail += d * d;
        }
    }
    return fc_bn_lanes_total(acc, tail);
}

/* y = (x - mean) * scale + shift over one channel. pf_x: also prefetch x (eval, where x comes
 * from memory; in training it is L2-resident after the statistics passes). */
static void FN(bn_affine)(REAL *restrict y, const REAL *restrict x, REAL mean, REAL scale,
                          REAL shift, ptrdiff_t N, ptrdiff_t CS, ptrdiff_t S, int pf_x)
{
    const ptrdiff_t SL = S - S % BN_L, ahead = FN(bn_ahead)(S);
    for (ptrdiff_t n = 0; n < N; ++n) {
        const REAL *restrict xs = x + n * CS;
        REAL *restrict ys = y + n * CS;
        const ptrdiff_t nx = n + 1 < N ? CS : 0;
        BN_PREFETCH_SEGMENT(ys, ahead, n, N, CS, S, 1);
        if (pf_x)
            BN_PREFETCH_SEGMENT(xs, ahead, n, N, CS, S, 0);
        for (ptrdiff_t s = 0; s < SL; s += BN_L) {
            if (!ahead)
                BN_PREFETCH_BLOCK(ys + nx + s, 1);
            if (pf_x && !ahead)
                BN_PREFETCH_BLOCK(xs + nx + s, 0);
#pragma omp simd
            for (int l = 0; l < BN_L; ++l)
                ys[s + l] = (xs[s + l] - mean) * scale + shift;
        }
        for (ptrdiff_t s = SL; s < S; ++s)
            ys[s] = (xs[s] - mean) * scale + shift;
    }
}

/* Batch statistics -> save_*, running_* (PyTorch's update, variance unbiased; running_mean only
 * when M > 0 and running_var only when M > 1, like the reference) and the REAL scale. */
static REAL FN(bn_finish_stats)(REAL *save_mean, REAL *save_invstd, REAL *running_mean,
                                REAL *running_var, const REAL *gamma, ptrdiff_t c, double mean,
                                double var, ptrdiff_t M, double eps, double momentum)
{
    const double invstd = 1.0 / sqrt(var + eps);
    save_mean[c] = (REAL)mean;
    save_invstd[c] = (REAL)invstd;
    if (running_mean && M > 0)
        running_mean[c] = (REAL)((1.0 - momentum) * (double)running_mean[c] + momentum * mean);
    if (running_var && M > 1)
        running_var[c] = (REAL)((1.0 - momentum) * (double)running_var[c] +
                                momentum * (var * ((double)M / (double)(M - 1))));
    return (REAL)(invstd * (double)gamma[c]);
}

/* ---- training forward ---------------------------------------------------------------------- */

/* S == 1: x (N, C). Channels [c0, c0 + cb) swept row by row, three passes over the block
 * (N*cb elements, cache-resident for usual batch sizes). */
static void FN(bn_train_rows)(REAL *restrict y, REAL *save_mean, REAL *save_invstd,
                              REAL *running_mean, REAL *running_var, const REAL *restrict x,
                              const REAL *gamma, const REAL *beta, ptrdiff_t N, ptrdiff_t C,
                              ptrdiff_t c0, ptrdiff_t cb, double eps, double momentum)
{
    double acc[BN_CB], mean[BN_CB];
    REAL mr[BN_CB], sc[BN_CB], sh[BN_CB];
    for (ptrdiff_t j = 0; j < cb; ++j)
        acc[j] = 0.0;
    for (ptrdiff_t n = 0; n < N; ++n) {
        const REAL *restrict xr = x + n * C + c0;
#pragma omp simd
        for (ptrdiff_t j = 0; j < cb; ++j)
            acc[j] += (double)xr[j];
    }
    for (ptrdiff_t j = 0; j < cb; ++j) {
        mean[j] = acc[j] / (double)N;
        acc[j] = 0.0;
    }
    for (ptrdiff_t n = 0; n < N; ++n) {
        const REAL *restrict xr = x + n * C + c0;
#pragma omp simd
        for (ptrdiff_t j = 0; j < cb; ++j) {
            const double d = (double)xr[j] - mean[j];
            acc[j] += d * d;
        }
    }
    for (ptrdiff_t j = 0; j < cb; ++j) {
        sc[j] = FN(bn_finish_stats)(save_mean, save_invstd, running_mean, running_var, gamma,
                                    c0 + j, mean[j], acc[j] / (double)N, N, eps, momentum);
        mr[j] = save_mean[c0 + j];
        sh[j] = beta[c0 + j];
    }
    for (ptrdiff_t n = 0; n < N; ++n) {
        const REAL *restrict xr = x + n * C + c0;
        REAL *restrict yr = y + n * C + c0;
#pragma omp simd
        for (ptrdiff_t j = 0; j < cb; ++j)
            yr[j] = (xr[j] - mr[j]) * sc[j] + sh[j];
    }
}

void FN(fc_batch_norm_forward_train)(REAL *y, REAL *save_mean, REAL *save_invstd,
                                     REAL *running_mean, REAL *running_var, const REAL *x,
                                     const REAL *gamma, const REAL *beta, ptrdiff_t N,
                                     ptrdiff_t C, ptrdiff_t S, double eps, double momentum,
                                     int n_threads)
{
    const ptrdiff_t M = N * S, CS = C * S;
    (void)n_threads;
    if (S == 1) {
        const ptrdiff_t nb = (C + BN_CB - 1) / BN_CB;
#if defined(_OPENMP)
#pragma omp parallel for num_threads(n_threads > 0 ? n_threads : 1) schedule(static) \
    if (n_threads > 1 && nb > 1 && N * C > 32768)
#endif
        for (ptrdiff_t b = 0; b < nb; ++b) {
            const ptrdiff_t c0 = b * BN_CB, cb = C - c0 < BN_CB ? C - c0 : BN_CB;
            FN(bn_train_rows)(y, save_mean, save_invstd, running_mean, running_var, x, gamma,
                              beta, N, C, c0, cb, eps, momentum);
        }
        return;
    }
#if defined(_OPENMP)
#pragma omp parallel for num_threads(n_threads > 0 ? n_threads : 1) schedule(static) \
    if (n_threads > 1 && N * CS > 32768)
#endif
    for (ptrdiff_t c = 0; c < C; ++c) {
        const REAL *xc = x + c * S;
        /* pass 1 streams the channel in from memory; passes 2 and 3 find it in L2 */
        const double mean = FN(bn_sum)(xc, N, CS, S) / (double)M;
        const double var = FN(bn_sumsq_dev)(xc, mean, N, CS, S) / (double)M;
        const REAL scale = FN(bn_finish_stats)(save_mean, save_invstd, running_mean, running_var,
                                               gamma, c, mean, var, M, eps, momentum);
        FN(bn_affine)(y + c * S, xc, save_mean[c], scale, beta[c], N, CS, S, 0);
    }
}

/* ---- eval forward: y = (x - running_mean) * (gamma / sqrt(running_var + eps)) + beta -------- */

/* scale of channel c, the reciprocal square root in double like the training path */
static REAL FN(bn_eval_scale)(const REAL *gamma, const REAL *running_var, ptrdiff_t c, double eps)
{
    return (REAL)((1.0 / sqrt((double)running_var[c] + eps)) * (double)gamma[c]);
}

void FN(fc_batch_norm_forward_eval)(REAL *y, const REAL *x, const REAL *gamma, const REAL *beta,
                                    const REAL *running_mean, const REAL *running_var,
                                    ptrdiff_t N, ptrdiff_t C, ptrdiff_t S, double eps,
                                    int n_threads)
{
    const ptrdiff_t CS = C * S;
    (void)n_threads;
    if (S == 1) {
        /* rows of (N, C): per-channel constants of a block on the stack, inner loop over c */
        const ptrdiff_t nb = (C + BN_CB - 1) / BN_CB;
#if defined(_OPENMP)
#pragma omp parallel for num_threads(n_threads > 0 ? n_threads : 1) schedule(static) \
    if (n_threads > 1 && nb > 1 && N * C > 32768)
#endif
        for (ptrdiff_t b = 0; b < nb; ++b) {
            const ptrdiff_t c0 = b * BN_CB, cb = C - c0 < BN_CB ? C - c0 : BN_CB;
            REAL mr[BN_CB], sc[BN_CB], sh[BN_CB];
            for (ptrdiff_t j = 0; j < cb; ++j) {
                mr[j] = running_mean[c0 + j];
                sc[j] = FN(bn_eval_scale)(gamma, running_var, c0 + j, eps);
                sh[j] = beta[c0 + j];
            }
            for (ptrdiff_t n = 0; n < N; ++n) {
                const REAL *restrict xr = x + n * C + c0;
                REAL *restrict yr = y + n * C + c0;
#pragma omp simd
                for (ptrdiff_t j = 0; j < cb; ++j)
                    yr[j] = (xr[j] - mr[j]) * sc[j] + sh[j];
            }
        }
        return;
    }
#if defined(_OPENMP)
#pragma omp parallel for num_threads(n_threads > 0 ? n_threads : 1) schedule(static) \
    if (n_threads > 1 && N * CS > 32768)
#endif
    for (ptrdiff_t c = 0; c < C; ++c)
        FN(bn_affine)(y + c * S, x + c * S, running_mean[c],
                      FN(bn_eval_scale)(gamma, running_var, c, eps), beta[c], N, CS, S, 1);
}

/* ---- backward ------------------------------------------------------------------------------
 * xhat = (x - mean) * invstd with mean, invstd = save_mean[c], save_invstd[c].
 * dbeta = sum dy, dgamma = invstd * sum dy * (x - mean)   (one pass, double).
 * training: dx = k1*dy + k2*(x - mean) + k3, the reference's
 *     gamma*invstd * (dy - dbeta/M - xhat*dgamma/M) with the constants folded:
 *     k1 = gamma*invstd, k2 = -k1*invstd*dgamma/M, k3 = -k1*dbeta/M.
 * eval: dx = k1*dy, fused into the pass that takes the sums. */

/* Per-channel constants of the training dx from the sums. */
static void FN(bn_back_consts)(REAL *k1, REAL *k2, REAL *k3, double g, double invstd, double sdy,
                               double sdyx, ptrdiff_t M, int training)
{
    const double a = g * invstd;
    *k1 = (REAL)a;
    *k2 = (training && M > 0) ? (REAL)(-a * invstd * (sdyx * invstd) / (double)M) : (REAL)0;
    *k3 = (training && M > 0) ? (REAL)(-a * sdy / (double)M) : (REAL)0;
}

/* S == 1: channels [c0, c0 + cb) of (N, C), swept by rows. */
static void FN(bn_back_rows)(REAL *restrict dx, REAL *dgamma, REAL *dbeta,
                             const REAL *restrict dy, const REAL *restrict x, const REAL *gamma,
                             const REAL *save_mean, const REAL *save_invstd, ptrdiff_t N,
                             ptrdiff_t C, ptrdiff_t c0, ptrdiff_t cb, int training)
{
    double sdy[BN_CB], sdyx[BN_CB];
    REAL mr[BN_CB], k1[BN_CB], k2[BN_CB], k3[BN_CB];
    for (ptrdiff_t j = 0; j < cb; ++j) {
        sdy[j] = sdyx[j] = 0.0;
        mr[j] = save_mean[c0 + j];
    }
    for (ptrdiff_t n = 0; n < N; ++n) {
        const REAL *restrict g = dy + n * C + c0, *restrict xr = x + n * C + c0;
#pragma omp simd
        for (ptrdiff_t j = 0; j < cb; ++j) {
            sdy[j] += (double)g[j];
            sdyx[j] += (double)g[j] * ((double)xr[j] - (double)mr[j]);
        }
    }
    for (ptrdiff_t j = 0; j < cb; ++j) {
        const double is = (double)save_invstd[c0 + j];
        dbeta[c0 + j] = (REAL)sdy[j];
        dgamma[c0 + j] = (REAL)(sdyx[j] * is);
        FN(bn_back_consts)(&k1[j], &k2[j], &k3[j], (double)gamma[c0 + j], is, sdy[j], sdyx[j],
                           N, training);
    }
    for (ptrdiff_t n = 0; n < N; ++n) {
        const REAL *restrict g = dy + n * C + c0, *restrict xr = x + n * C + c0;
        REAL *restrict d = dx + n * C + c0;
#pragma omp simd
        for (ptrdiff_t j = 0; j < cb; ++j)
            d[j] = k1[j] * g[j] + (k2[j] * (xr[j] - mr[j]) + k3[j]);
    }
}

/* S > 1, one channel, pass 1: sdy = sum dy, sdyx = sum dy*(x - mean), streaming dy and x from
 * memory (next segment prefetched). In eval mode it also writes dx = k1e*dy (k1e = gamma*invstd),
 * so eval needs no second pass. */
static void FN(bn_back_sums)(REAL *restrict dx, double *sdy_out, double *sdyx_out,
                             const REAL *restrict dy, const REAL *restrict x, REAL mean, REAL k1e,
                             ptrdiff_t N, ptrdiff_t CS, ptrdiff_t S, int write_dx)
{
    double a[BN_L] = {0.0}, b[BN_L] = {0.0}, ta = 0.0, tb = 0.0;
    const ptrdiff_t SL = S - S % BN_L, ahead = FN(bn_ahead)(S);
    for (ptrdiff_t n = 0; n < N; ++n) {
        const REAL *restrict g = dy + n * CS, *restrict xs = x + n * CS;
        REAL *restrict d = dx + n * CS;
        const ptrdiff_t nx = n + 1 < N ? CS : 0;
        BN_PREFETCH_SEGMENT(g, ahead, n, N, CS, S, 0);
        BN_PREFETCH_SEGMENT(xs, ahead, n, N, CS, S, 0);
        if (write_dx)
            BN_PREFETCH_SEGMENT(d, ahead, n, N, CS, S, 1);
        for (ptrdiff_t s = 0; s < SL; s += BN_L) {
            if (!ahead) {
                BN_PREFETCH_BLOCK(g + nx + s, 0);
                BN_PREFETCH_BLOCK(xs + nx + s, 0);
            }
#pragma omp simd
            for (int l = 0; l < BN_L; ++l) {
                a[l] += (double)g[s + l];
                b[l] += (double)g[s + l] * ((double)xs[s + l] - (double)mean);
            }
            if (write_dx) {
                if (!ahead)
                    BN_PREFETCH_BLOCK(d + nx + s, 1);
#pragma omp simd
                for (int l = 0; l < BN_L; ++l)
                    d[s + l] = k1e * g[s + l];
            }
        }
        for (ptrdiff_t s = SL; s < S; ++s) {
            ta += (double)g[s];
            tb += (double)g[s] * ((double)xs[s] - (double)mean);
            if (write_dx)
                d[s] = k1e * g[s];
        }
    }
    *sdy_out = fc_bn_lanes_total(a, ta);
    *sdyx_out = fc_bn_lanes_total(b, tb);
}

/* S > 1, one channel: sums (pass 1), dgamma/dbeta, then in training dx from the L2-resident
 * channel (pass 2). Pointers are at channel c of sample 0. */
static void FN(bn_back_channel)(REAL *restrict dx, REAL *dgamma, REAL *dbeta,
                                const REAL *restrict dy, const REAL *restrict x, REAL gamma,
                                REAL mean, REAL invstd, ptrdiff_t c, ptrdiff_t N, ptrdiff_t CS,
                                ptrdiff_t S, int training)
{
    const ptrdiff_t SL = S - S % BN_L;
    double sdy, sdyx;
    REAL k1, k2, k3;
    FN(bn_back_sums)(dx, &sdy, &sdyx, dy, x, mean, (REAL)((double)gamma * (double)invstd), N,
                     CS, S, !training);
    dbeta[c] = (REAL)sdy;
    dgamma[c] = (REAL)(sdyx * (double)invstd);
    if (!training)
        return;
    FN(bn_back_consts)(&k1, &k2, &k3, (double)gamma, (double)invstd, sdy, sdyx, N * S, training);
    const ptrdiff_t ahead = FN(bn_ahead)(S);
    for (ptrdiff_t n = 0; n < N; ++n) {
        const REAL *restrict g = dy + n * CS, *restrict xs = x + n * CS;
        REAL *restrict d = dx + n * CS;
        const ptrdiff_t nx = n + 1 < N ? CS : 0;
        BN_PREFETCH_SEGMENT(d, ahead, n, N, CS, S, 1);
        for (ptrdiff_t s = 0; s < SL; s += BN_L) {
            if (!ahead)
                BN_PREFETCH_BLOCK(d + nx + s, 1);
#pragma omp simd
            for (int l = 0; l < BN_L; ++l)
                d[s + l] = k1 * g[s + l] + (k2 * (xs[s + l] - mean) + k3);
        }
        for (ptrdiff_t s = SL; s < S; ++s)
            d[s] = k1 * g[s] + (k2 * (xs[s] - mean) + k3);
    }
}

void FN(fc_batch_norm_backward)(REAL *dx, REAL *dgamma, REAL *dbeta, const REAL *dy,
                                const REAL *x, const REAL *gamma, const REAL *save_mean,
                                const REAL *save_invstd, ptrdiff_t N, ptrdiff_t C, ptrdiff_t S,
                                int training, int n_threads)
{
    const ptrdiff_t CS = C * S;
    (void)n_threads;
    if (S == 1) {
        const ptrdiff_t nb = (C + BN_CB - 1) / BN_CB;
#if defined(_OPENMP)
#pragma omp parallel for num_threads(n_threads > 0 ? n_threads : 1) schedule(static) \
    if (n_threads > 1 && nb > 1 && N * C > 32768)
#endif
        for (ptrdiff_t b = 0; b < nb; ++b) {
            const ptrdiff_t c0 = b * BN_CB, cb = C - c0 < BN_CB ? C - c0 : BN_CB;
            FN(bn_back_rows)(dx, dgamma, dbeta, dy, x, gamma, save_mean, save_invstd, N, C, c0,
                             cb, training);
        }
        return;
    }
#if defined(_OPENMP)
#pragma omp parallel for num_threads(n_threads > 0 ? n_threads : 1) schedule(static) \
    if (n_threads > 1 && N * CS > 32768)
#endif
    for (ptrdiff_t c = 0; c < C; ++c)
        FN(bn_back_channel)(dx + c * S, dgamma, dbeta, dy + c * S, x + c * S, gamma[c],
                            save_mean[c], save_invstd[c], c, N, CS, S, training);
}

#undef BN_PREFETCH_BLOCK
#undef BN_PREFETCH_SEGMENT
#undef BN_PF_BYTES
#undef BN_PF_SMALL
