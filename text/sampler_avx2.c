/* text/sampler_avx2.c — the sampler's softmax weights four at a time (AVX2 + FMA; compiled with -mavx2 -mfma,
 * called only when the CPU has both).
 *
 * out[i] = (float)exp(((double)l[id] - M) / T) with id = ids ? ids[i] : i, bit for bit what the C library's exp
 * rounded to float gives: a double exp good to ~1e-15 (round-to-nearest reduction by ln2, degree-12 Taylor
 * polynomial) rounds to the same float unless exp(x) lies within 1e-13 of a rounding boundary between two
 * floats. The bracket test finds those lanes (about one in a million) and hands them, and any x outside
 * [-120, 80], to exp() itself. The library's exp is within an ulp of the true value, inside the bracket, so both
 * roundings agree. The sampler's sums and draws are over these floats, so its results do not depend on the CPU.
 */
#include <immintrin.h>
#include <math.h>
#include <stdint.h>

void sampler_exp_weights_avx2(float *out, const float *l, const int32_t *ids, int32_t n, double M, double T);

static float exp_one(double x) { return x < -120.0 ? 0.0f : (float)exp(x); } /* exp(-120) < FLT_TRUE_MIN / 2 */

void sampler_exp_weights_avx2(float *out, const float *l, const int32_t *ids, int32_t n, double M, double T) {
    const __m256d vM = _mm256_set1_pd(M), vT = _mm256_set1_pd(T), lo_lim = _mm256_set1_pd(-120.0),
                  hi_lim = _mm256_set1_pd(80.0), inv_ln2 = _mm256_set1_pd(0x1.71547652b82fep0),
                  ln2_hi = _mm256_set1_pd(0x1.62e42fefa39efp-1), ln2_lo = _mm256_set1_pd(0x1.abc9e3b39803fp-56),
                  down = _mm256_set1_pd(1 - 1e-13), up = _mm256_set1_pd(1 + 1e-13), zero = _mm256_setzero_pd();
    static const double c[13] = {1.0 / 479001600, 1.0 / 39916800, 1.0 / 3628800, 1.0 / 362880, 1.0 / 40320,
                                 1.0 / 5040,      1.0 / 720,      1.0 / 120,     1.0 / 24,     1.0 / 6,
                                 0.5,             1.0,            1.0};
    const int div = T != 1.0; /* x / 1 == x: the top-p weights skip the division */
    int32_t   i = 0;
    for (; i + 4 <= n; i += 4) {
        __m128 lv = ids ? _mm_set_ps(l[ids[i + 3]], l[ids[i + 2]], l[ids[i + 1]], l[ids[i]]) : _mm_loadu_ps(l + i);
        __m256d x = _mm256_sub_pd(_mm256_cvtps_pd(lv), vM);
        if (div) x = _mm256_div_pd(x, vT);
        /* lanes outside [-120, 80] (and NaN) take the scalar path below */
        __m256d ok = _mm256_and_pd(_mm256_cmp_pd(x, lo_lim, _CMP_GE_OQ), _mm256_cmp_pd(x, hi_lim, _CMP_LE_OQ));
        x = _mm256_blendv_pd(zero, x, ok);
        __m256d k = _mm256_round_pd(_mm256_mul_pd(x, inv_ln2), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        __m256d r = _mm256_fnmadd_pd(k, ln2_hi, x); /* x - k ln2, |r| <= ln2 / 2 */
        r = _mm256_fnmadd_pd(k, ln2_lo, r);
        __m256d p = _mm256_set1_pd(c[0]);
        for (int j = 1; j < 13; j++) p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(c[j]));
        __m128i ki = _mm256_cvtpd_epi32(k);
        __m256i bits = _mm256_slli_epi64(_mm256_add_epi64(_mm256_cvtepi32_epi64(ki), _mm256_set1_epi64x(1023)), 52);
        __m256d e = _mm256_mul_pd(p, _mm256_castsi256_pd(bits));
        __m128  f = _mm256_cvtpd_ps(e), flo = _mm256_cvtpd_ps(_mm256_mul_pd(e, down)),
               fhi = _mm256_cvtpd_ps(_mm256_mul_pd(e, up));
        _mm_storeu_ps(out + i, f);
        int bad = _mm_movemask_ps(_mm_cmpneq_ps(flo, fhi)) | (~_mm256_movemask_pd(ok) & 15);
        if (bad)
            for (int j = 0; j < 4; j++)
                if (bad >> j & 1) out[i + j] = exp_one(((double)l[ids ? ids[i + j] : i + j] - M) / T);
    }
    for (; i < n; i++) out[i] = exp_one(((double)l[ids ? ids[i] : i] - M) / T);
}
