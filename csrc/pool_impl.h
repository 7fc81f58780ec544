/* pool_impl.h: type-generic bodies of the pooling kernels. NOT a translation unit and no include
 * guard on purpose: dtype_variants.h includes it once per dtype (REAL float or double), pool.c that
 * once per instruction set; FN(name) names each copy (e.g. max_pool_forward_f32_avx512).
 *
 * Shapes (see fastcnn.h): x, dx: (P, H, W) with P = N*C planes; y, dy, argmax: (P, OH, OW).
 * Window (i, j) covers input rows i*SH - PH .. +KH and columns j*SW - PW .. +KW; only the part
 * inside the plane is read ("real" cells). The caller guarantees padding <= kernel // 2, so every
 * window holds at least one real cell.
 *
 * Paths:
 *  - 2x2 / stride 2 / pad 0 (the common case): one vectorised pass per output row, forward and
 *    (average) backward in closed form.
 *  - 3x3 / stride 2 / pad 0 max (AlexNet's), float and double in AVX-512 and AVX2: whole planes
 *    read in place, a vector of a row's outputs a pass.
 *  - anything else: per output row, the "interior" columns (windows not clipped by the padding)
 *    vectorised along the row, the few edge columns one window at a time; 2x2 and 3x3 max
 *    kernels get a dedicated full-window row kernel.
 *  - max backward: zero the plane, scatter-add dy at argmax (overlapping windows add).
 * All paths visit a window's cells in row-major order and give the same bits as a plain
 * window-by-window loop.
 *
 * Threads: one plane is the unit of work (`parallel for schedule(static)` over planes); every
 * output element is written by exactly one thread and every sum is taken in one fixed order, so
 * results are bitwise identical for any thread count. */

#ifndef REAL
#error "pool_impl.h needs REAL and FN defined (include it from pool.c)"
#endif

/* ---- max pooling, forward ------------------------------------------------------------------ */

/* ---- general geometry ----------------------------------------------------------------------
 * Output columns [j_lo, j_hi) ("interior") have windows fully inside the row: there one window
 * cell (h, b) is visited for a whole run of outputs at once, j innermost, which vectorises
 * (loads with stride SW). Edge columns, whose windows are clipped by the padding, go through the
 * scalar one-window code. Both visit a window's cells in row-major order. Rows clipped by the
 * padding just have fewer h: padded cells are never looked at. */
static void FN(interior_cols)(ptrdiff_t *j_lo, ptrdiff_t *j_hi, ptrdiff_t W, ptrdiff_t OW,
                              ptrdiff_t KW, ptrdiff_t SW, ptrdiff_t PW)
{
    const ptrdiff_t lo = (PW + SW - 1) / SW;                         /* j*SW - PW >= 0 */
    ptrdiff_t hi = W + PW - KW >= 0 ? (W + PW - KW) / SW + 1 : 0;    /* j*SW - PW + KW <= W */
    hi = hi < OW ? hi : OW;
    *j_lo = lo < hi ? lo : hi;
    *j_hi = hi;
}

/* Max over the real cells [hs, he) x [ws, we) of one window; *best = h*W + w of the winner.
 * -inf start + strict '>': a window of real -infs reports its first cell; a NaN takes over once
 * (the first NaN), then nothing replaces it. An empty window (excluded by the caller) gives
 * -inf and index -1, which the backward counts as invalid instead of writing anywhere. */
static REAL FN(max_window)(int32_t *best, const REAL *restrict x, ptrdiff_t W, ptrdiff_t hs,
                           ptrdiff_t he, ptrdiff_t ws, ptrdiff_t we)
{
    REAL m = (REAL)-INFINITY;
    ptrdiff_t k = (hs < he && ws < we) ? hs * W + ws : -1;
    for (ptrdiff_t h = hs; h < he; ++h)
        for (ptrdiff_t w = ws; w < we; ++w) {
            const REAL v = x[h * W + w];
            if (v > m || (v != v && m == m)) {
                m = v;
                k = h * W + w;
            }
        }
    *best = (int32_t)k;
    return m;
}

/* Interior run: m[j], k[j] (j < n) against the cells v = src[j*SW], index idx0 + j*SW. Inlined
 * with SW = 1, 2 as constants so those strides become plain shuffles. */
static inline void FN(max_run)(REAL *restrict m, int32_t *restrict k, const REAL *restrict src,
                               ptrdiff_t n, ptrdiff_t SW, int32_t idx0)
{
#pragma omp simd
    for (ptrdiff_t j = 0; j < n; ++j) {
        const REAL v = src[j * SW];
        REAL mj = m[j];
        int32_t kj = k[j];
        if (v > mj || (v != v && mj == mj)) {
            mj = v;
            kj = idx0 + (int32_t)(j * SW);
        }
        m[j] = mj;
        k[j] = kj;
    }
}

static inline void FN(max_run_noidx)(REAL *restrict m, const REAL *restrict src, ptrdiff_t n,
                                     ptrdiff_t SW)
{
#pragma omp simd
    for (ptrdiff_t j = 0; j < n; ++j) {
        const REAL v = src[j * SW];
        m[j] = (v > m[j] || v != v) ? v : m[j];    /* value only: any NaN keeps it NaN */
    }
}

/* A full interior row for small fixed kernels: each output j scans its whole KH x KW window in
 * row-major order inside the j loop. With KH, KW constants the window loops unroll and the j
 * loop vectorises: one pass per output row instead of KH*KW read-modify-write runs (rows are
 * short, 6..27 outputs in the usual nets, so the per-run overhead dominated). src is the top-left
 * cell of window j = 0, idx0 its index in the plane. */
static inline void FN(max_row_k)(REAL *restrict y, int32_t *restrict k, const REAL *restrict src,
                                 ptrdiff_t n, ptrdiff_t KH, ptrdiff_t KW, ptrdiff_t SW,
                                 ptrdiff_t W, int32_t idx0)
{
#pragma omp simd
    for (ptrdiff_t j = 0; j < n; ++j) {
        REAL m = (REAL)-INFINITY;
        int32_t kj = idx0 + (int32_t)(j * SW);
        for (ptrdiff_t a = 0; a < KH; ++a)
            for (ptrdiff_t b = 0; b < KW; ++b) {
                const REAL v = src[a * W + j * SW + b];
                if (v > m || (v != v && m == m)) {
                    m = v;
                    kj = idx0 + (int32_t)(a * W + j * SW + b);
                }
            }
        y[j] = m;
        k[j] = kj;
    }
}

static inline void FN(max_row_k_noidx)(REAL *restrict y, const REAL *restrict src, ptrdiff_t n,
                                       ptrdiff_t KH, ptrdiff_t KW, ptrdiff_t SW, ptrdiff_t W)
{
#pragma omp simd
    for (ptrdiff_t j = 0; j < n; ++j) {
        REAL m = (REAL)-INFINITY;
        for (ptrdiff_t a = 0; a < KH; ++a)
            for (ptrdiff_t b = 0; b < KW; ++b) {
                const REAL v = src[a * W + j * SW + b];
                m = (v > m || v != v) ? v : m;
            }
        y[j] = m;
    }
}

/* Instantiates the two row kernels with constant KH = KW = K and stride SW (s may be a
 * constant or the variable SW). */
#define FC_MAX_ROW_K(K, s)                                                                      \
    do {                                                                                        \
        if (k)                                                                                  \
            FN(max_row_k)(y, k, src, n, K, K, s, W, idx0);                                      \
        else                                                                                    \
            FN(max_row_k_noidx)(y, src, n, K, K, s, W);                                         \
    } while (0)

