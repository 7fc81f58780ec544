/* winograd_impl.h: type-generic body of the F(2x2,3x3) Winograd kernels (Lavin & Gray,
 * arXiv:1509.09308), included by winograd.c once per (dtype, instruction set) with REAL, FN(name),
 * GEMM defined.
 * y = A^T [(G g G^T) .* (B^T d B)] A per 4x4 tile d; backward = its adjoints: dd = B [U .* (A dy
 * A^T)] B^T overlap-added into dx, dg = G^T [(A dy A^T) .* V] G summed over tiles. Transformed
 * data: 16 planes xi = 4*row + col of (channels, tiles of a block), so .* is 16 GEMMs. */
#include "wg_segments.h"

/* U[xi][q] = (G g_q G^T)[xi] for the filters q = oc*C + c of w (OC, C, 3, 3); plane = OC*C. */
static void FN(wg_weight_transform)(REAL *restrict U, const REAL *restrict w, ptrdiff_t plane)
{
    REAL g[9][WG_WCHUNK], u[16][WG_WCHUNK];
    for (ptrdiff_t q0 = 0; q0 < plane; q0 += WG_WCHUNK) {
        const ptrdiff_t n = plane - q0 < WG_WCHUNK ? plane - q0 : WG_WCHUNK;
        for (ptrdiff_t j = 0; j < n; ++j)
            for (int k = 0; k < 9; ++k) g[k][j] = w[(q0 + j) * 9 + k];
#pragma omp simd
        for (ptrdiff_t j = 0; j < n; ++j) {
            REAL t[4][3];
            for (int k = 0; k < 3; ++k) {   /* G g: column k */
                const REAL g0 = g[k][j], g1 = g[3 + k][j], g2 = g[6 + k][j];
                t[0][k] = g0;
                t[1][k] = (REAL)0.5 * (g0 + g1 + g2);
                t[2][k] = (REAL)0.5 * (g0 - g1 + g2);
                t[3][k] = g2;
            }
            for (int i = 0; i < 4; ++i) {   /* (G g) G^T: row i */
                const REAL a = t[i][0], b = t[i][1], c = t[i][2];
                u[i * 4 + 0][j] = a;
                u[i * 4 + 1][j] = (REAL)0.5 * (a + b + c);
                u[i * 4 + 2][j] = (REAL)0.5 * (a - b + c);
                u[i * 4 + 3][j] = c;
            }
        }
        for (int xi = 0; xi < 16; ++xi) memcpy(U + xi * plane + q0, u[xi], n * sizeof(REAL));
    }
}

/* dw_q = G^T dU_q G (the adjoint of the above) for the filters of the chunk [q0, q0 + n), n <=
 * WG_WCHUNK, from the partial dU of nparts threads (16 planes each, part apart), summed in
 * thread order (deterministic). */
static void FN(wg_weight_adjoint)(REAL *restrict dw, const REAL *restrict dU, ptrdiff_t plane,
                                  int nparts, ptrdiff_t part, ptrdiff_t q0, ptrdiff_t n)
{
    REAL x[16][WG_WCHUNK], g[9][WG_WCHUNK];
    WG_SUM_PARTIALS(x, 16, dU, plane, nparts, part, q0, n);
#pragma omp simd
    for (ptrdiff_t j = 0; j < n; ++j) {
        REAL Z[3][4];
        for (int k = 0; k < 4; ++k) {   /* G^T X: column k */
            const REAL x0 = x[k][j], x1 = x[4 + k][j], x2 = x[8 + k][j], x3 = x[12 + k][j];
            Z[0][k] = x0 + (REAL)0.5 * (x1 + x2);
            Z[1][k] = (REAL)0.5 * (x1 - x2);
            Z[2][k] = (REAL)0.5 * (x1 + x2) + x3;
        }
        for (int i = 0; i < 3; ++i) {   /* (G^T X) G: row i */
            g[i * 3 + 0][j] = Z[i][0] + (REAL)0.5 * (Z[i][1] + Z[i][2]);
            g[i * 3 + 1][j] = (REAL)0.5 * (Z[i][1] - Z[i][2]);
            g[i * 3 + 2][j] = (REAL)0.5 * (Z[i][1] + Z[i][2]) + Z[i][3];
        }
    }
    for (ptrdiff_t j = 0; j < n; ++j)
        for (int k = 0; k < 9; ++k) dw[(q0 + j) * 9 + k] = g[k][j];
}

