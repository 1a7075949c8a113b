/* core/gemm_avx512.c — AVX-512 f32 GEMM micro-kernel and the AMX int8 GEMM (see gemm_int.h for the method).
 *
 * Compiled with the AVX-512 flags; the AMX parts additionally need amx-tile/amx-int8 (target pragma below:
 * the Makefile's flags stop at VNNI). Nothing here runs unless loom_gemm saw the ISA (and, for AMX, the OS
 * granted the tile data permission).
 */
#pragma GCC target("amx-tile,amx-int8")
#include <cpuid.h>
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/gemm_int.h"
#include "core/matmul_int.h"
#include "core/tr16_avx512.h"

#define INLINE static inline __attribute__((always_inline))

/* ==== f32 engine: 12 tokens x 32 outputs ==== */

#define MR 12
#define NR 32

INLINE __m512 wload(loom_dtype wt, const uint8_t *row, int64_t k, __mmask16 m) {
    if (wt == LOOM_F32) return _mm512_maskz_loadu_ps(m, (const float *)row + k);
    __m256i h = _mm256_maskz_loadu_epi16(m, (const uint16_t *)row + k);
    if (wt == LOOM_F16) return _mm512_cvtph_ps(h);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

INLINE void pack_w_t(loom_dtype wt, const uint8_t *W, size_t row_bytes, int64_t o0, int nv, int64_t k0, int kc,
                     float *bp) {
    for (int jg = 0; jg < NR; jg += 16) {
        for (int kk = 0; kk < kc; kk += 16) {
            const int kn = kc - kk < 16 ? kc - kk : 16;
            const __mmask16 m = (__mmask16)(kn == 16 ? 0xFFFF : (1u << kn) - 1);
            __m512 r[16];
            const size_t eb = wt == LOOM_F32 ? 4 : 2;
            for (int j = 0; j < 16; j++) {
                const uint8_t *row = W + (size_t)(o0 + jg + j) * row_bytes;
                r[j] = jg + j < nv ? wload(wt, row, k0 + kk, m) : _mm512_setzero_ps();
                /* the next panel's rows (this thread's next call): the rows are far apart, so the hardware
                 * prefetcher does not follow them; prefetches past the end of W never fault */
                _mm_prefetch((const char *)(row + (size_t)NR * row_bytes + (size_t)(k0 + kk) * eb), _MM_HINT_T1);
            }
            tr16(r);
            for (int k = 0; k < kn; k++) _mm512_store_ps(bp + (size_t)(kk + k) * NR + jg, r[k]);
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
    for (int k = 0; k < kc; k += 16) {
        const int kn = kc - k < 16 ? kc - k : 16;
        const __mmask16 m = (__mmask16)(kn == 16 ? 0xFFFF : (1u << kn) - 1);
        __m512 r[16];
        for (int i = 0; i < 16; i++) r[i] = i < nv && i < MR ? _mm512_maskz_loadu_ps(m, X + (t0 + i) * ldx + k) : _mm512_setzero_ps();
        tr16(r);
        for (int q = 0; q < kn; q++) _mm512_mask_storeu_ps(ap + (k + q) * MR, (__mmask16)((1u << MR) - 1), r[q]);
    }
}

static void kernel(int kc, const float *ap, const float *bp, float *Y, size_t ldy, int mv, int nv, int acc) {
    __m512 c0[MR], c1[MR];
    for (int i = 0; i < MR; i++) c0[i] = c1[i] = _mm512_setzero_ps();
    for (int k = 0; k < kc; k++) {
        const __m512 b0 = _mm512_load_ps(bp + (size_t)k * NR), b1 = _mm512_load_ps(bp + (size_t)k * NR + 16);
#pragma GCC unroll 12
        for (int i = 0; i < MR; i++) {
            const __m512 a = _mm512_set1_ps(ap[k * MR + i]);
            c0[i] = _mm512_fmadd_ps(a, b0, c0[i]);
            c1[i] = _mm512_fmadd_ps(a, b1, c1[i]);
        }
    }
    const __mmask16 m0 = (__mmask16)(nv >= 16 ? 0xFFFF : (1u << nv) - 1);
    const __mmask16 m1 = (__mmask16)(nv >= 32 ? 0xFFFF : nv > 16 ? (1u << (nv - 16)) - 1 : 0);
    for (int i = 0; i < mv; i++) {
        float *y = Y + (size_t)i * ldy;
        if (acc) {
            c0[i] = _mm512_add_ps(c0[i], _mm512_maskz_loadu_ps(m0, y));
            c1[i] = _mm512_add_ps(c1[i], _mm512_maskz_loadu_ps(m1, y + 16));
        }
        _mm512_mask_storeu_ps(y, m0, c0[i]);
        _mm512_mask_storeu_ps(y + 16, m1, c1[i]);
    }
}

void loom_gemm_f32_fill_avx512(loom_gemm_f32_kernels *k) {
    k->mr = MR;
    k->nr = NR;
    /* 2048 inputs per panel block: the whole row for the ViT's 1408-wide products, three blocks for its
     * 5632-wide one. The panel (256 KiB) is read from L2, not L1, but Y is read and written once per block:
     * with 256-input blocks the six to twenty-two passes over Y (3-10 MB, past L2) held the products at
     * 0.54-0.64 of the FMA peak on 2 threads; with 2048, 0.64-0.86 (stop 15, 577 tokens, F16 weights). */
    k->kc = 2048;
    k->pack_w = pack_w;
    k->pack_x = pack_x;
    k->kernel = kernel;
}

/* ==== int8 engine: AMX ==== */

#define ARCH_REQ_XCOMP_PERM 0x1023
#define XFEATURE_XTILEDATA  18

int loom_gemm_amx_init(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    if (!(d & (1u << 24)) || !(d & (1u << 25))) return 0; /* AMX-TILE, AMX-INT8 */
    return syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0;
}

int gemm_q_layout_for(loom_dtype wt, gemm_q_layout *L) {
    L->wt = wt;
    L->sub = 0;
    switch (wt) {
    case LOOM_Q8_0:
    case LOOM_Q4_0:
    case LOOM_Q5_0: L->group = 32, L->kc = 32, L->planes = 1, L->has_min = 0; return 0;
    case LOOM_Q4_K:
    case LOOM_Q5_K: L->group = 256, L->kc = 64, L->planes = 2, L->has_min = 1; return 0;
    case LOOM_Q6_K: L->group = 256, L->kc = 64, L->planes = 2, L->has_min = 0; return 0;
    default: return -1;
    }
}

/* byte offsets inside an activation block / a weight panel */
/* per-block metadata: dx [ng][16] f32, then (has_min) bsp [ng][4][16] i32 */
static size_t meta_bs_off(const gemm_q_layout *L, int64_t n_in) { return (size_t)(n_in / L->group) * GEMM_TB * sizeof(float); }
size_t gemm_q_meta_bytes(const gemm_q_layout *L, int64_t n_in) {
    return meta_bs_off(L, n_in) + (L->has_min ? (size_t)(n_in / L->group) * 4 * GEMM_TB * sizeof(int32_t) : 0);
}
/* B tile of group g, token block tb, chunk c */
INLINE uint8_t *act_tile(const gemm_q_layout *L, const gemm_q_act *A, int64_t g, int64_t tb, int64_t c) {
    const int64_t cpg = L->group / L->kc;
    return A->tiles + ((size_t)(g * A->n_tb + tb) * cpg + c) * (size_t)L->kc * GEMM_TB;
}
static size_t pan_dw_off(const gemm_q_layout *L, int64_t n_in) { return (size_t)L->planes * GEMM_RB * (size_t)n_in; }
static size_t pan_dmw_off(const gemm_q_layout *L, int64_t n_in) {
    return pan_dw_off(L, n_in) + (size_t)(n_in / L->group) * GEMM_RB * sizeof(float);
}
static size_t pan_mn_off(const gemm_q_layout *L, int64_t n_in) {
    return pan_dmw_off(L, n_in) + (size_t)(n_in / L->group) * GEMM_RB * sizeof(float);
}
size_t gemm_q_panel_bytes(const gemm_q_layout *L, int64_t n_in) {
    return pan_mn_off(L, n_in) + (L->has_min ? (size_t)(n_in / L->group) * 4 * GEMM_RB * sizeof(int32_t) : 0);
}

void gemm_q_pack_act(const gemm_q_layout *L, const uint8_t *xq, size_t act_bytes, int64_t n_in, int nv,
                     const gemm_q_act *A, int64_t tb) {
    const int64_t ng = n_in / L->group;
    uint8_t *meta = A->meta + (size_t)tb * A->meta_bytes;
    float *dx = (float *)meta;
    if (L->group == QK_K) {
        int32_t *bsp = (int32_t *)(meta + meta_bs_off(L, n_in));
        for (int64_t c = 0; c < n_in / 64; c++) { /* 16 tokens x 16 dwords -> tile rows q = dwords */
            __m512 r[16];
            for (int t = 0; t < 16; t++)
                r[t] = t < nv ? _mm512_loadu_ps(xq + (size_t)t * act_bytes + (size_t)(c / 4) * sizeof(block_q8_k) + 4 +
                                                64 * (c % 4))
                              : _mm512_setzero_ps();
            tr16(r);
            uint8_t *dst = act_tile(L, A, c / 4, tb, c % 4);
            for (int q = 0; q < 16; q++) _mm512_store_ps(dst + 64 * q, r[q]);
        }
        for (int64_t g = 0; g < ng; g++)
            for (int t = 0; t < GEMM_TB; t++) {
                const block_q8_k *y = t < nv ? (const block_q8_k *)(xq + (size_t)t * act_bytes) + g : NULL;
                dx[g * GEMM_TB + t] = y ? y->d : 0.0f;
                if (!L->has_min) continue;
                for (int p = 0; p < 4; p++) {
                    int32_t v = 0;
                    if (y) {
                        int a = y->bsums[4 * p] + y->bsums[4 * p + 1], b = y->bsums[4 * p + 2] + y->bsums[4 * p + 3];
                        v = (int32_t)(((uint32_t)(uint16_t)(int16_t)a) | ((uint32_t)(uint16_t)(int16_t)b << 16));
                    }
                    bsp[(g * 4 + p) * GEMM_TB + t] = v;
                }
            }
    } else { /* Q8_0 blocks: one 32-input chunk per block, 8 dwords per token */
        for (int64_t c = 0; c < ng; c++) {
            __m512 r[16];
            for (int t = 0; t < 16; t++) {
                const block_q8_0 *y = t < nv ? (const block_q8_0 *)(xq + (size_t)t * act_bytes) + c : NULL;
                r[t] = y ? _mm512_castps256_ps512(_mm256_loadu_ps((const float *)y->qs)) : _mm512_setzero_ps();
                if (y) r[t] = _mm512_insertf32x8(r[t], _mm256_setzero_ps(), 1);
                dx[c * GEMM_TB + t] = y ? _cvtsh_ss(y->d) : 0.0f;
            }
            tr16(r);
            uint8_t *dst = act_tile(L, A, c, tb, 0);
            for (int q = 0; q < 8; q++) _mm512_store_ps(dst + 64 * q, r[q]);
        }
    }
}

/* 32 int16 weights (sub-block scale folded in) -> low bytes to p0, high bytes to p1 */
INLINE void put_split(__m512i w, int8_t *p0, int8_t *p1) {
    _mm256_storeu_si256((__m256i *)p0, _mm512_cvtepi16_epi8(w));
    _mm256_storeu_si256((__m256i *)p1, _mm512_cvtepi16_epi8(_mm512_srai_epi16(w, 8)));
}

static void panel_row(const gemm_q_layout *L, const uint8_t *row, int64_t n_in, int r, uint8_t *dst) {
    const int64_t ng = n_in / L->group;
    int8_t *p0 = (int8_t *)dst + (size_t)r * n_in, *p1 = p0 + (size_t)GEMM_RB * n_in;
    float *dw = (float *)(dst + pan_dw_off(L, n_in)), *dmw = (float *)(dst + pan_dmw_off(L, n_in));
    int32_t *mnp = (int32_t *)(dst + pan_mn_off(L, n_in));
    const __m256i low4 = _mm256_set1_epi8(0x0F);
    for (int64_t g = 0; g < ng; g++) {
        const int64_t k = g * L->group;
        switch (L->wt) {
        case LOOM_Q8_0: {
            const block_q8_0 *x = (const block_q8_0 *)row + g;
            dw[g * GEMM_RB + r] = _cvtsh_ss(x->d);
            memcpy(p0 + k, x->qs, 32);
            break;
        }
        case LOOM_Q4_0: {
            const block_q4_0 *x = (const block_q4_0 *)row + g;
            dw[g * GEMM_RB + r] = _cvtsh_ss(x->d);
            __m128i q = _mm_loadu_si128((const __m128i *)x->qs);
            __m256i v = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), low4);
            _mm256_storeu_si256((__m256i *)(p0 + k), _mm256_sub_epi8(v, _mm256_set1_epi8(8)));
            break;
        }
        case LOOM_Q5_0: {
            const block_q5_0 *x = (const block_q5_0 *)row + g;
            dw[g * GEMM_RB + r] = _cvtsh_ss(x->d);
            uint32_t h;
            memcpy(&h, x->qh, 4);
            __m128i q = _mm_loadu_si128((const __m128i *)x->qs);
            __m256i v = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), low4);
            v = _mm256_or_si256(v, _mm256_maskz_mov_epi8((__mmask32)h, _mm256_set1_epi8(0x10)));
            _mm256_storeu_si256((__m256i *)(p0 + k), _mm256_sub_epi8(v, _mm256_set1_epi8(16)));
            break;
        }
        case LOOM_Q4_K:
        case LOOM_Q5_K: {
            const int five = L->wt == LOOM_Q5_K;
            const block_q4_k *x4 = (const block_q4_k *)(row + (size_t)g * (five ? sizeof(block_q5_k) : sizeof(block_q4_k)));
            const uint8_t *qs = five ? ((const block_q5_k *)x4)->qs : x4->qs;
            uint32_t aux[4];
            mm_unpack_k4_scales(x4->scales, aux);
            const uint8_t *sc = (const uint8_t *)aux, *mn = sc + 8;
            dw[g * GEMM_RB + r] = _cvtsh_ss(x4->d);
            dmw[g * GEMM_RB + r] = _cvtsh_ss(x4->dmin);
            for (int p = 0; p < 4; p++) mnp[(g * 4 + p) * GEMM_RB + r] = (int32_t)(mn[2 * p] | ((uint32_t)mn[2 * p + 1] << 16));
            __m256i qh = five ? _mm256_loadu_si256((const __m256i *)((const block_q5_k *)x4)->qh) : _mm256_setzero_si256();
            for (int jp = 0; jp < 4; jp++) {
                __m256i v = _mm256_loadu_si256((const __m256i *)(qs + 32 * jp));
                __m256i lo = _mm256_and_si256(v, low4), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), low4);
                if (five) {
                    lo = _mm256_mask_add_epi8(lo, _mm256_test_epi8_mask(qh, _mm256_set1_epi8((char)(1 << (2 * jp)))), lo,
                                              _mm256_set1_epi8(16));
                    hi = _mm256_mask_add_epi8(hi, _mm256_test_epi8_mask(qh, _mm256_set1_epi8((char)(1 << (2 * jp + 1)))),
                                              hi, _mm256_set1_epi8(16));
                }
                __m512i wl = _mm512_mullo_epi16(_mm512_cvtepu8_epi16(lo), _mm512_set1_epi16(sc[2 * jp]));
                __m512i wh = _mm512_mullo_epi16(_mm512_cvtepu8_epi16(hi), _mm512_set1_epi16(sc[2 * jp + 1]));
                put_split(wl, p0 + k + 64 * jp, p1 + k + 64 * jp);
                put_split(wh, p0 + k + 64 * jp + 32, p1 + k + 64 * jp + 32);
            }
            break;
        }
        default: { /* Q6_K */
            const block_q6_k *x = (const block_q6_k *)row + g;
            dw[g * GEMM_RB + r] = _cvtsh_ss(x->d);
            for (int h = 0; h < 2; h++) {
                __m256i qh = _mm256_loadu_si256((const __m256i *)(x->qh + 32 * h));
                for (int kq = 0; kq < 4; kq++) {
                    __m256i ql = _mm256_loadu_si256((const __m256i *)(x->ql + 64 * h + 32 * (kq & 1)));
                    __m256i lo = kq < 2 ? _mm256_and_si256(ql, low4) : _mm256_and_si256(_mm256_srli_epi16(ql, 4), low4);
                    __m256i hi2 = _mm256_and_si256(_mm256_srli_epi16(qh, 2 * kq), _mm256_set1_epi8(3));
                    __m256i q = _mm256_or_si256(lo, _mm256_slli_epi16(hi2, 4)); /* 0..63, no carries across bytes */
                    const int s = 8 * h + 2 * kq;
                    __m512i scv = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_set1_epi16(x->scales[s])),
                                                     _mm256_set1_epi16(x->scales[s + 1]), 1);
                    __m512i w = _mm512_mullo_epi16(_mm512_sub_epi16(_mm512_cvtepu8_epi16(q), _mm512_set1_epi16(32)), scv);
                    put_split(w, p0 + k + 128 * h + 32 * kq, p1 + k + 128 * h + 32 * kq);
                }
            }
            break;
        }
        }
    }
}

