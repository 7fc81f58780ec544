/* batchnorm.c: per-channel batch normalization, training/eval forward and backward (API and
 * shapes: fastcnn.h). The bodies live once in batchnorm_impl.h and are instantiated here for
 * float (_f32) and double (_f64), once per instruction set (AVX-512, AVX2+FMA, portable; picked
 * at run time by fc_simd_active()): the streaming passes are vectorised loops, on 2-lane SSE2 on
 * the x86-64 baseline. Parallel over (n, c) segments (or channel blocks for (N, F) input) with
 * OpenMP when the build has it; serial otherwise. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fastcnn.h"
#include "parallel.h"
#include "simd.h"

/* Segment sums keep BN_L independent partial sums ("lanes") instead of one running sum: a single
 * accumulator is bound by the add latency. Lane l takes elements s = l mod BN_L of the segment,
 * its tail goes to a scalar, and the lanes are combined by a fixed pairwise tree at the end: the
 * result depends neither on the thread count nor on the vector width the compiler picks. */
#define BN_L 16

/* Channels per block of the S == 1 ((N, F) input) path: the stack holds a few BN_CB arrays. */
#define BN_CB 64

static double fc_bn_lanes_total(double *acc, double tail)
{
    for (int w = BN_L / 2; w > 0; w /= 2)
        for (int l = 0; l < w; ++l)
            acc[l] += acc[l + w];
    return acc[0] + tail;
}

/* Outputs (y, dx) of BN_STREAM_BYTES or more are written with non-temporal stores: they cannot
 * stay in the 32 MB L3 beside their inputs anyway, and a normal store first reads each line in
 * from memory (a third more traffic for the dx pass, half for y's). fwd+bwd, against ordinary
 * stores: (128,64,32,32) 0.85-0.95 at one thread, 0.8-0.9 at two; smaller tensors, which partly
 * stay in L3, lost ((100,128,15,15) double, 23 MB: 1.2x at two threads). */
#define BN_STREAM_BYTES ((ptrdiff_t)24 << 20)
#if defined(__SSE2__)
#include <emmintrin.h>
static int fc_bn_streams(ptrdiff_t bytes) { return bytes >= BN_STREAM_BYTES; }
static void fc_bn_stream_done(int stream) { if (stream) _mm_sfence(); }
/* Elements of out before its first cache-line boundary (-1 if out is not element-aligned): only
 * whole lines are streamed. A line a non-temporal store leaves partly written goes to memory
 * partly written (a read-modify-write there), and the neighbouring segment's ordinary stores into
 * it drain it early: streaming from 16-byte boundaries made (100,128,15,15) double 1.4x slower. */
static ptrdiff_t fc_bn_stream_head(const void *out, ptrdiff_t size)
{
    const uintptr_t a = (uintptr_t)out;
    return a % (uintptr_t)size ? -1 : (ptrdiff_t)((64 - a % 64) % 64) / size;
}
/* store `bytes` (whole lines) from src to the line-aligned out, bypassing the caches */
static void fc_bn_stream_copy(void *out, const void *src, int bytes)
{
    for (int o = 0; o < bytes; o += 16)
        _mm_stream_si128((__m128i *)((char *)out + o),
                         _mm_loadu_si128((const __m128i *)((const char *)src + o)));
}
#else
/* no streaming stores: every output is written by ordinary stores (BN_MAP's stream branch is
 * never taken, since fc_bn_stream_head says so) */
static int fc_bn_streams(ptrdiff_t bytes) { (void)bytes; return 0; }
static void fc_bn_stream_done(int stream) { (void)stream; }
static ptrdiff_t fc_bn_stream_head(const void *out, ptrdiff_t size)
{
    (void)out;
    (void)size;
    return -1;
}
static void fc_bn_stream_copy(void *out, const void *src, int bytes)
{
    memcpy(out, src, (size_t)bytes);
}
#endif

/* out[e] = EXPR (an expression of the index e; out of type REAL *, expanded in
 * batchnorm_impl.h) for e in [0, S), in blocks of BN_L vectorised
 * lanes and a scalar tail. With stream, past a scalar head up to out's first cache line, each
 * block (one or two whole lines) is computed into registers and written with non-temporal
 * stores. */
