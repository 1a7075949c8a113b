/* core/gemm_vnni_avx512.c — the int8 GEMM engine for CPUs with AVX-512 VNNI but no AMX (see gemm_int.h for the
 * layouts and why the weights, not the activations, sit in registers).
 *
 * Result per output, as the scalar reference defines it (dot_ref.c), up to f32 rounding and summation order:
 *   K-quants:  y = sum_g dx_g * ( sum_j (d*sc_j) * sum_{k in j} q_k a_k  -  dm * sum_j m_j * bs_j )
 *              Q4_K/Q5_K: dm = dmin, m_j = the sub-block mins, bs_j = sums of a over sub-block j (32 inputs)
 *              Q6_K:      dm = 32 d, m_j = sc_j, bs_j over 16 inputs (the -32 offset of q moved out)
 *   32-blocks: y = sum_g (d*dx_g) * ( sum_k (w_k + 128) a_k  -  128 * sum_k a_k )
 * Every integer sum is exact in int32 (|q a| <= 63 * 128, at most 256 terms per accumulator).
 */
#include <immintrin.h>
#include <string.h>

#include "core/gemm_int.h"
#include "core/matmul_int.h"
#include "core/tr16_avx512.h"

#define INLINE static inline __attribute__((always_inline))
#define TOK    12 /* tokens per register block: 12 int32 + 12 f32 accumulators of 16 rows */

/* ==== weight panels of 16 rows ====
 * K-quants, per group: q u8 [64][16 rows][4], dsc f32 [nsub][16] (d * (sc_j - sc_j+1), see kq_block),
 * mp i32 [nsub / 2][16] (pairs of m_j as int16), dm f32 [16].  32-blocks, per group: q u8 [8][16][4] (w + 128), d f32 [16]. */
static int    nsub_of(const gemm_q_layout *L) { return QK_K / L->sub; }
static size_t group_bytes(const gemm_q_layout *L) {
    if (L->group != QK_K) return 8 * 64 + 64;
    const int ns = nsub_of(L);
    return 64 * 64 + (size_t)ns * 64 + (size_t)(ns / 2) * 64 + 64;
}

size_t gemm_q_vnni_panel_bytes(const gemm_q_layout *L, int64_t n_in) { return (size_t)(n_in / L->group) * group_bytes(L); }