void gemm_q_pack_panel(const gemm_q_layout *L, const uint8_t *W, size_t row_bytes, int64_t n_in, int nv,
                       uint8_t *dst) {
    if (nv < GEMM_RB) memset(dst, 0, gemm_q_panel_bytes(L, n_in));
    for (int r = 0; r < nv; r++) panel_row(L, W + (size_t)r * row_bytes, n_in, r, dst);
}

typedef struct __attribute__((aligned(64))) tilecfg {
    uint8_t  palette, start;
    uint8_t  rsv[14];
    uint16_t colsb[16];
    uint8_t  rows[16];
} tilecfg;

void gemm_q_amx_begin(const gemm_q_layout *L) {
    tilecfg c;
    memset(&c, 0, sizeof c);
    c.palette = 1;
    for (int i = 0; i < 4; i++) c.colsb[i] = 64, c.rows[i] = 16;          /* C: 16 rows x 16 tokens int32 */
    for (int i = 4; i < 6; i++) c.colsb[i] = (uint16_t)L->kc, c.rows[i] = 16; /* A: 16 rows x kc weights */
    for (int i = 6; i < 8; i++) c.colsb[i] = 64, c.rows[i] = (uint8_t)(L->kc / 4); /* B: kc/4 x (16 tokens x 4) */
    /* not _tile_loadconfig: GCC 12's macro tells the compiler it reads only 8 bytes, so the stores that fill
     * the rest of c may be dropped as dead */
    __asm__ volatile("ldtilecfg %0" : : "m"(c));
}

