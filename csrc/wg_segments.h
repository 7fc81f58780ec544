/* wg_segments.h: the tile walk, the filter chunk, the partial-sum reduction and the packed
 * filter layout shared by the Winograd kernels (winograd_impl.h, winograd6_impl.h).
 * Tiles are numbered t = (n*TH + ti)*TW + tj over images n, tile rows ti, tile columns tj; a block
 * [b0, b1) of them is visited as row segments, each a run of consecutive tiles of one tile row. */
#ifndef FASTCNN_WG_SEGMENTS_H
#define FASTCNN_WG_SEGMENTS_H

/* Walks the tile row segments of the tiles [b0, b1): a segment is the run of tiles (n, ti, tj0..)
 * of one tile row inside the block, starting at block offset t - b0. */
#define WG_SEGMENTS(b0, b1, TH, TW, ...)  /* the body may hold commas */                     \
    do {                                                                                      \
        ptrdiff_t n = (b0) / ((TH) * (TW)), r_ = (b0) - n * (TH) * (TW);                      \
        ptrdiff_t ti = r_ / (TW), tj0 = r_ - ti * (TW);                                       \
        for (ptrdiff_t t = (b0); t < (b1);) {                                                 \
            ptrdiff_t len = (TW) - tj0 < (b1) - t ? (TW) - tj0 : (b1) - t;                    \
            __VA_ARGS__                                                                       \
            t += len;                                                                         \
            tj0 += len;                                                                       \
            if (tj0 == (TW)) {                                                                \
                tj0 = 0;                                                                      \
                if (++ti == (TH)) { ti = 0; ++n; }                                            \
            }                                                                                 \
        }                                                                                     \
    } while (0)

/* Filters transformed per chunk: the chunk's taps are first transposed into 9 rows so that the
 * transform runs down contiguous vectors of filters. (Filter by filter, its 16 scalar stores
 * went to planes OC*C apart, a multiple of 4 KB for the wide layers: aliased L1 sets made it
 * 16% of a 256->384 forward.) */
#ifndef WG_WCHUNK
#define WG_WCHUNK 64
#endif

/* x[xi][j] = the sum over the nparts threads' partial dU (each `planes` planes of `plane`, part
 * apart) at filter q0 + j, xi < planes, j < n: in thread order, so deterministic. */
#define WG_SUM_PARTIALS(x, planes, dU, plane, nparts, part, q0, n)                             \
    do {                                                                                      \
        for (int xi_ = 0; xi_ < (planes); ++xi_) {                                            \
            const REAL *src_ = (dU) + xi_ * (plane) + (q0);                                   \
            for (ptrdiff_t j_ = 0; j_ < (n); ++j_) (x)[xi_][j_] = src_[j_];                   \
            for (int t_ = 1; t_ < (nparts); ++t_) {                                           \
                _Pragma("omp simd") for (ptrdiff_t j_ = 0; j_ < (n); ++j_)                    \
                    (x)[xi_][j_] += src_[t_ * (part) + j_];                                   \
            }                                                                                 \
        }                                                                                     \
    } while (0)

/* Where element (row, k) of a (rows, K) matrix lies when packed in panels of `pack` rows
 * (pack = 1: plain row-major). The filter transforms walk destinations in order with
 * wgp_next, this is its start. (wg_gemm_avx512.h's GEMM reads such panels.) */
static inline void wgp_locate(ptrdiff_t p, ptrdiff_t rows, ptrdiff_t K, ptrdiff_t pack,
                              ptrdiff_t *row, ptrdiff_t *k)
{
    const ptrdiff_t p0 = p / (pack * K) * pack, rb = rows - p0 < pack ? rows - p0 : pack;
    const ptrdiff_t rem = p - p0 * K;
    *k = rem / rb;
    *row = p0 + rem % rb;
}

/* (row, k) of the destination after it. */
static inline void wgp_next(ptrdiff_t *row, ptrdiff_t *k, ptrdiff_t rows, ptrdiff_t K,
                            ptrdiff_t pack)
{
    const ptrdiff_t p0 = *row / pack * pack, rb = rows - p0 < pack ? rows - p0 : pack;
    if (++*row < p0 + rb) return;
    *row = p0;
    if (++*k < K) return;
    *k = 0;
    *row = p0 + rb;
}

#endif /* FASTCNN_WG_SEGMENTS_H */
