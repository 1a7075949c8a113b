/* text/sampler_avx2.c — the sampler's softmax weights four at a time (AVX2 + FMA; compiled with -mavx2 -mfma,
 * called only when the CPU has both).
 *
 * out[i] = (float)exp(((double)l[id] - M) / T) with id = ids ? ids[i] : i, bit for bit what the C library's exp
 * rounded to float gives: a double exp good to ~1e-14 (round-to-nearest reduction by ln2, degree-11 Taylor
 * polynomial in Estrin's scheme, which keeps the dependency chain short) rounds to the same float unless exp(x) lies within 1e-13 of a rounding boundary between two
 * floats. The bracket test finds those lanes (about one in a million) and hands them, and any x outside
 * [-120, 80], to exp() itself. The library's exp is within an ulp of the true value, inside the bracket, so both
 * roundings agree. The sampler's sums and draws are over these floats, so its results do not depend on the CPU.
 */
#include <immintrin.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>

void sampler_exp_weights_avx2(float *out, const float *l, const int32_t *ids, int32_t n, double M, double T);

static float exp_one(double x) { return x < -120.0 ? 0.0f : (float)exp(x); } /* exp(-120) < FLT_TRUE_MIN / 2 */

void sampler_exp_weights_avx2(float *out, const float *l, const int32_t *ids, int32_t n, double M, double T) {
    const __m256d vM = _mm256_set1_pd(M), vT = _mm256_set1_pd(T), lo_lim = _mm256_set1_pd(-120.0),
                  hi_lim = _mm256_set1_pd(80.0), inv_ln2 = _mm256_set1_pd(0x1.71547652b82fep0),
                  ln2_hi = _mm256_set1_pd(0x1.62e42fefa39efp-1), ln2_lo = _mm256_set1_pd(0x1.abc9e3b39803fp-56),
                  down = _mm256_set1_pd(1 - 1e-13), up = _mm256_set1_pd(1 + 1e-13), zero = _mm256_setzero_pd();
#define C(k) _mm256_set1_pd(k)
    const __m256d c2 = C(0.5), c3 = C(1.0 / 6), c4 = C(1.0 / 24), c5 = C(1.0 / 120), c6 = C(1.0 / 720),
                  c7 = C(1.0 / 5040), c8 = C(1.0 / 40320), c9 = C(1.0 / 362880), c10 = C(1.0 / 3628800),
                  c11 = C(1.0 / 39916800), one = C(1.0);
#undef C
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
        __m256d r2 = _mm256_mul_pd(r, r), r4 = _mm256_mul_pd(r2, r2), r8 = _mm256_mul_pd(r4, r4);
        __m256d q0 = _mm256_fmadd_pd(_mm256_fmadd_pd(c3, r, c2), r2, _mm256_fmadd_pd(one, r, one));
        __m256d q1 = _mm256_fmadd_pd(_mm256_fmadd_pd(c7, r, c6), r2, _mm256_fmadd_pd(c5, r, c4));
        __m256d q2 = _mm256_fmadd_pd(_mm256_fmadd_pd(c11, r, c10), r2, _mm256_fmadd_pd(c9, r, c8));
        __m256d p = _mm256_fmadd_pd(q2, r8, _mm256_fmadd_pd(q1, r4, q0));
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

/* Approximate weights for the top-p selection, eight at a time in float: out[i] ~ exp(l[i] - M) within a relative
 * 1e-5 (the float subtraction costs |x| * 2^-24 <= 5.2e-6, the reduction and degree-6 polynomial a few ulps), 0
 * for l[i] - M < -87 (where the exact weight is below 1.2e-38). Needs l[i] <= M. Returns their sum, in double
 * lanes. The sampler only compares these sums with margins that cover the error (sampler.c, topp_*). */
double sampler_approx_weights_avx2(float *out, const float *l, int32_t n, float M);

double sampler_approx_weights_avx2(float *out, const float *l, int32_t n, float M) {
    const __m256 vM = _mm256_set1_ps(M), lim = _mm256_set1_ps(-87.0f), log2e = _mm256_set1_ps(0x1.715476p0f),
                 ln2_hi = _mm256_set1_ps(0x1.62e430p-1f), ln2_lo = _mm256_set1_ps(-0x1.05c610p-29f),
                 c2 = _mm256_set1_ps(0.5f), c3 = _mm256_set1_ps(1.0f / 6), c4 = _mm256_set1_ps(1.0f / 24),
                 c5 = _mm256_set1_ps(1.0f / 120), c6 = _mm256_set1_ps(1.0f / 720), one = _mm256_set1_ps(1.0f);
    __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
    int32_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 x = _mm256_sub_ps(_mm256_loadu_ps(l + i), vM);
        __m256 ok = _mm256_cmp_ps(x, lim, _CMP_GE_OQ); /* -inf and far-below lanes give 0 */
        x = _mm256_max_ps(x, lim);
        __m256 k = _mm256_round_ps(_mm256_mul_ps(x, log2e), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        __m256 r = _mm256_fnmadd_ps(k, ln2_hi, x);
        r = _mm256_fnmadd_ps(k, ln2_lo, r);
        __m256 r2 = _mm256_mul_ps(r, r);
        __m256 hi3 = _mm256_fmadd_ps(_mm256_fmadd_ps(c6, r, c5), r, c4); /* 1 + r + r^2 (c2 + c3 r + r^2 hi3) */
        __m256 p = _mm256_fmadd_ps(_mm256_fmadd_ps(hi3, r2, _mm256_fmadd_ps(c3, r, c2)), r2, _mm256_fmadd_ps(one, r, one));
        __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(k), _mm256_set1_epi32(127)), 23);
        __m256 w = _mm256_and_ps(_mm256_mul_ps(p, _mm256_castsi256_ps(e)), ok);
        _mm256_storeu_ps(out + i, w);
        s0 = _mm256_add_pd(s0, _mm256_cvtps_pd(_mm256_castps256_ps128(w)));
        s1 = _mm256_add_pd(s1, _mm256_cvtps_pd(_mm256_extractf128_ps(w, 1)));
    }
    double lane[4];
    _mm256_storeu_pd(lane, _mm256_add_pd(s0, s1));
    double sum = (lane[0] + lane[1]) + (lane[2] + lane[3]);
    for (; i < n; i++) {
        double x = (double)l[i] - M;
        out[i] = x < -87.0 ? 0.0f : (float)exp(x);
        sum += out[i];
    }
    return sum;
}

