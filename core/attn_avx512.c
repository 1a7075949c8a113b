/* core/attn_avx512.c — AVX-512 fused attention (see attn.h), compiled with -mavx512f/dq. Any d_head up to 256
 * (a partial last 16-float chunk is read and written with masks).
 *
 * The 16 query vectors sit in the 16 lanes of a register: the scores of one key against all queries are one
 * zmm, computed as sum_d k[d] * Qt[d] with Q transposed once per task (Qt[d] = the d-th element of every
 * query), so no horizontal reductions are needed and each key row is read once for 16 queries. The online
 * softmax then runs lane-wise, and the output update o[m] += p[m][j] v[j] keeps o[m] in registers while the
 * block's value rows stream from L1.
 */
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "core/attn.h"

#define MASKED (-1e30f)
#define KB 16 /* keys per block */

/* e^x for x in [-87, 88]: Cephes' expf polynomial after reduction by ln 2; relative error < 2e-7. */
static inline __m512 exp512(__m512 x) {
    x = _mm512_max_ps(x, _mm512_set1_ps(-87.0f));
    x = _mm512_min_ps(x, _mm512_set1_ps(88.0f));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500E-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507E-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073E-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894E-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459E-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201E-1f));
    __m512 r2 = _mm512_mul_ps(r, r);
    __m512 y = _mm512_add_ps(_mm512_fmadd_ps(p, r2, r), _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(y, n);
}

/* o[m] = o[m] * alpha[m] + sum_j P[j][m] v[j] for every lane m < n_q, with o[m] held in NC registers. */
static inline __attribute__((always_inline)) void update_out(float *O, int n_q, const float *alpha, const float *P,
                                                             const float *const *vrows, int nk, int NC,
                                                             __mmask16 tail) {
    for (int m = 0; m < n_q; m++) {
        __m512 acc[16];
        float *om = O + m * NC * 16;
        __m512 a = _mm512_set1_ps(alpha[m]);
        for (int c = 0; c < NC; c++) acc[c] = _mm512_mul_ps(_mm512_load_ps(om + 16 * c), a);
        for (int j = 0; j < nk; j++) {
            float pj = P[j * 16 + m];
            if (pj == 0.0f) continue; /* masked key for this lane */
            __m512 pv = _mm512_set1_ps(pj);
            const float *v = vrows[j];
            for (int c = 0; c < NC - 1; c++) acc[c] = _mm512_fmadd_ps(pv, _mm512_loadu_ps(v + 16 * c), acc[c]);
            /* the last chunk may be partial (d_head 88 in the ViT): never read past the row */
            acc[NC - 1] = _mm512_fmadd_ps(pv, _mm512_maskz_loadu_ps(tail, v + 16 * (NC - 1)), acc[NC - 1]);
        }
        for (int c = 0; c < NC; c++) _mm512_store_ps(om + 16 * c, acc[c]);
    }
}

