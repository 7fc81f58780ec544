/* direct_kernels.h: the per-image work of the direct convolution (direct.c), type- and
 * instruction-set-generic: included once per (dtype, ISA) with REAL, DIRECT_IREAL (the integer
 * of REAL's width), KN(name), DIRECT_VB (vector bytes), DIRECT_OCG_FWD and DIRECT_OCG_DW (output
 * channels per register tile of the forward and of backward-weights) defined, under the matching
 * `#pragma GCC target`, so the same C is compiled for AVX-512, AVX2+FMA and the portable baseline
 * and picked at run time (fc_simd_active). No OpenMP in here: the drivers in direct_impl.h own
 * the threads and call these through a function pointer.
 *
 * The accumulators are GCC vector-extension values: left to the auto-vectoriser, the tiles were
 * vectorised across channels with a permute per tap, 10x slower. Register tiles:
 *   forward: DIRECT_OCG_FWD channels x DIRECT_ROWS output rows x one vector of columns; per
 *     kernel tap, ROWS input loads and OCG weight broadcasts feed OCG*ROWS FMAs;
 *   backward-weights: DIRECT_OCG_DW channels x DIRECT_KWB neighbouring taps of a kernel row
 *     (or DIRECT_OCG_DW_WIDE x DIRECT_KWB_WIDE: dweight_tile); per vector of columns, KWB input
 *     loads and OCG dy loads feed OCG*KWB FMAs.
 * Compilers without vector extensions get the same loops on scalars. */

#if defined(__GNUC__)
typedef REAL KN(vec) __attribute__((vector_size(DIRECT_VB)));
#define DIRECT_LANES ((ptrdiff_t)(DIRECT_VB / sizeof(REAL)))
#else
typedef REAL KN(vec);
#define DIRECT_LANES ((ptrdiff_t)1)
#endif

static inline KN(vec) KN(load)(const REAL *p)
{
    KN(vec) v;
    memcpy(&v, p, sizeof v);   /* an unaligned vector load */
    return v;
}

static inline KN(vec) KN(splat)(REAL s)
{
    KN(vec) v;
    for (ptrdiff_t l = 0; l < DIRECT_LANES; ++l) ((REAL *)&v)[l] = s;
    return v;
}

static inline REAL KN(lane_sum)(KN(vec) v)
{
    REAL s = 0;
    for (ptrdiff_t l = 0; l < DIRECT_LANES; ++l) s += ((const REAL *)&v)[l];
    return s;
}

/* max(v, 0) lane by lane, NaN kept (a lane stays where v > 0 or v != v) */
static inline KN(vec) KN(relu)(KN(vec) v)
{
#if defined(__GNUC__)
    typedef DIRECT_IREAL ivec __attribute__((vector_size(DIRECT_VB)));
    ivec keep = (v > 0) | (v != v), bits;
    memcpy(&bits, &v, sizeof v);
    bits &= keep;
    memcpy(&v, &bits, sizeof v);
    return v;
#else
    return v > 0 ? v : (v != v ? v : (REAL)0);
#endif
}

/* y[oc][oh][ow] = bias + sum_{c,kh,kw} w[oc][c][kh][kw] * xp[c][oh+kh][ow+kw] for one image,
 * stride 1, on the pre-padded input xp (C, HP, WP) (direct_frame: rows and columns for every
 * tile's reads, zeros past the image). wp: the weights repacked per block of DIRECT_OCB
 * channels as (K, DIRECT_OCB), zero beyond OC. */