void gemm_q_amx_end(void) { _tile_release(); }

/* C tiles for one group -> f32 accumulators F[blk][row][token] */
INLINE void readout(const gemm_q_layout *L, const int32_t *cb, const uint8_t *meta, int64_t n_in, int64_t g,
                    const float *dw, const float *dmw, const int32_t *mnp, float *F) {
    const __m512 dxv = _mm512_load_ps((const float *)meta + g * GEMM_TB);
    __m512i bs[4] = {_mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512()};
    if (L->has_min) /* (initialised anyway: gcc -O3 cannot see that has_min guards both uses) */
        for (int p = 0; p < 4; p++) bs[p] = _mm512_load_si512((const int32_t *)(meta + meta_bs_off(L, n_in)) + (g * 4 + p) * GEMM_TB);
    for (int r = 0; r < GEMM_RB; r++) {
        __m512i ci = _mm512_load_si512(cb + 16 * r);
        if (L->planes == 2) ci = _mm512_add_epi32(ci, _mm512_slli_epi32(_mm512_load_si512(cb + 256 + 16 * r), 8));
        __m512 f = _mm512_load_ps(F + 16 * r);
        f = _mm512_fmadd_ps(_mm512_cvtepi32_ps(ci), _mm512_mul_ps(_mm512_set1_ps(dw[g * GEMM_RB + r]), dxv), f);
        if (L->has_min) {
            __m512i m = _mm512_setzero_si512();
            for (int p = 0; p < 4; p++) m = _mm512_dpwssd_epi32(m, _mm512_set1_epi32(mnp[(g * 4 + p) * GEMM_RB + r]), bs[p]);
            f = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(m), _mm512_mul_ps(_mm512_set1_ps(dmw[g * GEMM_RB + r]), dxv), f);
        }
        _mm512_store_ps(F + 16 * r, f);
    }
}

