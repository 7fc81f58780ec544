/* winograd6_avx2_rows.h: the AVX2 forms (float, F(4x4,3x3)) of winograd6_impl.h's two row
 * gathers, the input transform's and the gradient's. Included there, in the AVX2 and AVX-512
 * float F(4x4) copies (FN, REAL = float, WG_M = 4; which of them runs where: WG6_ROWS8).
 * Their scalar forms stored a tile's cells one by one, 6 or 4 to each of as many planes. AVX2 has
 * no two-register permute, so these work in runs of 8 tiles, two halves of 4 tiles of a row each
 * (wg6a_half): tile j's 4 cells [4j, 4j + 4) are one 128-bit load, tiles j and j + 4 share a
 * register, and the 4x4 transpose inside each 128-bit half turns 4 such registers into the
 * columns k = 0..3 of all 8 tiles (lane j <- cell 4j + k) in tile order; the input tiles'
 * columns 4 and 5 are columns 0 and 1 one tile on. A run fills its 8 lanes with the 8 tiles of
 * a row, or with two rows of 4 tiles (14x14 and 13x13 maps); AVX2's callers keep the scalar
 * gathers for rows of fewer than 4 tiles (7x7 maps: 2), where these measured slower.
 * The planes written have WG6_SLACK elements past the block's tiles: stores are whole vectors,
 * the lanes past a segment being tiles of later segments, written after it (AVX2's masked store,
 * vmaskmovps, cost 9% of the input transform on Zen 4 where it took the block's last segments).
 * The scatters back (output rows, dx rows) keep their scalar forms on rows of more than 4 tiles
 * (GCC vectorises those loops itself there; a run-of-8 form of them measured slower, DeepConvNet's
 * 16->32 on 14x14, 1 thread: forward 1.36 -> 1.46 ms); maps of at most 4 tiles a row take
 * wg6_segment_scatter_avx2 and wg6_segment_add_avx2 below. */

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

/* Half a run: up to 4 tiles of one tile row, from `row0`, the integer address of its first cell
 * in its plane's first row (that cell may be padding: the address may lie outside the plane;
 * the gathers step rows by the plane's width); its first row `ih0` (negative: padding) and
 * column `iw0`. A run is two halves, tiles 0-3 and 4-7 of its lanes: where a tile row has 8
 * tiles, the two halves of 8 of them; on maps of 4 tiles a row (14x14, 13x13), two rows. */
typedef struct {   /* 16 bytes: passed by value in two registers, never through memory */
    uintptr_t row0;
    int32_t ih0, iw0;
} FN(wg6a_half);

/* The runs of the tiles [b0, b1): their tile row segments (WG_SEGMENTS) cut in halves of up to
 * 4 tiles, a whole half and the next one a run. HALF(n, ti, tj): the half from tile (n, ti, tj);
 * RUN(at, a, b, has_b): one run, at: the place of its first tile in the block. */
#define WG6A_RUNS(b0, b1, TH, TW, HALF, RUN)                                                  \
    do {                                                                                      \
        FN(wg6a_half) held_ = {0, 0, 0};                                                      \
        ptrdiff_t held_at_ = -1;   /* the held half's place, or none */                       \
        WG_SEGMENTS(b0, b1, TH, TW, {                                                         \
            for (ptrdiff_t h_ = 0; h_ < len; h_ += 4) {                                       \
                const FN(wg6a_half) hf_ = HALF(n, ti, tj0 + h_);                              \
                if (held_at_ < 0 && len - h_ >= 4) {                                          \
                    held_ = hf_;                                                              \
                    held_at_ = t - (b0) + h_;                                                 \
                } else if (held_at_ >= 0) {                                                   \
                    RUN(held_at_, held_, hf_, 1);                                             \
                    held_at_ = -1;                                                            \
                } else {                                                                      \
                    RUN(t - (b0) + h_, hf_, hf_, 0);                                          \
                }                                                                             \
            }                                                                                 \
        });                                                                                   \
        if (held_at_ >= 0) RUN(held_at_, held_, held_, 0);                                    \
    } while (0)

