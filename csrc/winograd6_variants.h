/* winograd6_variants.h: the four (dtype, variant) instantiations of winograd6_impl.h for one
 * instruction set, named by FC_ISA (e.g. wg6_forward_f32_43_avx512). Included by winograd6.c once
 * per instruction set through simd_targets.h; the 1-D transform macros are winograd6.c's. WG_F32
 * marks the float copies. No include guard. */
#if defined(FC_ISA_AVX512)
#include "wg_gemm_avx512.h"
#elif defined(FC_ISA_AVX2)
#include "wg_gemm_avx2.h"
#endif
#define REAL float
#define GEMM fc_gemm_f32
#define WG_M 4
#define WG_R 3
#define WG_AT WG_AT_43
#define WG_A WG_A_43
#define WG_G WG_G_43
#define WG_GT WG_GT_43
#define WG_F32 1
#define FN(name) FC_SIMD_NAME(name, f32_43, FC_ISA)
#include "winograd6_impl.h"
#undef FN
#undef WG_F32
#undef REAL
#undef GEMM
#define REAL double
#define GEMM fc_gemm_f64
#define FN(name) FC_SIMD_NAME(name, f64_43, FC_ISA)
#include "winograd6_impl.h"
#undef FN
#undef REAL
#undef GEMM
#undef WG_M
#undef WG_R
#undef WG_AT
#undef WG_A
#undef WG_G
#undef WG_GT

#define WG_M 2
#define WG_R 5
#define WG_AT WG_AT_25
#define WG_A WG_A_25
#define WG_G WG_G_25
#define WG_GT WG_GT_25
#define REAL float
#define WG_F32 1
#define GEMM fc_gemm_f32
#define FN(name) FC_SIMD_NAME(name, f32_25, FC_ISA)
#include "winograd6_impl.h"
#undef FN
#undef WG_F32
#undef REAL
#undef GEMM
#define REAL double
#define GEMM fc_gemm_f64
#define FN(name) FC_SIMD_NAME(name, f64_25, FC_ISA)
#include "winograd6_impl.h"
#undef FN
#undef REAL
#undef GEMM
#undef WG_M
#undef WG_R
#undef WG_AT
#undef WG_A
#undef WG_G
#undef WG_GT
