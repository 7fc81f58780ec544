/* winograd_variants.h: the float and double instantiations of winograd_impl.h for one instruction
 * set, named by FC_ISA (e.g. wg_forward_f32_avx512). Included by winograd.c once per instruction
 * set through simd_targets.h; no include guard. */
#define REAL float
#define FN(name) FC_SIMD_NAME(name, f32, FC_ISA)
#define GEMM fc_gemm_f32
#include "winograd_impl.h"
#undef REAL
#undef FN
#undef GEMM

#define REAL double
#define FN(name) FC_SIMD_NAME(name, f64, FC_ISA)
#define GEMM fc_gemm_f64
#include "winograd_impl.h"
#undef REAL
#undef FN
#undef GEMM
