/* core/roofline_avx2.c — AVX2 peak loops (compiled with -mavx2 -mfma). Ten independent accumulators hide the
 * FMA latency (4-5 cycles x 2 ports). */
#include <immintrin.h>

#include "core/roofline.h"

double loom_roofline_fma_avx2(long iters) {
    __m256 a[10], x = _mm256_set1_ps(1.0000001f), y = _mm256_set1_ps(0.9999999f);
    _Pragma("GCC unroll 16")
    for (int k = 0; k < 10; k++) a[k] = _mm256_set1_ps((float)k);
    for (long i = 0; i < iters; i++)
        /* unrolled, so the accumulators live in registers (not the stack): the loop measures the FMA ports,
         * not store-forwarding latency */
        _Pragma("GCC unroll 16") for (int k = 0; k < 10; k++) a[k] = _mm256_fmadd_ps(a[k], x, y);
    __m256 s = a[0];
    _Pragma("GCC unroll 16")
    for (int k = 1; k < 10; k++) s = _mm256_add_ps(s, a[k]);
    volatile float sink = _mm256_cvtss_f32(s);
    (void)sink;
    return (double)iters * 10 * 8 * 2;
}

double loom_roofline_int8_avx2(long iters) {
    /* the AVX2 int8 dot: maddubs (u8 x s8 -> s16 pairs) + madd with ones (-> s32) + add: 32 MACs per step */
    __m256i a[8], u = _mm256_set1_epi8(3), s = _mm256_set1_epi8(-2), ones = _mm256_set1_epi16(1);
    _Pragma("GCC unroll 16")
    for (int k = 0; k < 8; k++) a[k] = _mm256_set1_epi32(k);
    for (long i = 0; i < iters; i++)
        /* unrolled, so the accumulators live in registers (not the stack): the loop measures the FMA ports,
         * not store-forwarding latency */
        _Pragma("GCC unroll 16") for (int k = 0; k < 8; k++) a[k] = _mm256_add_epi32(a[k], _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), ones));
    __m256i t = a[0];
    _Pragma("GCC unroll 16")
    for (int k = 1; k < 8; k++) t = _mm256_add_epi32(t, a[k]);
    volatile int sink = _mm256_extract_epi32(t, 0);
    (void)sink;
    return (double)iters * 8 * 32 * 2;
}
