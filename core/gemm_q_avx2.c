/* core/gemm_q_avx2.c — the int8 GEMM engine for CPUs with AVX2 but no AVX-512 (see gemm_int.h for why the
 * weights sit in registers and the activations are broadcast).
 *
 * Result per output, as the scalar reference defines it (dot_ref.c), up to f32 rounding and summation order:
 *   K-quants:  y = sum_g dx_g * ( d * sum_j sc_j * sum_{k in j} q_k a_k  -  dm * sum_j m_j * bs_j )
 *              Q4_K/Q5_K: dm = dmin, m_j = the sub-block mins, bs_j = sums of a over sub-block j (32 inputs)
 *              Q6_K:      q in 0..63, dm = 32 d, m_j = sc_j, bs_j over 16 inputs (the -32 offset moved out)
 *   32-blocks: y = sum_g (d * dx_g) * sum_k w_k a_k,  w signed (Q8_0 as stored, Q4_0 q - 8, Q5_0 q - 16)
 * The integer sums are exact: an s16 lane of vpmaddubsw holds two products (|q| <= 63, |a| <= 127, the
 * quantizer never emits -128), the K-quant kernels add at most 32767 / (2 * 127 * max q) of them in s16
 * before vpmaddwd takes them to int32 with the integer scale, and a group's int32 sum stays below 2^28 (Q6_K with
 * extreme scales: 63 * 128 * 127 * 256); above 2^24 its f32 conversion rounds, as any f32 sum would.
 */
#include <immintrin.h>
#include <string.h>

#include "core/gemm_int.h"
#include "core/matmul_int.h"

#define INLINE static inline __attribute__((always_inline))
#define TOK_K  6 /* tokens per K-quant register block: 12 s16 sums + 2 weight registers + 2 scratch (madd_step);
                  * the int32 group sums live on the stack, touched once per run of S steps */
#define TOK_B  4 /* tokens per 32-block register block: 8 int32 sums + |w|, w for 16 rows + ones + broadcast */

/* s16 steps (4 inputs each) before a K-quant sum must go to int32: floor(32767 / (2 * 127 * max q)). */
static int steps_of(loom_dtype wt) { return wt == LOOM_Q4_K ? 8 : wt == LOOM_Q5_K ? 4 : 2; }

/* ==== weight panels of 16 rows ====
 * K-quants, per group: q u8 [64 steps][16 rows][4], sc i32 [64 / S][16] (the sub-block scale of each run of S
 * steps as an int16 pair, S = steps_of), mp i32 [nsub / 2][16] (pairs m_j, m_j+1 as int16), d f32 [16],
 * dm f32 [16].  32-blocks, per group: w s8 [8 steps][16 rows][4], d f32 [16]. */
static int    nsub_of(const gemm_q_layout *L) { return QK_K / L->sub; }
static size_t group_bytes(const gemm_q_layout *L) {
    if (L->group != QK_K) return 8 * 64 + 64;
    return 64 * 64 + (size_t)(64 / steps_of(L->wt)) * 64 + (size_t)(nsub_of(L) / 2) * 64 + 2 * 64;
}

size_t gemm_q_avx2_panel_bytes(const gemm_q_layout *L, int64_t n_in) { return (size_t)(n_in / L->group) * group_bytes(L); }

/* Per group of row r: the weights as the kernels multiply them into q (G bytes), the integer scales into
 * sc[G / 16] (K-quants: one per 16 inputs, so Q4_K/Q5_K repeat each), mins into mn[], d and dm. */
typedef struct row_group {
    _Alignas(32) uint8_t q[QK_K];
    int sc[16], mn[16];
    float d, dm;
} row_group;

