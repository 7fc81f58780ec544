/* blas.c: the GEMM that every convolution path calls, and BLAS thread pinning.
 * The BLAS is SciPy's (scipy.linalg.cython_blas), registered once at import by _kernels.pyx, so
 * fastcnn links no BLAS of its own. Row-major calls become column-major ones by the transpose
 * swap: C^T = op(B)^T op(A)^T. Not thread-pool aware beyond pinning: fastcnn owns parallelism. */
#include "fastcnn.h"

static fc_sgemm_fn g_sgemm = 0;
static fc_dgemm_fn g_dgemm = 0;
static fc_blas_set_threads_fn g_set_threads = 0;
static fc_blas_get_threads_fn g_get_threads = 0;

void fc_register_blas(fc_sgemm_fn sgemm, fc_dgemm_fn dgemm)
{
    g_sgemm = sgemm;
    g_dgemm = dgemm;
}

void fc_register_blas_threads(fc_blas_set_threads_fn set_threads, fc_blas_get_threads_fn get_threads)
{
    g_set_threads = set_threads;
    g_get_threads = get_threads;
}

int fc_blas_get_num_threads(void)
{
    return g_get_threads ? g_get_threads() : -1;
}

/* Per-image GEMMs are too small to gain from BLAS threads, and BLAS threads inside our OpenMP
 * region would oversubscribe the cores: pin BLAS to one thread while a kernel runs. */
int fc_blas_threads_begin(int our_threads)
{
    (void)our_threads;
    if (!g_set_threads || !g_get_threads) return -1;
    int previous = g_get_threads();
    if (previous == 1) return -1;
    g_set_threads(1);
    return previous;
}

void fc_blas_threads_end(int previous)
{
    if (previous > 0 && g_set_threads) g_set_threads(previous);
}

void fc_gemm_f32(int trans_a, int trans_b, ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, float alpha,
                 const float *A, ptrdiff_t lda, const float *B, ptrdiff_t ldb, float beta, float *C,
                 ptrdiff_t ldc)
{
    char ta = trans_a ? 'T' : 'N', tb = trans_b ? 'T' : 'N';
    int m = (int)N, n = (int)M, k = (int)K, ia = (int)lda, ib = (int)ldb, ic = (int)ldc;
    g_sgemm(&tb, &ta, &m, &n, &k, &alpha, (float *)B, &ib, (float *)A, &ia, &beta, C, &ic);
}

void fc_gemm_f64(int trans_a, int trans_b, ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, double alpha,
                 const double *A, ptrdiff_t lda, const double *B, ptrdiff_t ldb, double beta,
                 double *C, ptrdiff_t ldc)
{
    char ta = trans_a ? 'T' : 'N', tb = trans_b ? 'T' : 'N';
    int m = (int)N, n = (int)M, k = (int)K, ia = (int)lda, ib = (int)ldb, ic = (int)ldc;
    g_dgemm(&tb, &ta, &m, &n, &k, &alpha, (double *)B, &ib, (double *)A, &ia, &beta, C, &ic);
}