/* Which of a half's 16 + 2 cells lie in a row of W (the same for all its rows): all of the
 * first 16 (`whole`) or the loads' masks, and the two past them. */
typedef struct {
    int whole, in16, in17;
    __m128i mask[4];
} FN(wg6a_span);

static inline __attribute__((always_inline)) FN(wg6a_span)
FN(wg6a_span_of)(ptrdiff_t s, ptrdiff_t W)
{
    FN(wg6a_span) sp;
    sp.whole = s >= 0 && s + 16 <= W;
    if (!sp.whole)
        for (int j = 0; j < 4; ++j) sp.mask[j] = FN(wg6a_cells)(s + 4 * j, W);
    sp.in16 = s + 16 >= 0 && s + 16 < W;
    sp.in17 = s + 17 >= 0 && s + 17 < W;
    return sp;
}

/* v[j] = the 4 cells [4j, 4j + 4) from the integer address `at`, e = the cells 16 and 17 (or
 * 0); cells outside the row are not read and load as 0 */
static inline __attribute__((always_inline)) void
FN(wg6a_load_half)(__m128 v[4], float e[2], uintptr_t at, const FN(wg6a_span) *sp)
{
    for (int j = 0; j < 4; ++j) {
        const float *p = (const float *)(at + 16 * (uintptr_t)j);
        v[j] = sp->whole ? _mm_loadu_ps(p) : _mm_maskload_ps(p, sp->mask[j]);
    }
    e[0] = sp->in16 ? ((const float *)at)[16] : 0.0f;
    e[1] = sp->in17 ? ((const float *)at)[17] : 0.0f;
}

/* wg6_gather_segment's AVX2 form on one run, halves a and b (if has_b; a has 4 tiles then):
 * P[r*6 + k][j] = (d B)[r][k] of the run's tile j (rows transformed while in registers, as the
 * AVX-512 gather does); P's planes Tb apart, each with room for all 8 lanes. H, W: the
 * plane's. */
static void FN(wg6_gather8_avx2)(REAL *restrict P, ptrdiff_t Tb, FN(wg6a_half) a,
                                 FN(wg6a_half) b, int has_b, ptrdiff_t H, ptrdiff_t W)
{
    const __m256i next = _mm256_setr_epi32(1, 2, 3, 4, 5, 6, 7, 7);   /* lane j <- j + 1 */
    const FN(wg6a_span) sa = FN(wg6a_span_of)(a.iw0, W);
    const FN(wg6a_span) sb = FN(wg6a_span_of)(b.iw0, W);
    for (int r = 0; r < 6; ++r) {
        const ptrdiff_t iha = a.ih0 + r, ihb = has_b ? b.ih0 + r : -1;
        __m128 lo[4], hi[4];
        float ea[2] = {0.0f, 0.0f}, eb[2] = {0.0f, 0.0f};
        for (int j = 0; j < 4; ++j) lo[j] = hi[j] = _mm_setzero_ps();
        if (iha >= 0 && iha < H) {
            const uintptr_t at = a.row0 + (uintptr_t)(iha * W * (ptrdiff_t)sizeof(REAL));
            FN(wg6a_load_half)(lo, ea, at, &sa);
            WG6_PREFETCH_NEXT(at, H * W);
        }
        if (ihb >= 0 && ihb < H) {
            const uintptr_t at = b.row0 + (uintptr_t)(ihb * W * (ptrdiff_t)sizeof(REAL));
            FN(wg6a_load_half)(hi, eb, at, &sb);
            WG6_PREFETCH_NEXT(at, H * W);
        }
        __m256 q[4], col[6], o[6];
        for (int j = 0; j < 4; ++j)
            q[j] = _mm256_insertf128_ps(_mm256_castps128_ps256(lo[j]), hi[j], 1);
        WG6A_TRANSPOSE(col, q);
        /* columns 4, 5: columns 0, 1 of the next tile, except at each half's last tile, whose
         * are its row's cells 16 and 17 */
        col[4] = _mm256_blend_ps(_mm256_permutevar8x32_ps(col[0], next),
                                 _mm256_setr_ps(0, 0, 0, ea[0], 0, 0, 0, eb[0]), 0x88);
        col[5] = _mm256_blend_ps(_mm256_permutevar8x32_ps(col[1], next),
                                 _mm256_setr_ps(0, 0, 0, ea[1], 0, 0, 0, eb[1]), 0x88);
        WG6_BT_T(__m256, o, col, 1);
        for (int k = 0; k < 6; ++k) _mm256_storeu_ps(P + (r * 6 + k) * Tb, o[k]);
    }
}

