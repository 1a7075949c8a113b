/* core/attn_avx2.c — AVX2 + FMA fused attention (see attn.h), compiled with -mavx2 -mfma; the kernel for CPUs
 * without AVX-512 (Zen 2/3, Haswell .. Alder Lake). Any d_head up to 256: a partial last 8-float chunk is read
 * with vmaskmovps, which never touches the masked-off floats, so a row may end a mapping.
 *
 * The design is attn_avx512.c's, re-tiled for 16 ymm registers of 8 floats. Keys go in blocks of KB; a block
 * is scored one of two ways, chosen by the number of query lanes:
 *
 *  - lane-major (n_q > 4: prefill, the ViT): the queries sit in the lanes of one register (n_q <= 8) or two,
 *    and the scores of one key are sum_d k[d] * Qt[d], with Q transposed once per task: 12 keys x 1 register
 *    or 6 keys x 2 = 12 accumulators, each broadcast key float serving every lane, no horizontal sums;
 *  - key-major (n_q <= 4: decode, where Llama 4's GQA group is 4 heads): each dot product runs along d_head in
 *    8-float chunks (4 keys x up to 3 queries = 12 accumulators) and is reduced horizontally afterwards, 8 keys
 *    at once. The AVX-512 kernel keeps this path up to 8 lanes; with 8-float registers lane-major wastes at
 *    most 3/8 of each FMA from 5 lanes on, and measured faster there on Zen 3 (at 4 lanes key-major is ahead
 *    by 10-40% on contexts of up to a few hundred keys, and level on long ones).
 *
 * Both then run the online softmax and add p[m][j] v[j] into the outputs with the same value tiles (up to 6
 * lanes x 2 chunks, or fewer lanes x more chunks), in which each chunk of a value row loaded serves every lane
 * of the tile; with more than 6 lanes the block's value rows are first packed (see pack_values). Zen 3 issues
 * two FMAs a cycle with a latency of 4, so every inner loop keeps at least 8 independent accumulators.
 * Measured on a 2-core Zen 3 (EPYC), one thread: 16 lanes x d_head 128 x 512 keys, 55-60 GFLOP/s of the
 * 88 an FMA loop reaches (the scalar reference: 1.9); 4 lanes (decode), 25-33.
 */
#include <immintrin.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "core/hsum_avx2.h"
#include "core/attn.h"
#include "core/attn_prefetch.h"
#include "core/exp_avx2.h"

#define INLINE static inline __attribute__((always_inline))

#define MASKED       (-1e30f)
#define KB           24 /* keys per block: 4 lane-major tiles of 6 keys, 3 key-major groups of 8 */
#define LM_KT        6  /* keys per lane-major score tile: 6 x 2 accumulators + 2 query + 1 broadcast = 15 ymm */
#define TILE_LANES   6  /* most lanes per value tile: 6 x 2 accumulators + 2 value chunks + 1 broadcast */
#define KM_MAX_LANES 4  /* n_q up to this takes the key-major path (crossover measured on Zen 3) */
#define KM_PASS      3  /* most queries per key-major score pass: 4 x 3 accumulators + 3 query + 1 key */

/* ==== shared: value tiles, rows, outputs ==== */

