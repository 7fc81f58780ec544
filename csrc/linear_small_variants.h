/* linear_small_variants.h: the float and double instantiations of linear_small_impl.h for one
 * instruction set, named by FC_ISA (e.g. linear_small_forward_f32_avx512). Included by linear.c
 * once per instruction set through simd_targets.h; no include guard. */
#define REAL float
#define FN(name) FC_SIMD_NAME(name, f32, FC_ISA)
#include "linear_small_impl.h"
#undef REAL
#undef FN

#define REAL double
#define FN(name) FC_SIMD_NAME(name, f64, FC_ISA)
#include "linear_small_impl.h"
#undef REAL
#undef FN
#undef LINEAR_SMALL_CHUNK
