/* winograd6_avx512_f64.h: the double AVX-512 forms of winograd6_impl.h's tile gathers (the input
 * transform's and the gradient's), and the double vocabulary its type-generic row scatters run
 * on; included there, in the AVX-512 double copies only (FN, REAL = double, WG_M as there). The
 * float gathers (16 lanes) are in winograd6_impl.h; these do the same with 8 lanes of double,
 * so a run of cells spans four registers where the float ones span two. The scalar loops they
 * replace stored or loaded the 36 cells of a tile one by one: in double on AlexNet conv1's
 * space-to-depth layer (48->96 on 57x57, batch 8, 1 thread) those loops and the passes around
 * them were 27% of the forward+backward (perf), against 55% for the GEMMs, which run at the FMA
 * peak. */

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
        const uint64_t cells = wg6_run_cells(s, WG_M * (n - 1) + 6, W);
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

/* The double vocabulary of winograd6_impl.h's row scatters (as the float one there). */
#define WG6V __m512d
#define WG6V_LANES 8
#define WG6V_MASK __mmask8
#define WG6V_ZERO() _mm512_setzero_pd()
#define WG6V_ADD(a, b) _mm512_add_pd(a, b)
#define WG6V_PERM(a, idx, b) _mm512_permutex2var_pd(a, idx, b)
#define WG6V_LOADZ(m, p) _mm512_maskz_loadu_pd(m, p)
#define WG6V_STORE(p, m, v) _mm512_mask_storeu_pd(p, m, v)
#define WG6V_IDX_PLUS(idx, k) _mm512_add_epi64(idx, _mm512_set1_epi64(k))
#define WG6V_HALF_LOADZ(m, p) _mm256_maskz_loadu_pd(m, p)   /* half a vector */
#define WG6V_JOIN(lo, hi) _mm512_insertf64x4(_mm512_castpd256_pd512(lo), hi, 1)

/* For the scatters: a run of GT = 16/M tiles is 16 cells, whose M planes are two sources (a, b)
 * of 8 lanes: M = 4, [z0 | z1] and [z2 | z3], 4 tiles each; M = 2, z0 and z1, 8 tiles. Cell l
 * (tile l/M, column l%M) is lane (l%M)*GT + l/M of them. */
static inline __m512i FN(wg6_cell_source)(void)
{
    const __m512i lane = _mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7);
    const __m512i column = _mm512_and_epi64(lane, _mm512_set1_epi64(WG_M - 1));
    return _mm512_add_epi64(_mm512_slli_epi64(column, WG_M == 4 ? 2 : 3),
                            _mm512_srli_epi64(lane, WG_M == 4 ? 2 : 1));
}

#undef WG6D_CELL0