/* Lanes 0 .. (dh % 8 or 8) - 1 set: the load / store mask of a row's last chunk. */
static __m256i tail_mask(int dh) {
    int r = dh % 8 ? dh % 8 : 8;
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(r), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* Vp[j] = the value row of key j, for the keys j in the bit set keys, packed os floats apart and zero past
 * d_head. Value tiles walk one column of all the block's rows; in the KV cache those rows lie kvd floats apart
 * (2 KiB for Llama 4), so the lines of one column fall into two L1 sets and evict each other before the next
 * lane pass reads them again: packed, each row is read once, in order, and every pass runs from L1. */
static void pack_values(float *Vp, int os, const float *const *vrow, uint32_t keys, int NC, __m256i tmask,
                        ptrdiff_t pf) {
    for (; keys; keys &= keys - 1) {
        int j = __builtin_ctz(keys);
        const float *v = vrow[j];
        float *dst = Vp + j * os;
        for (int c = 0; c < NC; c += 2) loom_attn_prefetch_ahead(v + 8 * c, pf); /* one per 64-byte line */
        for (int c = 0; c < NC - 1; c++) _mm256_store_ps(dst + 8 * c, _mm256_loadu_ps(v + 8 * c));
        _mm256_store_ps(dst + 8 * (NC - 1), _mm256_maskload_ps(v + 8 * (NC - 1), tmask));
    }
}

/* o[m] = o[m] * alpha[m] + sum_j p[m][j] v[j] for NQ lanes over the CC chunks from c0, for the keys j in the
 * bit set keys, with p[m][j] at P[m * psm + j * psj]. When tail is set, the tile's last chunk is the row's
 * last and is loaded under tmask. A key outside one lane's range but inside another's has p = 0 there and
 * adds 0 * v, exact for the finite rows a KV cache holds; keys no lane sees (rows possibly never written,
 * even NaN) are skipped. */
INLINE void value_tile(float *O, int os, const float *alpha, const float *P, int psm, int psj,
                       const float *const *vrow, uint32_t keys, int c0, int CC, int NQ, int tail, __m256i tmask,
                       ptrdiff_t pf) {
    __m256 acc[TILE_LANES][8];
#pragma GCC unroll 8
    for (int m = 0; m < NQ; m++) {
        __m256 a = _mm256_set1_ps(alpha[m]);
#pragma GCC unroll 8
        for (int c = 0; c < CC; c++) acc[m][c] = _mm256_mul_ps(_mm256_load_ps(O + m * os + 8 * (c0 + c)), a);
    }
    for (; keys; keys &= keys - 1) {
        int j = __builtin_ctz(keys);
        const float *v8 = vrow[j] + 8 * c0, *pj = P + j * psj;
        __m256 v[8];
#pragma GCC unroll 8
        for (int c = 0; c < CC; c++) {
            v[c] = tail && c == CC - 1 ? _mm256_maskload_ps(v8 + 8 * c, tmask) : _mm256_loadu_ps(v8 + 8 * c);
            if (c % 2 == 0) loom_attn_prefetch_ahead(v8 + 8 * c, pf); /* one per 64-byte line */
        }
#pragma GCC unroll 8
        for (int m = 0; m < NQ; m++) {
            __m256 p = _mm256_broadcast_ss(pj + m * psm);
#pragma GCC unroll 8
            for (int c = 0; c < CC; c++) acc[m][c] = _mm256_fmadd_ps(p, v[c], acc[m][c]);
        }
    }
#pragma GCC unroll 8
    for (int m = 0; m < NQ; m++)
#pragma GCC unroll 8
        for (int c = 0; c < CC; c++) _mm256_store_ps(O + m * os + 8 * (c0 + c), acc[m][c]);
}

/* value_tile over the NC chunks of a row for nq <= TILE_LANES lanes: whole tiles of CC chunks, then one of the
 * 1..CC chunks left, which holds the row's last chunk. Tile sizes are constants at every call, so that the
 * accumulators live in registers; the `R <= CC` guards drop the impossible remainders at compile time. */
INLINE void update_lanes(float *O, int os, const float *alpha, const float *P, int psm, int psj,
                         const float *const *vrow, uint32_t keys, int NC, __m256i tmask, int nq, ptrdiff_t pf) {
#define VT(R, NQ, TAIL) value_tile(O, os, alpha, P, psm, psj, vrow, keys, c0, R, NQ, TAIL, tmask, pf)
#define LAST(R, NQ, CC) case R: if (R <= CC) VT(R, NQ, 1); break
#define VALUE_TILES(NQ, CC)                                                                                       \
    do {                                                                                                          \
        int c0 = 0;                                                                                               \
        for (; c0 + CC < NC; c0 += CC) VT(CC, NQ, 0);                                                              \
        switch (NC - c0) {                                                                                        \
            LAST(1, NQ, CC); LAST(2, NQ, CC); LAST(3, NQ, CC); LAST(4, NQ, CC);                                   \
            LAST(5, NQ, CC); LAST(6, NQ, CC); LAST(7, NQ, CC); LAST(8, NQ, CC);                                   \
        }                                                                                                         \
    } while (0)
    /* at least 8 accumulators (the FMA latency), at most 16 registers in all */
    switch (nq) {
    case 1: VALUE_TILES(1, 8); break; /* value chunks fold into the FMAs as memory operands */
    case 2: VALUE_TILES(2, 5); break;
    case 3: VALUE_TILES(3, 3); break;
    case 4: VALUE_TILES(4, 3); break;
    case 5: VALUE_TILES(5, 2); break;
    default: VALUE_TILES(6, 2); break;
    }
#undef VALUE_TILES
#undef LAST
#undef VT
}

/* update_lanes over all n_q lanes in balanced passes of at most TILE_LANES (16 -> 5 + 5 + 6), the value rows
 * packed first when more than one pass reads them. Inlined into each path, so that the layout of P (psm, psj)
 * is a constant there and every p is a load at a fixed offset. */
INLINE void update_outputs(float *O, int os, const float *alpha, const float *P, int psm, int psj,
                           const float *const *vrow, uint32_t keys, int NC, __m256i tmask, int nq, ptrdiff_t pf) {
    int n_pass = (nq + TILE_LANES - 1) / TILE_LANES;
    _Alignas(32) float Vp[KB * 256];
    const float *packed[KB];
    if (n_pass > 1) {
        pack_values(Vp, os, vrow, keys, NC, tmask, pf);
        for (int j = 0; j < KB; j++) packed[j] = Vp + j * os;
        vrow = packed;
        tmask = _mm256_set1_epi32(-1); /* the packed rows are whole */
        pf = 0;                        /* and were read (and prefetched ahead) once, here */
    }
    for (int p = 0, m0 = 0; p < n_pass; p++) {
        int n = (nq - m0) / (n_pass - p);
        update_lanes(O + m0 * os, os, alpha + m0, P + m0 * psm, psm, psj, vrow, keys, NC, tmask, n, pf);
        m0 += n;
    }
}

/* The key and value rows of the block of nk keys from row j0 of segment g. A short block repeats its last
 * row up to KB, so that score tiles run whole (the extra scores are never used). */
static void block_rows(const float **krow, const float **vrow, const loom_attn_seg *g, int64_t j0, int nk) {
    for (int j = 0; j < KB; j++) {
        int64_t r = j0 + (j < nk ? j : nk - 1);
        krow[j] = g->k + r * g->stride;
        vrow[j] = g->v + r * g->stride;
    }
}

/* The rows [first, last] of segment g that some lane can see (first > last when none). */
static void seg_span(const loom_attn_seg *g, int64_t min_lo, int64_t max_hi, int64_t *first, int64_t *last) {
    *first = g->pos0 > min_lo ? 0 : min_lo - g->pos0;
    *last = g->pos0 + g->n - 1 < max_hi ? g->n - 1 : max_hi - g->pos0;
}

static void lane_bounds(const loom_attn_task *t, int64_t *min_lo, int64_t *max_hi) {
    *min_lo = INT64_MAX;
    *max_hi = INT64_MIN;
    for (int m = 0; m < t->n_q; m++) {
        if (t->lo[m] < *min_lo) *min_lo = t->lo[m];
        if (t->hi[m] > *max_hi) *max_hi = t->hi[m];
    }
}

/* out[m] = O[m] / l[m] (0 for a lane that saw no key); the last chunk is stored under tmask. */
static void write_outputs(const loom_attn_task *t, const float *O, int os, const float *l, __m256i tmask) {
    const int NC = (t->d_head + 7) / 8;
    for (int m = 0; m < t->n_q; m++) {
        __m256 inv = _mm256_set1_ps(l[m] > 0.0f ? 1.0f / l[m] : 0.0f);
        for (int c = 0; c < NC - 1; c++)
            _mm256_storeu_ps(t->out[m] + 8 * c, _mm256_mul_ps(_mm256_load_ps(O + m * os + 8 * c), inv));
        _mm256_maskstore_ps(t->out[m] + 8 * (NC - 1), tmask,
                            _mm256_mul_ps(_mm256_load_ps(O + m * os + 8 * (NC - 1)), inv));
    }
}

INLINE float hmax256(__m256 v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* ==== many query lanes (prefill, the ViT): lane-major scores ==== */

/* Scores of the keys krow[0..KT) against the transposed queries Qt ([dh][8 NV]): S[i][m] = Q[m]·krow[i].
 * Only the dh floats of each key row are read (one broadcast each), so no tail mask is needed. */
INLINE void lane_major_scores(float *S, const float *const *krow, const float *Qt, int dh, int KT, int NV) {
    __m256 acc[12][2];
#pragma GCC unroll 12
    for (int i = 0; i < KT; i++)
#pragma GCC unroll 2
        for (int v = 0; v < NV; v++) acc[i][v] = _mm256_setzero_ps();
    for (int d = 0; d < dh; d++) {
        __m256 q[2];
#pragma GCC unroll 2
        for (int v = 0; v < NV; v++) q[v] = _mm256_load_ps(Qt + d * 8 * NV + 8 * v);
#pragma GCC unroll 12
        for (int i = 0; i < KT; i++) {
            __m256 k = _mm256_broadcast_ss(krow[i] + d);
#pragma GCC unroll 2
            for (int v = 0; v < NV; v++) acc[i][v] = _mm256_fmadd_ps(k, q[v], acc[i][v]);
        }
    }
#pragma GCC unroll 12
    for (int i = 0; i < KT; i++)
#pragma GCC unroll 2
        for (int v = 0; v < NV; v++) _mm256_store_ps(S + i * 8 * NV + 8 * v, acc[i][v]);
}

/* Qt[d][m] = scale * q[m][d] for m < n_q, 0 for the lanes n_q .. W-1, d < d_head rounded up to 8: 8 x 8
 * blocks transposed in registers (a scalar scatter cost as much as the scores of the first few keys). */
static void transpose_queries(float *Qt, const loom_attn_task *t, int W, __m256i tmask) {
    const int NC = (t->d_head + 7) / 8;
    const __m256 scale = _mm256_set1_ps(t->scale);
    for (int m0 = 0; m0 < W; m0 += 8)
        for (int c = 0; c < NC; c++) {
            __m256 r[8];
            for (int i = 0; i < 8; i++) {
                int m = m0 + i;
                if (m >= t->n_q) r[i] = _mm256_setzero_ps();
                else if (c < NC - 1) r[i] = _mm256_mul_ps(_mm256_loadu_ps(t->q[m] + 8 * c), scale);
                else r[i] = _mm256_mul_ps(_mm256_maskload_ps(t->q[m] + 8 * c, tmask), scale);
            }
            __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
            __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
            __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
            __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
            __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
            __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
            __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
            __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
            float *dst = Qt + 8 * c * W + m0; /* row d = 8 c + i */
            _mm256_store_ps(dst + 0 * W, _mm256_permute2f128_ps(u0, u4, 0x20));
            _mm256_store_ps(dst + 1 * W, _mm256_permute2f128_ps(u1, u5, 0x20));
            _mm256_store_ps(dst + 2 * W, _mm256_permute2f128_ps(u2, u6, 0x20));
            _mm256_store_ps(dst + 3 * W, _mm256_permute2f128_ps(u3, u7, 0x20));
            _mm256_store_ps(dst + 4 * W, _mm256_permute2f128_ps(u0, u4, 0x31));
            _mm256_store_ps(dst + 5 * W, _mm256_permute2f128_ps(u1, u5, 0x31));
            _mm256_store_ps(dst + 6 * W, _mm256_permute2f128_ps(u2, u6, 0x31));
            _mm256_store_ps(dst + 7 * W, _mm256_permute2f128_ps(u3, u7, 0x31));
        }
}

/* pos - base clamped to int32 (the keys scanned lie within [base, base + 2^31): their own rows are in memory) */
static inline int32_t rel_pos(int64_t pos, int64_t base) {
    int64_t r = pos - base;
    return r < INT32_MIN ? INT32_MIN : r > INT32_MAX ? INT32_MAX : (int32_t)r;
}

/* All-ones in the lanes with lo <= pos <= hi. */
INLINE __m256 lanes_seeing(__m256i lo, __m256i hi, __m256i pos) {
    __m256i out = _mm256_or_si256(_mm256_cmpgt_epi32(lo, pos), _mm256_cmpgt_epi32(pos, hi));
    return _mm256_castsi256_ps(_mm256_xor_si256(out, _mm256_set1_epi32(-1)));
}

/* The lane-major kernel with the queries in NV registers of 8 lanes and KT keys per score tile (constants). */
INLINE void lane_major(const loom_attn_task *t, int NV, int KT) {
    const int dh = t->d_head, nq = t->n_q, NC = (dh + 7) / 8, os = NC * 8, W = 8 * NV;
    const __m256i tmask = tail_mask(dh);
    _Alignas(32) float Qt[256 * 16]; /* [dh][W] scaled queries, lane m = query m, 0 past n_q */
    _Alignas(32) float O[16 * 256];  /* [n_q][os] unnormalised outputs */
    _Alignas(32) float S[KB * 16];   /* [key][W] block scores, then probabilities */
    _Alignas(32) float alpha[16], lsum[16];
    memset(O, 0, sizeof(float) * (size_t)nq * os);
    transpose_queries(Qt, t, W, tmask);
    int64_t min_lo, max_hi;
    lane_bounds(t, &min_lo, &max_hi);
    /* positions relative to min_lo fit the 32-bit lanes whatever the context length */
    _Alignas(32) int32_t lo[16], hi[16];
    for (int m = 0; m < 16; m++) {
        lo[m] = m < nq ? rel_pos(t->lo[m], min_lo) : INT32_MAX; /* lanes past n_q: an empty range */
        hi[m] = m < nq ? rel_pos(t->hi[m], min_lo) : INT32_MIN;
    }
    int32_t all_lo = INT32_MIN, all_hi = INT32_MAX; /* the positions every lane sees */
    for (int m = 0; m < nq; m++) {
        if (lo[m] > all_lo) all_lo = lo[m];
        if (hi[m] < all_hi) all_hi = hi[m];
    }
    __m256i vlo[2], vhi[2];
    __m256 mx[2], l[2], used[2]; /* used: all-ones in the lanes below n_q */
    for (int v = 0; v < NV; v++) {
        used[v] = _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(nq - 8 * v),
                                                          _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)));
        vlo[v] = _mm256_load_si256((const __m256i *)(lo + 8 * v));
        vhi[v] = _mm256_load_si256((const __m256i *)(hi + 8 * v));
        mx[v] = _mm256_set1_ps(MASKED);
        l[v] = _mm256_setzero_ps();
    }
    const __m256 masked = _mm256_set1_ps(MASKED);

    for (int s = 0; s < t->n_seg; s++) {
        const loom_attn_seg *g = &t->seg[s];
        int64_t first, last;
        seg_span(g, min_lo, max_hi, &first, &last);
        for (int64_t j0 = first; j0 <= last; j0 += KB) {
            int nk = (int)(last - j0 + 1 < KB ? last - j0 + 1 : KB);
            const float *krow[KB], *vrow[KB];
            block_rows(krow, vrow, g, j0, nk);
            for (int j = 0; j < nk; j += KT) lane_major_scores(S + j * W, krow + j, Qt, dh, KT, NV);
            /* mask (a NaN score of a row no lane sees is replaced here) and block max, lane-wise; a block that
             * every lane sees whole (most of a causal prefill) needs only the mask of the lanes past n_q */
            int32_t pos0 = rel_pos(g->pos0 + j0, min_lo);
            const bool whole = pos0 >= all_lo && pos0 + nk - 1 <= all_hi;
            uint32_t keys = whole ? (uint32_t)((1ull << nk) - 1) : 0; /* the keys some lane sees */
            __m256 bmax[2] = {masked, masked};
            for (int j = 0; j < nk; j++) {
                __m256i pos = _mm256_set1_epi32(pos0 + j);
                int seen = 0;
                for (int v = 0; v < NV; v++) {
                    __m256 vis = whole ? used[v] : lanes_seeing(vlo[v], vhi[v], pos);
                    __m256 sc = _mm256_blendv_ps(masked, _mm256_load_ps(S + j * W + 8 * v), vis);
                    _mm256_store_ps(S + j * W + 8 * v, sc);
                    bmax[v] = _mm256_max_ps(bmax[v], sc);
                    seen |= _mm256_movemask_ps(vis);
                }
                keys |= (uint32_t)(seen != 0) << j;
            }
            for (int v = 0; v < NV; v++) {
                __m256 nmx = _mm256_max_ps(mx[v], bmax[v]), psum = _mm256_setzero_ps();
                _mm256_store_ps(alpha + 8 * v, exp256(_mm256_sub_ps(mx[v], nmx)));
                for (int j = 0; j < nk; j++) {
                    __m256 vis = whole ? used[v] : lanes_seeing(vlo[v], vhi[v], _mm256_set1_epi32(pos0 + j));
                    __m256 p = _mm256_and_ps(vis, exp256(_mm256_sub_ps(_mm256_load_ps(S + j * W + 8 * v), nmx)));
                    psum = _mm256_add_ps(psum, p);
                    _mm256_store_ps(S + j * W + 8 * v, p);
                }
                l[v] = _mm256_fmadd_ps(l[v], _mm256_load_ps(alpha + 8 * v), psum);
                mx[v] = nmx;
            }
            if (keys) update_outputs(O, os, alpha, S, 1, W, vrow, keys, NC, tmask, nq, 0);
        }
    }
    for (int v = 0; v < NV; v++) _mm256_store_ps(lsum + 8 * v, l[v]);
    write_outputs(t, O, os, lsum, tmask);
}