static void KN(direct_forward_image)(REAL *restrict y, const REAL *restrict xp,
                                     const REAL *restrict wp, const REAL *bias, int relu,
                                     ptrdiff_t C, ptrdiff_t KH, ptrdiff_t KW, ptrdiff_t HP,
                                     ptrdiff_t WP, ptrdiff_t OC, ptrdiff_t OH, ptrdiff_t OW)
{
    for (ptrdiff_t og = 0; og < OC; og += DIRECT_OCG_FWD) {
        const ptrdiff_t ng = OC - og < DIRECT_OCG_FWD ? OC - og : DIRECT_OCG_FWD;
        /* this group's weights: tap k at w[k*DIRECT_OCB + 0 .. OCG-1] */
        const REAL *wg = wp + (og / DIRECT_OCB) * DIRECT_OCB * C * KH * KW + og % DIRECT_OCB;
        REAL b[DIRECT_OCG_FWD];
        for (int o = 0; o < DIRECT_OCG_FWD; ++o) b[o] = (bias && o < ng) ? bias[og + o] : (REAL)0;
        for (ptrdiff_t oh = 0; oh < OH; oh += DIRECT_ROWS) {
            const ptrdiff_t nr = OH - oh < DIRECT_ROWS ? OH - oh : DIRECT_ROWS;
            for (ptrdiff_t col = 0; col < OW; col += DIRECT_LANES) {
                KN(vec) acc[DIRECT_OCG_FWD][DIRECT_ROWS];
                for (int o = 0; o < DIRECT_OCG_FWD; ++o)
                    for (int r = 0; r < DIRECT_ROWS; ++r) acc[o][r] = KN(splat)(b[o]);
                const REAL *w = wg;
                for (ptrdiff_t c = 0; c < C; ++c) {
                    for (ptrdiff_t kh = 0; kh < KH; ++kh) {
                        const REAL *xr = xp + (c * HP + oh + kh) * WP + col;
                        for (ptrdiff_t kw = 0; kw < KW; ++kw, w += DIRECT_OCB) {
                            KN(vec) xv[DIRECT_ROWS];
                            for (int r = 0; r < DIRECT_ROWS; ++r)
                                xv[r] = KN(load)(xr + r * WP + kw);
                            for (int o = 0; o < DIRECT_OCG_FWD; ++o)
                                for (int r = 0; r < DIRECT_ROWS; ++r) acc[o][r] += xv[r] * w[o];
                        }
                    }
                }
                const ptrdiff_t m = OW - col < DIRECT_LANES ? OW - col : DIRECT_LANES;
                for (ptrdiff_t o = 0; o < ng; ++o) {
                    for (ptrdiff_t r = 0; r < nr; ++r) {
                        REAL *dst = y + ((og + o) * OH + oh + r) * OW + col;
                        KN(vec) v = relu ? KN(relu)(acc[o][r]) : acc[o][r];
                        if (m == DIRECT_LANES) memcpy(dst, &v, sizeof v);
                        else memcpy(dst, &v, m * sizeof(REAL));
                    }
                }
            }
        }
    }
}

/* One register tile of backward-weights: the vector sums vs[t*DIRECT_OCB + o] (o < ocg
 * channels, t < kwb neighbouring taps of a kernel row) += the products of nr rows of dy (channel
 * o's rows from dch[o], OW apart) with the input rows from xr (WP apart; tap t starts at column
 * t); columns past the last whole vector (full) go to the scalar sums ts (same layout). ocg and
 * kwb are constants once inlined. With DIRECT_PIN_DY each dy vector is loaded once and pinned
 * to a register: GCC otherwise folded its load into every FMA that used it, kwb loads where one
 * does, and on Zen 4 the loads then set the pace (float64 MNIST 1->30: 0.81 of the time). The
 * columns past the last whole vector go in a loop of their own: inside the row loop they made
 * GCC store and reload every accumulator per row (AVX2: 24 moves per 36 FMAs). */
static inline __attribute__((always_inline)) void
KN(dweight_tile)(KN(vec) *restrict vs, REAL *restrict ts, const REAL *const *dch,
                 const REAL *restrict xr, ptrdiff_t WP, ptrdiff_t nr, ptrdiff_t OW,
                 ptrdiff_t full, const int ocg, const int kwb)
{
    KN(vec) acc[DIRECT_OCB][DIRECT_KWB_MAX];
#pragma GCC unroll 8
    for (int o = 0; o < ocg; ++o)
#pragma GCC unroll 8
        for (int t = 0; t < kwb; ++t) acc[o][t] = vs[t * DIRECT_OCB + o];
    for (ptrdiff_t r = 0; r < nr; ++r) {
        const REAL *x = xr + r * WP;
        for (ptrdiff_t ow = 0; ow < full; ow += DIRECT_LANES) {
            KN(vec) xv[DIRECT_KWB_MAX];
#pragma GCC unroll 8
            for (int t = 0; t < kwb; ++t) xv[t] = KN(load)(x + ow + t);
#pragma GCC unroll 8
            for (int o = 0; o < ocg; ++o) {
                KN(vec) dv = KN(load)(dch[o] + r * OW + ow);
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
                if (DIRECT_PIN_DY) __asm__("" : "+v"(dv));
#endif
#pragma GCC unroll 8
                for (int t = 0; t < kwb; ++t) acc[o][t] += dv * xv[t];
            }
        }
    }
#pragma GCC unroll 8
    for (int o = 0; o < ocg; ++o)
#pragma GCC unroll 8
        for (int t = 0; t < kwb; ++t) vs[t * DIRECT_OCB + o] = acc[o][t];
    for (ptrdiff_t r = 0; r < nr && full < OW; ++r)
        for (ptrdiff_t q = full; q < OW; ++q)
            for (int o = 0; o < ocg; ++o)
                for (int t = 0; t < kwb; ++t)
                    ts[t * DIRECT_OCB + o] += dch[o][r * OW + q] * xr[r * WP + q + t];
}

