/* core/quant_ref.c — row quantizers that reproduce ggml's reference quantizers byte for byte.
 *
 * `llama-quantize` without an importance matrix calls ggml's `quantize_row_*_ref`, so a GGUF written by loom
 * is identical to one written by llama.cpp only if every float operation here happens in the same order with
 * the same rounding: sums accumulate left to right in float32, products keep ggml's grouping (w * x * l is
 * (w * x) * l), scale searches use the same step constants, and rounding uses the same magic-number trick.
 * Changing any of that "harmlessly" changes bytes of the output file.
 */
#include "core/quant.h"

#include <float.h>
#include <math.h>
#include <string.h>

/* A fused multiply-add rounds differently from the multiply-then-add ggml's baseline build performs. */
#pragma GCC optimize("fp-contract=off")

/* Below this a group counts as all zeros. */
#define GROUP_MAX_EPS 1e-15f

static inline int imin(int a, int b) { return a < b ? a : b; }
static inline int imax(int a, int b) { return a > b ? a : b; }

/* Round to nearest (ties to even) by adding 1.5 * 2^23 and reading the low mantissa bits. Exact for
 * |v| <= 2^22; beyond that (or for NaN) it returns a garbage but deterministic value, exactly as ggml's does,
 * and every caller clamps the result. */
static inline int nearest_int(float v) {
    const float t = v + 12582912.f;
    int32_t i;
    memcpy(&i, &t, sizeof i);
    return (i & 0x007fffff) - 0x00400000;
}

/* C's float -> int conversion, defined for every input: x86's cvttss2si answer (INT32_MIN) where C would be
 * undefined, so NaN or infinite inputs give the bytes llama.cpp writes on x86 instead of undefined behaviour. */
static inline int32_t trunc_i32(float v) {
    if (v > -2147483904.0f && v < 2147483648.0f) return (int32_t)v;
    return INT32_MIN;
}

/* ==== 32-element blocks ==== */

static void quant_q8_0(const float *x, block_q8_0 *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += QK8_0) {
        float amax = 0.0f;
        for (int j = 0; j < QK8_0; j++) amax = amax > fabsf(x[j]) ? amax : fabsf(x[j]); /* NaN propagates as in ggml */
        const float d = amax / 127;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = loom_f32_to_f16(d);
        for (int j = 0; j < QK8_0; j++) y[i].qs[j] = (int8_t)trunc_i32(roundf(x[j] * id));
    }
}

/* The sign-carrying absolute maximum: d = max / -2^(bits-1) maps it to the most negative level. */
static inline float signed_absmax(const float *x, int n) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < n; j++) {
        if (amax < fabsf(x[j])) {
            amax = fabsf(x[j]);
            max = x[j];
        }
    }
    return max;
}

static void quant_q4_0(const float *x, block_q4_0 *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += QK4_0) {
        const float d = signed_absmax(x, QK4_0) / -8; /* all-zero block: 0 / -8 = -0.0, as ggml stores */
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = loom_f32_to_f16(d);
        for (int j = 0; j < QK4_0 / 2; j++) {
            const uint8_t q0 = (uint8_t)imin(15, (int8_t)trunc_i32(x[j] * id + 8.5f));
            const uint8_t q1 = (uint8_t)imin(15, (int8_t)trunc_i32(x[j + QK4_0 / 2] * id + 8.5f));
            y[i].qs[j] = (uint8_t)(q0 | (q1 << 4));
        }
    }
}

static inline void min_max(const float *x, int n, float *mn, float *mx) {
    float lo = FLT_MAX, hi = -FLT_MAX;
    for (int j = 0; j < n; j++) {
        if (x[j] < lo) lo = x[j];
        if (x[j] > hi) hi = x[j];
    }
    *mn = lo;
    *mx = hi;
}

static void quant_q4_1(const float *x, block_q4_1 *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += QK4_1) {
        float min, max;
        min_max(x, QK4_1, &min, &max);
        const float d = (max - min) / 15;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = loom_f32_to_f16(d);
        y[i].m = loom_f32_to_f16(min);
        for (int j = 0; j < QK4_1 / 2; j++) {
            const uint8_t q0 = (uint8_t)imin(15, (int8_t)trunc_i32((x[j] - min) * id + 0.5f));
            const uint8_t q1 = (uint8_t)imin(15, (int8_t)trunc_i32((x[j + QK4_1 / 2] - min) * id + 0.5f));
            y[i].qs[j] = (uint8_t)(q0 | (q1 << 4));
        }
    }
}

