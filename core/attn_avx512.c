/* core/attn_avx512.c — AVX-512 fused attention (see attn.h), compiled with -mavx512f/dq. Any d_head up to 256
 * (a partial last 16-float chunk is read and written with masks). Keys go in blocks of 16; two ways to score
 * a block, chosen by the number of query lanes:
 *
 *  - lane-major (many lanes: prefill, the ViT): the queries sit in the lanes of a register, and the scores of
 *    one key against all of them are one zmm, sum_d k[d] * Qt[d] with Q transposed once per task; no
 *    horizontal reductions, but 16 - n_q idle lanes in every FMA;
 *  - key-major (few lanes: decode, where a GQA group of 4-5 query heads shares a KV head): each dot product
 *    runs along d_head in 16-wide chunks and is then reduced horizontally, 16 keys at once.
 *
 * Both then run the online softmax and add p[m][j] v[j] into the outputs with the same value tiles, in which
 * each chunk of a value row loaded serves several lanes.
 */
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "core/attn.h"
#include "core/attn_prefetch.h"
#include "core/exp_avx512.h"

#define MASKED (-1e30f)
#define KB 16 /* keys per block */
#define TILE_LANES 6 /* lanes per value (and key-major score) tile: 4 x 6 accumulators fit the 32 registers */

/* o[m] = o[m] * alpha[m] + sum_j p[m][j] v[j] for NQ lanes over the CC chunks from c0, for the keys j in the
 * bit set keys, with p[m][j] at P[m * psm + j * psj]: each value chunk loaded serves NQ lanes. A key outside
 * one lane's range but inside another's has p 0 there and adds 0 * v, exact for the finite rows a KV cache
 * holds; keys no lane sees (rows possibly never written) are skipped. */
static inline __attribute__((always_inline)) void update_tile(float *O, int qs, const float *alpha, const float *P,
                                                              int psm, int psj, const float *const *vrows,
                                                              uint32_t keys, const __mmask16 *cmask, int c0,
                                                              int CC, int NQ, int whole, ptrdiff_t pf) {
    __m512 acc[TILE_LANES][8];
    __mmask16 mk[8];
#pragma GCC unroll 8
    for (int c = 0; c < CC; c++) mk[c] = cmask[c0 + c];
#pragma GCC unroll 8
    for (int m = 0; m < NQ; m++) {
        __m512 a = _mm512_set1_ps(alpha[m]);
#pragma GCC unroll 8
        for (int c = 0; c < CC; c++) acc[m][c] = _mm512_mul_ps(_mm512_load_ps(O + m * qs + 16 * (c0 + c)), a);
    }
    for (; keys; keys &= keys - 1) {
        int j = __builtin_ctz(keys);
        __m512 v[8];
#pragma GCC unroll 8
        for (int c = 0; c < CC; c++) { /* plain loads where the tile holds no partial chunk: they fuse with the FMA */
            const float *v16 = vrows[j] + 16 * (c0 + c);
            v[c] = whole ? _mm512_loadu_ps(v16) : _mm512_maskz_loadu_ps(mk[c], v16);
            loom_attn_prefetch_ahead(v16, pf);
        }
#pragma GCC unroll 8
        for (int m = 0; m < NQ; m++) {
            __m512 p = _mm512_set1_ps(P[m * psm + j * psj]);
#pragma GCC unroll 8
            for (int c = 0; c < CC; c++) acc[m][c] = _mm512_fmadd_ps(p, v[c], acc[m][c]);
        }
    }
#pragma GCC unroll 8
    for (int m = 0; m < NQ; m++)
#pragma GCC unroll 8
        for (int c = 0; c < CC; c++) _mm512_store_ps(O + m * qs + 16 * (c0 + c), acc[m][c]);
}