static void attn_lane_major8(const loom_attn_task *t) { lane_major(t, 1, 2 * LM_KT); }
static void attn_lane_major16(const loom_attn_task *t) { lane_major(t, 2, LM_KT); }

/* ==== few query lanes (decode): key-major dot products ====
 * With n_q <= 4 queries in the lanes, half or more of every lane-major FMA's 8 lanes would idle. Here each dot
 * product is summed along d_head and its 8 partial sums reduced through a transpose tree, 8 keys at once, so
 * the online softmax of a lane works on a vector of keys. */

/* Per 128-bit half H, the sums of a, b, c, d's four elements there: [sum a_H, sum b_H, sum c_H, sum d_H]. */
INLINE __m256 hsum4_per_half(__m256 a, __m256 b, __m256 c, __m256 d) {
    __m256 ab = _mm256_add_ps(_mm256_unpacklo_ps(a, b), _mm256_unpackhi_ps(a, b)); /* a0+a2 b0+b2 a1+a3 b1+b3 */
    __m256 cd = _mm256_add_ps(_mm256_unpacklo_ps(c, d), _mm256_unpackhi_ps(c, d));
    __m256d lo = _mm256_unpacklo_pd(_mm256_castps_pd(ab), _mm256_castps_pd(cd));
    __m256d hi = _mm256_unpackhi_pd(_mm256_castps_pd(ab), _mm256_castps_pd(cd));
    return _mm256_add_ps(_mm256_castpd_ps(lo), _mm256_castpd_ps(hi));
}

