/* vision/vit_attn_avx2.c — the AVX2/FMA build of vit_attn.c (the Makefile adds -mavx2 -mfma to *_avx2.c). */
#define VIT_ATTN_AVX2 1
#include "vision/vit_attn.c"
