/* wg_gemm_avx2_impl.h: the type-generic body of wg_gemm_avx2.h, included by it once per dtype
 * with WG2_REAL, WG2_V (the vector), WG2_L (its lanes), the intrinsics WG2_LOADU, WG2_MASKLOAD,
 * WG2_STOREU, WG2_BROADCAST, WG2_FMA, WG2_ZERO, the lane sums WG2_HSUM4 and their store
 * WG2_STORE4, and WG2(name) (adds _f32/_f64) defined, which it
 * undefines at the end. No include guard. */

/* C[r][0..w) (+)= sum_k A[r*ar + k*ak] B[k][0..w) for r < rb (<= WGP2_H), w <= nv*L columns
 * (acc: added to C): all of them when `full`, else the first w (B read under masks m0, m1; C
 * through a buffer, as AVX2's masked stores are slow on AMD). rb, nv, full and acc are constants
 * after inlining; so is ar where A is packed (1). */
static inline __attribute__((always_inline)) void
WG2(wgp2_kernel)(WG2_REAL *restrict c, ptrdiff_t ldc, const WG2_REAL *restrict a, ptrdiff_t ar,
                 ptrdiff_t ak, const WG2_REAL *restrict b, ptrdiff_t ldb, ptrdiff_t K,
                 const int rb, const int nv, const int full, const int acc, ptrdiff_t w,
                 __m256i m0, __m256i m1)
{
    WG2_V c0[WGP2_H], c1[WGP2_H];
    for (int r = 0; r < rb; ++r) {
        c0[r] = c1[r] = WG2_ZERO();
        if (acc && full) {
            c0[r] = WG2_LOADU(c + r * ldc);
            if (nv == 2) c1[r] = WG2_LOADU(c + r * ldc + WG2_L);
        } else if (acc) {
            WG2_REAL t[2 * WG2_L] = {0};
            for (ptrdiff_t j = 0; j < w; ++j) t[j] = c[r * ldc + j];
            c0[r] = WG2_LOADU(t);
            if (nv == 2) c1[r] = WG2_LOADU(t + WG2_L);
        }
    }
    for (ptrdiff_t k = 0; k < K; ++k, a += ak, b += ldb) {
        const WG2_V b0 = full ? WG2_LOADU(b) : WG2_MASKLOAD(b, m0);
        const WG2_V b1 = nv == 2 ? (full ? WG2_LOADU(b + WG2_L) : WG2_MASKLOAD(b + WG2_L, m1)) : b0;
        for (int r = 0; r < rb; ++r) {
            const WG2_V av = WG2_BROADCAST(a + r * ar);
            c0[r] = WG2_FMA(av, b0, c0[r]);
            if (nv == 2) c1[r] = WG2_FMA(av, b1, c1[r]);
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < rb; ++r) {
        WG2_REAL *cr = c + r * ldc;
        if (full) {
            WG2_STOREU(cr, c0[r]);
            if (nv == 2) WG2_STOREU(cr + WG2_L, c1[r]);
        } else {
            WG2_REAL t[2 * WG2_L];
            WG2_STOREU(t, c0[r]);
            if (nv == 2) WG2_STOREU(t + WG2_L, c1[r]);
            for (ptrdiff_t j = 0; j < w; ++j) cr[j] = t[j];
        }
    }
}

/* One register block (hb <= WGP2_H rows of C, w <= 2L columns) of wgp2_kernel, unrolled for
 * each height, width class and acc. */
static inline __attribute__((always_inline)) void
WG2(wgp2_block)(WG2_REAL *restrict c, ptrdiff_t ldc, const WG2_REAL *restrict a, ptrdiff_t ar,
                ptrdiff_t ak, const WG2_REAL *restrict b, ptrdiff_t ldb, ptrdiff_t K, int hb,
                int acc, ptrdiff_t w, __m256i m0, __m256i m1)
{
#define WGP2_CALL(R_, NV_, FULL_, ACC_) \
    WG2(wgp2_kernel)(c, ldc, a, ar, ak, b, ldb, K, R_, NV_, FULL_, ACC_, w, m0, m1)
#define WGP2_WIDTHS(R_, ACC_)                                                                 \
    if (w == 2 * WG2_L) WGP2_CALL(R_, 2, 1, ACC_);                                            \
    else if (w > WG2_L) WGP2_CALL(R_, 2, 0, ACC_);                                            \
    else if (w == WG2_L) WGP2_CALL(R_, 1, 1, ACC_);                                           \
    else WGP2_CALL(R_, 1, 0, ACC_);
#define WGP2_CASE(R_)                                                                         \
    case R_:                                                                                  \
        if (acc) {                                                                            \
            WGP2_WIDTHS(R_, 1)                                                                \
        } else {                                                                              \
            WGP2_WIDTHS(R_, 0)                                                                \
        }                                                                                     \
        break;
    switch (hb) {
        WGP2_CASE(6) WGP2_CASE(5) WGP2_CASE(4) WGP2_CASE(3) WGP2_CASE(2) WGP2_CASE(1)
    }
#undef WGP2_CASE
#undef WGP2_WIDTHS
#undef WGP2_CALL
}

/* C (rows, n), rows ldc apart, = A (rows, K) packed in panels of WGP2_R rows times B (K, n),
 * rows ldb apart: panel by panel, 2L columns at a time, each half panel a register block (the
 * panel, K*12 values, and the 2L columns of B stay in L1/L2 between them). */
static inline void WG2(wgp2_gemm)(WG2_REAL *restrict c, ptrdiff_t ldc,
                                  const WG2_REAL *restrict ap, const WG2_REAL *restrict b,
                                  ptrdiff_t ldb, ptrdiff_t rows, ptrdiff_t K, ptrdiff_t n)
{
    for (ptrdiff_t p0 = 0; p0 < rows; p0 += WGP2_R) {
        const int rb = rows - p0 < WGP2_R ? (int)(rows - p0) : WGP2_R;
        const WG2_REAL *a = ap + p0 * K;
        for (ptrdiff_t j = 0; j < n; j += 2 * WG2_L) {
            const ptrdiff_t w = n - j < 2 * WG2_L ? n - j : 2 * WG2_L;
            const __m256i m0 = WG2(wgp2_mask)(w), m1 = WG2(wgp2_mask)(w - WG2_L);
            for (int h0 = 0; h0 < rb; h0 += WGP2_H) {
                const int hb = rb - h0 < WGP2_H ? rb - h0 : WGP2_H;
                WG2(wgp2_block)(c + (p0 + h0) * ldc + j, ldc, a + h0, 1, rb, b + j, ldb, K, hb,
                                0, w, m0, m1);
            }
        }
    }
}

/* The weight-gradient GEMM of the Winograd planes for wide B: C (rows, n), rows ldc apart, (+)=
 * A (rows, K) B^T (acc: added to C), A's rows lda apart and B (n, K) rows ldb apart, both with K
 * (the block's tiles) contiguous. 2L columns of B at a time are transposed into bt (K*2L
 * elements, the columns past n zero), which the register blocks of wgp2_kernel then read as
 * their B while broadcasting A in place. Through BLAS (AlexNet's 13x13 layers, 384 input
 * channels, the rows split between 2 threads) OpenBLAS's packing of these GEMMs' operands took
 * 14% of the backward, more than half its kernel's 22%. Each element's sum runs over k in order,
 * whichever rows a thread takes. */
static inline void WG2(wgt2_gemm)(WG2_REAL *restrict c, ptrdiff_t ldc, const WG2_REAL *restrict a,
                                  ptrdiff_t lda, const WG2_REAL *restrict b, ptrdiff_t ldb,
                                  ptrdiff_t rows, ptrdiff_t n, ptrdiff_t K, int acc,
                                  WG2_REAL *restrict bt)
{
    const ptrdiff_t L = WG2_L, L2 = 2 * WG2_L;
    for (ptrdiff_t j = 0; j < n; j += L2) {
        const ptrdiff_t w = n - j < L2 ? n - j : L2;
        const __m256i m0 = WG2(wgp2_mask)(w), m1 = WG2(wgp2_mask)(w - L);
        for (ptrdiff_t k0 = 0; k0 < K; k0 += L) {   /* bt[k][0..2L) = B[j..j+2L)[k], 0 past n */
            const ptrdiff_t kn = K - k0 < L ? K - k0 : L;
            WG2_TRANSPOSE(bt + k0 * L2, L2, b + j * ldb + k0, ldb, w < L ? w : L, kn);
            WG2_TRANSPOSE(bt + k0 * L2 + L, L2, b + (j + L) * ldb + k0, ldb, w - L, kn);
        }
        for (ptrdiff_t r0 = 0; r0 < rows; r0 += WGP2_H) {
            const int hb = rows - r0 < WGP2_H ? (int)(rows - r0) : WGP2_H;
            WG2(wgp2_block)(c + r0 * ldc + j, ldc, a + r0 * lda, lda, 1, bt, L2, K, hb, acc,
                            w, m0, m1);
        }
    }
}

/* C[r][c] (+)= sum_k A[r][k] B[c][k] for r < rb (<= WGD2_R), c < cb (<= WGD2_C): dot products
 * in lanes over k (K rounded up to whole vectors, the last masked), then each summed across
 * its lanes (WG2_HSUM4). rb and cb are constants after inlining. */
static inline __attribute__((always_inline)) void
WG2(wgd2_kernel)(WG2_REAL *restrict c, ptrdiff_t ldc, const WG2_REAL *restrict a, ptrdiff_t lda,
                 const WG2_REAL *restrict b, ptrdiff_t ldb, ptrdiff_t K, const int rb,
                 const int cb, int acc, __m256i tail)
{
    WG2_V s[WGD2_R][WGD2_C];
    for (int r = 0; r < WGD2_R; ++r)
        for (int q = 0; q < WGD2_C; ++q) s[r][q] = WG2_ZERO();
    ptrdiff_t k = 0;
    for (; k + WG2_L <= K; k += WG2_L) {
        WG2_V av[WGD2_R], bv[WGD2_C];
        for (int r = 0; r < rb; ++r) av[r] = WG2_LOADU(a + r * lda + k);
        for (int q = 0; q < cb; ++q) bv[q] = WG2_LOADU(b + q * ldb + k);
        for (int r = 0; r < rb; ++r)
            for (int q = 0; q < cb; ++q) s[r][q] = WG2_FMA(av[r], bv[q], s[r][q]);
    }
    if (k < K) {
        WG2_V av[WGD2_R], bv[WGD2_C];
        for (int r = 0; r < rb; ++r) av[r] = WG2_MASKLOAD(a + r * lda + k, tail);
        for (int q = 0; q < cb; ++q) bv[q] = WG2_MASKLOAD(b + q * ldb + k, tail);
        for (int r = 0; r < rb; ++r)
            for (int q = 0; q < cb; ++q) s[r][q] = WG2_FMA(av[r], bv[q], s[r][q]);
    }
    for (int r = 0; r < rb; ++r) {
        WG2_REAL t[4];
        WG2_STORE4(t, WG2_HSUM4(s[r][0], s[r][1], s[r][2], s[r][3]));
        WG2_REAL *cr = c + r * ldc;
        for (int q = 0; q < cb; ++q) cr[q] = acc ? cr[q] + t[q] : t[q];
    }
}

/* The weight-gradient GEMM of the Winograd planes: C (rows, n), rows ldc apart, (+)= A (rows,
 * K) B^T (acc: added to C), A's rows lda apart and B (n, K) rows ldb apart, both with K (the
 * block's tiles) contiguous. */
static inline void WG2(wgd2_gemm)(WG2_REAL *restrict c, ptrdiff_t ldc, const WG2_REAL *restrict a,
                                  ptrdiff_t lda, const WG2_REAL *restrict b, ptrdiff_t ldb,
                                  ptrdiff_t rows, ptrdiff_t n, ptrdiff_t K, int acc)
{
    const __m256i tail = WG2(wgp2_mask)(K % WG2_L);
    for (ptrdiff_t r0 = 0; r0 < rows; r0 += WGD2_R) {
        const int rb = rows - r0 < WGD2_R ? (int)(rows - r0) : WGD2_R;
        for (ptrdiff_t q0 = 0; q0 < n; q0 += WGD2_C) {
            const int cb = n - q0 < WGD2_C ? (int)(n - q0) : WGD2_C;
            WG2_REAL *cq = c + r0 * ldc + q0;
            const WG2_REAL *ar = a + r0 * lda, *bq = b + q0 * ldb;
#define WGD2_CALL(R_, C_) WG2(wgd2_kernel)(cq, ldc, ar, lda, bq, ldb, K, R_, C_, acc, tail)
#define WGD2_ROW(R_)                                                                          \
    case R_:                                                                                  \
        switch (cb) {                                                                         \
        case 4: WGD2_CALL(R_, 4); break;                                                      \
        case 3: WGD2_CALL(R_, 3); break;                                                      \
        case 2: WGD2_CALL(R_, 2); break;                                                      \
        default: WGD2_CALL(R_, 1); break;                                                     \
        }                                                                                     \
        break;
            switch (rb) {
                WGD2_ROW(3) WGD2_ROW(2) WGD2_ROW(1)
            }
#undef WGD2_ROW
#undef WGD2_CALL
        }
    }
}

#undef WG2_REAL
#undef WG2_V
#undef WG2_L
#undef WG2_LOADU
#undef WG2_MASKLOAD
#undef WG2_STOREU
#undef WG2_BROADCAST
#undef WG2_FMA
#undef WG2_HSUM4
#undef WG2_STORE4
#undef WG2_ZERO
#undef WG2_TRANSPOSE
#undef WG2
