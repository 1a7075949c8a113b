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
    /* The int8 GEMM's inner step: maddubs (u8 x s8 -> s16 pairs, 32 MACs) added into s16 accumulators. Each
     * chain feeds its own accumulator back as the u8 operand: with loop-invariant operands the compiler hoisted
     * the maddubs out of the loop and the loop timed only the adds (it did, and reported a meaningless peak).
     * A chain step costs maddubs + add latency (Zen 3: 3 + 1 cycles, Intel: 5 + 1), and 12 chains keep two
     * maddubs ports busy on both (fewer would understate an Intel core's peak and flatter its ratios; 14 spill:
     * each chain needs a scratch register for its product) */
    __m256i a[12], s = _mm256_set1_epi8(-2);
    _Pragma("GCC unroll 16")
    for (int k = 0; k < 12; k++) a[k] = _mm256_set1_epi16((short)k);
    /* one asm statement per chain step: from the intrinsics GCC kept half the chains on the stack */
    for (long i = 0; i < iters; i++)
        _Pragma("GCC unroll 16") for (int k = 0; k < 12; k++) {
            __m256i t;
            __asm__("vpmaddubsw %[s], %[a], %[t]\n\t"
                    "vpaddw %[t], %[a], %[a]"
                    : [a] "+x"(a[k]), [t] "=&x"(t)
                    : [s] "x"(s));
        }
    __m256i t = a[0];
    _Pragma("GCC unroll 16")
    for (int k = 1; k < 12; k++) t = _mm256_add_epi16(t, a[k]);
    volatile int sink = _mm256_extract_epi16(t, 0);
    (void)sink;
    return (double)iters * 12 * 32 * 2;
}
