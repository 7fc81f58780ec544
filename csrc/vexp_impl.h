/* vexp_impl.h: exp(x) for x <= 0 as straight-line arithmetic, so that a `#pragma omp simd` loop
 * calling FN(vexp_nonpos) vectorises: glibc's expf is a scalar call, ~10x NumPy's SIMD exp on the
 * loss's logits. Type-generic (REAL, FN; FC_DTYPE_F32 picks the constants), included by
 * softmax_xent_impl.h once per dtype and instruction set.
 *
 * exp(x) = 2^n * exp(r), n = round(x / ln 2), r = x - n ln 2 in two parts (Cody & Waite: the
 * high part has few mantissa bits, so n * high is exact) and |r| <= ln(2)/2, where the Taylor
 * series to r^7 (float) or r^13 (double) is within 1e-8 (4e-18) of exp(r) relative: the result's
 * error is the arithmetic's rounding, about 1 ulp. (A table of 2^(j/32) and a degree-6 series
 * for double ran slower on Zen 4: its gathers.) n is rounded by adding 1.5 * 2^23 (2^52): the
 * sum's low mantissa bits then hold n, which also avoids rint, a libm call without SSE4.1. 2^n is
 * built from exponent bits in two halves, 2^(n - n/2) * 2^(n/2), so results down to the smallest
 * subnormal come out right. The input must lie in [FN(vexp_lo), 0]: the caller clamps it (exp of
 * the bound rounds to +0, so clamping -inf or anything below gives +0) in a loop of its own. A
 * clamp or a select in here made GCC split the loop body into a constant path and the other,
 * which it then vectorised only with AVX-512's masks. NaN is the caller's to screen
 * (softmax_xent_impl.h does, per row). */
#include <string.h>

#if FC_DTYPE_F32
/* exp(-104) = 6.8e-46, under half the smallest subnormal: rounds to +0 */
static const float FN(vexp_lo) = -104.0f;

static inline float FN(vexp_nonpos)(float xc)
{
    const float shifter = 12582912.0f;   /* 1.5 * 2^23, bits 0x4B400000 */
    const float ts = xc * 1.44269504088896341f + shifter;
    const float n = ts - shifter;
    int32_t k;
    memcpy(&k, &ts, sizeof k);
    k -= 0x4B400000;
    float r = xc - n * 0.693359375f;   /* ln 2 = 0.693359375 - 2.12194440e-4 (9 + 24 bits) */
    r = r + n * 2.12194440e-4f;
    float p = 1.0f / 5040;
    p = p * r + 1.0f / 720;
    p = p * r + 1.0f / 120;
    p = p * r + 1.0f / 24;
    p = p * r + 1.0f / 6;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    const int32_t k1 = k >> 1, k2 = k - k1;   /* each >= -75: a normal power of two */
    const int32_t b1 = (k1 + 127) << 23, b2 = (k2 + 127) << 23;
    float s1, s2;
    memcpy(&s1, &b1, sizeof s1);
    memcpy(&s2, &b2, sizeof s2);
    return p * s1 * s2;
}
#else
/* exp(-746) = 1.0e-324, under half the smallest subnormal: rounds to +0 */
static const double FN(vexp_lo) = -746.0;

static inline double FN(vexp_nonpos)(double xc)
{
    const double shifter = 6755399441055744.0;   /* 1.5 * 2^52, bits 0x4338000000000000 */
    const double ts = xc * 1.4426950408889634074 + shifter;
    const double n = ts - shifter;
    int64_t k;
    memcpy(&k, &ts, sizeof k);
    k -= INT64_C(0x4338000000000000);
    /* ln 2 = 6.93147180369123816490e-01 (32 trailing zero bits) + 1.90821492927058770002e-10 */
    double r = xc - n * 6.93147180369123816490e-01;
    r = r - n * 1.90821492927058770002e-10;
    double p = 1.0 / 6227020800.0;   /* 1/13! */
    p = p * r + 1.0 / 479001600.0;
    p = p * r + 1.0 / 39916800.0;
    p = p * r + 1.0 / 3628800.0;
    p = p * r + 1.0 / 362880.0;
    p = p * r + 1.0 / 40320.0;
    p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    const int64_t k1 = k >> 1, k2 = k - k1;   /* each >= -539: a normal power of two */
    const int64_t b1 = (k1 + 1023) << 52, b2 = (k2 + 1023) << 52;
    double s1, s2;
    memcpy(&s1, &b1, sizeof s1);
    memcpy(&s2, &b2, sizeof s2);
    return p * s1 * s2;
}
#endif