/* Interior rows of K x K windows (K = 2, 3) with a constant column stride S, in the form
 * max_row_k uses. The rows of the usual nets are short (3..27 outputs), shorter than or barely
 * over one vector, and a vectorised loop leaves its remainder to a scalar epilogue that branches
 * per cell (mispredicted on real data: 13 ms for AlexNet's first pool; with AVX-512's 16 lanes a
 * 12-output row is all epilogue). So each chunk of outputs is computed over a whole number of
 * 16-lane vectors from a copy of its K input rows zero-padded to match, and the real outputs
 * copied out. The _noidx form computes values only (inference). */
#define FC_MAXC_CHUNK 64   /* outputs per chunk: a multiple of 16 (the widest vector) */
#define FC_MAXC_FILL(K, S)                                                                      \
    const ptrdiff_t nn = n - j0 < FC_MAXC_CHUNK ? n - j0 : FC_MAXC_CHUNK;                       \
    const ptrdiff_t npad = (nn + 15) & ~(ptrdiff_t)15;                                          \
    const ptrdiff_t used = (S) * (nn - 1) + (K), span = (S) * (npad - 1) + (K);                 \
    for (int a = 0; a < (K); ++a) {                                                             \
        memcpy(buf[a], src + a * W + (S) * j0, (size_t)used * sizeof(REAL));                    \
        for (ptrdiff_t i = used; i < span; ++i) buf[a][i] = 0;                                  \
    }
/* The window's cells after the first, row-major, written out: gcc vectorises the j loop only when
 * they are straight-line code (as loops over a, b it ran 2.5x slower). In the value-only form any
 * NaN keeps m NaN; with indices the first NaN wins. */
#define FC_MAXC_CELLS2(C, S) C(S, 0, 1) C(S, 1, 0) C(S, 1, 1)
#define FC_MAXC_CELLS3(C, S)                                                                    \
    C(S, 0, 1) C(S, 0, 2) C(S, 1, 0) C(S, 1, 1) C(S, 1, 2) C(S, 2, 0) C(S, 2, 1) C(S, 2, 2)
#define FC_MAXC_CELL(S, a, b)                                                                    \
    {                                                                                           \
        const REAL v_ = buf[a][(S) * j + (b)];                                                  \
        const int take_ = v_ > m || (v_ != v_ && m == m);                                       \
        k = take_ ? k0 + (int32_t)((a) * W + (b)) : k;                                          \
        m = take_ ? v_ : m;                                                                     \
    }
#define FC_MAXC_CELL_NOIDX(S, a, b)                                                              \
    {                                                                                           \
        const REAL v_ = buf[a][(S) * j + (b)];                                                  \
        m = (v_ > m || v_ != v_) ? v_ : m;                                                      \
    }
#define FC_MAXC_ROW(name, K, S, CELLS)                                                  \
    static void FN(name)(REAL *restrict y, int32_t *restrict am, const REAL *restrict src,      \
                         ptrdiff_t n, ptrdiff_t W, int32_t idx0)                                \
    {                                                                                           \
        _Alignas(64) REAL buf[K][(S) * FC_MAXC_CHUNK + 16], ym[FC_MAXC_CHUNK];                  \
        int32_t km[FC_MAXC_CHUNK];                                                              \
        for (ptrdiff_t j0 = 0; j0 < n; j0 += FC_MAXC_CHUNK) {                                   \
            FC_MAXC_FILL(K, S)                                                                  \
            _Pragma("omp simd")                                                                 \
            for (ptrdiff_t j = 0; j < npad; ++j) {                                              \
                const int32_t k0 = idx0 + (int32_t)((S) * (j0 + j));                            \
                REAL m = buf[0][(S) * j];                                                       \
                int32_t k = k0;                                                                 \
                CELLS(FC_MAXC_CELL, S)                                                          \
                ym[j] = m;                                                                      \
                km[j] = k;                                                                      \
            }                                                                                   \
            memcpy(y + j0, ym, (size_t)nn * sizeof(REAL));                                      \
            memcpy(am + j0, km, (size_t)nn * sizeof(int32_t));                                  \
        }                                                                                       \
    }                                                                                           \
    static void FN(name##_noidx)(REAL *restrict y, const REAL *restrict src, ptrdiff_t n,       \
                                 ptrdiff_t W)                                                   \
    {                                                                                           \
        _Alignas(64) REAL buf[K][(S) * FC_MAXC_CHUNK + 16], ym[FC_MAXC_CHUNK];                  \
        for (ptrdiff_t j0 = 0; j0 < n; j0 += FC_MAXC_CHUNK) {                                   \
            FC_MAXC_FILL(K, S)                                                                  \
            _Pragma("omp simd")                                                                 \
            for (ptrdiff_t j = 0; j < npad; ++j) {                                              \
                REAL m = buf[0][(S) * j];                                                       \
                CELLS(FC_MAXC_CELL_NOIDX, S)                                                    \
                ym[j] = m;                                                                      \
            }                                                                                   \
            memcpy(y + j0, ym, (size_t)nn * sizeof(REAL));                                      \
        }                                                                                       \
    }
FC_MAXC_ROW(max3x3_s2_row, 3, 2, FC_MAXC_CELLS3)
FC_MAXC_ROW(max3x3_s1_row, 3, 1, FC_MAXC_CELLS3)
FC_MAXC_ROW(max2x2_s2_row, 2, 2, FC_MAXC_CELLS2)
FC_MAXC_ROW(max2x2_s1_row, 2, 1, FC_MAXC_CELLS2)
#undef FC_MAXC_CELLS2
#undef FC_MAXC_CELLS3
#undef FC_MAXC_CELL
#undef FC_MAXC_CELL_NOIDX
#undef FC_MAXC_ROW
#undef FC_MAXC_FILL
#undef FC_MAXC_CHUNK

/* One output row of the 2x2 / stride 2 / pad 0 case, for rows of a multiple of 4 outputs (others
 * go through max2x2_s2_plane): at most 8 lanes, so that the remainder runs as one 4-lane vector,
 * not as the scalar epilogue. r0, r1: the two input rows of the window; base = h*W of r0 inside
 * its plane. Scan order a, b, c, d is row-major; a cell takes over when it is strictly larger
 * (ties keep the first maximum) or when it is the first NaN (once m is NaN nothing replaces it).
 * gcc if-converts and vectorises this form (stride-2 loads become even/odd shuffles); a bitwise
 * `&` of comparisons instead defeats the vectoriser. */
static void FN(max2x2_row)(REAL *restrict y, int32_t *restrict am, const REAL *restrict r0,
                           const REAL *restrict r1, ptrdiff_t OW, int32_t base, int32_t W)
{
#pragma omp simd simdlen(8)
    for (ptrdiff_t j = 0; j < OW; ++j) {
        const REAL b = r0[2 * j + 1], c = r1[2 * j], d = r1[2 * j + 1];
        const int32_t k0 = base + 2 * (int32_t)j;
        REAL m = r0[2 * j];
        int32_t k = k0;
        if (b > m || (b != b && m == m)) { m = b; k = k0 + 1; }
        if (c > m || (c != c && m == m)) { m = c; k = k0 + W; }
        if (d > m || (d != d && m == m)) { m = d; k = k0 + W + 1; }
        y[j] = m;
        am[j] = k;
    }
}

/* max of a 2x2 window's cells, row-major, value only: any NaN keeps it NaN. */
static inline REAL FN(max4)(REAL a, REAL b, REAL c, REAL d)
{
    REAL m = a;
    m = (b > m || b != b) ? b : m;
    m = (c > m || c != c) ? c : m;
    return (d > m || d != d) ? d : m;
}

/* Same without indices (inference: argmax == NULL). Only the value matters here, so "take any
 * NaN" is enough: a NaN m is replaced by nothing but another NaN. */
static void FN(max2x2_row_noidx)(REAL *restrict y, const REAL *restrict r0,
                                 const REAL *restrict r1, ptrdiff_t OW)
{
#pragma omp simd simdlen(8)
    for (ptrdiff_t j = 0; j < OW; ++j) {
        y[j] = FN(max4)(r0[2 * j], r0[2 * j + 1], r1[2 * j], r1[2 * j + 1]);
    }
}

