/* core/dot_avx2.c — AVX2 + FMA + F16C kernels (compiled with -mavx2 -mfma -mf16c; run only when
 * loom_isa_best() >= LOOM_ISA_AVX2).
 *
 * Integer dot products use vpmaddubsw (u8 x s8 -> pairs summed in s16) then vpmaddwd (s16 pairs -> s32).
 * The pair sums never saturate: |u| <= 128 (|w| of a Q8_0 weight), |s| <= 127 (activations never hold -128),
 * 2 * 128 * 127 = 32512 < 32767. For the K-quants the second vpmaddwd multiplies by the sub-block scale
 * instead of by 1, so the scale costs nothing extra.
 * Every kernel is written once for nt tokens (always inlined with nt = 1 or 4): the four-token version does
 * exactly the single-token operations per token, so matmul and vec_dot agree bit for bit.
 */
#include <immintrin.h>

#include "core/hsum_avx2.h"
#include "core/matmul_int.h"

#define INLINE static inline __attribute__((always_inline))

/* Software prefetch of weight rows (prefetch_lines in core/dot_rows.h): see dot_avx512.c (the hardware
 * streamer stops at 4 KiB pages; without it the quantized kernels reach about half of the DRAM bandwidth). */
#include "core/dot_rows.h"

INLINE const void *xrow(const void *xq, size_t stride, int t) { return (const char *)xq + (size_t)t * stride; }

/* u8 x s8 -> 8 x s32 (sums of 4 adjacent products) */
INLINE __m256i mul_sum_us8(__m256i u, __m256i s) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}

/* ==== float weights ==== */

enum { FW_F32, FW_F16, FW_BF16 };

INLINE __m256 fload(int kind, const void *w, int64_t i) {
    if (kind == FW_F32) return _mm256_loadu_ps((const float *)w + i);
    __m128i h = _mm_loadu_si128((const __m128i *)((const uint16_t *)w + i));
    if (kind == FW_F16) return _mm256_cvtph_ps(h);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

INLINE float fscalar(int kind, const void *w, int64_t i) {
    if (kind == FW_F32) return ((const float *)w)[i];
    uint16_t h = ((const uint16_t *)w)[i];
    return kind == FW_F16 ? _cvtsh_ss(h) : mm_bf16_to_f32(h);
}

INLINE void fdot(int kind, int nt, int64_t n, const void *w, const void *xq, size_t stride, float *out) {
    __m256 acc[4][4];
    const float *x[4];
    for (int t = 0; t < nt; t++) {
        x[t] = xrow(xq, stride, t);
        for (int j = 0; j < 4; j++) acc[t][j] = _mm256_setzero_ps();
    }
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        prefetch_lines((const char *)w + i * (kind == FW_F32 ? 4 : 2), kind == FW_F32 ? 128 : 64);
        __m256 wv[4];
        for (int j = 0; j < 4; j++) wv[j] = fload(kind, w, i + 8 * j);
        for (int t = 0; t < nt; t++)
            for (int j = 0; j < 4; j++) acc[t][j] = _mm256_fmadd_ps(wv[j], _mm256_loadu_ps(x[t] + i + 8 * j), acc[t][j]);
    }
    for (; i + 8 <= n; i += 8) {
        __m256 wv = fload(kind, w, i);
        for (int t = 0; t < nt; t++) acc[t][0] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x[t] + i), acc[t][0]);
    }
    for (int t = 0; t < nt; t++) {
        float s = hsum256(_mm256_add_ps(_mm256_add_ps(acc[t][0], acc[t][1]), _mm256_add_ps(acc[t][2], acc[t][3])));
        for (int64_t k = i; k < n; k++) s += fscalar(kind, w, k) * x[t][k];
        out[t] = s;
    }
}

