/* linear_impl.h: type-generic body of the fully connected (Affine) kernels, included by linear.c
 * once per dtype with REAL, FN(name), GEMM and LINEAR_HAS_PAIRS (1: the small-batch kernels'
 * pair forms exist, for the batches ls_use_pairs takes; 0: none) defined. y = x W^T + b, as
 * PyTorch's Linear.
 * Every output block belongs to one thread (no reduction across threads), and BLAS runs on one
 * thread inside our region: fastcnn, not NumPy's BLAS pool, owns the cores during training. */

#if LINEAR_HAS_PAIRS
#define LS_PAIRS(small, N) ((small) && SMALL(ls_use_pairs)(N))
#else
#define LS_PAIRS(small, N) 0
#endif

void FN(fc_linear_forward)(REAL *y, REAL *workspace, const REAL *x, const REAL *weight,
                           const REAL *bias, ptrdiff_t N, ptrdiff_t IN, ptrdiff_t OUT,
                           int n_threads)
{
    /* x (N, IN)  weight (OUT, IN)  bias (OUT) or NULL  y (N, OUT); workspace:
     * fc_linear_forward_workspace(N, IN) elements (the transposed batch of a small one).
     * Split over output features: each thread reads only its rows of W (for a small batch and
     * a large layer the weight is the traffic), and writes a column block of y. */
    if (N <= 0) return;
    const int small = N <= LINEAR_SMALL_N && N <= SMALL(ls_max_n)(), pairs = LS_PAIRS(small, N);
    (void)pairs;   /* (double: no pair kernels) */
    int nt = linear_threads(n_threads, N, IN, OUT, OUT, 1);
    int blas_prev = fc_blas_threads_begin(nt);
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        ptrdiff_t o0, o1, i0, i1;
#if LINEAR_HAS_PAIRS
        if (pairs) {   /* as below, two columns of x per vector */
            fc_split((IN + 1) / 2, fc_thread_id(), fc_thread_count(), 1, &i0, &i1);
            SMALL(ls_pair_transpose)(workspace, x, N, IN, i0, i1);
#pragma omp barrier
        } else
#endif
        if (small) {   /* the threads transpose x together, then each its rows */
            fc_split(IN, fc_thread_id(), fc_thread_count(), 1, &i0, &i1);
            SMALL(linear_small_transpose)(workspace, x, N, IN, i0, i1);
#pragma omp barrier
        }
        fc_split(OUT, fc_thread_id(), fc_thread_count(), LINEAR_ALIGN, &o0, &o1);
#if LINEAR_HAS_PAIRS
        if (o1 > o0 && pairs) {
            SMALL(ls_pair_forward)(y, workspace, weight, bias, N, IN, OUT, o0, o1);
        } else
#endif
        if (o1 > o0 && small) {
            SMALL(linear_small_forward)(y, workspace, weight, bias, N, IN, OUT, o0, o1);
        } else if (o1 > o0) {
            GEMM(0, 1, N, o1 - o0, IN, (REAL)1, x, IN, weight + o0 * IN, IN, (REAL)0, y + o0,
                 OUT);
            if (bias) {
                for (ptrdiff_t n = 0; n < N; ++n) {
                    REAL *yn = y + n * OUT;
#pragma omp simd
                    for (ptrdiff_t o = o0; o < o1; ++o) yn[o] += bias[o];
                }
            }
        }
    }
    fc_blas_threads_end(blas_prev);
}

void FN(fc_linear_backward)(REAL *dx, REAL *dweight, REAL *dbias, REAL *workspace,
                            const REAL *dy, const REAL *x, const REAL *weight, ptrdiff_t N,
                            ptrdiff_t IN, ptrdiff_t OUT, int accumulate, int n_threads)
{
    /* dy (N, OUT)  x (N, IN)  weight (OUT, IN) -> dweight (OUT, IN) = dy^T x,
     * dbias (OUT) = sum_n dy (or NULL), dx (N, IN) = dy W (or NULL); with accumulate, dweight
     * and dbias are added to. workspace: fc_linear_backward_workspace(N, IN, OUT) elements
     * when dx is wanted (dy^T, then dx^T, for a small batch).
     * dweight/dbias split over output features, dx over input features: no partial sums. */
    int nt = linear_threads(n_threads, N > 0 ? N : 1, IN, OUT, OUT > IN ? OUT : IN, dx ? 2 : 1);
    const int small = N > 0 && N <= LINEAR_SMALL_N && N <= SMALL(ls_max_n)();
    const int small_dx = dx && small, pairs = LS_PAIRS(small, N);
    (void)pairs;
    REAL *dyt = workspace, *dxt = small_dx ? workspace + LINEAR_SMALL_XT * OUT : (REAL *)0;
    int blas_prev = fc_blas_threads_begin(nt);
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        int tid = fc_thread_id(), nth = fc_thread_count();
        ptrdiff_t o0, o1, i0, i1;
        if (small_dx) {   /* every thread's dx columns read all of dy^T */
            fc_split(OUT, tid, nth, 1, &o0, &o1);
#if LINEAR_HAS_PAIRS
            if (pairs)
                SMALL(ls_pair_spread)(dyt, dy, N, OUT, o0, o1);
            else
#endif
                SMALL(linear_small_transpose)(dyt, dy, N, OUT, o0, o1);
#pragma omp barrier
        }
        fc_split(OUT, tid, nth, LINEAR_ALIGN, &o0, &o1);
        if (o1 > o0) {
            if (small) {
                SMALL(linear_small_backward_weights)(dweight, dy, x, N, IN, OUT, o0, o1,
                                                     accumulate);
            } else if (N > 0) {
                GEMM(1, 0, o1 - o0, IN, N, (REAL)1, dy + o0, OUT, x, IN,
                     accumulate ? (REAL)1 : (REAL)0, dweight + o0 * IN, IN);
            } else if (!accumulate) {
                for (ptrdiff_t i = o0 * IN; i < o1 * IN; ++i) dweight[i] = 0;
            }
            if (dbias) {
                if (!accumulate)
                    for (ptrdiff_t o = o0; o < o1; ++o) dbias[o] = 0;
                for (ptrdiff_t n = 0; n < N; ++n) {
                    const REAL *dyn = dy + n * OUT;
#pragma omp simd
                    for (ptrdiff_t o = o0; o < o1; ++o) dbias[o] += dyn[o];
                }
            }
        }
        if (dx && N > 0) {
            fc_split(IN, tid, nth, LINEAR_ALIGN, &i0, &i1);
#if LINEAR_HAS_PAIRS
            if (i1 > i0 && pairs)   /* i0: a multiple of LINEAR_ALIGN, even */
                SMALL(ls_pair_backward_data)(dx, dxt, dyt, weight, N, IN, OUT, i0, i1);
            else
#endif
            if (i1 > i0 && small)
                SMALL(linear_small_backward_data)(dx, dxt, dyt, weight, N, IN, OUT, i0, i1);
            else if (i1 > i0)
                GEMM(0, 0, N, i1 - i0, OUT, (REAL)1, dy, OUT, weight + i0, IN, (REAL)0, dx + i0,
                     IN);
        }
    }
    fc_blas_threads_end(blas_prev);
}

#undef LS_PAIRS
