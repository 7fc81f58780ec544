/* parallel.h: the few OpenMP facts every kernel file needs, as static inline helpers, so that a
 * build without OpenMP compiles the same code serially. Internal to csrc/; not part of the API. */
#ifndef FASTCNN_PARALLEL_H
#define FASTCNN_PARALLEL_H

#include <stddef.h>

#if defined(_OPENMP)
#include <omp.h>
#endif

static inline int fc_thread_id(void)
{
#if defined(_OPENMP)
    return omp_get_thread_num();
#else
    return 0;
#endif
}

static inline int fc_thread_count(void)
{
#if defined(_OPENMP)
    return omp_get_num_threads();
#else
    return 1;
#endif
}

/* The streaming kernels (ReLU, pooling, batch norm, the optimizer updates) run on one thread
 * below this many elements: the second thread's wake-up (OpenMP waits passively, so it sleeps
 * between kernels) took 30-60 microseconds on a 2-core KVM guest (Zen 4), more than it saved.
 * Float, 1 | 2 threads, microseconds: ReLU backward 65536 elements 13.9 | 42.9, 262144 42.7 |
 * 58.7, 1M 164 | 136; 2x2 max pooling 65536 inputs 28 | 86, 262144 97 | 98, 524288 187 | 145;
 * batch norm's training forward (16 channels) 65536 40 | 123, 262144 132 | 220, 524288 352 |
 * 306. (32768 and 65536 were the thresholds before; a bare-metal core wakes in a few
 * microseconds, hence not the guest's ~400k.) */
#define FC_STREAM_PARALLEL_MIN 262144

/* At most n_threads, at least 1, and never more threads than units of work. */
static inline int fc_clamp_threads(int n_threads, ptrdiff_t units)
{
#if defined(_OPENMP)
    if (n_threads < 1) n_threads = 1;
    if ((ptrdiff_t)n_threads > units) n_threads = units > 0 ? (int)units : 1;
    return n_threads;
#else
    (void)n_threads; (void)units;
    return 1;
#endif
}

/* Thread tid's share [*lo, *hi) of n items split into nth contiguous parts whose boundaries are
 * multiples of `align` (the last part takes the remainder): a fixed, deterministic split. */
static inline void fc_split(ptrdiff_t n, int tid, int nth, ptrdiff_t align, ptrdiff_t *lo,
                            ptrdiff_t *hi)
{
    ptrdiff_t blocks = (n + align - 1) / align;
    ptrdiff_t b0 = blocks * tid / nth, b1 = blocks * (tid + 1) / nth;
    ptrdiff_t l = b0 * align, h = b1 * align;
    *lo = l < n ? l : n;
    *hi = h < n ? h : n;
}

#endif /* FASTCNN_PARALLEL_H */
