/* core/quant.h — llama.cpp's quantized block formats: layouts, dequantization and quantization.
 *
 * The block layouts are ggml's, byte for byte (see ../shared/testdata/quant/README.md for the formulas).
 * Dequantization follows the formulas literally in f32, so it reproduces llama.cpp's `to_float` bit for bit.
 * Quantization follows ggml's reference quantizers (`quantize_row_*_ref`), which is what `llama-quantize`
 * does when no importance matrix is given.
 *
 * Supported for weights: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K.
 * Q8_K is the activation format for K-quant dot products (not a storage format).
 */
#ifndef LOOM_CORE_QUANT_H
#define LOOM_CORE_QUANT_H

#include <stdint.h>

#include "core/tensor.h"

#define QK4_0 32
#define QK4_1 32
#define QK5_0 32
#define QK5_1 32
#define QK8_0 32
#define QK_K  256
#define K_SCALE_SIZE 12

typedef uint16_t loom_f16;

typedef struct { loom_f16 d; uint8_t qs[QK4_0 / 2]; } block_q4_0;                          /* 18 bytes */
typedef struct { loom_f16 d, m; uint8_t qs[QK4_1 / 2]; } block_q4_1;                       /* 20 bytes */
typedef struct { loom_f16 d; uint8_t qh[4]; uint8_t qs[QK5_0 / 2]; } block_q5_0;           /* 22 bytes */
typedef struct { loom_f16 d, m; uint8_t qh[4]; uint8_t qs[QK5_1 / 2]; } block_q5_1;        /* 24 bytes */
typedef struct { loom_f16 d; int8_t qs[QK8_0]; } block_q8_0;                               /* 34 bytes */
typedef struct { loom_f16 d, dmin; uint8_t scales[K_SCALE_SIZE]; uint8_t qs[QK_K / 2]; } block_q4_k; /* 144 */
typedef struct { loom_f16 d, dmin; uint8_t scales[K_SCALE_SIZE]; uint8_t qh[QK_K / 8]; uint8_t qs[QK_K / 2]; } block_q5_k; /* 176 */
typedef struct { uint8_t ql[QK_K / 2]; uint8_t qh[QK_K / 4]; int8_t scales[QK_K / 16]; loom_f16 d; } block_q6_k; /* 210 */
/* Activation block for K-quant dot products: bsums[j] = sum of qs[16j .. 16j+15] (lets the min terms of
 * Q4_K/Q5_K be applied once per sub-block instead of per element). */
typedef struct { float d; int8_t qs[QK_K]; int16_t bsums[QK_K / 16]; } block_q8_k;         /* 292 bytes */

_Static_assert(sizeof(block_q4_0) == 18, "q4_0 layout");
_Static_assert(sizeof(block_q4_1) == 20, "q4_1 layout");
_Static_assert(sizeof(block_q5_0) == 22, "q5_0 layout");
_Static_assert(sizeof(block_q5_1) == 24, "q5_1 layout");
_Static_assert(sizeof(block_q8_0) == 34, "q8_0 layout");
_Static_assert(sizeof(block_q4_k) == 144, "q4_k layout");
_Static_assert(sizeof(block_q5_k) == 176, "q5_k layout");
_Static_assert(sizeof(block_q6_k) == 210, "q6_k layout");
_Static_assert(sizeof(block_q8_k) == 292, "q8_k layout");

/* ==== scalar conversions (exact, subnormals kept, round-to-nearest-even) ==== */
float    loom_f16_to_f32(loom_f16 h);
loom_f16 loom_f32_to_f16(float f);
float    loom_bf16_to_f32(uint16_t h);
uint16_t loom_f32_to_bf16(float f); /* ggml's rounding: nearest-even, NaN quieted */

/* ==== rows ==== */
/* n must be a multiple of the type's block size. Return 0 on success, -1 for an unsupported type or a bad n. */
int loom_dequantize_row(loom_dtype t, const void *src, float *dst, int64_t n);
int loom_quantize_row(loom_dtype t, const float *src, void *dst, int64_t n);

/* Q4_K/Q5_K scale unpacking shared by every kernel: sub-block j of a super-block (0..7). */
static inline void loom_get_scale_min_k4(int j, const uint8_t *q, uint8_t *sc, uint8_t *mn) {
    if (j < 4) {
        *sc = q[j] & 63;
        *mn = q[j + 4] & 63;
    } else {
        *sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
        *mn = (q[j + 4] >> 4) | ((q[j - 0] >> 6) << 4);
    }
}

#endif
