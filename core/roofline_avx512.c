/* core/roofline_avx512.c — AVX-512 peak loops (compiled with -mavx512f/bw/vnni). */
#include <immintrin.h>
#include <stdint.h>

#include "core/roofline.h"

double loom_roofline_fma_avx512(long iters) {
    __m512 a[12], x = _mm512_set1_ps(1.0000001f), y = _mm512_set1_ps(0.9999999f);
    _Pragma("GCC unroll 16")
    for (int k = 0; k < 12; k++) a[k] = _mm512_set1_ps((float)k);
    for (long i = 0; i < iters; i++)
        /* unrolled, so the accumulators live in registers (not the stack): the loop measures the FMA ports,
         * not store-forwarding latency */
        _Pragma("GCC unroll 16") for (int k = 0; k < 12; k++) a[k] = _mm512_fmadd_ps(a[k], x, y);
    __m512 s = a[0];
    _Pragma("GCC unroll 16")
    for (int k = 1; k < 12; k++) s = _mm512_add_ps(s, a[k]);
    volatile float sink = _mm512_reduce_add_ps(s);
    (void)sink;
    return (double)iters * 12 * 16 * 2;
}

double loom_roofline_int8_avx512(long iters) {
    /* vpdpbusd: 64 u8 x s8 multiply-adds into 16 s32 lanes per instruction */
    __m512i a[12], u = _mm512_set1_epi8(3), s = _mm512_set1_epi8(-2);
    _Pragma("GCC unroll 16")
    for (int k = 0; k < 12; k++) a[k] = _mm512_set1_epi32(k);
    for (long i = 0; i < iters; i++)
        /* unrolled, so the accumulators live in registers (not the stack): the loop measures the FMA ports,
         * not store-forwarding latency */
        _Pragma("GCC unroll 16") for (int k = 0; k < 12; k++) a[k] = _mm512_dpbusd_epi32(a[k], u, s);
    __m512i t = a[0];
    _Pragma("GCC unroll 16")
    for (int k = 1; k < 12; k++) t = _mm512_add_epi32(t, a[k]);
    /* summed as unsigned: the accumulators wrap by design, and GCC's reduce intrinsic adds them as signed ints */
    uint32_t lanes[16], sum = 0;
    _mm512_storeu_si512(lanes, t);
    for (int k = 0; k < 16; k++) sum += lanes[k];
    volatile uint32_t sink = sum;
    (void)sink;
    return (double)iters * 12 * 64 * 2;
}
