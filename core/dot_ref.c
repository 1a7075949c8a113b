/* core/dot_ref.c — scalar reference kernels: the oracle for the SIMD versions and the fallback on any x86-64.
 *
 * The maths per type (W from the block formulas in ../shared/testdata/quant/README.md, X the activation):
 *   F32/F16/BF16:  sum_i W[i] * x[i]                          (f32 products, f64 accumulation)
 *   Q8_0:          sum_b dw_b*dx_b * sum_i qw*qx
 *   Q4_0/Q5_0:     sum_b dw_b*dx_b * sum_i (q - 8|16)*qx
 *   Q4_1/Q5_1:     sum_b dw_b*dx_b * sum_i q*qx  +  mw_b*dx_b * sum_i qx
 *   Q4_K/Q5_K:     sum_B dw*dx * sum_j sc_j * sum_i q*qx  -  dminw*dx * sum_j mn_j * (bsums[2j] + bsums[2j+1])
 *   Q6_K:          sum_B dw*dx * sum_j sc_j * sum_i (q - 32)*qx          (j over 16-element groups)
 * Integer sums are exact; the per-block scale product (dw*dx) is rounded to f32 exactly as the SIMD kernels
 * round it, and the block terms are accumulated in f64, so the reference is at least as accurate as any SIMD
 * version and differences come only from the SIMD kernels' f32 accumulation.
 */
#include <math.h>

#include "core/matmul_int.h"

/* ==== float weights ==== */

static float dot_f32(int64_t n, const void *w, const void *xq) {
    const float *a = w, *x = xq;
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (double)(a[i] * x[i]);
    return (float)s;
}

static float dot_f16(int64_t n, const void *w, const void *xq) {
    const uint16_t *a = w;
    const float *x = xq;
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (double)(mm_f16_to_f32(a[i]) * x[i]);
    return (float)s;
}

static float dot_bf16(int64_t n, const void *w, const void *xq) {
    const uint16_t *a = w;
    const float *x = xq;
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (double)(mm_bf16_to_f32(a[i]) * x[i]);
    return (float)s;
}

/* ==== 32-element blocks x Q8_0 ==== */

static float dot_q8_0(int64_t n, const void *w, const void *xq) {
    const block_q8_0 *x = w;
    const block_q8_0 *y = xq;
    double s = 0;
    for (int64_t b = 0; b < n / QK8_0; b++) {
        int isum = 0;
        for (int i = 0; i < QK8_0; i++) isum += x[b].qs[i] * y[b].qs[i];
        s += (double)(mm_f16_to_f32(x[b].d) * mm_f16_to_f32(y[b].d)) * isum;
    }
    return (float)s;
}

static float dot_q4_0(int64_t n, const void *w, const void *xq) {
    const block_q4_0 *x = w;
    const block_q8_0 *y = xq;
    double s = 0;
    for (int64_t b = 0; b < n / QK4_0; b++) {
        int isum = 0;
        for (int i = 0; i < 16; i++) {
            isum += ((x[b].qs[i] & 0xF) - 8) * y[b].qs[i];
            isum += ((x[b].qs[i] >> 4) - 8) * y[b].qs[i + 16];
        }
        s += (double)(mm_f16_to_f32(x[b].d) * mm_f16_to_f32(y[b].d)) * isum;
    }
    return (float)s;
}

static float dot_q4_1(int64_t n, const void *w, const void *xq) {
    const block_q4_1 *x = w;
    const block_q8_0 *y = xq;
    double s = 0;
    for (int64_t b = 0; b < n / QK4_1; b++) {
        int isum = 0, asum = 0;
        for (int i = 0; i < 16; i++) {
            isum += (x[b].qs[i] & 0xF) * y[b].qs[i] + (x[b].qs[i] >> 4) * y[b].qs[i + 16];
            asum += y[b].qs[i] + y[b].qs[i + 16];
        }
        float dy = mm_f16_to_f32(y[b].d);
        s += (double)(mm_f16_to_f32(x[b].d) * dy) * isum + (double)(mm_f16_to_f32(x[b].m) * dy) * asum;
    }
    return (float)s;
}