/* One quickselect split, eight ids at a time: copies the ids of seg (ids[0..n), or 0..n-1 when ids is NULL)
 * that sort before the pivot (higher logit, then lower id) to b in their order, returns how many, and adds their
 * weights pw[id] in double lanes to *mass. The left-pack uses a table of the 256 lane permutations. */
int32_t sampler_split_avx2(int32_t *b, double *mass, const float *l, const float *pw, const int32_t *ids, int32_t n,
                           float pv, int32_t piv);

static int32_t        perm[256][8]; /* perm[mask] lists the set lanes of mask first */
static pthread_once_t perm_once = PTHREAD_ONCE_INIT;

static void perm_init(void) {
    for (int m = 0; m < 256; m++) {
        int k = 0;
        for (int j = 0; j < 8; j++)
            if (m >> j & 1) perm[m][k++] = j;
        while (k < 8) perm[m][k++] = 0;
    }
}

int32_t sampler_split_avx2(int32_t *b, double *mass, const float *l, const float *pw, const int32_t *ids, int32_t n,
                           float pv, int32_t piv) {
    pthread_once(&perm_once, perm_init);
    const __m256  vpv = _mm256_set1_ps(pv);
    const __m256i vpiv = _mm256_set1_epi32(piv), step = _mm256_set1_epi32(8);
    __m256i       id = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    __m256d       s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
    int32_t       nb = 0, i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 lv, wv;
        if (ids) {
            id = _mm256_loadu_si256((const __m256i *)(ids + i));
            lv = _mm256_i32gather_ps(l, id, 4);
            wv = _mm256_i32gather_ps(pw, id, 4);
        } else {
            lv = _mm256_loadu_ps(l + i);
            wv = _mm256_loadu_ps(pw + i);
        }
        __m256 gt = _mm256_cmp_ps(lv, vpv, _CMP_GT_OQ), eq = _mm256_cmp_ps(lv, vpv, _CMP_EQ_OQ);
        __m256 lower = _mm256_castsi256_ps(_mm256_cmpgt_epi32(vpiv, id));
        __m256 bt = _mm256_or_ps(gt, _mm256_and_ps(eq, lower));
        int    mask = _mm256_movemask_ps(bt);
        __m256 w = _mm256_and_ps(wv, bt);
        s0 = _mm256_add_pd(s0, _mm256_cvtps_pd(_mm256_castps256_ps128(w)));
        s1 = _mm256_add_pd(s1, _mm256_cvtps_pd(_mm256_extractf128_ps(w, 1)));
        __m256i packed = _mm256_permutevar8x32_epi32(id, _mm256_loadu_si256((const __m256i *)perm[mask]));
        _mm256_storeu_si256((__m256i *)(b + nb), packed); /* b has room: nb + 8 <= i + 8 <= n */
        nb += __builtin_popcount((unsigned)mask);
        if (!ids) id = _mm256_add_epi32(id, step);
    }
    double lane[4];
    _mm256_storeu_pd(lane, _mm256_add_pd(s0, s1));
    double sum = (lane[0] + lane[1]) + (lane[2] + lane[3]);
    for (; i < n; i++) {
        int32_t x = ids ? ids[i] : i;
        if (l[x] > pv || (l[x] == pv && x < piv)) {
            b[nb++] = x;
            sum += pw[x];
        }
    }
    *mass += sum;
    return nb;
}
