/* core/gemm_avx2.c — AVX2 + FMA f32 GEMM micro-kernel (6 tokens x 16 outputs) and its packing routines
 * (see gemm_int.h). Runs only when loom_gemm saw AVX2/FMA/F16C.
 */
#include <immintrin.h>

#include "core/gemm_int.h"
#include "core/matmul_int.h"

#define INLINE static inline __attribute__((always_inline))

#define MR 6
#define NR 16

/* 8x8 transpose of 32-bit elements (row i -> column i). */
INLINE void tr8(__m256 r[8]) {
    __m256 t[8], s[8];
    for (int i = 0; i < 4; i++) {
        t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 2; i++) {
        __m256d a = _mm256_castps_pd(t[4 * i]), b = _mm256_castps_pd(t[4 * i + 1]);
        __m256d c = _mm256_castps_pd(t[4 * i + 2]), d = _mm256_castps_pd(t[4 * i + 3]);
        s[4 * i] = _mm256_castpd_ps(_mm256_unpacklo_pd(a, c));
        s[4 * i + 1] = _mm256_castpd_ps(_mm256_unpackhi_pd(a, c));
        s[4 * i + 2] = _mm256_castpd_ps(_mm256_unpacklo_pd(b, d));
        s[4 * i + 3] = _mm256_castpd_ps(_mm256_unpackhi_pd(b, d));
    }
    /* s[4i + e], 128-bit lane l = rows 4i..4i+3 at column 4l + e */
    for (int e = 0; e < 4; e++) {
        r[e] = _mm256_permute2f128_ps(s[e], s[4 + e], 0x20);
        r[4 + e] = _mm256_permute2f128_ps(s[e], s[4 + e], 0x31);
    }
}

INLINE __m256i mask8(int n) { /* lanes < n all ones */
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

INLINE __m256 wload(loom_dtype wt, const uint8_t *row, int64_t k, int kn) {
    if (kn == 8) {
        if (wt == LOOM_F32) return _mm256_loadu_ps((const float *)row + k);
        __m128i h = _mm_loadu_si128((const __m128i *)((const uint16_t *)row + k));
        if (wt == LOOM_F16) return _mm256_cvtph_ps(h);
        return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    }
    if (wt == LOOM_F32) return _mm256_maskload_ps((const float *)row + k, mask8(kn));
    uint16_t tmp[8] = {0};
    memcpy(tmp, (const uint16_t *)row + k, (size_t)kn * 2);
    __m128i h = _mm_loadu_si128((const __m128i *)tmp);
    if (wt == LOOM_F16) return _mm256_cvtph_ps(h);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

INLINE void pack_w_t(loom_dtype wt, const uint8_t *W, size_t row_bytes, int64_t o0, int nv, int64_t k0, int kc,
                     float *bp) {
    for (int jg = 0; jg < NR; jg += 8) {
        for (int kk = 0; kk < kc; kk += 8) {
            const int kn = kc - kk < 8 ? kc - kk : 8;
            __m256 r[8];
            for (int j = 0; j < 8; j++)
                r[j] = jg + j < nv ? wload(wt, W + (size_t)(o0 + jg + j) * row_bytes, k0 + kk, kn) : _mm256_setzero_ps();
            tr8(r);
            for (int k = 0; k < kn; k++) _mm256_store_ps(bp + (size_t)(kk + k) * NR + jg, r[k]);
        }
    }
}

static void pack_w(loom_dtype wt, const void *W, size_t row_bytes, int64_t o0, int nv, int64_t k0, int kc, float *bp) {
    switch (wt) {
    case LOOM_F32: pack_w_t(LOOM_F32, W, row_bytes, o0, nv, k0, kc, bp); break;
    case LOOM_F16: pack_w_t(LOOM_F16, W, row_bytes, o0, nv, k0, kc, bp); break;
    default: pack_w_t(LOOM_BF16, W, row_bytes, o0, nv, k0, kc, bp); break;
    }
}

static void pack_x(const float *X, int64_t ldx, int kc, int64_t t0, int nv, float *ap) {
    for (int i = 0; i < MR; i++) {
        const float *x = X + (t0 + i) * ldx;
        if (i < nv)
            for (int k = 0; k < kc; k++) ap[k * MR + i] = x[k];
        else
            for (int k = 0; k < kc; k++) ap[k * MR + i] = 0.0f;
    }
}

static void kernel(int kc, const float *ap, const float *bp, float *Y, size_t ldy, int mv, int nv, int acc) {
    __m256 c0[MR], c1[MR];
#pragma GCC unroll 6
    for (int i = 0; i < MR; i++) c0[i] = c1[i] = _mm256_setzero_ps();
    for (int k = 0; k < kc; k++) {
        const __m256 b0 = _mm256_load_ps(bp + (size_t)k * NR), b1 = _mm256_load_ps(bp + (size_t)k * NR + 8);
#pragma GCC unroll 6
        for (int i = 0; i < MR; i++) {
            const __m256 a = _mm256_broadcast_ss(ap + k * MR + i);
            c0[i] = _mm256_fmadd_ps(a, b0, c0[i]);
            c1[i] = _mm256_fmadd_ps(a, b1, c1[i]);
        }
    }
    /* The accumulators leave through a tile indexed by constants only: indexed by the run-time mv, GCC kept a
     * stack copy of all twelve and stored them on every k step, which halved the FMA rate (store-bound). */
    _Alignas(32) float tile[MR][NR];
#pragma GCC unroll 6
    for (int i = 0; i < MR; i++) {
        _mm256_store_ps(tile[i], c0[i]);
        _mm256_store_ps(tile[i] + 8, c1[i]);
    }
    const __m256i m0 = mask8(nv), m1 = mask8(nv - 8);
    for (int i = 0; i < mv; i++) {
        float *y = Y + (size_t)i * ldy;
        __m256 lo = _mm256_load_ps(tile[i]), hi = _mm256_load_ps(tile[i] + 8);
        if (acc) {
            lo = _mm256_add_ps(lo, _mm256_maskload_ps(y, m0));
            hi = _mm256_add_ps(hi, _mm256_maskload_ps(y + 8, m1));
        }
        _mm256_maskstore_ps(y, m0, lo);
        _mm256_maskstore_ps(y + 8, m1, hi);
    }
}

void loom_gemm_f32_fill_avx2(loom_gemm_f32_kernels *k) {
    k->mr = MR;
    k->nr = NR;
    k->kc = 256; /* the panel block stays in L1 (Zen 3: 512 KiB L2; not re-measured since stop 13) */
    k->pack_w = pack_w;
    k->pack_x = pack_x;
    k->kernel = kernel;
}
