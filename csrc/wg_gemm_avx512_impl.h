/* wg_gemm_avx512_impl.h: the type-generic body of wg_gemm_avx512.h's GEMMs, included by it once
 * per dtype with WGG_REAL, WGG_V (the vector), WGG_L (its lanes), WGG_MASK, the intrinsics
 * WGG_LOAD (masked, zeroing), WGG_STORE (masked), WGG_STOREU, WGG_SET1, WGG_FMA, WGG_ADD,
 * WGG_ZERO, the transposition WGG_TRANSPOSE (an L x L block), WGG_RELU and WGG(name) (adds
 * _f32/_f64) defined, which it undefines at the end. No include guard. */

/* C[r][0..L*nv) (masked by m0, m1) (+)= sum_k A[r*ar + k*ak] B[k][0..L*nv) for r < rb (added
 * to C when acc), then + bias[r] (unless bias is NULL) and ReLU (relu); rb, nv, ar, ak and acc
 * are constants after inlining (packed A: ar = 1, ak = rb). */
static inline __attribute__((always_inline)) void
WGG(wgp_kernel)(WGG_REAL *restrict c, ptrdiff_t ldc, const WGG_REAL *restrict a,
                const WGG_REAL *restrict b, ptrdiff_t ldb, ptrdiff_t K, const int rb, const int nv,
                WGG_MASK m0, WGG_MASK m1, const ptrdiff_t ar, const ptrdiff_t ak, const int acc,
                const WGG_REAL *bias, int relu, const ptrdiff_t *boff)
{
    WGG_V c0[WGP_R], c1[WGP_R];
    const WGG_REAL *const base = b;
    for (int r = 0; r < rb; ++r) c0[r] = c1[r] = WGG_ZERO();
    for (ptrdiff_t k = 0; k < K; ++k, a += ak, b += ldb) {
        const WGG_REAL *bk = boff ? base + boff[k] : b;
        const WGG_V b0 = WGG_LOAD(m0, bk);
        const WGG_V b1 = nv == 2 ? WGG_LOAD(m1, bk + WGG_L) : b0;
        for (int r = 0; r < rb; ++r) {
            const WGG_V av = WGG_SET1(a[r * ar]);
            c0[r] = WGG_FMA(av, b0, c0[r]);
            if (nv == 2) c1[r] = WGG_FMA(av, b1, c1[r]);
        }
    }
    /* Zen 4 takes a masked store of a vector several times as long as a plain one: with K as
     * short as im2col's 25 they were a quarter of the kernel's time */
    const int full = (WGG_MASK)~(nv == 2 ? m1 : m0) == 0;
    /* unrolled whatever its length (with the bias and ReLU GCC stopped unrolling it, and the
     * accumulators, indexed by a variable, went to the stack: 2x slower) */
#pragma GCC unroll 16
    for (int r = 0; r < rb; ++r) {
        WGG_REAL *cr = c + r * ldc;
        if (acc) c0[r] = WGG_ADD(WGG_LOAD(m0, cr), c0[r]);
        if (bias) {
            c0[r] = WGG_ADD(c0[r], WGG_SET1(bias[r]));
            if (nv == 2) c1[r] = WGG_ADD(c1[r], WGG_SET1(bias[r]));
        }
        if (relu) {
            c0[r] = WGG_RELU(c0[r]);
            if (nv == 2) c1[r] = WGG_RELU(c1[r]);
        }
        if (full) WGG_STOREU(cr, c0[r]);
        else WGG_STORE(cr, m0, c0[r]);
        if (nv == 2) {
            if (acc) c1[r] = WGG_ADD(WGG_LOAD(m1, cr + WGG_L), c1[r]);
            if (full) WGG_STOREU(cr + WGG_L, c1[r]);
            else WGG_STORE(cr + WGG_L, m1, c1[r]);
        }
    }
}

/* C (rows, n), rows ldc apart, = A (rows, K) packed in panels of WGP_R rows times B (K, n), rows
 * ldb apart. Panel by panel, so a panel (K*WGP_R, 18 KB of float for K = 384) is read from
 * memory once and again from L1/L2 for the next 2L columns; a last run of at most L columns takes
 * the one-vector kernel (on blocks of 48 tiles, two vectors there wasted a third of the FMAs). */
