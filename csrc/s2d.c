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

#define FC_S2D(REAL, sfx)                                                                       \
    void fc_s2d_gather_##sfx(REAL *xs, const REAL *x, ptrdiff_t N, ptrdiff_t C, ptrdiff_t H,    \
                             ptrdiff_t W, ptrdiff_t SH, ptrdiff_t SW, ptrdiff_t PH, ptrdiff_t PW,\
                             ptrdiff_t H2, ptrdiff_t W2, int n_threads)                         \
    {                                                                                           \
        const ptrdiff_t planes = N * C * SH * SW;                                               \
        int nt = fc_clamp_threads(n_threads, planes);                                           \
        _Pragma("omp parallel for num_threads(nt) if (nt > 1) schedule(static)")                \
        for (ptrdiff_t q = 0; q < planes; ++q) {   /* q = (n*C + c)*SH*SW + a*SW + b */         \
            const ptrdiff_t b = q % SW, a = q / SW % SH;                                        \
            const REAL *xc = x + q / (SH * SW) * H * W;                                         \
            REAL *dst = xs + q * H2 * W2;                                                       \
            /* columns j of the phase whose x column j*SW + b - PW lies in [0, W) */            \
            const ptrdiff_t j0 = s2d_first(0, SW, b, PW, W2), j1 = s2d_first(W, SW, b, PW, W2); \
            for (ptrdiff_t i = 0; i < H2; ++i, dst += W2) {                                     \
                const ptrdiff_t r = i * SH + a - PH;                                            \
                if (r < 0 || r >= H) {                                                          \
                    for (ptrdiff_t j = 0; j < W2; ++j) dst[j] = 0;                              \
                    continue;                                                                   \
                }                                                                               \
                const REAL *src = xc + r * W + b - PW;                                          \
                for (ptrdiff_t j = 0; j < j0; ++j) dst[j] = 0;                                  \
                /* the study's strides as constants, which GCC vectorises (float, AlexNet    \
                 * conv1's stride 4: 0.45 of the time per gather) */                            \
                if (SW == 4)                                                                    \
                    for (ptrdiff_t j = j0; j < j1; ++j) dst[j] = src[j * 4];                    \
                else if (SW == 2)                                                               \
                    for (ptrdiff_t j = j0; j < j1; ++j) dst[j] = src[j * 2];                    \
                else                                                                            \
                    for (ptrdiff_t j = j0; j < j1; ++j) dst[j] = src[j * SW];                   \
                for (ptrdiff_t j = j1; j < W2; ++j) dst[j] = 0;                                 \
            }                                                                                   \
        }                                                                                       \
    }                                                                                           \
                                                                                                \
    void fc_s2d_scatter_##sfx(REAL *dx, const REAL *dxs, ptrdiff_t N, ptrdiff_t C, ptrdiff_t H, \
                              ptrdiff_t W, ptrdiff_t SH, ptrdiff_t SW, ptrdiff_t PH,            \
                              ptrdiff_t PW, ptrdiff_t H2, ptrdiff_t W2, int n_threads)          \
    {                                                                                           \
        const ptrdiff_t images = N * C;                                                         \
        int nt = fc_clamp_threads(n_threads, images);                                           \
        _Pragma("omp parallel for num_threads(nt) if (nt > 1) schedule(static)")                \
        for (ptrdiff_t q = 0; q < images; ++q) {                                                \
            for (ptrdiff_t r = 0; r < H; ++r) {                                                 \
                REAL *row = dx + (q * H + r) * W;                                               \
                const ptrdiff_t fr = r + PH;   /* the frame row: row fr / SH of phase fr % SH */\
                if (fr >= H2 * SH) {                                                            \
                    for (ptrdiff_t s = 0; s < W; ++s) row[s] = 0;                               \
                    continue;                                                                   \
                }                                                                               \
                const REAL *src = dxs + ((q * SH + fr % SH) * SW) * H2 * W2 + fr / SH * W2;     \
                for (ptrdiff_t b = 0; b < SW; ++b) {   /* the columns of phase b: every SW-th */\
                    const REAL *phase = src + b * H2 * W2;                                      \
                    ptrdiff_t s = ((b - PW) % SW + SW) % SW, j = (s + PW) / SW;                 \
                    for (; s < W; s += SW, ++j) row[s] = j < W2 ? phase[j] : (REAL)0;           \
                }                                                                               \
            }                                                                                   \
        }                                                                                       \
    }

FC_S2D(float, f32)
FC_S2D(double, f64)