void loom_attn_run_avx512(const loom_attn_task *t) {
    const int dh = t->d_head, NC = (dh + 15) / 16, nq = t->n_q;
    const __mmask16 tail = dh % 16 ? (__mmask16)((1u << (dh % 16)) - 1) : (__mmask16)0xFFFF;
    _Alignas(64) float Qt[256 * 16];
    _Alignas(64) float O[16 * 256];
    _Alignas(64) float P[KB * 16];
    _Alignas(64) float alpha[16];
    memset(Qt, 0, sizeof(float) * (size_t)dh * 16);
    memset(O, 0, sizeof(float) * (size_t)NC * 16 * 16);
    for (int m = 0; m < nq; m++)
        for (int d = 0; d < dh; d++) Qt[d * 16 + m] = t->q[m][d] * t->scale;
    int32_t lo[16], hi[16];
    int64_t min_lo = INT64_MAX, max_hi = INT64_MIN;
    for (int m = 0; m < 16; m++) {
        if (m < nq) {
            lo[m] = (int32_t)t->lo[m];
            hi[m] = (int32_t)t->hi[m];
            if (t->lo[m] < min_lo) min_lo = t->lo[m];
            if (t->hi[m] > max_hi) max_hi = t->hi[m];
        } else {
            lo[m] = INT32_MAX; /* an empty range: the lane never sees a key */
            hi[m] = INT32_MIN;
        }
    }
    __m512i vlo = _mm512_loadu_si512(lo), vhi = _mm512_loadu_si512(hi);
    __m512 mx = _mm512_set1_ps(MASKED), l = _mm512_setzero_ps();

    for (int s = 0; s < t->n_seg; s++) {
        const loom_attn_seg *g = &t->seg[s];
        int64_t first = g->pos0 > min_lo ? 0 : min_lo - g->pos0;
        int64_t last = g->pos0 + g->n - 1 < max_hi ? g->n - 1 : max_hi - g->pos0;
        for (int64_t j0 = first; j0 <= last; j0 += KB) {
            int nk = (int)(last - j0 + 1 < KB ? last - j0 + 1 : KB);
            __m512 sc[KB];
            const float *vrows[KB];
            /* scores: four keys at a time share each Qt[d] load */
            int j = 0;
            for (; j + 4 <= nk; j += 4) {
                const float *k0 = g->k + (j0 + j) * g->stride, *k1 = k0 + g->stride, *k2 = k1 + g->stride,
                            *k3 = k2 + g->stride;
                __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
                for (int d = 0; d < dh; d++) {
                    __m512 qd = _mm512_load_ps(Qt + d * 16);
                    s0 = _mm512_fmadd_ps(_mm512_set1_ps(k0[d]), qd, s0);
                    s1 = _mm512_fmadd_ps(_mm512_set1_ps(k1[d]), qd, s1);
                    s2 = _mm512_fmadd_ps(_mm512_set1_ps(k2[d]), qd, s2);
                    s3 = _mm512_fmadd_ps(_mm512_set1_ps(k3[d]), qd, s3);
                }
                sc[j] = s0;
                sc[j + 1] = s1;
                sc[j + 2] = s2;
                sc[j + 3] = s3;
            }
            for (; j < nk; j++) {
                const float *k0 = g->k + (j0 + j) * g->stride;
                __m512 s0 = _mm512_setzero_ps();
                for (int d = 0; d < dh; d++) s0 = _mm512_fmadd_ps(_mm512_set1_ps(k0[d]), _mm512_load_ps(Qt + d * 16), s0);
                sc[j] = s0;
            }
            /* mask and block max, lane-wise */
            __mmask16 vis[KB];
            __m512 bmax = _mm512_set1_ps(MASKED);
            for (j = 0; j < nk; j++) {
                __m512i pos = _mm512_set1_epi32((int32_t)(g->pos0 + j0 + j));
                vis[j] = _mm512_cmple_epi32_mask(vlo, pos) & _mm512_cmple_epi32_mask(pos, vhi);
                sc[j] = _mm512_mask_blend_ps(vis[j], _mm512_set1_ps(MASKED), sc[j]);
                bmax = _mm512_max_ps(bmax, sc[j]);
                vrows[j] = g->v + (j0 + j) * g->stride;
            }
            __m512 nmx = _mm512_max_ps(mx, bmax);
            __m512 a = exp512(_mm512_sub_ps(mx, nmx));
            __m512 psum = _mm512_setzero_ps();
            for (j = 0; j < nk; j++) {
                __m512 p = _mm512_maskz_mov_ps(vis[j], exp512(_mm512_sub_ps(sc[j], nmx)));
                psum = _mm512_add_ps(psum, p);
                _mm512_store_ps(P + j * 16, p);
            }
            l = _mm512_fmadd_ps(l, a, psum);
            mx = nmx;
            _mm512_store_ps(alpha, a);
            switch (NC) {
            case 2: update_out(O, nq, alpha, P, vrows, nk, 2, tail); break;
            case 4: update_out(O, nq, alpha, P, vrows, nk, 4, tail); break;
            case 6: update_out(O, nq, alpha, P, vrows, nk, 6, tail); break;
            case 8: update_out(O, nq, alpha, P, vrows, nk, 8, tail); break;
            default: update_out(O, nq, alpha, P, vrows, nk, NC, tail); break;
            }
        }
    }
    _Alignas(64) float lsum[16];
    _mm512_store_ps(lsum, l);
    for (int m = 0; m < nq; m++) {
        __m512 inv = _mm512_set1_ps(lsum[m] > 0.0f ? 1.0f / lsum[m] : 0.0f);
        for (int c = 0; c < NC; c++)
            _mm512_mask_storeu_ps(t->out[m] + 16 * c, c == NC - 1 ? tail : (__mmask16)0xFFFF,
                                  _mm512_mul_ps(_mm512_load_ps(O + (m * NC + c) * 16), inv));
    }
}
