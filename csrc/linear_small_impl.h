/* linear_small_impl.h: type-generic body of the small-batch fully connected kernels (linear.c),
 * with REAL and FN(name) defined; included once per (dtype, instruction set) through
 * dtype_variants.h. No include guard.
 * With a batch of a few rows the layer is a stream over W: AlexNet's 9216 -> 4096 at batch 8 is
 * 151 MB of weights for 0.3 GFLOP. BLAS packed W for each call (forward 35.6 ms at 1 thread,
 * where reading W takes 7.3); these read it once, in place, each W value meeting all N batch
 * rows while it is in registers or L1. Every loop is a contiguous one the compiler vectorises. */

/* y[n][o] = x[n] . W[o] (+ b[o]) for the rows o in [o0, o1): two W rows at a time against the
 * batch in groups of 4 rows, 8 dot products whose partial sums stay in vector registers; the
 * pair of W rows (2*IN) is reread from L1/L2 for the next group. */
static void FN(linear_small_forward)(REAL *y, const REAL *x, const REAL *weight,
                                     const REAL *bias, ptrdiff_t N, ptrdiff_t IN, ptrdiff_t OUT,
                                     ptrdiff_t o0, ptrdiff_t o1)
{
    for (ptrdiff_t o = o0; o < o1; o += 2) {
        const REAL *restrict w0 = weight + o * IN;
        const REAL *restrict w1 = o + 1 < o1 ? w0 + IN : w0;   /* odd tail: row o twice */
        for (ptrdiff_t n = 0; n < N; n += 4) {
            const REAL *restrict x0 = x + n * IN;
            const REAL *restrict x1 = n + 1 < N ? x0 + IN : x0;
            const REAL *restrict x2 = n + 2 < N ? x0 + 2 * IN : x0;
            const REAL *restrict x3 = n + 3 < N ? x0 + 3 * IN : x0;
            REAL a00 = 0, a01 = 0, a02 = 0, a03 = 0, a10 = 0, a11 = 0, a12 = 0, a13 = 0;
#pragma omp simd reduction(+ : a00, a01, a02, a03, a10, a11, a12, a13)
            for (ptrdiff_t i = 0; i < IN; ++i) {
                const REAL u = w0[i], v = w1[i];
                a00 += u * x0[i], a01 += u * x1[i], a02 += u * x2[i], a03 += u * x3[i];
                a10 += v * x0[i], a11 += v * x1[i], a12 += v * x2[i], a13 += v * x3[i];
            }
            const REAL b0 = bias ? bias[o] : (REAL)0;
            const REAL b1 = bias && o + 1 < o1 ? bias[o + 1] : (REAL)0;
            const REAL r0[4] = {a00, a01, a02, a03}, r1[4] = {a10, a11, a12, a13};
            for (ptrdiff_t k = 0; k < 4 && n + k < N; ++k) {
                y[(n + k) * OUT + o] = r0[k] + b0;
                if (o + 1 < o1) y[(n + k) * OUT + o + 1] = r1[k] + b1;
            }
        }
    }
}

/* dx[n][i] = sum_o dy[n][o] W[o][i] for the columns i in [i0, i1): column chunks whose N rows
 * of dx stay in L1 while every row of W passes its segment through, four W rows per pass. */
