/* winograd4_impl.h: type-generic body of the F(4x4,3x3) Winograd kernels (Lavin & Gray,
 * arXiv:1509.09308; interpolation points 0, 1, -1, 1/2, -2, inf), included by winograd4.c once per
 * dtype with REAL, FN(name), GEMM defined.
 * y = A^T [(G g G^T) .* (B^T d B)] A per 6x6 input tile d and 4x4 output tile; the elementwise
 * product over channels is 36 GEMMs on planes xi = 6*row + col of (channels, tiles of a block).
 * Backward-data is this forward run on dy with the flipped, transposed kernel (a 3x3 stride-1
 * convolution's adjoint is one), backward-weights is the adjoint dg = G^T [(A dy A^T) .* V] G
 * summed over tiles. Against F(2x2,3x3): 36 instead of 64 transformed values per 16 outputs, so
 * both the GEMM work and the transformed data a block moves shrink by 44%. */
#include "wg_segments.h"

/* The 1-D transforms (Toom-Cook at the points 0, 1, -1, 1/2, -2 and infinity) and the adjoints
 * backward-weights needs, as macros on scalars so they stay inside the vectorised loops. Lavin's
 * points 0, +-1, +-2 give float32 errors twice as large (measured: 5e-6 vs 2.5e-6 of the output
 * range over 128 channels, 1.7e-5 vs < 1e-5 for 384), the choice Barabasz et al. (2018)
 * recommend. B^T (6x6) on d0..d5: */
#define WG4_BT(o, d0, d1, d2, d3, d4, d5)                                                     \
    do {                                                                                      \
        o[0] = d0 + (REAL)1.5 * (d3 - d1) - (REAL)2 * d2 + d4;                                \
        o[1] = (REAL)0.5 * d2 + (REAL)2.5 * d3 + d4 - d1;                                     \
        o[2] = d1 - (REAL)2.5 * d2 + (REAL)0.5 * d3 + d4;                                     \
        o[3] = (REAL)2 * (d3 - d1) - d2 + d4;                                                 \
        o[4] = (REAL)0.5 * (d1 - d3) - d2 + d4;                                               \
        o[5] = d1 + (REAL)1.5 * (d4 - d2) - (REAL)2 * d3 + d5;                                \
    } while (0)

/* A^T (4x6) on m0..m5 */
#define WG4_AT(o, m0, m1, m2, m3, m4, m5)                                                     \
    do {                                                                                      \
        REAL p_ = m1 + m2, q_ = m1 - m2;                                                      \
        o[0] = m0 + p_ + m3 + m4;                                                             \
        o[1] = q_ + (REAL)0.5 * m3 - (REAL)2 * m4;                                            \
        o[2] = p_ + (REAL)0.25 * m3 + (REAL)4 * m4;                                           \
        o[3] = q_ + (REAL)0.125 * m3 - (REAL)8 * m4 + m5;                                     \
    } while (0)

/* A (6x4), the adjoint of A^T, on e0..e3 */
#define WG4_A(o, e0, e1, e2, e3)                                                              \
    do {                                                                                      \
        REAL ev_ = e0 + e2, od_ = e1 + e3;                                                    \
        o[0] = e0;                                                                            \
        o[1] = ev_ + od_;                                                                     \
        o[2] = ev_ - od_;                                                                     \
        o[3] = e0 + (REAL)0.5 * e1 + (REAL)0.25 * e2 + (REAL)0.125 * e3;                      \
        o[4] = e0 - (REAL)2 * e1 + (REAL)4 * e2 - (REAL)8 * e3;                               \
        o[5] = e3;                                                                            \
    } while (0)

/* G (6x3) on g0..g2 */
#define WG4_G(o, g0, g1, g2)                                                                  \
    do {                                                                                      \
        o[0] = g0;                                                                            \
        o[1] = (g0 + g1 + g2) / (REAL)3;                                                      \
        o[2] = (g1 - g0 - g2) / (REAL)3;                                                      \
        o[3] = -((REAL)16 * g0 + (REAL)8 * g1 + (REAL)4 * g2) / (REAL)15;                     \
        o[4] = (g0 - (REAL)2 * g1 + (REAL)4 * g2) / (REAL)15;                                 \
        o[5] = g2;                                                                            \
    } while (0)

