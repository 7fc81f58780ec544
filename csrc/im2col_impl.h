/* im2col_impl.h: the data movement around the im2col convolution's per-image GEMMs (conv_impl.h):
 * im2col, its adjoint col2im, the forward's bias/ReLU epilogue and the bias gradient's row sums.
 * Type-generic, instantiated by conv.c for float and double once per instruction set
 * (dtype_variants.h through simd_targets.h: functions named like im2col_f32_avx512, picked per
 * call by fc_simd_active()), with REAL and FN(name) defined; valid_range and the fc_bytes*
 * move types come from conv.c. Compiled for the x86-64 baseline only, these loops ran on SSE2,
 * 2 doubles a vector, and the row copies called memcpy: with them here (and copy_row), forward
 * times at 1 thread were 0.89 (MNIST's 1->30 5x5) and 0.79 (DeepConvNet's 1->16 3x3) of the
 * old ones in float, 0.96 (3->32 5x5 on 32x32; backward 0.93) in double. No include guard. */

/* dst[0..n) = src[0..n) by fixed-size moves of 64, 32, 16, 8 and 4 bytes. GCC turns a plain copy
 * loop into a call to memcpy, whose per-call cost outweighed the copy on im2col's short rows
 * (MNIST: 600 rows of 24 elements per image; perf: memmove 7% of a float64 conv step). */
static inline void FN(copy_row)(REAL *restrict dst, const REAL *restrict src, ptrdiff_t n)
{
    char *d = (char *)dst;
    const char *s = (const char *)src;
    const ptrdiff_t bytes = n * (ptrdiff_t)sizeof(REAL);
    ptrdiff_t o = 0;
    for (; o + 64 <= bytes; o += 64) *(fc_bytes64 *)(d + o) = *(const fc_bytes64 *)(s + o);
    if (o + 32 <= bytes) {
        *(fc_bytes32 *)(d + o) = *(const fc_bytes32 *)(s + o);
        o += 32;
    }
    if (o + 16 <= bytes) {
        *(fc_bytes16 *)(d + o) = *(const fc_bytes16 *)(s + o);
        o += 16;
    }
    if (o + 8 <= bytes) {
        *(fc_bytes8 *)(d + o) = *(const fc_bytes8 *)(s + o);
        o += 8;
    }
    if (o + 4 <= bytes) *(fc_bytes4 *)(d + o) = *(const fc_bytes4 *)(s + o);
}

/* col (C*KH*KW, OH*OW) = im2col(x_img (C, H, W)); padded cells are 0. For each kernel offset
 * the valid output columns [ow_lo, ow_hi) are computed once, so the inner copy has no branch. */
static void FN(im2col)(REAL *restrict col, const REAL *restrict x, ptrdiff_t C, ptrdiff_t H,
                       ptrdiff_t W, ptrdiff_t KH, ptrdiff_t KW, ptrdiff_t SH, ptrdiff_t SW,
                       ptrdiff_t PH, ptrdiff_t PW, ptrdiff_t OH, ptrdiff_t OW)
{
    for (ptrdiff_t c = 0; c < C; ++c) {
        const REAL *xc = x + c * H * W;
        for (ptrdiff_t kh = 0; kh < KH; ++kh) {
            for (ptrdiff_t kw = 0; kw < KW; ++kw) {
                REAL *row = col + ((c * KH + kh) * KW + kw) * OH * OW;
                ptrdiff_t ow_lo, ow_hi;
                valid_range(kw, PW, SW, W, OW, &ow_lo, &ow_hi);
                for (ptrdiff_t oh = 0; oh < OH; ++oh) {
                    REAL *dst = row + oh * OW;
                    ptrdiff_t ih = oh * SH - PH + kh;
                    if (ih < 0 || ih >= H) {
                        for (ptrdiff_t ow = 0; ow < OW; ++ow) dst[ow] = 0;
                        continue;
                    }
                    const REAL *src = xc + ih * W - PW + kw;
                    for (ptrdiff_t ow = 0; ow < ow_lo; ++ow) dst[ow] = 0;
                    if (SW == 1) {
                        FN(copy_row)(dst + ow_lo, src + ow_lo, ow_hi - ow_lo);
                    } else {
                        for (ptrdiff_t ow = ow_lo; ow < ow_hi; ++ow) dst[ow] = src[ow * SW];
                    }
                    for (ptrdiff_t ow = ow_hi; ow < OW; ++ow) dst[ow] = 0;
                }
            }
        }
    }
}

/* dx_img (C, H, W) = col2im(dcol (C*KH*KW, OH*OW)): the adjoint of im2col (overlaps add). */
static void FN(col2im)(REAL *restrict dx, const REAL *restrict dcol, ptrdiff_t C, ptrdiff_t H,
                       ptrdiff_t W, ptrdiff_t KH, ptrdiff_t KW, ptrdiff_t SH, ptrdiff_t SW,
                       ptrdiff_t PH, ptrdiff_t PW, ptrdiff_t OH, ptrdiff_t OW)
{
    for (ptrdiff_t i = 0; i < C * H * W; ++i) dx[i] = 0;
    for (ptrdiff_t c = 0; c < C; ++c) {
        REAL *dxc = dx + c * H * W;
        for (ptrdiff_t kh = 0; kh < KH; ++kh) {
            for (ptrdiff_t kw = 0; kw < KW; ++kw) {
                const REAL *row = dcol + ((c * KH + kh) * KW + kw) * OH * OW;
                ptrdiff_t ow_lo, ow_hi;
                valid_range(kw, PW, SW, W, OW, &ow_lo, &ow_hi);
                for (ptrdiff_t oh = 0; oh < OH; ++oh) {
                    ptrdiff_t ih = oh * SH - PH + kh;
                    if (ih < 0 || ih >= H) continue;
                    const REAL *src = row + oh * OW;
                    REAL *dst = dxc + ih * W - PW + kw;
                    if (SW == 1) {
                        for (ptrdiff_t ow = ow_lo; ow < ow_hi; ++ow) dst[ow] += src[ow];
                    } else {
                        for (ptrdiff_t ow = ow_lo; ow < ow_hi; ++ow) dst[ow * SW] += src[ow];
                    }
                }
            }
        }
    }
}

/* y_img (OC, P) += bias, then ReLU, while the GEMM's output is still in cache. */
static void FN(epilogue)(REAL *restrict y, const REAL *restrict bias, ptrdiff_t OC, ptrdiff_t P,
                         int relu)
{
    for (ptrdiff_t oc = 0; oc < OC; ++oc) {
        REAL *yo = y + oc * P;
        const REAL b = bias ? bias[oc] : (REAL)0;
        if (relu) {
#pragma omp simd
            for (ptrdiff_t p = 0; p < P; ++p) {
                REAL v = yo[p] + b;
                yo[p] = v > 0 ? v : (v != v ? v : (REAL)0);  /* NaN propagates */
            }
        } else if (bias) {
#pragma omp simd
            for (ptrdiff_t p = 0; p < P; ++p) yo[p] += b;
        }
    }
}

/* sum of v[0..n) in double with 8 independent partial sums: one running sum is bound by the
 * add latency (perf: 1/3 of MNIST conv's whole backward), and gcc does not vectorise a
 * float-to-double reduction by itself. A fixed order, so the bits never depend on threads. */
static double FN(sum_lanes)(const REAL *restrict v, ptrdiff_t n)
{
    double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    ptrdiff_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; ++l) acc[l] += (double)v[i + l];
    double s = 0;
    for (; i < n; ++i) s += (double)v[i];
    for (int l = 0; l < 8; ++l) s += acc[l];
    return s;
}