static float dot_f32(int64_t n, const void *w, const void *x) { float r; fdot(FW_F32, 1, n, w, x, 0, &r); return r; }
static float dot_f16(int64_t n, const void *w, const void *x) { float r; fdot(FW_F16, 1, n, w, x, 0, &r); return r; }
static float dot_bf16(int64_t n, const void *w, const void *x) { float r; fdot(FW_BF16, 1, n, w, x, 0, &r); return r; }
static void dot4_f32(int64_t n, const void *w, const void *x, size_t s, float *o) { fdot(FW_F32, 4, n, w, x, s, o); }
static void dot4_f16(int64_t n, const void *w, const void *x, size_t s, float *o) { fdot(FW_F16, 4, n, w, x, s, o); }
static void dot4_bf16(int64_t n, const void *w, const void *x, size_t s, float *o) { fdot(FW_BF16, 4, n, w, x, s, o); }

/* ==== 32-element block types x Q8_0 ==== */

enum { B_Q8_0, B_Q4_0, B_Q5_0, B_Q4_1, B_Q5_1 };

INLINE int blk_bytes(int kind) {
    return kind == B_Q8_0 ? 34 : kind == B_Q4_0 ? 18 : kind == B_Q5_0 ? 22 : kind == B_Q4_1 ? 20 : 24;
}

INLINE __m256i nibbles32(const uint8_t *qs) {
    __m128i q = _mm_loadu_si128((const __m128i *)qs);
    return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), _mm256_set1_epi8(0x0F));
}

/* 0x10 in byte i where bit i of the u32 qh is set (ggml's bytes_from_bits_32, masked) */
INLINE __m256i fifth_bits(const uint8_t *qh) {
    uint32_t h;
    memcpy(&h, qh, 4);
    const __m256i shuf = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0);
    __m256i bytes = _mm256_shuffle_epi8(_mm256_set1_epi32((int)h), shuf);
    bytes = _mm256_or_si256(bytes, _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe));
    return _mm256_and_si256(_mm256_cmpeq_epi8(bytes, _mm256_set1_epi64x(-1)), _mm256_set1_epi8(0x10));
}

INLINE __m256i blk_load(int kind, const void *w, int64_t b, float *d, float *m) {
    switch (kind) {
    case B_Q8_0: {
        const block_q8_0 *x = (const block_q8_0 *)w + b;
        *d = _cvtsh_ss(x->d);
        return _mm256_loadu_si256((const __m256i *)x->qs);
    }
    case B_Q4_0: {
        const block_q4_0 *x = (const block_q4_0 *)w + b;
        *d = _cvtsh_ss(x->d);
        return _mm256_sub_epi8(nibbles32(x->qs), _mm256_set1_epi8(8));
    }
    case B_Q5_0: {
        const block_q5_0 *x = (const block_q5_0 *)w + b;
        *d = _cvtsh_ss(x->d);
        return _mm256_sub_epi8(_mm256_or_si256(nibbles32(x->qs), fifth_bits(x->qh)), _mm256_set1_epi8(16));
    }
    case B_Q4_1: {
        const block_q4_1 *x = (const block_q4_1 *)w + b;
        *d = _cvtsh_ss(x->d);
        *m = _cvtsh_ss(x->m);
        return nibbles32(x->qs);
    }
    default: {
        const block_q5_1 *x = (const block_q5_1 *)w + b;
        *d = _cvtsh_ss(x->d);
        *m = _cvtsh_ss(x->m);
        return _mm256_or_si256(nibbles32(x->qs), fifth_bits(x->qh));
    }
    }
}

