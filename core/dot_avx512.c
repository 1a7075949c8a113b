/* core/dot_avx512.c — AVX-512 + VNNI kernels (compiled with -mavx512f/bw/vl/dq/vnni; run only when
 * loom_isa_best() says so).
 *
 * Layout of the work:
 *   - float weights: 16 lanes x 4 accumulators, a masked tail, f32 FMA.
 *   - 32-element block types: one block per 256-bit register, vpdpbusd (u8 x s8 -> s32) on 256-bit lanes
 *     (AVX512VL), two float accumulators alternating by block parity. Signed weights (Q8_0, Q4_0, Q5_0) use
 *     |w| x sign(w)·a; offset weights (Q4_1, Q5_1) dot the unsigned q and add m * sum(a).
 *   - K-quants: 64 elements per 512-bit register; integer accumulation over the super-block (sub-block
 *     scales applied with vpdpwssd), one FMA per super-block (two for Q4_K/Q5_K, whose mins have their own).
 * Every kernel is written once for nt tokens (always inlined with nt = 1 or 4), so the four-token version
 * used by matmul does exactly the single-token operations per token and gives bit-identical results.
 */
#include <immintrin.h>

#include "core/hsum_avx2.h"
#include "core/matmul_int.h"

#define INLINE static inline __attribute__((always_inline))

/* GFNI (Ice Lake and later; not Cascade Lake) is checked at run time: the kernels that use it are separate
 * instantiations (gf = 1), picked in loom_kernels_fill_avx512. The instruction is written as inline asm so
 * this file needs no -mgfni (which would let the compiler use GFNI in the other kernels too). */
INLINE __m512i GF_AFFINE(__m512i x, __m512i m) {
    __m512i r;
    __asm__("vgf2p8affineqb $0, %2, %1, %0" : "=v"(r) : "v"(x), "v"(m));
    return r;
}

/* Software prefetch of weight rows (prefetch_lines in core/dot_rows.h). The hardware streamer stops at 4 KiB
 * page boundaries and restarts slowly; weights are mmapped with 4 KiB pages and read exactly once per matvec,
 * so without it the K-quant and Q8_0 kernels reach only about half of the DRAM bandwidth. Prefetching past
 * the end of a row is harmless (the next row is next in memory; prefetches never fault). */
#include "core/dot_rows.h"

INLINE float hsum512(__m512 v) {
    return hsum256(_mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1)));
}

INLINE const void *xrow(const void *xq, size_t stride, int t) { return (const char *)xq + (size_t)t * stride; }

/* ==== float weights ==== */

enum { FW_F32, FW_F16, FW_BF16 };

INLINE __m512 fload(int kind, const void *w, int64_t i) {
    if (kind == FW_F32) return _mm512_loadu_ps((const float *)w + i);
    __m256i h = _mm256_loadu_si256((const __m256i *)((const uint16_t *)w + i));
    if (kind == FW_F16) return _mm512_cvtph_ps(h);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

INLINE __m512 fload_mask(int kind, const void *w, int64_t i, __mmask16 m) {
    if (kind == FW_F32) return _mm512_maskz_loadu_ps(m, (const float *)w + i);
    __m256i h = _mm256_maskz_loadu_epi16(m, (const uint16_t *)w + i);
    if (kind == FW_F16) return _mm512_cvtph_ps(h);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

INLINE void fdot(int kind, int nt, int64_t n, const void *w, const void *xq, size_t stride, float *out) {
    __m512 acc[4][4];
    const float *x[4];
    for (int t = 0; t < nt; t++) {
        x[t] = xrow(xq, stride, t);
        for (int j = 0; j < 4; j++) acc[t][j] = _mm512_setzero_ps();
    }
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        prefetch_lines((const char *)w + i * (kind == FW_F32 ? 4 : 2), kind == FW_F32 ? 256 : 128);
        __m512 wv[4];
        for (int j = 0; j < 4; j++) wv[j] = fload(kind, w, i + 16 * j);
        for (int t = 0; t < nt; t++)
            for (int j = 0; j < 4; j++) acc[t][j] = _mm512_fmadd_ps(wv[j], _mm512_loadu_ps(x[t] + i + 16 * j), acc[t][j]);
    }
    for (; i + 16 <= n; i += 16) {
        __m512 wv = fload(kind, w, i);
        for (int t = 0; t < nt; t++) acc[t][0] = _mm512_fmadd_ps(wv, _mm512_loadu_ps(x[t] + i), acc[t][0]);
    }
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        __m512 wv = fload_mask(kind, w, i, m);
        for (int t = 0; t < nt; t++) acc[t][0] = _mm512_fmadd_ps(wv, _mm512_maskz_loadu_ps(m, x[t] + i), acc[t][0]);
    }
    for (int t = 0; t < nt; t++)
        out[t] = hsum512(_mm512_add_ps(_mm512_add_ps(acc[t][0], acc[t][1]), _mm512_add_ps(acc[t][2], acc[t][3])));
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

INLINE __m256i nibbles32(const uint8_t *qs) { /* [low nibbles of qs[0..15] | high nibbles] = elements 0..31 */
    __m128i q = _mm_loadu_si128((const __m128i *)qs);
    return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), _mm256_set1_epi8(0x0F));
}

INLINE __m256i fifth_bits(const uint8_t *qh) { /* 0x10 in byte i where bit i of the u32 qh is set */
    uint32_t h;
    memcpy(&h, qh, 4);
    return _mm256_maskz_mov_epi8((__mmask32)h, _mm256_set1_epi8(0x10));
}

