/* direct_impl.h: type-generic drivers of the direct convolution, included by direct.c once per
 * dtype with REAL, FN(name) (adds _f32/_f64) and FN_ISA(name, isa) defined. The per-image work
 * (direct_kernels.h) is compiled once per instruction set; the drivers pick one at run time. */

typedef void (*FN(direct_fwd_fn))(REAL *, const REAL *, const REAL *, const REAL *, int,
                                  ptrdiff_t, ptrdiff_t, ptrdiff_t, ptrdiff_t, ptrdiff_t, ptrdiff_t,
                                  ptrdiff_t, ptrdiff_t);
typedef void (*FN(direct_dw_fn))(REAL *, REAL *, const REAL *, const REAL *, const REAL *, REAL *,
                                 REAL *, ptrdiff_t, ptrdiff_t, ptrdiff_t, ptrdiff_t, ptrdiff_t,
                                 ptrdiff_t, ptrdiff_t, ptrdiff_t);

static FN(direct_fwd_fn) FN(direct_pick_forward)(void)
{
#if FC_X86_VARIANTS
    switch (fc_simd_active()) {
    case FC_SIMD_AVX512: return FN_ISA(direct_forward_image, avx512);
    case FC_SIMD_AVX2: return FN_ISA(direct_forward_image, avx2);
    default: break;
    }
#endif
    return FN_ISA(direct_forward_image, portable);
}

static FN(direct_dw_fn) FN(direct_pick_dweight)(void)
{
#if FC_X86_VARIANTS
    switch (fc_simd_active()) {
    case FC_SIMD_AVX512: return FN_ISA(direct_dweight_image, avx512);
    case FC_SIMD_AVX2: return FN_ISA(direct_dweight_image, avx2);
    default: break;
    }
#endif
    return FN_ISA(direct_dweight_image, portable);
}

/* p rounded up to the next 64-byte boundary (the tap sums are read as vectors) */
static REAL *FN(direct_align)(REAL *p)
{
    uintptr_t a = (uintptr_t)p;
    return (REAL *)((a + 63) & ~(uintptr_t)63);
}

/* xp (C, HP, WP) = x (C, H, W) shifted by (PH, PW) into a zeroed frame: xp[c][i][j] =
 * x[c][i - PH][j - PW] where that is inside x, else 0 (negative PH, PW crop x). */
static void FN(direct_pad)(REAL *restrict xp, const REAL *restrict x, ptrdiff_t C, ptrdiff_t H,
                           ptrdiff_t W, ptrdiff_t PH, ptrdiff_t PW, ptrdiff_t HP, ptrdiff_t WP)
{
    ptrdiff_t jlo = PW > 0 ? PW : 0, jhi = W + PW;   /* the columns of xp that x fills */
    if (jlo > WP) jlo = WP;
    if (jhi > WP) jhi = WP;
    for (ptrdiff_t c = 0; c < C; ++c) {
        for (ptrdiff_t i = 0; i < HP; ++i) {
            REAL *row = xp + (c * HP + i) * WP;
            const ptrdiff_t ih = i - PH;
            if (ih < 0 || ih >= H) {
                for (ptrdiff_t j = 0; j < WP; ++j) row[j] = 0;
                continue;
            }
            const REAL *src = x + (c * H + ih) * W - PW;
            for (ptrdiff_t j = 0; j < jlo; ++j) row[j] = 0;
            for (ptrdiff_t j = jlo; j < jhi; ++j) row[j] = src[j];
            for (ptrdiff_t j = jhi; j < WP; ++j) row[j] = 0;
        }
    }
}

/* wp: per block of DIRECT_OCB output channels, (K, DIRECT_OCB), zero past OC. */
static void FN(direct_repack)(REAL *restrict wp, const REAL *restrict w, ptrdiff_t OC,
                              ptrdiff_t K)
{
    for (ptrdiff_t ob = 0; ob < OC; ob += DIRECT_OCB)
        for (ptrdiff_t k = 0; k < K; ++k)
            for (ptrdiff_t o = 0; o < DIRECT_OCB; ++o)
                wp[ob * K + k * DIRECT_OCB + o] = ob + o < OC ? w[(ob + o) * K + k] : (REAL)0;
}

void FN(fc_conv2d_direct_forward)(REAL *y, REAL *workspace, const REAL *x, const REAL *weight,
                                  const REAL *bias, ptrdiff_t N, ptrdiff_t C, ptrdiff_t H,
                                  ptrdiff_t W, ptrdiff_t OC, ptrdiff_t KH, ptrdiff_t KW,
                                  ptrdiff_t PH, ptrdiff_t PW, int relu, int n_threads)
{
    const ptrdiff_t OH = H + 2 * PH - KH + 1, OW = W + 2 * PW - KW + 1, K = C * KH * KW;
    ptrdiff_t HP, WP;
    direct_frame(H, PH, KH, W, PW, KW, &HP, &WP);
    if (N <= 0) return;
    const FN(direct_fwd_fn) image = FN(direct_pick_forward)();
    REAL *wp = workspace;
    FN(direct_repack)(wp, weight, OC, K);   /* before the region: no barrier inside */
    int nt = fc_clamp_threads(n_threads, N);
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        int tid = fc_thread_id(), nth = fc_thread_count();
        REAL *xp = workspace + direct_blocks(OC) * K + (ptrdiff_t)tid * C * HP * WP;
        ptrdiff_t n0 = N * tid / nth, n1 = N * (tid + 1) / nth;
        for (ptrdiff_t n = n0; n < n1; ++n) {
            FN(direct_pad)(xp, x + n * C * H * W, C, H, W, PH, PW, HP, WP);
            image(y + n * OC * OH * OW, xp, wp, bias, relu, C, KH, KW, HP, WP, OC, OH, OW);
        }
    }
}

