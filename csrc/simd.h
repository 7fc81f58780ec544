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

#endif /* FASTCNN_SIMD_H */