/* V[xi][c][j] = (B^T d_j B)[xi] for len tiles whose 4x4 inputs are rows r0..r3, columns
 * 2j..2j+3. (Measured: this one-pass form beats a separate row pass + column pass on short tile
 * rows.) */
static void FN(wg_input_tiles)(REAL *restrict V, ptrdiff_t plane, const REAL *r0, const REAL *r1,
                               const REAL *r2, const REAL *r3, ptrdiff_t len)
{
#pragma omp simd
    for (ptrdiff_t j = 0; j < len; ++j) {
        REAL t[4][4];
        for (int k = 0; k < 4; ++k) {
            REAL d0 = r0[2 * j + k], d1 = r1[2 * j + k], d2 = r2[2 * j + k], d3 = r3[2 * j + k];
            t[0][k] = d0 - d2;
            t[1][k] = d1 + d2;
            t[2][k] = d2 - d1;
            t[3][k] = d1 - d3;
        }
        for (int i = 0; i < 4; ++i) {
            V[(i * 4 + 0) * plane + j] = t[i][0] - t[i][2];
            V[(i * 4 + 1) * plane + j] = t[i][1] + t[i][2];
            V[(i * 4 + 2) * plane + j] = t[i][2] - t[i][1];
            V[(i * 4 + 3) * plane + j] = t[i][1] - t[i][3];
        }
    }
}

/* One tile row segment of the plane xc (H, W): len tiles whose inputs start at row ih0, column
 * iw0 + 2j. Tiles inside the plane's columns are read straight from x (rows outside the plane
 * read zrow, >= 2*len+2 zeros); the few tiles overlapping the left/right padding are gathered
 * into the 4x4 patch with zeros first. No copy of the rows. */
static void FN(wg_input_segment)(REAL *restrict V, ptrdiff_t plane, REAL *restrict patch,
                                 const REAL *zrow, const REAL *xc, ptrdiff_t H, ptrdiff_t W,
                                 ptrdiff_t ih0, ptrdiff_t iw0, ptrdiff_t len)
{
    const REAL *row[4];
    for (int r = 0; r < 4; ++r) {
        ptrdiff_t ih = ih0 + r;
        row[r] = (ih >= 0 && ih < H) ? xc + ih * W : (const REAL *)0;
    }
    /* direct tiles: 0 <= iw0 + 2j and iw0 + 2j + 3 <= W - 1 */
    ptrdiff_t jlo = iw0 < 0 ? (1 - iw0) / 2 : 0;
    ptrdiff_t jhi = W - 4 - iw0 >= 0 ? (W - 4 - iw0) / 2 + 1 : 0;
    if (jhi > len) jhi = len;
    if (jlo > jhi) jlo = jhi;
    if (jhi > jlo) {
        const REAL *p[4];
        for (int r = 0; r < 4; ++r) p[r] = row[r] ? row[r] + iw0 + 2 * jlo : zrow;
        FN(wg_input_tiles)(V + jlo, plane, p[0], p[1], p[2], p[3], jhi - jlo);
    }
    for (ptrdiff_t j = 0; j < len; ++j) {
        if (j == jlo && jhi > jlo) j = jhi;
        if (j >= len) break;
        for (int r = 0; r < 4; ++r) {
            for (int k = 0; k < 4; ++k) {
                ptrdiff_t iw = iw0 + 2 * j + k;
                patch[r * 4 + k] = (row[r] && iw >= 0 && iw < W) ? row[r][iw] : (REAL)0;
            }
        }
        FN(wg_input_tiles)(V + j, plane, patch, patch + 4, patch + 8, patch + 12, 1);
    }
}