INLINE void blk32_dot(int kind, int nt, int64_t n, const void *w, const void *xq, size_t stride, float *out) {
    const int     has_min = kind == B_Q4_1 || kind == B_Q5_1;
    const int64_t nb = n / QK8_0;
    const __m256i ones = _mm256_set1_epi8(1);
    __m256        acc[4][2];
    const block_q8_0 *y[4];
    for (int t = 0; t < nt; t++) {
        y[t] = xrow(xq, stride, t);
        acc[t][0] = acc[t][1] = _mm256_setzero_ps();
    }
    for (int64_t b = 0; b < nb; b += 2) {
        prefetch_lines((const char *)w + b * blk_bytes(kind), 2 * blk_bytes(kind));
#pragma GCC unroll 2
        for (int u = 0; u < 2; u++) {
            if (u == 1 && b + 1 >= nb) break;
            float d = 0, m = 0;
            __m256i q = blk_load(kind, w, b + u, &d, &m);
            __m256i qa = has_min ? q : _mm256_sign_epi8(q, q);
            for (int t = 0; t < nt; t++) {
                const block_q8_0 *yb = y[t] + b + u;
                __m256i a = _mm256_loadu_si256((const __m256i *)yb->qs);
                float da = _cvtsh_ss(yb->d);
                __m256i p = mul_sum_us8(qa, has_min ? a : _mm256_sign_epi8(a, q));
                acc[t][u] = _mm256_fmadd_ps(_mm256_set1_ps(d * da), _mm256_cvtepi32_ps(p), acc[t][u]);
                if (has_min) {
                    __m256i s = mul_sum_us8(ones, a);
                    acc[t][u] = _mm256_fmadd_ps(_mm256_set1_ps(m * da), _mm256_cvtepi32_ps(s), acc[t][u]);
                }
            }
        }
    }
    for (int t = 0; t < nt; t++) out[t] = hsum256(_mm256_add_ps(acc[t][0], acc[t][1]));
}

#define BLK32_FNS(name, kind)                                                                                  \
    static float dot_##name(int64_t n, const void *w, const void *x) {                                         \
        float r;                                                                                               \
        blk32_dot(kind, 1, n, w, x, 0, &r);                                                                    \
        return r;                                                                                              \
    }                                                                                                          \
    static void dot4_##name(int64_t n, const void *w, const void *x, size_t s, float *o) {                     \
        blk32_dot(kind, 4, n, w, x, s, o);                                                                     \
    }
BLK32_FNS(q8_0, B_Q8_0)
BLK32_FNS(q4_0, B_Q4_0)
BLK32_FNS(q5_0, B_Q5_0)
BLK32_FNS(q4_1, B_Q4_1)
BLK32_FNS(q5_1, B_Q5_1)

/* ==== Q4_K / Q5_K x Q8_K ==== */

INLINE void q45k_dot(int five, int nt, int64_t n, const void *w, const void *xq, size_t stride, float *out) {
    const int64_t nb = n / QK_K;
    const size_t  bsz = five ? sizeof(block_q5_k) : sizeof(block_q4_k);
    const __m256i low4 = _mm256_set1_epi8(0x0F);
    __m256        acc[4];
    const block_q8_k *y[4];
    for (int t = 0; t < nt; t++) {
        y[t] = xrow(xq, stride, t);
        acc[t] = _mm256_setzero_ps();
    }
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *blk = (const uint8_t *)w + (size_t)b * bsz;
        /* three lines for a 144- or 176-byte block: two left every ninth line of a Q4_K row to a demand miss */
        prefetch_lines(blk, 192);
        const block_q4_k *x4 = (const block_q4_k *)blk;
        const uint8_t *qs = five ? ((const block_q5_k *)blk)->qs : x4->qs;
        const float dw = _cvtsh_ss(x4->d), dmw = _cvtsh_ss(x4->dmin);
        uint32_t aux[4];
        mm_unpack_k4_scales(x4->scales, aux);
        /* the scales reach the vector unit as one 16-byte load and each sub-block's splat is one vpshufb:
         * through general registers (a byte extract + vmovd + vpbroadcastw per scale) the kernel ran 1.3x
         * slower (Q4_K 2048-wide rows, warm, one Zen 3 core: 10.0 vs 13.4 GB/s). Doing the unpack itself in
         * vector registers too (no reload of the four dword stores) measured the same. */
        const __m256i sm16 = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)aux)); /* sc0..7 | mn0..7 */
        const __m128i mn8 = _mm256_extracti128_si256(sm16, 1);
        const __m256i mn16 = _mm256_set_m128i(_mm_unpackhi_epi16(mn8, mn8), _mm_unpacklo_epi16(mn8, mn8));
        const __m256i sc2 = _mm256_permute2x128_si256(sm16, sm16, 0x00); /* sc0..7 in both lanes */
        __m256i qh = _mm256_setzero_si256();
        if (five) qh = _mm256_loadu_si256((const __m256i *)((const block_q5_k *)blk)->qh);
        __m256i iacc[4];
        for (int t = 0; t < nt; t++) iacc[t] = _mm256_setzero_si256();
