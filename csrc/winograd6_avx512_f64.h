/* winograd6_avx512_f64.h: the double AVX-512 forms of winograd6_impl.h's row gathers and
 * scatters, the four loops between x, y, dy, dx and the transform planes; included there, in the
 * AVX-512 double copies only (FN, REAL = double, WG_M as there). The float forms (16 lanes) are
 * in winograd6_impl.h; these do the same with 8 lanes of double, so a run of cells spans four
 * registers where the float ones span two. The scalar loops they replace stored or loaded the
 * 36 cells of a tile one by one: in double on AlexNet conv1's space-to-depth layer (48->96 on
 * 57x57, batch 8, 1 thread) they and the passes around them were 27% of the forward+backward
 * (perf), against 55% for the GEMMs, which run at the FMA peak. */

/* lane j <- M*j, the first cell of tile j of a run */
#define WG6D_CELL0                                                                            \
    _mm512_setr_epi64(0, WG_M, 2 * WG_M, 3 * WG_M, 4 * WG_M, 5 * WG_M, 6 * WG_M, 7 * WG_M)

/* Lane j <- cell idx[j] < 32 of q[0..3] (8 cells each): a permute of each pair (the index's
 * bit 3 picks the pair's register, its bit 4 is ignored), the lanes `high` (cell >= 16) from
 * the second pair. */
static inline __m512d FN(wg6d_pick)(const __m512d q[4], __m512i idx, __mmask8 high)
{
    const __m512d lo = _mm512_permutex2var_pd(q[0], idx, q[1]);
    if (!high) return lo;
    return _mm512_mask_blend_pd(high, lo, _mm512_permutex2var_pd(q[2], idx, q[3]));
}

/* The masked load of the 32 cells from the integer address `at` whose bits are set in `cells`
 * (bit 8i + l: lane l of register i); masked-off cells are not read and load as 0. */
static inline void FN(wg6d_load32)(__m512d q[4], uintptr_t at, uint64_t cells)
{
    for (int i = 0; i < 4; ++i)
        q[i] = _mm512_maskz_loadu_pd((__mmask8)(cells >> (8 * i)),
                                     (const void *)(at + (uintptr_t)(64 * i)));
}

/* wg6_gather_segment's AVX-512 form in double: as the float one, a run of up to G tiles of one
 * input row is one masked load of the 6 + M*(G-1) cells it spans (here four registers: G = 7
 * for M = 4, 8 for M = 2), column k of every tile a pick (lane j <- cell M*j + k), and the rows
 * are stored transformed, P[r*6 + k] = (d B)[r][k], with a len-lane mask. */
static void FN(wg6_gather_avx512)(REAL *restrict P, ptrdiff_t Tb, const REAL *restrict xc,
                                  ptrdiff_t H, ptrdiff_t W, ptrdiff_t ih0, ptrdiff_t iw0,
                                  ptrdiff_t len)
{
    enum { G = (32 - 6) / WG_M + 1 < 8 ? (32 - 6) / WG_M + 1 : 8 };
    __m512i perm[6];
    __mmask8 high[6];
    for (int k = 0; k < 6; ++k) {
        perm[k] = _mm512_add_epi64(WG6D_CELL0, _mm512_set1_epi64(k));
        high[k] = _mm512_cmpge_epi64_mask(perm[k], _mm512_set1_epi64(16)) &
                  (__mmask8)((1u << G) - 1);
    }
    for (ptrdiff_t j0 = 0; j0 < len; j0 += G) {
        const ptrdiff_t n = len - j0 < G ? len - j0 : G;
        const ptrdiff_t s = iw0 + WG_M * j0;              /* first input column of the run */
        const ptrdiff_t span = WG_M * (n - 1) + 6;
        const ptrdiff_t e0 = s < 0 ? -s : 0, e1 = W - s < span ? W - s : span;
        const uint64_t cells = e1 > e0 ? ((UINT64_C(1) << e1) - 1) & ~((UINT64_C(1) << e0) - 1) : 0;
        const __mmask8 out = (__mmask8)((1u << n) - 1);
        for (int r = 0; r < 6; ++r) {
            const ptrdiff_t ih = ih0 + r;
            REAL *p = P + (r * 6) * Tb + j0;
            __m512d q[4] = {_mm512_setzero_pd(), _mm512_setzero_pd(), _mm512_setzero_pd(),
                            _mm512_setzero_pd()};
            if (ih >= 0 && ih < H && cells) {
                /* the run may start before the row or end past the plane: its address is an
                 * integer, its cells there masked off (not read) */
                const uintptr_t src =
                    (uintptr_t)(xc + ih * W) + (uintptr_t)(s * (ptrdiff_t)sizeof(REAL));
                FN(wg6d_load32)(q, src, cells);
                WG6_PREFETCH_NEXT(src, H * W);
                WG6_PREFETCH_NEXT(src + 128, H * W);
            }
            __m512d col[6], o[6];
            for (int k = 0; k < 6; ++k) col[k] = FN(wg6d_pick)(q, perm[k], high[k]);
            WG6_BT_T(__m512d, o, col, 1);
            for (int k = 0; k < 6; ++k) _mm512_mask_storeu_pd(p + k * Tb, out, o[k]);
        }
    }
}