/* Weight block b of the row: q (signed for Q8_0/Q4_0/Q5_0, unsigned 0..31 for Q4_1/Q5_1), d, and m. */
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
    const int      has_min = kind == B_Q4_1 || kind == B_Q5_1;
    const int64_t  nb = n / QK8_0;
    const __m256i  ones = _mm256_set1_epi8(1), zero = _mm256_setzero_si256();
    __m256         acc[4][2];
    const block_q8_0 *y[4];
    for (int t = 0; t < nt; t++) {
        y[t] = xrow(xq, stride, t);
        acc[t][0] = acc[t][1] = _mm256_setzero_ps();
    }
    int64_t b = 0;
    for (; b < nb; b += 2) {
        prefetch_lines((const char *)w + b * blk_bytes(kind), 2 * blk_bytes(kind));
#pragma GCC unroll 2
        for (int u = 0; u < 2; u++) {
            if (u == 1 && b + 1 >= nb) break;
            float d = 0, m = 0;
            __m256i q = blk_load(kind, w, b + u, &d, &m);
            __m256i qa = has_min ? q : _mm256_abs_epi8(q);
            for (int t = 0; t < nt; t++) {
                const block_q8_0 *yb = y[t] + b + u;
                __m256i a = _mm256_loadu_si256((const __m256i *)yb->qs);
                float da = _cvtsh_ss(yb->d);
                __m256i p = _mm256_dpbusd_epi32(zero, qa, has_min ? a : _mm256_sign_epi8(a, q));
                acc[t][u] = _mm256_fmadd_ps(_mm256_set1_ps(d * da), _mm256_cvtepi32_ps(p), acc[t][u]);
                if (has_min) {
                    __m256i s = _mm256_dpbusd_epi32(zero, ones, a);
                    acc[t][u] = _mm256_fmadd_ps(_mm256_set1_ps(m * da), _mm256_cvtepi32_ps(s), acc[t][u]);
                }
            }
        }
    }
    for (int t = 0; t < nt; t++) out[t] = hsum256(_mm256_add_ps(acc[t][0], acc[t][1]));
}

/* The odd last block of a Q8_0 row, into lanes 0..7 of acc (the even-block lanes), 256 bits wide. */
INLINE __m512 q80_odd_block(__m512 acc, const block_q8_0 *xb, const block_q8_0 *yb) {
    const __m256i q = _mm256_loadu_si256((const __m256i *)xb->qs), qa = _mm256_abs_epi8(q);
    const __m256i a = _mm256_sign_epi8(_mm256_loadu_si256((const __m256i *)yb->qs), q);
    const __m256i p = _mm256_dpbusd_epi32(_mm256_setzero_si256(), qa, a);
    const __m256 lo = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(xb->d) * _cvtsh_ss(yb->d)), _mm256_cvtepi32_ps(p),
                                      _mm512_castps512_ps256(acc));
    return _mm512_insertf32x8(acc, lo, 0);
}

/* Q8_0 two blocks per 512-bit register. Lanes 0..7 of acc hold what blk32_dot's even-block accumulator
 * holds and lanes 8..15 the odd-block one, with the same operations per lane, so the result is bit-identical
 * to blk32_dot(B_Q8_0) (the 256-bit form, kept for the other 32-element types); ~5% faster in L2. */
INLINE void q80_dot(int nt, int64_t n, const void *w, const void *xq, size_t stride, float *out) {
    const int64_t nb = n / QK8_0;
    const block_q8_0 *x = w;
    const __m512i zero = _mm512_setzero_si512();
    const __m512i bidx = _mm512_set_epi32(1,1,1,1,1,1,1,1,0,0,0,0,0,0,0,0);
    __m512 acc[4];
    const block_q8_0 *y[4];
    for (int t = 0; t < nt; t++) {
        y[t] = xrow(xq, stride, t);
        acc[t] = _mm512_setzero_ps();
    }
    int64_t b = 0;
    for (; b + 2 <= nb; b += 2) {
        prefetch_lines(x + b, 68);
        const __m512i q = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)x[b].qs)),
                                             _mm256_loadu_si256((const __m256i *)x[b + 1].qs), 1);
        const __m512i qa = _mm512_abs_epi8(q);
        const __mmask64 neg = _mm512_movepi8_mask(q);
        const __m128 dw = _mm_cvtph_ps(_mm_cvtsi32_si128((int)((uint32_t)x[b].d | (uint32_t)x[b + 1].d << 16)));
        for (int t = 0; t < nt; t++) {
            const block_q8_0 *yb = y[t] + b;
            __m512i a = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)yb[0].qs)),
                                           _mm256_loadu_si256((const __m256i *)yb[1].qs), 1);
            a = _mm512_mask_sub_epi8(a, neg, zero, a); /* sign(w)·a (a where w = 0 does not matter: |w| = 0) */
            const __m512i p = _mm512_dpbusd_epi32(zero, qa, a);
            const __m128 da = _mm_cvtph_ps(_mm_cvtsi32_si128((int)((uint32_t)yb[0].d | (uint32_t)yb[1].d << 16)));
            /* lanes 0..7: block b (d_b * da_b), 8..15: block b+1 */
            const __m512 s = _mm512_permutexvar_ps(bidx, _mm512_castps128_ps512(_mm_mul_ps(dw, da)));
            acc[t] = _mm512_fmadd_ps(s, _mm512_cvtepi32_ps(p), acc[t]);
        }
    }
    if (b < nb)
        for (int t = 0; t < nt; t++) acc[t] = q80_odd_block(acc[t], x + b, y[t] + b);
    for (int t = 0; t < nt; t++)
        out[t] = hsum256(_mm256_add_ps(_mm512_castps512_ps256(acc[t]), _mm512_extractf32x8_ps(acc[t], 1)));
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
static float dot_q8_0(int64_t n, const void *w, const void *x) {
    float r;
    q80_dot(1, n, w, x, 0, &r);
    return r;
}
static void dot4_q8_0(int64_t n, const void *w, const void *x, size_t s, float *o) { q80_dot(4, n, w, x, s, o); }
BLK32_FNS(q4_0, B_Q4_0)
BLK32_FNS(q5_0, B_Q5_0)
BLK32_FNS(q4_1, B_Q4_1)
BLK32_FNS(q5_1, B_Q5_1)