#pragma GCC unroll 4
        for (int c = 0; c < 4; c++) {
            __m256i qb = _mm256_loadu_si256((const __m256i *)(qs + 32 * c));
            __m256i lo = _mm256_and_si256(qb, low4), hi = _mm256_and_si256(_mm256_srli_epi16(qb, 4), low4);
            if (five) {
                const __m256i b0 = _mm256_set1_epi8((char)(1 << (2 * c))), b1 = _mm256_set1_epi8((char)(1 << (2 * c + 1)));
                const __m256i x10 = _mm256_set1_epi8(0x10);
                lo = _mm256_or_si256(lo, _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(qh, b0), b0), x10));
                hi = _mm256_or_si256(hi, _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(qh, b1), b1), x10));
            }
            const __m256i s0 = _mm256_shuffle_epi8(sc2, _mm256_set1_epi16((short)(0x0101 * (4 * c) + 0x0100)));
            const __m256i s1 = _mm256_shuffle_epi8(sc2, _mm256_set1_epi16((short)(0x0101 * (4 * c + 2) + 0x0100)));
            for (int t = 0; t < nt; t++) {
                const int8_t *a = y[t][b].qs + 64 * c;
                __m256i p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)a)), s0);
                __m256i p1 = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i *)(a + 32))), s1);
                iacc[t] = _mm256_add_epi32(iacc[t], _mm256_add_epi32(p0, p1));
            }
        }
        for (int t = 0; t < nt; t++) {
            const float da = y[t][b].d;
            acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(dw * da), _mm256_cvtepi32_ps(iacc[t]), acc[t]);
            __m256i mins = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)y[t][b].bsums), mn16);
            acc[t] = _mm256_fnmadd_ps(_mm256_set1_ps(dmw * da), _mm256_cvtepi32_ps(mins), acc[t]);
        }
    }
    for (int t = 0; t < nt; t++) out[t] = hsum256(acc[t]);
}

static float dot_q4_k(int64_t n, const void *w, const void *x) { float r; q45k_dot(0, 1, n, w, x, 0, &r); return r; }
static float dot_q5_k(int64_t n, const void *w, const void *x) { float r; q45k_dot(1, 1, n, w, x, 0, &r); return r; }
static void dot4_q4_k(int64_t n, const void *w, const void *x, size_t s, float *o) { q45k_dot(0, 4, n, w, x, s, o); }
static void dot4_q5_k(int64_t n, const void *w, const void *x, size_t s, float *o) { q45k_dot(1, 4, n, w, x, s, o); }

/* ==== Q6_K x Q8_K ==== */