/* Completes 8 horizontal sums from the hsum4_per_half of keys 0-3 (w0) and 4-7 (w1): lane i = sum of key i. */
INLINE __m256 hsum8_finish(__m256 w0, __m256 w1) {
    return _mm256_add_ps(_mm256_permute2f128_ps(w0, w1, 0x20), _mm256_permute2f128_ps(w0, w1, 0x31));
}

/* One 8-float chunk of a KG keys x NQ queries dot-product tile: each query chunk loaded serves KG keys, each
 * key chunk NQ queries. */
INLINE void dot_tile_chunk(__m256 acc[8][KM_PASS], const float *const *krow, const float *Q, int qs, int c,
                           int tail, __m256i tmask, int KG, int NQ, ptrdiff_t pf) {
    __m256 q[KM_PASS];
#pragma GCC unroll 4
    for (int m = 0; m < NQ; m++) q[m] = _mm256_load_ps(Q + m * qs + 8 * c);
#pragma GCC unroll 8
    for (int i = 0; i < KG; i++) {
        __m256 k = tail ? _mm256_maskload_ps(krow[i] + 8 * c, tmask) : _mm256_loadu_ps(krow[i] + 8 * c);
        if (c % 2 == 0) loom_attn_prefetch_ahead(krow[i] + 8 * c, pf); /* one per 64-byte line */
#pragma GCC unroll 4
        for (int m = 0; m < NQ; m++) acc[i][m] = _mm256_fmadd_ps(k, q[m], acc[i][m]);
    }
}

