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

/* Four lines per step and stream, one 64-byte load each: on Zen 4 one thread read 26.7-29.8 GB/s so against
 * 20.4-26.0 from roofline.c's two 32-byte loads per line (alternating passes, stop 16), two threads 31-32 both.
 * Prefetches as the matvec kernels make them (core/dot_rows.h). */
static inline void read_step4(const unsigned char *q, __m512i *s) {
    _Pragma("GCC unroll 4")
    for (int k = 0; k < 4; k++) {
        _mm_prefetch((const char *)q + 64 * k + 2048, _MM_HINT_T0);
        _mm_prefetch((const char *)q + 64 * k + 8192, _MM_HINT_T1);
        s[k] = _mm512_add_epi64(s[k], _mm512_load_si512(q + 64 * k));
    }
}

uint64_t loom_roofline_read_avx512(const unsigned char *p, size_t b, size_t e, int streams) {
    __m512i s[2][4];
    for (int i = 0; i < 2; i++)
        for (int k = 0; k < 4; k++) s[i][k] = _mm512_setzero_si512();
    const size_t h = streams == 2 ? (e - b) / 2 : e - b, steps = h / 4;
    for (size_t i = 0; i < steps; i++) {
        read_step4(p + 64 * (b + 4 * i), s[0]);
        if (streams == 2) read_step4(p + 64 * (b + h + 4 * i), s[1]);
    }
    /* the lines the steps left: the tail of the first stream and, with two, of the second */
    for (size_t l = b + 4 * steps; l < b + h; l++) s[0][0] = _mm512_add_epi64(s[0][0], _mm512_load_si512(p + 64 * l));
    for (size_t l = (streams == 2 ? b + h + 4 * steps : e); l < e; l++)
        s[1][0] = _mm512_add_epi64(s[1][0], _mm512_load_si512(p + 64 * l));
    __m512i t = _mm512_setzero_si512();
    for (int i = 0; i < 2; i++)
        for (int k = 0; k < 4; k++) t = _mm512_add_epi64(t, s[i][k]); /* every load feeds the result */
    /* summed as unsigned: the sums wrap by design, and GCC's reduce intrinsic adds them as signed */
    uint64_t lanes[8], sum = 0;
    _mm512_storeu_si512(lanes, t);
    for (int k = 0; k < 8; k++) sum += lanes[k];
    return sum;
}
