/* core/tr16_avx512.h — private to core/'s AVX-512 files: a 16 x 16 transpose of 32-bit elements, the step
 * that turns row-major operands into the interleaved layouts of the int8 GEMM engines (gemm_avx512.c,
 * gemm_vnni_avx512.c). Include only from files compiled with the AVX-512 flags. */
#ifndef LOOM_CORE_TR16_AVX512_H
#define LOOM_CORE_TR16_AVX512_H

#include <immintrin.h>

/* 16x16 transpose of 32-bit elements held in 16 registers (row i -> column i). */
static inline __attribute__((always_inline)) void tr16(__m512 r[16]) {
    __m512 t[16];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 4; i++) {
        __m512d a = _mm512_castps_pd(t[4 * i]), b = _mm512_castps_pd(t[4 * i + 1]);
        __m512d c = _mm512_castps_pd(t[4 * i + 2]), d = _mm512_castps_pd(t[4 * i + 3]);
        r[4 * i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
        r[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
        r[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
        r[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
    }
    /* r[4i + e], 128-bit lane l = rows 4i..4i+3 at column 4l + e */
    __m512 o[16];
    for (int e = 0; e < 4; e++) {
        __m512 a = _mm512_shuffle_f32x4(r[e], r[4 + e], 0x88), b = _mm512_shuffle_f32x4(r[e], r[4 + e], 0xDD);
        __m512 c = _mm512_shuffle_f32x4(r[8 + e], r[12 + e], 0x88), d = _mm512_shuffle_f32x4(r[8 + e], r[12 + e], 0xDD);
        o[e] = _mm512_shuffle_f32x4(a, c, 0x88);
        o[8 + e] = _mm512_shuffle_f32x4(a, c, 0xDD);
        o[4 + e] = _mm512_shuffle_f32x4(b, d, 0x88);
        o[12 + e] = _mm512_shuffle_f32x4(b, d, 0xDD);
    }
    for (int i = 0; i < 16; i++) r[i] = o[i];
}

#endif