/* update_tile over all chunks (whole tiles: O and cmask cover NC rounded up to 8) for nq <= TILE_LANES lanes. */
static void update_lanes(float *O, int qs, const float *alpha, const float *P, int psm, int psj,
                         const float *const *vrows, uint32_t keys, const __mmask16 *cmask, int NC, int nq,
                         ptrdiff_t pf) {
    /* whole is a constant in each call, so that the tiles without a partial chunk get plain loads */
#define UPDATE_TILES(CC, NQ)                                                                                       \
    for (int c0 = 0; c0 < NC; c0 += CC) {                                                                          \
        if (cmask[c0 + CC - 1] == 0xFFFF) update_tile(O, qs, alpha, P, psm, psj, vrows, keys, cmask, c0, CC, NQ, 1, pf); \
        else update_tile(O, qs, alpha, P, psm, psj, vrows, keys, cmask, c0, CC, NQ, 0, pf);                       \
    }
    switch (nq) {
    /* 8 chunks for 1-2 lanes (enough independent FMA chains) unless the rows are short */
    case 1:
        if (NC > 4) {
            UPDATE_TILES(8, 1);
        } else {
            UPDATE_TILES(4, 1);
        }
        break;
    case 2:
        if (NC > 4) {
            UPDATE_TILES(8, 2);
        } else {
            UPDATE_TILES(4, 2);
        }
        break;
    case 3: UPDATE_TILES(4, 3); break;
    case 4: UPDATE_TILES(4, 4); break;
    case 5: UPDATE_TILES(4, 5); break;
    default: UPDATE_TILES(4, 6); break;
    }
#undef UPDATE_TILES
}

/* Per-chunk load masks of a row of d_head floats: whole chunks, the partial tail, then nothing (the padding
 * that lets value tiles of up to 8 chunks run whole). */
static void chunk_masks(__mmask16 *cmask, int n, int dh) {
    int NC = (dh + 15) / 16;
    __mmask16 tail = dh % 16 ? (__mmask16)((1u << (dh % 16)) - 1) : (__mmask16)0xFFFF;
    for (int c = 0; c < n; c++) cmask[c] = c < NC - 1 ? (__mmask16)0xFFFF : c == NC - 1 ? tail : 0;
}

/* o[m] = O[m] / l[m] (0 for a lane that saw no key). */
static void write_outputs(const loom_attn_task *t, const float *O, int qs, const float *l, const __mmask16 *cmask) {
    for (int m = 0; m < t->n_q; m++) {
        __m512 inv = _mm512_set1_ps(l[m] > 0.0f ? 1.0f / l[m] : 0.0f);
        for (int c = 0; c < (t->d_head + 15) / 16; c++)
            _mm512_mask_storeu_ps(t->out[m] + 16 * c, cmask[c],
                                  _mm512_mul_ps(_mm512_load_ps(O + m * qs + 16 * c), inv));
    }
}

/* The key and value rows of the block of nk keys from row j0 of segment g. A short block repeats its last
 * row up to KB, so that score tiles of 4 or 8 keys run whole (the extra scores are masked). */
static void block_rows(const float **krow, const float **vrow, const loom_attn_seg *g, int64_t j0, int nk) {
    for (int j = 0; j < KB; j++) {
        int64_t r = j0 + (j < nk ? j : nk - 1);
        krow[j] = g->k + r * g->stride;
        vrow[j] = g->v + r * g->stride;
    }
}

/* Scores of the keys krow[0..8) against the transposed queries Qt ([dh][16]): sc[i] lane m = Q[m]·krow[i].
 * Eight keys share each Qt[d] load and give the eight independent FMA chains the latency needs. */
static inline void lane_major_scores8(__m512 *sc, const float *const *krow, const float *Qt, int dh) {
    __m512 s[8];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++) s[i] = _mm512_setzero_ps();
    for (int d = 0; d < dh; d++) {
        __m512 qd = _mm512_load_ps(Qt + d * 16);
#pragma GCC unroll 8
        for (int i = 0; i < 8; i++) s[i] = _mm512_fmadd_ps(_mm512_set1_ps(krow[i][d]), qd, s[i]);
    }
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++) sc[i] = s[i];
}

/* pos - base clamped to int32 (the keys scanned lie within [base, base + 2^31): their own rows are in memory) */
static inline int32_t rel_pos(int64_t pos, int64_t base) {
    int64_t r = pos - base;
    return r < INT32_MIN ? INT32_MIN : r > INT32_MAX ? INT32_MAX : (int32_t)r;
}

