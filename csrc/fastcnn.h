/* fastcnn.h: the C99 kernel API of fastcnn, called from fastcnn/_kernels.pyx without the GIL.
 * Plain C: no Python.h, no numpy headers, no validation. The caller (fastcnn/functional.py) has
 * checked every shape, dtype and size and allocated every output and workspace.
 * Conventions: outputs first, then const inputs, then sizes, then n_threads; exported names start
 * with fc_; _f32/_f64 variants come from one type-generic body; every size and offset is ptrdiff_t.
 * All arrays are C-contiguous; images are NCHW. */
#ifndef FASTCNN_H
#define FASTCNN_H

#include <stddef.h>
#include <stdint.h>

/* ---- BLAS and threads (blas.c) ------------------------------------------------------------ */
/* Fortran-ABI GEMM, as exported by scipy.linalg.cython_blas (column-major). */
typedef void (*fc_sgemm_fn)(char *transa, char *transb, int *m, int *n, int *k, float *alpha,
                            float *a, int *lda, float *b, int *ldb, float *beta, float *c, int *ldc);
typedef void (*fc_dgemm_fn)(char *transa, char *transb, int *m, int *n, int *k, double *alpha,
                            double *a, int *lda, double *b, int *ldb, double *beta, double *c,
                            int *ldc);
/* OpenBLAS thread control (may be NULL when the BLAS is not OpenBLAS). */
typedef int (*fc_blas_set_threads_local_fn)(int);
typedef void (*fc_blas_set_threads_fn)(int);
typedef int (*fc_blas_get_threads_fn)(void);

void fc_register_blas(fc_sgemm_fn sgemm, fc_dgemm_fn dgemm);
void fc_register_blas_threads(fc_blas_set_threads_fn set_threads, fc_blas_get_threads_fn get_threads);

/* Row-major C = alpha * op(A) @ op(B) + beta * C, with A (M,K) or (K,M) when trans_a, etc.
 * Wraps the registered column-major GEMM through the transpose swap. */
void fc_gemm_f32(int trans_a, int trans_b, ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, float alpha,
                 const float *A, ptrdiff_t lda, const float *B, ptrdiff_t ldb, float beta, float *C,
                 ptrdiff_t ldc);
void fc_gemm_f64(int trans_a, int trans_b, ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, double alpha,
                 const double *A, ptrdiff_t lda, const double *B, ptrdiff_t ldb, double beta,
                 double *C, ptrdiff_t ldc);

/* Pins BLAS to one thread for the duration of one of our parallel regions; returns the previous
 * count to hand back to fc_blas_threads_end (or -1 when nothing was changed). */
int fc_blas_threads_begin(int our_threads);
void fc_blas_threads_end(int previous);
int fc_blas_get_num_threads(void);

/* ---- build facts (config.c) ---------------------------------------------------------------- */
int fc_openmp_enabled(void);
int fc_omp_max_threads(void);
const char *fc_simd_level(void);   /* "avx512f", "avx2", "sse2" or "portable": what the CPU offers */

/* Instruction sets of the run-time dispatched kernels (direct.c), in increasing order. */
enum { FC_SIMD_PORTABLE = 0, FC_SIMD_AVX2 = 1, FC_SIMD_AVX512 = 2 };
int fc_simd_supported(void);      /* the best variant this CPU and build can run */
int fc_simd_active(void);         /* the variant the kernels use: min(supported, cap) */
int fc_simd_set_cap(int level);   /* cap the variants (tests, comparisons); returns the active one */
const char *fc_compile_flags(void);

/* ---- convolution (conv.c) -----------------------------------------------------------------
 * x: (N, C, H, W)   weight: (OC, C, KH, KW)   bias: (OC) or NULL   y: (N, OC, OH, OW)
 * OH = (H + 2*PH - KH) / SH + 1, OW likewise. Per image: col (C*KH*KW, OH*OW) = im2col(x[n]),
 * y[n] = weight (OC, C*KH*KW) @ col, then bias (+ ReLU) in one pass.
 * Workspace sizes are in elements of the kernel's dtype. */