/* ==== Q4_K / Q5_K x Q8_K ==== */

/* The twelve packed 6-bit scale bytes -> bytes 0..7 the eight scales, 8..15 the eight mins (the vector form of
 * loom_get_scale_min_k4: for j < 4, sc = s[j] & 63, mn = s[j+4] & 63; for j >= 4, the low four bits come from
 * s[j+4] (low / high nibble) and the top two from bits 6-7 of s[j-4] / s[j]). The picks index a 16-byte
 * load that starts at the block (d, dmin, then the scales at bytes 4..15). */
#define K4_PICK_A _mm_setr_epi8(4, 5, 6, 7, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15)
#define K4_PICK_B _mm_setr_epi8(-1, -1, -1, -1, 4, 5, 6, 7, -1, -1, -1, -1, 8, 9, 10, 11)
#define K4_MASK_LO _mm_setr_epi8(63, 63, 63, 63, 15, 15, 15, 15, 63, 63, 63, 63, 0, 0, 0, 0)
#define K4_MASK_HI _mm_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 15, 15, 15, 15)
/* four blocks at once, one per 128-bit lane (every operation is in-lane) */
INLINE __m512i k4_scales4(__m512i s) {
    const __m512i a = _mm512_shuffle_epi8(s, _mm512_broadcast_i32x4(K4_PICK_A));
    const __m512i b = _mm512_shuffle_epi8(s, _mm512_broadcast_i32x4(K4_PICK_B));
    const __m512i lo = _mm512_and_si512(a, _mm512_broadcast_i32x4(K4_MASK_LO));
    const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(a, 4), _mm512_broadcast_i32x4(K4_MASK_HI));
    const __m512i top = _mm512_and_si512(_mm512_srli_epi16(b, 2), _mm512_set1_epi8(0x30));
    return _mm512_ternarylogic_epi32(lo, hi, top, 0xFE); /* lo | hi | top */
}
#undef K4_PICK_A
#undef K4_PICK_B
#undef K4_MASK_LO
#undef K4_MASK_HI

/* ==== Q4_K / Q5_K x Q8_K ====
 *
 * Q4_K decode on a 2.2 GHz core (Sapphire Rapids class, stop 14) ran at ~13 GB/s from L1 as well as from DRAM:
 * the kernel, not the memory, was the limit, with ports 0 and 5 saturated by ~37 vector uops per super-block
 * (llvm-mca) - four 256->512 broadcasts, four variable shifts and four masks just to split the nibbles. Here
 * the 128 weight bytes are read as two 512-bit halves and split with one mask and one shift + mask each: the
 * low nibbles of half C are sub-blocks 4C and 4C+2, the high ones 4C+1 and 4C+3, so the activation operand of
 * each vpdpbusd is two 32-byte pieces of the Q8_K row, [a c] or [b d] of its four pieces [a b c d]. The row
 * ranges (rows_q4_k, rows_q5_k) rearrange the activation once per call (q45k_prep_act); dot and dot4 assemble
 * the same operand on the fly.
 *
 * Everything per block but the weights' own integer products is done four blocks at a time ahead of the block
 * loop, per chunk of up to Q45K_PERM_MAX blocks (q45k_chunk_scales): the scale bytes unpacked, the float
 * products d * da, and the whole mins term. In the block loop these cost ~20 uops per super-block and held it
 * back: without the mins alone it ran ~1.3x faster (stop 15, 2048-wide rows from L2).
 * The integers and the float operations are the same in every path, so dot, dot4 and rows give the same bits.
 * Q5_K is the same with the fifth bit of each weight (qh, bit j for sub-block j) added as 16 where set. */
#define Q45K_PERM_MAX 64 /* super-blocks per chunk; the rearranged activation of one fits the stack (16 KiB) */

INLINE __m512i q45k_act(const int8_t *q, int C, int hi) { /* [piece hi | piece hi + 2] of half C */
    const int8_t *p = q + 128 * C + 32 * hi;
    return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)p)),
                              _mm256_loadu_si256((const __m256i *)(p + 64)), 1);
}

/* bsums[2j] + bsums[2j + 1]: the sum of activation sub-block j of a block (|.| <= 32 * 127, fits s16) */
INLINE __m128i q45k_bsum2(const block_q8_k *y) {
    return _mm256_cvtepi32_epi16(
        _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)y->bsums), _mm256_set1_epi16(1)));
}

/* The activation's share of a row range, made once per rows call (one token, nb <= Q45K_PERM_MAX). */
typedef struct q45k_prep {
    _Alignas(64) int8_t perm[Q45K_PERM_MAX * QK_K]; /* the operands as q45k_act gives them */
    _Alignas(64) int16_t bs2[Q45K_PERM_MAX][8];      /* q45k_bsum2 of each block */
    float        da2[2 * Q45K_PERM_MAX];             /* da of block b at 2b and 2b + 1 */
    const block_q8_k *xq;
} q45k_prep;

static void q45k_prep_act(const block_q8_k *y, int64_t nb, q45k_prep *p) {
    p->xq = y;
    for (int64_t b = 0; b < nb; b++) {
        for (int C = 0; C < 2; C++)
            for (int hi = 0; hi < 2; hi++)
                _mm512_store_si512(p->perm + 256 * b + 128 * C + 64 * hi, q45k_act(y[b].qs, C, hi));
        _mm_store_si128((__m128i *)p->bs2[b], q45k_bsum2(y + b));
        p->da2[2 * b] = p->da2[2 * b + 1] = y[b].d;
    }
}

/* One chunk's per-block state, four blocks (k <= 4 of them real) at w: scb gets their scale and min bytes,
 * dsc[t] pairs (d * da, dmin * da) per block, and accm[t] the mins term sum_b dmin_b da_b sum_j m_bj bs2_bj,
 * lanes 4i + p taking pairs 2p, 2p + 1 of block i (exact integers, then one FMA per lane). Lanes of the
 * missing blocks are zero throughout. */