/* Many query lanes (prefill, the ViT): the lanes of one register are the queries. */
static void attn_lane_major(const loom_attn_task *t) {
    const int dh = t->d_head, nq = t->n_q, qs = (dh + 127) / 128 * 128;
    const int n_pass = (nq + TILE_LANES - 1) / TILE_LANES, per_pass = (nq + n_pass - 1) / n_pass;
    __mmask16 cmask[16];
    chunk_masks(cmask, 16, dh);
    _Alignas(64) float Qt[256 * 16]; /* [dh][16] scaled queries, lane m = query m */
    _Alignas(64) float O[16 * 256];  /* [n_q][qs] unnormalised outputs */
    _Alignas(64) float P[KB * 16];   /* [key][lane] block probabilities */
    _Alignas(64) float alpha[16];
    if (nq < 16) memset(Qt, 0, sizeof(float) * (size_t)dh * 16);
    memset(O, 0, sizeof(float) * (size_t)nq * qs);
    for (int m = 0; m < nq; m++)
        for (int d = 0; d < dh; d++) Qt[d * 16 + m] = t->q[m][d] * t->scale;
    int64_t min_lo = INT64_MAX, max_hi = INT64_MIN;
    for (int m = 0; m < nq; m++) {
        if (t->lo[m] < min_lo) min_lo = t->lo[m];
        if (t->hi[m] > max_hi) max_hi = t->hi[m];
    }
    /* positions relative to min_lo fit the 32-bit lanes whatever the context length */
    int32_t lo[16], hi[16];
    for (int m = 0; m < 16; m++) {
        lo[m] = m < nq ? rel_pos(t->lo[m], min_lo) : INT32_MAX; /* lanes past n_q: an empty range */
        hi[m] = m < nq ? rel_pos(t->hi[m], min_lo) : INT32_MIN;
    }
    __m512i vlo = _mm512_loadu_si512(lo), vhi = _mm512_loadu_si512(hi);
    __m512 mx = _mm512_set1_ps(MASKED), l = _mm512_setzero_ps();

    for (int s = 0; s < t->n_seg; s++) {
        const loom_attn_seg *g = &t->seg[s];
        int64_t first = g->pos0 > min_lo ? 0 : min_lo - g->pos0;
        int64_t last = g->pos0 + g->n - 1 < max_hi ? g->n - 1 : max_hi - g->pos0;
        for (int64_t j0 = first; j0 <= last; j0 += KB) {
            int nk = (int)(last - j0 + 1 < KB ? last - j0 + 1 : KB);
            const float *krow[KB], *vrows[KB];
            block_rows(krow, vrows, g, j0, nk);
            __m512 sc[KB];
            for (int j = 0; j < nk; j += 8) lane_major_scores8(sc + j, krow + j, Qt, dh);
            /* mask and block max, lane-wise */
            __mmask16 vis[KB];
            uint32_t keys = 0; /* the keys some lane sees */
            __m512 bmax = _mm512_set1_ps(MASKED);
            for (int j = 0; j < nk; j++) {
                __m512i pos = _mm512_set1_epi32(rel_pos(g->pos0 + j0 + j, min_lo));
                vis[j] = _mm512_cmple_epi32_mask(vlo, pos) & _mm512_cmple_epi32_mask(pos, vhi);
                keys |= (uint32_t)(vis[j] != 0) << j;
                sc[j] = _mm512_mask_blend_ps(vis[j], _mm512_set1_ps(MASKED), sc[j]);
                bmax = _mm512_max_ps(bmax, sc[j]);
            }
            __m512 nmx = _mm512_max_ps(mx, bmax);
            __m512 a = exp512(_mm512_sub_ps(mx, nmx));
            __m512 psum = _mm512_setzero_ps();
            for (int j = 0; j < nk; j++) {
                __m512 p = _mm512_maskz_mov_ps(vis[j], exp512(_mm512_sub_ps(sc[j], nmx)));
                psum = _mm512_add_ps(psum, p);
                _mm512_store_ps(P + j * 16, p);
            }
            l = _mm512_fmadd_ps(l, a, psum);
            mx = nmx;
            _mm512_store_ps(alpha, a);
            for (int m0 = 0; m0 < nq; m0 += per_pass)
                update_lanes(O + m0 * qs, qs, alpha + m0, P + m0, 1, 16, vrows, keys, cmask, (dh + 15) / 16,
                             nq - m0 < per_pass ? nq - m0 : per_pass, 0);
        }
    }
    _Alignas(64) float lsum[16];
    _mm512_store_ps(lsum, l);
    write_outputs(t, O, qs, lsum, cmask);
}

