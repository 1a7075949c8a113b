/* vision/vit_simd.c — the ViT's GELU, the hot loop outside loom_matmul and core/attn.
 *
 * GELU (exact erf form, as nn.GELU()): the Llama 4 ViT evaluates it on 577 * 5632 values per tile and layer
 * (about 2e9 values for a 17-tile image); libm's erff took ~18-25 ns per value here, the AVX2 path below ~2-4 ns.
 * So erf is computed branch-free: Abramowitz & Stegun 7.1.26, erf(z) = 1 - p(t) e^{-z^2} with
 * t = 1 / (1 + 0.3275911 z) (|error| <= 1.5e-7, close to erff's own rounding), and e^{-z^2} by Cephes' expf
 * polynomial. For x < 0 the GELU is formed as 0.5 x p(t) e^{-z^2} directly, so no cancellation occurs in 1 + erf.
 * tests/vision/test_vit.c checks it against loom_gelu_erf.
 *
 * This file is compiled twice: as itself (baseline x86-64, the scalar reference) and from vit_simd_avx2.c with
 * VIT_SIMD_AVX2 defined (-mavx2 -mfma), which replaces the inner loops with FMA intrinsics. vit_gelu_row picks
 * the AVX2 build at run time.
 */
#include <math.h>

#include "core/ops.h"
#include "vision/vit_int.h"

#ifdef VIT_SIMD_AVX2
#include <immintrin.h>
#define VIT_FN(name) name##_avx2
#else
#include "core/matmul.h"
#define VIT_FN(name) name##_ref
#endif

#define GELU_P   0.3275911f
#define GELU_A1  0.254829592f
#define GELU_A2 -0.284496736f
#define GELU_A3  1.421413741f
#define GELU_A4 -1.453152027f
#define GELU_A5  1.061405429f

#ifndef VIT_SIMD_AVX2
/* e^y for y in [-87, 0] (Cephes expf: y = k ln2 + r, |r| <= ln2/2, degree-6 polynomial, 2^k by exponent bits). */
static inline float exp_neg(float y) {
    y = y < -87.0f ? -87.0f : y;
    float k = floorf(y * 1.44269504088896341f + 0.5f);
    float r = y - k * 0.693359375f + k * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    union { float f; uint32_t u; } sc = {.u = (uint32_t)((int32_t)k + 127) << 23};
    return p * sc.f;
}

static inline float gelu1(float x) {
    float z = fabsf(x) * 0.70710678118654752f;
    float t = 1.0f / (1.0f + GELU_P * z);
    float q = t * (GELU_A1 + t * (GELU_A2 + t * (GELU_A3 + t * (GELU_A4 + t * GELU_A5)))) * exp_neg(-z * z);
    /* q = 1 - erf(|x|/sqrt2): GELU = 0.5 x (1 + erf) = 0.5 x q for x < 0, 0.5 x (2 - q) otherwise */
    return 0.5f * x * (x < 0.0f ? q : 2.0f - q);
}
#else
static inline __m256 exp_neg8(__m256 y) {
    y = _mm256_max_ps(y, _mm256_set1_ps(-87.0f));
    __m256 k = _mm256_floor_ps(_mm256_fmadd_ps(y, _mm256_set1_ps(1.44269504088896341f), _mm256_set1_ps(0.5f)));
    __m256 r = _mm256_fnmadd_ps(k, _mm256_set1_ps(0.693359375f), y);
    r = _mm256_fmadd_ps(k, _mm256_set1_ps(2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(_mm256_mul_ps(p, r), r, _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(k), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

static inline __m256 gelu8(__m256 x) {
    __m256 z = _mm256_mul_ps(_mm256_andnot_ps(_mm256_set1_ps(-0.0f), x), _mm256_set1_ps(0.70710678118654752f));
    __m256 t = _mm256_div_ps(_mm256_set1_ps(1.0f), _mm256_fmadd_ps(_mm256_set1_ps(GELU_P), z, _mm256_set1_ps(1.0f)));
    __m256 p = _mm256_fmadd_ps(t, _mm256_set1_ps(GELU_A5), _mm256_set1_ps(GELU_A4));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(GELU_A3));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(GELU_A2));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(GELU_A1));
    __m256 q = _mm256_mul_ps(_mm256_mul_ps(p, t), exp_neg8(_mm256_mul_ps(_mm256_sub_ps(_mm256_setzero_ps(), z), z)));
    __m256 neg = _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_LT_OQ);
    __m256 f = _mm256_blendv_ps(_mm256_sub_ps(_mm256_set1_ps(2.0f), q), q, neg);
    return _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), x), f);
}
#endif

void VIT_FN(vit_gelu_row)(float *x, const float *bias, int64_t n) {
    int64_t i = 0;
#ifdef VIT_SIMD_AVX2
    if (bias)
        for (; i + 8 <= n; i += 8)
            _mm256_storeu_ps(x + i, gelu8(_mm256_add_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(bias + i))));
    else
        for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, gelu8(_mm256_loadu_ps(x + i)));
    if (i < n) { /* tail through the same vector code, so every element sees identical arithmetic */
        float buf[8] = {0};
        for (int64_t j = i; j < n; j++) buf[j - i] = x[j] + (bias ? bias[j] : 0.0f);
        _mm256_storeu_ps(buf, gelu8(_mm256_loadu_ps(buf)));
        for (int64_t j = i; j < n; j++) x[j] = buf[j - i];
    }
#else
    for (; i < n; i++) x[i] = gelu1(x[i] + (bias ? bias[i] : 0.0f));
#endif
}

/* ==== dispatch ==== */

#ifndef VIT_SIMD_AVX2
void vit_gelu_row(float *x, const float *bias, int64_t n) {
    if (loom_isa_active() >= LOOM_ISA_AVX2)
        vit_gelu_row_avx2(x, bias, n);
    else
        vit_gelu_row_ref(x, bias, n);
}

#endif