/* Transformed input of the tiles [b0, b1) (flattened over images n, tile rows ti, tile columns
 * tj) into V (16, C, Tb). rb: 16 + 2*TW + 2 scratch. */
static void FN(wg_input_block)(REAL *restrict V, REAL *restrict rb, const REAL *restrict x,
                               ptrdiff_t b0, ptrdiff_t b1, ptrdiff_t Tb, ptrdiff_t C, ptrdiff_t H,
                               ptrdiff_t W, ptrdiff_t PH, ptrdiff_t PW, ptrdiff_t TH, ptrdiff_t TW)
{
    const ptrdiff_t plane = wg_plane(C, Tb);
    REAL *patch = rb, *zrow = rb + 16;
    for (ptrdiff_t k = 0; k < 2 * TW + 2; ++k) zrow[k] = 0;
    WG_SEGMENTS(b0, b1, TH, TW, {
        for (ptrdiff_t c = 0; c < C; ++c)
            FN(wg_input_segment)(V + c * Tb + (t - b0), plane, patch, zrow,
                                 x + (n * C + c) * H * W, H, W, 2 * ti - PH, 2 * tj0 - PW, len);
    });
}

/* y tiles of [b0, b1) = A^T M A (+ bias, ReLU), clipped to (OH, OW). Per output channel, one
 * vectorised pass over the whole block into rb (4*Tb), then the stores segment by segment. */
static void FN(wg_output_block)(REAL *restrict y, REAL *restrict rb, const REAL *restrict M,
                                const REAL *bias, int relu, ptrdiff_t b0, ptrdiff_t b1,
                                ptrdiff_t Tb, ptrdiff_t OC, ptrdiff_t OH, ptrdiff_t OW,
                                ptrdiff_t TH, ptrdiff_t TW)
{
    const ptrdiff_t plane = wg_plane(OC, Tb), nb = b1 - b0;
    REAL *restrict o00 = rb, *restrict o01 = rb + Tb;
    REAL *restrict o10 = rb + 2 * Tb, *restrict o11 = rb + 3 * Tb;
    for (ptrdiff_t oc = 0; oc < OC; ++oc) {
        const REAL *m = M + oc * Tb;
        const REAL b = bias ? bias[oc] : (REAL)0;
#pragma omp simd
        for (ptrdiff_t j = 0; j < nb; ++j) {
            REAL s0[4], s1[4];
            for (int k = 0; k < 4; ++k) {
                REAL m0 = m[(0 + k) * plane + j], m1 = m[(4 + k) * plane + j];
                REAL m2 = m[(8 + k) * plane + j], m3 = m[(12 + k) * plane + j];
                s0[k] = m0 + m1 + m2;
                s1[k] = m1 - m2 - m3;
            }
            REAL v00 = s0[0] + s0[1] + s0[2] + b, v01 = s0[1] - s0[2] - s0[3] + b;
            REAL v10 = s1[0] + s1[1] + s1[2] + b, v11 = s1[1] - s1[2] - s1[3] + b;
            if (relu) {  /* max(v, 0) with NaN propagating */
                v00 = v00 > 0 ? v00 : (v00 != v00 ? v00 : (REAL)0);
                v01 = v01 > 0 ? v01 : (v01 != v01 ? v01 : (REAL)0);
                v10 = v10 > 0 ? v10 : (v10 != v10 ? v10 : (REAL)0);
                v11 = v11 > 0 ? v11 : (v11 != v11 ? v11 : (REAL)0);
            }
            o00[j] = v00;
            o01[j] = v01;
            o10[j] = v10;
            o11[j] = v11;
        }
        WG_SEGMENTS(b0, b1, TH, TW, {
            const ptrdiff_t q = t - b0;
            /* tiles whose second output column exists: all but an odd-width row's last */
            const ptrdiff_t full = (2 * (tj0 + len) <= OW) ? len : len - 1;
            REAL *y0 = y + ((n * OC + oc) * OH + 2 * ti) * OW + 2 * tj0;
            for (ptrdiff_t j = 0; j < full; ++j) {
                y0[2 * j] = o00[q + j];
                y0[2 * j + 1] = o01[q + j];
            }
            if (full < len) y0[2 * full] = o00[q + full];
            if (2 * ti + 1 < OH) {
                REAL *y1 = y0 + OW;
                for (ptrdiff_t j = 0; j < full; ++j) {
                    y1[2 * j] = o10[q + j];
                    y1[2 * j + 1] = o11[q + j];
                }
                if (full < len) y1[2 * full] = o10[q + full];
            }
        });
    }
}