/* ---- few query lanes (decode): key-major dot products ----
 * With n_q queries in the lanes, 16 - n_q of every lane-major FMA's lanes are idle: at n_q = 5 (a Llama 4 GQA
 * group in decode) the scores cost 16/5 times the useful work. Here the 16 partial sums of each dot product
 * are reduced through a transpose tree, 16 keys at once, so that the online softmax of a lane works on a
 * vector of 16 keys. */

#define KM_MAX_LANES 8  /* n_q up to this takes the key-major path (crossover measured on Sapphire Rapids) */

/* Per 128-bit lane L, the sums of a, b, c, d's four elements there: [sum a_L, sum b_L, sum c_L, sum d_L]. */
static inline __m512 hsum4_per_lane(__m512 a, __m512 b, __m512 c, __m512 d) {
    __m512 ab = _mm512_add_ps(_mm512_unpacklo_ps(a, b), _mm512_unpackhi_ps(a, b)); /* a0+a2 b0+b2 a1+a3 b1+b3 */
    __m512 cd = _mm512_add_ps(_mm512_unpacklo_ps(c, d), _mm512_unpackhi_ps(c, d));
    __m512d lo = _mm512_unpacklo_pd(_mm512_castps_pd(ab), _mm512_castps_pd(cd));
    __m512d hi = _mm512_unpackhi_pd(_mm512_castps_pd(ab), _mm512_castps_pd(cd));
    return _mm512_add_ps(_mm512_castpd_ps(lo), _mm512_castpd_ps(hi));
}

/* Completes 16 horizontal sums: w[g] = hsum4_per_lane of vectors 4g..4g+3; lane i of the result is the sum of
 * vector i. */
static inline __m512 hsum16_finish(const __m512 *w) {
    /* macros, not const ints: the shuffle control must be an immediate at -O0 too */
#define EVEN _MM_SHUFFLE(2, 0, 2, 0)
#define ODD  _MM_SHUFFLE(3, 1, 3, 1)
    __m512 x01 = _mm512_add_ps(_mm512_shuffle_f32x4(w[0], w[1], EVEN), _mm512_shuffle_f32x4(w[0], w[1], ODD));
    __m512 x23 = _mm512_add_ps(_mm512_shuffle_f32x4(w[2], w[3], EVEN), _mm512_shuffle_f32x4(w[2], w[3], ODD));
    return _mm512_add_ps(_mm512_shuffle_f32x4(x01, x23, EVEN), _mm512_shuffle_f32x4(x01, x23, ODD));
#undef EVEN
#undef ODD
}

/* One 16-float chunk of a KG keys x NQ queries dot-product tile: each key chunk loaded serves NQ queries and
 * each query chunk KG keys. */
static inline __attribute__((always_inline)) void dot_tile_chunk(__m512 acc[8][TILE_LANES],
                                                                 const float *const *krow, const float *Q, int qs,
                                                                 int c, __mmask16 mk, int KG, int NQ, ptrdiff_t pf) {
    __m512 k[8];
#pragma GCC unroll 8
    for (int i = 0; i < KG; i++) {
        k[i] = _mm512_maskz_loadu_ps(mk, krow[i] + 16 * c);
        loom_attn_prefetch_ahead(krow[i] + 16 * c, pf);
    }
#pragma GCC unroll 8
    for (int m = 0; m < NQ; m++) {
        __m512 q = _mm512_load_ps(Q + m * qs + 16 * c);
#pragma GCC unroll 8
        for (int i = 0; i < KG; i++) acc[i][m] = _mm512_fmadd_ps(k[i], q, acc[i][m]);
    }
}

/* Dot products of the keys krow[0..KG) with the queries Q[0..NQ) (rows qs floats apart, zero beyond d_head),
 * left as per-128-bit-lane partial sums: W[m * 4 + i / 4] = hsum4_per_lane of keys i..i+3 for query m.
 * KG and NQ are constants at every call, so acc lives in registers. */
