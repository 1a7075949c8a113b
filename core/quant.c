/* core/quant.c — exact f16/bf16 conversions and row dequantization for every weight format loom supports.
 *
 * Each dequantizer evaluates the formula of ../shared/testdata/quant/README.md literally in float32, in the
 * same grouping as ggml's `to_float` ((d * sc) * q - dmin * m). The products of an f16 scale with the small
 * integers are exact in float32, so the only rounding is the final add/subtract of the offset types, and the
 * result is bit-identical to llama.cpp's, signed zeros and subnormals included. Quantizers: quant_ref.c.
 */
#include "core/quant.h"

#include <string.h>

/* The offset formulas must round once, at the subtraction; a fused multiply-add would also round once
 * here (the product is exact), but keeping contraction off means no build flag can change a result. */
#pragma GCC optimize("fp-contract=off")

static inline float bits_to_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline uint32_t f32_to_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* ==== scalar conversions ==== */

static inline float f16_to_f32(loom_f16 h) {
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    const uint32_t em = h & 0x7fffu; /* exponent and mantissa */
    uint32_t bits;
    if (em >= 0x7c00u) {
        bits = 0x7f800000u | ((em & 0x3ffu) << 13); /* inf, or NaN with its payload kept */
    } else if (em >= 0x0400u) {
        bits = (em << 13) + ((uint32_t)(127 - 15) << 23); /* normal: rebias the exponent */
    } else {
        bits = f32_to_bits((float)em * 0x1p-24f); /* subnormal or zero: mantissa * 2^-24 is exact */
    }
    return bits_to_f32(sign | bits);
}

float loom_f16_to_f32(loom_f16 h) { return f16_to_f32(h); }

loom_f16 loom_f32_to_f16(float f) {
    const uint32_t x = f32_to_bits(f);
    const uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    const uint32_t ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u) return sign | 0x7e00u; /* NaN -> the quiet NaN ggml writes */
    if (ax >= 0x477ff000u) return sign | 0x7c00u; /* >= 65520 rounds (ties to even) to inf */
    if (ax >= 0x38800000u) {                      /* >= 2^-14: normal f16 */
        uint32_t h = (ax - 0x38000000u) >> 13;    /* rebias exponent, keep top 10 mantissa bits */
        const uint32_t rem = ax & 0x1fffu;
        if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) h++; /* carry may bump the exponent: correct */
        return (loom_f16)(sign | h);
    }
    /* Subnormal f16 (or zero): count units of 2^-24, rounding to nearest even. */
    const uint32_t e = ax >> 23;
    if (e < 102) return sign; /* below 2^-25: rounds to zero (2^-25 itself ties to the even 0) */
    const uint32_t mant = (ax & 0x7fffffu) | 0x800000u;
    const uint32_t shift = 126 - e; /* value = mant * 2^(e-150); units = mant * 2^(e-126) */
    uint32_t q = mant >> shift;
    const uint32_t rem = mant & ((1u << shift) - 1u), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1u))) q++; /* q == 0x400 is the smallest normal: right encoding */
    return (loom_f16)(sign | q);
}

float loom_bf16_to_f32(uint16_t h) { return bits_to_f32((uint32_t)h << 16); }

uint16_t loom_f32_to_bf16(float f) {
    const uint32_t u = f32_to_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 64u); /* NaN: force quiet */
    return (uint16_t)((u + (0x7fffu + ((u >> 16) & 1u))) >> 16);
}

/* ==== rows ==== */

static void dequant_f16(const loom_f16 *x, float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = f16_to_f32(x[i]);
}

static void dequant_bf16(const uint16_t *x, float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = bits_to_f32((uint32_t)x[i] << 16);
}

static void dequant_q8_0(const block_q8_0 *x, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, y += QK8_0) {
        const float d = f16_to_f32(x[i].d);
        for (int j = 0; j < QK8_0; j++) y[j] = (float)x[i].qs[j] * d;
    }
}

static void dequant_q4_0(const block_q4_0 *x, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, y += QK4_0) {
        const float d = f16_to_f32(x[i].d);
        for (int j = 0; j < QK4_0 / 2; j++) {
            y[j] = (float)((x[i].qs[j] & 0xF) - 8) * d;
            y[j + QK4_0 / 2] = (float)((x[i].qs[j] >> 4) - 8) * d;
        }
    }
}

static void dequant_q4_1(const block_q4_1 *x, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, y += QK4_1) {
        const float d = f16_to_f32(x[i].d), m = f16_to_f32(x[i].m);
        for (int j = 0; j < QK4_1 / 2; j++) {
            y[j] = (float)(x[i].qs[j] & 0xF) * d + m;
            y[j + QK4_1 / 2] = (float)(x[i].qs[j] >> 4) * d + m;
        }
    }
}

static inline uint32_t load_u32le(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void dequant_q5_0(const block_q5_0 *x, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, y += QK5_0) {
        const float d = f16_to_f32(x[i].d);
        const uint32_t qh = load_u32le(x[i].qh);
        for (int j = 0; j < QK5_0 / 2; j++) {
            const int q0 = (x[i].qs[j] & 0xF) | (int)(((qh >> j) & 1u) << 4);
            const int q1 = (x[i].qs[j] >> 4) | (int)(((qh >> (j + 16)) & 1u) << 4);
            y[j] = (float)(q0 - 16) * d;
            y[j + QK5_0 / 2] = (float)(q1 - 16) * d;
        }
    }
}