/* dYh[xi][oc][t - b0] = (A dy_t A^T)[xi]; dy cells outside (OH, OW) are 0. Per output channel
 * the tiles' four dy cells are first gathered (zero-padded) into rb (4*Tb) segment by segment,
 * then one branch-free vectorised pass over the block transforms them and, when db is not NULL,
 * adds the block's sum of dy (each cell is in exactly one tile) to db. */
static void FN(wg_grad_block)(REAL *restrict dYh, REAL *restrict db, REAL *restrict rb,
                              const REAL *restrict dy,
                              ptrdiff_t b0, ptrdiff_t b1, ptrdiff_t Tb, ptrdiff_t OC,
                              ptrdiff_t OH, ptrdiff_t OW, ptrdiff_t TH, ptrdiff_t TW)
{
    const ptrdiff_t plane = wg_plane(OC, Tb), nb = b1 - b0;
    REAL *restrict a0 = rb, *restrict a1 = rb + Tb;
    REAL *restrict c0 = rb + 2 * Tb, *restrict c1 = rb + 3 * Tb;
    for (ptrdiff_t oc = 0; oc < OC; ++oc) {
        WG_SEGMENTS(b0, b1, TH, TW, {
            const ptrdiff_t q = t - b0;
            const ptrdiff_t full = (2 * (tj0 + len) <= OW) ? len : len - 1;
            const REAL *d0 = dy + ((n * OC + oc) * OH + 2 * ti) * OW + 2 * tj0;
            for (ptrdiff_t j = 0; j < full; ++j) {
                a0[q + j] = d0[2 * j];
                a1[q + j] = d0[2 * j + 1];
            }
            if (full < len) { a0[q + full] = d0[2 * full]; a1[q + full] = 0; }
            if (2 * ti + 1 < OH) {
                const REAL *d1 = d0 + OW;
                for (ptrdiff_t j = 0; j < full; ++j) {
                    c0[q + j] = d1[2 * j];
                    c1[q + j] = d1[2 * j + 1];
                }
                if (full < len) { c0[q + full] = d1[2 * full]; c1[q + full] = 0; }
            } else {
                for (ptrdiff_t j = 0; j < len; ++j) c0[q + j] = c1[q + j] = 0;
            }
        });
        REAL *o = dYh + oc * Tb;
        REAL sum = 0;
#pragma omp simd reduction(+ : sum)
        for (ptrdiff_t j = 0; j < nb; ++j) {
            /* rows of A dy: (a), (a + c), (a - c), (-c); then the same on columns */
            REAL p0 = a0[j], p1 = a1[j], r0 = c0[j], r1 = c1[j];
            sum += (p0 + p1) + (r0 + r1);
            REAL rw0[4] = {p0, p0 + r0, p0 - r0, -r0};
            REAL rw1[4] = {p1, p1 + r1, p1 - r1, -r1};
            for (int i = 0; i < 4; ++i) {
                REAL x0 = rw0[i], x1 = rw1[i];
                o[(i * 4 + 0) * plane + j] = x0;
                o[(i * 4 + 1) * plane + j] = x0 + x1;
                o[(i * 4 + 2) * plane + j] = x0 - x1;
                o[(i * 4 + 3) * plane + j] = -x1;
            }
        }
        if (db) db[oc] += sum;
    }
}

