/* linear_small_impl.h: type-generic body of the small-batch fully connected kernels (linear.c),
 * with REAL and FN(name) defined; included once per (dtype, instruction set) through
 * dtype_variants.h. No include guard.
 * With a batch of a few rows the layer is a stream over W: AlexNet's 9216 -> 4096 at batch 8 is
 * 151 MB of weights for 0.3 GFLOP. BLAS packed W for each call (forward 35.6 ms at 1 thread,
 * where reading W takes 7.3); these read it once, in place, each W value meeting all N batch
 * rows while it is in registers or L1. Every loop is a contiguous one the compiler vectorises. */

/* The small-batch forward vectorises over the batch: a vector holds LS_NB batch rows (AVX-512:
 * 16 float, 8 double; AVX2 8 and 4; SSE2 4 and 2), and each W element, broadcast, meets all of
 * them in one FMA; batches of up to two vectors of rows (ls_max_n) take these kernels. The
 * vectors are the machine's own width, loaded and stored through LS_LOAD / LS_STORE: 64-byte
 * vectors everywhere, copied in and out with memcpy, had made the AVX2 and portable builds 10-20x
 * slower than AVX-512 (GCC keeps a vector wider than the machine's in memory, and expanded the
 * copies into 16-byte moves whose reload as one vector stalled): fc6's forward (AlexNet, float,
 * batch 8, 1 thread) 205 ms on AVX2 and 133 portable against 11 on AVX-512, now 12 and 18; a
 * double batch of 12 on AVX2 1.5 s, now BLAS's 53 ms. */
#if defined(FC_ISA_AVX512)
#define LS_VB 64
#elif defined(FC_ISA_AVX2)
#define LS_VB 32
#else
#define LS_VB 16
#endif
#define LS_NB (LS_VB / (ptrdiff_t)sizeof(REAL))
typedef REAL FN(ls_vec) __attribute__((vector_size(LS_VB), aligned(sizeof(REAL)), may_alias));
/* A vector from (to) REALs at p, unaligned: through the type above, one vector load (store).
 * (memcpy into a vector went through 16-byte moves to the stack in the AVX2 build, and the
 * vector's reload from there waited on store forwarding: 68% of fc6's forward, perf.) */
#define LS_LOAD(p) (*(const FN(ls_vec) *)(p))
#define LS_STORE(p, v) (*(FN(ls_vec) *)(p) = (v))

/* The largest batch these kernels take (linear_impl.h: BLAS above it). */
static ptrdiff_t FN(ls_max_n)(void) { return 2 * LS_NB; }
/* W rows per pass: 8 accumulators (16 with two vectors of rows) in AVX-512's 32 registers; 4
 * (8) in the 16 of AVX2 and SSE2. */
#if defined(FC_ISA_AVX512)
#define LS_ROWS 8
#else
#define LS_ROWS 4
#endif

/* xt[(g*IN + i)*LS_NB + l] = x[g*LS_NB + l][i] for the columns i in [i0, i1), batch rows in
 * groups of LS_NB (rows past N: 0). */
static void FN(linear_small_transpose)(REAL *restrict xt, const REAL *restrict x, ptrdiff_t N,
                                       ptrdiff_t IN, ptrdiff_t i0, ptrdiff_t i1)
{
    for (ptrdiff_t g = 0; g * LS_NB < N; ++g) {
        for (ptrdiff_t i = i0; i < i1; ++i) {
            REAL *restrict t = xt + (g * IN + i) * LS_NB;
            for (ptrdiff_t l = 0; l < LS_NB; ++l) {
                const ptrdiff_t n = g * LS_NB + l;
                t[l] = n < N ? x[n * IN + i] : (REAL)0;
            }
        }
    }
}

/* y[n][o] = x[n] . W[o] (+ b[o]) for the rows o in [o0, o1), from xt (linear_small_transpose):
 * LS_ROWS rows of W at a time, each element broadcast against the vector of the batch's rows
 * (one or two, for 9..16 double rows), so W streams from memory once with the batch in L2. With
 * the batch along the vectors instead (dot products over i) every W vector needed one of each
 * batch row, and the L1 refills from L2 held fc6's forward at ~10 GB/s of W (this: 1.8-2.1x,
 * double, 1 thread). */