INLINE void q6k_dot(int nt, int64_t n, const void *w, const void *xq, size_t stride, float *out) {
    const int64_t nb = n / QK_K;
    const __m256i m30 = _mm256_set1_epi8(0x30), low4 = _mm256_set1_epi8(0x0F);
    __m256        acc[4];
    const block_q8_k *y[4];
    for (int t = 0; t < nt; t++) {
        y[t] = xrow(xq, stride, t);
        acc[t] = _mm256_setzero_ps();
    }
    for (int64_t b = 0; b < nb; b++) {
        const block_q6_k *x = (const block_q6_k *)w + b;
        prefetch_lines(x, 256);
        const float dw = _cvtsh_ss(x->d);
        const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)x->scales));
        /* scales 0..7, then 8..15, in both lanes (the immediates stay literal: -O0/-O1 do not fold h ? : ) */
        const __m256i sc_lo = _mm256_permute2x128_si256(sc16, sc16, 0x00), sc_hi = _mm256_permute2x128_si256(sc16, sc16, 0x11);
        __m256i iacc[4];
        for (int t = 0; t < nt; t++) /* the -32 offset: sum_g sc_g * 32 * bsums_g, subtracted up front */
            iacc[t] = _mm256_sub_epi32(_mm256_setzero_si256(),
                                       _mm256_slli_epi32(_mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)y[t][b].bsums), sc16), 5));
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++) {
            __m256i ql0 = _mm256_loadu_si256((const __m256i *)(x->ql + 64 * h));
            __m256i ql1 = _mm256_loadu_si256((const __m256i *)(x->ql + 64 * h + 32));
            __m256i qh = _mm256_loadu_si256((const __m256i *)(x->qh + 32 * h));
            __m256i q[4];
            q[0] = _mm256_or_si256(_mm256_and_si256(ql0, low4), _mm256_and_si256(_mm256_slli_epi16(qh, 4), m30));
            q[1] = _mm256_or_si256(_mm256_and_si256(ql1, low4), _mm256_and_si256(_mm256_slli_epi16(qh, 2), m30));
            q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), low4), _mm256_and_si256(qh, m30));
            q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), low4),
                                   _mm256_and_si256(_mm256_srli_epi16(qh, 2), m30));
            /* s[k]: group g = 8h + 2k's scale in the low lane (elements 0..15), g + 1's in the high lane, by
             * vpshufb from the scales of this half in both lanes: through general registers (16 byte loads and
             * broadcasts per block) the kernel ran at 7-12 GB/s warm on one Zen 3 core, this way at 17 */
            const __m256i sch = h ? sc_hi : sc_lo;
            __m256i s[4];
            for (int k = 0; k < 4; k++)
                s[k] = _mm256_shuffle_epi8(sch, _mm256_set_m128i(_mm_set1_epi16((short)(0x0101 * (4 * k + 2) + 0x0100)),
                                                                 _mm_set1_epi16((short)(0x0101 * (4 * k) + 0x0100))));
            for (int t = 0; t < nt; t++) {
                const int8_t *a = y[t][b].qs + 128 * h;
                for (int k = 0; k < 4; k++) {
                    __m256i p = _mm256_maddubs_epi16(q[k], _mm256_loadu_si256((const __m256i *)(a + 32 * k)));
                    iacc[t] = _mm256_add_epi32(iacc[t], _mm256_madd_epi16(p, s[k]));
                }
            }
        }
        for (int t = 0; t < nt; t++)
            acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(dw * y[t][b].d), _mm256_cvtepi32_ps(iacc[t]), acc[t]);
    }
    for (int t = 0; t < nt; t++) out[t] = hsum256(acc[t]);
}

static float dot_q6_k(int64_t n, const void *w, const void *x) { float r; q6k_dot(1, n, w, x, 0, &r); return r; }
static void dot4_q6_k(int64_t n, const void *w, const void *x, size_t s, float *o) { q6k_dot(4, n, w, x, s, o); }

/* ==== activation quantizers (bit-identical to dot_ref.c's) ==== */

/* 8 values -> 8 clamped int32 (round-half-even from the default MXCSR) */
INLINE __m256i quant8(const float *x, float id) {
    __m256i v = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x), _mm256_set1_ps(id)));
    return _mm256_max_epi32(_mm256_min_epi32(v, _mm256_set1_epi32(127)), _mm256_set1_epi32(-127));
}

/* 32 values -> 32 int8 in order; returns the four 8-lane int32 pieces in v[] for block sums */
INLINE void quant32(const float *x, float id, int8_t *dst, __m256i v[4]) {
    for (int k = 0; k < 4; k++) v[k] = quant8(x + 8 * k, id);
    __m256i p01 = _mm256_packs_epi32(v[0], v[1]), p23 = _mm256_packs_epi32(v[2], v[3]);
    __m256i p = _mm256_packs_epi16(p01, p23);
    /* the packs work per 128-bit lane: dwords come out in order 0,4,1,5,2,6,3,7 */
    p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256((__m256i *)dst, p);
}

