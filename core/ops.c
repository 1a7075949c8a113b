/* core/ops.c — see ops.h. Scalar loops written so gcc vectorises them; no hidden precision tricks. */
#include "core/ops.h"

#include <math.h>
#include <stdbool.h>

#include "core/matmul.h"
#include "core/ops_int.h"

void loom_op_rmsnorm_ref(float *out, const float *x, const float *w, int64_t n, float eps) {
    float ss = 0.0f;
    for (int64_t i = 0; i < n; i++) ss += x[i] * x[i];
    float r = 1.0f / sqrtf(ss / (float)n + eps);
    if (w)
        for (int64_t i = 0; i < n; i++) out[i] = (x[i] * r) * w[i];
    else
        for (int64_t i = 0; i < n; i++) out[i] = x[i] * r;
}

void loom_op_silu_mul_ref(float *h, const float *g, int64_t n) {
    for (int64_t i = 0; i < n; i++) h[i] = loom_silu(h[i]) * g[i];
}

void loom_op_add_ref(float *x, const float *a, int64_t n) {
    for (int64_t i = 0; i < n; i++) x[i] += a[i];
}

/* The ISA check is two relaxed loads (the forced cap, the detected ISA); these run a few dozen times per token. */
void loom_op_rmsnorm(float *out, const float *x, const float *w, int64_t n, float eps) {
    const loom_isa isa = loom_isa_active();
    if (isa >= LOOM_ISA_AVX512) loom_op_rmsnorm_avx512(out, x, w, n, eps);
    else if (isa >= LOOM_ISA_AVX2) loom_op_rmsnorm_avx2(out, x, w, n, eps);
    else loom_op_rmsnorm_ref(out, x, w, n, eps);
}

void loom_op_silu_mul(float *h, const float *g, int64_t n) {
    const loom_isa isa = loom_isa_active();
    if (isa >= LOOM_ISA_AVX512) loom_op_silu_mul_avx512(h, g, n);
    else if (isa >= LOOM_ISA_AVX2) loom_op_silu_mul_avx2(h, g, n);
    else loom_op_silu_mul_ref(h, g, n);
}

void loom_op_add(float *x, const float *a, int64_t n) {
    const loom_isa isa = loom_isa_active();
    if (isa >= LOOM_ISA_AVX512) loom_op_add_avx512(x, a, n);
    else if (isa >= LOOM_ISA_AVX2) loom_op_add_avx2(x, a, n);
    else loom_op_add_ref(x, a, n);
}

void loom_op_layernorm(float *out, const float *x, const float *w, const float *b, int64_t n, float eps) {
    float mean = 0.0f;
    for (int64_t i = 0; i < n; i++) mean += x[i];
    mean /= (float)n;
    float var = 0.0f;
    for (int64_t i = 0; i < n; i++) {
        float d = x[i] - mean;
        var += d * d;
    }
    var /= (float)n;
    float r = 1.0f / sqrtf(var + eps);
    for (int64_t i = 0; i < n; i++) {
        float v = (x[i] - mean) * r;
        out[i] = v * (w ? w[i] : 1.0f) + (b ? b[i] : 0.0f);
    }
}

void loom_op_softmax(float *x, int64_t n) {
    float mx = -INFINITY;
    for (int64_t i = 0; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    float sum = 0.0f;
    for (int64_t i = 0; i < n; i++) {
        x[i] = expf(x[i] - mx);
        sum += x[i];
    }
    float inv = 1.0f / sum;
    for (int64_t i = 0; i < n; i++) x[i] *= inv;
}

void loom_op_rope_pairs(float *x, const float *cs, int64_t n_pairs) {
    for (int64_t i = 0; i < n_pairs; i++) {
        float a = x[2 * i], b = x[2 * i + 1], c = cs[2 * i], s = cs[2 * i + 1];
        x[2 * i] = a * c - b * s;
        x[2 * i + 1] = a * s + b * c;
    }
}

float loom_gelu_erf(float x) { return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f)); }
float loom_sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

float loom_dot_f32(const float *a, const float *b, int64_t n) {
    float acc[8] = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) acc[k] += a[i + k] * b[i + k];
    float s = 0.0f;
    for (; i < n; i++) s += a[i] * b[i];
    for (int k = 0; k < 8; k++) s += acc[k];
    return s;
}