static void FN(linear_small_forward)(REAL *y, const REAL *xt, const REAL *weight,
                                     const REAL *bias, ptrdiff_t N, ptrdiff_t IN, ptrdiff_t OUT,
                                     ptrdiff_t o0, ptrdiff_t o1)
{
    typedef FN(ls_vec) V;
    const int two = N > LS_NB;
    const REAL *restrict t0 = xt, *restrict t1 = xt + (two ? IN * LS_NB : 0);
    for (ptrdiff_t o = o0; o < o1; o += LS_ROWS) {
        const REAL *restrict w[LS_ROWS];   /* rows past o1: row o again, not stored */
        for (int r = 0; r < LS_ROWS; ++r) w[r] = weight + (o + r < o1 ? o + r : o) * IN;
        V a[LS_ROWS], b[LS_ROWS];
        for (int r = 0; r < LS_ROWS; ++r) a[r] = b[r] = (V){0};
        if (two) {
            for (ptrdiff_t i = 0; i < IN; ++i) {
                const V u = LS_LOAD(t0 + i * LS_NB), v = LS_LOAD(t1 + i * LS_NB);
#pragma GCC unroll 8
                for (int r = 0; r < LS_ROWS; ++r) {
                    const REAL wr = w[r][i];
                    a[r] += u * wr;
                    b[r] += v * wr;
                }
            }
        } else {
            for (ptrdiff_t i = 0; i < IN; ++i) {
                const V u = LS_LOAD(t0 + i * LS_NB);
#pragma GCC unroll 8
                for (int r = 0; r < LS_ROWS; ++r) a[r] += u * w[r][i];
            }
        }
        for (int r = 0; r < LS_ROWS && o + r < o1; ++r) {
            const REAL c = bias ? bias[o + r] : (REAL)0;
            for (ptrdiff_t n = 0; n < N; ++n)
                y[n * OUT + o + r] = (n < LS_NB ? a[r][n] : b[r][n - LS_NB]) + c;
        }
    }
}

/* The vector at s += the sum of the LS_ROWS / 2 pair sums p, added as a tree. */
static inline void FN(ls_add_pairs)(REAL *s, const FN(ls_vec) *p)
{
    FN(ls_vec) u = LS_LOAD(s);
#if LS_ROWS == 8
    u += (p[0] + p[1]) + (p[2] + p[3]);
#else
    u += p[0] + p[1];
#endif
    LS_STORE(s, u);
}

/* dx[n][i] = sum_o dy[n][o] W[o][i] for the columns i in [i0, i1), as the forward (and with its
 * vector type, LS_NB and LS_ROWS): dx^T[i] (the batch's rows along a vector; in L2) gathers the
 * W rows LS_ROWS at a time, each W element broadcast against dy^T's vectors of those rows (dyt:
 * linear_small_transpose of dy), then goes back to dx. Along W rows instead (four per pass,
 * each batch row's dx chunk read and written per pass) fc6's dx ran at ~10 GB/s of W in double. */