/* G^T (3x6), the adjoint of G, on v0..v5 */
#define WG4_GT(o, v0, v1, v2, v3, v4, v5)                                                     \
    do {                                                                                      \
        o[0] = v0 + (v1 - v2) / (REAL)3 + (v4 - (REAL)16 * v3) / (REAL)15;                    \
        o[1] = (v1 + v2) / (REAL)3 - ((REAL)8 * v3 + (REAL)2 * v4) / (REAL)15;                \
        o[2] = (v1 - v2) / (REAL)3 + ((REAL)4 * (v4 - v3)) / (REAL)15 + v5;                   \
    } while (0)

/* U[xi][oc][c] = (G g G^T)[xi] for every (oc, c) of w (OC, C, 3, 3). */
static void FN(wg4_weight_transform)(REAL *restrict U, const REAL *restrict w, ptrdiff_t OC,
                                     ptrdiff_t C)
{
    const ptrdiff_t plane = OC * C;
    for (ptrdiff_t q = 0; q < plane; ++q) {
        const REAL *g = w + q * 9;
        REAL t[6][3], col[6], u[6];
        for (int j = 0; j < 3; ++j) {
            WG4_G(col, g[j], g[3 + j], g[6 + j]);
            for (int i = 0; i < 6; ++i) t[i][j] = col[i];
        }
        for (int i = 0; i < 6; ++i) {
            WG4_G(u, t[i][0], t[i][1], t[i][2]);
            for (int k = 0; k < 6; ++k) U[(i * 6 + k) * plane + q] = u[k];
        }
    }
}

/* The transforms below run over whole blocks of tiles, one 1-D transform per loop over the
 * block's tiles j (contiguous planes of Tb in the scratch rb): short, independent loop bodies the
 * compiler vectorises whatever the image width. (Transforming tile row segments directly from x
 * left 14x14 images with 4-tile segments: scalar code, twice the time.) */

/* The 36 raw inputs of len tiles of one tile row segment of the plane xc (H, W), inputs starting
 * at row ih0, column iw0 + 4j (either may be negative: padding; or run past the plane:
 * cropping), into planes P[r*6 + k][j] (Tb apart); cells outside the plane are 0. Only the
 * tiles at the ends of a row reach into the padding: they alone test their columns. */
static void FN(wg4_gather_segment)(REAL *restrict P, ptrdiff_t Tb, const REAL *restrict xc,
                                   ptrdiff_t H, ptrdiff_t W, ptrdiff_t ih0, ptrdiff_t iw0,
                                   ptrdiff_t len)
{
    /* tiles [jlo, jhi) have all six columns inside the plane */
    ptrdiff_t jlo = iw0 < 0 ? (3 - iw0) / 4 : 0;
    ptrdiff_t jhi = W - 6 - iw0 >= 0 ? (W - 6 - iw0) / 4 + 1 : 0;
    if (jhi > len) jhi = len;
    if (jlo > jhi) jlo = jhi;
    for (int r = 0; r < 6; ++r) {
        const ptrdiff_t ih = ih0 + r;
        REAL *p = P + (r * 6) * Tb;
        if (ih < 0 || ih >= H) {
            for (int k = 0; k < 6; ++k)
                for (ptrdiff_t j = 0; j < len; ++j) p[k * Tb + j] = 0;
            continue;
        }
        const REAL *row = xc + ih * W;
        for (ptrdiff_t j = 0; j < len; ++j) {
            const ptrdiff_t iw = iw0 + 4 * j;
            if (j >= jlo && j < jhi) {
                for (int k = 0; k < 6; ++k) p[k * Tb + j] = row[iw + k];
            } else {
                for (int k = 0; k < 6; ++k)
                    p[k * Tb + j] = (iw + k >= 0 && iw + k < W) ? row[iw + k] : (REAL)0;
            }
        }
    }
}