INLINE void unpack_row(const loom_dtype wt, const uint8_t *row, int64_t g, row_group *o) {
    const __m256i low4 = _mm256_set1_epi8(0x0F);
    switch (wt) {
    case LOOM_Q8_0: {
        const block_q8_0 *x = (const block_q8_0 *)row + g;
        o->d = _cvtsh_ss(x->d);
        memcpy(o->q, x->qs, QK8_0);
        return;
    }
    case LOOM_Q4_0: { /* q - 8, low nibbles first */
        const block_q4_0 *x = (const block_q4_0 *)row + g;
        o->d = _cvtsh_ss(x->d);
        const __m128i v = _mm_loadu_si128((const __m128i *)x->qs);
        const __m256i u = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(v, 4), v), low4);
        _mm256_store_si256((__m256i *)o->q, _mm256_sub_epi8(u, _mm256_set1_epi8(8)));
        return;
    }
    case LOOM_Q5_0: { /* q - 16, the fifth bit of value k in bit k of qh */
        const block_q5_0 *x = (const block_q5_0 *)row + g;
        o->d = _cvtsh_ss(x->d);
        uint32_t h;
        memcpy(&h, x->qh, 4);
        for (int k = 0; k < 16; k++) {
            o->q[k] = (uint8_t)(int8_t)((x->qs[k] & 0x0F) + (int)((h >> k) & 1) * 16 - 16);
            o->q[k + 16] = (uint8_t)(int8_t)((x->qs[k] >> 4) + (int)((h >> (k + 16)) & 1) * 16 - 16);
        }
        return;
    }
    case LOOM_Q6_K: {
        const block_q6_k *x = (const block_q6_k *)row + g;
        o->d = _cvtsh_ss(x->d);
        o->dm = 32.0f * o->d;
        for (int s = 0; s < 16; s++) o->sc[s] = o->mn[s] = x->scales[s];
        for (int h = 0; h < 2; h++) {
            const __m256i qh = _mm256_loadu_si256((const __m256i *)(x->qh + 32 * h));
            for (int kq = 0; kq < 4; kq++) {
                const __m256i ql = _mm256_loadu_si256((const __m256i *)(x->ql + 64 * h + 32 * (kq & 1)));
                const __m256i lo = kq < 2 ? _mm256_and_si256(ql, low4) : _mm256_and_si256(_mm256_srli_epi16(ql, 4), low4);
                const __m256i hi2 = _mm256_and_si256(_mm256_srli_epi16(qh, 2 * kq), _mm256_set1_epi8(3));
                _mm256_store_si256((__m256i *)(o->q + 128 * h + 32 * kq), _mm256_or_si256(lo, _mm256_slli_epi16(hi2, 4)));
            }
        }
        return;
    }
    default: { /* Q4_K, Q5_K */
        const int five = wt == LOOM_Q5_K;
        const block_q4_k *x4 = (const block_q4_k *)(row + (size_t)g * (five ? sizeof(block_q5_k) : sizeof(block_q4_k)));
        const uint8_t *qs = five ? ((const block_q5_k *)x4)->qs : x4->qs;
        uint32_t aux[4];
        mm_unpack_k4_scales(x4->scales, aux);
        const uint8_t *sc = (const uint8_t *)aux, *mn = sc + 8;
        o->d = _cvtsh_ss(x4->d);
        o->dm = _cvtsh_ss(x4->dmin);
#pragma GCC unroll 8
        for (int j = 0; j < 8; j++) o->sc[2 * j] = o->sc[2 * j + 1] = sc[j], o->mn[j] = mn[j];
        const __m256i qh = five ? _mm256_loadu_si256((const __m256i *)((const block_q5_k *)x4)->qh) : _mm256_setzero_si256();
        const __m256i sixteen = _mm256_set1_epi8(16);
        for (int jp = 0; jp < 4; jp++) {
            const __m256i v = _mm256_loadu_si256((const __m256i *)(qs + 32 * jp));
            __m256i lo = _mm256_and_si256(v, low4), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), low4);
            if (five) {
                const __m256i bl = _mm256_set1_epi8((char)(1 << (2 * jp))), bh = _mm256_set1_epi8((char)(1 << (2 * jp + 1)));
                lo = _mm256_add_epi8(lo, _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(qh, bl), bl), sixteen));
                hi = _mm256_add_epi8(hi, _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(qh, bh), bh), sixteen));
            }
            _mm256_store_si256((__m256i *)(o->q + 64 * jp), lo);
            _mm256_store_si256((__m256i *)(o->q + 64 * jp + 32), hi);
        }
        return;
    }
    }
}