/* Row r's integer weights of one group (u8, G of them) into q[r], and its scales into the group's metadata. */
static void unpack_row(const gemm_q_layout *L, const uint8_t *row, int64_t g, int r, uint8_t q[QK_K], uint8_t *grp) {
    const __m256i low4 = _mm256_set1_epi8(0x0F);
    if (L->group != QK_K) {
        float *d = (float *)(grp + 8 * 64);
        switch (L->wt) {
        case LOOM_Q8_0: {
            const block_q8_0 *x = (const block_q8_0 *)row + g;
            d[r] = _cvtsh_ss(x->d);
            __m256i v = _mm256_loadu_si256((const __m256i *)x->qs);
            _mm256_storeu_si256((__m256i *)q, _mm256_xor_si256(v, _mm256_set1_epi8((char)0x80)));
            break;
        }
        case LOOM_Q4_0: { /* (q - 8) + 128 */
            const block_q4_0 *x = (const block_q4_0 *)row + g;
            d[r] = _cvtsh_ss(x->d);
            __m128i v = _mm_loadu_si128((const __m128i *)x->qs);
            __m256i u = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(v, 4), v), low4);
            _mm256_storeu_si256((__m256i *)q, _mm256_add_epi8(u, _mm256_set1_epi8(120)));
            break;
        }
        default: { /* Q5_0: (q - 16) + 128 */
            const block_q5_0 *x = (const block_q5_0 *)row + g;
            d[r] = _cvtsh_ss(x->d);
            uint32_t h;
            memcpy(&h, x->qh, 4);
            __m128i v = _mm_loadu_si128((const __m128i *)x->qs);
            __m256i u = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(v, 4), v), low4);
            u = _mm256_or_si256(u, _mm256_maskz_mov_epi8((__mmask32)h, _mm256_set1_epi8(0x10)));
            _mm256_storeu_si256((__m256i *)q, _mm256_add_epi8(u, _mm256_set1_epi8(112)));
            break;
        }
        }
        return;
    }
    const int ns = nsub_of(L);
    float *dsc = (float *)(grp + 64 * 64);
    int32_t *mp = (int32_t *)(dsc + (size_t)ns * 16);
    float *dm = (float *)(mp + (size_t)(ns / 2) * 16);
    if (L->wt == LOOM_Q6_K) {
        const block_q6_k *x = (const block_q6_k *)row + g;
        const float d = _cvtsh_ss(x->d);
        dm[r] = 32.0f * d;
        for (int s = 0; s < 16; s++) dsc[s * 16 + r] = d * (float)(x->scales[s] - (s < 15 ? x->scales[s + 1] : 0));
        for (int p = 0; p < 8; p++) mp[p * 16 + r] = gemm_pair16(x->scales[2 * p], x->scales[2 * p + 1]);
        for (int h = 0; h < 2; h++) {
            __m256i qh = _mm256_loadu_si256((const __m256i *)(x->qh + 32 * h));
            for (int kq = 0; kq < 4; kq++) {
                __m256i ql = _mm256_loadu_si256((const __m256i *)(x->ql + 64 * h + 32 * (kq & 1)));
                __m256i lo = kq < 2 ? _mm256_and_si256(ql, low4) : _mm256_and_si256(_mm256_srli_epi16(ql, 4), low4);
                __m256i hi2 = _mm256_and_si256(_mm256_srli_epi16(qh, 2 * kq), _mm256_set1_epi8(3));
                _mm256_storeu_si256((__m256i *)(q + 128 * h + 32 * kq), _mm256_or_si256(lo, _mm256_slli_epi16(hi2, 4)));
            }
        }
        return;
    }
    const int five = L->wt == LOOM_Q5_K;
    const block_q4_k *x4 = (const block_q4_k *)(row + (size_t)g * (five ? sizeof(block_q5_k) : sizeof(block_q4_k)));
    const uint8_t *qs = five ? ((const block_q5_k *)x4)->qs : x4->qs;
    uint32_t aux[4];
    mm_unpack_k4_scales(x4->scales, aux);
    const uint8_t *sc = (const uint8_t *)aux, *mn = sc + 8;
    const float d = _cvtsh_ss(x4->d);
    dm[r] = _cvtsh_ss(x4->dmin);
    for (int j = 0; j < 8; j++) dsc[j * 16 + r] = d * (float)(sc[j] - (j < 7 ? sc[j + 1] : 0));
    for (int p = 0; p < 4; p++) mp[p * 16 + r] = gemm_pair16(mn[2 * p], mn[2 * p + 1]);
    __m256i qh = five ? _mm256_loadu_si256((const __m256i *)((const block_q5_k *)x4)->qh) : _mm256_setzero_si256();
    for (int jp = 0; jp < 4; jp++) {
        __m256i v = _mm256_loadu_si256((const __m256i *)(qs + 32 * jp));
        __m256i lo = _mm256_and_si256(v, low4), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), low4);
        if (five) {
            lo = _mm256_mask_add_epi8(lo, _mm256_test_epi8_mask(qh, _mm256_set1_epi8((char)(1 << (2 * jp)))), lo,
                                      _mm256_set1_epi8(16));
            hi = _mm256_mask_add_epi8(hi, _mm256_test_epi8_mask(qh, _mm256_set1_epi8((char)(1 << (2 * jp + 1)))), hi,
                                      _mm256_set1_epi8(16));
        }
        _mm256_storeu_si256((__m256i *)(q + 64 * jp), lo);
        _mm256_storeu_si256((__m256i *)(q + 64 * jp + 32), hi);
    }
}