#define BN_MAP(out, S, stream, EXPR)                                                              \
    do {                                                                                          \
        ptrdiff_t e0_ = 0;                                                                        \
        const ptrdiff_t h_ = (stream) ? fc_bn_stream_head((out), sizeof *(out)) : -1;             \
        if (h_ >= 0 && h_ < (S)) {                                                                \
            for (; e0_ < h_; ++e0_) {                                                             \
                const ptrdiff_t e = e0_;                                                          \
                (out)[e] = (EXPR);                                                                \
            }                                                                                     \
            for (; e0_ + BN_L <= (S); e0_ += BN_L) {                                              \
                REAL t_[BN_L];                                                                    \
                _Pragma("omp simd") for (int l_ = 0; l_ < BN_L; ++l_)                             \
                {                                                                                 \
                    const ptrdiff_t e = e0_ + l_;                                                 \
                    t_[l_] = (EXPR);                                                              \
                }                                                                                 \
                fc_bn_stream_copy((out) + e0_, t_, (int)sizeof t_);                               \
            }                                                                                     \
        } else {                                                                                  \
            for (; e0_ + BN_L <= (S); e0_ += BN_L) {                                              \
                _Pragma("omp simd") for (int l_ = 0; l_ < BN_L; ++l_)                             \
                {                                                                                 \
                    const ptrdiff_t e = e0_ + l_;                                                 \
                    (out)[e] = (EXPR);                                                            \
                }                                                                                 \
            }                                                                                     \
        }                                                                                         \
        for (; e0_ < (S); ++e0_) {                                                                \
            const ptrdiff_t e = e0_;                                                              \
            (out)[e] = (EXPR);                                                                    \
        }                                                                                         \
    } while (0)

/* Samples per block of the 4-D statistics passes: one channel's segments in a block share one set
 * of lanes, reduced once, so that short segments (a 7x7 map: 49 elements) do not each pay for a
 * lane reduction (float (100,128,7,7) at 2 threads: 1.24x the time of the per-channel walk with
 * one reduction per segment). Long segments (S >= BN_BLOCK_ELEMS) are a block on their own. */
#define BN_BLOCK_ELEMS 512
static ptrdiff_t fc_bn_block_samples(ptrdiff_t S)
{
    return S >= BN_BLOCK_ELEMS ? 1 : (BN_BLOCK_ELEMS + S - 1) / S;
}

/* Doubles of workspace the 4-D (S > 1) kernels take: two partial sums per unit (at most one per
 * (n, c) segment) and three per-channel constants; none for (N, F) input. */
ptrdiff_t fc_batch_norm_workspace(ptrdiff_t N, ptrdiff_t C, ptrdiff_t S)
{
    return S == 1 ? 0 : 2 * N * C + 3 * C;
}

#define FC_IMPL "batchnorm_impl.h"
#define FC_SIMD_BODY "dtype_variants.h"
#include "simd_targets.h"
#undef FC_SIMD_BODY
#undef FC_IMPL

#define BN_PUBLIC(real, sfx)                                                                       \
    void fc_batch_norm_forward_train_##sfx(real *y, real *save_mean, real *save_invstd,            \
                                           real *running_mean, real *running_var, const real *x,   \
                                           const real *gamma, const real *beta, ptrdiff_t N,       \
                                           ptrdiff_t C, ptrdiff_t S, double eps, double momentum,  \
                                           double *work, int n_threads)                            \
    {                                                                                              \
        FC_SIMD_PICK(bn_forward_train, sfx)(y, save_mean, save_invstd, running_mean, running_var,  \
                                            x, gamma, beta, N, C, S, eps, momentum, work,          \
                                            n_threads);                                            \
    }                                                                                              \
    void fc_batch_norm_forward_eval_##sfx(real *y, const real *x, const real *gamma,               \
                                          const real *beta, const real *running_mean,              \
                                          const real *running_var, ptrdiff_t N, ptrdiff_t C,       \
                                          ptrdiff_t S, double eps, int n_threads)                  \
    {                                                                                              \
        FC_SIMD_PICK(bn_forward_eval, sfx)(y, x, gamma, beta, running_mean, running_var, N, C, S,  \
                                           eps, n_threads);                                        \
    }                                                                                              \
    void fc_batch_norm_backward_##sfx(real *dx, real *dgamma, real *dbeta, const real *dy,         \
                                      const real *x, const real *gamma, const real *save_mean,     \
                                      const real *save_invstd, ptrdiff_t N, ptrdiff_t C,           \
                                      ptrdiff_t S, int training, double *work, int n_threads)      \
    {                                                                                              \
        FC_SIMD_PICK(bn_backward, sfx)(dx, dgamma, dbeta, dy, x, gamma, save_mean, save_invstd,    \
                                       N, C, S, training, work, n_threads);                        \
    }

BN_PUBLIC(float, f32)
BN_PUBLIC(double, f64)