/* Eight rows of 32 bytes (4-byte steps 0..7 of each) -> dst + 64 * s holds step s of the 8 rows: an 8 x 8
 * transpose of 32-bit elements. */
INLINE void transpose8x8_dwords(const uint8_t *const *src, uint8_t *dst) {
    __m256 r[8], t[8];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++) r[i] = _mm256_castsi256_ps(_mm256_load_si256((const __m256i *)src[i]));
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) {
        t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
#pragma GCC unroll 2
    for (int i = 0; i < 2; i++) {
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++) {
            const __m256 a = t[4 * i + h], b = t[4 * i + 2 + h];
            r[4 * i + 2 * h] = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(1, 0, 1, 0));
            r[4 * i + 2 * h + 1] = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(3, 2, 3, 2));
        }
    }
    /* r[0..3]: steps 0,1,2,3 of rows 0-3 (low lane: steps 0-3, high lane: steps 4-7); r[4..7]: rows 4-7 */
#pragma GCC unroll 4
    for (int s = 0; s < 4; s++) {
        _mm256_storeu_ps((float *)(dst + 64 * s), _mm256_permute2f128_ps(r[s], r[4 + s], 0x20));
        _mm256_storeu_ps((float *)(dst + 64 * (s + 4)), _mm256_permute2f128_ps(r[s], r[4 + s], 0x31));
    }
}

/* One panel for weight type wt (a constant in each caller, so unpack_row's switch and the layout arithmetic
 * fold away: with them at run time, and a division per row for the prefetch address, packing took 8.3 us per
 * 16 x 2048 Q4_K panel, a third of a 32-token routed expert's product). */
INLINE void pack_panel(const loom_dtype wt, const gemm_q_layout *L, const uint8_t *W, size_t row_bytes, int64_t n_in,
                       int nv, uint8_t *dst) {
    const int64_t ng = n_in / L->group;
    const size_t gb = group_bytes(L), grp_row_bytes = row_bytes / (size_t)ng;
    _Alignas(32) row_group rg[GEMM_RB];
    if (nv < GEMM_RB) memset(rg, 0, sizeof rg); /* rows past nv multiply as zeros; the others are overwritten */
    const int kq = wt == LOOM_Q4_K || wt == LOOM_Q5_K || wt == LOOM_Q6_K;
    const int steps = kq ? 64 : 8, S = kq ? steps_of(wt) : 0;
    for (int64_t g = 0; g < ng; g++) {
        uint8_t *grp = dst + (size_t)g * gb;
        for (int r = 0; r < nv; r++) {
            unpack_row(wt, W + (size_t)r * row_bytes, g, &rg[r]);
            /* the next panel's row (this thread's next call): rows are far apart for the hardware prefetcher */
            _mm_prefetch((const char *)(W + (size_t)(r + GEMM_RB) * row_bytes + (size_t)g * grp_row_bytes), _MM_HINT_T1);
        }
        /* [16 rows][G] -> [G / 4][16 rows][4], 8 rows x 8 steps at a time */
        for (int s0 = 0; s0 < steps; s0 += 8)
            for (int r0 = 0; r0 < GEMM_RB; r0 += 8) {
                const uint8_t *src[8];
#pragma GCC unroll 8
                for (int i = 0; i < 8; i++) src[i] = rg[r0 + i].q + 4 * s0;
                transpose8x8_dwords(src, grp + (size_t)s0 * 64 + (size_t)r0 * 4);
            }
        float *d = (float *)(grp + (size_t)steps * 64);
        if (!kq) {
            for (int r = 0; r < GEMM_RB; r++) d[r] = rg[r].d;
            continue;
        }
        int32_t *sc = (int32_t *)d;
        const int nrun = 64 / S, nsub = wt == LOOM_Q6_K ? 16 : 8;
        int32_t *mp = sc + nrun * 16;
        float *dd = (float *)(mp + (nsub / 2) * 16), *dm = dd + 16;
        for (int r = 0; r < GEMM_RB; r++) {
#pragma GCC unroll 32
            for (int u = 0; u < nrun; u++) {
                const int v = rg[r].sc[u * S / 4];
                sc[u * 16 + r] = gemm_pair16(v, v);
            }
            for (int p = 0; p < nsub / 2; p++) mp[p * 16 + r] = gemm_pair16(rg[r].mn[2 * p], rg[r].mn[2 * p + 1]);
            dd[r] = rg[r].d;
            dm[r] = rg[r].dm;
        }
    }
}