/* Dot products of the keys krow[0..KG) with the queries Q[0..NQ) (rows qs floats apart), left as per-half
 * partial sums: W[m * (KB / 4) + i / 4] = hsum4_per_half of keys i..i+3 for query m. */
INLINE void dot_tile(__m256 *W, const float *const *krow, const float *Q, int qs, int NC, __m256i tmask, int KG,
                     int NQ, ptrdiff_t pf) {
    __m256 acc[8][KM_PASS];
#pragma GCC unroll 8
    for (int i = 0; i < KG; i++)
#pragma GCC unroll 4
        for (int m = 0; m < NQ; m++) acc[i][m] = _mm256_setzero_ps();
    for (int c = 0; c < NC - 1; c++) dot_tile_chunk(acc, krow, Q, qs, c, 0, tmask, KG, NQ, pf);
    dot_tile_chunk(acc, krow, Q, qs, NC - 1, 1, tmask, KG, NQ, pf); /* never read past a row */
#pragma GCC unroll 4
    for (int m = 0; m < NQ; m++)
#pragma GCC unroll 8
        for (int i = 0; i < KG; i += 4)
            W[m * (KB / 4) + i / 4] = hsum4_per_half(acc[i][m], acc[i + 1][m], acc[i + 2][m], acc[i + 3][m]);
}

