/* batchnorm_impl.h: type-generic bodies of the batch-norm kernels. NOT a translation unit and no
 * include guard on purpose: batchnorm.c instantiates it for float and double once per instruction
 * set (dtype_variants.h through simd_targets.h), with REAL and FN(name) defined.
 *
 * Layout (see fastcnn.h): x, y, dy, dx: (N, C, S); channel c of sample n is the contiguous
 * segment x + (n*C + c)*S of length S. Per-channel vectors: (C). M = N*S samples per channel.
 *
 * Two code paths:
 *  - S > 1 (4-D input): memory order. Each pass walks the (n, c) segments in about the order
 *    they lie in memory (`parallel for`), the statistics passes writing partial statistics per
 *    unit (one channel over a block of samples) to a workspace of fc_batch_norm_workspace()
 *    doubles; a short per-channel step (blocks ascending) then combines them. A pass streams the
 *    tensor like a copy (one read of x for the statistics, one read of x and a write of y for the
 *    affine map). Walking channel by channel instead (N segments C*S apart, each a cold start
 *    for the hardware prefetcher, the channel kept in L2 between passes) took 1.7-2.0x the time
 *    at one thread (fwd+bwd, 32x32, 15x15 and 7x7 maps, float and double), even with software
 *    prefetch, and 1.15-1.4x at two.
 *  - S == 1 ((N, F) input): channel c is a column with stride C, hostile to the per-channel walk.
 *    Rows are swept instead, for a block of BN_CB channels at a time, accumulating into
 *    per-channel double arrays on the stack (the inner loop runs across channels and
 *    vectorises); `parallel for` over channel blocks.
 * Either way every channel's statistics are summed in one fixed order (fixed blocks of n, n
 * ascending, a fixed SIMD split and lane tree), so results are bitwise identical for any thread
 * count. Sums are in double; elementwise maps are in REAL, like the reference. */

#ifndef REAL
#error "batchnorm_impl.h needs REAL and FN defined (include it through batchnorm.c)"
#endif

/* ---- 4-D helpers (S > 1) ---------------------------------------------------------------------
 * The statistics passes work on units of one channel over a block of nb samples (nb segments of
 * S elements, CS = C*S apart; see fc_bn_block_samples), the elementwise passes on one segment.
 * Either walks its segments in blocks of BN_L elements (lanes: see batchnorm.c), a segment's last
 * S % BN_L elements going to a scalar tail. */

/* st[0] = sum of the unit, st[1] = sum of its squared deviations from its own mean (two passes
 * over the L1/L2-resident unit, the differences in double: E[x^2] - mean^2 would cancel
 * catastrophically). The channel's statistics follow exactly from these: bn_channel_stats. */