static void quant_q5_0(const float *x, block_q5_0 *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += QK5_0) {
        const float d = signed_absmax(x, QK5_0) / -16;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = loom_f32_to_f16(d);
        uint32_t qh = 0;
        for (int j = 0; j < QK5_0 / 2; j++) {
            const uint8_t q0 = (uint8_t)imin(31, (int8_t)trunc_i32(x[j] * id + 16.5f));
            const uint8_t q1 = (uint8_t)imin(31, (int8_t)trunc_i32(x[j + QK5_0 / 2] * id + 16.5f));
            y[i].qs[j] = (uint8_t)((q0 & 0xF) | ((q1 & 0xF) << 4));
            qh |= ((q0 & 0x10u) >> 4) << j;
            qh |= ((q1 & 0x10u) >> 4) << (j + QK5_0 / 2);
        }
        for (int b = 0; b < 4; b++) y[i].qh[b] = (uint8_t)(qh >> (8 * b));
    }
}

static void quant_q5_1(const float *x, block_q5_1 *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += QK5_1) {
        float min, max;
        min_max(x, QK5_1, &min, &max);
        const float d = (max - min) / 31;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = loom_f32_to_f16(d);
        y[i].m = loom_f32_to_f16(min);
        uint32_t qh = 0;
        for (int j = 0; j < QK5_1 / 2; j++) {
            const uint8_t q0 = (uint8_t)trunc_i32((x[j] - min) * id + 0.5f);
            const uint8_t q1 = (uint8_t)trunc_i32((x[j + QK5_1 / 2] - min) * id + 0.5f);
            y[i].qs[j] = (uint8_t)((q0 & 0xF) | ((q1 & 0xF) << 4));
            qh |= ((q0 & 0x10u) >> 4) << j;
            qh |= ((q1 & 0x10u) >> 4) << (j + QK5_1 / 2);
        }
        for (int b = 0; b < 4; b++) y[i].qh[b] = (uint8_t)(qh >> (8 * b));
    }
}

/* ==== K-quant helpers ==== */

/* Symmetric levels L[i] in 0..2*nmax-1 (value L - nmax) for a group of n, weighted by x^2; tries 18 scales
 * around nmax/max and keeps the one with the best weighted least-squares fit. Returns the scale. */
static float make_qx_quants_w2(int n, int nmax, const float *x, int8_t *L) {
    float max = 0, amax = 0;
    for (int i = 0; i < n; i++) {
        const float ax = fabsf(x[i]);
        if (ax > amax) {
            amax = ax;
            max = x[i];
        }
    }
    if (amax < GROUP_MAX_EPS) {
        memset(L, 0, (size_t)n);
        return 0.f;
    }
    float iscale = (float)-nmax / max;
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        const int l = imax(-nmax, imin(nmax - 1, nearest_int(iscale * x[i])));
        L[i] = (int8_t)(l + nmax);
        const float w = x[i] * x[i];
        sumlx += w * x[i] * (float)l;
        suml2 += w * (float)l * (float)l;
    }
    float scale = suml2 != 0.0f ? sumlx / suml2 : 0.0f;
    float best = scale * sumlx;
    for (int is = -9; is <= 9; is++) {
        if (is == 0) continue;
        iscale = -((float)nmax + 0.1f * (float)is) / max;
        sumlx = suml2 = 0;
        for (int i = 0; i < n; i++) {
            const int l = imax(-nmax, imin(nmax - 1, nearest_int(iscale * x[i])));
            const float w = x[i] * x[i];
            sumlx += w * x[i] * (float)l;
            suml2 += w * (float)l * (float)l;
        }
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < n; i++)
                L[i] = (int8_t)(nmax + imax(-nmax, imin(nmax - 1, nearest_int(iscale * x[i]))));
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

/* Asymmetric levels L[i] in 0..nmax with x ~ scale * L - the_min: starts from the min/max grid, then tries
 * nstep+1 grids (iscale = (rmin + rdelta*is + nmax) / range), refitting scale and min by weighted least
 * squares and keeping the fit with the smallest weighted squared error. Returns the scale. */
