/* batchnorm.c: per-channel batch normalization, training/eval forward and backward (API and
 * shapes: fastcnn.h). The bodies live once in batchnorm_impl.h and are instantiated here for
 * float (_f32) and double (_f64). Parallel over channels (or channel blocks for (N, F) input)
 * with OpenMP when the build has it; serial otherwise. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "fastcnn.h"

/* Channel sums keep BN_L independent partial sums ("lanes") instead of one running sum: a single
 * accumulator is bound by the add latency (slower than memory here). Lane l takes elements
 * s = l mod BN_L of each segment, a segment's tail goes to a scalar, and the lanes are combined
 * in a fixed order at the end: the result depends neither on the thread count nor on the vector
 * width the compiler picks. */
#define BN_L 16

/* Channels per block of the S == 1 ((N, F) input) path: the stack holds a few BN_CB arrays. */
#define BN_CB 64

/* A channel is N segments of S elements, C*S apart: for 4-D input a page or less each, and the
 * hardware prefetcher restarts cold at every one (the first pass streamed at ~7 GB/s instead of
 * ~11 on one core). The passes that stream from memory therefore prefetch the next segment while
 * working on the current one. */
#if defined(__GNUC__)
#define FC_PREFETCH(addr, rw) __builtin_prefetch((addr), (rw), 3)
#else
#define FC_PREFETCH(addr, rw) ((void)0)
#endif

static double fc_bn_lanes_total(const double *acc, double tail)
{
    double t = tail;
    for (int l = 0; l < BN_L; ++l)
        t += acc[l];
    return t;
}

#define REAL float
#define FN(name) name##_f32
#include "batchnorm_impl.h"
#undef REAL
#undef FN

#define REAL double
#define FN(name) name##_f64
#include "batchnorm_impl.h"
#undef REAL
#undef FN