INLINE void q45k_chunk_scales(int nt, const uint8_t *w, size_t bsz, int k, const block_q8_k *const *y,
                              const q45k_prep *prep, uint8_t (*scb)[16], float (*dsc)[2 * Q45K_PERM_MAX],
                              int64_t b, __m512 *accm) {
    __m512i sv = _mm512_setzero_si512();
    if (k == 4) {
        sv = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)w));
        sv = _mm512_inserti32x4(sv, _mm_loadu_si128((const __m128i *)(w + bsz)), 1);
        sv = _mm512_inserti32x4(sv, _mm_loadu_si128((const __m128i *)(w + 2 * bsz)), 2);
        sv = _mm512_inserti32x4(sv, _mm_loadu_si128((const __m128i *)(w + 3 * bsz)), 3);
    } else {
        _Alignas(64) uint8_t tmp[64] = {0};
        for (int i = 0; i < k; i++) memcpy(tmp + 16 * i, w + (size_t)i * bsz, 16);
        sv = _mm512_load_si512(tmp);
    }
    const __m512i s4 = k4_scales4(sv);
    _mm512_store_si512(scb, s4);
    /* d, dmin of the four blocks: dword 0 of each lane */
    const __m256  dd = _mm256_cvtph_ps(_mm512_castsi512_si128(
        _mm512_permutexvar_epi32(_mm512_setr_epi32(0, 4, 8, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0), sv)));
    const __m512i words = _mm512_broadcast_i32x4(
        _mm_setr_epi8(8, -1, 9, -1, 10, -1, 11, -1, 12, -1, 13, -1, 14, -1, 15, -1)); /* min bytes -> s16 */
    const __m512i mw = _mm512_shuffle_epi8(s4, words);
    const __m512i odd4 = _mm512_setr_epi32(1, 1, 1, 1, 3, 3, 3, 3, 5, 5, 5, 5, 7, 7, 7, 7);
    const __mmask8 m2 = (__mmask8)((1u << (2 * k)) - 1);
    for (int t = 0; t < nt; t++) {
        __m256  da2;
        __m512i bs2;
        if (prep) {
            da2 = _mm256_maskz_loadu_ps(m2, prep->da2 + 2 * b);
            bs2 = _mm512_maskz_loadu_epi32((__mmask16)((1u << (4 * k)) - 1), prep->bs2[b]);
        } else {
            _Alignas(64) int16_t tb[4][8] = {{0}};
            _Alignas(32) float   td[8] = {0};
            for (int i = 0; i < k; i++) {
                _mm_store_si128((__m128i *)tb[i], q45k_bsum2(y[t] + b + i));
                td[2 * i] = td[2 * i + 1] = y[t][b + i].d;
            }
            da2 = _mm256_load_ps(td);
            bs2 = _mm512_load_si512(tb);
        }
        const __m256 p = _mm256_mul_ps(dd, da2); /* (d da, dmin da) per block */
        _mm256_storeu_ps(dsc[t] + 2 * b, p);
        accm[t] = _mm512_fmadd_ps(_mm512_permutexvar_ps(odd4, _mm512_castps256_ps512(p)),
                                  _mm512_cvtepi32_ps(_mm512_madd_epi16(mw, bs2)), accm[t]);
    }
}

/* prep: the rows call's activation (nt == 1, nb <= Q45K_PERM_MAX), or NULL to read xq directly */
INLINE void q45k_dot(int five, int nt, int64_t n, const void *w, const void *xq, size_t stride, const q45k_prep *prep,
                     float *out) {
    const int64_t nb = n / QK_K;
    const size_t  bsz = five ? sizeof(block_q5_k) : sizeof(block_q4_k);
    const __m512i low4 = _mm512_set1_epi8(0x0F), zero = _mm512_setzero_si512(), b16 = _mm512_set1_epi8(16);
    /* Q5_K: the qh bit of each byte of lo / hi in half C (sub-blocks 4C, 4C + 2 / 4C + 1, 4C + 3) */
    __m512i qsel[2][2];
    for (int C = 0; C < 2; C++)
        for (int h = 0; h < 2; h++)
            qsel[C][h] = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_set1_epi8((char)(1 << (4 * C + h)))),
                                            _mm256_set1_epi8((char)(1 << (4 * C + h + 2))), 1);
    /* After packs(lo, hi), 128-bit lane L of half C holds in words 0..3 sums of sub-block 4C (4C + 2 for
     * L >= 2) and in words 4..7 sums of the next sub-block; each word takes its sub-block's scale (a 6-bit byte
     * widened by an in-lane shuffle, -1 control bytes giving the zero high bytes). */
    __m512i sc_sel[2];
    for (int C = 0; C < 2; C++) {
        const short a = (short)(0xFF00 | (4 * C)), bb = (short)(0xFF00 | (4 * C + 1));
        const __m256i lo = _mm256_setr_epi16(a, a, a, a, bb, bb, bb, bb, a, a, a, a, bb, bb, bb, bb);
        sc_sel[C] = _mm512_inserti64x4(_mm512_castsi256_si512(lo), _mm256_add_epi16(lo, _mm256_set1_epi16(2)), 1);
    }
    __m512 acc[4], accm[4];
    const block_q8_k *y[4];
    for (int t = 0; t < nt; t++) {
        y[t] = xrow(prep ? (const void *)prep->xq : xq, stride, t);
        acc[t] = _mm512_setzero_ps();
        accm[t] = _mm512_setzero_ps();
    }
    for (int64_t c0 = 0; c0 < nb; c0 += Q45K_PERM_MAX) {
        const int64_t  cn = nb - c0 < Q45K_PERM_MAX ? nb - c0 : Q45K_PERM_MAX;
        const uint8_t *wc = (const uint8_t *)w + (size_t)c0 * bsz;
        _Alignas(64) uint8_t scb[Q45K_PERM_MAX][16];
        float dsc[4][2 * Q45K_PERM_MAX];
        const block_q8_k *yc[4];
        for (int t = 0; t < nt; t++) yc[t] = y[t] + c0;
        for (int64_t b = 0; b < cn; b += 4)
            q45k_chunk_scales(nt, wc + (size_t)b * bsz, bsz, cn - b < 4 ? (int)(cn - b) : 4, yc, prep, scb + b, dsc,
                              b, accm);
        for (int64_t b = 0; b < cn; b++) {
            const int64_t  bg = c0 + b;
            const uint8_t *blk = wc + (size_t)b * bsz;
            const uint8_t *qs = five ? ((const block_q5_k *)blk)->qs : ((const block_q4_k *)blk)->qs;
            /* three lines for a 144- or 176-byte block: two left every ninth line of a Q4_K row to a demand miss */
            prefetch_lines(blk, 192);
            const __m512i sc8 = _mm512_broadcast_i32x4(_mm_load_si128((const __m128i *)scb[b])); /* scales, mins */
            __m512i qhz = zero;
            if (five) qhz = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)((const block_q5_k *)blk)->qh));
            __m512i iacc[4][2];