static inline __attribute__((always_inline)) void dot_tile(__m512 *W, const float *const *krow, const float *Q,
                                                           int qs, int NC, __mmask16 tail, int KG, int NQ,
                                                           ptrdiff_t pf) {
    __m512 acc[8][TILE_LANES];
#pragma GCC unroll 8
    for (int i = 0; i < KG; i++)
#pragma GCC unroll 8
        for (int m = 0; m < NQ; m++) acc[i][m] = _mm512_setzero_ps();
    for (int c = 0; c < NC - 1; c++) dot_tile_chunk(acc, krow, Q, qs, c, (__mmask16)0xFFFF, KG, NQ, pf);
    dot_tile_chunk(acc, krow, Q, qs, NC - 1, tail, KG, NQ, pf); /* never read past a row */
#pragma GCC unroll 8
    for (int m = 0; m < NQ; m++)
#pragma GCC unroll 8
        for (int i = 0; i < KG; i += 4)
            W[m * 4 + i / 4] = hsum4_per_lane(acc[i][m], acc[i + 1][m], acc[i + 2][m], acc[i + 3][m]);
}

/* The scores of key rows krow[0..nk) against nq <= TILE_LANES queries: lane j of sc[m] = Q[m]·krow[j]
 * (lanes from nk on hold junk or 0; krow must be valid up to nk rounded up to the tile). */
static void block_scores(__m512 *sc, const float *const *krow, const float *Q, int qs, int nq, int nk, int NC,
                         __mmask16 tail, ptrdiff_t pf) {
    __m512 W[TILE_LANES * 4];
    for (int i = 0; i < nq * 4; i++) W[i] = _mm512_setzero_ps();
    /* 8 keys per tile for 1-2 queries: the FMA latency needs 8+ independent accumulators */
#define DOT_TILES(KG, NQ)                                                                                          \
    for (int j = 0; j < nk; j += KG) dot_tile(W + j / 4, krow + j, Q, qs, NC, tail, KG, NQ, pf)
    switch (nq) {
    case 1: DOT_TILES(8, 1); break;
    case 2: DOT_TILES(8, 2); break;
    case 3: DOT_TILES(4, 3); break;
    case 4: DOT_TILES(4, 4); break;
    case 5: DOT_TILES(4, 5); break;
    default: DOT_TILES(4, 6); break;
    }
#undef DOT_TILES
    for (int m = 0; m < nq; m++) sc[m] = hsum16_finish(W + m * 4);
}

/* Lanes j < nk of the 16-key block at positions bpos.. that lie in [lo, hi] (64-bit: no position limit). */
static inline __mmask16 visible_keys(int64_t lo, int64_t hi, int64_t bpos, int nk) {
    int64_t a = lo - bpos, b = hi - bpos;
    if (a < 0) a = 0;
    if (b > nk - 1) b = nk - 1;
    if (a > b) return 0;
    return (__mmask16)(((2u << b) - 1) & ~((1u << a) - 1));
}

/* The online softmax of one lane over one block with at least one visible key: folds the scores s into the
 * running max *mx and sum *l, sets *alpha to the factor that rescales the earlier keys' output, and returns
 * the block's probabilities (0 where masked). */
static inline __m512 softmax_block(__m512 s, __mmask16 vis, float *mx, float *l, float *alpha) {
    float bmax = _mm512_mask_reduce_max_ps(vis, s), nmx = bmax > *mx ? bmax : *mx;
    *alpha = nmx > *mx ? _mm512_cvtss_f32(exp512(_mm512_set1_ps(*mx - nmx))) : 1.0f;
    __m512 p = _mm512_maskz_mov_ps(vis, exp512(_mm512_sub_ps(s, _mm512_set1_ps(nmx))));
    *l = *l * *alpha + _mm512_reduce_add_ps(p);
    *mx = nmx;
    return p;
}

/* State of the key-major path across the blocks of one task. */
typedef struct km_state {
    const loom_attn_task *t;
    int      NC, qs, per_pass;   /* chunks of 16 per row, floats per lane in Q and O, lanes per tile pass */
    ptrdiff_t pf;                /* the current segment's prefetch distance (attn_prefetch.h) */
    __mmask16 tail;
    __mmask16 cmask[16];         /* see chunk_masks */
    float    mx[KM_MAX_LANES], l[KM_MAX_LANES];
    _Alignas(64) float Q[KM_MAX_LANES * 256]; /* [n_q][qs] scaled queries, zero beyond d_head */
    _Alignas(64) float O[KM_MAX_LANES * 256]; /* [n_q][qs] unnormalised outputs */
} km_state;