/* A whole plane of the 2x2 / stride 2 / pad 0 pool, taken as one run of OH*OW outputs (they are
 * contiguous in y): chunks of 64 outputs that may span several output rows, their cells copied
 * into buffers so that the cells of output jj sit at 2jj, 2jj+1 of b0 (upper row) and b1 (lower),
 * padded to whole 16-lane vectors. Output rows of the usual nets (4..14) are shorter than one
 * AVX-512 vector: row by row, those not a multiple of 4 ran largely in the branchy scalar
 * epilogue (28x28 input: 1.75 ms vs 0.37 this way), and per-row chunks spent their time in the
 * copies' call overhead. */
static void FN(max2x2_s2_plane)(REAL *restrict y, int32_t *restrict am, const REAL *restrict xp,
                                ptrdiff_t W, ptrdiff_t OH, ptrdiff_t OW)
{
    enum { CH = 64 };
    _Alignas(64) REAL b0[2 * CH], b1[2 * CH], ym[CH];
    _Alignas(64) int32_t kb[CH], km[CH];
    const ptrdiff_t total = OH * OW;
    ptrdiff_t i = 0, j = 0;   /* output row and column of the chunk's next output */
    for (ptrdiff_t t0 = 0; t0 < total; t0 += CH) {
        const ptrdiff_t nn = total - t0 < CH ? total - t0 : CH;
        const ptrdiff_t npad = (nn + 15) & ~(ptrdiff_t)15;
        for (ptrdiff_t jj = 0; jj < nn;) {
            const ptrdiff_t len = OW - j < nn - jj ? OW - j : nn - jj;
            const REAL *r0 = xp + 2 * i * W + 2 * j;
            const int32_t base = (int32_t)(2 * i * W + 2 * j);
            for (ptrdiff_t q = 0; q < 2 * len; ++q) {
                b0[2 * jj + q] = r0[q];
                b1[2 * jj + q] = r0[W + q];
            }
            for (ptrdiff_t q = 0; q < len; ++q) kb[jj + q] = base + 2 * (int32_t)q;
            jj += len;
            j += len;
            if (j == OW) { j = 0; ++i; }
        }
        for (ptrdiff_t jj = nn; jj < npad; ++jj) {
            b0[2 * jj] = b0[2 * jj + 1] = b1[2 * jj] = b1[2 * jj + 1] = 0;
            kb[jj] = 0;
        }
        if (am) {
            const int32_t Wi = (int32_t)W;
#pragma omp simd aligned(b0, b1, kb, ym, km : 64)
            for (ptrdiff_t jj = 0; jj < npad; ++jj) {   /* row-major scan, first max / NaN wins */
                const REAL b = b0[2 * jj + 1], c = b1[2 * jj], d = b1[2 * jj + 1];
                REAL m = b0[2 * jj];
                int32_t k = kb[jj];
                const int32_t k0 = k;
                int take = b > m || (b != b && m == m);
                k = take ? k0 + 1 : k;
                m = take ? b : m;
                take = c > m || (c != c && m == m);
                k = take ? k0 + Wi : k;
                m = take ? c : m;
                take = d > m || (d != d && m == m);
                k = take ? k0 + Wi + 1 : k;
                m = take ? d : m;
                ym[jj] = m;
                km[jj] = k;
            }
            memcpy(am + t0, km, (size_t)nn * sizeof(int32_t));
        } else {
#pragma omp simd aligned(b0, b1, ym : 64)
            for (ptrdiff_t jj = 0; jj < npad; ++jj)
                ym[jj] = FN(max4)(b0[2 * jj], b0[2 * jj + 1], b1[2 * jj], b1[2 * jj + 1]);
        }
        memcpy(y + t0, ym, (size_t)nn * sizeof(REAL));
    }
}

#if defined(FC_ISA_AVX512) && defined(FC_DTYPE_F32)
#define FC_MAX3S2_PLANE 1
/* 3x3 / stride 2 / no padding (AlexNet's pooling) in AVX-512 float, straight from x: 16 outputs
 * of a row a pass (max3x3_s2_plane), or two rows a pass of at most 7 outputs each
 * (max3x3_s2_rowpairs). A window row's three cells for the outputs are the even, odd and
 * next-even elements of consecutive ones: masked loads (nothing read past the outputs' windows)
 * and a permute each. The row kernel max3x3_s2_row copies each output row's three input rows
 * into a zero-padded buffer first (three memcpy calls and a fill) and its outputs out again (two
 * more), which on the short rows of these nets (3..15 outputs) cost far more than its one 16-lane
 * pass: 25 ns an output on 7x7 planes, 2.9 ms for AlexNet (32x32)'s third pool. (Read in place
 * as generic C instead, gcc ran the loop on 8 lanes with a scalar epilogue for the overlapping
 * third cell, slower still.) Same scan order and NaN rule as max_window. */

/* One window cell v (at k0 + off) against the running maximum m and its index k, 16 lanes:
 * max_window's rule (strictly greater wins; with indices the first NaN, else any NaN). */
static inline void FN(max3s2_cell)(__m512 *m, __m512i *k, __m512 v, __m512i k0, int32_t off,
                                   int idx)
{
    const __mmask16 nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
    const __mmask16 take = _mm512_cmp_ps_mask(v, *m, _CMP_GT_OQ)
                           | (idx ? nan & _mm512_cmp_ps_mask(*m, *m, _CMP_ORD_Q) : nan);
    *m = _mm512_mask_mov_ps(*m, take, v);
    if (idx) *k = _mm512_mask_mov_epi32(*k, take, _mm512_add_epi32(k0, _mm512_set1_epi32(off)));
}

/* Rows of at most 7 outputs (AlexNet's 7x7 and 13x13 and 15x15 planes: 3, 6 and 7) two at a
 * time: lanes [0, OW) are output row i, [OW, 2*OW) row i + 1, each window row's 2*OW + 1 cells
 * one masked load per output row and a permute per cell column; the outputs of the two rows lie
 * together in y, one masked store. (One row a pass filled 3 of 16 lanes on 7x7 planes.) */
static void FN(max3x3_s2_rowpairs)(float *restrict y, int32_t *restrict am,
                                   const float *restrict xp, ptrdiff_t W, ptrdiff_t OH,
                                   ptrdiff_t OW)
{
    const __m512i lane = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    const __mmask16 second = _mm512_cmpge_epi32_mask(lane, _mm512_set1_epi32((int)OW));
    const __m512i lane2 = _mm512_add_epi32(lane, lane);
    /* cell (a, 0) of lane j: element 2j of row i's load, or 2(j - OW) of row i + 1's (16 on) */
    const __m512i from = _mm512_mask_sub_epi32(lane2, second, lane2,
                                               _mm512_set1_epi32((int)(2 * OW - 16)));
    /* its index in the plane, less 2*i*W */
    const __m512i koff = _mm512_mask_add_epi32(
        lane2, second, lane2, _mm512_set1_epi32((int)(2 * W - 2 * OW)));
    const __mmask16 cells = (__mmask16)((1u << (2 * OW + 1)) - 1);
    for (ptrdiff_t i = 0; i < OH; i += 2) {
        const int two = i + 1 < OH;
        const __mmask16 out = (__mmask16)((1u << ((two ? 2 : 1) * OW)) - 1);
        const __m512i k0 = _mm512_add_epi32(_mm512_set1_epi32((int32_t)(2 * i * W)), koff);
        __m512 m = _mm512_setzero_ps();
        __m512i k = k0;
        for (int a = 0; a < 3; ++a) {
            const float *r = xp + 2 * i * W + a * W;
            const __m512 top = _mm512_maskz_loadu_ps(cells, r);
            const __m512 bottom = _mm512_maskz_loadu_ps(two ? cells : 0, r + 2 * W);
            for (int b = 0; b < 3; ++b) {
                const __m512 v = _mm512_permutex2var_ps(
                    top, _mm512_add_epi32(from, _mm512_set1_epi32(b)), bottom);
                if (a == 0 && b == 0) {
                    m = v;
                    continue;
                }
                FN(max3s2_cell)(&m, &k, v, k0, (int32_t)(a * W + b), am != NULL);
            }
        }
        _mm512_mask_storeu_ps(y + i * OW, out, m);
        if (am) _mm512_mask_storeu_epi32(am + i * OW, out, k);
    }
}

