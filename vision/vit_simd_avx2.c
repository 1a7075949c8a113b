/* vision/vit_simd_avx2.c — the AVX2/FMA build of vit_simd.c (the Makefile adds -mavx2 -mfma to *_avx2.c). */
#define VIT_SIMD_AVX2 1
#include "vision/vit_simd.c"
