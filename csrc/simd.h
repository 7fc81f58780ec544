/* simd.h: which instruction-set variants of the kernels this compiler can build. Internal to
 * csrc/. GCC on x86-64 compiles a kernel body once per instruction set with `#pragma GCC target`
 * and the code picks one at run time (fc_simd_active); elsewhere only the portable one exists. */
#ifndef FASTCNN_SIMD_H
#define FASTCNN_SIMD_H

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define FC_X86_VARIANTS 1
#else
#define FC_X86_VARIANTS 0
#endif

/* The function fn_sfx_avx512, fn_sfx_avx2 or fn_sfx_portable, whichever fc_simd_active() picks,
 * to be called: FC_SIMD_PICK(fn, f32)(args). The file must include fastcnn.h. */
#if FC_X86_VARIANTS
#define FC_SIMD_PICK(fn, sfx)                                                                 \
    (fc_simd_active() >= FC_SIMD_AVX512 ? fn##_##sfx##_avx512                                 \
     : fc_simd_active() >= FC_SIMD_AVX2 ? fn##_##sfx##_avx2 : fn##_##sfx##_portable)
#else
#define FC_SIMD_PICK(fn, sfx) fn##_##sfx##_portable
#endif

/* FC_SIMD_NAME(name, sfx, isa) -> name_sfx_isa, isa expanded first (a macro: FC_ISA). */
#define FC_SIMD_PASTE_(name, sfx, isa) name##_##sfx##_##isa
#define FC_SIMD_NAME(name, sfx, isa) FC_SIMD_PASTE_(name, sfx, isa)

#endif /* FASTCNN_SIMD_H */