static void FN(max3x3_s2_plane)(float *restrict y, int32_t *restrict am, const float *restrict xp,
                                const float *xend, ptrdiff_t W, ptrdiff_t OH, ptrdiff_t OW)
{
    (void)xend;   /* masked loads read nothing past the windows */
    const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4,
                                          2, 0);
    const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    if (OW <= 7) {
        FN(max3x3_s2_rowpairs)(y, am, xp, W, OH, OW);
        return;
    }
    for (ptrdiff_t j0 = 0; j0 < OW; j0 += 16) {
        const ptrdiff_t nn = OW - j0 < 16 ? OW - j0 : 16, cells = 2 * nn + 1;
        const __mmask16 out = (__mmask16)((1u << nn) - 1);
        /* elements [0, cells) of each window row: loads at 0 and 16, and at 2 and 18 */
        const __mmask16 m0 = (__mmask16)(cells >= 16 ? 0xFFFF : (1u << cells) - 1);
        const __mmask16 m16 = (__mmask16)(cells > 16 ? (1u << (cells - 16)) - 1 : 0);
        const __mmask16 m2 = (__mmask16)(cells - 2 >= 16 ? 0xFFFF : (1u << (cells - 2)) - 1);
        const __mmask16 m18 = (__mmask16)(cells - 2 > 16 ? (1u << (cells - 18)) - 1 : 0);
        for (ptrdiff_t i = 0; i < OH; ++i) {
            const ptrdiff_t at = 2 * i * W + 2 * j0;   /* window (i, j0)'s first cell */
            const __m512i k0 = _mm512_add_epi32(_mm512_set1_epi32((int32_t)at), even);
            __m512 m = _mm512_setzero_ps();
            __m512i k = k0;
            for (int a = 0; a < 3; ++a) {
                const float *r = xp + at + a * W;
                const __m512 lo = _mm512_maskz_loadu_ps(m0, r);
                const __m512 hi = _mm512_maskz_loadu_ps(m16, r + 16);
                const __m512 lo2 = _mm512_maskz_loadu_ps(m2, r + 2);
                const __m512 hi2 = _mm512_maskz_loadu_ps(m18, r + 18);
                const __m512 v[3] = {_mm512_permutex2var_ps(lo, even, hi),
                                     _mm512_permutex2var_ps(lo, odd, hi),
                                     _mm512_permutex2var_ps(lo2, even, hi2)};
                for (int b = 0; b < 3; ++b) {
                    if (a == 0 && b == 0) {
                        m = v[0];
                        continue;
                    }
                    FN(max3s2_cell)(&m, &k, v[b], k0, (int32_t)(a * W + b), am != NULL);
                }
            }
            _mm512_mask_storeu_ps(y + i * OW + j0, out, m);
            if (am) _mm512_mask_storeu_epi32(am + i * OW + j0, out, k);
        }
    }
}
#elif defined(FC_ISA_AVX2) && defined(FC_DTYPE_F32)
#define FC_MAX3S2_PLANE 1
/* The same in AVX2 float, 8 outputs a pass: a window row's 17 elements in two pairs of loads,
 * even and odd elements by in-lane shuffles and a cross-lane permute. The loads are plain ones,
 * the lanes past the row reading on inside x (up to xend), and masked only near its end: AVX2's
 * masked loads ran 4x slower from memory on this Zen 4 (100x64x32x32: 8.5 ms instead of 2.1).
 * (The row kernel took 2.8 ms on AlexNet (32x32)'s third pool here too.) */
static inline __m256 FN(evens8)(__m256 lo, __m256 hi, int odd)
{
    const __m256 t = odd ? _mm256_shuffle_ps(lo, hi, 0xDD) : _mm256_shuffle_ps(lo, hi, 0x88);
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(t), 0xD8));
}

static void FN(max3x3_s2_plane)(float *restrict y, int32_t *restrict am, const float *restrict xp,
                                const float *xend, ptrdiff_t W, ptrdiff_t OH, ptrdiff_t OW)
{
    const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i even = _mm256_add_epi32(iota, iota);
    for (ptrdiff_t j0 = 0; j0 < OW; j0 += 8) {
        const ptrdiff_t nn = OW - j0 < 8 ? OW - j0 : 8, cells = 2 * nn + 1;
        /* lanes below n: the elements [0, cells) of each window row at loads 0, 8, 2 and 10 */
#define FC_LANES(n) _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(n)), iota)
        const __m256i out = FC_LANES(nn), m0 = FC_LANES(cells), m8 = FC_LANES(cells - 8);
        const __m256i m2 = FC_LANES(cells - 2), m10 = FC_LANES(cells - 10);
#undef FC_LANES
        for (ptrdiff_t i = 0; i < OH; ++i) {
            const ptrdiff_t at = 2 * i * W + 2 * j0;
            const __m256i k0 = _mm256_add_epi32(_mm256_set1_epi32((int32_t)at), even);
            __m256 m = _mm256_setzero_ps();
            __m256i k = k0;
            for (int a = 0; a < 3; ++a) {
                const float *r = xp + at + a * W;
                const int plain = xend - r >= 18;
                const __m256 lo = plain ? _mm256_loadu_ps(r) : _mm256_maskload_ps(r, m0);
                const __m256 hi = plain ? _mm256_loadu_ps(r + 8) : _mm256_maskload_ps(r + 8, m8);
                const __m256 lo2 = plain ? _mm256_loadu_ps(r + 2) : _mm256_maskload_ps(r + 2, m2);
                const __m256 hi2 =
                    plain ? _mm256_loadu_ps(r + 10) : _mm256_maskload_ps(r + 10, m10);
                const __m256 v[3] = {FN(evens8)(lo, hi, 0), FN(evens8)(lo, hi, 1),
                                     FN(evens8)(lo2, hi2, 0)};
                for (int b = 0; b < 3; ++b) {
                    if (a == 0 && b == 0) {
                        m = v[0];
                        continue;
                    }
                    const __m256 nan = _mm256_cmp_ps(v[b], v[b], _CMP_UNORD_Q);
                    const __m256 take = _mm256_or_ps(
                        _mm256_cmp_ps(v[b], m, _CMP_GT_OQ),
                        am ? _mm256_and_ps(nan, _mm256_cmp_ps(m, m, _CMP_ORD_Q)) : nan);
                    m = _mm256_blendv_ps(m, v[b], take);
                    if (am) {
                        const __m256i kb = _mm256_add_epi32(
                            k0, _mm256_set1_epi32((int32_t)(a * W + b)));
                        k = _mm256_castps_si256(_mm256_blendv_ps(
                            _mm256_castsi256_ps(k), _mm256_castsi256_ps(kb), take));
                    }
                }
            }
            if (nn == 8) {   /* masked stores are slow too (microcoded on AMD) */
                _mm256_storeu_ps(y + i * OW + j0, m);
                if (am) _mm256_storeu_si256((__m256i *)(am + i * OW + j0), k);
            } else {
                _mm256_maskstore_ps(y + i * OW + j0, out, m);
                if (am) _mm256_maskstore_epi32(am + i * OW + j0, out, k);
            }
        }
    }
}
#elif defined(FC_ISA_AVX512)
#define FC_MAX3S2_PLANE 1
/* The same in AVX-512 double, 8 outputs a pass: a window row's 17 elements in two pairs of
 * masked loads, each cell column a two-register permute; rows of at most 3 outputs (7x7
 * planes) two at a time. The indices ride in a 256-bit vector. The general path took 260 ns a
 * 7x7 plane (AlexNet (32x32)'s third pool, 12800 planes: a 3.4 ms forward). */