#pragma GCC unroll 2
            for (int C = 0; C < 2; C++) {
                const __m512i q = _mm512_loadu_si512(qs + 64 * C);
                __m512i lo = _mm512_and_si512(q, low4), hi = _mm512_and_si512(_mm512_srli_epi16(q, 4), low4);
                if (five) {
                    lo = _mm512_mask_add_epi8(lo, _mm512_test_epi8_mask(qhz, qsel[C][0]), lo, b16);
                    hi = _mm512_mask_add_epi8(hi, _mm512_test_epi8_mask(qhz, qsel[C][1]), hi, b16);
                }
                const __m512i scv = _mm512_shuffle_epi8(sc8, sc_sel[C]);
                for (int t = 0; t < nt; t++) {
                    __m512i a0, a1;
                    if (prep) {
                        a0 = _mm512_load_si512(prep->perm + 256 * bg + 128 * C);
                        a1 = _mm512_load_si512(prep->perm + 256 * bg + 128 * C + 64);
                    } else {
                        a0 = q45k_act(y[t][bg].qs, C, 0);
                        a1 = q45k_act(y[t][bg].qs, C, 1);
                    }
                    /* u4 / u5 x s8 quads in s32 (|4 * 31 * 128| fits s16 for the pack) */
                    const __m512i r0 = _mm512_dpbusd_epi32(zero, lo, a0), r1 = _mm512_dpbusd_epi32(zero, hi, a1);
                    iacc[t][C] = _mm512_dpwssd_epi32(C ? iacc[t][0] : zero, _mm512_packs_epi32(r0, r1), scv);
                }
            }
            for (int t = 0; t < nt; t++)
                acc[t] = _mm512_fmadd_ps(_mm512_set1_ps(dsc[t][2 * b]), _mm512_cvtepi32_ps(iacc[t][1]), acc[t]);
        }
    }
    for (int t = 0; t < nt; t++) out[t] = hsum512(_mm512_sub_ps(acc[t], accm[t]));
}

static float dot_q4_k(int64_t n, const void *w, const void *x) { float r; q45k_dot(0, 1, n, w, x, 0, NULL, &r); return r; }
static float dot_q5_k(int64_t n, const void *w, const void *x) { float r; q45k_dot(1, 1, n, w, x, 0, NULL, &r); return r; }
static void dot4_q4_k(int64_t n, const void *w, const void *x, size_t s, float *o) { q45k_dot(0, 4, n, w, x, s, NULL, o); }
static void dot4_q5_k(int64_t n, const void *w, const void *x, size_t s, float *o) { q45k_dot(1, 4, n, w, x, s, NULL, o); }

/* ==== Q6_K x Q8_K ==== */

INLINE void q6k_dot(int gf, int nt, int64_t n, const void *w, const void *xq, size_t stride, float *out) {
    const int64_t nb = n / QK_K;
    const __m512i shl = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_set1_epi16(4)), _mm256_set1_epi16(2), 1);
    const __m512i shr = _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(2), 1);
    const __m512i m30 = _mm512_set1_epi8(0x30), low4 = _mm512_set1_epi8(0x0F);
    /* GFNI bit matrices (one per qword): output bits 4,5 <- qh bits s,s+1, all other output bits 0; s = 0 | 2
     * (low | high 256-bit half) for q0 and 4 | 6 for q1. Replaces a variable shift and a mask per use. */
#define GF_M(s) ((long long)(((1ull << (s)) << 24) | ((1ull << ((s) + 1)) << 16)))
    const __m512i gm0 = _mm512_set_epi64(GF_M(2), GF_M(2), GF_M(2), GF_M(2), GF_M(0), GF_M(0), GF_M(0), GF_M(0));
    const __m512i gm1 = _mm512_set_epi64(GF_M(6), GF_M(6), GF_M(6), GF_M(6), GF_M(4), GF_M(4), GF_M(4), GF_M(4));