void gemm_q_vnni_pack_panel(const gemm_q_layout *L, const uint8_t *W, size_t row_bytes, int64_t n_in, int nv,
                            uint8_t *dst) {
    const int64_t ng = n_in / L->group;
    const size_t gb = group_bytes(L);
    if (nv < GEMM_RB) memset(dst, 0, gemm_q_vnni_panel_bytes(L, n_in));
    __attribute__((aligned(64))) uint8_t q[GEMM_RB][QK_K];
    memset(q, 0, sizeof q);
    for (int64_t g = 0; g < ng; g++) {
        uint8_t *grp = dst + (size_t)g * gb;
        for (int r = 0; r < nv; r++) {
            unpack_row(L, W + (size_t)r * row_bytes, g, r, q[r], grp);
            /* the next panel's row (this thread's next call): rows are far apart for the hardware prefetcher */
            _mm_prefetch((const char *)(W + (size_t)(r + GEMM_RB) * row_bytes + (size_t)g * (row_bytes / (size_t)ng)),
                         _MM_HINT_T1);
        }
        /* [16 rows][G] -> [G / 4][16 rows][4]: 16 x 16 dword transposes, 64 inputs at a time */
        const int n_chunks = L->group >= 64 ? L->group / 64 : 1;
        for (int c = 0; c < n_chunks; c++) {
            __m512 v[16];
            for (int r = 0; r < 16; r++)
                v[r] = L->group < 64 ? _mm512_zextps256_ps512(_mm256_load_ps((const float *)q[r]))
                                     : _mm512_load_ps((const float *)(q[r] + 64 * c));
            tr16(v);
            const int n = L->group < 64 ? L->group / 4 : 16;
            for (int k = 0; k < n; k++) _mm512_store_ps((float *)(grp + (size_t)(16 * c + k) * 64), v[k]);
        }
    }
}

/* ==== kernels: 16 rows x T tokens (T, nsub compile-time constants through the always-inline callers) ==== */

INLINE __m512i bcast4(const int8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
}

/* Per token, one running int32 sum over the whole group (never reset, so no per-sub-block zeroing): with A_j the
 * sum after sub-block j, sum_j c_j S_j = sum_j (c_j - c_{j+1}) A_j, and the panel stores those differences. 12
 * tokens keep 12 independent vpdpbusd chains in flight (latency 5, two per cycle). |A_j| < 2^24, so its f32
 * conversion is exact. */
INLINE void kq_block(const int T, const int nsub, int64_t ng, const uint8_t *panel, size_t gb, const int8_t *a,
                     int64_t n_in, const float *const *dxp, const int32_t *const *xp, float *Y, size_t ldy,
                     __mmask16 om, float *F) {
    const int steps = 64 / nsub, npairs = nsub / 2;
    const size_t bs_stride = nsub == 8 ? 64 : 128; /* i32 per group in the token's pair array */
#pragma GCC unroll 12
    for (int t = 0; t < T; t++) _mm512_store_ps(F + 16 * t, _mm512_setzero_ps());
    for (int64_t g = 0; g < ng; g++) {
        const uint8_t *grp = panel + (size_t)g * gb;
        const __m512i *wq = (const __m512i *)grp;
        const float *dsc = (const float *)(grp + 64 * 64);
        const int32_t *mp = (const int32_t *)(dsc + nsub * 16);
        const float *dm = (const float *)(mp + npairs * 16);
        const int8_t *ag = a + g * QK_K;
        __m512 bk[TOK];
        __m512i acc[TOK];
#pragma GCC unroll 12
        for (int t = 0; t < T; t++) bk[t] = _mm512_setzero_ps(), acc[t] = _mm512_setzero_si512();
        for (int j = 0; j < nsub; j++) {
#pragma GCC unroll 8
            for (int s = 0; s < steps; s++) {
                const __m512i w = _mm512_load_si512(wq + j * steps + s);
                const int8_t *as = ag + 4 * (j * steps + s);
#pragma GCC unroll 12
                for (int t = 0; t < T; t++) acc[t] = _mm512_dpbusd_epi32(acc[t], w, bcast4(as + t * n_in));
            }
            const __m512 sc = _mm512_load_ps(dsc + 16 * j);
#pragma GCC unroll 12
            for (int t = 0; t < T; t++) bk[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc[t]), sc, bk[t]);
        }
        const __m512 dmv = _mm512_load_ps(dm);
#pragma GCC unroll 12
        for (int t = 0; t < T; t++) {
            const int32_t *bs = xp[t] + (size_t)g * bs_stride;
            __m512i m = _mm512_setzero_si512();
#pragma GCC unroll 8
            for (int p = 0; p < npairs; p++) m = _mm512_dpwssd_epi32(m, _mm512_load_si512(mp + 16 * p), _mm512_set1_epi32(bs[16 * p]));
            bk[t] = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(m), dmv, bk[t]);
            _mm512_store_ps(F + 16 * t, _mm512_fmadd_ps(bk[t], _mm512_set1_ps(dxp[t][g * 16]), _mm512_load_ps(F + 16 * t)));
        }
    }