ptrdiff_t fc_conv2d_forward_workspace(ptrdiff_t C, ptrdiff_t H, ptrdiff_t W, ptrdiff_t KH,
                                      ptrdiff_t KW, ptrdiff_t SH, ptrdiff_t SW, ptrdiff_t PH,
                                      ptrdiff_t PW, ptrdiff_t OC, int n_threads);
ptrdiff_t fc_conv2d_backward_workspace(ptrdiff_t C, ptrdiff_t H, ptrdiff_t W, ptrdiff_t KH,
                                       ptrdiff_t KW, ptrdiff_t SH, ptrdiff_t SW, ptrdiff_t PH,
                                       ptrdiff_t PW, ptrdiff_t OC, int n_threads);

void fc_conv2d_forward_f32(float *y, float *workspace, const float *x, const float *weight,
                           const float *bias, ptrdiff_t N, ptrdiff_t C, ptrdiff_t H, ptrdiff_t W,
                           ptrdiff_t OC, ptrdiff_t KH, ptrdiff_t KW, ptrdiff_t SH, ptrdiff_t SW,
                           ptrdiff_t PH, ptrdiff_t PW, int relu, int n_threads);
void fc_conv2d_forward_f64(double *y, double *workspace, const double *x, const double *weight,
                           const double *bias, ptrdiff_t N, ptrdiff_t C, ptrdiff_t H, ptrdiff_t W,
                           ptrdiff_t OC, ptrdiff_t KH, ptrdiff_t KW, ptrdiff_t SH, ptrdiff_t SW,
                           ptrdiff_t PH, ptrdiff_t PW, int relu, int n_threads);

/* dx (N, C, H, W) or NULL to skip; dweight (OC, C, KH, KW) overwritten, or NULL to skip (then
 * dx alone: the input gradient of a layer whose weight gradient comes from fc_conv2d_direct_*);
 * dbias (OC) or NULL. */
void fc_conv2d_backward_f32(float *dx, float *dweight, float *dbias, float *workspace,
                            const float *dy, const float *x, const float *weight, ptrdiff_t N,
                            ptrdiff_t C, ptrdiff_t H, ptrdiff_t W, ptrdiff_t OC, ptrdiff_t KH,
                            ptrdiff_t KW, ptrdiff_t SH, ptrdiff_t SW, ptrdiff_t PH, ptrdiff_t PW,
                            int n_threads);
void fc_conv2d_backward_f64(double *dx, double *dweight, double *dbias, double *workspace,
                            const double *dy, const double *x, const double *weight, ptrdiff_t N,
                            ptrdiff_t C, ptrdiff_t H, ptrdiff_t W, ptrdiff_t OC, ptrdiff_t KH,
                            ptrdiff_t KW, ptrdiff_t SH, ptrdiff_t SW, ptrdiff_t PH, ptrdiff_t PW,
                            int n_threads);

/* ---- Winograd F(2x2,3x3) convolution (winograd.c) -------------------------------------------
 * 3x3 kernels, stride 1, any padding (Lavin & Gray 2015). Same arrays and meaning as
 * fc_conv2d_forward/backward (weight (OC, C, 3, 3)); sizes in elements of the kernel's dtype.
 * Forward and backward need their own workspace size. Returns 1 where the algorithm applies. */
int fc_conv2d_winograd_supported(ptrdiff_t KH, ptrdiff_t KW, ptrdiff_t SH, ptrdiff_t SW,
                                 ptrdiff_t PH, ptrdiff_t PW);
ptrdiff_t fc_conv2d_winograd_forward_workspace(ptrdiff_t C, ptrdiff_t H, ptrdiff_t W,
                                               ptrdiff_t PH, ptrdiff_t PW, ptrdiff_t OC,
                                               int n_threads);
ptrdiff_t fc_conv2d_winograd_backward_workspace(ptrdiff_t C, ptrdiff_t H, ptrdiff_t W,
                                                ptrdiff_t PH, ptrdiff_t PW, ptrdiff_t OC,
                                                int n_threads);