static inline void WGG(wgp_gemm)(WGG_REAL *restrict c, ptrdiff_t ldc, const WGG_REAL *restrict ap,
                          const WGG_REAL *restrict b, ptrdiff_t ldb, ptrdiff_t rows, ptrdiff_t K,
                          ptrdiff_t n)
{
    for (ptrdiff_t p0 = 0; p0 < rows; p0 += WGP_R) {
        const int rb = rows - p0 < WGP_R ? (int)(rows - p0) : WGP_R;
        const WGG_REAL *a = ap + p0 * K;
        for (ptrdiff_t j = 0; j < n; j += 2 * WGG_L) {
            const ptrdiff_t w = n - j < 2 * WGG_L ? n - j : 2 * WGG_L;
            const WGG_MASK m0 = WGG(wgp_mask)(w), m1 = WGG(wgp_mask)(w - WGG_L);
            WGG_REAL *cj = c + p0 * ldc + j;
            const WGG_REAL *bj = b + j;
            if (w > WGG_L) {
                switch (rb) {   /* one unrolled kernel per panel height */
#define WGP_CASE(R_) \
    case R_: WGG(wgp_kernel)(cj, ldc, a, bj, ldb, K, R_, 2, m0, m1, 1, R_, 0, NULL, 0, NULL); break;
                    WGP_CASE(12) WGP_CASE(11) WGP_CASE(10) WGP_CASE(9) WGP_CASE(8) WGP_CASE(7)
                    WGP_CASE(6) WGP_CASE(5) WGP_CASE(4) WGP_CASE(3) WGP_CASE(2) WGP_CASE(1)
#undef WGP_CASE
                }
            } else {
                switch (rb) {
#define WGP_CASE(R_) \
    case R_: WGG(wgp_kernel)(cj, ldc, a, bj, ldb, K, R_, 1, m0, 0, 1, R_, 0, NULL, 0, NULL); break;
                    WGP_CASE(12) WGP_CASE(11) WGP_CASE(10) WGP_CASE(9) WGP_CASE(8) WGP_CASE(7)
                    WGP_CASE(6) WGP_CASE(5) WGP_CASE(4) WGP_CASE(3) WGP_CASE(2) WGP_CASE(1)
#undef WGP_CASE
                }
            }
        }
    }
}

/* One register block of C (rb rows from c, w <= 2L columns, masks m0, m1) (+)= A B (+ bias,
 * ReLU: as wgp_kernel) with A's rows ar and its columns ak apart: the kernel unrolled for each
 * panel height, one or two vectors, accumulating or not (b: B, rows ldb apart). Inlined into its
 * callers: as a function of its own GCC kept the accumulators on the stack (wgt_gemm ran 1.9x
 * slower). */
static inline __attribute__((always_inline)) void
WGG(wgp_block)(WGG_REAL *restrict c, ptrdiff_t ldc, const WGG_REAL *restrict a, ptrdiff_t ar,
               ptrdiff_t ak, const WGG_REAL *restrict b, ptrdiff_t ldb, ptrdiff_t K, int rb,
               ptrdiff_t w, WGG_MASK m0, WGG_MASK m1, int acc, const WGG_REAL *bias, int relu,
               const ptrdiff_t *boff)
{
#define WGB_KERNEL(R_, NV_, M1_, ACC_)                                                        \
    WGG(wgp_kernel)(c, ldc, a, b, ldb, K, R_, NV_, m0, M1_, ar, ak, ACC_, bias, relu, boff)
#define WGB_CASE(R_)                                                                          \
    case R_:                                                                                  \
        if (w > WGG_L && acc) WGB_KERNEL(R_, 2, m1, 1);                                       \
        else if (w > WGG_L) WGB_KERNEL(R_, 2, m1, 0);                                         \
        else if (acc) WGB_KERNEL(R_, 1, 0, 1);                                                \
        else WGB_KERNEL(R_, 1, 0, 0);                                                         \
        break;
    switch (rb) {
        WGB_CASE(12) WGB_CASE(11) WGB_CASE(10) WGB_CASE(9) WGB_CASE(8) WGB_CASE(7)
        WGB_CASE(6) WGB_CASE(5) WGB_CASE(4) WGB_CASE(3) WGB_CASE(2) WGB_CASE(1)
    }
#undef WGB_CASE
#undef WGB_KERNEL
}

/* The weight-gradient GEMM of the Winograd planes: C (rows, n), rows ldc apart, (+)= A (rows, K)
 * B^T (acc: added to C), A's rows lda apart and B (n, K) rows ldb apart, both with K (the
 * block's tiles) contiguous. OpenBLAS's small-matrix kernel took these (e.g. 32 x 16 x 64 per
 * plane on DeepConvNet's 16->32) at ~66 GFLOP/s, 17% of that layer. Here 2L columns of B at a
 * time are transposed in L x L blocks into bt (K*2L elements; gathers took 40% of the time), and
 * the kernel above broadcasts A in place (rows lda apart). */
static inline void WGG(wgt_gemm)(WGG_REAL *restrict c, ptrdiff_t ldc, const WGG_REAL *restrict a,
                          ptrdiff_t lda, const WGG_REAL *restrict b, ptrdiff_t ldb,
                          ptrdiff_t rows, ptrdiff_t n, ptrdiff_t K, int acc,
                          WGG_REAL *restrict bt)
{
    const ptrdiff_t L = WGG_L, L2 = 2 * WGG_L;
    for (ptrdiff_t j = 0; j < n; j += L2) {
        const ptrdiff_t w = n - j < L2 ? n - j : L2;
        const WGG_MASK m0 = WGG(wgp_mask)(w), m1 = WGG(wgp_mask)(w - L);
        for (ptrdiff_t k0 = 0; k0 < K; k0 += L) {   /* bt[k][0..w) = B[j..j+w)[k] */
            const ptrdiff_t kn = K - k0 < L ? K - k0 : L;
            WGG_TRANSPOSE(bt + k0 * L2, L2, b + j * ldb + k0, ldb, w < L ? w : L, kn);
            if (w > L) WGG_TRANSPOSE(bt + k0 * L2 + L, L2, b + (j + L) * ldb + k0, ldb, w - L, kn);
        }
        for (ptrdiff_t p0 = 0; p0 < rows; p0 += WGP_R) {
            const int rb = rows - p0 < WGP_R ? (int)(rows - p0) : WGP_R;
            WGG(wgp_block)(c + p0 * ldc + j, ldc, a + p0 * lda, lda, 1, bt, L2, K, rb, w, m0, m1,
                           acc, NULL, 0, NULL);
        }
    }
}