#undef GF_M
    /* scale word index per 64-element chunk k: groups 4k..4k+3 (16 elements = 8 maddubs words each) */
    __m512i sidx[4];
    for (int k = 0; k < 4; k++) {
        const short g = (short)(4 * k), g1 = (short)(4 * k + 1);
        const __m256i g01 = _mm256_setr_epi16(g, g, g, g, g, g, g, g, g1, g1, g1, g1, g1, g1, g1, g1);
        sidx[k] = _mm512_inserti64x4(_mm512_castsi256_si512(g01), _mm256_add_epi16(g01, _mm256_set1_epi16(2)), 1);
    }
    __m512 acc[4];
    const block_q8_k *y[4];
    for (int t = 0; t < nt; t++) {
        y[t] = xrow(xq, stride, t);
        acc[t] = _mm512_setzero_ps();
    }
    for (int64_t b = 0; b < nb; b++) {
        const block_q6_k *x = (const block_q6_k *)w + b;
        prefetch_lines(x, 256);
        const float dw = _cvtsh_ss(x->d);
        const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)x->scales));
        const __m512i sc16z = _mm512_castsi256_si512(sc16);
        __m512i iacc[4][2];
        for (int t = 0; t < nt; t++) {
            /* the -32 offset: sum_g sc_g * 32 * bsums_g, subtracted up front (8 lanes hold the pair sums) */
            const __m256i bs = _mm256_loadu_si256((const __m256i *)y[t][b].bsums);
            const __m256i corr = _mm256_slli_epi32(_mm256_madd_epi16(bs, sc16), 5);
            iacc[t][0] = _mm512_zextsi256_si512(_mm256_sub_epi32(_mm256_setzero_si256(), corr));
            iacc[t][1] = _mm512_setzero_si512();
        }
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++) {
            __m512i ql = _mm512_loadu_si512(x->ql + 64 * h);
            __m512i qh = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(x->qh + 32 * h)));
            /* q = low4(ql) | (shifted qh & 0x30): ternary-logic A | (B & C) */
            __m512i q0, q1;
            if (gf) { /* (A & low4) | B, B already the clean bits 4,5 */
                q0 = _mm512_ternarylogic_epi32(ql, GF_AFFINE(qh, gm0), low4, 0xEC);
                q1 = _mm512_ternarylogic_epi32(_mm512_srli_epi16(ql, 4), GF_AFFINE(qh, gm1), low4, 0xEC);
            } else {
                q0 = _mm512_ternarylogic_epi32(_mm512_and_si512(ql, low4), _mm512_sllv_epi16(qh, shl), m30, 0xF8);
                q1 = _mm512_ternarylogic_epi32(_mm512_and_si512(_mm512_srli_epi16(ql, 4), low4),
                                               _mm512_srlv_epi16(qh, shr), m30, 0xF8);
            }
            const __m512i s0 = _mm512_permutexvar_epi16(sidx[2 * h], sc16z);
            const __m512i s1 = _mm512_permutexvar_epi16(sidx[2 * h + 1], sc16z);
            for (int t = 0; t < nt; t++) {
                const int8_t *a = y[t][b].qs + 128 * h;
                /* u6 x s8 pairs in s16 (2 * 63 * 127 fits), then s16 x scale pairs accumulated in s32 */
                iacc[t][0] = _mm512_dpwssd_epi32(iacc[t][0], _mm512_maddubs_epi16(q0, _mm512_loadu_si512(a)), s0);
                iacc[t][1] = _mm512_dpwssd_epi32(iacc[t][1], _mm512_maddubs_epi16(q1, _mm512_loadu_si512(a + 64)), s1);
            }
        }
        for (int t = 0; t < nt; t++)
            acc[t] = _mm512_fmadd_ps(_mm512_set1_ps(dw * y[t][b].d),
                                     _mm512_cvtepi32_ps(_mm512_add_epi32(iacc[t][0], iacc[t][1])), acc[t]);
    }
    for (int t = 0; t < nt; t++) out[t] = hsum512(acc[t]);
}
static float dot_q6_k(int64_t n, const void *w, const void *x) { float r; q6k_dot(0, 1, n, w, x, 0, &r); return r; }
static void dot4_q6_k(int64_t n, const void *w, const void *x, size_t s, float *o) { q6k_dot(0, 4, n, w, x, s, o); }
static float dot_q6_k_gf(int64_t n, const void *w, const void *x) { float r; q6k_dot(1, 1, n, w, x, 0, &r); return r; }
static void dot4_q6_k_gf(int64_t n, const void *w, const void *x, size_t s, float *o) { q6k_dot(1, 4, n, w, x, s, o); }

/* ==== activation quantizers (bit-identical to dot_ref.c's) ==== */

/* 16 values -> 16 int8 with round-half-even (MXCSR default) and the [-127, 127] clamp; returns the int32s. */
INLINE __m512i quant16(const float *x, float id, int8_t *dst) {
    __m512i v = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(x), _mm512_set1_ps(id)));
    v = _mm512_max_epi32(_mm512_min_epi32(v, _mm512_set1_epi32(127)), _mm512_set1_epi32(-127));
    _mm_storeu_si128((__m128i *)dst, _mm512_cvtepi32_epi8(v));
    return v;
}

INLINE float amax_n(const float *x, int n) {
    const __m512 sign = _mm512_set1_ps(-0.0f);
    __m512 m = _mm512_setzero_ps();
    for (int i = 0; i < n; i += 16) m = _mm512_max_ps(m, _mm512_andnot_ps(sign, _mm512_loadu_ps(x + i)));
    return _mm512_reduce_max_ps(m);
}

static void quant_q8_0(const float *x, void *xq, int64_t n) {
    block_q8_0 *y = xq;
    for (int64_t b = 0; b < n / QK8_0; b++) {
        const float *v = x + b * QK8_0;
        const float amax = amax_n(v, QK8_0);
        const float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        y[b].d = mm_f32_to_f16(d);
        quant16(v, id, y[b].qs);
        quant16(v + 16, id, y[b].qs + 16);
    }
}

static void quant_q8_k(const float *x, void *xq, int64_t n) {
    block_q8_k *y = xq;
    for (int64_t b = 0; b < n / QK_K; b++) {
        const float *v = x + b * QK_K;
        const float amax = amax_n(v, QK_K);
        const float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        y[b].d = d;
        for (int j = 0; j < QK_K / 16; j++)
            y[b].bsums[j] = (int16_t)_mm512_reduce_add_epi32(quant16(v + 16 * j, id, y[b].qs + 16 * j));
    }
}

/* ==== matvec row ranges ==== */

