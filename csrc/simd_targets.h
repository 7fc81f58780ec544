/* simd_targets.h: includes the header named by FC_SIMD_BODY once per instruction set, under
 * `#pragma GCC target` (AVX-512, AVX2+FMA; then the portable baseline), with FC_ISA naming the
 * set (avx512, avx2, portable) for FC_SIMD_NAME and FC_ISA_AVX512 (FC_ISA_AVX2) defined in the
 * AVX-512 (AVX2) copy, for code written with its intrinsics. The including file picks one copy
 * at run time with FC_SIMD_PICK (simd.h). No include guard: one use per instantiated body. */
#if FC_X86_VARIANTS
#pragma GCC push_options
#pragma GCC target("avx512f,avx512vl,avx512dq,avx512bw,avx2,fma")
#define FC_ISA avx512
#define FC_ISA_AVX512 1
#include FC_SIMD_BODY
#undef FC_ISA_AVX512
#undef FC_ISA
#pragma GCC pop_options
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#define FC_ISA avx2
#define FC_ISA_AVX2 1
#include FC_SIMD_BODY
#undef FC_ISA_AVX2
#undef FC_ISA
#pragma GCC pop_options
#endif
#define FC_ISA portable
#include FC_SIMD_BODY
#undef FC_ISA