static inline uint32_t load_u32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static float dot_q5_0(int64_t n, const void *w, const void *xq) {
    const block_q5_0 *x = w;
    const block_q8_0 *y = xq;
    double s = 0;
    for (int64_t b = 0; b < n / QK5_0; b++) {
        uint32_t qh = load_u32(x[b].qh);
        int isum = 0;
        for (int i = 0; i < 16; i++) {
            int q0 = (x[b].qs[i] & 0xF) | (int)(((qh >> i) & 1) << 4);
            int q1 = (x[b].qs[i] >> 4) | (int)(((qh >> (i + 16)) & 1) << 4);
            isum += (q0 - 16) * y[b].qs[i] + (q1 - 16) * y[b].qs[i + 16];
        }
        s += (double)(mm_f16_to_f32(x[b].d) * mm_f16_to_f32(y[b].d)) * isum;
    }
    return (float)s;
}

static float dot_q5_1(int64_t n, const void *w, const void *xq) {
    const block_q5_1 *x = w;
    const block_q8_0 *y = xq;
    double s = 0;
    for (int64_t b = 0; b < n / QK5_1; b++) {
        uint32_t qh = load_u32(x[b].qh);
        int isum = 0, asum = 0;
        for (int i = 0; i < 16; i++) {
            int q0 = (x[b].qs[i] & 0xF) | (int)(((qh >> i) & 1) << 4);
            int q1 = (x[b].qs[i] >> 4) | (int)(((qh >> (i + 16)) & 1) << 4);
            isum += q0 * y[b].qs[i] + q1 * y[b].qs[i + 16];
            asum += y[b].qs[i] + y[b].qs[i + 16];
        }
        float dy = mm_f16_to_f32(y[b].d);
        s += (double)(mm_f16_to_f32(x[b].d) * dy) * isum + (double)(mm_f16_to_f32(x[b].m) * dy) * asum;
    }
    return (float)s;
}

/* ==== K-quants x Q8_K ==== */

static float dot_q4_k(int64_t n, const void *w, const void *xq) {
    const block_q4_k *x = w;
    const block_q8_k *y = xq;
    double s = 0;
    for (int64_t b = 0; b < n / QK_K; b++) {
        int sumi = 0, summ = 0;
        for (int j = 0; j < 8; j++) {
            uint8_t sc, mn;
            loom_get_scale_min_k4(j, x[b].scales, &sc, &mn);
            const uint8_t *q = x[b].qs + 32 * (j / 2);
            const int8_t *a = y[b].qs + 32 * j;
            int isum = 0;
            for (int l = 0; l < 32; l++) isum += ((j & 1) ? (q[l] >> 4) : (q[l] & 0xF)) * a[l];
            sumi += sc * isum;
            summ += mn * (y[b].bsums[2 * j] + y[b].bsums[2 * j + 1]);
        }
        s += (double)(mm_f16_to_f32(x[b].d) * y[b].d) * sumi - (double)(mm_f16_to_f32(x[b].dmin) * y[b].d) * summ;
    }
    return (float)s;
}

static float dot_q5_k(int64_t n, const void *w, const void *xq) {
    const block_q5_k *x = w;
    const block_q8_k *y = xq;
    double s = 0;
    for (int64_t b = 0; b < n / QK_K; b++) {
        int sumi = 0, summ = 0;
        for (int j = 0; j < 8; j++) {
            uint8_t sc, mn;
            loom_get_scale_min_k4(j, x[b].scales, &sc, &mn);
            const uint8_t *q = x[b].qs + 32 * (j / 2);
            const int8_t *a = y[b].qs + 32 * j;
            int isum = 0;
            for (int l = 0; l < 32; l++) {
                int v = ((j & 1) ? (q[l] >> 4) : (q[l] & 0xF)) + (((x[b].qh[l] >> j) & 1) << 4);
                isum += v * a[l];
            }
            sumi += sc * isum;
            summ += mn * (y[b].bsums[2 * j] + y[b].bsums[2 * j + 1]);
        }
        s += (double)(mm_f16_to_f32(x[b].d) * y[b].d) * sumi - (double)(mm_f16_to_f32(x[b].dmin) * y[b].d) * summ;
    }
    return (float)s;
}

