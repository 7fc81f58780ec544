/* dtype_variants.h: instantiates the type-generic body named by FC_IMPL (a header written with
 * REAL and FN(name)) for float and double in one instruction set, the functions named by FC_ISA
 * (e.g. lrn_forward_f32_avx512). Included through simd_targets.h as its FC_SIMD_BODY, once per
 * instruction set, by pool.c, lrn.c, linear.c, batchnorm.c and conv.c; no include guard. */
#define REAL float
#define FC_DTYPE_F32 1   /* for code written with float intrinsics */
#define FN(name) FC_SIMD_NAME(name, f32, FC_ISA)
#include FC_IMPL
#undef REAL
#undef FC_DTYPE_F32
#undef FN

#define REAL double
#define FN(name) FC_SIMD_NAME(name, f64, FC_ISA)
#include FC_IMPL
#undef REAL
#undef FN
