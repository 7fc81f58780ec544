/* optim_impl.h: type-generic body of the fused optimizer updates, included by optim.c once per
 * dtype with REAL and FN(name) defined. */

void FN(fc_adam_update)(REAL *w, REAL *m, REAL *v, const REAL *g, ptrdiff_t n, double lr,
                        double beta1, double beta2, double eps, double bias_correction1,
                        double bias_correction2, int n_threads)
{
    /* w, m, v, g: (n) flat. In one pass, elementwise (PyTorch's arrangement of Adam):
     *   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
     *   w -= (lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps),   bc_i = 1 - b_i^t  */
    const REAL b1 = (REAL)beta1, b2 = (REAL)beta2, c1 = (REAL)(1.0 - beta1),
               c2 = (REAL)(1.0 - beta2), e = (REAL)eps;
    const REAL step = (REAL)(lr / bias_correction1);
    const REAL inv_sqrt_bc2 = (REAL)(1.0 / sqrt(bias_correction2));
    int nt = n_threads < 1 ? 1 : n_threads;
    (void)nt;
#if defined(_OPENMP)
    /* `if` on the parallel part only: a plain `if` also turns the simd off (scalar Adam) */
#pragma omp parallel for simd num_threads(nt) schedule(static) \
    if (parallel : nt > 1 && n > FC_STREAM_PARALLEL_MIN)
#else
#pragma omp simd
#endif
    for (ptrdiff_t i = 0; i < n; ++i) {
        REAL gi = g[i];
        REAL mi = b1 * m[i] + c1 * gi;
        REAL vi = b2 * v[i] + c2 * gi * gi;
        m[i] = mi;
        v[i] = vi;
        w[i] -= step * mi / (SQRT(vi) * inv_sqrt_bc2 + e);
    }
}