#ifndef LINEAR_SMALL_CHUNK
#define LINEAR_SMALL_CHUNK 512
#endif
static void FN(linear_small_backward_data)(REAL *dx, const REAL *dy, const REAL *weight,
                                           ptrdiff_t N, ptrdiff_t IN, ptrdiff_t OUT,
                                           ptrdiff_t i0, ptrdiff_t i1)
{
    for (ptrdiff_t c0 = i0; c0 < i1; c0 += LINEAR_SMALL_CHUNK) {
        const ptrdiff_t len = i1 - c0 < LINEAR_SMALL_CHUNK ? i1 - c0 : LINEAR_SMALL_CHUNK;
        for (ptrdiff_t n = 0; n < N; ++n) {
            REAL *restrict d = dx + n * IN + c0;
            for (ptrdiff_t i = 0; i < len; ++i) d[i] = 0;
        }
        for (ptrdiff_t o = 0; o < OUT; o += 4) {
            const ptrdiff_t m = OUT - o < 4 ? OUT - o : 4;
            const REAL *restrict w0 = weight + o * IN + c0;
            const REAL *restrict w1 = m > 1 ? w0 + IN : w0;
            const REAL *restrict w2 = m > 2 ? w0 + 2 * IN : w0;
            const REAL *restrict w3 = m > 3 ? w0 + 3 * IN : w0;
            for (ptrdiff_t n = 0; n < N; ++n) {
                const REAL *g = dy + n * OUT + o;
                const REAL g0 = g[0], g1 = m > 1 ? g[1] : (REAL)0;
                const REAL g2 = m > 2 ? g[2] : (REAL)0, g3 = m > 3 ? g[3] : (REAL)0;
                REAL *restrict d = dx + n * IN + c0;
#pragma omp simd
                for (ptrdiff_t i = 0; i < len; ++i)
                    d[i] += g0 * w0[i] + g1 * w1[i] + g2 * w2[i] + g3 * w3[i];
            }
        }
    }
}

/* dW[o][i] (+)= sum_n dy[n][o] x[n][i] for the rows o in [o0, o1) (added to with accumulate):
 * two rows of dW at a time, each written once per group of 8 batch rows (x's rows from L2, the
 * 16 coefficients in registers). One pass for AlexNet's batch of 8: a first pass with one row of
 * x, then passes adding three more, read and wrote each dW row four times (fc6 in double at
 * 9 GB/s of dW, 1 thread). */
static void FN(linear_small_backward_weights)(REAL *dweight, const REAL *dy, const REAL *x,
                                              ptrdiff_t N, ptrdiff_t IN, ptrdiff_t OUT,
                                              ptrdiff_t o0, ptrdiff_t o1, int accumulate)
{
    for (ptrdiff_t o = o0; o < o1; o += 2) {
        const int two = o + 1 < o1;
        REAL *restrict w0 = dweight + o * IN;
        REAL *restrict w1 = dweight + (two ? o + 1 : o) * IN;   /* only written when two */
        for (ptrdiff_t n = 0; n < N; n += 8) {
            const REAL *restrict xr[8];
            REAL ga[8], gb[8];   /* rows past N: x's row n with coefficient 0 */
            for (int k = 0; k < 8; ++k) {
                const int in = n + k < N;
                xr[k] = x + (in ? n + k : n) * IN;
                ga[k] = in ? dy[(n + k) * OUT + o] : (REAL)0;
                gb[k] = in && two ? dy[(n + k) * OUT + o + 1] : (REAL)0;
            }
            const REAL *restrict x0 = xr[0], *restrict x1 = xr[1], *restrict x2 = xr[2];
            const REAL *restrict x3 = xr[3], *restrict x4 = xr[4], *restrict x5 = xr[5];
            const REAL *restrict x6 = xr[6], *restrict x7 = xr[7];
            const int add = accumulate || n > 0;
#define LS_DOT(g) (g[0] * x0[i] + g[1] * x1[i] + g[2] * x2[i] + g[3] * x3[i] + g[4] * x4[i] \
                   + g[5] * x5[i] + g[6] * x6[i] + g[7] * x7[i])
            if (two && add) {
#pragma omp simd
                for (ptrdiff_t i = 0; i < IN; ++i) w0[i] += LS_DOT(ga), w1[i] += LS_DOT(gb);
            } else if (two) {
#pragma omp simd
                for (ptrdiff_t i = 0; i < IN; ++i) w0[i] = LS_DOT(ga), w1[i] = LS_DOT(gb);
            } else if (add) {
#pragma omp simd
                for (ptrdiff_t i = 0; i < IN; ++i) w0[i] += LS_DOT(ga);
            } else {
#pragma omp simd
                for (ptrdiff_t i = 0; i < IN; ++i) w0[i] = LS_DOT(ga);
            }
#undef LS_DOT
        }
    }
}