static inline void FN(max3s2_cell)(__m512d *m, __m256i *k, __m512d v, __m256i k0, int32_t off,
                                   int idx)
{
    const __mmask8 nan = _mm512_cmp_pd_mask(v, v, _CMP_UNORD_Q);
    const __mmask8 take = _mm512_cmp_pd_mask(v, *m, _CMP_GT_OQ)
                          | (idx ? nan & _mm512_cmp_pd_mask(*m, *m, _CMP_ORD_Q) : nan);
    *m = _mm512_mask_mov_pd(*m, take, v);
    if (idx) *k = _mm256_mask_mov_epi32(*k, take, _mm256_add_epi32(k0, _mm256_set1_epi32(off)));
}

/* The first min(max(n, 0), 8) lanes. */
static inline __mmask8 FN(lanes8)(ptrdiff_t n)
{
    return n >= 8 ? (__mmask8)0xFF : n > 0 ? (__mmask8)((1u << n) - 1) : (__mmask8)0;
}

/* Rows of at most 3 outputs two at a time: lanes [0, OW) output row i, [OW, 2*OW) row i + 1
 * (as the float kernel's, on 8 lanes). */
static void FN(max3x3_s2_rowpairs)(double *restrict y, int32_t *restrict am,
                                   const double *restrict xp, ptrdiff_t W, ptrdiff_t OH,
                                   ptrdiff_t OW)
{
    const __m512i lane = _mm512_set_epi64(7, 6, 5, 4, 3, 2, 1, 0);
    const __m256i lane32 = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __mmask8 second = _mm512_cmpge_epi64_mask(lane, _mm512_set1_epi64(OW));
    const __m512i lane2 = _mm512_add_epi64(lane, lane);
    /* cell (a, 0) of lane j: element 2j of row i's load, or 2(j - OW) of row i + 1's (8 on) */
    const __m512i from = _mm512_mask_sub_epi64(lane2, second, lane2,
                                               _mm512_set1_epi64(2 * OW - 8));
    const __m256i lane2_32 = _mm256_add_epi32(lane32, lane32);
    const __m256i koff = _mm256_mask_add_epi32(lane2_32, second, lane2_32,
                                               _mm256_set1_epi32((int)(2 * W - 2 * OW)));
    const __mmask8 cells = FN(lanes8)(2 * OW + 1);
    for (ptrdiff_t i = 0; i < OH; i += 2) {
        const int two = i + 1 < OH;
        const __mmask8 out = FN(lanes8)((two ? 2 : 1) * OW);
        const __m256i k0 = _mm256_add_epi32(_mm256_set1_epi32((int32_t)(2 * i * W)), koff);
        __m512d m = _mm512_setzero_pd();
        __m256i k = k0;
        for (int a = 0; a < 3; ++a) {
            const double *r = xp + 2 * i * W + a * W;
            const __m512d top = _mm512_maskz_loadu_pd(cells, r);
            const __m512d bottom = _mm512_maskz_loadu_pd(two ? cells : 0, r + 2 * W);
            for (int b = 0; b < 3; ++b) {
                const __m512d v = _mm512_permutex2var_pd(
                    top, _mm512_add_epi64(from, _mm512_set1_epi64(b)), bottom);
                if (a == 0 && b == 0) {
                    m = v;
                    continue;
                }
                FN(max3s2_cell)(&m, &k, v, k0, (int32_t)(a * W + b), am != NULL);
            }
        }
        _mm512_mask_storeu_pd(y + i * OW, out, m);
        if (am) _mm256_mask_storeu_epi32(am + i * OW, out, k);
    }
}

static void FN(max3x3_s2_plane)(double *restrict y, int32_t *restrict am,
                                const double *restrict xp, const double *xend, ptrdiff_t W,
                                ptrdiff_t OH, ptrdiff_t OW)
{
    (void)xend;   /* masked loads read nothing past the windows */
    const __m512i even = _mm512_set_epi64(14, 12, 10, 8, 6, 4, 2, 0);
    const __m512i odd = _mm512_add_epi64(even, _mm512_set1_epi64(1));
    const __m256i lane32 = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i even32 = _mm256_add_epi32(lane32, lane32);
    if (OW <= 3) {
        FN(max3x3_s2_rowpairs)(y, am, xp, W, OH, OW);
        return;
    }
    for (ptrdiff_t j0 = 0; j0 < OW; j0 += 8) {
        const ptrdiff_t nn = OW - j0 < 8 ? OW - j0 : 8, cells = 2 * nn + 1;
        /* elements [0, cells) of each window row: loads at 0 and 8, and at 2 and 10 */
        const __mmask8 out = FN(lanes8)(nn), m0 = FN(lanes8)(cells), m8 = FN(lanes8)(cells - 8);
        const __mmask8 m2 = FN(lanes8)(cells - 2), m10 = FN(lanes8)(cells - 10);
        for (ptrdiff_t i = 0; i < OH; ++i) {
            const ptrdiff_t at = 2 * i * W + 2 * j0;   /* window (i, j0)'s first cell */
            const __m256i k0 = _mm256_add_epi32(_mm256_set1_epi32((int32_t)at), even32);
            __m512d m = _mm512_setzero_pd();
            __m256i k = k0;
            for (int a = 0; a < 3; ++a) {
                const double *r = xp + at + a * W;
                const __m512d lo = _mm512_maskz_loadu_pd(m0, r);
                const __m512d hi = _mm512_maskz_loadu_pd(m8, r + 8);
                const __m512d lo2 = _mm512_maskz_loadu_pd(m2, r + 2);
                const __m512d hi2 = _mm512_maskz_loadu_pd(m10, r + 10);
                const __m512d v[3] = {_mm512_permutex2var_pd(lo, even, hi),
                                      _mm512_permutex2var_pd(lo, odd, hi),
                                      _mm512_permutex2var_pd(lo2, even, hi2)};
                for (int b = 0; b < 3; ++b) {
                    if (a == 0 && b == 0) {
                        m = v[0];
                        continue;
                    }
                    FN(max3s2_cell)(&m, &k, v[b], k0, (int32_t)(a * W + b), am != NULL);
                }
            }
            _mm512_mask_storeu_pd(y + i * OW + j0, out, m);
            if (am) _mm256_mask_storeu_epi32(am + i * OW + j0, out, k);
        }
    }
}
#elif defined(FC_ISA_AVX2)
#define FC_MAX3S2_PLANE 1
/* The same in AVX2 double, 4 outputs a pass: a window row's 9 elements in two pairs of loads,
 * even and odd elements by an unpack and a cross-lane permute, plain loads but near x's end (as
 * the float kernel's). The indices run as doubles (exact below 2^53), converted at the store. */
static inline __m256d FN(evens4)(__m256d lo, __m256d hi, int odd)
{
    const __m256d t = odd ? _mm256_unpackhi_pd(lo, hi) : _mm256_unpacklo_pd(lo, hi);
    return _mm256_permute4x64_pd(t, 0xD8);
}