ROWS_FN(f32, fdot(FW_F32, 1, n, wr, x, 0, y + r))
ROWS_FN(f16, fdot(FW_F16, 1, n, wr, x, 0, y + r))
ROWS_FN(bf16, fdot(FW_BF16, 1, n, wr, x, 0, y + r))
ROWS_FN(q8_0_plain, q80_dot(1, n, wr, x, 0, y + r))

/* Q8_0 matvec with the activation's share of the work done once per row range instead of once per row. Per
 * pair of blocks the per-row kernel spends ~15 vector uops, about a third of them on the activation (its
 * scales, and the sign trick |w| x sign(w)·a); on cores with two 512-bit ports that left the kernel only ~1.3x
 * faster than one core's share of DRAM, too little to keep the reads streaming. Here the weights go unsigned
 * instead (w ^ 0x80 = w + 128) and the accumulator starts at -128 * sum(a) of each lane's four activations, so
 * vpdpbusd yields exactly sum(w·a): the same integers as q80_dot, then the same float operations (the scale
 * product dw·da per lane), so the results are bit-identical to dot_q8_0. */
typedef struct q80_prep {
    __m512i a;    /* the pair's 64 activation bytes */
    __m512i negc; /* -128 * (sum of the 4 activations) per s32 lane */
} q80_prep;
#define Q80_PREP_MAX 128 /* pairs (rows of up to 8192 values; 16 KiB on the stack); longer rows take rows_q8_0_plain */

/* one pair of blocks: acc += s x sum(w * a) per lane, s = dw * da (lanes 0..7 block 2i, 8..15 block 2i + 1) */
INLINE __m512 q80_pair_fma(__m512 acc, const block_q8_0 *x, const q80_prep *P, __m512 s) {
    const __m512i q = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)x[0].qs)),
                                         _mm256_loadu_si256((const __m256i *)x[1].qs), 1);
    const __m512i p = _mm512_dpbusd_epi32(P->negc, _mm512_xor_si512(q, _mm512_set1_epi8((char)0x80)), P->a);
    return _mm512_fmadd_ps(s, _mm512_cvtepi32_ps(p), acc);
}

/* dw * da of eight consecutive blocks: the scales gathered in two general registers (loads and integer ops,
 * off the vector ports), converted and multiplied once; each pair then takes its two with one permute. Per
 * pair this replaces a move, an insert, a convert, a permute and a multiply, most of them on port 5, which
 * with the weights' insert and the products was the kernel's limit. The lane values are the products
 * q80_dot forms, so the result is the same. */
INLINE __m256 q80_scales8(const block_q8_0 *x, const float *da) {
    uint64_t lo = (uint64_t)x[0].d | (uint64_t)x[1].d << 16 | (uint64_t)x[2].d << 32 | (uint64_t)x[3].d << 48;
    uint64_t hi = (uint64_t)x[4].d | (uint64_t)x[5].d << 16 | (uint64_t)x[6].d << 32 | (uint64_t)x[7].d << 48;
    __asm__("" : "+r"(lo), "+r"(hi)); /* keeps the compiler from rebuilding this with vector shuffles */
    return _mm256_mul_ps(_mm256_cvtph_ps(_mm_set_epi64x((long long)hi, (long long)lo)), _mm256_loadu_ps(da));
}

/* the pair (lanes 0..7: block 2k, 8..15: block 2k + 1) of an eight-block scale vector */
INLINE __m512 q80_pair_scale(__m256 s8, int k) {
    const int     e = 2 * k, o = 2 * k + 1;
    const __m512i idx = _mm512_set_epi32(o, o, o, o, o, o, o, o, e, e, e, e, e, e, e, e);
    return _mm512_permutexvar_ps(idx, _mm512_castps256_ps512(s8));
}

INLINE __m512 q80_pair_scale1(const block_q8_0 *x, const float *da) {
    const __m128 s = _mm_mul_ps(_mm_cvtph_ps(_mm_insert_epi16(_mm_cvtsi32_si128(x[0].d), x[1].d, 1)),
                                _mm_castsi128_ps(_mm_loadl_epi64((const __m128i *)da)));
    return _mm512_permutexvar_ps(_mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0),
                                 _mm512_castps128_ps512(s));
}

INLINE float q80_finish(__m512 acc, int64_t nb, const block_q8_0 *x, const block_q8_0 *y) {
    if (nb & 1) acc = q80_odd_block(acc, x + nb - 1, y + nb - 1); /* as q80_dot */
    return hsum256(_mm256_add_ps(_mm512_castps512_ps256(acc), _mm512_extractf32x8_ps(acc, 1)));
}

/* Four pairs of one row at x (prefetched ahead), the step of q80_rows_prep */
INLINE __m512 q80_quad(__m512 acc, const block_q8_0 *x, const q80_prep *pp, const float *da) {
    prefetch_lines(x, 4 * 68);
    const __m256 s8 = q80_scales8(x, da);
#pragma GCC unroll 4
    for (int k = 0; k < 4; k++) acc = q80_pair_fma(acc, x + 2 * k, pp + k, q80_pair_scale(s8, k));
    return acc;
}

/* nr (1 or 2) rows in one pass over the prepared activation, four pairs per step: independent accumulator
 * chains, each row's operations those of q80_dot. da: the activation's block scales as f32. */
