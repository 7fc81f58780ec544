/* s2d.c: the space-to-depth rewrite of a strided convolution (functional.py's "s2d"): x cut
 * into its SH*SW phases, xs (N, C*SH*SW, H2, W2) with
 *     xs[n][(c*SH + a)*SW + b][i][j] = x[n][c][i*SH + a - PH][j*SW + b - PW]   (0 outside x),
 * and the adjoint that folds the phases' gradient dxs back into dx (each cell of x lies in one
 * phase; cells past the phases' frame get 0: no output reads them). In NumPy each was a
 * zero-fill, a window copy and a transposing copy of a fresh array: ~14% of AlexNet conv1's
 * forward+backward in double at 1 thread (perf). One threaded pass each here. */
#include "fastcnn.h"
#include "parallel.h"

/* The first j with j*S + b - P >= lo, clamped to [0, n]: ceil((lo + P - b) / S). */
static ptrdiff_t s2d_first(ptrdiff_t lo, ptrdiff_t S, ptrdiff_t b, ptrdiff_t P, ptrdiff_t n)
{
    ptrdiff_t d = lo + P - b;
    ptrdiff_t j = d <= 0 ? 0 : (d + S - 1) / S;
    return j < n ? j : n;
}

/* The columns [lo, hi) of phase b whose x column j*S + b - P lies in [0, W). */
static void s2d_columns(ptrdiff_t b, ptrdiff_t S, ptrdiff_t P, ptrdiff_t W, ptrdiff_t W2,
                        ptrdiff_t *lo, ptrdiff_t *hi)
{
    *lo = s2d_first(0, S, b, P, W2);
    *hi = s2d_first(W, S, b, P, W2);
    if (*hi < *lo) *hi = *lo;
}

/* One row of x and its SW phase rows (phase b at d + b*stride): x row -> phases (gather) or back
 * (scatter), the columns every phase has ([J0, J1): phase 0 starts last, phase SW-1 ends first)
 * in one interleaved pass that GCC vectorises for the study's strides 2 and 4, the rest per
 * phase; phase cells outside x are 0 (gather), x cells past the phases 0 (scatter). */
#define FC_S2D_ROW(REAL, sfx)                                                                      \
    static void s2d_row_##sfx(REAL *restrict d, ptrdiff_t stride, REAL *restrict row,              \
                              ptrdiff_t W, ptrdiff_t SW, ptrdiff_t PW, ptrdiff_t W2,               \
                              int to_phases)                                                       \
    {                                                                                              \
        ptrdiff_t J0, J1, lo, hi;                                                                  \
        s2d_columns(0, SW, PW, W, W2, &J0, &hi);                                                   \
        s2d_columns(SW - 1, SW, PW, W, W2, &lo, &J1);                                              \
        if (J1 < J0) J1 = J0;                                                                      \
        if (!to_phases) /* x cells no phase column holds: past the frame */                        \
            for (ptrdiff_t s = W2 * SW - PW < 0 ? 0 : W2 * SW - PW; s < W; ++s) row[s] = 0;        \
        for (ptrdiff_t b = 0; b < SW; ++b) {                                                       \
            REAL *p = d + b * stride;                                                              \
            const ptrdiff_t o = b - PW;   /* phase column j is x column j*SW + o */                \
            s2d_columns(b, SW, PW, W, W2, &lo, &hi);                                               \
            const ptrdiff_t a1 = J0 < hi ? J0 : hi, b0 = J1 > lo ? J1 : lo;                        \
            if (to_phases) {                                                                       \
                for (ptrdiff_t j = 0; j < lo; ++j) p[j] = 0;                                       \
                for (ptrdiff_t j = lo; j < a1; ++j) p[j] = row[j * SW + o];                        \
                for (ptrdiff_t j = b0; j < hi; ++j) p[j] = row[j * SW + o];                        \
                for (ptrdiff_t j = hi; j < W2; ++j) p[j] = 0;                                      \
            } else {                                                                               \
                for (ptrdiff_t j = lo; j < a1; ++j) row[j * SW + o] = p[j];                        \
                for (ptrdiff_t j = b0; j < hi; ++j) row[j * SW + o] = p[j];                        \
            }                                                                                      \
        }                                                                                          \
        if (SW == 4 && to_phases) {                                                                \
            for (ptrdiff_t j = J0; j < J1; ++j) {                                                  \
                d[j] = row[4 * j - PW];                                                            \
                d[stride + j] = row[4 * j + 1 - PW];                                               \
                d[2 * stride + j] = row[4 * j + 2 - PW];                                           \
                d[3 * stride + j] = row[4 * j + 3 - PW];                                           \
            }                                                                                      \
        } else if (SW == 4) {                                                                      \
            for (ptrdiff_t j = J0; j < J1; ++j) {                                                  \
                row[4 * j - PW] = d[j];                                                            \
                row[4 * j + 1 - PW] = d[stride + j];                                               \
                row[4 * j + 2 - PW] = d[2 * stride + j];                                           \
                row[4 * j + 3 - PW] = d[3 * stride + j];                                           \
            }                                                                                      \
        } else if (SW == 2 && to_phases) {                                                         \
            for (ptrdiff_t j = J0; j < J1; ++j) {                                                  \
                d[j] = row[2 * j - PW];                                                            \
                d[stride + j] = row[2 * j + 1 - PW];                                               \
            }                                                                                      \
        } else if (SW == 2) {                                                                      \
            for (ptrdiff_t j = J0; j < J1; ++j) {                                                  \
                row[2 * j - PW] = d[j];                                                            \
                row[2 * j + 1 - PW] = d[stride + j];                                               \
            }                                                                                      \
        } else {                                                                                   \
            for (ptrdiff_t b = 0; b < SW; ++b)                                                     \
                for (ptrdiff_t j = J0; j < J1; ++j) {                                              \
                    if (to_phases) d[b * stride + j] = row[j * SW + b - PW];                       \
                    else row[j * SW + b - PW] = d[b * stride + j];                                 \
                }                                                                                  \
        }                                                                                          \
    }