/* dx tiles of [b0, b1) += B dV B^T, overlap-added, padded cells dropped. dx must be zeroed.
 * Per input channel: one vectorised pass over the block puts the 16 entries of every tile's
 * B dV B^T into rb as planes (16*Tb); then, per tile row segment and row, the overlaps of
 * neighbouring tiles are summed while they are added to dx. */
static void FN(wg_scatter_block)(REAL *restrict dx, REAL *restrict rb, const REAL *restrict dV,
                                 ptrdiff_t b0, ptrdiff_t b1, ptrdiff_t Tb, ptrdiff_t C,
                                 ptrdiff_t H, ptrdiff_t W, ptrdiff_t PH, ptrdiff_t PW,
                                 ptrdiff_t TH, ptrdiff_t TW)
{
    const ptrdiff_t plane = wg_plane(C, Tb), nb = b1 - b0;
    REAL *restrict Z = rb;
    for (ptrdiff_t c = 0; c < C; ++c) {
        const REAL *v = dV + c * Tb;
#pragma omp simd
        for (ptrdiff_t j = 0; j < nb; ++j) {
            REAL X[4][4], Y[4][4];
            for (int i = 0; i < 4; ++i)
                for (int k = 0; k < 4; ++k) X[i][k] = v[(i * 4 + k) * plane + j];
            for (int k = 0; k < 4; ++k) {   /* B X: rows X0, X1-X2+X3, -X0+X1+X2, -X3 */
                REAL x0 = X[0][k], x1 = X[1][k], x2 = X[2][k], x3 = X[3][k];
                Y[0][k] = x0;
                Y[1][k] = x1 - x2 + x3;
                Y[2][k] = -x0 + x1 + x2;
                Y[3][k] = -x3;
            }
            for (int i = 0; i < 4; ++i) {   /* (B X) B^T: the same on columns */
                REAL x0 = Y[i][0], x1 = Y[i][1], x2 = Y[i][2], x3 = Y[i][3];
                Z[(i * 4 + 0) * Tb + j] = x0;
                Z[(i * 4 + 1) * Tb + j] = x1 - x2 + x3;
                Z[(i * 4 + 2) * Tb + j] = -x0 + x1 + x2;
                Z[(i * 4 + 3) * Tb + j] = -x3;
            }
        }
        WG_SEGMENTS(b0, b1, TH, TW, {
            const ptrdiff_t q = t - b0, width = 2 * len + 2;
            const ptrdiff_t ih0 = 2 * ti - PH, iw0 = 2 * tj0 - PW;
            ptrdiff_t lo = iw0 < 0 ? -iw0 : 0, hi = W - iw0;
            if (hi > width) hi = width;
            if (lo > hi) lo = hi;
            REAL *xc = dx + (n * C + c) * H * W;
            for (int i = 0; i < 4; ++i) {
                ptrdiff_t ih = ih0 + i;
                if (ih < 0 || ih >= H) continue;
                const REAL *z0 = Z + (i * 4) * Tb + q, *z1 = z0 + Tb, *z2 = z1 + Tb;
                const REAL *z3 = z2 + Tb;
                REAL *dst = xc + ih * W + iw0;
                /* columns 2m, 2m+1 get tile m's entries 0, 1 and tile m-1's entries 2, 3;
                 * the pairs inside [lo, hi) with both tiles present go in one loop */
                ptrdiff_t mlo = (lo + 1) / 2, mhi = hi / 2;
                if (mlo < 1) mlo = 1;
                if (mhi > len) mhi = len;
                if (mhi < mlo) mhi = mlo;
                for (ptrdiff_t m = mlo; m < mhi; ++m) {
                    dst[2 * m] += z0[m] + z2[m - 1];
                    dst[2 * m + 1] += z1[m] + z3[m - 1];
                }
                for (ptrdiff_t k = lo; k < hi; ++k) {   /* the few edge columns */
                    if (k == 2 * mlo && mhi > mlo) k = 2 * mhi;
                    if (k >= hi) break;
                    ptrdiff_t m = k >> 1;
                    const REAL *za = (k & 1) ? z1 : z0, *zb = (k & 1) ? z3 : z2;
                    dst[k] += (m < len ? za[m] : (REAL)0) + (m >= 1 ? zb[m - 1] : (REAL)0);
                }
            }
        });
    }
}