void fc_conv2d_winograd_forward_f32(float *y, float *workspace, const float *x,
                                    const float *weight, const float *bias, ptrdiff_t N,
                                    ptrdiff_t C, ptrdiff_t H, ptrdiff_t W, ptrdiff_t OC,
                                    ptrdiff_t PH, ptrdiff_t PW, int relu, int n_threads);
void fc_conv2d_winograd_forward_f64(double *y, double *workspace, const double *x,
                                    const double *weight, const double *bias, ptrdiff_t N,
                                    ptrdiff_t C, ptrdiff_t H, ptrdiff_t W, ptrdiff_t OC,
                                    ptrdiff_t PH, ptrdiff_t PW, int relu, int n_threads);
/* dx (N, C, H, W) or NULL to skip; dweight (OC, C, 3, 3) overwritten or NULL to skip; dbias (OC)
 * or NULL. */
void fc_conv2d_winograd_backward_f32(float *dx, float *dweight, float *dbias, float *workspace,
                                     const float *dy, const float *x, const float *weight,
                                     ptrdiff_t N, ptrdiff_t C, ptrdiff_t H, ptrdiff_t W,
                                     ptrdiff_t OC, ptrdiff_t PH, ptrdiff_t PW, int n_threads);
void fc_conv2d_winograd_backward_f64(double *dx, double *dweight, double *dbias,
                                     double *workspace, const double *dy, const double *x,
                                     const double *weight, ptrdiff_t N, ptrdiff_t C, ptrdiff_t H,
                                     ptrdiff_t W, ptrdiff_t OC, ptrdiff_t PH, ptrdiff_t PW,
                                     int n_threads);

/* ---- Winograd on 6x6 tiles: F(4x4,3x3) and F(2x2,5x5) (winograd6.c) -------------------------
 * The same contract as the F(2x2,3x3) functions above, for R x R kernels with R = 3 (F(4x4,3x3))
 * or R = 5 (F(2x2,5x5)), stride 1, any padding. */
int fc_conv2d_winograd6_supported(ptrdiff_t R, ptrdiff_t KH, ptrdiff_t KW, ptrdiff_t SH,
                                  ptrdiff_t SW, ptrdiff_t PH, ptrdiff_t PW);
ptrdiff_t fc_conv2d_winograd6_forward_workspace(ptrdiff_t R, ptrdiff_t C, ptrdiff_t H,
                                                ptrdiff_t W, ptrdiff_t PH, ptrdiff_t PW,
                                                ptrdiff_t OC, int n_threads);
ptrdiff_t fc_conv2d_winograd6_backward_workspace(ptrdiff_t R, ptrdiff_t C, ptrdiff_t H,
                                                 ptrdiff_t W, ptrdiff_t PH, ptrdiff_t PW,
                                                 ptrdiff_t OC, int n_threads);
void fc_conv2d_winograd6_forward_f32(ptrdiff_t R, float *y, float *workspace, const float *x,
                                     const float *weight, const float *bias, ptrdiff_t N,
                                     ptrdiff_t C, ptrdiff_t H, ptrdiff_t W, ptrdiff_t OC,
                                     ptrdiff_t PH, ptrdiff_t PW, int relu, int n_threads);
void fc_conv2d_winograd6_forward_f64(ptrdiff_t R, double *y, double *workspace, const double *x,
                                     const double *weight, const double *bias, ptrdiff_t N,
                                     ptrdiff_t C, ptrdiff_t H, ptrdiff_t W, ptrdiff_t OC,
                                     ptrdiff_t PH, ptrdiff_t PW, int relu, int n_threads);
/* dx, dweight, dbias: each may be NULL (skipped). */
void fc_conv2d_winograd6_backward_f32(ptrdiff_t R, float *dx, float *dweight, float *dbias,
                                      float *workspace, const float *dy, const float *x,
                                      const float *weight, ptrdiff_t N, ptrdiff_t C, ptrdiff_t H,
                                      ptrdiff_t W, ptrdiff_t OC, ptrdiff_t PH, ptrdiff_t PW,
                                      int n_threads);
