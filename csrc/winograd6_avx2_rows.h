/* winograd6_avx2_rows.h: the AVX2 forms (float, F(4x4,3x3)) of winograd6_impl.h's two row
 * gathers, the input transform's and the gradient's. Included there, in the AVX2 and AVX-512
 * float F(4x4) copies (FN, REAL = float, WG_M = 4; which of them runs where: WG6_ROWS8).
 * Their scalar forms stored a tile's cells one by one, 6 or 4 to each of as many planes. AVX2 has
 * no two-register permute, so these work in runs of 8 tiles of one row: tile j's 4 cells
 * [4j, 4j + 4) are one 128-bit load, tiles j and j + 4 share a register, and the 4x4 transpose
 * inside each 128-bit half turns 4 such registers into the columns k = 0..3 of all 8 tiles
 * (lane j <- cell 4j + k) in tile order; the input tiles' columns 4 and 5 are columns 0 and 1
 * one tile on. A run fills 8 lanes where a tile row has 8 tiles (maps of 29 or more), 4 on 14x14
 * maps; the callers keep the scalar gathers for rows of fewer than 4 tiles (7x7 maps: 2), where
 * these measured slower.
 * The planes written have WG6_SLACK elements past the block's tiles: stores are whole vectors,
 * the lanes past a segment being tiles of later segments, written after it (AVX2's masked store,
 * vmaskmovps, cost 9% of the input transform on Zen 4 where it took the block's last segments).
 * In AVX2 the scatters back (output rows, dx rows) stay scalar: in this form they measured
 * slower (DeepConvNet's 16->32 on 14x14, float, 1 thread: forward 1.36 -> 1.46 ms with the
 * output scatter, backward 3.05 -> 3.21 with the dx overlap-add). */

/* the 4x4 transpose inside each 128-bit half: q[j] = [tile j | tile j + 4] -> column k */
#define WG6A_TRANSPOSE(o, q)                                                                  \
    do {                                                                                      \
        const __m256 t0_ = _mm256_unpacklo_ps(q[0], q[1]);                                   \
        const __m256 t1_ = _mm256_unpackhi_ps(q[0], q[1]);                                   \
        const __m256 t2_ = _mm256_unpacklo_ps(q[2], q[3]);                                   \
        const __m256 t3_ = _mm256_unpackhi_ps(q[2], q[3]);                                   \
        o[0] = _mm256_shuffle_ps(t0_, t2_, _MM_SHUFFLE(1, 0, 1, 0));                           \
        o[1] = _mm256_shuffle_ps(t0_, t2_, _MM_SHUFFLE(3, 2, 3, 2));                           \
        o[2] = _mm256_shuffle_ps(t1_, t3_, _MM_SHUFFLE(1, 0, 1, 0));                           \
        o[3] = _mm256_shuffle_ps(t1_, t3_, _MM_SHUFFLE(3, 2, 3, 2));                           \
    } while (0)

/* the maskload mask of cells [a, a + 4) of a row of W: lanes l with 0 <= a + l < W set */
static inline __m128i FN(wg6a_cells)(ptrdiff_t a, ptrdiff_t W)
{
    const __m128i c = _mm_add_epi32(_mm_set1_epi32((int)a), _mm_setr_epi32(0, 1, 2, 3));
    return _mm_andnot_si128(_mm_cmpgt_epi32(_mm_setzero_si128(), c),
                            _mm_cmpgt_epi32(_mm_set1_epi32((int)W), c));
}

/* q[j] = cells [4j, 4j + 4) and [16 + 4j, 20 + 4j) from the integer address `at`; with `masked`
 * only the lanes set in mask[j] (tile j's, from wg6a_cells) are read, the others load as 0. The
 * address is an integer: the run may start before the row or end past the plane, where the
 * masks keep it from reading. */
static inline void FN(wg6a_load8)(__m256 q[4], uintptr_t at, int masked, const __m128i mask[8])
{
    for (int j = 0; j < 4; ++j) {
        const float *lo = (const float *)(at + 16 * (uintptr_t)j);
        const float *hi = (const float *)(at + 16 * (uintptr_t)(j + 4));
        if (masked)
            q[j] = _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_maskload_ps(lo, mask[j])),
                                        _mm_maskload_ps(hi, mask[j + 4]), 1);
        else
            q[j] = _mm256_loadu2_m128(hi, lo);
    }
}