/* wg6_grad_block's row gather in double: z[k*Tb + j] = src[M*j + k] for the len tiles j of one
 * output row segment, cells at or past cnt being 0 (the output's right edge). A run of 8 tiles
 * is one masked load of its 8*M cells, column k one pick. */
static void FN(wg6_row_gather_avx512)(REAL *restrict z, ptrdiff_t Tb, const REAL *restrict src,
                                      ptrdiff_t cnt, ptrdiff_t len)
{
    /* M = 4: tiles 4..7 start at cell 16, in the second pair; M = 2: all in the first */
    const __mmask8 high = WG_M == 4 ? (__mmask8)0xF0 : (__mmask8)0;
    for (ptrdiff_t j0 = 0; j0 < len; j0 += 8) {
        const ptrdiff_t n = len - j0 < 8 ? len - j0 : 8;
        ptrdiff_t cells = cnt - WG_M * j0;
        cells = cells < 0 ? 0 : cells > 8 * WG_M ? 8 * WG_M : cells;
        __m512d q[4];
        /* masked-off cells are not read: the address is formed as an integer, as above */
        FN(wg6d_load32)(q, (uintptr_t)src + (uintptr_t)(WG_M * j0 * (ptrdiff_t)sizeof(REAL)),
                        (UINT64_C(1) << cells) - 1);
        const __mmask8 out = (__mmask8)((1u << n) - 1);
        for (int k = 0; k < WG_M; ++k)
            _mm512_mask_storeu_pd(z + k * Tb + j0, out,
                                  FN(wg6d_pick)(q, _mm512_add_epi64(WG6D_CELL0,
                                                                    _mm512_set1_epi64(k)),
                                                high));
    }
}

/* For the scatters below: a run of GT = 16/M tiles is 16 cells, whose M planes are two sources
 * (a, b) of 8 lanes: M = 4, [z0 | z1] and [z2 | z3], 4 tiles each; M = 2, z0 and z1, 8 tiles.
 * Cell l (tile l/M, column l%M) is lane (l%M)*GT + l/M of them; cells 8.. are 8/M tiles on. */
#define WG6D_GT (16 / WG_M)
static inline __m512i FN(wg6d_cell_source)(void)
{
    const __m512i lane = _mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7);
    const __m512i column = _mm512_and_epi64(lane, _mm512_set1_epi64(WG_M - 1));
    return _mm512_add_epi64(_mm512_slli_epi64(column, WG_M == 4 ? 2 : 3),
                            _mm512_srli_epi64(lane, WG_M == 4 ? 2 : 1));
}

/* The planes' two sources of the tiles `tm` (bit t: tile t of the run) from the integer address
 * `at` (plane 0 of the run's first tile): planes p0.. (M = 4: p0 + 2, p0 + 3 only when `four`,
 * else zero). */
static inline void FN(wg6d_sources)(__m512d *a, __m512d *b, uintptr_t at, uintptr_t ps, int p0,
                                    unsigned tm, int four)
{
#if WG_M == 4
    const __mmask8 t = (__mmask8)tm;
    *a = _mm512_insertf64x4(
        _mm512_castpd256_pd512(_mm256_maskz_loadu_pd(t, (const void *)(at + p0 * ps))),
        _mm256_maskz_loadu_pd(t, (const void *)(at + (p0 + 1) * ps)), 1);
    *b = _mm512_setzero_pd();
    if (four)
        *b = _mm512_insertf64x4(
            _mm512_castpd256_pd512(_mm256_maskz_loadu_pd(t, (const void *)(at + (p0 + 2) * ps))),
            _mm256_maskz_loadu_pd(t, (const void *)(at + (p0 + 3) * ps)), 1);
#else
    (void)four;
    *a = _mm512_maskz_loadu_pd((__mmask8)tm, (const void *)(at + p0 * ps));
    *b = _mm512_maskz_loadu_pd((__mmask8)tm, (const void *)(at + (p0 + 1) * ps));
#endif
}

/* wg6_output_block's row scatter in double: dst[M*j + k] = z[k*Tb + j] for the cnt cells of one
 * output row segment. */