/* One weight panel against token blocks [0, n_tb) of act (blocks blk bytes apart): groups outer, so the
 * panel's tiles of one group (8 KiB) stay in L1 while the activation tiles stream from L2; F holds the f32
 * accumulators of every token block ([n_tb][row][token], 1 KiB each). */
INLINE void amx_panel_t(const gemm_q_layout *L, int64_t n_in, const uint8_t *panel, const gemm_q_act *A, int64_t tb0,
                        int64_t n_tb, int64_t n_tokv, float *Y, size_t ldy, int ov, float *F, int planes) {
    const int64_t ng = n_in / L->group, kc = L->kc, cpg = L->group / L->kc;
    const int8_t *p0 = (const int8_t *)panel, *p1 = p0 + (size_t)GEMM_RB * n_in;
    const float *dw = (const float *)(panel + pan_dw_off(L, n_in)), *dmw = (const float *)(panel + pan_dmw_off(L, n_in));
    const int32_t *mnp = (const int32_t *)(panel + pan_mn_off(L, n_in));
    const size_t tile_b = (size_t)kc * GEMM_TB; /* bytes of one B tile */
    __attribute__((aligned(64))) int32_t cb[4][256];
    memset(F, 0, (size_t)n_tb * 256 * sizeof(float));
    for (int64_t g = 0; g < ng; g++) {
        for (int64_t tb = 0; tb < n_tb; tb += 2) {
            const int nb = tb + 1 < n_tb ? 2 : 1;
            const uint8_t *act0 = act_tile(L, A, g, tb0 + tb, 0), *act1 = act0 + (size_t)cpg * tile_b;
            const uint8_t *meta0 = A->meta + (size_t)(tb0 + tb) * A->meta_bytes, *meta1 = meta0 + A->meta_bytes;
            _tile_zero(0);
            _tile_zero(1);
            _tile_zero(2);
            _tile_zero(3);
            for (int64_t c = 0; c < cpg; c++) {
                const int64_t ci = g * cpg + c;
                _tile_loadd(4, p0 + ci * kc, (long)n_in);
                _tile_loadd(6, act0 + c * tile_b, 64);
                if (nb == 2) _tile_loadd(7, act1 + c * tile_b, 64);
                if (planes == 2) {
                    _tile_loadd(5, p1 + ci * kc, (long)n_in);
                    _tile_dpbusd(0, 4, 6);
                    _tile_dpbssd(1, 5, 6);
                    if (nb == 2) {
                        _tile_dpbusd(2, 4, 7);
                        _tile_dpbssd(3, 5, 7);
                    }
                } else {
                    _tile_dpbssd(0, 4, 6);
                    if (nb == 2) _tile_dpbssd(2, 4, 7);
                }
            }
            _tile_stored(0, cb[0], 64);
            if (planes == 2) _tile_stored(1, cb[1], 64);
            readout(L, cb[0], meta0, n_in, g, dw, dmw, mnp, F + (size_t)tb * 256);
            if (nb == 2) {
                _tile_stored(2, cb[2], 64);
                if (planes == 2) _tile_stored(3, cb[3], 64);
                readout(L, cb[2], meta1, n_in, g, dw, dmw, mnp, F + (size_t)(tb + 1) * 256);
            }
        }
    }
    /* F[block][row][token] -> Y[token][row] */
    const __mmask16 om = (__mmask16)(ov >= 16 ? 0xFFFF : (1u << ov) - 1);
    for (int64_t b = 0; b < n_tb; b++) {
        __m512 r[16];
        for (int i = 0; i < 16; i++) r[i] = _mm512_load_ps(F + (size_t)b * 256 + 16 * i);
        tr16(r);
        const int64_t tn = n_tokv - 16 * b < 16 ? n_tokv - 16 * b : 16;
        for (int t = 0; t < tn; t++) _mm512_mask_storeu_ps(Y + (size_t)(16 * b + t) * ldy, om, r[t]);
    }
}