INLINE void q80_rows_prep(int nr, int64_t n, const block_q8_0 *x0, const block_q8_0 *x1, const q80_prep *pp,
                          const float *da, const block_q8_0 *y, float *o0, float *o1) {
    const int64_t nb = n / QK8_0, np = nb / 2;
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 4 <= np; i += 4) {
        acc0 = q80_quad(acc0, x0 + 2 * i, pp + i, da + 2 * i);
        if (nr == 2) acc1 = q80_quad(acc1, x1 + 2 * i, pp + i, da + 2 * i);
    }
    for (; i < np; i++) {
        prefetch_lines(x0 + 2 * i, 68);
        acc0 = q80_pair_fma(acc0, x0 + 2 * i, pp + i, q80_pair_scale1(x0 + 2 * i, da + 2 * i));
        if (nr == 2) {
            prefetch_lines(x1 + 2 * i, 68);
            acc1 = q80_pair_fma(acc1, x1 + 2 * i, pp + i, q80_pair_scale1(x1 + 2 * i, da + 2 * i));
        }
    }
    *o0 = q80_finish(acc0, nb, x0, y);
    if (nr == 2) *o1 = q80_finish(acc1, nb, x1, y);
}

#define Q80_ROW(r) ((const block_q8_0 *)((const char *)w + rb * (size_t)(r)))
static void rows_q8_0(int64_t n, const void *w, size_t rb, int64_t nr, const void *x, float *y, int streams) {
    const int64_t np = n / QK8_0 / 2;
    if (np > Q80_PREP_MAX) {
        rows_q8_0_plain(n, w, rb, nr, x, y, streams);
        return;
    }
    const block_q8_0 *ya = x;
    q80_prep pp[Q80_PREP_MAX];
    float da[2 * Q80_PREP_MAX];
    for (int64_t i = 0; i < np; i++) {
        const block_q8_0 *yb = ya + 2 * i;
        pp[i].a = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)yb[0].qs)),
                                     _mm256_loadu_si256((const __m256i *)yb[1].qs), 1);
        const __m512i c = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8((char)0x80), pp[i].a);
        pp[i].negc = _mm512_sub_epi32(_mm512_setzero_si512(), c);
        da[2 * i] = _cvtsh_ss(yb[0].d);
        da[2 * i + 1] = _cvtsh_ss(yb[1].d);
    }
    const int64_t h = streams == 2 ? nr / 2 : 0;
    const char *end = (const char *)w + rb * (size_t)nr;
    prefetch_head(w, end);
    if (h) prefetch_head((const char *)w + rb * (size_t)h, end);
    for (int64_t i = 0; i < h; i++) { /* two interleaved streams, as ROWS_FN */
        q80_rows_prep(2, n, Q80_ROW(i), Q80_ROW(i + h), pp, da, ya, y + i, y + i + h);
    }
    for (int64_t r = 2 * h; r < nr; r++) {
        q80_rows_prep(1, n, Q80_ROW(r), NULL, pp, da, ya, y + r, NULL);
    }
}
#undef Q80_ROW
ROWS_FN(q4_0, blk32_dot(B_Q4_0, 1, n, wr, x, 0, y + r))
ROWS_FN(q5_0, blk32_dot(B_Q5_0, 1, n, wr, x, 0, y + r))
ROWS_FN(q4_1, blk32_dot(B_Q4_1, 1, n, wr, x, 0, y + r))
ROWS_FN(q5_1, blk32_dot(B_Q5_1, 1, n, wr, x, 0, y + r))
#define Q45K_ROWS(name, five)                                                                                  \
    ROWS_FN(name##_plain, q45k_dot(five, 1, n, wr, x, 0, NULL, y + r))                                        \
    ROWS_FN(name##_prep, q45k_dot(five, 1, n, wr, NULL, 0, (const q45k_prep *)x, y + r))                      \
    static void rows_##name(int64_t n, const void *w, size_t rb, int64_t nr, const void *x, float *y,          \
                            int streams) {                                                                     \
        const int64_t nb = n / QK_K;                                                                           \
        if (nb > Q45K_PERM_MAX) {                                                                               \
            rows_##name##_plain(n, w, rb, nr, x, y, streams);                                                  \
            return;                                                                                            \
        }                                                                                                      \
        q45k_prep p;                                                                                           \
        q45k_prep_act(x, nb, &p);                                                                              \
        rows_##name##_prep(n, w, rb, nr, &p, y, streams);                                                      \
    }
Q45K_ROWS(q4_k, 0)
Q45K_ROWS(q5_k, 1)
ROWS_FN(q6_k, q6k_dot(0, 1, n, wr, x, 0, y + r))
ROWS_FN(q6_k_gf, q6k_dot(1, 1, n, wr, x, 0, y + r))

void loom_kernels_fill_avx512(loom_kernels *k) {
    memset(k, 0, sizeof *k);
    far_prefetch = loom_far_prefetch();
    k->dot[LOOM_F32] = dot_f32;
    k->dot[LOOM_F16] = dot_f16;
    k->dot[LOOM_BF16] = dot_bf16;
    k->dot4[LOOM_F32] = dot4_f32;
    k->dot4[LOOM_F16] = dot4_f16;
    k->dot4[LOOM_BF16] = dot4_bf16;
    k->rows[LOOM_F32] = rows_f32;
    k->rows[LOOM_F16] = rows_f16;
    k->rows[LOOM_BF16] = rows_bf16;
#define SET(T, name)                                                                                           \
    k->dot[T] = dot_##name;                                                                                    \
    k->dot4[T] = dot4_##name;                                                                                  \
    k->rows[T] = rows_##name
    SET(LOOM_Q8_0, q8_0);
    SET(LOOM_Q4_0, q4_0);
    SET(LOOM_Q5_0, q5_0);
    SET(LOOM_Q4_1, q4_1);
    SET(LOOM_Q5_1, q5_1);
    SET(LOOM_Q4_K, q4_k);
    SET(LOOM_Q5_K, q5_k);
    SET(LOOM_Q6_K, q6_k);
#undef SET
    if (__builtin_cpu_supports("gfni")) {
        k->dot[LOOM_Q6_K] = dot_q6_k_gf;
        k->dot4[LOOM_Q6_K] = dot4_q6_k_gf;
        k->rows[LOOM_Q6_K] = rows_q6_k_gf;
    }
    k->quant_q8_0 = quant_q8_0;
    k->quant_q8_k = quant_q8_k;
}