#if defined(FC_ISA_AVX2)   /* AVX-512 keeps its own (WG6_ROWS8) */
/* wg6_grad_block's row gather in AVX2 on one run: for each of the tiles' 4 output rows i,
 * z[(4i + k)*Tb + j] = cell 4j + k of the run's tile j in row i of its halves a and b (if has_b;
 * rows OW apart), cells past a row's end (OW) and rows at or past OH being 0; z's planes
 * as P's above. */
static void FN(wg6_row_gather8_avx2)(REAL *restrict z, ptrdiff_t Tb, FN(wg6a_half) a,
                                     FN(wg6a_half) b, int has_b, ptrdiff_t OH, ptrdiff_t OW)
{
    /* per half: the cells left in its rows from its first (all 16 of them, or the masks) */
    const ptrdiff_t ca = OW - a.iw0, cb = has_b ? OW - b.iw0 : 16;
    __m128i ma[4], mb[4];
    for (int j = 0; j < 4; ++j) {
        ma[j] = FN(wg6a_cells)(4 * j, ca);
        mb[j] = FN(wg6a_cells)(4 * j, cb);
    }
    for (int i = 0; i < 4; ++i) {
        __m128 lo[4], hi[4];
        for (int j = 0; j < 4; ++j) lo[j] = hi[j] = _mm_setzero_ps();
        if (a.ih0 + i < OH) {
            const float *p =
                (const float *)(a.row0 + (uintptr_t)(i * OW * (ptrdiff_t)sizeof(REAL)));
            for (int j = 0; j < 4; ++j)
                lo[j] = ca >= 16 ? _mm_loadu_ps(p + 4 * j) : _mm_maskload_ps(p + 4 * j, ma[j]);
            WG6_PREFETCH_NEXT(p, OH * OW);
        }
        if (has_b && b.ih0 + i < OH) {
            const float *p =
                (const float *)(b.row0 + (uintptr_t)(i * OW * (ptrdiff_t)sizeof(REAL)));
            for (int j = 0; j < 4; ++j)
                hi[j] = cb >= 16 ? _mm_loadu_ps(p + 4 * j) : _mm_maskload_ps(p + 4 * j, mb[j]);
            WG6_PREFETCH_NEXT(p, OH * OW);
        }
        __m256 q[4], col[4];
        for (int j = 0; j < 4; ++j)
            q[j] = _mm256_insertf128_ps(_mm256_castps128_ps256(lo[j]), hi[j], 1);
        WG6A_TRANSPOSE(col, q);
        for (int k = 0; k < 4; ++k) _mm256_storeu_ps(z + (4 * i + k) * Tb, col[k]);
    }
}

/* The scatters back on maps of at most 4 tiles a row (at most 16 wide: 14x14, 13x13, 8x8,
 * 7x7), a whole segment's rows per call. Row by row, a scatter of 14 cells spent more on its
 * loop (in the caller's registers: spills, per-row set-up) than on its cells: as their scalar
 * loops, or as a vectorised row function called per row, DeepConvNet's 16->32 on 14x14
 * measured the same or slower; per segment, out of line, the forward and the backward each
 * take 0.94-0.95 of their time (AVX2, 1 and 2 threads; AlexNet's 13x13 and 7x7 layers: no
 * change). A tile's 4 cells of a row are one 128-bit vector, made by the 4x4 transpose of the
 * tiles' planes (the gathers' in reverse). Cells outside a segment's span are never stored
 * (neighbouring segments may be other threads'): the last cells of a row go by 8- and 4-byte
 * stores (a masked store, vmaskmovps, is slow on AMD). */