/* dwp[oc][(c*KH + kh)*KW + kw] += sum_{oh,ow} dy[oc][oh][ow] * xp[c][oh+kh][ow+kw] and
 * dbp[oc] += sum dy[oc] for one image (dy (OC, OH, OW); xp as above). Per block of DIRECT_OCB
 * channels the image is swept in strips of rows, small enough to stay in L1 while every kernel
 * tap passes over them. Where dy's channel planes sit a multiple of 4 KB apart (which puts them
 * all on the same L1 sets) the strip is first copied into `strip` (DIRECT_OCB, rows, OW),
 * compact; else it is read in place (the copy was 8% of float64 MNIST's time). Channels past OC
 * read zeros. Taps go in groups of DIRECT_KWB_WIDE (kernel widths that are multiples of it, on
 * variants with the registers: DIRECT_OCG_DW_WIDE channels per tile) or else DIRECT_KWB (a last
 * group reaching past KW computes taps it then drops: the frame has the columns); the vector sums
 * wait in `sums` between strips, columns past the last whole vector go to scalar sums.
 * next: the next image's dy (or NULL), fetched into L2 a few lines per tile while this image
 * computes: the bias sums read dy first and otherwise waited for memory (15% of float64 MNIST's
 * time). strip: direct_strip(OW) elements; sums: direct_sums(K), vector-aligned. */