/* Transformed input of the tiles [b0, b1) into V (36 planes PV apart of (C, Tb)); rb: 36*Tb. */
static void FN(wg4_input_block)(REAL *restrict V, REAL *restrict rb, const REAL *restrict x,
                                ptrdiff_t b0, ptrdiff_t b1, ptrdiff_t Tb, ptrdiff_t PV,
                                ptrdiff_t C, ptrdiff_t H, ptrdiff_t W, ptrdiff_t PH,
                                ptrdiff_t PW, ptrdiff_t TH, ptrdiff_t TW)
{
    const ptrdiff_t nb = b1 - b0;
    REAL *restrict P = rb;
    for (ptrdiff_t c = 0; c < C; ++c) {
        WG_SEGMENTS(b0, b1, TH, TW, {
            FN(wg4_gather_segment)(P + (t - b0), Tb, x + (n * C + c) * H * W, H, W,
                                   4 * ti - PH, 4 * tj0 - PW, len);
        });
        for (int k = 0; k < 6; ++k) {   /* B^T d, in place, column k of every tile */
            REAL *p = P + k * Tb;
#pragma omp simd
            for (ptrdiff_t j = 0; j < nb; ++j) {
                REAL o[6];
                WG4_BT(o, p[j], p[6 * Tb + j], p[12 * Tb + j], p[18 * Tb + j], p[24 * Tb + j],
                       p[30 * Tb + j]);
                for (int i = 0; i < 6; ++i) p[i * 6 * Tb + j] = o[i];
            }
        }
        for (int i = 0; i < 6; ++i) {   /* (B^T d) B: row i of every tile into V */
            const REAL *p = P + i * 6 * Tb;
            REAL *v = V + (i * 6) * PV + c * Tb;
#pragma omp simd
            for (ptrdiff_t j = 0; j < nb; ++j) {
                REAL o[6];
                WG4_BT(o, p[j], p[Tb + j], p[2 * Tb + j], p[3 * Tb + j], p[4 * Tb + j],
                       p[5 * Tb + j]);
                for (int k = 0; k < 6; ++k) v[k * PV + j] = o[k];
            }
        }
    }
}

/* y tiles of [b0, b1) = A^T M A (+ bias, ReLU), clipped to (OH, OW). Per output channel the
 * 16 outputs of every tile go to o (16 planes of Tb in rb, via S: 24 planes), then the stores go
 * segment by segment, row by row. rb: 40*Tb. */
static void FN(wg4_output_block)(REAL *restrict y, REAL *restrict rb, const REAL *restrict M,
                                 ptrdiff_t PM, const REAL *bias, int relu, ptrdiff_t b0,
                                 ptrdiff_t b1, ptrdiff_t Tb, ptrdiff_t OC, ptrdiff_t OH,
                                 ptrdiff_t OW, ptrdiff_t TH, ptrdiff_t TW)
{
    const ptrdiff_t nb = b1 - b0;
    REAL *restrict o = rb, *restrict S = rb + 16 * Tb;
    for (ptrdiff_t oc = 0; oc < OC; ++oc) {
        const REAL b = bias ? bias[oc] : (REAL)0;
        for (int k = 0; k < 6; ++k) {   /* A^T m: column k of every tile, S[i*6 + k] */
            const REAL *m = M + k * PM + oc * Tb;
#pragma omp simd
            for (ptrdiff_t j = 0; j < nb; ++j) {
                REAL v[4];
                WG4_AT(v, m[j], m[6 * PM + j], m[12 * PM + j], m[18 * PM + j], m[24 * PM + j],
                       m[30 * PM + j]);
                for (int i = 0; i < 4; ++i) S[(i * 6 + k) * Tb + j] = v[i];
            }
        }
        for (int i = 0; i < 4; ++i) {   /* (A^T m) A: row i, plus the bias */
            const REAL *s = S + i * 6 * Tb;
#pragma omp simd
            for (ptrdiff_t j = 0; j < nb; ++j) {
                REAL v[4];
                WG4_AT(v, s[j], s[Tb + j], s[2 * Tb + j], s[3 * Tb + j], s[4 * Tb + j],
                       s[5 * Tb + j]);
                for (int k = 0; k < 4; ++k) o[(i * 4 + k) * Tb + j] = v[k] + b;
            }
        }
        if (relu) {   /* max(v, 0) with NaN propagating */
            for (int xi = 0; xi < 16; ++xi) {
                REAL *a = o + xi * Tb;
#pragma omp simd
                for (ptrdiff_t j = 0; j < nb; ++j)
                    a[j] = a[j] > 0 ? a[j] : (a[j] != a[j] ? a[j] : (REAL)0);
            }
        }
        WG_SEGMENTS(b0, b1, TH, TW, {
            const ptrdiff_t q = t - b0, ow0 = 4 * tj0;
            /* tiles whose four output columns all exist; then at most one partial tile */
            ptrdiff_t full = (OW - ow0) / 4;
            if (full > len) full = len;
            const ptrdiff_t rest = full < len ? OW - ow0 - 4 * full : 0;
            for (int i = 0; i < 4 && 4 * ti + i < OH; ++i) {
                REAL *dst = y + ((n * OC + oc) * OH + 4 * ti + i) * OW + ow0;
                const REAL *z0 = o + (i * 4) * Tb + q, *z1 = z0 + Tb, *z2 = z1 + Tb;
                const REAL *z3 = z2 + Tb;
                for (ptrdiff_t j = 0; j < full; ++j) {
                    dst[4 * j] = z0[j];
                    dst[4 * j + 1] = z1[j];
                    dst[4 * j + 2] = z2[j];
                    dst[4 * j + 3] = z3[j];
                }
                for (ptrdiff_t k = 0; k < rest; ++k) dst[4 * full + k] = o[(i * 4 + k) * Tb + q + full];
            }
        });
    }
}