static float dot_q6_k(int64_t n, const void *w, const void *xq) {
    const block_q6_k *x = w;
    const block_q8_k *y = xq;
    double s = 0;
    for (int64_t b = 0; b < n / QK_K; b++) {
        int sumi = 0;
        for (int e0 = 0; e0 < QK_K; e0 += 16) { /* one int8 scale per 16 elements */
            int isum = 0;
            for (int e = e0; e < e0 + 16; e++) {
                int h = e / 128, k = (e % 128) / 32, l = e % 32;
                uint8_t lb = x[b].ql[64 * h + 32 * (k & 1) + l];
                int lo = (k < 2) ? (lb & 0xF) : (lb >> 4);
                int hi = (x[b].qh[32 * h + l] >> (2 * k)) & 3;
                isum += ((lo | (hi << 4)) - 32) * y[b].qs[e];
            }
            sumi += x[b].scales[e0 / 16] * isum;
        }
        s += (double)(mm_f16_to_f32(x[b].d) * y[b].d) * sumi;
    }
    return (float)s;
}

/* ==== activation quantizers ==== */

static void quant_q8_0(const float *x, void *xq, int64_t n) {
    block_q8_0 *y = xq;
    for (int64_t b = 0; b < n / QK8_0; b++) {
        const float *v = x + b * QK8_0;
        float amax = 0;
        for (int i = 0; i < QK8_0; i++) amax = fmaxf(amax, fabsf(v[i]));
        const float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        y[b].d = mm_f32_to_f16(d);
        for (int i = 0; i < QK8_0; i++) {
            float r = nearbyintf(v[i] * id);
            y[b].qs[i] = (int8_t)(r > 127.0f ? 127 : r < -127.0f ? -127 : (int)r);
        }
    }
}

static void quant_q8_k(const float *x, void *xq, int64_t n) {
    block_q8_k *y = xq;
    for (int64_t b = 0; b < n / QK_K; b++) {
        const float *v = x + b * QK_K;
        float amax = 0;
        for (int i = 0; i < QK_K; i++) amax = fmaxf(amax, fabsf(v[i]));
        const float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        y[b].d = d;
        for (int i = 0; i < QK_K; i++) {
            float r = nearbyintf(v[i] * id);
            y[b].qs[i] = (int8_t)(r > 127.0f ? 127 : r < -127.0f ? -127 : (int)r);
        }
        for (int j = 0; j < QK_K / 16; j++) {
            int s = 0;
            for (int i = 0; i < 16; i++) s += y[b].qs[16 * j + i];
            y[b].bsums[j] = (int16_t)s;
        }
    }
}

void loom_kernels_fill_ref(loom_kernels *k) {
    memset(k, 0, sizeof *k);
    k->dot[LOOM_F32] = dot_f32;
    k->dot[LOOM_F16] = dot_f16;
    k->dot[LOOM_BF16] = dot_bf16;
    k->dot[LOOM_Q8_0] = dot_q8_0;
    k->dot[LOOM_Q4_0] = dot_q4_0;
    k->dot[LOOM_Q4_1] = dot_q4_1;
    k->dot[LOOM_Q5_0] = dot_q5_0;
    k->dot[LOOM_Q5_1] = dot_q5_1;
    k->dot[LOOM_Q4_K] = dot_q4_k;
    k->dot[LOOM_Q5_K] = dot_q5_k;
    k->dot[LOOM_Q6_K] = dot_q6_k;
    k->quant_q8_0 = quant_q8_0;
    k->quant_q8_k = quant_q8_k;
}