static void KN(direct_dweight_image)(REAL *restrict dwp, REAL *restrict dbp,
                                     const REAL *restrict dy, const REAL *next,
                                     const REAL *restrict xp,
                                     REAL *restrict strip, REAL *restrict sums, ptrdiff_t C,
                                     ptrdiff_t KH, ptrdiff_t KW, ptrdiff_t HP, ptrdiff_t WP,
                                     ptrdiff_t OC, ptrdiff_t OH, ptrdiff_t OW)
{
    const ptrdiff_t K = C * KH * KW, full = OW / DIRECT_LANES * DIRECT_LANES;
    const ptrdiff_t rows = direct_strip_rows(OW);
    const int wide = DIRECT_OCG_DW_WIDE > 0 && KW % DIRECT_KWB_WIDE == 0;
    const ptrdiff_t kwb = wide ? DIRECT_KWB_WIDE : DIRECT_KWB;
    const ptrdiff_t ocg = wide ? DIRECT_OCG_DW_WIDE : DIRECT_OCG_DW;
    const ptrdiff_t KWG = (KW + kwb - 1) / kwb * kwb;  /* taps, rounded up */
    const ptrdiff_t KG = C * KH * KWG;
    const int copy = (OH * OW * (ptrdiff_t)sizeof(REAL)) % 4096 == 0;
    KN(vec) *vsum = (KN(vec) *)sums;                       /* [KG][DIRECT_OCB] */
    REAL *tsum = sums + KG * DIRECT_OCB * DIRECT_LANES;    /* [KG][DIRECT_OCB] */
    const REAL *dch[DIRECT_OCB];                           /* each channel's strip */
    const ptrdiff_t groups = OC / DIRECT_OCB * (DIRECT_OCB / ocg)
                             + (OC % DIRECT_OCB + ocg - 1) / ocg;   /* of ocg channels */
    const ptrdiff_t tiles = (OH + rows - 1) / rows * C * KH * (KWG / kwb) * groups;
    const char *pf = (const char *)next, *const pf_end = pf ? pf + OC * OH * OW * sizeof(REAL) : pf;
    const ptrdiff_t pf_lines = (pf_end - pf + 64 * tiles - 1) / (64 * tiles);   /* per tile */
    if (!copy && OC % DIRECT_OCB)   /* the rows channels past OC read */
        for (ptrdiff_t i = 0; i < rows * OW; ++i) strip[i] = 0;
    for (ptrdiff_t ob = 0; ob < OC; ob += DIRECT_OCB) {
        const ptrdiff_t nb = OC - ob < DIRECT_OCB ? OC - ob : DIRECT_OCB;
        const ptrdiff_t ng = (nb + ocg - 1) / ocg * ocg;   /* channels the tiles cover */
        for (ptrdiff_t o = 0; o < nb; ++o) {   /* dbias: four vector sums, then across lanes */
            const REAL *d = dy + (ob + o) * OH * OW;
            KN(vec) s[4] = {KN(splat)(0), KN(splat)(0), KN(splat)(0), KN(splat)(0)};
            REAL t = 0;
            ptrdiff_t i = 0;
            for (; i + 4 * DIRECT_LANES <= OH * OW; i += 4 * DIRECT_LANES)
                for (int q = 0; q < 4; ++q) s[q] += KN(load)(d + i + q * DIRECT_LANES);
            for (; i < OH * OW; ++i) t += d[i];
            dbp[ob + o] += t + KN(lane_sum)(s[0] + s[1] + (s[2] + s[3]));
        }
        for (ptrdiff_t i = 0; i < KG * DIRECT_OCB; ++i) {
            vsum[i] = KN(splat)(0);
            tsum[i] = 0;
        }
        for (ptrdiff_t oh0 = 0; oh0 < OH; oh0 += rows) {
            const ptrdiff_t nr = oh0 + rows < OH ? rows : OH - oh0, od = nr * OW;
            for (ptrdiff_t o = 0; o < ng; ++o) {
                const REAL *src = dy + ((ob + o) * OH + oh0) * OW;
                if (!copy) {
                    dch[o] = o < nb ? src : strip;
                    continue;
                }
                REAL *dst = strip + o * od;
                if (o < nb) memcpy(dst, src, od * sizeof(REAL));
                else for (ptrdiff_t i = 0; i < od; ++i) dst[i] = 0;
                dch[o] = dst;
            }
            for (ptrdiff_t og = 0; og < ng; og += ocg) {
                for (ptrdiff_t c = 0; c < C; ++c) {
                    for (ptrdiff_t kh = 0; kh < KH; ++kh) {
                        const REAL *xr = xp + (c * HP + oh0 + kh) * WP;
                        for (ptrdiff_t kw0 = 0; kw0 < KW; kw0 += kwb) {
                            const ptrdiff_t g = ((c * KH + kh) * KWG + kw0) * DIRECT_OCB + og;
                            for (ptrdiff_t i = 0; i < pf_lines && pf < pf_end; ++i, pf += 64)
                                __builtin_prefetch(pf, 0, 2);
                            if (wide)
                                KN(dweight_tile)(vsum + g, tsum + g, dch + og, xr + kw0, WP, nr,
                                                 OW, full, DIRECT_OCG_DW_WIDE, DIRECT_KWB_WIDE);
                            else
                                KN(dweight_tile)(vsum + g, tsum + g, dch + og, xr + kw0, WP, nr,
                                                 OW, full, DIRECT_OCG_DW, DIRECT_KWB);
                        }
                    }
                }
            }
        }
        for (ptrdiff_t c = 0; c < C; ++c)
            for (ptrdiff_t kh = 0; kh < KH; ++kh)
                for (ptrdiff_t kw = 0; kw < KW; ++kw) {
                    const ptrdiff_t g = (c * KH + kh) * KWG + kw, k = (c * KH + kh) * KW + kw;
                    for (ptrdiff_t o = 0; o < nb; ++o)
                        dwp[(ob + o) * K + k] += tsum[g * DIRECT_OCB + o]
                                                 + KN(lane_sum)(vsum[g * DIRECT_OCB + o]);
                }
    }
}

#undef DIRECT_LANES