void fc_conv2d_winograd6_backward_f64(ptrdiff_t R, double *dx, double *dweight, double *dbias,
                                      double *workspace, const double *dy, const double *x,
                                      const double *weight, ptrdiff_t N, ptrdiff_t C,
                                      ptrdiff_t H, ptrdiff_t W, ptrdiff_t OC, ptrdiff_t PH,
                                      ptrdiff_t PW, int n_threads);

/* ---- direct convolution (direct.c) -----------------------------------------------------------
 * Stride 1, any kernel and padding, computed from a padded copy of each image: forward (bias,
 * fused ReLU), backward-weights (+ bias) and backward-data; for few input channels. Arrays as fc_conv2d_*. One
 * workspace size serves both calls. Returns 1 where it applies. */
int fc_conv2d_direct_supported(ptrdiff_t SH, ptrdiff_t SW);
ptrdiff_t fc_conv2d_direct_workspace(ptrdiff_t C, ptrdiff_t H, ptrdiff_t W, ptrdiff_t KH,
                                     ptrdiff_t KW, ptrdiff_t PH, ptrdiff_t PW, ptrdiff_t OC,
                                     int n_threads);
void fc_conv2d_direct_forward_f32(float *y, float *workspace, const float *x, const float *weight,
                                  const float *bias, ptrdiff_t N, ptrdiff_t C, ptrdiff_t H,
                                  ptrdiff_t W, ptrdiff_t OC, ptrdiff_t KH, ptrdiff_t KW,
                                  ptrdiff_t PH, ptrdiff_t PW, int relu, int n_threads);
void fc_conv2d_direct_forward_f64(double *y, double *workspace, const double *x,
                                  const double *weight, const double *bias, ptrdiff_t N,
                                  ptrdiff_t C, ptrdiff_t H, ptrdiff_t W, ptrdiff_t OC,
                                  ptrdiff_t KH, ptrdiff_t KW, ptrdiff_t PH, ptrdiff_t PW,
                                  int relu, int n_threads);
/* dx (N, C, H, W) overwritten. */
void fc_conv2d_direct_backward_data_f32(float *dx, float *workspace, const float *dy,
                                        const float *weight, ptrdiff_t N, ptrdiff_t C,
                                        ptrdiff_t H, ptrdiff_t W, ptrdiff_t OC, ptrdiff_t KH,
                                        ptrdiff_t KW, ptrdiff_t PH, ptrdiff_t PW, int n_threads);
void fc_conv2d_direct_backward_data_f64(double *dx, double *workspace, const double *dy,
                                        const double *weight, ptrdiff_t N, ptrdiff_t C,
                                        ptrdiff_t H, ptrdiff_t W, ptrdiff_t OC, ptrdiff_t KH,
                                        ptrdiff_t KW, ptrdiff_t PH, ptrdiff_t PW, int n_threads);
/* dweight (OC, C, KH, KW) overwritten; dbias (OC) or NULL; dx (N, C, H, W) or NULL: computed
 * image by image after each image's weight gradient, by im2col's GEMM and col2im
 * (fc_conv2d_backward_data_image), for layers with too few input channels for the direct dx;
 * dx_workspace: n_threads * C*KH*KW * OH*OW elements when dx is wanted. */
void fc_conv2d_direct_backward_weights_f32(float *dweight, float *dbias, float *dx,
                                           float *dx_workspace, float *workspace,
                                           const float *dy, const float *x,
                                           const float *weight, ptrdiff_t N, ptrdiff_t C,
                                           ptrdiff_t H, ptrdiff_t W, ptrdiff_t OC, ptrdiff_t KH,
                                           ptrdiff_t KW, ptrdiff_t PH, ptrdiff_t PW,
                                           int n_threads);