void gemm_q_amx_panel(const gemm_q_layout *L, int64_t n_in, const uint8_t *panel, const gemm_q_act *A, int64_t tb0,
                      int64_t n_tb, int64_t n_tokv, float *Y, size_t ldy, int ov, float *F) {
    if (L->planes == 2) amx_panel_t(L, n_in, panel, A, tb0, n_tb, n_tokv, Y, ldy, ov, F, 2);
    else amx_panel_t(L, n_in, panel, A, tb0, n_tb, n_tokv, Y, ldy, ov, F, 1);
}

/* ==== AMX peak probe (for core/roofline) ====
 * Four independent int8 tile products per step (two A tiles x two B tiles), as the GEMM's inner loop does;
 * each is 16 x 16 x 64 multiply-adds. Returns the operations done (a multiply-add counts 2). */
double loom_gemm_amx_peak_loop(long iters) {
    static _Alignas(64) int8_t zeros[16 * 64];
    tilecfg c;
    memset(&c, 0, sizeof c);
    c.palette = 1;
    for (int i = 0; i < 8; i++) c.colsb[i] = 64, c.rows[i] = 16;
    __asm__ volatile("ldtilecfg %0" : : "m"(c));
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    _tile_loadd(4, zeros, 64);
    _tile_loadd(5, zeros, 64);
    _tile_loadd(6, zeros, 64);
    _tile_loadd(7, zeros, 64);
    for (long i = 0; i < iters; i++) {
        _tile_dpbssd(0, 4, 6);
        _tile_dpbssd(1, 5, 6);
        _tile_dpbssd(2, 4, 7);
        _tile_dpbssd(3, 5, 7);
    }
    _tile_release();
    return (double)iters * 4 * 16 * 16 * 64 * 2;
}