static void dequant_q5_1(const block_q5_1 *x, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, y += QK5_1) {
        const float d = f16_to_f32(x[i].d), m = f16_to_f32(x[i].m);
        const uint32_t qh = load_u32le(x[i].qh);
        for (int j = 0; j < QK5_1 / 2; j++) {
            const int q0 = (x[i].qs[j] & 0xF) | (int)(((qh >> j) & 1u) << 4);
            const int q1 = (x[i].qs[j] >> 4) | (int)(((qh >> (j + 16)) & 1u) << 4);
            y[j] = (float)q0 * d + m;
            y[j + QK5_1 / 2] = (float)q1 * d + m;
        }
    }
}

static void dequant_q4_k(const block_q4_k *x, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++) {
        const float d = f16_to_f32(x[i].d), dmin = f16_to_f32(x[i].dmin);
        const uint8_t *q = x[i].qs;
        for (int c = 0; c < 4; c++, q += 32) { /* 64 elements: sub-blocks 2c (low nibbles), 2c+1 (high) */
            uint8_t sc, mn;
            loom_get_scale_min_k4(2 * c, x[i].scales, &sc, &mn);
            const float d1 = d * (float)sc, m1 = dmin * (float)mn;
            loom_get_scale_min_k4(2 * c + 1, x[i].scales, &sc, &mn);
            const float d2 = d * (float)sc, m2 = dmin * (float)mn;
            for (int l = 0; l < 32; l++) *y++ = d1 * (float)(q[l] & 0xF) - m1;
            for (int l = 0; l < 32; l++) *y++ = d2 * (float)(q[l] >> 4) - m2;
        }
    }
}

static void dequant_q5_k(const block_q5_k *x, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++) {
        const float d = f16_to_f32(x[i].d), dmin = f16_to_f32(x[i].dmin);
        const uint8_t *ql = x[i].qs, *qh = x[i].qh;
        for (int c = 0; c < 4; c++, ql += 32) {
            uint8_t sc, mn;
            loom_get_scale_min_k4(2 * c, x[i].scales, &sc, &mn);
            const float d1 = d * (float)sc, m1 = dmin * (float)mn;
            loom_get_scale_min_k4(2 * c + 1, x[i].scales, &sc, &mn);
            const float d2 = d * (float)sc, m2 = dmin * (float)mn;
            const int b1 = 2 * c, b2 = 2 * c + 1; /* fifth bit of sub-block k is bit k of qh[l] */
            for (int l = 0; l < 32; l++) *y++ = d1 * (float)((ql[l] & 0xF) | (((qh[l] >> b1) & 1) << 4)) - m1;
            for (int l = 0; l < 32; l++) *y++ = d2 * (float)((ql[l] >> 4) | (((qh[l] >> b2) & 1) << 4)) - m2;
        }
    }
}

static void dequant_q6_k(const block_q6_k *x, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++) {
        const float d = f16_to_f32(x[i].d);
        const uint8_t *ql = x[i].ql, *qh = x[i].qh;
        const int8_t *sc = x[i].scales;
        for (int h = 0; h < 2; h++, y += 128, ql += 64, qh += 32, sc += 8) {
            for (int l = 0; l < 32; l++) {
                const int s = l / 16;
                const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                y[l + 0] = d * (float)sc[s + 0] * (float)q1;
                y[l + 32] = d * (float)sc[s + 2] * (float)q2;
                y[l + 64] = d * (float)sc[s + 4] * (float)q3;
                y[l + 96] = d * (float)sc[s + 6] * (float)q4;
            }
        }
    }
}

int loom_dequantize_row(loom_dtype t, const void *src, float *dst, int64_t n) {
    const loom_type_info *ti = loom_type_info_get(t);
    if (!ti || !ti->supported || n < 0 || n % ti->block_size) return -1;
    const int64_t nb = n / ti->block_size;
    switch (t) {
    case LOOM_F32: memcpy(dst, src, (size_t)n * sizeof(float)); return 0;
    case LOOM_F16: dequant_f16(src, dst, n); return 0;
    case LOOM_BF16: dequant_bf16(src, dst, n); return 0;
    case LOOM_Q8_0: dequant_q8_0(src, dst, nb); return 0;
    case LOOM_Q4_0: dequant_q4_0(src, dst, nb); return 0;
    case LOOM_Q4_1: dequant_q4_1(src, dst, nb); return 0;
    case LOOM_Q5_0: dequant_q5_0(src, dst, nb); return 0;
    case LOOM_Q5_1: dequant_q5_1(src, dst, nb); return 0;
    case LOOM_Q4_K: dequant_q4_k(src, dst, nb); return 0;
    case LOOM_Q5_K: dequant_q5_k(src, dst, nb); return 0;
    case LOOM_Q6_K: dequant_q6_k(src, dst, nb); return 0;
    default: return -1;
    }
}
