# _kernels.pxd: the C kernel API of csrc/fastcnn.h as Cython sees it (see that header for shapes).
from libc.stdint cimport int32_t, int64_t

cdef extern from "fastcnn.h" nogil:
    ctypedef void (*fc_sgemm_fn)(char *, char *, int *, int *, int *, float *, float *, int *,
                                 float *, int *, float *, float *, int *)
    ctypedef void (*fc_dgemm_fn)(char *, char *, int *, int *, int *, double *, double *, int *,
                                 double *, int *, double *, double *, int *)
    ctypedef void (*fc_blas_set_threads_fn)(int)
    ctypedef int (*fc_blas_get_threads_fn)()
    void fc_register_blas(fc_sgemm_fn sgemm, fc_dgemm_fn dgemm)
    void fc_register_blas_threads(fc_blas_set_threads_fn s, fc_blas_get_threads_fn g)
    int fc_blas_get_num_threads()

    int fc_openmp_enabled()
    int fc_omp_max_threads()
    const char *fc_simd_level()
    int fc_simd_supported()
    int fc_simd_active()
    int fc_simd_set_cap(int level)
    const char *fc_compile_flags()

    ptrdiff_t fc_conv2d_forward_workspace(ptrdiff_t C, ptrdiff_t H, ptrdiff_t W, ptrdiff_t KH,
                                          ptrdiff_t KW, ptrdiff_t SH, ptrdiff_t SW, ptrdiff_t PH,
                                          ptrdiff_t PW, ptrdiff_t OC, int n_threads)
    ptrdiff_t fc_conv2d_backward_workspace(ptrdiff_t C, ptrdiff_t H, ptrdiff_t W, ptrdiff_t KH,
                                           ptrdiff_t KW, ptrdiff_t SH, ptrdiff_t SW, ptrdiff_t PH,
                                           ptrdiff_t PW, ptrdiff_t OC, int n_threads)
    void fc_conv2d_forward_f32(float *y, float *ws, const float *x, const float *w, const float *b,
                               ptrdiff_t N, ptrdiff_t C, ptrdiff_t H, ptrdiff_t W, ptrdiff_t OC,
                               ptrdiff_t KH, ptrdiff_t KW, ptrdiff_t SH, ptrdiff_t SW,
                               ptrdiff_t PH, ptrdiff_t PW, int relu, int n_threads)
    void fc_conv2d_forward_f64(double *y, double *ws, const double *x, const double *w,
                               const double *b, ptrdiff_t N, ptrdiff_t C, ptrdiff_t H,
                               ptrdiff_t W, ptrdiff_t OC, ptrdiff_t KH, ptrdiff_t KW, ptrdiff_t SH,
                               ptrdiff_t SW, ptrdiff_t PH, ptrdiff_t PW, int relu, int n_threads)
    void fc_conv2d_backward_f32(float *dx, float *dw, float *db, float *ws, const float *dy,
                                const float *x, const float *w, ptrdiff_t N, ptrdiff_t C,
                                ptrdiff_t H, ptrdiff_t W, ptrdiff_t OC, ptrdiff_t KH, ptrdiff_t KW,
                                ptrdiff_t SH, ptrdiff_t SW, ptrdiff_t PH, ptrdiff_t PW,
                                int n_threads)
    void fc_conv2d_backward_f64(double *dx, double *dw, double *db, double *ws, const double *dy,
                                const double *x, const double *w, ptrdiff_t N, ptrdiff_t C,
                                ptrdiff_t H, ptrdiff_t W, ptrdiff_t OC, ptrdiff_t KH, ptrdiff_t KW,
                                ptrdiff_t SH, ptrdiff_t SW, ptrdiff_t PH, ptrdiff_t PW,
                                int n_threads)

    int fc_conv2d_winograd_supported(ptrdiff_t KH, ptrdiff_t KW, ptrdiff_t SH, ptrdiff_t SW,
                                     ptrdiff_t PH, ptrdiff_t PW)
    ptrdiff_t fc_conv2d_winograd_forward_workspace(ptrdiff_t C, ptrdiff_t H, ptrdiff_t W,
                                                   ptrdiff_t PH, ptrdiff_t PW, ptrdiff_t OC,
                                                   int n_threads)
    ptrdiff_t fc_conv2d_winograd_backward_workspace(ptrdiff_t C, ptrdiff_t H, ptrdiff_t W,
                                                    ptrdiff_t PH, ptrdiff_t PW, ptrdiff_t OC,
                                                    int n_threads)
    void fc_conv2d_winograd_forward_f32(float *y, float *ws, const float *x, const float *w,
                                        const float *b, ptrdiff_t N, ptrdiff_t C, ptrdiff_t H,
                                        ptrdiff_t W, ptrdiff_t OC, ptrdiff_t PH, ptrdiff_t PW,
                                        int relu, int n_threads)
    void fc_conv2d_winograd_forward_f64(double *y, double *ws, const double *x, const double *w,
                                        const double *b, ptrdiff_t N, ptrdiff_t C, ptrdiff_t H,
                                        ptrdiff_t W, ptrdiff_t OC, ptrdiff_t PH, ptrdiff_t PW,
                                        int relu, int n_threads)
    void fc_conv2d_winograd_backward_f32(float *dx, float *dw, float *db, float *ws,
                                         const float *dy, const float *x, const float *w,
                                         ptrdiff_t N, ptrdiff_t C, ptrdiff_t H, ptrdiff_t W,
                                         ptrdiff_t OC, ptrdiff_t PH, ptrdiff_t PW, int n_threads)
    void fc_conv2d_winograd_backward_f64(double *dx, double *dw, double *db, double *ws,
                                         const double *dy, const double *x, const double *w,
                                         ptrdiff_t N, ptrdiff_t C, ptrdiff_t H, ptrdiff_t W,
                                         ptrdiff_t OC, ptrdiff_t PH, ptrdiff_t PW, int n_threads)

    int fc_conv2d_winograd6_supported(ptrdiff_t R, ptrdiff_t KH, ptrdiff_t KW, ptrdiff_t SH,
                                      ptrdiff_t SW, ptrdiff_t PH, ptrdiff_t PW)
    ptrdiff_t fc_conv2d_winograd6_forward_workspace(ptrdiff_t R, ptrdiff_t C, ptrdiff_t H,
                                                    ptrdiff_t W, ptrdiff_t PH, ptrdiff_t PW,
                                                    ptrdiff_t OC, int n_threads)
    ptrdiff_t fc_conv2d_winograd6_backward_workspace(ptrdiff_t R, ptrdiff_t C, ptrdiff_t H,
                                                     ptrdiff_t W, ptrdiff_t PH, ptrdiff_t PW,
                                                     ptrdiff_t OC, int n_threads)
    void fc_conv2d_winograd6_forward_f32(ptrdiff_t R, float *y, float *ws, const float *x,
                                         const float *w, const float *b, ptrdiff_t N, ptrdiff_t C,
                                         ptrdiff_t H, ptrdiff_t W, ptrdiff_t OC, ptrdiff_t PH,
                                         ptrdiff_t PW, int relu, int n_threads)
    void fc_conv2d_winograd6_forward_f64(ptrdiff_t R, double *y, double *ws, const double *x,
                                         const double *w, const double *b, ptrdiff_t N,
                                         ptrdiff_t C, ptrdiff_t H, ptrdiff_t W, ptrdiff_t OC,
                                         ptrdiff_t PH, ptrdiff_t PW, int relu, int n_threads)
    void fc_conv2d_winograd6_backward_f32(ptrdiff_t R, float *dx, float *dw, float *db,
                                          float *ws, const float *dy, const float *x,
                                          const float *w, ptrdiff_t N, ptrdiff_t C, ptrdiff_t H,
                                          ptrdiff_t W, ptrdiff_t OC, ptrdiff_t PH, ptrdiff_t PW,
                                          int n_threads)
    void fc_conv2d_winograd6_backward_f64(ptrdiff_t R, double *dx, double *dw, double *db,
                                          double *ws, const double *dy, const double *x,
                                          const double *w, ptrdiff_t N, ptrdiff_t C,
                                          ptrdiff_t H, ptrdiff_t W, ptrdiff_t OC, ptrdiff_t PH,
                                          ptrdiff_t PW, int n_threads)

    int fc_conv2d_direct_supported(ptrdiff_t SH, ptrdiff_t SW)
    ptrdiff_t fc_conv2d_direct_workspace(ptrdiff_t C, ptrdiff_t H, ptrdiff_t W, ptrdiff_t KH,
                                         ptrdiff_t KW, ptrdiff_t PH, ptrdiff_t PW, ptrdiff_t OC,
                                         int n_threads)
    void fc_conv2d_direct_forward_f32(float *y, float *ws, const float *x, const float *w,
                                      const float *b, ptrdiff_t N, ptrdiff_t C, ptrdiff_t H,
                                      ptrdiff_t W, ptrdiff_t OC, ptrdiff_t KH, ptrdiff_t KW,
                                      ptrdiff_t PH, ptrdiff_t PW, int relu, int n_threads)
    void fc_conv2d_direct_forward_f64(double *y, double *ws, const double *x, const double *w,
                                      const double *b, ptrdiff_t N, ptrdiff_t C, ptrdiff_t H,
                                      ptrdiff_t W, ptrdiff_t OC, ptrdiff_t KH, ptrdiff_t KW,
                                      ptrdiff_t PH, ptrdiff_t PW, int relu, int n_threads)
    void fc_conv2d_direct_backward_data_f32(float *dx, float *ws, const float *dy,
                                            const float *w, ptrdiff_t N, ptrdiff_t C,
                                            ptrdiff_t H, ptrdiff_t W, ptrdiff_t OC, ptrdiff_t KH,
                                            ptrdiff_t KW, ptrdiff_t PH, ptrdiff_t PW,
                                            int n_threads)
    void fc_conv2d_direct_backward_data_f64(double *dx, double *ws, const double *dy,
                                            const double *w, ptrdiff_t N, ptrdiff_t C,
                                            ptrdiff_t H, ptrdiff_t W, ptrdiff_t OC, ptrdiff_t KH,
                                            ptrdiff_t KW, ptrdiff_t PH, ptrdiff_t PW,
                                            int n_threads)
    void fc_conv2d_direct_backward_weights_f32(float *dw, float *db, float *dx, float *dxws,
                                               float *ws,
                                               const float *dy, const float *x,
                                               const float *w, ptrdiff_t N, ptrdiff_t C,
                                               ptrdiff_t H, ptrdiff_t W, ptrdiff_t OC,
                                               ptrdiff_t KH, ptrdiff_t KW, ptrdiff_t PH,
                                               ptrdiff_t PW, int n_threads)
    void fc_conv2d_direct_backward_weights_f64(double *dw, double *db, double *dx,
                                               double *dxws, double *ws,
                                               const double *dy, const double *x,
                                               const double *w, ptrdiff_t N, ptrdiff_t C,
                                               ptrdiff_t H, ptrdiff_t W, ptrdiff_t OC,
                                               ptrdiff_t KH, ptrdiff_t KW, ptrdiff_t PH,
                                               ptrdiff_t PW, int n_threads)

    void fc_relu_forward_f32(float *y, const float *x, ptrdiff_t n, int n_threads)
    void fc_relu_forward_f64(double *y, const double *x, ptrdiff_t n, int n_threads)
    void fc_relu_backward_f32(float *dx, const float *dy, const float *y, ptrdiff_t n,
                              int n_threads)
    void fc_relu_backward_f64(double *dx, const double *dy, const double *y, ptrdiff_t n,
                              int n_threads)

    ptrdiff_t fc_softmax_xent_forward_f32(float *probs, float *grad, double *loss,
                                          double *row_loss, const float *logits,
                                          const int64_t *labels, ptrdiff_t N, ptrdiff_t K,
                                          int n_threads)
    ptrdiff_t fc_softmax_xent_forward_f64(double *probs, double *grad, double *loss,
                                          double *row_loss, const double *logits,
                                          const int64_t *labels, ptrdiff_t N, ptrdiff_t K,
                                          int n_threads)
    ptrdiff_t fc_softmax_xent_backward_f32(float *d, const float *probs, const int64_t *labels,
                                           ptrdiff_t N, ptrdiff_t K, double scale, int n_threads)
    ptrdiff_t fc_softmax_xent_backward_f64(double *d, const double *probs,
                                           const int64_t *labels, ptrdiff_t N, ptrdiff_t K,
                                           double scale, int n_threads)

    void fc_s2d_gather_f32(float *xs, const float *x, ptrdiff_t N, ptrdiff_t C, ptrdiff_t H,
                           ptrdiff_t W, ptrdiff_t SH, ptrdiff_t SW, ptrdiff_t PH, ptrdiff_t PW,
                           ptrdiff_t H2, ptrdiff_t W2, int n_threads)
    void fc_s2d_gather_f64(double *xs, const double *x, ptrdiff_t N, ptrdiff_t C, ptrdiff_t H,
                           ptrdiff_t W, ptrdiff_t SH, ptrdiff_t SW, ptrdiff_t PH, ptrdiff_t PW,
                           ptrdiff_t H2, ptrdiff_t W2, int n_threads)
    void fc_s2d_scatter_f32(float *dx, const float *dxs, ptrdiff_t N, ptrdiff_t C, ptrdiff_t H,
                            ptrdiff_t W, ptrdiff_t SH, ptrdiff_t SW, ptrdiff_t PH, ptrdiff_t PW,
                            ptrdiff_t H2, ptrdiff_t W2, int n_threads)
    void fc_s2d_scatter_f64(double *dx, const double *dxs, ptrdiff_t N, ptrdiff_t C,
                            ptrdiff_t H, ptrdiff_t W, ptrdiff_t SH, ptrdiff_t SW, ptrdiff_t PH,
                            ptrdiff_t PW, ptrdiff_t H2, ptrdiff_t W2, int n_threads)

    void fc_lrn_forward_f32(float *y, float *scale, const float *x, ptrdiff_t N, ptrdiff_t C,
                            ptrdiff_t HW, ptrdiff_t size, double alpha, double beta, double k,
                            int n_threads)
    void fc_lrn_forward_f64(double *y, double *scale, const double *x, ptrdiff_t N,
                            ptrdiff_t C, ptrdiff_t HW, ptrdiff_t size, double alpha,
                            double beta, double k, int n_threads)
    void fc_lrn_backward_f32(float *dx, float *scratch, const float *dy, const float *x,
                             const float *y, const float *scale, ptrdiff_t N, ptrdiff_t C,
                             ptrdiff_t HW, ptrdiff_t size, double alpha, double beta,
                             int n_threads)
    void fc_lrn_backward_f64(double *dx, double *scratch, const double *dy, const double *x,
                             const double *y, const double *scale, ptrdiff_t N, ptrdiff_t C,
                             ptrdiff_t HW, ptrdiff_t size, double alpha, double beta,
                             int n_threads)

    void fc_max_pool2d_forward_f32(float *y, int32_t *argmax, const float *x, ptrdiff_t P,
                                   ptrdiff_t H, ptrdiff_t W, ptrdiff_t KH, ptrdiff_t KW,
                                   ptrdiff_t SH, ptrdiff_t SW, ptrdiff_t PH, ptrdiff_t PW,
                                   int n_threads)
    void fc_max_pool2d_forward_f64(double *y, int32_t *argmax, const double *x, ptrdiff_t P,
                                   ptrdiff_t H, ptrdiff_t W, ptrdiff_t KH, ptrdiff_t KW,
                                   ptrdiff_t SH, ptrdiff_t SW, ptrdiff_t PH, ptrdiff_t PW,
                                   int n_threads)
    ptrdiff_t fc_max_pool2d_backward_f32(float *dx, const float *dy, const int32_t *argmax,
                                         ptrdiff_t P, ptrdiff_t H, ptrdiff_t W, ptrdiff_t OH,
                                         ptrdiff_t OW, int n_threads)
    ptrdiff_t fc_max_pool2d_backward_f64(double *dx, const double *dy, const int32_t *argmax,
                                         ptrdiff_t P, ptrdiff_t H, ptrdiff_t W, ptrdiff_t OH,
                                         ptrdiff_t OW, int n_threads)
    void fc_avg_pool2d_forward_f32(float *y, const float *x, ptrdiff_t P, ptrdiff_t H, ptrdiff_t W,
                                   ptrdiff_t KH, ptrdiff_t KW, ptrdiff_t SH, ptrdiff_t SW,
                                   ptrdiff_t PH, ptrdiff_t PW, int count_include_pad,
                                   int n_threads)
    void fc_avg_pool2d_forward_f64(double *y, const double *x, ptrdiff_t P, ptrdiff_t H,
                                   ptrdiff_t W, ptrdiff_t KH, ptrdiff_t KW, ptrdiff_t SH,
                                   ptrdiff_t SW, ptrdiff_t PH, ptrdiff_t PW, int count_include_pad,
                                   int n_threads)
    void fc_avg_pool2d_backward_f32(float *dx, const float *dy, ptrdiff_t P, ptrdiff_t H,
                                    ptrdiff_t W, ptrdiff_t KH, ptrdiff_t KW, ptrdiff_t SH,
                                    ptrdiff_t SW, ptrdiff_t PH, ptrdiff_t PW,
                                    int count_include_pad, int n_threads)
    void fc_avg_pool2d_backward_f64(double *dx, const double *dy, ptrdiff_t P, ptrdiff_t H,
                                    ptrdiff_t W, ptrdiff_t KH, ptrdiff_t KW, ptrdiff_t SH,
                                    ptrdiff_t SW, ptrdiff_t PH, ptrdiff_t PW,
                                    int count_include_pad, int n_threads)

    ptrdiff_t fc_batch_norm_workspace(ptrdiff_t N, ptrdiff_t C, ptrdiff_t S)
    void fc_batch_norm_forward_train_f32(float *y, float *save_mean, float *save_invstd,
                                         float *running_mean, float *running_var, const float *x,
                                         const float *gamma, const float *beta, ptrdiff_t N,
                                         ptrdiff_t C, ptrdiff_t S, double eps, double momentum,
                                         double *work, int n_threads)
    void fc_batch_norm_forward_train_f64(double *y, double *save_mean, double *save_invstd,
                                         double *running_mean, double *running_var,
                                         const double *x, const double *gamma, const double *beta,
                                         ptrdiff_t N, ptrdiff_t C, ptrdiff_t S, double eps,
                                         double momentum, double *work, int n_threads)
    void fc_batch_norm_forward_eval_f32(float *y, const float *x, const float *gamma,
                                        const float *beta, const float *running_mean,
                                        const float *running_var, ptrdiff_t N, ptrdiff_t C,
                                        ptrdiff_t S, double eps, int n_threads)
    void fc_batch_norm_forward_eval_f64(double *y, const double *x, const double *gamma,
                                        const double *beta, const double *running_mean,
                                        const double *running_var, ptrdiff_t N, ptrdiff_t C,
                                        ptrdiff_t S, double eps, int n_threads)
    void fc_batch_norm_backward_f32(float *dx, float *dgamma, float *dbeta, const float *dy,
                                    const float *x, const float *gamma, const float *save_mean,
                                    const float *save_invstd, ptrdiff_t N, ptrdiff_t C,
                                    ptrdiff_t S, int training, double *work, int n_threads)
    void fc_batch_norm_backward_f64(double *dx, double *dgamma, double *dbeta, const double *dy,
                                    const double *x, const double *gamma, const double *save_mean,
                                    const double *save_invstd, ptrdiff_t N, ptrdiff_t C,
                                    ptrdiff_t S, int training, double *work, int n_threads)

    ptrdiff_t fc_linear_forward_workspace(ptrdiff_t N, ptrdiff_t IN)
    void fc_linear_forward_f32(float *y, float *ws, const float *x, const float *w,
                               const float *b, ptrdiff_t N, ptrdiff_t IN, ptrdiff_t OUT,
                               int n_threads)
    void fc_linear_forward_f64(double *y, double *ws, const double *x, const double *w,
                               const double *b, ptrdiff_t N, ptrdiff_t IN, ptrdiff_t OUT,
                               int n_threads)
    ptrdiff_t fc_linear_backward_workspace(ptrdiff_t N, ptrdiff_t IN, ptrdiff_t OUT)
    void fc_linear_backward_f32(float *dx, float *dw, float *db, float *ws, const float *dy,
                                const float *x, const float *w, ptrdiff_t N, ptrdiff_t IN,
                                ptrdiff_t OUT, int accumulate, int n_threads)
    void fc_linear_backward_f64(double *dx, double *dw, double *db, double *ws, const double *dy,
                                const double *x, const double *w, ptrdiff_t N, ptrdiff_t IN,
                                ptrdiff_t OUT, int accumulate, int n_threads)

    void fc_adam_update_f32(float *w, float *m, float *v, const float *g, ptrdiff_t n, double lr,
                            double beta1, double beta2, double eps, double bc1, double bc2,
                            int n_threads)
    void fc_adam_update_f64(double *w, double *m, double *v, const double *g, ptrdiff_t n,
                            double lr, double beta1, double beta2, double eps, double bc1,
                            double bc2, int n_threads)