void gemm_q_avx2_pack_panel(const gemm_q_layout *L, const uint8_t *W, size_t row_bytes, int64_t n_in, int nv,
                            uint8_t *dst) {
    switch (L->wt) {
    case LOOM_Q8_0: pack_panel(LOOM_Q8_0, L, W, row_bytes, n_in, nv, dst); break;
    case LOOM_Q4_0: pack_panel(LOOM_Q4_0, L, W, row_bytes, n_in, nv, dst); break;
    case LOOM_Q5_0: pack_panel(LOOM_Q5_0, L, W, row_bytes, n_in, nv, dst); break;
    case LOOM_Q4_K: pack_panel(LOOM_Q4_K, L, W, row_bytes, n_in, nv, dst); break;
    case LOOM_Q5_K: pack_panel(LOOM_Q5_K, L, W, row_bytes, n_in, nv, dst); break;
    default: pack_panel(LOOM_Q6_K, L, W, row_bytes, n_in, nv, dst); break;
    }
}

/* ==== kernels: 16 rows x T tokens (T, S, nsub compile-time constants through the always-inline callers) ==== */

INLINE __m256i bcast4(const int8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}

/* s0 += maddubs(w0, a), s1 += maddubs(w1, a) with a = the 4 bytes at ap broadcast. In asm because GCC, given
 * the intrinsics, computes all of a step's products before adding any (and for 12 sums unrolled, reassociates
 * them into trees), which needs more than the 16 registers and puts the sums on the stack: 0.46 of the peak
 * against this form's (see docs/PERF.md). Two scratch registers per call leave 12 sums + 2 weights. */
INLINE void madd_step(__m256i *s0, __m256i *s1, __m256i w0, __m256i w1, const int8_t *ap) {
    __m256i b, p;
    __asm__("vpbroadcastd %[a], %[b]\n\t"
            "vpmaddubsw %[b], %[w0], %[p]\n\t"
            "vpaddw %[p], %[s0], %[s0]\n\t"
            "vpmaddubsw %[b], %[w1], %[b]\n\t"
            "vpaddw %[b], %[s1], %[s1]"
            : [s0] "+x"(*s0), [s1] "+x"(*s1), [b] "=&x"(b), [p] "=&x"(p)
            : [w0] "x"(w0), [w1] "x"(w1), [a] "m"(*(const int32_t *)(const void *)ap));
}

/* One K-quant group: I[t][h] = sum_j sc_j sum_{k in j} q_k a_k for token t and rows 8h..8h+7, from runs of S
 * steps summed in s16 (12 independent chains for T = 6) and taken to int32 by vpmaddwd with the run's scale. */