/* Both walk x row by row, in order (the hardware prefetchers follow one stream; the gather
 * that walked each phase plane read x at a stride of SH rows, SW times over, and waited on
 * memory: 6% of AlexNet conv1's forward+backward in double, perf), one unit of work being a
 * phase row i of one (image, channel): x rows i*SH + a - PH, a < SH. */
#define FC_S2D(REAL, sfx)                                                                          \
    FC_S2D_ROW(REAL, sfx)                                                                          \
    static void s2d_walk_##sfx(REAL *xs, REAL *x, ptrdiff_t N, ptrdiff_t C, ptrdiff_t H,           \
                               ptrdiff_t W, ptrdiff_t SH, ptrdiff_t SW, ptrdiff_t PH,              \
                               ptrdiff_t PW, ptrdiff_t H2, ptrdiff_t W2, int n_threads,            \
                               int to_phases)                                                      \
    {                                                                                              \
        const ptrdiff_t units = N * C * H2, plane = H2 * W2;                                       \
        int nt = fc_clamp_threads(n_threads, units);                                               \
        _Pragma("omp parallel for num_threads(nt) if (nt > 1) schedule(static)")                   \
        for (ptrdiff_t u = 0; u < units; ++u) {                                                    \
            const ptrdiff_t q = u / H2, i = u - q * H2;   /* q = n*C + c */                        \
            REAL *xc = x + q * H * W;                                                              \
            for (ptrdiff_t a = 0; a < SH; ++a) {                                                   \
                REAL *d = xs + (q * SH + a) * SW * plane + i * W2;   /* phase (a, 0), row i */     \
                const ptrdiff_t r = i * SH + a - PH;                                               \
                if (r >= 0 && r < H) {                                                             \
                    s2d_row_##sfx(d, plane, xc + r * W, W, SW, PW, W2, to_phases);                 \
                } else if (to_phases) {                                                            \
                    for (ptrdiff_t b = 0; b < SW; ++b)                                             \
                        for (ptrdiff_t j = 0; j < W2; ++j) d[b * plane + j] = 0;                   \
                }                                                                                  \
            }                                                                                      \
            /* scatter: x rows past the phases' frame (no output reads them) get 0; the last       \
             * unit of each (image, channel) clears them */                                        \
            if (!to_phases && i == H2 - 1)                                                         \
                for (ptrdiff_t r = H2 * SH - PH < 0 ? 0 : H2 * SH - PH; r < H; ++r)                \
                    for (ptrdiff_t s = 0; s < W; ++s) xc[r * W + s] = 0;                           \
        }                                                                                          \
    }                                                                                              \
                                                                                                   \
    void fc_s2d_gather_##sfx(REAL *xs, const REAL *x, ptrdiff_t N, ptrdiff_t C, ptrdiff_t H,       \
                             ptrdiff_t W, ptrdiff_t SH, ptrdiff_t SW, ptrdiff_t PH, ptrdiff_t PW,  \
                             ptrdiff_t H2, ptrdiff_t W2, int n_threads)                            \
    {                                                                                              \
        /* the walk reads x only in this direction */                                              \
        s2d_walk_##sfx(xs, (REAL *)x, N, C, H, W, SH, SW, PH, PW, H2, W2, n_threads, 1);           \
    }                                                                                              \
                                                                                                   \
    void fc_s2d_scatter_##sfx(REAL *dx, const REAL *dxs, ptrdiff_t N, ptrdiff_t C, ptrdiff_t H,    \
                              ptrdiff_t W, ptrdiff_t SH, ptrdiff_t SW, ptrdiff_t PH,               \
                              ptrdiff_t PW, ptrdiff_t H2, ptrdiff_t W2, int n_threads)             \
    {                                                                                              \
        if (H2 <= 0) { /* no phase rows, no unit of the walk: every x cell is past the frame */   \
            for (ptrdiff_t i = 0; i < N * C * H * W; ++i) dx[i] = 0;                               \
            return;                                                                                \
        }                                                                                          \
        /* the walk reads dxs only in this direction */                                            \
        s2d_walk_##sfx((REAL *)dxs, dx, N, C, H, W, SH, SW, PH, PW, H2, W2, n_threads, 0);         \
    }

FC_S2D(float, f32)
FC_S2D(double, f64)