static void FN(wg_forward)(REAL *y, REAL *workspace, const REAL *x, const REAL *weight,
                           const REAL *bias, ptrdiff_t N, ptrdiff_t C, ptrdiff_t H, ptrdiff_t W,
                           ptrdiff_t OC, ptrdiff_t PH, ptrdiff_t PW, int relu, int n_threads)
{
    const ptrdiff_t OH = H + 2 * PH - 2, OW = W + 2 * PW - 2;
    const ptrdiff_t TH = wg_ceil2(OH), TW = wg_ceil2(OW), T = N * TH * TW;
    const ptrdiff_t Tb = wg_block(C, OC), PV = wg_plane(C, Tb), PM = wg_plane(OC, Tb);
    const ptrdiff_t per = 16 * (PV + PM) + 16 * Tb + 32 * (TW + 1);
    REAL *U = workspace;
    if (N <= 0) return;
    /* Tiles, not images, are split: a batch smaller than the thread count still uses them all. */
    int nt = fc_clamp_threads(n_threads, T);
    /* The weight transform (16*OC*C, small) runs before the parallel region: no barrier inside,
     * which matters when a core is shared and a waiting thread sleeps. */
    FN(wg_weight_transform)(U, weight, OC * C);
    int blas_prev = fc_blas_threads_begin(nt);
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        int tid = fc_thread_id(), nth = fc_thread_count();
        REAL *V = workspace + 16 * OC * C + (ptrdiff_t)tid * per;
        REAL *M = V + 16 * PV;
        REAL *rb = M + 16 * PM;
        ptrdiff_t t0 = T * tid / nth, t1 = T * (tid + 1) / nth;
        for (ptrdiff_t b0 = t0; b0 < t1; b0 += Tb) {
            ptrdiff_t b1 = b0 + Tb < t1 ? b0 + Tb : t1, nb = b1 - b0;
            FN(wg_input_block)(V, rb, x, b0, b1, Tb, C, H, W, PH, PW, TH, TW);
            for (int xi = 0; xi < 16; ++xi)
                GEMM(0, 0, OC, nb, C, (REAL)1, U + xi * OC * C, C, V + xi * PV, Tb, (REAL)0,
                     M + xi * PM, Tb);
            FN(wg_output_block)(y, rb, M, bias, relu, b0, b1, Tb, OC, OH, OW, TH, TW);
        }
    }
    fc_blas_threads_end(blas_prev);
}