INLINE void kq_group(const int T, const int S, const uint8_t *grp, const int8_t *ag, int64_t n_in, __m256i I[][2]) {
    const __m256i *wq = (const __m256i *)grp;
    const __m256i *sc = (const __m256i *)(grp + 64 * 64);
    for (int u = 0; u < 64 / S; u++) {
        __m256i s[TOK_K][2];
#pragma GCC unroll 6
        for (int t = 0; t < T; t++) s[t][0] = s[t][1] = _mm256_setzero_si256();
#pragma GCC unroll 8
        for (int k = 0; k < S; k++) {
            const int step = u * S + k;
            const __m256i w0 = _mm256_load_si256(wq + 2 * step), w1 = _mm256_load_si256(wq + 2 * step + 1);
#pragma GCC unroll 6
            for (int t = 0; t < T; t++) madd_step(&s[t][0], &s[t][1], w0, w1, ag + t * n_in + 4 * step);
        }
        const __m256i c0 = _mm256_load_si256(sc + 2 * u), c1 = _mm256_load_si256(sc + 2 * u + 1);
#pragma GCC unroll 6
        for (int t = 0; t < T; t++) {
            I[t][0] = _mm256_add_epi32(I[t][0], _mm256_madd_epi16(s[t][0], c0));
            I[t][1] = _mm256_add_epi32(I[t][1], _mm256_madd_epi16(s[t][1], c1));
        }
    }
}

INLINE void store_rows(float *y, const __m256 lo, const __m256 hi, int ov) {
    if (ov >= 16) {
        _mm256_storeu_ps(y, lo);
        _mm256_storeu_ps(y + 8, hi);
        return;
    }
    _Alignas(32) float tmp[16];
    _mm256_store_ps(tmp, lo);
    _mm256_store_ps(tmp + 8, hi);
    memcpy(y, tmp, sizeof(float) * (size_t)ov);
}

typedef struct kargs {
    int64_t ng, n_in;
    const uint8_t *panel;
    size_t gb;
    const int8_t *a;           /* token 0's activation row; the others follow n_in apart */
    const float *const *dxp;   /* per token: dx of group 0 (the next group's is 16 floats on) */
    const int32_t *const *bsp; /* per token: its pair sums of group 0 (K-quants) */
    size_t bs_stride;          /* int32 between one group's pair sums and the next's */
    float *Y;
    size_t ldy;
    int ov;
} kargs;

INLINE void kq_block(const int T, const int S, const int npairs, const kargs *k) {
    __m256 F[TOK_K][2];
#pragma GCC unroll 6
    for (int t = 0; t < T; t++) F[t][0] = F[t][1] = _mm256_setzero_ps();
    for (int64_t g = 0; g < k->ng; g++) {
        const uint8_t *grp = k->panel + (size_t)g * k->gb;
        const int32_t *mp = (const int32_t *)(grp + 64 * 64 + (64 / S) * 64);
        const float *dd = (const float *)(mp + npairs * 16);
        __m256i I[TOK_K][2];
#pragma GCC unroll 6
        for (int t = 0; t < T; t++) I[t][0] = I[t][1] = _mm256_setzero_si256();
        kq_group(T, S, grp, k->a + g * QK_K, k->n_in, I);
        const __m256 d0 = _mm256_load_ps(dd), d1 = _mm256_load_ps(dd + 8);
        const __m256 m0 = _mm256_load_ps(dd + 16), m1 = _mm256_load_ps(dd + 24);
#pragma GCC unroll 6
        for (int t = 0; t < T; t++) {
            const int32_t *bs = k->bsp[t] + (size_t)g * k->bs_stride;
            __m256i n0 = _mm256_setzero_si256(), n1 = _mm256_setzero_si256();
#pragma GCC unroll 8
            for (int p = 0; p < npairs; p++) {
                const __m256i b = _mm256_set1_epi32(bs[16 * p]);
                n0 = _mm256_add_epi32(n0, _mm256_madd_epi16(_mm256_load_si256((const __m256i *)(mp + 16 * p)), b));
                n1 = _mm256_add_epi32(n1, _mm256_madd_epi16(_mm256_load_si256((const __m256i *)(mp + 16 * p + 8)), b));
            }
            const __m256 dx = _mm256_set1_ps(k->dxp[t][g * 16]);
            __m256 v0, v1;
            if (npairs == 8) { /* Q6_K: dm = 32 d, so the -32 offset cancels in int32, exactly (|I - 32 N| < 2^29) */
                v0 = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(I[t][0], _mm256_slli_epi32(n0, 5))), d0);
                v1 = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(I[t][1], _mm256_slli_epi32(n1, 5))), d1);
            } else {
                v0 = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(n0), m0, _mm256_mul_ps(_mm256_cvtepi32_ps(I[t][0]), d0));
                v1 = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(n1), m1, _mm256_mul_ps(_mm256_cvtepi32_ps(I[t][1]), d1));
            }
            F[t][0] = _mm256_fmadd_ps(v0, dx, F[t][0]);
            F[t][1] = _mm256_fmadd_ps(v1, dx, F[t][1]);
        }
    }