static void FN(bn_unit_stats)(double *restrict st, const REAL *restrict x, ptrdiff_t nb,
                              ptrdiff_t CS, ptrdiff_t S)
{
    double acc[BN_L] = {0.0}, tail = 0.0;
    const ptrdiff_t SL = S - S % BN_L;
    for (ptrdiff_t n = 0; n < nb; ++n) {
        const REAL *restrict xs = x + n * CS;
        for (ptrdiff_t s = 0; s < SL; s += BN_L) {
#pragma omp simd
            for (int l = 0; l < BN_L; ++l)
                acc[l] += (double)xs[s + l];
        }
        for (ptrdiff_t s = SL; s < S; ++s)
            tail += (double)xs[s];
    }
    const double sum = fc_bn_lanes_total(acc, tail), mean = sum / (double)(nb * S);
    tail = 0.0;
    for (int l = 0; l < BN_L; ++l)
        acc[l] = 0.0;
    for (ptrdiff_t n = 0; n < nb; ++n) {
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
    st[0] = sum;
    st[1] = fc_bn_lanes_total(acc, tail);
}

/* Channel c's mean and sum of squared deviations from its units' statistics st (2 per unit, the
 * nblk units of channel c at st + 2*c*nblk, blocks of NB samples): the sums add up; the
 * deviations add up once each unit's are moved to the channel mean (the sum over units of
 * M2_u + count_u*(mean_u - mean)^2, exact). */
static void FN(bn_channel_stats)(double *mean_out, double *m2_out, const double *st,
                                 ptrdiff_t nblk, ptrdiff_t NB, ptrdiff_t N, ptrdiff_t S)
{
    double sum = 0.0, m2 = 0.0;
    for (ptrdiff_t b = 0; b < nblk; ++b)
        sum += st[2 * b];
    const double mean = sum / (double)(N * S);
    for (ptrdiff_t b = 0; b < nblk; ++b) {
        const double count = (double)((N - b * NB < NB ? N - b * NB : NB) * S);
        const double d = st[2 * b] / count - mean;
        m2 += st[2 * b + 1] + count * d * d;
    }
    *mean_out = mean;
    *m2_out = m2;
}

/* y = (x - mean) * scale + shift over one segment (stream: see BN_MAP) */
static void FN(bn_affine)(REAL *restrict y, const REAL *restrict x, REAL mean, REAL scale,
                          REAL shift, ptrdiff_t S, int stream)
{
    BN_MAP(y, S, stream, (x[e] - mean) * scale + shift);
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

static void FN(bn_forward_train)(REAL *y, REAL *save_mean, REAL *save_invstd,
                                     REAL *running_mean, REAL *running_var, const REAL *x,
                                     const REAL *gamma, const REAL *beta, ptrdiff_t N,
                                     ptrdiff_t C, ptrdiff_t S, double eps, double momentum,
                                     double *work, int n_threads)
{
    const ptrdiff_t M = N * S;
    (void)n_threads;
    if (S == 1) {
        const ptrdiff_t nb = (C + BN_CB - 1) / BN_CB;
#if defined(_OPENMP)
#pragma omp parallel for num_threads(n_threads > 0 ? n_threads : 1) schedule(static) \
    if (n_threads > 1 && nb > 1 && N * C > FC_STREAM_PARALLEL_MIN)
#endif
        for (ptrdiff_t b = 0; b < nb; ++b) {
            const ptrdiff_t c0 = b * BN_CB, cb = C - c0 < BN_CB ? C - c0 : BN_CB;
            FN(bn_train_rows)(y, save_mean, save_invstd, running_mean, running_var, x, gamma,
                              beta, N, C, c0, cb, eps, momentum);
        }
        return;
    }
    /* work: the units' statistics (2 each, channel-major), then each channel's scale */
    const ptrdiff_t NB = fc_bn_block_samples(S), nblk = (N + NB - 1) / NB;
    double *restrict st = work, *restrict scale = work + 2 * nblk * C;
    const int stream = fc_bn_streams(N * C * S * (ptrdiff_t)sizeof(REAL));
#if defined(_OPENMP)
#pragma omp parallel num_threads(n_threads > 0 ? n_threads : 1) \
    if (n_threads > 1 && N * C * S > FC_STREAM_PARALLEL_MIN)
#endif
    {
#if defined(_OPENMP)
#pragma omp for schedule(static)
#endif
        for (ptrdiff_t u = 0; u < nblk * C; ++u) {
            const ptrdiff_t n0 = u / C * NB, c = u % C;
            FN(bn_unit_stats)(st + 2 * (c * nblk + n0 / NB), x + (n0 * C + c) * S,
                              N - n0 < NB ? N - n0 : NB, C * S, S);
        }
#if defined(_OPENMP)
#pragma omp for schedule(static)
#endif
        for (ptrdiff_t c = 0; c < C; ++c) {
            double mean, m2;
            FN(bn_channel_stats)(&mean, &m2, st + 2 * c * nblk, nblk, NB, N, S);
            scale[c] = (double)FN(bn_finish_stats)(save_mean, save_invstd, running_mean,
                                                   running_var, gamma, c, mean, m2 / (double)M, M,
                                                   eps, momentum);
        }
#if defined(_OPENMP)
#pragma omp for schedule(static)
#endif
        for (ptrdiff_t i = 0; i < N * C; ++i) {
            const ptrdiff_t c = i % C;
            FN(bn_affine)(y + i * S, x + i * S, save_mean[c], (REAL)scale[c], beta[c], S,
                          stream);
        }
        fc_bn_stream_done(stream);
    }
}

/* ---- eval forward: y = (x - running_mean) * (gamma / sqrt(running_var + eps)) + beta -------- */

/* scale of channel c, the reciprocal square root in double like the training path */
static REAL FN(bn_eval_scale)(const REAL *gamma, const REAL *running_var, ptrdiff_t c, double eps)
{
    return (REAL)((1.0 / sqrt((double)running_var[c] + eps)) * (double)gamma[c]);
}

static void FN(bn_forward_eval)(REAL *y, const REAL *x, const REAL *gamma, const REAL *beta,
                                    const REAL *running_mean, const REAL *running_var,
                                    ptrdiff_t N, ptrdiff_t C, ptrdiff_t S, double eps,
                                    int n_threads)
{
    (void)n_threads;
    if (S == 1) {
        /* rows of (N, C): per-channel constants of a block on the stack, inner loop over c */
        const ptrdiff_t nb = (C + BN_CB - 1) / BN_CB;
#if defined(_OPENMP)
#pragma omp parallel for num_threads(n_threads > 0 ? n_threads : 1) schedule(static) \
    if (n_threads > 1 && nb > 1 && N * C > FC_STREAM_PARALLEL_MIN)
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
    const int stream = fc_bn_streams(N * C * S * (ptrdiff_t)sizeof(REAL));
#if defined(_OPENMP)
#pragma omp parallel num_threads(n_threads > 0 ? n_threads : 1) \
    if (n_threads > 1 && N * C * S > FC_STREAM_PARALLEL_MIN)
#endif
    {
#if defined(_OPENMP)
#pragma omp for schedule(static)
#endif
        for (ptrdiff_t i = 0; i < N * C; ++i) {
            const ptrdiff_t c = i % C;
            FN(bn_affine)(y + i * S, x + i * S, running_mean[c],
                          FN(bn_eval_scale)(gamma, running_var, c, eps), beta[c], S, stream);
        }
        fc_bn_stream_done(stream);
    }
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

/* S > 1, one unit (channel c over nb samples): st[0] = sum dy, st[1] = sum dy*(x - mean). In
 * eval mode it also writes dx = k1e*dy (k1e = gamma*invstd: constants), so eval needs no second
 * pass. */
static void FN(bn_back_unit_sums)(double *restrict st, REAL *restrict dx, const REAL *restrict dy,
                                  const REAL *restrict x, REAL mean, REAL k1e, ptrdiff_t nb,
                                  ptrdiff_t CS, ptrdiff_t S, int write_dx)
{
    double a[BN_L] = {0.0}, b[BN_L] = {0.0}, ta = 0.0, tb = 0.0;
    const ptrdiff_t SL = S - S % BN_L;
    for (ptrdiff_t n = 0; n < nb; ++n) {
        const REAL *restrict g = dy + n * CS, *restrict xs = x + n * CS;
        REAL *restrict d = dx + n * CS;
        for (ptrdiff_t s = 0; s < SL; s += BN_L) {
#pragma omp simd
            for (int l = 0; l < BN_L; ++l) {
                a[l] += (double)g[s + l];
                b[l] += (double)g[s + l] * ((double)xs[s + l] - (double)mean);
            }
            if (write_dx) {
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
    st[0] = fc_bn_lanes_total(a, ta);
    st[1] = fc_bn_lanes_total(b, tb);
}

/* S > 1, one segment of the training dx: k1*dy + (k2*(x - mean) + k3) (stream: see BN_MAP) */
static void FN(bn_back_seg_dx)(REAL *restrict dx, const REAL *restrict dy, const REAL *restrict x,
                               REAL mean, REAL k1, REAL k2, REAL k3, ptrdiff_t S, int stream)
{
    BN_MAP(dx, S, stream, k1 * dy[e] + (k2 * (x[e] - mean) + k3));
}

static void FN(bn_backward)(REAL *dx, REAL *dgamma, REAL *dbeta, const REAL *dy,
                                const REAL *x, const REAL *gamma, const REAL *save_mean,
                                const REAL *save_invstd, ptrdiff_t N, ptrdiff_t C, ptrdiff_t S,
                                int training, double *work, int n_threads)
{
    (void)n_threads;
    if (S == 1) {
        const ptrdiff_t nb = (C + BN_CB - 1) / BN_CB;
#if defined(_OPENMP)
#pragma omp parallel for num_threads(n_threads > 0 ? n_threads : 1) schedule(static) \
    if (n_threads > 1 && nb > 1 && N * C > FC_STREAM_PARALLEL_MIN)
#endif
        for (ptrdiff_t b = 0; b < nb; ++b) {
            const ptrdiff_t c0 = b * BN_CB, cb = C - c0 < BN_CB ? C - c0 : BN_CB;
            FN(bn_back_rows)(dx, dgamma, dbeta, dy, x, gamma, save_mean, save_invstd, N, C, c0,
                             cb, training);
        }
        return;
    }
    /* work: the units' sums (2 each, channel-major), then each channel's k1, k2, k3 */
    const ptrdiff_t NB = fc_bn_block_samples(S), nblk = (N + NB - 1) / NB;
    double *restrict st = work, *restrict k = work + 2 * nblk * C;
    const int stream = fc_bn_streams(N * C * S * (ptrdiff_t)sizeof(REAL));
#if defined(_OPENMP)
#pragma omp parallel num_threads(n_threads > 0 ? n_threads : 1) \
    if (n_threads > 1 && N * C * S > FC_STREAM_PARALLEL_MIN)
#endif
    {
#if defined(_OPENMP)
#pragma omp for schedule(static)
#endif
        for (ptrdiff_t u = 0; u < nblk * C; ++u) {
            const ptrdiff_t n0 = u / C * NB, c = u % C, i = n0 * C + c;
            FN(bn_back_unit_sums)(st + 2 * (c * nblk + n0 / NB), dx + i * S, dy + i * S, x + i * S,
                                  save_mean[c], (REAL)((double)gamma[c] * (double)save_invstd[c]),
                                  N - n0 < NB ? N - n0 : NB, C * S, S, !training);
        }
#if defined(_OPENMP)
#pragma omp for schedule(static)
#endif
        for (ptrdiff_t c = 0; c < C; ++c) {
            double sdy = 0.0, sdyx = 0.0;
            for (ptrdiff_t b = 0; b < nblk; ++b) {
                sdy += st[2 * (c * nblk + b)];
                sdyx += st[2 * (c * nblk + b) + 1];
            }
            const double invstd = (double)save_invstd[c];
            REAL k1, k2, k3;
            dbeta[c] = (REAL)sdy;
            dgamma[c] = (REAL)(sdyx * invstd);
            FN(bn_back_consts)(&k1, &k2, &k3, (double)gamma[c], invstd, sdy, sdyx, N * S,
                               training);
            k[3 * c] = (double)k1;
            k[3 * c + 1] = (double)k2;
            k[3 * c + 2] = (double)k3;
        }
        if (training) {
#if defined(_OPENMP)
#pragma omp for schedule(static)
#endif
            for (ptrdiff_t i = 0; i < N * C; ++i) {
                const ptrdiff_t c = i % C;
                FN(bn_back_seg_dx)(dx + i * S, dy + i * S, x + i * S, save_mean[c],
                                   (REAL)k[3 * c], (REAL)k[3 * c + 1], (REAL)k[3 * c + 2], S,
                                   stream);
            }
            fc_bn_stream_done(stream);
        }
    }
}