/* dYh[xi][oc][t - b0] = (A dy_t A^T)[xi], dy cells outside (OH, OW) being 0; when db is not NULL
 * the block's sum of dy is added to it (every cell is in exactly one tile). Per output channel
 * the tiles' 16 dy cells are gathered into e (16 planes of Tb in rb), then transformed via S
 * (24 planes). rb: 40*Tb. */
static void FN(wg4_grad_block)(REAL *restrict dYh, ptrdiff_t PM, REAL *restrict db,
                               REAL *restrict rb, const REAL *restrict dy, ptrdiff_t b0,
                               ptrdiff_t b1, ptrdiff_t Tb, ptrdiff_t OC, ptrdiff_t OH,
                               ptrdiff_t OW, ptrdiff_t TH, ptrdiff_t TW)
{
    const ptrdiff_t nb = b1 - b0;
    REAL *restrict e = rb, *restrict S = rb + 16 * Tb;
    for (ptrdiff_t oc = 0; oc < OC; ++oc) {
        WG_SEGMENTS(b0, b1, TH, TW, {
            const ptrdiff_t q = t - b0, ow0 = 4 * tj0;
            ptrdiff_t full = (OW - ow0) / 4;
            if (full > len) full = len;
            const ptrdiff_t rest = full < len ? OW - ow0 - 4 * full : 0;
            for (int i = 0; i < 4; ++i) {
                REAL *z0 = e + (i * 4) * Tb + q, *z1 = z0 + Tb, *z2 = z1 + Tb, *z3 = z2 + Tb;
                if (4 * ti + i >= OH) {
                    for (ptrdiff_t j = 0; j < len; ++j) z0[j] = z1[j] = z2[j] = z3[j] = 0;
                    continue;
                }
                const REAL *src = dy + ((n * OC + oc) * OH + 4 * ti + i) * OW + ow0;
                for (ptrdiff_t j = 0; j < full; ++j) {
                    z0[j] = src[4 * j];
                    z1[j] = src[4 * j + 1];
                    z2[j] = src[4 * j + 2];
                    z3[j] = src[4 * j + 3];
                }
                if (full < len) {
                    REAL *zk[4] = {z0, z1, z2, z3};
                    for (ptrdiff_t k = 0; k < 4; ++k)
                        zk[k][full] = k < rest ? src[4 * full + k] : (REAL)0;
                }
            }
        });
        if (db) {
            REAL sum = 0;
            for (int xi = 0; xi < 16; ++xi) {
                const REAL *z = e + xi * Tb;
#pragma omp simd reduction(+ : sum)
                for (ptrdiff_t j = 0; j < nb; ++j) sum += z[j];
            }
            db[oc] += sum;
        }
        for (int k = 0; k < 4; ++k) {   /* A e: column k of every tile, S[i*4 + k] */
            const REAL *z = e + k * Tb;
#pragma omp simd
            for (ptrdiff_t j = 0; j < nb; ++j) {
                REAL v[6];
                WG4_A(v, z[j], z[4 * Tb + j], z[8 * Tb + j], z[12 * Tb + j]);
                for (int i = 0; i < 6; ++i) S[(i * 4 + k) * Tb + j] = v[i];
            }
        }
        for (int i = 0; i < 6; ++i) {   /* (A e) A^T: row i into dYh */
            const REAL *s = S + i * 4 * Tb;
            REAL *out = dYh + (i * 6) * PM + oc * Tb;
#pragma omp simd
            for (ptrdiff_t j = 0; j < nb; ++j) {
                REAL v[6];
                WG4_A(v, s[j], s[Tb + j], s[2 * Tb + j], s[3 * Tb + j]);
                for (int k = 0; k < 6; ++k) out[k * PM + j] = v[k];
            }
        }
    }
}

/* The forward pass (also backward-data's): y (N, OC, OH, OW) from x (N, C, H, W) and w
 * (OC, C, 3, 3), padding PH, PW (negative: cropping), OH = H + 2*PH - 2. */