/* State of the key-major path across the blocks of one task. */
typedef struct km_state {
    const loom_attn_task *t;
    int     NC, qs;                              /* 8-float chunks per row; floats per lane in Q and O */
    __m256i tmask;                               /* see tail_mask */
    ptrdiff_t pf;                                /* the current segment's prefetch distance (attn_prefetch.h) */
    float   mx[KM_MAX_LANES], l[KM_MAX_LANES];
    _Alignas(32) float Q[KM_MAX_LANES * 256];    /* [n_q][qs] scaled queries */
    _Alignas(32) float O[TILE_LANES * 256];      /* [n_q][qs] unnormalised outputs (sized for update_lanes' widest
                                                  * tile, which the compiler cannot rule out) */
} km_state;

/* Scores of the keys krow[0..nk) against the queries Q[0..nq), nq <= KM_PASS: lane i of sc[m * 3 + g] is
 * Q[m]·krow[8 g + i] for 8 g + i < nk (junk or 0 beyond; krow must be valid up to nk rounded up to 8). */
static void km_scores(__m256 *sc, const float *const *krow, const float *Q, int qs, int nq, int nk, int NC,
                      __m256i tmask, ptrdiff_t pf) {
    __m256 W[KM_PASS * KB / 4];
    for (int i = 0; i < KM_PASS * KB / 4; i++) W[i] = _mm256_setzero_ps();
#define DOT_TILES(KG, NQ) for (int j = 0; j < nk; j += KG) dot_tile(W + j / 4, krow + j, Q, qs, NC, tmask, KG, NQ, pf)
    switch (nq) {
    case 1: DOT_TILES(8, 1); break; /* 8 keys: the FMA latency needs 8 independent accumulators */
    case 2: DOT_TILES(4, 2); break;
    default: DOT_TILES(4, 3); break;
    }
#undef DOT_TILES
    for (int m = 0; m < nq; m++)
        for (int g = 0; g < KB / 8; g++) sc[m * (KB / 8) + g] = hsum8_finish(W[m * (KB / 4) + 2 * g], W[m * (KB / 4) + 2 * g + 1]);
}

