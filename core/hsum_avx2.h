/* core/hsum_avx2.h — the horizontal f32 sum of 8 lanes, shared by the kernel files built with AVX2 flags
 * (*_avx2.c, *_avx512.c); include from nowhere else. */
#ifndef LOOM_CORE_HSUM_AVX2_H
#define LOOM_CORE_HSUM_AVX2_H

#include <immintrin.h>

static inline __attribute__((always_inline)) float hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

#endif
