/* core/matmul_int.h — private to core/: the kernel tables behind core/matmul.h.
 *
 * Each ISA file (dot_ref.c, dot_avx2.c, dot_avx512.c) fills one loom_kernels table. matmul.c picks a table at
 * run time from loom_cpu_features and never calls an ISA's code on a CPU without it. Nothing outside core/
 * includes this header except white-box tests.
 *
 * Kernel contract (every ISA):
 *   dot[wt](n, w, xq)  = sum_i W[i] * X[i] for one weight row of type wt (n values, n a multiple of the block
 *                        size) and one activation row in the vec_dot format (f32 for F32/F16/BF16, Q8_0 blocks
 *                        for the 32-element types, Q8_K blocks for the K-quants).
 *   dot4[wt](n, w, xq, xq_stride, out[4]) = four dot[wt] calls on activation rows xq + k*xq_stride, k = 0..3.
 *                        Optional (NULL -> four dot calls). It must give out[k] bit-identical to
 *                        dot[wt](n, w, xq + k*xq_stride): the same operations in the same order per token,
 *                        only interleaved so one weight load (and unpack) serves four tokens.
 *   rows[wt](n, w, row_bytes, n_rows, xq, y, streams) = y[r] = dot[wt](n, w + r*row_bytes, xq) for r < n_rows,
 *                        bit for bit: the matvec kernel over one thread's contiguous range of rows, walked as
 *                        `streams` (1 or 2, loom_row_streams) interleaved streams, each prefetched ahead.
 *                        Optional (NULL -> dot per row).
 *   quant_q8_0 / quant_q8_k: activation quantizers; every ISA gives bit-identical blocks (same scale formula,
 *                        round-half-even, same clamp), so the choice of ISA never changes a result upstream of
 *                        the dot products.
 *
 * Activation quantization (both formats are symmetric, no zero point):
 *   Q8_0: per 32 values d = amax / 127 (stored as f16), q = nearest_even(x * (1/d)) in [-127, 127].
 *   Q8_K: per 256 values d = amax / 127 (stored f32), q as above, bsums[j] = sum of q[16j .. 16j+15].
 * The f32 scale used for rounding is the unrounded d, as ggml does; the dot product uses the stored d.
 * Never producing -128 keeps the sign trick of the Q8_0 x Q8_0 SIMD kernels (|w| * sign(w)·a) overflow-free.
 */
#ifndef LOOM_CORE_MATMUL_INT_H
#define LOOM_CORE_MATMUL_INT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/matmul.h"
#include "core/quant.h"

typedef float (*loom_dot_fn)(int64_t n, const void *w, const void *xq);
typedef void (*loom_dot4_fn)(int64_t n, const void *w, const void *xq, size_t xq_stride, float *out);
typedef void (*loom_quant_fn)(const float *x, void *xq, int64_t n);
typedef void (*loom_rows_fn)(int64_t n, const void *w, size_t row_bytes, int64_t n_rows, const void *xq, float *y,
                             int streams);

typedef struct loom_kernels {
    loom_dot_fn   dot[LOOM_DTYPE_COUNT];  /* NULL: type not supported */
    loom_dot4_fn  dot4[LOOM_DTYPE_COUNT]; /* NULL: fall back to dot */
    loom_rows_fn  rows[LOOM_DTYPE_COUNT]; /* NULL: fall back to dot per row */
    loom_quant_fn quant_q8_0;             /* n % 32 == 0 */
    loom_quant_fn quant_q8_k;             /* n % 256 == 0 */
} loom_kernels;

/* Filled once (callers serialise through pthread_once in matmul.c). */
void loom_kernels_fill_ref(loom_kernels *k);
void loom_kernels_fill_avx2(loom_kernels *k);   /* needs avx2 + fma + f16c */
void loom_kernels_fill_avx512(loom_kernels *k); /* needs avx512 f/bw/vl/dq/vnni + the avx2 set */

const loom_kernels *loom_kernels_get(loom_isa isa);

/* ==== scalar helpers shared by the kernels (exact conversions, no dependency on quant.c) ==== */

static inline float mm_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1F, man = h & 0x3FF, bits;
    if (exp == 0x1F) {
        bits = sign | 0x7F800000u | (man << 13);
    } else if (exp != 0) {
        bits = sign | ((exp + 112) << 23) | (man << 13);
    } else if (man == 0) {
        bits = sign;
    } else { /* subnormal: renormalise */
        int e = -1;
        do {
            man <<= 1;
            e++;
        } while (!(man & 0x400));
        bits = sign | ((uint32_t)(112 - e) << 23) | ((man & 0x3FF) << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

/* Round-to-nearest-even f32 -> f16 (overflow to inf, subnormals kept). */
static inline uint16_t mm_f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000;
    uint32_t ax = x & 0x7FFFFFFF;
    if (ax > 0x7F800000) return (uint16_t)(sign | 0x7E00); /* NaN */
    if (ax >= 0x477FF000) return (uint16_t)(sign | 0x7C00); /* rounds to >= 65520: inf */
    if (ax < 0x38800000) {                                    /* below the smallest normal f16 (2^-14) */
        if (ax < 0x33000000) return (uint16_t)sign;           /* < 2^-25: rounds to zero */
        uint32_t e = ax >> 23, m = (ax & 0x7FFFFF) | 0x800000;
        uint32_t shift = 126 - e; /* 14..24 -> value = m >> (shift) in units of 2^-24 */
        uint32_t q = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (q & 1))) q++;
        return (uint16_t)(sign | q);
    }
    uint32_t r = ax + 0xFFF + ((ax >> 13) & 1); /* round mantissa to 10 bits, ties to even */
    return (uint16_t)(sign | ((r - 0x38000000) >> 13));
}

static inline float mm_bf16_to_f32(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

/* Q4_K / Q5_K: the eight 6-bit scales into bytes sc[0..7] of aux[0..1] and mins into aux[2..3] (ggml's
 * utmp trick: a dozen integer ops instead of sixteen loom_get_scale_min_k4 calls). */
static inline void mm_unpack_k4_scales(const uint8_t *scales, uint32_t aux[4]) {
    const uint32_t kmask1 = 0x3f3f3f3f, kmask2 = 0x0f0f0f0f, kmask3 = 0x03030303;
    memcpy(aux, scales, 12);
    aux[3] = ((aux[2] >> 4) & kmask2) | (((aux[1] >> 6) & kmask3) << 4);
    const uint32_t uaux = aux[1] & kmask1;
    aux[1] = (aux[2] & kmask2) | (((aux[0] >> 6) & kmask3) << 4);
    aux[2] = uaux;
    aux[0] &= kmask1;
}

#endif