void FN(fc_conv2d_direct_backward_weights)(REAL *dweight, REAL *dbias, REAL *dx,
                                           REAL *dx_workspace, REAL *workspace,
                                           const REAL *dy, const REAL *x,
                                           const REAL *weight, ptrdiff_t N, ptrdiff_t C,
                                           ptrdiff_t H, ptrdiff_t W, ptrdiff_t OC, ptrdiff_t KH,
                                           ptrdiff_t KW, ptrdiff_t PH, ptrdiff_t PW, int n_threads)
{
    const ptrdiff_t OH = H + 2 * PH - KH + 1, OW = W + 2 * PW - KW + 1, K = C * KH * KW;
    ptrdiff_t HP, WP;
    direct_frame(H, PH, KH, W, PW, KW, &HP, &WP);
    const ptrdiff_t per = direct_weights_per_thread(C, KH, KW, HP, WP, OC, OW);
    if (N <= 0) {
        for (ptrdiff_t i = 0; i < OC * K; ++i) dweight[i] = 0;
        if (dbias) for (ptrdiff_t i = 0; i < OC; ++i) dbias[i] = 0;
        return;
    }
    const FN(direct_dw_fn) image = FN(direct_pick_dweight)();
    int nt = fc_clamp_threads(n_threads, N);
    int used = 1;
    int blas_prev = fc_blas_threads_begin(nt);   /* dx's GEMMs run inside our threads */
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        int tid = fc_thread_id(), nth = fc_thread_count();
        if (tid == 0) used = nth;
        /* partial dW, partial db, the tap sums (vector-aligned), the dy strip, the padded image;
         * dx's column matrix */
        REAL *dwp = workspace + (ptrdiff_t)tid * per;
        REAL *dbp = dwp + OC * K, *sm = FN(direct_align)(dbp + OC);
        REAL *strip = sm + direct_sums(C, KH, KW), *xp = strip + direct_strip(OW);
        REAL *dcol = dx ? dx_workspace + (ptrdiff_t)tid * K * OH * OW : NULL;
        for (ptrdiff_t i = 0; i < OC * K + OC; ++i) dwp[i] = 0;
        ptrdiff_t n0 = N * tid / nth, n1 = N * (tid + 1) / nth;
        for (ptrdiff_t n = n0; n < n1; ++n) {
            FN(direct_pad)(xp, x + n * C * H * W, C, H, W, PH, PW, HP, WP);
            const REAL *next = n + 1 < n1 ? dy + (n + 1) * OC * OH * OW : NULL;
            image(dwp, dbp, dy + n * OC * OH * OW, next, xp, strip, sm, C, KH, KW, HP, WP, OC,
                  OH, OW);
            if (dx)   /* dy_n is in cache now (float64 MNIST: 0.68 of a pass of its own) */
                FN(fc_conv2d_backward_data_image)(dx + n * C * H * W, dcol, dy + n * OC * OH * OW,
                                                  weight, C, H, W, OC, KH, KW, PH, PW);
        }
#pragma omp barrier
        /* partials reduced in thread order, each element by one thread: deterministic */
#pragma omp for schedule(static)
        for (ptrdiff_t i = 0; i < OC * K; ++i) {
            REAL s = workspace[i];
            for (int t = 1; t < nth; ++t) s += workspace[t * per + i];
            dweight[i] = s;
        }
    }
    fc_blas_threads_end(blas_prev);
    if (dbias) {
        for (ptrdiff_t oc = 0; oc < OC; ++oc) {
            REAL s = workspace[OC * K + oc];
            for (int t = 1; t < used; ++t) s += workspace[t * per + OC * K + oc];
            dbias[oc] = s;
        }
    }
}

void FN(fc_conv2d_direct_backward_data)(REAL *dx, REAL *workspace, const REAL *dy,
                                        const REAL *weight, ptrdiff_t N, ptrdiff_t C,
                                        ptrdiff_t H, ptrdiff_t W, ptrdiff_t OC, ptrdiff_t KH,
                                        ptrdiff_t KW, ptrdiff_t PH, ptrdiff_t PW, int n_threads)
{
    /* the adjoint of a stride-1 convolution is one: the forward on dy (N, OC, OH, OW) with the
     * kernel transposed and rotated, wt[c][oc] = w[oc][c] turned 180 degrees, and padding
     * K - 1 - P (negative: a crop); its output is (H, W) again. wt goes first. */
    const ptrdiff_t OH = H + 2 * PH - KH + 1, OW = W + 2 * PW - KW + 1, KK = KH * KW;
    REAL *wt = workspace;
    for (ptrdiff_t oc = 0; oc < OC; ++oc)
        for (ptrdiff_t c = 0; c < C; ++c)
            for (ptrdiff_t k = 0; k < KK; ++k)
                wt[(c * OC + oc) * KK + KK - 1 - k] = weight[(oc * C + c) * KK + k];
    FN(fc_conv2d_direct_forward)(dx, workspace + C * OC * KK, dy, wt, (const REAL *)0, N, OC, OH,
                                 OW, C, KH, KW, KH - 1 - PH, KW - 1 - PW, 0, n_threads);
}