/* the 4x4 transpose of 128-bit vectors: q[k] = cell k of tiles 0..3 -> o[t] = tile t's cells */
#define WG6A_TRANSPOSE4(o, q)                                                                 \
    do {                                                                                      \
        const __m128 t0_ = _mm_unpacklo_ps(q[0], q[1]), t1_ = _mm_unpackhi_ps(q[0], q[1]);    \
        const __m128 t2_ = _mm_unpacklo_ps(q[2], q[3]), t3_ = _mm_unpackhi_ps(q[2], q[3]);    \
        o[0] = _mm_movelh_ps(t0_, t2_);                                                       \
        o[1] = _mm_movehl_ps(t2_, t0_);                                                       \
        o[2] = _mm_movelh_ps(t1_, t3_);                                                       \
        o[3] = _mm_movehl_ps(t3_, t1_);                                                       \
    } while (0)

/* the maskload mask of the first n (0..4) of 4 lanes */
static inline __m128i FN(wg6a_first)(ptrdiff_t n)
{
    return _mm_cmpgt_epi32(_mm_set1_epi32((int)n), _mm_setr_epi32(0, 1, 2, 3));
}

/* p[l] = v[l] for l < n (n <= 4), element stores for a part */
static inline void FN(wg6a_store_first)(float *p, __m128 v, ptrdiff_t n)
{
    if (n == 4) {
        _mm_storeu_ps(p, v);
        return;
    }
    if (n & 2) {
        _mm_storel_pi((__m64 *)p, v);
        if (n & 1) _mm_store_ss(p + 2, _mm_movehl_ps(v, v));
    } else if (n & 1) {
        _mm_store_ss(p, v);
    }
}

/* The row scatter of a whole segment of at most 4 tiles (maps at most 16 wide), its `rows`
 * output rows (OW apart) at once: dst0[i*OW + 4j + k] = z[(4i + k)*Tb + j], cnt cells a row */
static __attribute__((noinline)) void
FN(wg6_segment_scatter_avx2)(REAL *restrict dst0, ptrdiff_t OW, int rows,
                             const REAL *restrict z, ptrdiff_t Tb, ptrdiff_t len, ptrdiff_t cnt)
{
    const __m128i m = FN(wg6a_first)(len);
    const ptrdiff_t full = cnt / 4, rest = cnt - 4 * full;
    for (int i = 0; i < rows; ++i) {
        __m128 q[4], o[4];
        const REAL *zi = z + 4 * i * Tb;
        REAL *dst = dst0 + i * OW;
        if (len == 4)
            for (int k = 0; k < 4; ++k) q[k] = _mm_loadu_ps(zi + k * Tb);
        else
            for (int k = 0; k < 4; ++k) q[k] = _mm_maskload_ps(zi + k * Tb, m);
        WG6A_TRANSPOSE4(o, q);
        for (ptrdiff_t t = 0; t < full; ++t) _mm_storeu_ps(dst + 4 * t, o[t]);
        if (rest) FN(wg6a_store_first)(dst + 4 * full, o[full], rest);
    }
}

/* wg6_scatter_block's dx overlap-add for a whole segment of at most 4 tiles (maps at most 16
 * wide), its 6 input rows at once: the rows ih0 + r inside [0, H) of the plane xc (H, W) get
 * row_add's sums from the planes z + r*6*Tb */