#pragma GCC unroll 12
    for (int t = 0; t < T; t++) _mm512_mask_storeu_ps(Y + (size_t)t * ldy, om, _mm512_load_ps(F + 16 * t));
}

INLINE void b32_block(const int T, int64_t ng, const uint8_t *panel, const int8_t *a, int64_t n_in,
                      const float *const *dxp, const int32_t *const *stp, float *Y, size_t ldy, __mmask16 om, float *F) {
#pragma GCC unroll 12
    for (int t = 0; t < T; t++) _mm512_store_ps(F + 16 * t, _mm512_setzero_ps());
    for (int64_t g = 0; g < ng; g++) {
        const uint8_t *grp = panel + (size_t)g * (8 * 64 + 64);
        const int8_t *ag = a + g * QK8_0;
        __m512i acc[TOK];
#pragma GCC unroll 12
        for (int t = 0; t < T; t++) acc[t] = _mm512_set1_epi32(stp[t][g * 16]);
#pragma GCC unroll 8
        for (int s = 0; s < 8; s++) {
            const __m512i w = _mm512_load_si512(grp + 64 * s);
#pragma GCC unroll 12
            for (int t = 0; t < T; t++) acc[t] = _mm512_dpbusd_epi32(acc[t], w, bcast4(ag + t * n_in + 4 * s));
        }
        const __m512 d = _mm512_load_ps((const float *)(grp + 8 * 64));
#pragma GCC unroll 12
        for (int t = 0; t < T; t++)
            _mm512_store_ps(F + 16 * t, _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc[t]), _mm512_mul_ps(d, _mm512_set1_ps(dxp[t][g * 16])),
                                                        _mm512_load_ps(F + 16 * t)));
    }
#pragma GCC unroll 12
    for (int t = 0; t < T; t++) _mm512_mask_storeu_ps(Y + (size_t)t * ldy, om, _mm512_load_ps(F + 16 * t));
}

#define ARGS_K ng, panel, gb, a, n_in, dxp, xp, Y, ldy, om, F
#define ARGS_B ng, panel, a, n_in, dxp, xp, Y, ldy, om, F
#define CASES(CALL, ...)                                                                                        \
    switch (T) {                                                                                                \
    case 1: CALL(1, __VA_ARGS__); break;                                                                        \
    case 2: CALL(2, __VA_ARGS__); break;                                                                        \
    case 3: CALL(3, __VA_ARGS__); break;                                                                        \
    case 4: CALL(4, __VA_ARGS__); break;                                                                        \
    case 5: CALL(5, __VA_ARGS__); break;                                                                        \
    case 6: CALL(6, __VA_ARGS__); break;                                                                        \
    case 7: CALL(7, __VA_ARGS__); break;                                                                        \
    case 8: CALL(8, __VA_ARGS__); break;                                                                        \
    case 9: CALL(9, __VA_ARGS__); break;                                                                        \
    case 10: CALL(10, __VA_ARGS__); break;                                                                      \
    case 11: CALL(11, __VA_ARGS__); break;                                                                      \
    default: CALL(12, __VA_ARGS__); break;                                                                      \
    }

