/* conv_impl.h: type-generic body of the im2col convolution kernels, included by conv.c once per
 * dtype with REAL (float/double), FN(name) (adds _f32/_f64) and GEMM (fc_gemm_f32/_f64) defined.
 * Design (PERFORMANCE.md): per-image im2col into a per-thread buffer, one GEMM per image, a fused
 * epilogue; OpenMP over images with a fixed static split; per-thread dweight partials reduced in
 * thread order, so a given thread count always gives the same bits. */

/* The three per-image GEMMs: BLAS, or in double under AVX-512 (OWN_GEMM defined; own != 0 when
 * K = C*KH*KW <= CONV_OWN_MAX_K) wg_gemm_avx512.h's kernels, which read the weights in place.
 * OpenBLAS's small-matrix kernels ran MNIST's 30 x 576 x 25 in double at ~45 GFLOP/s. Against
 * BLAS (1 thread, thread CPU time, in-process A/B): forward 0.82-0.87 on MNIST's 1->30, 0.95 on
 * 3->8, 0.90 on 28->100 (12x12), but 1.07 on 16->32 (14x14) and 1.08-1.16 on 1x1 layers, whose
 * column matrix is x itself, read from memory (so not there); backward-data 0.90 or even; the
 * weight gradient 0.78-0.92 from 32 output channels (its rows; with 8 or 16, broadcasts outweigh
 * the FMAs: 1.11-1.18, so BLAS). In float they lost as often as they won (1x1 16->64 forward
 * 1.20, 3->8 weight gradient 1.84): float stays on BLAS. */
#if FC_X86_VARIANTS && defined(OWN_GEMM)
#pragma GCC push_options
#pragma GCC target("avx512f,avx512vl,avx512dq,avx512bw,avx2,fma")
/* c (M, P) = op(weight) (M, I) @ b (I, P) (+ bias, ReLU: the forward's epilogue, applied to the
 * register blocks before they are stored), weight (OC, K) read in place: op = none (forward:
 * M = OC, I = K) or transposed (dcol: M = K, I = OC) */
static void FN(own_weight_gemm)(REAL *c, const REAL *weight, int trans, const REAL *b,
                                ptrdiff_t M, ptrdiff_t I, ptrdiff_t K, ptrdiff_t P,
                                const REAL *bias, int relu)
{
    OWN_GEMM(wgs_gemm)(c, P, weight, trans ? 1 : K, trans ? K : 1, b, P, M, P, I, 0, bias, relu);
}

/* y_img (OC, OH*OW) = weight (OC, K) @ the column matrix of x_img (+ bias, ReLU) for a stride-1
 * unpadded layer, read from x_img in place (boff: tap k's offset in it): im2col's copy was 12% of
 * MNIST's 1->30 forward in double (perf) */
static void FN(own_implicit_forward)(REAL *y, const REAL *weight, const REAL *xn,
                                     const ptrdiff_t *boff, const REAL *bias, int relu,
                                     ptrdiff_t OC, ptrdiff_t K, ptrdiff_t W, ptrdiff_t OH,
                                     ptrdiff_t OW)
{
    OWN_GEMM(wgs_gemm_implicit)(y, OH * OW, weight, K, 1, xn, boff, W, OH, OW, OC, K, bias, relu);
}

/* dweight (OC, K) (+)= dy (OC, P) @ col^T (P, K); bt: 16*P of scratch */
static void FN(own_dweight)(REAL *dw, const REAL *dy, const REAL *col, ptrdiff_t OC, ptrdiff_t K,
                            ptrdiff_t P, int acc, REAL *bt)
{
    OWN_GEMM(wgt_gemm)(dw, K, dy, P, col, P, OC, K, P, acc, bt);
}
#pragma GCC pop_options
#define CONV_OWN(K) (fc_simd_active() >= FC_SIMD_AVX512 && (K) <= CONV_OWN_MAX_K)
/* dweight on the own GEMM (float64, 1 thread, against OpenBLAS: OC, K -> time): from 32 channels
 * (0.78-0.92), and from 12 where the product is large enough (30, 75: 0.67; 24, 144: 0.74; 12,
 * 144: 0.82; 20, 200: 0.84), not below (16, 75: 1.11; 24, 27: 1.20; 16, 64: 1.21; 8, 144: 1.19;
 * 30, 25: even) */
#define CONV_OWN_DWEIGHT(OC, K) ((OC) >= WGT_MIN_ROWS || ((OC) >= 12 && (OC) * (K) >= 1700))
#else
#define CONV_OWN(K) 0
#define CONV_OWN_DWEIGHT(OC, K) 0
#endif

/* backward-data's dcol (K, P) = weight^T (K, OC) @ dy_img (OC, P), weight (OC, K) */
static void FN(dcol_gemm)(int own, REAL *dcol, const REAL *weight, const REAL *dy, ptrdiff_t OC,
                          ptrdiff_t K, ptrdiff_t P)
{
#if FC_X86_VARIANTS && defined(OWN_GEMM)
    if (own) {
        FN(own_weight_gemm)(dcol, weight, 1, dy, K, OC, K, P, NULL, 0);
        return;
    }
#endif
    (void)own;
    GEMM(1, 0, K, P, OC, (REAL)1, weight, K, dy, P, (REAL)0, dcol, P);
}

