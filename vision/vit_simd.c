/* vision/vit_simd.c — the ViT's two hot loops outside loom_matmul: attention of one (tile, head), and GELU.
 *
 * Attention:
 *   O[i] = sum_j softmax_j(scale * Q[i]·K[j]) V[j]        Q, K, V [n, d_head] f32 contiguous, O rows strided
 *
 * Queries go in blocks of VIT_ATTN_QB rows: each key row is loaded once per block and dotted with every query of
 * the block (blocked dot products), each score row gets a max-subtracted f32 softmax, and the value rows are
 * accumulated into the block's outputs with axpy loops over d_head. No mask: every token of a tile sees every
 * other (577 for Llama 4), so S is a [QB, n] strip, never [n, n].
 *
 * GELU (exact erf form, as nn.GELU()): the Llama 4 ViT evaluates it on 577 * 5632 values per tile and layer
 * (about 2e9 values for a 17-tile image); libm's erff took ~18-25 ns per value here, the AVX2 path below ~2-4 ns.
 * So erf is computed branch-free: Abramowitz & Stegun 7.1.26, erf(z) = 1 - p(t) e^{-z^2} with
 * t = 1 / (1 + 0.3275911 z) (|error| <= 1.5e-7, close to erff's own rounding), and e^{-z^2} by Cephes' expf
 * polynomial. For x < 0 the GELU is formed as 0.5 x p(t) e^{-z^2} directly, so no cancellation occurs in 1 + erf.
 * tests/vision/test_vit.c checks it against loom_gelu_erf.
 *
 * This file is compiled twice: as itself (baseline x86-64, the scalar reference) and from vit_simd_avx2.c with
 * VIT_SIMD_AVX2 defined (-mavx2 -mfma), which replaces the inner loops with FMA intrinsics. vit_attn_head and
 * vit_gelu_row pick the AVX2 build at run time.
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

#ifdef VIT_SIMD_AVX2
static inline float hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}
#endif

/* S[r][j] = scale * dot(Q[r], K[j]) for r < VIT_ATTN_QB, j < n. */
static void scores_block(float *S, const float *Q, const float *K, int64_t n, int dh, float scale) {
    const float *q0 = Q, *q1 = Q + dh, *q2 = Q + 2 * dh, *q3 = Q + 3 * dh;
    for (int64_t j = 0; j < n; j++) {
        const float *k = K + j * dh;
        float s0, s1, s2, s3;
        int e = 0;
#ifdef VIT_SIMD_AVX2
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (; e + 8 <= dh; e += 8) {
            __m256 kv = _mm256_loadu_ps(k + e);
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q0 + e), kv, a0);
            a1 = _mm256_fmadd_ps(_mm256_loadu_ps(q1 + e), kv, a1);
            a2 = _mm256_fmadd_ps(_mm256_loadu_ps(q2 + e), kv, a2);
            a3 = _mm256_fmadd_ps(_mm256_loadu_ps(q3 + e), kv, a3);
        }
        s0 = hsum256(a0), s1 = hsum256(a1), s2 = hsum256(a2), s3 = hsum256(a3);
#else
        float a[4][8] = {{0}};
        for (; e + 8 <= dh; e += 8)
            for (int l = 0; l < 8; l++) {
                a[0][l] += q0[e + l] * k[e + l];
                a[1][l] += q1[e + l] * k[e + l];
                a[2][l] += q2[e + l] * k[e + l];
                a[3][l] += q3[e + l] * k[e + l];
            }
        s0 = s1 = s2 = s3 = 0.0f;
        for (int l = 0; l < 8; l++) s0 += a[0][l], s1 += a[1][l], s2 += a[2][l], s3 += a[3][l];
#endif
        for (; e < dh; e++) {
            s0 += q0[e] * k[e];
            s1 += q1[e] * k[e];
            s2 += q2[e] * k[e];
            s3 += q3[e] * k[e];
        }
        S[j] = s0 * scale;
        S[n + j] = s1 * scale;
        S[2 * n + j] = s2 * scale;
        S[3 * n + j] = s3 * scale;
    }
}

/* o += p * v over dh values. */
static inline void axpy(float *o, float p, const float *v, int dh) {
    int e = 0;
#ifdef VIT_SIMD_AVX2
    __m256 pv = _mm256_set1_ps(p);
    for (; e + 8 <= dh; e += 8) _mm256_storeu_ps(o + e, _mm256_fmadd_ps(pv, _mm256_loadu_ps(v + e), _mm256_loadu_ps(o + e)));
#endif
    for (; e < dh; e++) o[e] += p * v[e];
}

void VIT_FN(vit_attn_head)(float *O, int64_t ldo, const float *Q, const float *K, const float *V, int64_t n, int dh,
                           float scale, float *S) {
    for (int64_t i0 = 0; i0 < n; i0 += VIT_ATTN_QB) {
        int nq = n - i0 < VIT_ATTN_QB ? (int)(n - i0) : VIT_ATTN_QB;
        if (nq == VIT_ATTN_QB) {
            scores_block(S, Q + i0 * dh, K, n, dh, scale);
        } else {
            for (int r = 0; r < nq; r++)
                for (int64_t j = 0; j < n; j++) S[r * n + j] = loom_dot_f32(Q + (i0 + r) * dh, K + j * dh, dh) * scale;
        }
        for (int r = 0; r < nq; r++) {
            loom_op_softmax(S + r * n, n);
            float *o = O + (i0 + r) * ldo;
            for (int e = 0; e < dh; e++) o[e] = 0.0f;
        }
        /* key-major so each value row is read once per query block */
        for (int64_t j = 0; j < n; j++)
            for (int r = 0; r < nq; r++) axpy(O + (i0 + r) * ldo, S[r * n + j], V + j * dh, dh);
    }
}

/* ==== GELU ==== */

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

void vit_attn_head(float *O, int64_t ldo, const float *Q, const float *K, const float *V, int64_t n, int dh,
                   float scale, float *S) {
    /* per call, so loom_isa_force(LOOM_ISA_SCALAR) (or LOOM_ISA=scalar) reaches the reference loops */
    if (loom_isa_active() >= LOOM_ISA_AVX2)
        vit_attn_head_avx2(O, ldo, Q, K, V, n, dh, scale, S);
    else
        vit_attn_head_ref(O, ldo, Q, K, V, n, dh, scale, S);
}
#endif