/* Keys krow/vrow[0..nk) (nk <= KB) at positions bpos..: scores, online softmax, output update. */
static void km_block(km_state *st, const float *const *krow, const float *const *vrow, int nk, int64_t bpos) {
    const loom_attn_task *t = st->t;
    const int nq = t->n_q, qs = st->qs, ng = (nk + 7) / 8;
    __m256 sc[KM_MAX_LANES * (KB / 8)];
    /* balanced passes of at most KM_PASS queries (4 -> 2 + 2) */
    int n_pass = (nq + KM_PASS - 1) / KM_PASS;
    for (int p = 0, m0 = 0; p < n_pass; p++) {
        int n = (nq - m0) / (n_pass - p);
        km_scores(sc + m0 * (KB / 8), krow, st->Q + m0 * qs, qs, n, nk, st->NC, st->tmask, st->pf);
        m0 += n;
    }
    _Alignas(32) float P[TILE_LANES * KB]; /* [n_q][KB]; TILE_LANES: as km_state.O */
    float alpha[TILE_LANES];
    uint32_t any = 0;
    const __m256 masked = _mm256_set1_ps(MASKED);
    for (int m = 0; m < nq; m++) {
        alpha[m] = 1.0f;
        /* the lane's visible keys in this block are a..b (64-bit: no position limit) */
        int64_t a = t->lo[m] - bpos, b = t->hi[m] - bpos;
        if (a < 0) a = 0;
        if (b > nk - 1) b = nk - 1;
        if (a > b) {
            memset(P + m * KB, 0, sizeof(float) * KB);
            continue;
        }
        any |= (uint32_t)((2ull << b) - 1) & ~(uint32_t)((1ull << a) - 1);
        __m256i va = _mm256_set1_epi32((int)a - 1), vb = _mm256_set1_epi32((int)b + 1);
        __m256 vis[KB / 8], s[KB / 8], bm = masked;
        for (int g = 0; g < ng; g++) {
            __m256i idx = _mm256_add_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(8 * g));
            vis[g] = _mm256_castsi256_ps(_mm256_and_si256(_mm256_cmpgt_epi32(idx, va), _mm256_cmpgt_epi32(vb, idx)));
            s[g] = _mm256_blendv_ps(masked, sc[m * (KB / 8) + g], vis[g]);
            bm = _mm256_max_ps(bm, s[g]);
        }
        float bmax = hmax256(bm), nmx = bmax > st->mx[m] ? bmax : st->mx[m];
        if (nmx > st->mx[m]) alpha[m] = _mm256_cvtss_f32(exp256(_mm256_set1_ps(st->mx[m] - nmx)));
        __m256 psum = _mm256_setzero_ps(), vnmx = _mm256_set1_ps(nmx);
        for (int g = 0; g < ng; g++) {
            __m256 p = _mm256_and_ps(vis[g], exp256(_mm256_sub_ps(s[g], vnmx)));
            psum = _mm256_add_ps(psum, p);
            _mm256_store_ps(P + m * KB + 8 * g, p);
        }
        st->l[m] = st->l[m] * alpha[m] + hsum256(psum);
        st->mx[m] = nmx;
    }
    if (any) update_outputs(st->O, qs, alpha, P, KB, 1, vrow, any, st->NC, st->tmask, nq, st->pf);
}