/* y_img (OC, P) = weight (OC, K) @ col (K, P) + bias, then ReLU: on the own GEMM in its register
 * blocks (MNIST's 1->30 in double: the separate pass over y was 7% of the forward, perf), else
 * BLAS and the epilogue while y_img is still in cache. */
static void FN(forward_gemm)(int own, REAL *y, const REAL *weight, const REAL *col,
                             const REAL *bias, int relu, ptrdiff_t OC, ptrdiff_t K, ptrdiff_t P)
{
#if FC_X86_VARIANTS && defined(OWN_GEMM)
    if (own) {
        FN(own_weight_gemm)(y, weight, 0, col, OC, K, K, P, bias, relu);
        return;
    }
#endif
    (void)own;
    GEMM(0, 0, OC, P, K, (REAL)1, weight, K, col, P, (REAL)0, y, P);
    FN(epilogue)(y, bias, OC, P, relu);
}

/* dweight (OC, K) (+)= dy (OC, P) @ col^T (P, K) (acc: added) */
static void FN(gemm_dweight)(int own, REAL *dw, const REAL *dy, const REAL *col, ptrdiff_t OC,
                             ptrdiff_t K, ptrdiff_t P, int acc, REAL *bt)
{
#if FC_X86_VARIANTS && defined(OWN_GEMM)
    if (own && CONV_OWN_DWEIGHT(OC, K)) {
        FN(own_dweight)(dw, dy, col, OC, K, P, acc, bt);
        return;
    }
#endif
    (void)own;
    (void)bt;
    GEMM(0, 1, OC, K, P, (REAL)1, dy, P, col, P, acc ? (REAL)1 : (REAL)0, dw, K);
}

void FN(fc_conv2d_forward)(REAL *y, REAL *workspace, const REAL *x, const REAL *weight,
                           const REAL *bias, ptrdiff_t N, ptrdiff_t C, ptrdiff_t H, ptrdiff_t W,
                           ptrdiff_t OC, ptrdiff_t KH, ptrdiff_t KW, ptrdiff_t SH, ptrdiff_t SW,
                           ptrdiff_t PH, ptrdiff_t PW, int relu, int n_threads)
{
    /* x (N, C, H, W)  weight (OC, K = C*KH*KW)  col (K, P = OH*OW) per thread  y (N, OC, P) */
    const ptrdiff_t OH = (H + 2 * PH - KH) / SH + 1, OW = (W + 2 * PW - KW) / SW + 1;
    const ptrdiff_t K = C * KH * KW, P = OH * OW;
    const int direct = is_pointwise(KH, KW, SH, SW, PH, PW), own = CONV_OWN(K);
    if (N <= 0) return;
#if FC_X86_VARIANTS && defined(OWN_GEMM)
    /* the own GEMM reads a stride-1 unpadded layer's columns from x in place */
    const int implicit = own && !direct && SH == 1 && SW == 1 && PH == 0 && PW == 0;
    ptrdiff_t boff[CONV_OWN_MAX_K];   /* tap (c, kh, kw)'s offset in an image */
    for (ptrdiff_t k = 0; implicit && k < K; ++k)
        boff[k] = k / (KH * KW) * H * W + k / KW % KH * W + k % KW;
#endif
    int nt = fc_clamp_threads(n_threads, N);
    int blas_prev = fc_blas_threads_begin(nt);
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        int tid = fc_thread_id(), nth = fc_thread_count();
        ptrdiff_t n0 = N * tid / nth, n1 = N * (tid + 1) / nth;
        REAL *col = workspace + (ptrdiff_t)tid * K * P;
        for (ptrdiff_t n = n0; n < n1; ++n) {
            const REAL *xn = x + n * C * H * W;
            REAL *yn = y + n * OC * P;
#if FC_X86_VARIANTS && defined(OWN_GEMM)
            if (implicit) {
                FN(own_implicit_forward)(yn, weight, xn, boff, bias, relu, OC, K, W, OH, OW);
                continue;
            }
#endif
            if (!direct) FN(im2col)(col, xn, C, H, W, KH, KW, SH, SW, PH, PW, OH, OW);
            FN(forward_gemm)(own && !direct, yn, weight, direct ? xn : col, bias, relu, OC, K, P);
        }
    }
    fc_blas_threads_end(blas_prev);
}

