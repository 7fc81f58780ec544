/* config.c: build and CPU facts for fastcnn.show_config(), and the choice of instruction set
 * for the run-time dispatched kernels. Nothing here computes. */
#include "fastcnn.h"
#include "simd.h"

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

/* The best dispatched variant the CPU runs and this build has (simd.h), found once. */
static int simd_detect(void)
{
#if FC_X86_VARIANTS
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl")
        && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw"))
        return FC_SIMD_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return FC_SIMD_AVX2;
#endif
    return FC_SIMD_PORTABLE;
}

/* Racing first calls all store the same value, so no lock is needed. */
static int g_simd_best = -1;

int fc_simd_supported(void)
{
    if (g_simd_best < 0) g_simd_best = simd_detect();
    return g_simd_best;
}

static int g_simd_cap = FC_SIMD_AVX512;

int fc_simd_active(void)
{
    int best = fc_simd_supported();
    return best < g_simd_cap ? best : g_simd_cap;
}

int fc_simd_set_cap(int level)
{
    g_simd_cap = level < FC_SIMD_PORTABLE ? FC_SIMD_PORTABLE
                 : level > FC_SIMD_AVX512 ? FC_SIMD_AVX512 : level;
    return fc_simd_active();
}

const char *fc_compile_flags(void)
{
    return FASTCNN_CFLAGS;
}