static void FN(wg4_forward)(REAL *y, REAL *workspace, const REAL *x, const REAL *weight,
                            const REAL *bias, ptrdiff_t N, ptrdiff_t C, ptrdiff_t H, ptrdiff_t W,
                            ptrdiff_t OC, ptrdiff_t PH, ptrdiff_t PW, int relu, int n_threads)
{
    const ptrdiff_t OH = H + 2 * PH - 2, OW = W + 2 * PW - 2;
    const ptrdiff_t TH = wg4_ceil4(OH), TW = wg4_ceil4(OW), T = N * TH * TW;
    const ptrdiff_t Tb = wg4_block(C, OC), PV = wg4_plane(C, Tb), PM = wg4_plane(OC, Tb);
    const ptrdiff_t per = wg4_forward_per_thread(C, OC);
    REAL *U = workspace;
    if (N <= 0 || OH <= 0 || OW <= 0) return;
    /* tiles, not images, are split: a batch smaller than the thread count still uses them all */
    int nt = fc_clamp_threads(n_threads, T);
    FN(wg4_weight_transform)(U, weight, OC, C);   /* before the region: no barrier inside */
    int blas_prev = fc_blas_threads_begin(nt);
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        int tid = fc_thread_id(), nth = fc_thread_count();
        REAL *V = workspace + 36 * OC * C + (ptrdiff_t)tid * per;
        REAL *M = V + 36 * PV;
        REAL *rb = M + 36 * PM;   /* transform scratch */
        ptrdiff_t t0 = T * tid / nth, t1 = T * (tid + 1) / nth;
        for (ptrdiff_t b0 = t0; b0 < t1; b0 += Tb) {
            ptrdiff_t b1 = b0 + Tb < t1 ? b0 + Tb : t1, nb = b1 - b0;
            FN(wg4_input_block)(V, rb, x, b0, b1, Tb, PV, C, H, W, PH, PW, TH, TW);
            for (int xi = 0; xi < 36; ++xi)
                GEMM(0, 0, OC, nb, C, (REAL)1, U + xi * OC * C, C, V + xi * PV, Tb, (REAL)0,
                     M + xi * PM, Tb);
            FN(wg4_output_block)(y, rb, M, PM, bias, relu, b0, b1, Tb, OC, OH, OW, TH, TW);
        }
    }
    fc_blas_threads_end(blas_prev);
}

void FN(fc_conv2d_winograd4_forward)(REAL *y, REAL *workspace, const REAL *x, const REAL *weight,
                                     const REAL *bias, ptrdiff_t N, ptrdiff_t C, ptrdiff_t H,
                                     ptrdiff_t W, ptrdiff_t OC, ptrdiff_t PH, ptrdiff_t PW,
                                     int relu, int n_threads)
{
    FN(wg4_forward)(y, workspace, x, weight, bias, N, C, H, W, OC, PH, PW, relu, n_threads);
}

/* dweight (and dbias) by the adjoint transforms; tiles split over threads, per-thread partial
 * dU reduced in thread order (deterministic). */
