/* pool_variants.h: the float and double instantiations of pool_impl.h for one instruction set,
 * named by FC_ISA (e.g. max_pool_forward_f32_avx512). Included by pool.c once per instruction
 * set through simd_targets.h; no include guard. */
#define REAL float
#define FN(name) FC_SIMD_NAME(name, f32, FC_ISA)
#include "pool_impl.h"
#undef REAL
#undef FN

#define REAL double
#define FN(name) FC_SIMD_NAME(name, f64, FC_ISA)
#include "pool_impl.h"
#undef REAL
#undef FN