INLINE float amax_n(const float *x, int n) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 m = _mm256_setzero_ps();
    for (int i = 0; i < n; i += 8) m = _mm256_max_ps(m, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + i)));
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

INLINE int hsum_i32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
    return _mm_cvtsi128_si32(s);
}

static void quant_q8_0(const float *x, void *xq, int64_t n) {
    block_q8_0 *y = xq;
    for (int64_t b = 0; b < n / QK8_0; b++) {
        const float *v = x + b * QK8_0;
        const float amax = amax_n(v, QK8_0);
        const float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        __m256i tmp[4];
        y[b].d = mm_f32_to_f16(d);
        quant32(v, id, y[b].qs, tmp);
    }
}

static void quant_q8_k(const float *x, void *xq, int64_t n) {
    block_q8_k *y = xq;
    for (int64_t b = 0; b < n / QK_K; b++) {
        const float *v = x + b * QK_K;
        const float amax = amax_n(v, QK_K);
        const float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        y[b].d = d;
        for (int j = 0; j < QK_K / 32; j++) {
            __m256i p[4];
            quant32(v + 32 * j, id, y[b].qs + 32 * j, p);
            y[b].bsums[2 * j] = (int16_t)hsum_i32(_mm256_add_epi32(p[0], p[1]));
            y[b].bsums[2 * j + 1] = (int16_t)hsum_i32(_mm256_add_epi32(p[2], p[3]));
        }
    }
}

/* ==== matvec row ranges (core/dot_rows.h) ==== */

ROWS_FN(f32, fdot(FW_F32, 1, n, wr, x, 0, y + r))
ROWS_FN(f16, fdot(FW_F16, 1, n, wr, x, 0, y + r))
ROWS_FN(bf16, fdot(FW_BF16, 1, n, wr, x, 0, y + r))
ROWS_FN(q8_0, blk32_dot(B_Q8_0, 1, n, wr, x, 0, y + r))
ROWS_FN(q4_0, blk32_dot(B_Q4_0, 1, n, wr, x, 0, y + r))
ROWS_FN(q5_0, blk32_dot(B_Q5_0, 1, n, wr, x, 0, y + r))
ROWS_FN(q4_1, blk32_dot(B_Q4_1, 1, n, wr, x, 0, y + r))
ROWS_FN(q5_1, blk32_dot(B_Q5_1, 1, n, wr, x, 0, y + r))
ROWS_FN(q4_k, q45k_dot(0, 1, n, wr, x, 0, y + r))
ROWS_FN(q5_k, q45k_dot(1, 1, n, wr, x, 0, y + r))
ROWS_FN(q6_k, q6k_dot(1, n, wr, x, 0, y + r))

void loom_kernels_fill_avx2(loom_kernels *k) {
    memset(k, 0, sizeof *k);
    far_prefetch = loom_far_prefetch();
#define SET(T, name)                                                                                           \
    k->dot[T] = dot_##name;                                                                                    \
    k->dot4[T] = dot4_##name;                                                                                  \
    k->rows[T] = rows_##name
    SET(LOOM_F32, f32);
    SET(LOOM_F16, f16);
    SET(LOOM_BF16, bf16);
    SET(LOOM_Q8_0, q8_0);
    SET(LOOM_Q4_0, q4_0);
    SET(LOOM_Q5_0, q5_0);
    SET(LOOM_Q4_1, q4_1);
    SET(LOOM_Q5_1, q5_1);
    SET(LOOM_Q4_K, q4_k);
    SET(LOOM_Q5_K, q5_k);
    SET(LOOM_Q6_K, q6_k);
#undef SET
    k->quant_q8_0 = quant_q8_0;
    k->quant_q8_k = quant_q8_k;
}