void fc_conv2d_direct_backward_weights_f64(double *dweight, double *dbias, double *dx,
                                           double *dx_workspace, double *workspace,
                                           const double *dy, const double *x,
                                           const double *weight, ptrdiff_t N, ptrdiff_t C,
                                           ptrdiff_t H, ptrdiff_t W, ptrdiff_t OC, ptrdiff_t KH,
                                           ptrdiff_t KW, ptrdiff_t PH, ptrdiff_t PW,
                                           int n_threads);
/* conv.c: one image's dx of a stride-1 layer from dy_n (OC, OH, OW): dcol (scratch, K*OH*OW)
 * = weight^T dy_n, then col2im; for the loop above. */
void fc_conv2d_backward_data_image_f32(float *dxn, float *dcol, const float *dyn,
                                       const float *weight, ptrdiff_t C, ptrdiff_t H, ptrdiff_t W,
                                       ptrdiff_t OC, ptrdiff_t KH, ptrdiff_t KW, ptrdiff_t PH,
                                       ptrdiff_t PW);
void fc_conv2d_backward_data_image_f64(double *dxn, double *dcol, const double *dyn,
                                       const double *weight, ptrdiff_t C, ptrdiff_t H,
                                       ptrdiff_t W, ptrdiff_t OC, ptrdiff_t KH, ptrdiff_t KW,
                                       ptrdiff_t PH, ptrdiff_t PW);

/* ---- ReLU (relu.c) ------------------------------------------------------------------------
 * y = x where x > 0 or NaN, else +0 (the convolution epilogue's rule), over n elements; y may be
 * x. dx = dy where y > 0, else 0, over n elements; dx may be dy. */
void fc_relu_forward_f32(float *y, const float *x, ptrdiff_t n, int n_threads);
void fc_relu_forward_f64(double *y, const double *x, ptrdiff_t n, int n_threads);
void fc_relu_backward_f32(float *dx, const float *dy, const float *y, ptrdiff_t n, int n_threads);
void fc_relu_backward_f64(double *dx, const double *dy, const double *y, ptrdiff_t n,
                          int n_threads);

/* ---- softmax cross-entropy (softmax_xent.c) ------------------------------------------------
 * Forward: probs (N, K) = softmax of each row of logits, *loss = the mean over rows of
 * log(sum exp(row)) - row[labels[n]] (row_loss: N doubles of scratch), and unless grad is NULL
 * grad (N, K) = (probs - onehot(labels)) / N, the backward's result for scale 1/N. Backward: d (N, K) =
 * scale * (probs - onehot(labels)); d may be probs. Both return -1, or the index of the first
 * label outside [0, K) having written nothing. A row whose max is NaN or +-inf gives NaN. */
ptrdiff_t fc_softmax_xent_forward_f32(float *probs, float *grad, double *loss, double *row_loss,
                                      const float *logits, const int64_t *labels, ptrdiff_t N,
                                      ptrdiff_t K, int n_threads);
ptrdiff_t fc_softmax_xent_forward_f64(double *probs, double *grad, double *loss,
                                      double *row_loss, const double *logits,
                                      const int64_t *labels, ptrdiff_t N, ptrdiff_t K,
                                      int n_threads);
ptrdiff_t fc_softmax_xent_backward_f32(float *d, const float *probs, const int64_t *labels,
                                       ptrdiff_t N, ptrdiff_t K, double scale, int n_threads);
ptrdiff_t fc_softmax_xent_backward_f64(double *d, const double *probs, const int64_t *labels,
                                       ptrdiff_t N, ptrdiff_t K, double scale, int n_threads);

/* ---- space-to-depth (s2d.c) --------------------------------------------------------------
 * xs (N, C*SH*SW, H2, W2) = the SH*SW phases of x (N, C, H, W) shifted by the padding (PH, PW):
 * xs[n][(c*SH + a)*SW + b][i][j] = x[n][c][i*SH + a - PH][j*SW + b - PW], 0 outside x; and its
 * adjoint, dx (N, C, H, W) from dxs shaped like xs (0 for cells past the phases' frame). */