static void FN(wg4_backward_weights)(REAL *dweight, REAL *dbias, REAL *workspace, const REAL *dy,
                                     const REAL *x, ptrdiff_t N, ptrdiff_t C, ptrdiff_t H,
                                     ptrdiff_t W, ptrdiff_t OC, ptrdiff_t PH, ptrdiff_t PW,
                                     int n_threads)
{
    const ptrdiff_t OH = H + 2 * PH - 2, OW = W + 2 * PW - 2;
    const ptrdiff_t TH = wg4_ceil4(OH), TW = wg4_ceil4(OW), T = N * TH * TW;
    const ptrdiff_t Tb = wg4_block(C, OC), UC = 36 * OC * C;
    const ptrdiff_t PV = wg4_plane(C, Tb), PM = wg4_plane(OC, Tb);
    const ptrdiff_t per = wg4_weights_per_thread(C, OC);
    REAL *U = workspace;
    int nt = fc_clamp_threads(n_threads, T);
    int used = 1;
    int blas_prev = fc_blas_threads_begin(nt);
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        int tid = fc_thread_id(), nth = fc_thread_count();
        if (tid == 0) used = nth;
        REAL *dWp = workspace + UC + (ptrdiff_t)tid * per;   /* partial dU, then partial db */
        REAL *dbp = dWp + UC;
        REAL *V = dbp + OC;
        REAL *dYh = V + 36 * PV;
        REAL *rb = dYh + 36 * PM;
        ptrdiff_t t0 = T * tid / nth, t1 = T * (tid + 1) / nth;
        for (ptrdiff_t oc = 0; oc < OC; ++oc) dbp[oc] = 0;
        for (ptrdiff_t i = 0; i < UC; ++i) dWp[i] = 0;
        for (ptrdiff_t b0 = t0; b0 < t1; b0 += Tb) {
            ptrdiff_t b1 = b0 + Tb < t1 ? b0 + Tb : t1, nb = b1 - b0;
            FN(wg4_input_block)(V, rb, x, b0, b1, Tb, PV, C, H, W, PH, PW, TH, TW);
            FN(wg4_grad_block)(dYh, PM, dbias ? dbp : (REAL *)0, rb, dy, b0, b1, Tb, OC, OH, OW,
                               TH, TW);
            /* dU partial (OC, C) += dY^ (OC, nb) @ V^T (nb, C) */
            for (int xi = 0; xi < 36; ++xi)
                GEMM(0, 1, OC, C, nb, (REAL)1, dYh + xi * PM, Tb, V + xi * PV, Tb, (REAL)1,
                     dWp + xi * OC * C, C);
        }
#pragma omp barrier
#pragma omp for schedule(static)
        for (ptrdiff_t i = 0; i < UC; ++i) {
            REAL s = workspace[UC + i];
            for (int t = 1; t < nth; ++t) s += workspace[UC + t * per + i];
            U[i] = s;
        }
#pragma omp for schedule(static)
        for (ptrdiff_t q = 0; q < OC * C; ++q) {   /* dw = G^T dU G */
            REAL Z[3][6], col[3], g[3];
            for (int k = 0; k < 6; ++k) {
                const REAL *u = U + k * OC * C + q;
                WG4_GT(col, u[0], u[6 * OC * C], u[12 * OC * C], u[18 * OC * C],
                       u[24 * OC * C], u[30 * OC * C]);
                for (int i = 0; i < 3; ++i) Z[i][k] = col[i];
            }
            for (int i = 0; i < 3; ++i) {
                WG4_GT(g, Z[i][0], Z[i][1], Z[i][2], Z[i][3], Z[i][4], Z[i][5]);
                for (int k = 0; k < 3; ++k) dweight[q * 9 + i * 3 + k] = g[k];
            }
        }
    }
    if (dbias) {
        for (ptrdiff_t oc = 0; oc < OC; ++oc) {
            REAL s = workspace[UC + UC + oc];
            for (int t = 1; t < used; ++t) s += workspace[UC + t * per + UC + oc];
            dbias[oc] = s;
        }
    }
    fc_blas_threads_end(blas_prev);
}

void FN(fc_conv2d_winograd4_backward)(REAL *dx, REAL *dweight, REAL *dbias, REAL *workspace,
                                      const REAL *dy, const REAL *x, const REAL *weight,
                                      ptrdiff_t N, ptrdiff_t C, ptrdiff_t H, ptrdiff_t W,
                                      ptrdiff_t OC, ptrdiff_t PH, ptrdiff_t PW, int n_threads)
{
    const ptrdiff_t OH = H + 2 * PH - 2, OW = W + 2 * PW - 2;
    if (N <= 0) {
        if (dweight) for (ptrdiff_t i = 0; i < OC * C * 9; ++i) dweight[i] = 0;
        if (dbias) for (ptrdiff_t i = 0; i < OC; ++i) dbias[i] = 0;
        return;
    }
    if (dweight)
        FN(wg4_backward_weights)(dweight, dbias, workspace, dy, x, N, C, H, W, OC, PH, PW,
                                 n_threads);
    if (!dx) return;
    /* dx = dy (N, OC, OH, OW) convolved with wf[c][oc] = w[oc][c] rotated 180 degrees, padding
     * 2 - P: its output is (H, W) again. wf goes first in the workspace, the forward's after. */
    REAL *wf = workspace;
    for (ptrdiff_t oc = 0; oc < OC; ++oc)
        for (ptrdiff_t c = 0; c < C; ++c)
            for (int k = 0; k < 9; ++k) wf[(c * OC + oc) * 9 + k] = weight[(oc * C + c) * 9 + 8 - k];
    FN(wg4_forward)(dx, workspace + 9 * OC * C, dy, wf, (const REAL *)0, N, OC, OH, OW, C,
                    2 - PH, 2 - PW, 0, n_threads);
}
