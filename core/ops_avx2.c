/* core/ops_avx2.c — AVX2 + FMA forms of the row ops (see ops_int.h), the AVX-512 ones (ops_avx512.c) in 8 lanes.
 *
 * Why they exist: on a CPU without AVX-512 these ran as the baseline build's scalar loops, rmsnorm one serial f32
 * add chain, and prefill's glue (norms, SiLU, residual adds) was 5-6 % of a 512-token batch. The sum of squares
 * runs in 4 x 8 lanes, so it rounds differently from the reference (relative difference ~1e-7, tested), and
 * SiLU's e^x is exp256's polynomial (relative error < 2e-7); the rest is the same arithmetic per element. Tails use masked loads and stores, never touching a
 * float past the row.
 */
#include <immintrin.h>
#include <math.h>

#include "core/exp_avx2.h"
#include "core/hsum_avx2.h"
#include "core/ops_int.h"

static inline __m256i tail_mask(int64_t left) { /* lanes < left (all when left >= 8) */
    const int k = left >= 8 ? 8 : (int)left;
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(k), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

void loom_op_rmsnorm_avx2(float *out, const float *x, const float *w, int64_t n, float eps) {
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        const __m256 a = _mm256_loadu_ps(x + i), b = _mm256_loadu_ps(x + i + 8);
        const __m256 c = _mm256_loadu_ps(x + i + 16), d = _mm256_loadu_ps(x + i + 24);
        s0 = _mm256_fmadd_ps(a, a, s0);
        s1 = _mm256_fmadd_ps(b, b, s1);
        s2 = _mm256_fmadd_ps(c, c, s2);
        s3 = _mm256_fmadd_ps(d, d, s3);
    }
    for (; i < n; i += 8) {
        const __m256 a = _mm256_maskload_ps(x + i, tail_mask(n - i));
        s0 = _mm256_fmadd_ps(a, a, s0);
    }
    const float ss = hsum256(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    const __m256 r = _mm256_set1_ps(1.0f / sqrtf(ss / (float)n + eps));
    for (i = 0; i < n; i += 8) {
        const __m256i m = tail_mask(n - i);
        __m256 v = _mm256_mul_ps(_mm256_maskload_ps(x + i, m), r);
        if (w) v = _mm256_mul_ps(v, _mm256_maskload_ps(w + i, m));
        _mm256_maskstore_ps(out + i, m, v);
    }
}

/* h = silu(h) * g = h / (1 + e^-h) * g; past exp256's clamp silu is still right to f32 precision (see the
 * AVX-512 form). */
void loom_op_silu_mul_avx2(float *h, const float *g, int64_t n) {
    const __m256 one = _mm256_set1_ps(1.0f);
    for (int64_t i = 0; i < n; i += 8) {
        const __m256i m = tail_mask(n - i);
        const __m256 v = _mm256_maskload_ps(h + i, m);
        const __m256 e = exp256(_mm256_sub_ps(_mm256_setzero_ps(), v));
        const __m256 s = _mm256_div_ps(v, _mm256_add_ps(one, e));
        _mm256_maskstore_ps(h + i, m, _mm256_mul_ps(s, _mm256_maskload_ps(g + i, m)));
    }
}

void loom_op_add_avx2(float *x, const float *a, int64_t n) {
    for (int64_t i = 0; i < n; i += 8) {
        const __m256i m = tail_mask(n - i);
        _mm256_maskstore_ps(x + i, m, _mm256_add_ps(_mm256_maskload_ps(x + i, m), _mm256_maskload_ps(a + i, m)));
    }
}