static void FN(max3x3_s2_plane)(double *restrict y, int32_t *restrict am,
                                const double *restrict xp, const double *xend, ptrdiff_t W,
                                ptrdiff_t OH, ptrdiff_t OW)
{
    const __m256i iota = _mm256_setr_epi64x(0, 1, 2, 3);
    const __m256d even = _mm256_setr_pd(0, 2, 4, 6);
    for (ptrdiff_t j0 = 0; j0 < OW; j0 += 4) {
        const ptrdiff_t nn = OW - j0 < 4 ? OW - j0 : 4, cells = 2 * nn + 1;
        /* lanes below n: the elements [0, cells) of each window row at loads 0, 4, 2 and 6 */
#define FC_LANES(n) _mm256_cmpgt_epi64(_mm256_set1_epi64x((long long)(n)), iota)
        const __m256i out = FC_LANES(nn), m0 = FC_LANES(cells), m4 = FC_LANES(cells - 4);
        const __m256i m2 = FC_LANES(cells - 2), m6 = FC_LANES(cells - 6);
#undef FC_LANES
        const __m128i out32 = _mm256_castsi256_si128(
            _mm256_permutevar8x32_epi32(out, _mm256_setr_epi32(0, 2, 4, 6, 0, 0, 0, 0)));
        for (ptrdiff_t i = 0; i < OH; ++i) {
            const ptrdiff_t at = 2 * i * W + 2 * j0;
            const __m256d k0 = _mm256_add_pd(_mm256_set1_pd((double)at), even);
            __m256d m = _mm256_setzero_pd(), k = k0;
            for (int a = 0; a < 3; ++a) {
                const double *r = xp + at + a * W;
                const int plain = xend - r >= 10;
                const __m256d lo = plain ? _mm256_loadu_pd(r) : _mm256_maskload_pd(r, m0);
                const __m256d hi = plain ? _mm256_loadu_pd(r + 4) : _mm256_maskload_pd(r + 4, m4);
                const __m256d lo2 = plain ? _mm256_loadu_pd(r + 2) : _mm256_maskload_pd(r + 2, m2);
                const __m256d hi2 = plain ? _mm256_loadu_pd(r + 6) : _mm256_maskload_pd(r + 6, m6);
                const __m256d v[3] = {FN(evens4)(lo, hi, 0), FN(evens4)(lo, hi, 1),
                                      FN(evens4)(lo2, hi2, 0)};
                for (int b = 0; b < 3; ++b) {
                    if (a == 0 && b == 0) {
                        m = v[0];
                        continue;
                    }
                    const __m256d nan = _mm256_cmp_pd(v[b], v[b], _CMP_UNORD_Q);
                    const __m256d take = _mm256_or_pd(
                        _mm256_cmp_pd(v[b], m, _CMP_GT_OQ),
                        am ? _mm256_and_pd(nan, _mm256_cmp_pd(m, m, _CMP_ORD_Q)) : nan);
                    m = _mm256_blendv_pd(m, v[b], take);
                    if (am)
                        k = _mm256_blendv_pd(
                            k, _mm256_add_pd(k0, _mm256_set1_pd((double)(a * W + b))), take);
                }
            }
            if (nn == 4) {   /* masked stores are slow (microcoded on AMD) */
                _mm256_storeu_pd(y + i * OW + j0, m);
                if (am) _mm_storeu_si128((__m128i *)(am + i * OW + j0), _mm256_cvtpd_epi32(k));
            } else {
                _mm256_maskstore_pd(y + i * OW + j0, out, m);
                if (am) _mm_maskstore_epi32(am + i * OW + j0, out32, _mm256_cvtpd_epi32(k));
            }
        }
    }
}
#endif

