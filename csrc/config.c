/* config.c: build and CPU facts for fastcnn.show_config(). Nothing here computes. */
#include "fastcnn.h"

#if defined(_OPENMP)
#include <omp.h>
#endif

#ifndef FASTCNN_CFLAGS
#define FASTCNN_CFLAGS "unknown"
#endif

int fc_openmp_enabled(void)
{
#if defined(_OPENMP)
    return 1;
#else
    return 0;
#endif
}

int fc_omp_max_threads(void)
{
#if defined(_OPENMP)
    return omp_get_max_threads();
#else
    return 1;
#endif
}

const char *fc_simd_level(void)
{
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return "avx512f";
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "avx2";
    if (__builtin_cpu_supports("sse2")) return "sse2";
#endif
    return "portable";
}

const char *fc_compile_flags(void)
{
    return FASTCNN_CFLAGS;
}