static void FN(linear_small_backward_data)(REAL *dx, REAL *dxt, const REAL *dyt,
                                           const REAL *weight, ptrdiff_t N, ptrdiff_t IN,
                                           ptrdiff_t OUT, ptrdiff_t i0, ptrdiff_t i1)
{
    typedef FN(ls_vec) V;
    const int two = N > LS_NB;
    REAL *restrict s0 = dxt, *restrict s1 = dxt + (two ? IN * LS_NB : 0);
    const REAL *restrict d0 = dyt, *restrict d1 = dyt + (two ? OUT * LS_NB : 0);
    for (ptrdiff_t i = i0 * LS_NB; i < i1 * LS_NB; ++i) s0[i] = 0;
    if (two)
        for (ptrdiff_t i = i0 * LS_NB; i < i1 * LS_NB; ++i) s1[i] = 0;
    for (ptrdiff_t o = 0; o < OUT; o += LS_ROWS) {
        const REAL *restrict w[LS_ROWS];
        V g[LS_ROWS], h[LS_ROWS];   /* rows past OUT: row o with coefficients 0 */
        for (int r = 0; r < LS_ROWS; ++r) {
            const int in = o + r < OUT;
            w[r] = weight + (in ? o + r : o) * IN;
            g[r] = h[r] = (V){0};
            if (in) {
                g[r] = LS_LOAD(d0 + (o + r) * LS_NB);
                if (two) h[r] = LS_LOAD(d1 + (o + r) * LS_NB);
            }
        }
        for (ptrdiff_t i = i0; i < i1; ++i) {
            /* pairwise sums: one chain of LS_ROWS dependent FMAs per column was latency-bound */
            V p[LS_ROWS / 2], q[LS_ROWS / 2];
#pragma GCC unroll 8
            for (int r = 0; r < LS_ROWS / 2; ++r) {
                const REAL wa = w[2 * r][i], wb = w[2 * r + 1][i];
                p[r] = g[2 * r] * wa + g[2 * r + 1] * wb;
                if (two) q[r] = h[2 * r] * wa + h[2 * r + 1] * wb;
            }
            FN(ls_add_pairs)(s0 + i * LS_NB, p);
            if (two) FN(ls_add_pairs)(s1 + i * LS_NB, q);
        }
    }
    for (ptrdiff_t n = 0; n < N; ++n) {
        const REAL *restrict t = (n < LS_NB ? s0 : s1) + n % LS_NB;
        REAL *restrict d = dx + n * IN;
        for (ptrdiff_t i = i0; i < i1; ++i) d[i] = t[i * LS_NB];
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

#if defined(FC_DTYPE_F32)
/* Float batches of up to half a vector of rows fill half of each vector above, so the
 * forward's and dx's FMAs took one W element each: fc6's forward (AlexNet, batch 8, AVX-512) ran
 * at 13 GB/s of W at 1 thread, where double (8 rows, 8 lanes) reached 21. The pair kernels below
 * put two columns of W in each vector: lane 2n + e holds batch row n's value at column 2p + e,
 * against the pair (w[2p], w[2p + 1]) broadcast as one 8-byte value (ls_pair). An odd last
 * column goes alone, broadcast whole against operands zero in the odd lanes (forward) or read
 * from the even ones (dx). fc6, float, batch 8, AVX-512, 1 thread: forward 11.3 -> 8.3-8.8 ms,
 * backward (dx, dW) 30 -> 22-23. */
#define LS_PAIR_N (LS_NB / 2)

/* Whether a batch of N rows takes the pair kernels. */
static int FN(ls_use_pairs)(ptrdiff_t N) { return N <= LS_PAIR_N; }

/* (p[0], p[1]) repeated over a vector: one 8-byte broadcast */
static inline __attribute__((always_inline)) FN(ls_vec) FN(ls_pair)(const REAL *p)
{
    typedef double D __attribute__((vector_size(LS_VB)));
    double d;
    memcpy(&d, p, sizeof d);
    const D v = d - (D){0};
    return (FN(ls_vec))v;   /* the same bits, as REALs */
}

/* xt[p*LS_NB + 2n + e] = x[n][2p + e] for the column pairs p in [p0, p1) (0 past N or IN). */
static void FN(ls_pair_transpose)(REAL *restrict xt, const REAL *restrict x, ptrdiff_t N,
                                  ptrdiff_t IN, ptrdiff_t p0, ptrdiff_t p1)
{
    for (ptrdiff_t p = p0; p < p1; ++p)
        for (ptrdiff_t n = 0; n < LS_PAIR_N; ++n)
            for (int e = 0; e < 2; ++e)
                xt[p * LS_NB + 2 * n + e] = n < N && 2 * p + e < IN ? x[n * IN + 2 * p + e]
                                                                     : (REAL)0;
}

/* dyt[o*LS_NB + 2n + e] = dy[n][o] for both e, for the rows o in [o0, o1) (0 past N). */
static void FN(ls_pair_spread)(REAL *restrict dyt, const REAL *restrict dy, ptrdiff_t N,
                               ptrdiff_t OUT, ptrdiff_t o0, ptrdiff_t o1)
{
    for (ptrdiff_t o = o0; o < o1; ++o)
        for (ptrdiff_t n = 0; n < LS_PAIR_N; ++n)
            dyt[o * LS_NB + 2 * n] = dyt[o * LS_NB + 2 * n + 1] = n < N ? dy[n * OUT + o]
                                                                        : (REAL)0;
}

/* linear_small_forward for N <= LS_PAIR_N, from ls_pair_transpose's xt: each row's sum over
 * the even columns and over the odd ones, added at the end. */
static void FN(ls_pair_forward)(REAL *y, const REAL *xt, const REAL *weight, const REAL *bias,
                                ptrdiff_t N, ptrdiff_t IN, ptrdiff_t OUT, ptrdiff_t o0,
                                ptrdiff_t o1)
{
    typedef FN(ls_vec) V;
    const ptrdiff_t P = IN / 2;   /* whole pairs */
    for (ptrdiff_t o = o0; o < o1; o += LS_ROWS) {
        const REAL *restrict w[LS_ROWS];   /* rows past o1: row o again, not stored */
        for (int r = 0; r < LS_ROWS; ++r) w[r] = weight + (o + r < o1 ? o + r : o) * IN;
        V a[LS_ROWS];
        for (int r = 0; r < LS_ROWS; ++r) a[r] = (V){0};
        for (ptrdiff_t p = 0; p < P; ++p) {
            const V u = LS_LOAD(xt + p * LS_NB);
#pragma GCC unroll 8
            for (int r = 0; r < LS_ROWS; ++r) a[r] += u * FN(ls_pair)(w[r] + 2 * p);
        }
        if (IN % 2) {   /* the last column's pair: its odd lanes 0 */
            const V u = LS_LOAD(xt + P * LS_NB);
            for (int r = 0; r < LS_ROWS; ++r) a[r] += u * w[r][IN - 1];
        }
        for (int r = 0; r < LS_ROWS && o + r < o1; ++r) {
            const REAL c = bias ? bias[o + r] : (REAL)0;
            for (ptrdiff_t n = 0; n < N; ++n)
                y[n * OUT + o + r] = (a[r][2 * n] + a[r][2 * n + 1]) + c;
        }
    }
}

/* linear_small_backward_data for N <= LS_PAIR_N, from ls_pair_spread's dyt, on the columns
 * [i0, i1) (i0 even): dx^T's pairs in dxt (pair p at p*LS_NB), lane 2n + e dx[n][2p + e]. */
static void FN(ls_pair_backward_data)(REAL *dx, REAL *dxt, const REAL *dyt, const REAL *weight,
                                      ptrdiff_t N, ptrdiff_t IN, ptrdiff_t OUT, ptrdiff_t i0,
                                      ptrdiff_t i1)
{
    typedef FN(ls_vec) V;
    const ptrdiff_t p0 = i0 / 2, p1 = i1 / 2;   /* whole pairs; an odd i1's last column alone */
    const int odd = (int)(i1 % 2);
    REAL *restrict s = dxt;
    for (ptrdiff_t i = p0 * LS_NB; i < (p1 + odd) * LS_NB; ++i) s[i] = 0;
    for (ptrdiff_t o = 0; o < OUT; o += LS_ROWS) {
        const REAL *restrict w[LS_ROWS];
        V g[LS_ROWS];   /* rows past OUT: row o with coefficients 0 */
        for (int r = 0; r < LS_ROWS; ++r) {
            const int in = o + r < OUT;
            w[r] = weight + (in ? o + r : o) * IN;
            g[r] = in ? LS_LOAD(dyt + (o + r) * LS_NB) : (V){0};
        }
        for (ptrdiff_t p = p0; p < p1; ++p) {
            V q[LS_ROWS / 2];
#pragma GCC unroll 8
            for (int r = 0; r < LS_ROWS / 2; ++r)
                q[r] = g[2 * r] * FN(ls_pair)(w[2 * r] + 2 * p)
                       + g[2 * r + 1] * FN(ls_pair)(w[2 * r + 1] + 2 * p);
            FN(ls_add_pairs)(s + p * LS_NB, q);
        }
        if (odd) {
            V q[LS_ROWS / 2];
            for (int r = 0; r < LS_ROWS / 2; ++r)
                q[r] = g[2 * r] * w[2 * r][i1 - 1] + g[2 * r + 1] * w[2 * r + 1][i1 - 1];
            FN(ls_add_pairs)(s + p1 * LS_NB, q);
        }
    }
    for (ptrdiff_t n = 0; n < N; ++n) {
        REAL *restrict d = dx + n * IN;
        for (ptrdiff_t i = 2 * p0; i < 2 * p1; ++i) d[i] = s[(i / 2) * LS_NB + 2 * n + i % 2];
        if (odd) d[i1 - 1] = s[p1 * LS_NB + 2 * n];
    }
}
#undef LS_PAIR_N
#endif

#undef LS_ROWS
#undef LS_NB
#undef LS_VB
#undef LS_LOAD
#undef LS_STORE