static __attribute__((noinline)) void
FN(wg6_segment_add_avx2)(REAL *restrict xc, ptrdiff_t H, ptrdiff_t W, ptrdiff_t ih0,
                         ptrdiff_t iw0, const REAL *restrict z, ptrdiff_t Tb, ptrdiff_t len)
{
    const __m128i m = FN(wg6a_first)(len);
    const __m128 zero = _mm_setzero_ps();
    /* one padding column and the segment a whole tile row (its span covers the row): the row's
     * cells in aligned vectors, each from two of v (palignr) */
    const int whole_row = iw0 == -1 && W <= 16 && iw0 + 4 * len + 2 >= W;
    /* vector t (cells iw0 + 4t ..): its cells [c0[t], c1[t]) inside the row and the span */
    const ptrdiff_t hi = W < iw0 + 4 * len + 2 ? W : iw0 + 4 * len + 2;
    ptrdiff_t c0[5], c1[5];
    for (ptrdiff_t t = 0; t <= len; ++t) {
        const ptrdiff_t p = iw0 + 4 * t;
        c0[t] = p < 0 ? -p : 0;
        c1[t] = hi - p < 0 ? 0 : hi - p > 4 ? 4 : hi - p;
    }
    for (int r = 0; r < 6; ++r) {
        const ptrdiff_t ih = ih0 + r;
        if (ih < 0 || ih >= H) continue;
        REAL *row = xc + ih * W;
        const REAL *zr = z + r * 6 * Tb;
        __m128 q[4], a[4], v[5];
        for (int k = 0; k < 4; ++k)
            q[k] = len == 4 ? _mm_loadu_ps(zr + k * Tb) : _mm_maskload_ps(zr + k * Tb, m);
        WG6A_TRANSPOSE4(a, q);
        const __m128 z4 = len == 4 ? _mm_loadu_ps(zr + 4 * Tb) : _mm_maskload_ps(zr + 4 * Tb, m);
        const __m128 z5 = len == 4 ? _mm_loadu_ps(zr + 5 * Tb) : _mm_maskload_ps(zr + 5 * Tb, m);
        const __m128 l45 = _mm_unpacklo_ps(z4, z5), h45 = _mm_unpackhi_ps(z4, z5);
        /* v[t] = tile t's columns 0-3 + tile t - 1's columns 4, 5 (a tile past len: zeros) */
        v[0] = a[0];
        v[1] = _mm_add_ps(a[1], _mm_movelh_ps(l45, zero));
        v[2] = _mm_add_ps(a[2], _mm_movehl_ps(zero, l45));
        v[3] = _mm_add_ps(a[3], _mm_movelh_ps(h45, zero));
        v[4] = _mm_movehl_ps(zero, h45);
        if (whole_row) {
            /* cells 4s .. 4s + 3 of the row: v[s]'s lanes 1-3 and v[s + 1]'s lane 0 */
            ptrdiff_t s4 = 0;
            for (int s = 0; s4 + 4 <= W; ++s, s4 += 4) {
                const __m128 u = _mm_castsi128_ps(_mm_alignr_epi8(
                    _mm_castps_si128(v[s + 1]), _mm_castps_si128(v[s]), 4));
                _mm_storeu_ps(row + s4, _mm_add_ps(_mm_loadu_ps(row + s4), u));
            }
            if (s4 < W) {
                const int s = (int)(s4 / 4);
                const __m128 u = _mm_castsi128_ps(_mm_alignr_epi8(
                    _mm_castps_si128(v[s + 1]), _mm_castps_si128(v[s]), 4));
                const __m128i tail = FN(wg6a_first)(W - s4);
                FN(wg6a_store_first)(row + s4, _mm_add_ps(_mm_maskload_ps(row + s4, tail), u),
                                     W - s4);
            }
            continue;
        }
        for (ptrdiff_t t = 0; t <= len; ++t) {
            const ptrdiff_t p = iw0 + 4 * t;   /* may be negative: cells from c0[t] on exist */
            if (c0[t] == 0 && c1[t] == 4) {
                _mm_storeu_ps(row + p, _mm_add_ps(_mm_loadu_ps(row + p), v[t]));
            } else {
                float part[4];
                _mm_storeu_ps(part, v[t]);
                for (ptrdiff_t l = c0[t]; l < c1[t]; ++l) row[p + l] += part[l];
            }
        }
    }
}
#undef WG6A_TRANSPOSE4
#endif

#undef WG6A_TRANSPOSE