#pragma GCC unroll 6
    for (int t = 0; t < T; t++) store_rows(k->Y + (size_t)t * k->ldy, F[t][0], F[t][1], k->ov);
}

/* i0 += madd(maddubs(|w0|, sign(a, w0)), ones), the same for w1 into i1, a = the 4 bytes at ap broadcast. In
 * asm for the reason madd_step is: 8 sums + 4 weight registers + ones + 2 scratch = 15 registers. */
INLINE void sign_step(__m256i *i0, __m256i *i1, __m256i w0, __m256i w1, __m256i aw0, __m256i aw1, __m256i ones,
                      const int8_t *ap) {
    __m256i b, p;
    __asm__("vpbroadcastd %[a], %[b]\n\t"
            "vpsignb %[w0], %[b], %[p]\n\t"
            "vpmaddubsw %[p], %[aw0], %[p]\n\t"
            "vpmaddwd %[ones], %[p], %[p]\n\t"
            "vpaddd %[p], %[i0], %[i0]\n\t"
            "vpsignb %[w1], %[b], %[b]\n\t"
            "vpmaddubsw %[b], %[aw1], %[b]\n\t"
            "vpmaddwd %[ones], %[b], %[b]\n\t"
            "vpaddd %[b], %[i1], %[i1]"
            : [i0] "+x"(*i0), [i1] "+x"(*i1), [b] "=&x"(b), [p] "=&x"(p)
            : [w0] "x"(w0), [w1] "x"(w1), [aw0] "x"(aw0), [aw1] "x"(aw1), [ones] "x"(ones),
              [a] "m"(*(const int32_t *)(const void *)ap));
}

/* 32-blocks: per step |w| (u8) x sign(w)·a (s8) by vpmaddubsw, then vpmaddwd with ones to int32 at once (one
 * product pair can already reach 2 * 128 * 127). */
INLINE void b32_block(const int T, const kargs *k) {
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 F[TOK_B][2];
#pragma GCC unroll 4
    for (int t = 0; t < T; t++) F[t][0] = F[t][1] = _mm256_setzero_ps();
    for (int64_t g = 0; g < k->ng; g++) {
        const uint8_t *grp = k->panel + (size_t)g * (8 * 64 + 64);
        const int8_t *ag = k->a + g * QK8_0;
        __m256i I[TOK_B][2];
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) I[t][0] = I[t][1] = _mm256_setzero_si256();
#pragma GCC unroll 8
        for (int s = 0; s < 8; s++) {
            const __m256i w0 = _mm256_load_si256((const __m256i *)(grp + 64 * s));
            const __m256i w1 = _mm256_load_si256((const __m256i *)(grp + 64 * s + 32));
            const __m256i a0 = _mm256_abs_epi8(w0), a1 = _mm256_abs_epi8(w1);
#pragma GCC unroll 4
            for (int t = 0; t < T; t++) sign_step(&I[t][0], &I[t][1], w0, w1, a0, a1, ones, ag + t * k->n_in + 4 * s);
        }
        const __m256 d0 = _mm256_load_ps((const float *)(grp + 8 * 64)), d1 = _mm256_load_ps((const float *)(grp + 8 * 64 + 32));
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) {
            const __m256 dx = _mm256_set1_ps(k->dxp[t][g * 16]);
            F[t][0] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(I[t][0]), _mm256_mul_ps(d0, dx), F[t][0]);
            F[t][1] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(I[t][1]), _mm256_mul_ps(d1, dx), F[t][1]);
        }
    }