typedef struct kargs {
    int64_t ng, n_in;
    const uint8_t *panel;
    size_t gb;
    const int8_t *a;
    const float *const *dxp;
    const int32_t *const *xp;
    float *Y, *F;
    size_t ldy;
    __mmask16 om;
} kargs;

/* the kernels' arguments as locals of the names ARGS_K / ARGS_B use */
#define UNPACK_KARGS(k)                                                                                         \
    const int64_t ng = (k)->ng, n_in = (k)->n_in;                                                               \
    const uint8_t *panel = (k)->panel;                                                                          \
    const size_t gb = (k)->gb, ldy = (k)->ldy;                                                                  \
    const int8_t *a = (k)->a;                                                                                   \
    const float *const *dxp = (k)->dxp;                                                                         \
    const int32_t *const *xp = (k)->xp;                                                                         \
    float *Y = (k)->Y, *F = (k)->F;                                                                             \
    const __mmask16 om = (k)->om

static void kq8(int T, const kargs *k) {
    UNPACK_KARGS(k);
#define KQ8(TT, ...) kq_block(TT, 8, __VA_ARGS__)
    CASES(KQ8, ARGS_K)
}
static void kq16(int T, const kargs *k) {
    UNPACK_KARGS(k);
#define KQ16(TT, ...) kq_block(TT, 16, __VA_ARGS__)
    CASES(KQ16, ARGS_K)
}
static void b32(int T, const kargs *k) {
    UNPACK_KARGS(k);
    (void)gb;
    CASES(b32_block, ARGS_B)
}

void gemm_q_vnni_panel(const gemm_q_layout *L, int64_t n_in, const uint8_t *panel, const gemm_q_act *A, int64_t tb0,
                       int64_t n_tb, int64_t n_tokv, float *Y, size_t ldy, int ov, float *F) {
    (void)n_tb;
    const int64_t ng = n_in / L->group;
    kargs k = {.ng = ng, .n_in = n_in, .panel = panel, .gb = group_bytes(L), .ldy = ldy, .F = F,
               .om = (__mmask16)(ov >= 16 ? 0xFFFF : (1u << ov) - 1)};
    /* per token: its dx and its pair sums (or 32-block start values), which live in its 16-token block's meta */
    const size_t xoff = (size_t)ng * 16 * sizeof(float) + (L->group == QK_K && L->sub == 16 ? (size_t)ng * 64 * 4 : 0);
    const float *dxp[TOK];
    const int32_t *xp[TOK];
    k.dxp = dxp;
    k.xp = xp;
    for (int64_t u = 0; u < n_tokv; u += TOK) {
        const int T = (int)(n_tokv - u < TOK ? n_tokv - u : TOK);
        for (int t = 0; t < T; t++) {
            const int64_t tok = (tb0 * GEMM_TB) + u + t;
            const uint8_t *meta = A->meta + (size_t)(tok / GEMM_TB) * A->meta_bytes;
            dxp[t] = (const float *)meta + tok % GEMM_TB;
            xp[t] = (const int32_t *)(meta + xoff) + tok % GEMM_TB;
        }
        k.a = (const int8_t *)A->tiles + (size_t)(tb0 * GEMM_TB + u) * (size_t)n_in; /* token rows are contiguous */
        k.Y = Y + (size_t)u * ldy;
        if (L->group != QK_K) b32(T, &k);
        else if (L->sub == 32) kq8(T, &k);
        else kq16(T, &k);
    }
}