static void FN(wg_backward)(REAL *dx, REAL *dweight, REAL *dbias, REAL *workspace,
                            const REAL *dy, const REAL *x, const REAL *weight, ptrdiff_t N,
                            ptrdiff_t C, ptrdiff_t H, ptrdiff_t W, ptrdiff_t OC, ptrdiff_t PH,
                            ptrdiff_t PW, int n_threads)
{
    const ptrdiff_t OH = H + 2 * PH - 2, OW = W + 2 * PW - 2;
    const ptrdiff_t TH = wg_ceil2(OH), TW = wg_ceil2(OW), Timg = TH * TW;
    const ptrdiff_t Tb = wg_block(C, OC), UC = 16 * OC * C;
    const ptrdiff_t PV = wg_plane(C, Tb), PM = wg_plane(OC, Tb);
    const ptrdiff_t per = 16 * (PV + PM) + UC + OC + 16 * Tb + 32 * (TW + 1);
    REAL *U = workspace;
    if (N <= 0) {
        if (dweight) for (ptrdiff_t i = 0; i < OC * C * 9; ++i) dweight[i] = 0;
        if (dbias) for (ptrdiff_t i = 0; i < OC; ++i) dbias[i] = 0;
        return;
    }
    /* Whole images per thread: the dx overlap-add of neighbouring tiles then never races. */
    int nt = fc_clamp_threads(n_threads, N);
    int used = 1;
    if (dx) FN(wg_weight_transform)(U, weight, OC * C);   /* before the region, as forward */
    int blas_prev = fc_blas_threads_begin(nt);
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        int tid = fc_thread_id(), nth = fc_thread_count();
        if (tid == 0) used = nth;
        REAL *V = workspace + UC + (ptrdiff_t)tid * per;
        REAL *dYh = V + 16 * PV;
        REAL *dWp = dYh + 16 * PM;
        REAL *dbp = dWp + UC;
        REAL *rb = dbp + OC;
        ptrdiff_t n0 = N * tid / nth, n1 = N * (tid + 1) / nth;
        ptrdiff_t t0 = n0 * Timg, t1 = n1 * Timg;
        for (ptrdiff_t oc = 0; oc < OC; ++oc) dbp[oc] = 0;
        /* the first block's GEMMs overwrite the partial dW^: no 16*OC*C zeroing pass */
        if (dweight && t0 == t1) for (ptrdiff_t i = 0; i < UC; ++i) dWp[i] = 0;
        ptrdiff_t n_zeroed = n0;   /* images of dx [n0, n_zeroed) are zeroed */
        for (ptrdiff_t b0 = t0; b0 < t1; b0 += Tb) {
            ptrdiff_t b1 = b0 + Tb < t1 ? b0 + Tb : t1, nb = b1 - b0;
            if (dweight) FN(wg_input_block)(V, rb, x, b0, b1, Tb, C, H, W, PH, PW, TH, TW);
            FN(wg_grad_block)(dYh, dbias ? dbp : (REAL *)0, rb, dy, b0, b1, Tb, OC, OH, OW, TH, TW);
            for (int xi = 0; xi < 16; ++xi) {
                /* dW^ partial (OC, C) += dY^ (OC, nb) @ V^T (nb, C) */
                if (dweight)
                    GEMM(0, 1, OC, C, nb, (REAL)1, dYh + xi * PM, Tb, V + xi * PV, Tb,
                         b0 == t0 ? (REAL)0 : (REAL)1, dWp + xi * OC * C, C);
                /* dV (C, nb) = U^T (C, OC) @ dY^ (OC, nb), written over V (already consumed) */
                if (dx)
                    GEMM(1, 0, C, nb, OC, (REAL)1, U + xi * OC * C, C, dYh + xi * PM, Tb,
                         (REAL)0, V + xi * PV, Tb);
            }
            if (dx) {
                /* zero dx image by image just before its first tiles land, so the zeroed
                 * lines are still in cache for the overlap-add (not a whole-batch memset) */
                for (; n_zeroed * Timg < b1; ++n_zeroed) {
                    REAL *d = dx + n_zeroed * C * H * W;
                    for (ptrdiff_t i = 0; i < C * H * W; ++i) d[i] = 0;
                }
                FN(wg_scatter_block)(dx, rb, V, b0, b1, Tb, C, H, W, PH, PW, TH, TW);
            }
        }
#pragma omp barrier
        /* dW = G^T dW^ G, the threads' partials dW^ summed chunk by chunk as it goes */
        const ptrdiff_t nq = dweight ? OC * C : 0;
#pragma omp for schedule(static)
        for (ptrdiff_t q0 = 0; q0 < nq; q0 += WG_WCHUNK)
            FN(wg_weight_adjoint)(dweight, workspace + UC + 16 * (PV + PM), OC * C, nth, per, q0,
                                  nq - q0 < WG_WCHUNK ? nq - q0 : WG_WCHUNK);
    }
    if (dbias) {
        const ptrdiff_t off = UC + 16 * (PV + PM) + UC;
        for (ptrdiff_t oc = 0; oc < OC; ++oc) {
            REAL s = workspace[off + oc];
            for (int t = 1; t < used; ++t) s += workspace[off + t * per + oc];
            dbias[oc] = s;
        }
    }
    fc_blas_threads_end(blas_prev);
}