/* Keys krow/vrow[0..nk) (nk <= 16) at positions bpos..: scores, online softmax, output update. */
static void km_block(km_state *st, const float *const *krow, const float *const *vrow, int nk, int64_t bpos) {
    const loom_attn_task *t = st->t;
    const int nq = t->n_q, qs = st->qs, pp = st->per_pass;
    __m512 sc[KM_MAX_LANES];
    for (int m0 = 0; m0 < nq; m0 += pp)
        block_scores(sc + m0, krow, st->Q + m0 * qs, qs, nq - m0 < pp ? nq - m0 : pp, nk, st->NC, st->tail, st->pf);
    _Alignas(64) float P[KM_MAX_LANES * 16]; /* [n_q][16] */
    float alpha[KM_MAX_LANES];
    uint32_t any = 0;
    for (int m = 0; m < nq; m++) {
        __mmask16 vis = visible_keys(t->lo[m], t->hi[m], bpos, nk);
        any |= vis;
        alpha[m] = 1.0f;
        __m512 p = vis ? softmax_block(sc[m], vis, &st->mx[m], &st->l[m], &alpha[m]) : _mm512_setzero_ps();
        _mm512_store_ps(P + m * 16, p);
    }
    for (int m0 = 0; m0 < nq && any; m0 += pp)
        update_lanes(st->O + m0 * qs, qs, alpha + m0, P + m0 * 16, 16, 1, vrow, any, st->cmask, st->NC,
                     nq - m0 < pp ? nq - m0 : pp, st->pf);
}

static void km_init(km_state *st, const loom_attn_task *t) {
    const int dh = t->d_head, NC = (dh + 15) / 16;
    st->t = t;
    st->NC = NC;
    st->qs = (NC + 7) / 8 * 128; /* room for whole update tiles of up to 8 chunks */
    chunk_masks(st->cmask, 16, dh);
    st->tail = st->cmask[NC - 1];
    /* score passes of at most TILE_LANES lanes, balanced (7 -> 4 + 3) */
    int n_pass = (t->n_q + TILE_LANES - 1) / TILE_LANES;
    st->per_pass = (t->n_q + n_pass - 1) / n_pass;
    __m512 scale = _mm512_set1_ps(t->scale);
    for (int m = 0; m < t->n_q; m++) {
        for (int c = 0; c < st->qs / 16; c++) {
            __m512 q = _mm512_maskz_loadu_ps(st->cmask[c], t->q[m] + 16 * c);
            _mm512_store_ps(st->Q + m * st->qs + 16 * c, _mm512_mul_ps(q, scale));
            _mm512_store_ps(st->O + m * st->qs + 16 * c, _mm512_setzero_ps());
        }
        st->mx[m] = MASKED;
        st->l[m] = 0.0f;
    }
}

static void attn_key_major(const loom_attn_task *t) {
    km_state st;
    km_init(&st, t);
    int64_t min_lo = INT64_MAX, max_hi = INT64_MIN;
    for (int m = 0; m < t->n_q; m++) {
        if (t->lo[m] < min_lo) min_lo = t->lo[m];
        if (t->hi[m] > max_hi) max_hi = t->hi[m];
    }
    for (int s = 0; s < t->n_seg; s++) {
        const loom_attn_seg *g = &t->seg[s];
        int64_t first = g->pos0 > min_lo ? 0 : min_lo - g->pos0;
        int64_t last = g->pos0 + g->n - 1 < max_hi ? g->n - 1 : max_hi - g->pos0;
        st.pf = loom_attn_prefetch_distance(g->stride, KB);
        for (int64_t j0 = first; j0 <= last; j0 += KB) {
            int nk = (int)(last - j0 + 1 < KB ? last - j0 + 1 : KB);
            const float *krow[KB], *vrow[KB];
            block_rows(krow, vrow, g, j0, nk);
            km_block(&st, krow, vrow, nk, g->pos0 + j0);
        }
    }
    write_outputs(t, st.O, st.qs, st.l, st.cmask);
}

void loom_attn_run_avx512(const loom_attn_task *t) {
    if (t->n_q <= KM_MAX_LANES) attn_key_major(t);
    else attn_lane_major(t);
}