void FN(fc_conv2d_backward)(REAL *dx, REAL *dweight, REAL *dbias, REAL *workspace, const REAL *dy,
                            const REAL *x, const REAL *weight, ptrdiff_t N, ptrdiff_t C,
                            ptrdiff_t H, ptrdiff_t W, ptrdiff_t OC, ptrdiff_t KH, ptrdiff_t KW,
                            ptrdiff_t SH, ptrdiff_t SW, ptrdiff_t PH, ptrdiff_t PW, int n_threads)
{
    /* dy (N, OC, P)  x (N, C, H, W)  weight (OC, K)  dweight (OC, K)  dbias (OC)  dx like x.
     * Per thread: col/dcol (K, P) unless pointwise, then partial dweight (OC, K), dbias (OC),
     * the own weight-gradient GEMM's scratch (16*P). */
    const ptrdiff_t OH = (H + 2 * PH - KH) / SH + 1, OW = (W + 2 * PW - KW) / SW + 1;
    const ptrdiff_t K = C * KH * KW, P = OH * OW;
    const int direct = is_pointwise(KH, KW, SH, SW, PH, PW), own = CONV_OWN(K);
    const ptrdiff_t col_size = direct ? 0 : K * P;
    const ptrdiff_t per_thread = col_size + OC * K + OC + 16 * P;
    int nt = fc_clamp_threads(n_threads, N);
    int used = 1;
    if (N <= 0) {
        if (dweight) for (ptrdiff_t i = 0; i < OC * K; ++i) dweight[i] = 0;
        if (dbias) for (ptrdiff_t i = 0; i < OC; ++i) dbias[i] = 0;
        return;
    }
    int blas_prev = fc_blas_threads_begin(nt);
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        int tid = fc_thread_id(), nth = fc_thread_count();
        if (tid == 0) used = nth;
        ptrdiff_t n0 = N * tid / nth, n1 = N * (tid + 1) / nth;
        REAL *col = workspace + (ptrdiff_t)tid * per_thread;
        REAL *dw_part = col + col_size;
        REAL *db_part = dw_part + OC * K, *bt = db_part + OC;
        for (ptrdiff_t oc = 0; oc < OC; ++oc) db_part[oc] = 0;
        for (ptrdiff_t n = n0; n < n1; ++n) {
            const REAL *xn = x + n * C * H * W;
            const REAL *dyn = dy + n * OC * P;
            if (dweight) {
                const REAL *cn = xn;
                if (!direct) {
                    FN(im2col)(col, xn, C, H, W, KH, KW, SH, SW, PH, PW, OH, OW);
                    cn = col;
                }
                /* dweight_part (OC, K) (+)= dy_n (OC, P) @ col^T (P, K) */
                FN(gemm_dweight)(own, dw_part, dyn, cn, OC, K, P, n != n0, bt);
            }
            if (dbias) {
                for (ptrdiff_t oc = 0; oc < OC; ++oc)
                    db_part[oc] += (REAL)FN(sum_lanes)(dyn + oc * P, P);
            }
            if (dx) {
                /* dcol (K, P) = weight^T (K, OC) @ dy_n (OC, P); pointwise: dcol is dx_n. */
                REAL *dxn = dx + n * C * H * W;
                FN(dcol_gemm)(own, direct ? dxn : col, weight, dyn, OC, K, P);
                if (!direct) FN(col2im)(dxn, col, C, H, W, KH, KW, SH, SW, PH, PW, OH, OW);
            }
        }
        if (n1 == n0) {  /* a thread without images still owns a (zero) partial */
            for (ptrdiff_t i = 0; i < OC * K; ++i) dw_part[i] = 0;
        }
#pragma omp barrier
        /* Reduce partials in thread order, each element by one thread: deterministic. */
#pragma omp for schedule(static)
        for (ptrdiff_t i = 0; i < (dweight ? OC * K : 0); ++i) {
            REAL s = workspace[col_size + i];
            for (int t = 1; t < nth; ++t) s += workspace[t * per_thread + col_size + i];
            dweight[i] = s;
        }
    }
    if (dbias) {
        for (ptrdiff_t oc = 0; oc < OC; ++oc) {
            REAL s = workspace[col_size + OC * K + oc];
            for (int t = 1; t < used; ++t) s += workspace[t * per_thread + col_size + OC * K + oc];
            dbias[oc] = s;
        }
    }
    fc_blas_threads_end(blas_prev);
}

/* One image's dx (C, H, W) of a stride-1 layer: dcol (K, P) = weight^T dy_n, then col2im
 * (pointwise: dcol is dx_n). For direct.c's backward, which calls it from its own loop over
 * images right after an image's weight gradient, while dy_n is in cache; BLAS must be held to
 * one thread around that loop (fc_blas_threads_begin). dcol: K*P of scratch. */
void FN(fc_conv2d_backward_data_image)(REAL *dxn, REAL *dcol, const REAL *dyn,
                                       const REAL *weight, ptrdiff_t C, ptrdiff_t H, ptrdiff_t W,
                                       ptrdiff_t OC, ptrdiff_t KH, ptrdiff_t KW, ptrdiff_t PH,
                                       ptrdiff_t PW)
{
    const ptrdiff_t OH = H + 2 * PH - KH + 1, OW = W + 2 * PW - KW + 1;
    const ptrdiff_t K = C * KH * KW, P = OH * OW;
    const int direct = is_pointwise(KH, KW, 1, 1, PH, PW);
    FN(dcol_gemm)(CONV_OWN(K), direct ? dxn : dcol, weight, dyn, OC, K, P);
    if (!direct) FN(col2im)(dxn, dcol, C, H, W, KH, KW, 1, 1, PH, PW, OH, OW);
}

#undef CONV_OWN
#undef CONV_OWN_DWEIGHT