void fc_s2d_gather_f32(float *xs, const float *x, ptrdiff_t N, ptrdiff_t C, ptrdiff_t H,
                       ptrdiff_t W, ptrdiff_t SH, ptrdiff_t SW, ptrdiff_t PH, ptrdiff_t PW,
                       ptrdiff_t H2, ptrdiff_t W2, int n_threads);
void fc_s2d_gather_f64(double *xs, const double *x, ptrdiff_t N, ptrdiff_t C, ptrdiff_t H,
                       ptrdiff_t W, ptrdiff_t SH, ptrdiff_t SW, ptrdiff_t PH, ptrdiff_t PW,
                       ptrdiff_t H2, ptrdiff_t W2, int n_threads);
void fc_s2d_scatter_f32(float *dx, const float *dxs, ptrdiff_t N, ptrdiff_t C, ptrdiff_t H,
                        ptrdiff_t W, ptrdiff_t SH, ptrdiff_t SW, ptrdiff_t PH, ptrdiff_t PW,
                        ptrdiff_t H2, ptrdiff_t W2, int n_threads);
void fc_s2d_scatter_f64(double *dx, const double *dxs, ptrdiff_t N, ptrdiff_t C, ptrdiff_t H,
                        ptrdiff_t W, ptrdiff_t SH, ptrdiff_t SW, ptrdiff_t PH, ptrdiff_t PW,
                        ptrdiff_t H2, ptrdiff_t W2, int n_threads);

/* ---- local response normalisation (lrn.c) -----------------------------------------------
 * Across channels on x (N, C, HW): S = k + alpha * sum of x[j]^2 over j in [c - size/2,
 * c + (size-1)/2] within [0, C), y = x * S^-beta; scale receives S for the backward.
 * Backward: dx = dy S^-beta - 2 alpha beta x * (sum over the channels c whose window holds i of
 * dy[c] y[c] / S[c]); scratch (N, C, HW). No argument may alias another. */
void fc_lrn_forward_f32(float *y, float *scale, const float *x, ptrdiff_t N, ptrdiff_t C,
                        ptrdiff_t HW, ptrdiff_t size, double alpha, double beta, double k,
                        int n_threads);
void fc_lrn_forward_f64(double *y, double *scale, const double *x, ptrdiff_t N, ptrdiff_t C,
                        ptrdiff_t HW, ptrdiff_t size, double alpha, double beta, double k,
                        int n_threads);
void fc_lrn_backward_f32(float *dx, float *scratch, const float *dy, const float *x,
                         const float *y, const float *scale, ptrdiff_t N, ptrdiff_t C,
                         ptrdiff_t HW, ptrdiff_t size, double alpha, double beta, int n_threads);
void fc_lrn_backward_f64(double *dx, double *scratch, const double *dy, const double *x,
                         const double *y, const double *scale, ptrdiff_t N, ptrdiff_t C,
                         ptrdiff_t HW, ptrdiff_t size, double alpha, double beta, int n_threads);

/* ---- pooling (pool.c) ---------------------------------------------------------------------
 * x: (P, H, W) with P = N*C planes   y, argmax: (P, OH, OW)
 * argmax[p, i, j] = h*W + w of the winning input cell of plane p (padded cells never win; a NaN
 * in the window wins, so NaN propagates). argmax may be NULL (no backward needed).
 * count_include_pad: average divides by KH*KW (PyTorch's default) or by the real cells only. */
void fc_max_pool2d_forward_f32(float *y, int32_t *argmax, const float *x, ptrdiff_t P, ptrdiff_t H,
                               ptrdiff_t W, ptrdiff_t KH, ptrdiff_t KW, ptrdiff_t SH, ptrdiff_t SW,
                               ptrdiff_t PH, ptrdiff_t PW, int n_threads);
void fc_max_pool2d_forward_f64(double *y, int32_t *argmax, const double *x, ptrdiff_t P,
                               ptrdiff_t H, ptrdiff_t W, ptrdiff_t KH, ptrdiff_t KW, ptrdiff_t SH,
                               ptrdiff_t SW, ptrdiff_t PH, ptrdiff_t PW, int n_threads);