static void attn_key_major(const loom_attn_task *t) {
    km_state st;
    const int dh = t->d_head, NC = (dh + 7) / 8;
    st.t = t;
    st.NC = NC;
    st.qs = NC * 8;
    st.tmask = tail_mask(dh);
    __m256 scale = _mm256_set1_ps(t->scale);
    for (int m = 0; m < t->n_q; m++) {
        for (int c = 0; c < NC; c++) {
            __m256 q = c < NC - 1 ? _mm256_loadu_ps(t->q[m] + 8 * c) : _mm256_maskload_ps(t->q[m] + 8 * c, st.tmask);
            _mm256_store_ps(st.Q + m * st.qs + 8 * c, _mm256_mul_ps(q, scale));
            _mm256_store_ps(st.O + m * st.qs + 8 * c, _mm256_setzero_ps());
        }
        st.mx[m] = MASKED;
        st.l[m] = 0.0f;
    }
    int64_t min_lo, max_hi;
    lane_bounds(t, &min_lo, &max_hi);
    for (int s = 0; s < t->n_seg; s++) {
        const loom_attn_seg *g = &t->seg[s];
        int64_t first, last;
        seg_span(g, min_lo, max_hi, &first, &last);
        st.pf = loom_attn_prefetch_distance(g->stride, KB);
        for (int64_t j0 = first; j0 <= last; j0 += KB) {
            int nk = (int)(last - j0 + 1 < KB ? last - j0 + 1 : KB);
            const float *krow[KB], *vrow[KB];
            block_rows(krow, vrow, g, j0, nk);
            km_block(&st, krow, vrow, nk, g->pos0 + j0);
        }
    }
    write_outputs(t, st.O, st.qs, st.l, st.tmask);
}

void loom_attn_run_avx2(const loom_attn_task *t) {
    if (t->n_q <= KM_MAX_LANES) attn_key_major(t);
    else if (t->n_q <= 8) attn_lane_major8(t);
    else attn_lane_major16(t);
}