/* wg6_gather_segment's AVX2 form: P[r*6 + k][j] = (d B)[r][k] of tile j of the segment (rows
 * transformed while in registers, as the AVX-512 gather does); P's planes Tb apart, each with
 * room for j < len + 7. */
static void FN(wg6_gather_avx2)(REAL *restrict P, ptrdiff_t Tb, const REAL *restrict xc,
                                ptrdiff_t H, ptrdiff_t W, ptrdiff_t ih0, ptrdiff_t iw0,
                                ptrdiff_t len)
{
    const __m256i next = _mm256_setr_epi32(1, 2, 3, 4, 5, 6, 7, 7);   /* lane j <- j + 1 */
    for (ptrdiff_t j0 = 0; j0 < len; j0 += 8) {
        const ptrdiff_t s = iw0 + 4 * j0;   /* the run's first input column */
        /* the 32 cells the loads read all inside the row, or their masks (same for all 6 rows);
         * the two past them are read one by one */
        const int masked = s < 0 || s + 32 > W;
        __m128i mask[8];
        for (int j = 0; j < 8 && masked; ++j) mask[j] = FN(wg6a_cells)(s + 4 * j, W);
        const int in32 = s + 32 >= 0 && s + 32 < W, in33 = s + 33 >= 0 && s + 33 < W;
        for (int r = 0; r < 6; ++r) {
            const ptrdiff_t ih = ih0 + r;
            __m256 col[6], o[6];
            if (ih >= 0 && ih < H) {
                const uintptr_t at =
                    (uintptr_t)(xc + ih * W) + (uintptr_t)(s * (ptrdiff_t)sizeof(REAL));
                __m256 q[4];
                FN(wg6a_load8)(q, at, masked, mask);
                WG6A_TRANSPOSE(col, q);
                /* columns 4, 5: columns 0, 1 of the next tile; the last lane's beyond the run */
                const float *e = (const float *)(at + 32 * sizeof(REAL));
                col[4] = _mm256_blend_ps(_mm256_permutevar8x32_ps(col[0], next),
                                         _mm256_set1_ps(in32 ? e[0] : 0.0f), 0x80);
                col[5] = _mm256_blend_ps(_mm256_permutevar8x32_ps(col[1], next),
                                         _mm256_set1_ps(in33 ? e[1] : 0.0f), 0x80);
                WG6_PREFETCH_NEXT(at, H * W);
            } else {
                for (int k = 0; k < 6; ++k) col[k] = _mm256_setzero_ps();
            }
            WG6_BT_T(__m256, o, col, 1);
            for (int k = 0; k < 6; ++k) _mm256_storeu_ps(P + (r * 6 + k) * Tb + j0, o[k]);
        }
    }
}

#if defined(FC_ISA_AVX2)   /* AVX-512 keeps its own (WG6_ROWS8) */
/* wg6_grad_block's row gather in AVX2: z[k*Tb + j] = src[4j + k] for the len tiles of one output
 * row segment, cells at or past cnt being 0; z's planes as P's above. */
static void FN(wg6_row_gather_avx2)(REAL *restrict z, ptrdiff_t Tb, const REAL *restrict src,
                                    ptrdiff_t cnt, ptrdiff_t len)
{
    for (ptrdiff_t j0 = 0; j0 < len; j0 += 8) {
        const ptrdiff_t a = 4 * j0;
        const int masked = a + 32 > cnt;
        __m128i mask[8];
        for (int j = 0; j < 8 && masked; ++j) mask[j] = FN(wg6a_cells)(a + 4 * j, cnt);
        __m256 q[4], col[4];
        FN(wg6a_load8)(q, (uintptr_t)src + (uintptr_t)(a * (ptrdiff_t)sizeof(REAL)), masked,
                       mask);
        WG6A_TRANSPOSE(col, q);
        for (int k = 0; k < 4; ++k) _mm256_storeu_ps(z + k * Tb + j0, col[k]);
    }
}

#endif

#undef WG6A_TRANSPOSE