/* dx (P, H, W) is overwritten. Returns the number of argmax entries outside [0, H*W) (skipped):
 * the caller raises when it is not 0, so corrupted indices can never write out of bounds. */
ptrdiff_t fc_max_pool2d_backward_f32(float *dx, const float *dy, const int32_t *argmax, ptrdiff_t P,
                                     ptrdiff_t H, ptrdiff_t W, ptrdiff_t OH, ptrdiff_t OW,
                                     int n_threads);
ptrdiff_t fc_max_pool2d_backward_f64(double *dx, const double *dy, const int32_t *argmax,
                                     ptrdiff_t P, ptrdiff_t H, ptrdiff_t W, ptrdiff_t OH,
                                     ptrdiff_t OW, int n_threads);
void fc_avg_pool2d_forward_f32(float *y, const float *x, ptrdiff_t P, ptrdiff_t H, ptrdiff_t W,
                               ptrdiff_t KH, ptrdiff_t KW, ptrdiff_t SH, ptrdiff_t SW, ptrdiff_t PH,
                               ptrdiff_t PW, int count_include_pad, int n_threads);
void fc_avg_pool2d_forward_f64(double *y, const double *x, ptrdiff_t P, ptrdiff_t H, ptrdiff_t W,
                               ptrdiff_t KH, ptrdiff_t KW, ptrdiff_t SH, ptrdiff_t SW, ptrdiff_t PH,
                               ptrdiff_t PW, int count_include_pad, int n_threads);
/* dx (P, H, W) is overwritten. */
void fc_avg_pool2d_backward_f32(float *dx, const float *dy, ptrdiff_t P, ptrdiff_t H, ptrdiff_t W,
                                ptrdiff_t KH, ptrdiff_t KW, ptrdiff_t SH, ptrdiff_t SW,
                                ptrdiff_t PH, ptrdiff_t PW, int count_include_pad, int n_threads);
void fc_avg_pool2d_backward_f64(double *dx, const double *dy, ptrdiff_t P, ptrdiff_t H,
                                ptrdiff_t W, ptrdiff_t KH, ptrdiff_t KW, ptrdiff_t SH,
                                ptrdiff_t SW, ptrdiff_t PH, ptrdiff_t PW, int count_include_pad,
                                int n_threads);

/* ---- batch normalization (batchnorm.c) ----------------------------------------------------
 * x, y, dy, dx: (N, C, S) with S = H*W for 4-D input and S = 1 for (N, F) input.
 * gamma, beta, running_*, save_*, dgamma, dbeta: (C).
 * Training: mean and biased variance per channel accumulated in double (deviations from block
 * means, combined exactly: no E[x^2] - mean^2);
 * save_mean = mean, save_invstd = 1/sqrt(var + eps); y = (x - mean) * invstd * gamma + beta.
 * When running_mean/running_var are not NULL: running = (1 - momentum) * running + momentum *
 * batch, the variance unbiased (times M/(M-1), M = N*S; the caller forbids M == 1 in training).
 * Eval: the same affine map with the running statistics.
 * work: fc_batch_norm_workspace(N, C, S) doubles of scratch (training forward, backward). */
ptrdiff_t fc_batch_norm_workspace(ptrdiff_t N, ptrdiff_t C, ptrdiff_t S);
void fc_batch_norm_forward_train_f32(float *y, float *save_mean, float *save_invstd,
                                     float *running_mean, float *running_var, const float *x,
                                     const float *gamma, const float *beta, ptrdiff_t N,
                                     ptrdiff_t C, ptrdiff_t S, double eps, double momentum,
                                     double *work, int n_threads);
void fc_batch_norm_forward_train_f64(double *y, double *save_mean, double *save_invstd,
                                     double *running_mean, double *running_var, const double *x,
                                     const double *gamma, const double *beta, ptrdiff_t N,
                                     ptrdiff_t C, ptrdiff_t S, double eps, double momentum,
                                     double *work, int n_threads);