/* Full-window interior row for 2x2 and 3x3 kernels; returns 0 (nothing done) for other sizes. */
static int FN(max_row_fixed)(REAL *y, int32_t *k, const REAL *src, ptrdiff_t n, ptrdiff_t KH,
                             ptrdiff_t KW, ptrdiff_t SW, ptrdiff_t W, int32_t idx0)
{
#define FC_MAXC_CALL(name)                                                                      \
    do {                                                                                        \
        if (k)                                                                                  \
            FN(name)(y, k, src, n, W, idx0);                                                    \
        else                                                                                    \
            FN(name##_noidx)(y, src, n, W);                                                     \
    } while (0)
    if (KH != KW || (KH != 2 && KH != 3))
        return 0;
    if (KH == 3 && SW == 2)
        FC_MAXC_CALL(max3x3_s2_row);
    else if (KH == 3 && SW == 1)
        FC_MAXC_CALL(max3x3_s1_row);
    else if (KH == 2 && SW == 2)
        FC_MAXC_CALL(max2x2_s2_row);
    else if (KH == 2 && SW == 1)
        FC_MAXC_CALL(max2x2_s1_row);
    else if (KH == 3)
        FC_MAX_ROW_K(3, SW);
    else
        FC_MAX_ROW_K(2, SW);
    return 1;
#undef FC_MAXC_CALL
}
#undef FC_MAX_ROW_K

static void FN(max_run_any)(REAL *m, int32_t *k, const REAL *src, ptrdiff_t n, ptrdiff_t SW,
                            int32_t idx0)
{
    if (k) {
        if (SW == 1)
            FN(max_run)(m, k, src, n, 1, idx0);
        else if (SW == 2)
            FN(max_run)(m, k, src, n, 2, idx0);
        else
            FN(max_run)(m, k, src, n, SW, idx0);
    } else {
        if (SW == 1)
            FN(max_run_noidx)(m, src, n, 1);
        else if (SW == 2)
            FN(max_run_noidx)(m, src, n, 2);
        else
            FN(max_run_noidx)(m, src, n, SW);
    }
}

/* One plane, any kernel/stride/padding. x: (H, W) -> y, am: (OH, OW); am may be NULL. */
static void FN(max_plane_general)(REAL *restrict y, int32_t *restrict am, const REAL *restrict x,
                                  ptrdiff_t H, ptrdiff_t W, ptrdiff_t OH, ptrdiff_t OW,
                                  ptrdiff_t KH, ptrdiff_t KW, ptrdiff_t SH, ptrdiff_t SW,
                                  ptrdiff_t PH, ptrdiff_t PW)
{
    ptrdiff_t j_lo, j_hi;
    FN(interior_cols)(&j_lo, &j_hi, W, OW, KW, SW, PW);
    for (ptrdiff_t i = 0; i < OH; ++i) {
        const ptrdiff_t h0 = i * SH - PH;
        const ptrdiff_t hs = h0 < 0 ? 0 : h0, he = h0 + KH < H ? h0 + KH : H;
        REAL *yr = y + i * OW;
        int32_t *ar = am ? am + i * OW : NULL;
        for (ptrdiff_t j = 0; j < OW; ++j) {   /* edge columns: the scalar window */
            if (j == j_lo && j_lo < j_hi)
                j = j_hi;                      /* skip the interior (done below) */
            if (j >= OW)
                break;
            const ptrdiff_t w0 = j * SW - PW;
            int32_t best;
            yr[j] = FN(max_window)(&best, x, W, hs, he, w0 < 0 ? 0 : w0,
                                   w0 + KW < W ? w0 + KW : W);
            if (ar)
                ar[j] = best;
        }
        if (j_lo >= j_hi)
            continue;
        {
            const ptrdiff_t n = j_hi - j_lo, col0 = j_lo * SW - PW;
            REAL *ym = yr + j_lo;
            int32_t *ak = ar ? ar + j_lo : NULL;
            if (he - hs == KH && FN(max_row_fixed)(ym, ak, x + hs * W + col0, n, KH, KW, SW, W,
                                                   (int32_t)(hs * W + col0)))
                continue;
            /* any other kernel, or a row clipped by the padding: KH*KW runs over the row */
            for (ptrdiff_t j = 0; j < n; ++j) {
                ym[j] = (REAL)-INFINITY;
                if (ak)
                    ak[j] = hs < he ? (int32_t)(hs * W + col0 + j * SW) : -1;
            }
            for (ptrdiff_t h = hs; h < he; ++h)
                for (ptrdiff_t b = 0; b < KW; ++b)
                    FN(max_run_any)(ym, ak, x + h * W + col0 + b, n, SW,
                                    (int32_t)(h * W + col0 + b));
        }
    }
}

static void FN(max_pool_forward)(REAL *y, int32_t *argmax, const REAL *x, ptrdiff_t P,
                                 ptrdiff_t H, ptrdiff_t W, ptrdiff_t KH, ptrdiff_t KW,
                                 ptrdiff_t SH, ptrdiff_t SW, ptrdiff_t PH, ptrdiff_t PW,
                                 int n_threads)
{
    const ptrdiff_t OH = (H + 2 * PH - KH) / SH + 1, OW = (W + 2 * PW - KW) / SW + 1;
    const int fast = KH == 2 && KW == 2 && SH == 2 && SW == 2 && PH == 0 && PW == 0;
#if defined(FC_MAX3S2_PLANE)
    const int k3s2 = KH == 3 && KW == 3 && SH == 2 && SW == 2 && PH == 0 && PW == 0;
#endif
    (void)n_threads;
#if defined(_OPENMP)
#pragma omp parallel for num_threads(n_threads > 0 ? n_threads : 1) schedule(static) \
    if (n_threads > 1 && P * H * W > FC_STREAM_PARALLEL_MIN)
#endif
    for (ptrdiff_t p = 0; p < P; ++p) {
        const REAL *xp = x + p * H * W;
        REAL *yp = y + p * OH * OW;
        int32_t *ap = argmax ? argmax + p * OH * OW : NULL;
        if (fast && OW % 4 == 0) {   /* an odd last row/column is ignored */
            for (ptrdiff_t i = 0; i < OH; ++i) {
                const REAL *r0 = xp + 2 * i * W;
                if (ap)
                    FN(max2x2_row)(yp + i * OW, ap + i * OW, r0, r0 + W, OW, (int32_t)(2 * i * W),
                                   (int32_t)W);
                else
                    FN(max2x2_row_noidx)(yp + i * OW, r0, r0 + W, OW);
            }
        } else if (fast)
            FN(max2x2_s2_plane)(yp, ap, xp, W, OH, OW);
#if defined(FC_MAX3S2_PLANE)
        else if (k3s2)
            FN(max3x3_s2_plane)(yp, ap, xp, x + P * H * W, W, OH, OW);
#endif
        else
            FN(max_plane_general)(yp, ap, xp, H, W, OH, OW, KH, KW, SH, SW, PH, PW);
    }
}

/* ---- max pooling, backward ----------------------------------------------------------------- */

/* dx (P, H, W) = 0, then dx[p].flat[argmax[p, i, j]] += dy[p, i, j]. A plane fits in cache, so
 * zero + scatter costs about one write of dx. Indices outside [0, H*W) are skipped and counted
 * (the count is an integer: its reduction is exact whatever the thread count). */
static ptrdiff_t FN(max_pool_backward)(REAL *dx, const REAL *dy, const int32_t *argmax,
                                       ptrdiff_t P, ptrdiff_t H, ptrdiff_t W, ptrdiff_t OH,
                                       ptrdiff_t OW, int n_threads)
{
    const ptrdiff_t HW = H * W, OHW = OH * OW;
    ptrdiff_t bad = 0;
    (void)n_threads;
#if defined(_OPENMP)
#pragma omp parallel for num_threads(n_threads > 0 ? n_threads : 1) schedule(static) \
    reduction(+ : bad) if (n_threads > 1 && P * HW > FC_STREAM_PARALLEL_MIN)
#endif
    for (ptrdiff_t p = 0; p < P; ++p) {
        REAL *restrict d = dx + p * HW;
        const REAL *restrict g = dy + p * OHW;
        const int32_t *restrict a = argmax + p * OHW;
        for (ptrdiff_t k = 0; k < HW; ++k)
            d[k] = 0;
        for (ptrdiff_t k = 0; k < OHW; ++k) {
            const ptrdiff_t idx = a[k];
            if (idx >= 0 && idx < HW)
                d[idx] += g[k];
            else
                ++bad;
        }
    }
    return bad;
}

#undef FC_MAX3S2_PLANE

/* ---- average pooling ----------------------------------------------------------------------- */

/* Divisor of window (i, j): KH*KW with count_include_pad (every window lies inside the padded
 * plane, so this equals PyTorch's rule), else the number of real cells. */
#define FC_AVG_DEN(inc, KH, KW, hs, he, ws, we) ((inc) ? (KH) * (KW) : ((he) - (hs)) * ((we) - (ws)))

/* Interior run of the average: s[j] += src[j*SW] for j < n (SW = 1, 2 inlined as constants). */
static inline void FN(avg_run)(REAL *restrict s, const REAL *restrict src, ptrdiff_t n,
                               ptrdiff_t SW)
{
#pragma omp simd
    for (ptrdiff_t j = 0; j < n; ++j)
        s[j] += src[j * SW];
}

/* One plane, any geometry. Sums run in REAL over each window's real cells in row-major order
 * (like the reference), edge columns one window at a time, interior columns as runs (see
 * max_plane_general): both orders are the same, so the split does not change any bit. */
static void FN(avg_plane_general)(REAL *restrict y, const REAL *restrict x, ptrdiff_t H,
                                  ptrdiff_t W, ptrdiff_t OH, ptrdiff_t OW, ptrdiff_t KH,
                                  ptrdiff_t KW, ptrdiff_t SH, ptrdiff_t SW, ptrdiff_t PH,
                                  ptrdiff_t PW, int inc)
{
    ptrdiff_t j_lo, j_hi;
    FN(interior_cols)(&j_lo, &j_hi, W, OW, KW, SW, PW);
    for (ptrdiff_t i = 0; i < OH; ++i) {
        const ptrdiff_t h0 = i * SH - PH;
        const ptrdiff_t hs = h0 < 0 ? 0 : h0, he = h0 + KH < H ? h0 + KH : H;
        REAL *yr = y + i * OW;
        for (ptrdiff_t j = 0; j < OW; ++j) {   /* edge columns */
            if (j == j_lo && j_lo < j_hi)
                j = j_hi;
            if (j >= OW)
                break;
            const ptrdiff_t w0 = j * SW - PW;
            const ptrdiff_t ws = w0 < 0 ? 0 : w0, we = w0 + KW < W ? w0 + KW : W;
            REAL s = 0;
            for (ptrdiff_t h = hs; h < he; ++h)
                for (ptrdiff_t w = ws; w < we; ++w)
                    s += x[h * W + w];
            yr[j] = s / (REAL)FC_AVG_DEN(inc, KH, KW, hs, he, ws, we);
        }
        if (j_lo >= j_hi)
            continue;
        {
            const ptrdiff_t n = j_hi - j_lo, col0 = j_lo * SW - PW;
            const REAL den = (REAL)FC_AVG_DEN(inc, KH, KW, hs, he, 0, KW);
            REAL *ys = yr + j_lo;
            for (ptrdiff_t j = 0; j < n; ++j)
                ys[j] = 0;
            for (ptrdiff_t h = hs; h < he; ++h)
                for (ptrdiff_t b = 0; b < KW; ++b) {
                    const REAL *src = x + h * W + col0 + b;
                    if (SW == 1)
                        FN(avg_run)(ys, src, n, 1);
                    else if (SW == 2)
                        FN(avg_run)(ys, src, n, 2);
                    else
                        FN(avg_run)(ys, src, n, SW);
                }
            for (ptrdiff_t j = 0; j < n; ++j)
                ys[j] /= den;
        }
    }
}

/* 2x2 / stride 2 / pad 0: every window is full, divisor 4 either way; same summation order as
 * the general path, so both give the same bits. */
static void FN(avg2x2_row)(REAL *restrict y, const REAL *restrict r0, const REAL *restrict r1,
                           ptrdiff_t OW)
{
#pragma omp simd
    for (ptrdiff_t j = 0; j < OW; ++j)
        y[j] = (((r0[2 * j] + r0[2 * j + 1]) + r1[2 * j]) + r1[2 * j + 1]) / (REAL)4;
}

static void FN(avg_pool_forward)(REAL *y, const REAL *x, ptrdiff_t P, ptrdiff_t H, ptrdiff_t W,
                                 ptrdiff_t KH, ptrdiff_t KW, ptrdiff_t SH, ptrdiff_t SW,
                                 ptrdiff_t PH, ptrdiff_t PW, int count_include_pad, int n_threads)
{
    const ptrdiff_t OH = (H + 2 * PH - KH) / SH + 1, OW = (W + 2 * PW - KW) / SW + 1;
    const int fast = KH == 2 && KW == 2 && SH == 2 && SW == 2 && PH == 0 && PW == 0;
    (void)n_threads;
#if defined(_OPENMP)
#pragma omp parallel for num_threads(n_threads > 0 ? n_threads : 1) schedule(static) \
    if (n_threads > 1 && P * H * W > FC_STREAM_PARALLEL_MIN)
#endif
    for (ptrdiff_t p = 0; p < P; ++p) {
        const REAL *xp = x + p * H * W;
        REAL *yp = y + p * OH * OW;
        if (!fast) {
            FN(avg_plane_general)(yp, xp, H, W, OH, OW, KH, KW, SH, SW, PH, PW,
                                  count_include_pad);
            continue;
        }
        for (ptrdiff_t i = 0; i < OH; ++i)
            FN(avg2x2_row)(yp + i * OW, xp + 2 * i * W, xp + (2 * i + 1) * W, OW);
    }
}

/* dx[p + j*SW] += g[j] for j < n: one window cell of a run of interior windows. The targets of
 * one run are distinct, so the loop vectorises (SW = 1, 2 inlined as constants). */
static inline void FN(avg_back_run)(REAL *restrict d, const REAL *restrict g, ptrdiff_t n,
                                    ptrdiff_t SW)
{
#pragma omp simd
    for (ptrdiff_t j = 0; j < n; ++j)
        d[j * SW] += g[j];
}

/* Adds window (i, j)'s share to its real cells [hs, he) x clip(j). */
static void FN(avg_back_window)(REAL *restrict dx, REAL g, ptrdiff_t W, ptrdiff_t hs,
                                ptrdiff_t he, ptrdiff_t ws, ptrdiff_t we)
{
    for (ptrdiff_t h = hs; h < he; ++h)
        for (ptrdiff_t w = ws; w < we; ++w)
            dx[h * W + w] += g;
}

#define FC_AVG_BACK_CHUNK 256 /* interior windows per run: their shares live on the stack */

/* One plane of the backward, any geometry: dx = 0, then each window adds dy/den to its real
 * cells (overlapping windows add). Every cell receives its contributions in window order (i, j)
 * ascending, as in a plain window-by-window loop: per output row, the left edge windows, then
 * the interior as runs with the window column b DEScending (for a fixed cell, larger b means
 * smaller j), then the right edge windows. */
static void FN(avg_back_plane_general)(REAL *restrict dx, const REAL *restrict dy, ptrdiff_t H,
                                       ptrdiff_t W, ptrdiff_t OH, ptrdiff_t OW, ptrdiff_t KH,
                                       ptrdiff_t KW, ptrdiff_t SH, ptrdiff_t SW, ptrdiff_t PH,
                                       ptrdiff_t PW, int inc)
{
    REAL g[FC_AVG_BACK_CHUNK];
    ptrdiff_t j_lo, j_hi;
    FN(interior_cols)(&j_lo, &j_hi, W, OW, KW, SW, PW);
    for (ptrdiff_t k = 0; k < H * W; ++k)
        dx[k] = 0;
    for (ptrdiff_t i = 0; i < OH; ++i) {
        const ptrdiff_t h0 = i * SH - PH;
        const ptrdiff_t hs = h0 < 0 ? 0 : h0, he = h0 + KH < H ? h0 + KH : H;
        const REAL *dyr = dy + i * OW;
        for (ptrdiff_t j = 0; j < OW; ++j) {
            if (j == j_lo && j_lo < j_hi) {   /* the interior, in chunks */
                const REAL den = (REAL)FC_AVG_DEN(inc, KH, KW, hs, he, 0, KW);
                for (ptrdiff_t c0 = j_lo; c0 < j_hi; c0 += FC_AVG_BACK_CHUNK) {
                    const ptrdiff_t n = j_hi - c0 < FC_AVG_BACK_CHUNK ? j_hi - c0
                                                                     : FC_AVG_BACK_CHUNK;
                    REAL *base = dx + c0 * SW - PW;
                    for (ptrdiff_t q = 0; q < n; ++q)
                        g[q] = dyr[c0 + q] / den;
                    for (ptrdiff_t h = hs; h < he; ++h)
                        for (ptrdiff_t b = KW - 1; b >= 0; --b) {
                            if (SW == 1)
                                FN(avg_back_run)(base + h * W + b, g, n, 1);
                            else if (SW == 2)
                                FN(avg_back_run)(base + h * W + b, g, n, 2);
                            else
                                FN(avg_back_run)(base + h * W + b, g, n, SW);
                        }
                }
                j = j_hi;
                if (j >= OW)
                    break;
            }
            const ptrdiff_t w0 = j * SW - PW;
            const ptrdiff_t ws = w0 < 0 ? 0 : w0, we = w0 + KW < W ? w0 + KW : W;
            FN(avg_back_window)(dx, dyr[j] / (REAL)FC_AVG_DEN(inc, KH, KW, hs, he, ws, we), W,
                                hs, he, ws, we);
        }
    }
}

/* 2x2 / stride 2 / pad 0 backward in closed form: each covered cell gets exactly dy/4 of its one
 * window (written directly, no zero pass); an odd last row/column belongs to no window: 0. */
static void FN(avg_back_plane_2x2)(REAL *restrict dx, const REAL *restrict dy, ptrdiff_t H,
                                   ptrdiff_t W, ptrdiff_t OH, ptrdiff_t OW)
{
    for (ptrdiff_t i = 0; i < OH; ++i) {
        REAL *restrict r0 = dx + 2 * i * W, *restrict r1 = r0 + W;
        const REAL *restrict g = dy + i * OW;
#pragma omp simd
        for (ptrdiff_t j = 0; j < OW; ++j) {
            const REAL v = g[j] / (REAL)4;
            r0[2 * j] = v;
            r0[2 * j + 1] = v;
            r1[2 * j] = v;
            r1[2 * j + 1] = v;
        }
        for (ptrdiff_t w = 2 * OW; w < W; ++w)
            r0[w] = r1[w] = 0;
    }
    for (ptrdiff_t k = 2 * OH * W; k < H * W; ++k)
        dx[k] = 0;
}

static void FN(avg_pool_backward)(REAL *dx, const REAL *dy, ptrdiff_t P, ptrdiff_t H, ptrdiff_t W,
                                  ptrdiff_t KH, ptrdiff_t KW, ptrdiff_t SH, ptrdiff_t SW,
                                  ptrdiff_t PH, ptrdiff_t PW, int count_include_pad, int n_threads)
{
    const ptrdiff_t OH = (H + 2 * PH - KH) / SH + 1, OW = (W + 2 * PW - KW) / SW + 1;
    const int fast = KH == 2 && KW == 2 && SH == 2 && SW == 2 && PH == 0 && PW == 0;
    (void)n_threads;
#if defined(_OPENMP)
#pragma omp parallel for num_threads(n_threads > 0 ? n_threads : 1) schedule(static) \
    if (n_threads > 1 && P * H * W > FC_STREAM_PARALLEL_MIN)
#endif
    for (ptrdiff_t p = 0; p < P; ++p) {
        REAL *dxp = dx + p * H * W;
        const REAL *dyp = dy + p * OH * OW;
        if (fast)
            FN(avg_back_plane_2x2)(dxp, dyp, H, W, OH, OW);
        else
            FN(avg_back_plane_general)(dxp, dyp, H, W, OH, OW, KH, KW, SH, SW, PH, PW,
                                       count_include_pad);
    }
}

#undef FC_AVG_DEN
#undef FC_AVG_BACK_CHUNK