/* C (rows, n), rows ldc apart, (+)= A (rows, K) B (K, n) (acc: added to C), then + bias[row]
 * (bias not NULL) and ReLU (relu), A's element (r, k) at a[r*ar + k*ak] (A or a transposed A,
 * read in place: im2col's small weight matrices) and B's rows ldb apart. Panels outer, so that
 * C is written row segment after row segment, which the prefetchers follow (columns outer, each
 * strip writing 30 rows 4.5 KB apart, MNIST's 30 x 576 x 25 ran 1.2x slower); the panels share
 * the rows evenly (25 rows: 9, 8, 8 rather than 12, 12, 1, whose one-row kernel would be
 * load-bound). B should be in cache: it is read by vectors from K rows at once, which the
 * prefetchers do not follow as they do BLAS's packing. */
static inline void WGG(wgs_gemm)(WGG_REAL *restrict c, ptrdiff_t ldc, const WGG_REAL *restrict a,
                                 ptrdiff_t ar, ptrdiff_t ak, const WGG_REAL *restrict b,
                                 ptrdiff_t ldb, ptrdiff_t rows, ptrdiff_t n, ptrdiff_t K, int acc,
                                 const WGG_REAL *bias, int relu)
{
    const ptrdiff_t L = WGG_L, L2 = 2 * WGG_L;
    const ptrdiff_t panels = (rows + WGP_R - 1) / WGP_R;
    for (ptrdiff_t p = 0; p < panels; ++p) {
        const ptrdiff_t r0 = rows * p / panels, r1 = rows * (p + 1) / panels;
        for (ptrdiff_t j = 0; j < n; j += L2) {
            const ptrdiff_t w = n - j < L2 ? n - j : L2;
            const WGG_MASK m0 = WGG(wgp_mask)(w), m1 = WGG(wgp_mask)(w - L);
            WGG(wgp_block)(c + r0 * ldc + j, ldc, a + r0 * ar, ar, ak, b + j, ldb, K,
                           (int)(r1 - r0), w, m0, m1, acc, bias ? bias + r0 : NULL, relu, NULL);
        }
    }
}

/* wgs_gemm's forward (C = A B + bias, ReLU) on the column matrix of a stride-1 unpadded
 * convolution without building it: B[k][oh*OW + ow] = x[boff[k] + oh*W + ow] (boff[k]: the
 * offset of tap k = (c, kh, kw), c*H*W + kh*W + kw), C (rows, OH*OW) rows ldc apart; output row
 * by output row, each read from x where the column matrix would have copied it from. */
static inline void WGG(wgs_gemm_implicit)(WGG_REAL *restrict c, ptrdiff_t ldc,
                                          const WGG_REAL *restrict a, ptrdiff_t ar, ptrdiff_t ak,
                                          const WGG_REAL *restrict x, const ptrdiff_t *boff,
                                          ptrdiff_t W, ptrdiff_t OH, ptrdiff_t OW, ptrdiff_t rows,
                                          ptrdiff_t K, const WGG_REAL *bias, int relu)
{
    const ptrdiff_t L = WGG_L, L2 = 2 * WGG_L;
    const ptrdiff_t panels = (rows + WGP_R - 1) / WGP_R;
    for (ptrdiff_t p = 0; p < panels; ++p) {
        const ptrdiff_t r0 = rows * p / panels, r1 = rows * (p + 1) / panels;
        for (ptrdiff_t oh = 0; oh < OH; ++oh) {
            for (ptrdiff_t j = 0; j < OW; j += L2) {
                const ptrdiff_t w = OW - j < L2 ? OW - j : L2;
                const WGG_MASK m0 = WGG(wgp_mask)(w), m1 = WGG(wgp_mask)(w - L);
                WGG(wgp_block)(c + r0 * ldc + oh * OW + j, ldc, a + r0 * ar, ar, ak,
                               x + oh * W + j, 0, K, (int)(r1 - r0), w, m0, m1, 0,
                               bias ? bias + r0 : NULL, relu, boff);
            }
        }
    }
}

#undef WGG_REAL
#undef WGG_V
#undef WGG_L
#undef WGG_MASK
#undef WGG_LOAD
#undef WGG_STORE
#undef WGG_STOREU
#undef WGG_SET1
#undef WGG_FMA
#undef WGG_ADD
#undef WGG_ZERO
#undef WGG_TRANSPOSE
#undef WGG_RELU
#undef WGG