#pragma GCC unroll 4
    for (int t = 0; t < T; t++) store_rows(k->Y + (size_t)t * k->ldy, F[t][0], F[t][1], k->ov);
}

/* One function per (layout, token count), so every loop bound the kernels unroll is a constant. */
#define KQ_FUNCS(NAME, S, NP)                                                                                  \
    static void NAME(int T, const kargs *k) {                                                                  \
        switch (T) {                                                                                           \
        case 1: kq_block(1, S, NP, k); break;                                                                  \
        case 2: kq_block(2, S, NP, k); break;                                                                  \
        case 3: kq_block(3, S, NP, k); break;                                                                  \
        case 4: kq_block(4, S, NP, k); break;                                                                  \
        case 5: kq_block(5, S, NP, k); break;                                                                  \
        default: kq_block(TOK_K, S, NP, k); break;                                                             \
        }                                                                                                      \
    }
_Static_assert(TOK_K == 6, "the switch above covers 1 .. TOK_K");
KQ_FUNCS(kq_q4k, 8, 4)
KQ_FUNCS(kq_q5k, 4, 4)
KQ_FUNCS(kq_q6k, 2, 8)

static void b32(int T, const kargs *k) {
    switch (T) {
    case 1: b32_block(1, k); break;
    case 2: b32_block(2, k); break;
    case 3: b32_block(3, k); break;
    default: b32_block(4, k); break;
    }
}

void gemm_q_avx2_panel(const gemm_q_layout *L, int64_t n_in, const uint8_t *panel, const gemm_q_act *A, int64_t tb0,
                       int64_t n_tb, int64_t n_tokv, float *Y, size_t ldy, int ov, float *F) {
    (void)n_tb;
    (void)F;
    const int64_t ng = n_in / L->group;
    const bool kq = L->group == QK_K;
    void (*fn)(int, const kargs *) = !kq ? b32 : L->wt == LOOM_Q4_K ? kq_q4k : L->wt == LOOM_Q5_K ? kq_q5k : kq_q6k;
    const int tok = kq ? TOK_K : TOK_B;
    kargs k = {.ng = ng, .n_in = n_in, .panel = panel, .gb = group_bytes(L), .ldy = ldy, .ov = ov,
               .bs_stride = L->sub == 16 ? 128 : 64};
    /* per token: its dx and pair sums, which live in its 16-token block's meta (see gemm_q_act.c) */
    const size_t bs_off = (size_t)ng * 16 * sizeof(float) + (kq && L->sub == 16 ? (size_t)ng * 64 * 4 : 0);
    const float *dxp[TOK_K];
    const int32_t *bsp[TOK_K];
    k.dxp = dxp;
    k.bsp = bsp;
    for (int64_t u = 0; u < n_tokv; u += tok) {
        const int T = (int)(n_tokv - u < tok ? n_tokv - u : tok);
        for (int t = 0; t < T; t++) {
            const int64_t tk = tb0 * GEMM_TB + u + t;
            const uint8_t *meta = A->meta + (size_t)(tk / GEMM_TB) * A->meta_bytes;
            dxp[t] = (const float *)meta + tk % GEMM_TB;
            bsp[t] = (const int32_t *)(meta + bs_off) + tk % GEMM_TB;
        }
        k.a = (const int8_t *)A->tiles + (size_t)(tb0 * GEMM_TB + u) * (size_t)n_in; /* token rows are contiguous */
        k.Y = Y + (size_t)u * ldy;
        fn(T, &k);
    }
}
