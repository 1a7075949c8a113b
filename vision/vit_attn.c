/* vision/vit_attn.c — bidirectional attention of one head of one tile (the ViT's only non-matmul hot loop).
 *
 *   O[i] = sum_j softmax_j(scale * Q[i]·K[j]) V[j]        Q, K, V [n, d_head] f32 contiguous, O rows strided
 *
 * Queries go in blocks of VIT_ATTN_QB rows: each key row is loaded once per block and dotted with every query of
 * the block (blocked dot products), each score row gets a max-subtracted f32 softmax, and the value rows are
 * accumulated into the block's outputs with axpy loops over d_head. No mask: every token of a tile sees every
 * other (577 for Llama 4), so S is a [QB, n] strip, never [n, n].
 *
 * This file is compiled twice: as itself (baseline x86-64, the scalar reference) and from vit_attn_avx2.c with
 * VIT_ATTN_AVX2 defined (-mavx2 -mfma), which swaps the two inner loops for FMA intrinsics. vit_attn_head picks
 * the AVX2 build at run time.
 */
#include "core/ops.h"
#include "vision/vit_int.h"

#ifdef VIT_ATTN_AVX2
#include <immintrin.h>
#define VIT_FN(name) name##_avx2
#else
#include "core/matmul.h"
#define VIT_FN(name) name##_ref
#endif

#ifdef VIT_ATTN_AVX2
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
#ifdef VIT_ATTN_AVX2
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
#ifdef VIT_ATTN_AVX2
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

#ifndef VIT_ATTN_AVX2
void vit_attn_head(float *O, int64_t ldo, const float *Q, const float *K, const float *V, int64_t n, int dh,
                   float scale, float *S) {
    /* per call, so loom_isa_force(LOOM_ISA_SCALAR) in a test reaches the reference loops */
    if (loom_isa_best() >= LOOM_ISA_AVX2)
        vit_attn_head_avx2(O, ldo, Q, K, V, n, dh, scale, S);
    else
        vit_attn_head_ref(O, ldo, Q, K, V, n, dh, scale, S);
}
#endif