void fc_batch_norm_forward_eval_f32(float *y, const float *x, const float *gamma,
                                    const float *beta, const float *running_mean,
                                    const float *running_var, ptrdiff_t N, ptrdiff_t C,
                                    ptrdiff_t S, double eps, int n_threads);
void fc_batch_norm_forward_eval_f64(double *y, const double *x, const double *gamma,
                                    const double *beta, const double *running_mean,
                                    const double *running_var, ptrdiff_t N, ptrdiff_t C,
                                    ptrdiff_t S, double eps, int n_threads);
/* training != 0: the batch statistics depend on x, so
 *   dx = gamma * invstd * (dy - mean(dy) - xhat * mean(dy * xhat))   (means over N*S)
 * training == 0: save_mean/save_invstd are the running statistics (constants): dx = gamma*invstd*dy.
 * Always: dgamma = sum(dy * xhat), dbeta = sum(dy), accumulated in double. */
void fc_batch_norm_backward_f32(float *dx, float *dgamma, float *dbeta, const float *dy,
                                const float *x, const float *gamma, const float *save_mean,
                                const float *save_invstd, ptrdiff_t N, ptrdiff_t C, ptrdiff_t S,
                                int training, double *work, int n_threads);
void fc_batch_norm_backward_f64(double *dx, double *dgamma, double *dbeta, const double *dy,
                                const double *x, const double *gamma, const double *save_mean,
                                const double *save_invstd, ptrdiff_t N, ptrdiff_t C, ptrdiff_t S,
                                int training, double *work, int n_threads);

/* ---- fully connected (linear.c) -----------------------------------------------------------
 * x (N, IN)  weight (OUT, IN)  bias (OUT) or NULL  y (N, OUT) = x @ weight^T + bias.
 * Backward: dweight (OUT, IN) = dy^T @ x, dbias (OUT) = sum_n dy or NULL (both overwritten, or
 * with `accumulate` added to: a Parameter's .grad, without a temporary), dx (N, IN) = dy @ weight,
 * or NULL to skip. */
/* Elements of workspace the forward needs (either dtype): the batch transposed for the
 * small-batch kernel, or 0. */
ptrdiff_t fc_linear_forward_workspace(ptrdiff_t N, ptrdiff_t IN);
void fc_linear_forward_f32(float *y, float *workspace, const float *x, const float *weight,
                           const float *bias, ptrdiff_t N, ptrdiff_t IN, ptrdiff_t OUT,
                           int n_threads);
void fc_linear_forward_f64(double *y, double *workspace, const double *x, const double *weight,
                           const double *bias, ptrdiff_t N, ptrdiff_t IN, ptrdiff_t OUT,
                           int n_threads);
/* Elements of workspace the backward needs (either dtype): dy and dx transposed for a small
 * batch's dx, or 0. */
ptrdiff_t fc_linear_backward_workspace(ptrdiff_t N, ptrdiff_t IN, ptrdiff_t OUT);
void fc_linear_backward_f32(float *dx, float *dweight, float *dbias, float *workspace,
                            const float *dy, const float *x, const float *weight, ptrdiff_t N,
                            ptrdiff_t IN, ptrdiff_t OUT, int accumulate, int n_threads);
void fc_linear_backward_f64(double *dx, double *dweight, double *dbias, double *workspace,
                            const double *dy, const double *x, const double *weight, ptrdiff_t N,
                            ptrdiff_t IN, ptrdiff_t OUT, int accumulate, int n_threads);

/* ---- optimizer updates (optim.c) ----------------------------------------------------------
 * w, m, v, g: n elements each, updated in place (g read only). */
void fc_adam_update_f32(float *w, float *m, float *v, const float *g, ptrdiff_t n, double lr,
                        double beta1, double beta2, double eps, double bias_correction1,
                        double bias_correction2, int n_threads);
void fc_adam_update_f64(double *w, double *m, double *v, const double *g, ptrdiff_t n,
                        double lr, double beta1, double beta2, double eps,
                        double bias_correction1, double bias_correction2, int n_threads);

#endif /* FASTCNN_H */