static float make_qkx2_quants(int n, int nmax, const float *x, const float *weights, uint8_t *L, float *the_min,
                              uint8_t *Laux, float rmin, float rdelta, int nstep) {
    float min = x[0], max = x[0];
    float sum_w = weights[0];
    float sum_x = sum_w * x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] < min) min = x[i];
        if (x[i] > max) max = x[i];
        const float w = weights[i];
        sum_w += w;
        sum_x += w * x[i];
    }
    if (min > 0) min = 0;
    if (max == min) {
        memset(L, 0, (size_t)n);
        *the_min = -min;
        return 0.f;
    }
    float iscale = (float)nmax / (max - min);
    float scale = 1 / iscale;
    float best_error = 0;
    for (int i = 0; i < n; i++) {
        const int l = nearest_int(iscale * (x[i] - min));
        L[i] = (uint8_t)imax(0, imin(nmax, l));
        const float diff = scale * (float)L[i] + min - x[i];
        best_error += weights[i] * (diff * diff);
    }
    for (int is = 0; is <= nstep; is++) {
        iscale = (rmin + rdelta * (float)is + (float)nmax) / (max - min);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; i++) {
            const int l = imax(0, imin(nmax, nearest_int(iscale * (x[i] - min))));
            Laux[i] = (uint8_t)l;
            const float w = weights[i];
            sum_l += w * (float)l;
            sum_l2 += w * (float)l * (float)l;
            sum_xl += w * (float)l * x[i];
        }
        const float D = sum_w * sum_l2 - sum_l * sum_l;
        if (D > 0) {
            float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
            float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
            if (this_min > 0) {
                this_min = 0;
                this_scale = sum_xl / sum_l2;
            }
            float cur_error = 0;
            for (int i = 0; i < n; i++) {
                const float diff = this_scale * (float)Laux[i] + this_min - x[i];
                cur_error += weights[i] * (diff * diff);
            }
            if (cur_error < best_error) {
                memcpy(L, Laux, (size_t)n);
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    *the_min = -min;
    return scale;
}

/* Q4_K and Q5_K share everything but the level count and the search grid: eight 32-element sub-blocks with
 * asymmetric levels, their scales and mins quantized to 6 bits against the super-block maxima. */
static void quant_kx_superblock(const float *x, uint8_t *L, int nmax, float rmin, int nstep, loom_f16 *out_d,
                                loom_f16 *out_dmin, uint8_t scales_out[K_SCALE_SIZE]) {
    float mins[QK_K / 32], scales[QK_K / 32], weights[32];
    uint8_t Laux[32];
    float max_scale = 0, max_min = 0; /* the min is subtracted, so scales are positive */
    for (int j = 0; j < QK_K / 32; j++) {
        const float *xb = x + 32 * j;
        float sum_x2 = 0;
        for (int l = 0; l < 32; l++) sum_x2 += xb[l] * xb[l];
        const float av_x = sqrtf(sum_x2 / 32);
        for (int l = 0; l < 32; l++) weights[l] = av_x + fabsf(xb[l]);
        scales[j] = make_qkx2_quants(32, nmax, xb, weights, L + 32 * j, &mins[j], Laux, rmin, 0.1f, nstep);
        if (scales[j] > max_scale) max_scale = scales[j];
        if (mins[j] > max_min) max_min = mins[j];
    }
    const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
    const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    for (int j = 0; j < QK_K / 32; j++) {
        uint8_t ls = (uint8_t)nearest_int(inv_scale * scales[j]);
        uint8_t lm = (uint8_t)nearest_int(inv_min * mins[j]);
        if (ls > 63) ls = 63;
        if (lm > 63) lm = 63;
        if (j < 4) {
            scales_out[j] = ls;
            scales_out[j + 4] = lm;
        } else {
            scales_out[j + 4] = (uint8_t)((ls & 0xF) | ((lm & 0xF) << 4));
            scales_out[j - 4] |= (uint8_t)((ls >> 4) << 6);
            scales_out[j - 0] |= (uint8_t)((lm >> 4) << 6);
        }
    }
    *out_d = loom_f32_to_f16(max_scale / 63.f);
    *out_dmin = loom_f32_to_f16(max_min / 63.f);

    /* Requantize against the scales as stored; a sub-block whose stored scale is 0 keeps its first levels. */
    const float d_all = loom_f16_to_f32(*out_d), dmin_all = loom_f16_to_f32(*out_dmin);
    for (int j = 0; j < QK_K / 32; j++) {
        uint8_t sc, m;
        loom_get_scale_min_k4(j, scales_out, &sc, &m);
        const float d = d_all * (float)sc;
        if (d == 0.0f) continue;
        const float dm = dmin_all * (float)m;
        for (int ii = 0; ii < 32; ii++)
            L[32 * j + ii] = (uint8_t)imax(0, imin(nmax, nearest_int((x[32 * j + ii] + dm) / d)));
    }
}

static void quant_q4_k(const float *x, block_q4_k *y, int64_t nb) {
    uint8_t L[QK_K];
    for (int64_t i = 0; i < nb; i++, x += QK_K) {
        quant_kx_superblock(x, L, 15, -1.f, 20, &y[i].d, &y[i].dmin, y[i].scales);
        uint8_t *q = y[i].qs;
        for (int j = 0; j < QK_K; j += 64, q += 32)
            for (int l = 0; l < 32; l++) q[l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 4));
    }
}