static void FN(wg6_row_scatter_avx512)(REAL *restrict dst, const REAL *restrict z, ptrdiff_t Tb,
                                       ptrdiff_t cnt)
{
    const __m512i idx_lo = FN(wg6d_cell_source)();
    const __m512i idx_hi = _mm512_add_epi64(idx_lo, _mm512_set1_epi64(8 / WG_M));
    const uintptr_t ps = (uintptr_t)(Tb * (ptrdiff_t)sizeof(REAL));
    for (ptrdiff_t c0 = 0, j0 = 0; c0 < cnt; c0 += 16, j0 += WG6D_GT) {
        const ptrdiff_t cells = cnt - c0 < 16 ? cnt - c0 : 16;
        const ptrdiff_t n = (cells + WG_M - 1) / WG_M;   /* tiles the run touches */
        const unsigned out = (1u << cells) - 1;
        __m512d a, b;
        FN(wg6d_sources)(&a, &b, (uintptr_t)(z + j0), ps, 0, (1u << n) - 1, 1);
        _mm512_mask_storeu_pd(dst + c0, (__mmask8)(out & 0xFF),
                              _mm512_permutex2var_pd(a, idx_lo, b));
        if (cells > 8)
            _mm512_mask_storeu_pd(dst + c0 + 8, (__mmask8)(out >> 8),
                                  _mm512_permutex2var_pd(a, idx_hi, b));
    }
}

/* wg6_scatter_block's row overlap-add in double: dst[M*j + k] += Z[k][j] (Z: 6 planes Tb apart,
 * z at tile 0), k < 6, for the len tiles of one input row segment; dst is the row at the
 * segment's first column iw0 (negative: padding) of a row of W cells, cells outside [0, W)
 * dropped. A 16-cell run is the sum of the picks (as the scatter's) of the plane groups g = 0,
 * 1, ... (planes g*M .. g*M + M - 1, absent ones zero), group g taken g tiles back. */
static void FN(wg6_row_add_avx512)(REAL *restrict dst, ptrdiff_t iw0, ptrdiff_t W,
                                   const REAL *restrict z, ptrdiff_t Tb, ptrdiff_t len)
{
    enum { GROUPS = (6 + WG_M - 1) / WG_M };   /* 2 for M=4, 3 for M=2 */
    const __m512i idx_lo = FN(wg6d_cell_source)();
    const __m512i idx_hi = _mm512_add_epi64(idx_lo, _mm512_set1_epi64(8 / WG_M));
    const uintptr_t ps = (uintptr_t)(Tb * (ptrdiff_t)sizeof(REAL));
    const ptrdiff_t span = WG_M * (len - 1) + 6;
    /* cells [lo, hi) of the span fall inside the row */
    const ptrdiff_t lo = iw0 < 0 ? -iw0 : 0, hi = W - iw0 < span ? W - iw0 : span;
    for (ptrdiff_t c0 = 0, j0 = 0; c0 < span; c0 += 16, j0 += WG6D_GT) {
        __m512d acc_lo = _mm512_setzero_pd(), acc_hi = _mm512_setzero_pd();
        for (int g = 0; g < GROUPS; ++g) {
            /* tiles j0 - g + t, t < GT, that exist */
            const ptrdiff_t first = j0 - g;
            const ptrdiff_t t0 = first < 0 ? -first : 0;
            const ptrdiff_t t1 = len - first < WG6D_GT ? len - first : WG6D_GT;
            if (t1 <= t0) continue;
            const unsigned tm = ((1u << t1) - 1) & ~((1u << t0) - 1);
            __m512d a, b;
            FN(wg6d_sources)(&a, &b,
                             (uintptr_t)z + (uintptr_t)(first * (ptrdiff_t)sizeof(REAL)), ps,
                             WG_M * g, tm, WG_M * g + 4 <= 6);
            acc_lo = _mm512_add_pd(acc_lo, _mm512_permutex2var_pd(a, idx_lo, b));
            acc_hi = _mm512_add_pd(acc_hi, _mm512_permutex2var_pd(a, idx_hi, b));
        }
        /* cells c0 + l inside [lo, hi) */
        const ptrdiff_t a0 = lo - c0 < 0 ? 0 : lo - c0 > 16 ? 16 : lo - c0;
        const ptrdiff_t a1 = hi - c0 < 0 ? 0 : hi - c0 > 16 ? 16 : hi - c0;
        if (a1 <= a0) continue;
        const unsigned cells = ((1u << a1) - 1) & ~((1u << a0) - 1);
        const __mmask8 m_lo = (__mmask8)(cells & 0xFF), m_hi = (__mmask8)(cells >> 8);
        const uintptr_t d = (uintptr_t)dst + (uintptr_t)((iw0 + c0) * (ptrdiff_t)sizeof(REAL));
        REAL *d_lo = (REAL *)d, *d_hi = (REAL *)(d + 8 * sizeof(REAL));
        if (m_lo)
            _mm512_mask_storeu_pd(d_lo, m_lo, _mm512_add_pd(_mm512_maskz_loadu_pd(m_lo, d_lo),
                                                            acc_lo));
        if (m_hi)
            _mm512_mask_storeu_pd(d_hi, m_hi, _mm512_add_pd(_mm512_maskz_loadu_pd(m_hi, d_hi),
                                                            acc_hi));
    }
}
#undef WG6D_GT
#undef WG6D_CELL0