static void quant_q5_k(const float *x, block_q5_k *y, int64_t nb) {
    uint8_t L[QK_K];
    for (int64_t i = 0; i < nb; i++, x += QK_K) {
        quant_kx_superblock(x, L, 31, -0.5f, 15, &y[i].d, &y[i].dmin, y[i].scales);
        uint8_t *qh = y[i].qh, *ql = y[i].qs;
        memset(qh, 0, QK_K / 8);
        uint8_t m1 = 1, m2 = 2;
        for (int n = 0; n < QK_K; n += 64, ql += 32, m1 <<= 2, m2 <<= 2) {
            for (int j = 0; j < 32; j++) {
                int l1 = L[n + j], l2 = L[n + j + 32];
                if (l1 > 15) {
                    l1 -= 16;
                    qh[j] |= m1;
                }
                if (l2 > 15) {
                    l2 -= 16;
                    qh[j] |= m2;
                }
                ql[j] = (uint8_t)(l1 | (l2 << 4));
            }
        }
    }
}

static void quant_q6_k(const float *x, block_q6_k *y, int64_t nb) {
    int8_t L[QK_K];
    float scales[QK_K / 16];
    for (int64_t i = 0; i < nb; i++, x += QK_K) {
        float max_scale = 0, max_abs_scale = 0;
        for (int ib = 0; ib < QK_K / 16; ib++) {
            scales[ib] = make_qx_quants_w2(16, 32, x + 16 * ib, L + 16 * ib);
            if (fabsf(scales[ib]) > max_abs_scale) {
                max_abs_scale = fabsf(scales[ib]);
                max_scale = scales[ib];
            }
        }
        if (max_abs_scale < GROUP_MAX_EPS) {
            memset(&y[i], 0, sizeof y[i]);
            y[i].d = loom_f32_to_f16(0.f);
            continue;
        }
        const float iscale = -128.f / max_scale;
        y[i].d = loom_f32_to_f16(1 / iscale);
        for (int ib = 0; ib < QK_K / 16; ib++) y[i].scales[ib] = (int8_t)imin(127, nearest_int(iscale * scales[ib]));

        const float d_all = loom_f16_to_f32(y[i].d);
        for (int j = 0; j < QK_K / 16; j++) {
            const float d = d_all * (float)y[i].scales[j];
            if (d == 0.0f) continue;
            for (int ii = 0; ii < 16; ii++)
                L[16 * j + ii] = (int8_t)(imax(-32, imin(31, nearest_int(x[16 * j + ii] / d))) + 32);
        }

        uint8_t *ql = y[i].ql, *qh = y[i].qh;
        for (int j = 0; j < QK_K; j += 128, ql += 64, qh += 32) {
            for (int l = 0; l < 32; l++) {
                const uint8_t *Lu = (const uint8_t *)L + j + l; /* levels are 0..63 */
                ql[l + 0] = (uint8_t)((Lu[0] & 0xF) | ((Lu[64] & 0xF) << 4));
                ql[l + 32] = (uint8_t)((Lu[32] & 0xF) | ((Lu[96] & 0xF) << 4));
                qh[l] = (uint8_t)((Lu[0] >> 4) | ((Lu[32] >> 4) << 2) | ((Lu[64] >> 4) << 4) | ((Lu[96] >> 4) << 6));
            }
        }
    }
}

int loom_quantize_row(loom_dtype t, const float *src, void *dst, int64_t n) {
    const loom_type_info *ti = loom_type_info_get(t);
    if (!ti || !ti->supported || n < 0 || n % ti->block_size) return -1;
    const int64_t nb = n / ti->block_size;
    switch (t) {
    case LOOM_F32: memcpy(dst, src, (size_t)n * sizeof(float)); return 0;
    case LOOM_F16: {
        loom_f16 *y = dst;
        for (int64_t i = 0; i < n; i++) y[i] = loom_f32_to_f16(src[i]);
        return 0;
    }
    case LOOM_BF16: {
        uint16_t *y = dst;
        for (int64_t i = 0; i < n; i++) y[i] = loom_f32_to_bf16(src[i]);
        return 0;
    }
    case LOOM_Q8_0: quant_q8_0(src, dst, nb); return 0;
    case LOOM_Q4_0: quant_q4_0(src, dst, nb); return 0;
    case LOOM_Q4_1: quant_q4_1(src, dst, nb); return 0;
    case LOOM_Q5_0: quant_q5_0(src, dst, nb); return 0;
    case LOOM_Q5_1: quant_q5_1(src, dst, nb); return 0;
    case LOOM_Q4_K: quant_q4_k(src, dst, nb); return 0;
    case LOOM_Q5_K: quant_q5_k(src, dst, nb); return 0;
    case LOOM_Q6_K: quant_q6_k(src, dst, nb); return 0;
    default: return -1;
    }
}
