/* core/gemm.c — dispatch, scratch and threading of the tiled matrix-matrix products (see gemm_int.h).
 *
 * Each call runs two pool passes: (1) pack the activations (threads over token blocks) into a buffer shared
 * by all threads, (2) the product, threads over output panels (over token blocks when there are fewer panels
 * than threads). Scratch (the packed activations plus one panel buffer per thread) lives in a per-thread
 * buffer of the *calling* thread, grown geometrically and reused, as matmul.c does for its activations:
 * prefill makes hundreds of products per prompt and a fresh allocation each time would page-fault every call.
 */
#include <pthread.h>
#include <stdatomic.h>

#include "core/alloc.h"
#include "core/gemm_int.h"
#include "core/tls_scratch.h"
#include "core/matmul_int.h"

/* Below this many tokens the dot4 path (no packing) is used. Measured (Q4_K 2048x1024, one thread): AMX
 * 0.28 ms vs dot4 0.23 ms at 4 tokens, 0.28 vs 0.51 at 8, so the break-even is ~6 tokens; the threshold is
 * one full token block (16) because test_matmul's products_equal_vec_dot_* expect loom_matmul to equal
 * loom_vec_dot bit for bit for n_tok <= 9, which only the dot4 path guarantees. */
#define GEMM_MIN_TOK_F32 16
#define GEMM_MIN_TOK_Q   8 /* AMX beats the dot4 kernels from ~6 tokens (routed experts often get few) */

#define ALIGN_UP(x) (((x) + 63) & ~(size_t)63)

/* ==== scratch: core/tls_scratch.h ==== */

static void *gscratch_get(size_t n) { return loom_tls_scratch_get(LOOM_TLS_GEMM, n); }

void loom_gemm_scratch_release(void) { loom_tls_scratch_release(LOOM_TLS_GEMM); }

/* ==== ISA tables and AMX state ==== */

static loom_gemm_f32_kernels g_f32[3];
static pthread_once_t        g_once = PTHREAD_ONCE_INIT;
static int                   g_amx_ok;      /* CPU + OS support, probed once */
static atomic_int            g_amx_on = 1;  /* tests/bench switch */
static atomic_int            g_min_tok = 0; /* tests: threshold override */

void loom_gemm_set_min_tokens(int n) { atomic_store(&g_min_tok, n > 0 ? n : 0); }

static void tables_init(void) {
    loom_gemm_f32_fill_avx2(&g_f32[LOOM_ISA_AVX2]);
    loom_gemm_f32_fill_avx512(&g_f32[LOOM_ISA_AVX512]);
    g_amx_ok = loom_isa_best() >= LOOM_ISA_AVX512 && loom_gemm_amx_init();
}

int loom_gemm_amx_enable(int on) {
    pthread_once(&g_once, tables_init);
    atomic_store(&g_amx_on, on ? 1 : 0);
    return g_amx_ok && on;
}

int loom_gemm_amx_active(void) {
    pthread_once(&g_once, tables_init);
    return g_amx_ok && atomic_load(&g_amx_on) && loom_isa_active() >= LOOM_ISA_AVX512;
}

/* Contiguous share [*b, *e) of n units for thread ith. */
static void split(int64_t n, int ith, int nth, int64_t *b, int64_t *e) {
    *b = n * ith / nth;
    *e = n * (ith + 1) / nth;
}

/* ==== f32 engine ==== */

typedef struct f32_job {
    const loom_gemm_f32_kernels *k;
    loom_dtype                   wt;
    const uint8_t               *W;
    size_t                       row_bytes;
    int64_t                      n_in, n_out, n_tok;
    const float                 *X;
    float                       *Y;
    float                       *ap;  /* [n_tb][n_in][mr] */
    uint8_t                     *thr; /* per-thread bp buffers */
    size_t                       thr_bytes;
    int64_t                      n_tb, n_pn;
} f32_job;

static void f32_pack_worker(void *ctx, int ith, int nth) {
    const f32_job *j = ctx;
    const int mr = j->k->mr;
    int64_t b, e;
    split(j->n_tb, ith, nth, &b, &e);
    for (int64_t tb = b; tb < e; tb++) {
        int64_t t0 = tb * mr;
        int nv = (int)(j->n_tok - t0 < mr ? j->n_tok - t0 : mr);
        j->k->pack_x(j->X, j->n_in, t0, nv, j->ap + (size_t)tb * (size_t)j->n_in * mr);
    }
}

static void f32_worker(void *ctx, int ith, int nth) {
    const f32_job *j = ctx;
    const int mr = j->k->mr, nr = j->k->nr;
    float *bp = (float *)(j->thr + (size_t)ith * j->thr_bytes);
    int64_t pb = 0, pe = j->n_pn, tbb = 0, tbe = j->n_tb;
    if (j->n_pn >= nth) split(j->n_pn, ith, nth, &pb, &pe);
    else split(j->n_tb, ith, nth, &tbb, &tbe);
    for (int64_t k0 = 0; k0 < j->n_in; k0 += GEMM_KC) {
        const int kc = (int)(j->n_in - k0 < GEMM_KC ? j->n_in - k0 : GEMM_KC);
        for (int64_t p = pb; p < pe; p++) {
            const int64_t o0 = p * nr;
            const int nv = (int)(j->n_out - o0 < nr ? j->n_out - o0 : nr);
            j->k->pack_w(j->wt, j->W, j->row_bytes, o0, nv, k0, kc, bp);
            for (int64_t tb = tbb; tb < tbe; tb++) {
                const int64_t t0 = tb * mr;
                const int mv = (int)(j->n_tok - t0 < mr ? j->n_tok - t0 : mr);
                const float *ap = j->ap + (size_t)tb * (size_t)j->n_in * mr + (size_t)k0 * mr;
                j->k->kernel(kc, ap, bp, j->Y + (size_t)t0 * (size_t)j->n_out + o0, (size_t)j->n_out, mv, nv, k0 > 0);
            }
        }
    }
}

static int gemm_f32(loom_pool *pool, const loom_gemm_f32_kernels *k, float *Y, const void *W, loom_dtype wt,
                    int64_t n_in, int64_t n_out, const float *X, int64_t n_tok) {
    const int nth = loom_pool_size(pool);
    f32_job j = {.k = k, .wt = wt, .W = W, .row_bytes = loom_row_size(wt, n_in), .n_in = n_in, .n_out = n_out,
                 .n_tok = n_tok, .X = X, .Y = Y};
    j.n_tb = (n_tok + k->mr - 1) / k->mr;
    j.n_pn = (n_out + k->nr - 1) / k->nr;
    size_t ap_bytes, total;
    j.thr_bytes = ALIGN_UP((size_t)GEMM_KC * (size_t)k->nr * sizeof(float));
    if (!loom_size_mul((size_t)j.n_tb * (size_t)k->mr, (size_t)n_in * sizeof(float), &ap_bytes)) return -1;
    ap_bytes = ALIGN_UP(ap_bytes);
    if (!loom_size_add(ap_bytes, j.thr_bytes * (size_t)nth, &total)) return -1;
    uint8_t *s = gscratch_get(total);
    if (!s) return -1;
    j.ap = (float *)s;
    j.thr = s + ap_bytes;
    loom_pool_run(j.n_tb > 1 ? pool : NULL, f32_pack_worker, &j);
    loom_pool_run(pool, f32_worker, &j);
    return 0;
}

/* ==== int8 engine (AMX) ==== */

typedef struct q_job {
    gemm_q_layout  L;
    const uint8_t *W;
    size_t         row_bytes;
    int64_t        n_in, n_out, n_tok;
    const float   *X;
    float         *Y;
    size_t         act_bytes;  /* one quantized activation row */
    gemm_q_act     A;          /* packed activations */
    uint8_t       *thr;        /* per-thread: quantized rows of one block, then a weight panel */
    size_t         thr_bytes, panel_bytes, xq_bytes;
    int64_t        n_tb, n_pn;
} q_job;

static void q_pack_worker(void *ctx, int ith, int nth) {
    const q_job *j = ctx;
    uint8_t *xq = j->thr + (size_t)ith * j->thr_bytes + j->panel_bytes;
    int64_t b, e;
    split(j->n_tb, ith, nth, &b, &e);
    for (int64_t tb = b; tb < e; tb++) {
        const int64_t t0 = tb * GEMM_TB;
        const int nv = (int)(j->n_tok - t0 < GEMM_TB ? j->n_tok - t0 : GEMM_TB);
        for (int t = 0; t < nv; t++) loom_act_quantize(j->L.wt, j->X + (t0 + t) * j->n_in, xq + (size_t)t * j->act_bytes, j->n_in);
        gemm_q_pack_act(&j->L, xq, j->act_bytes, j->n_in, nv, &j->A, tb);
    }
}

static void q_worker(void *ctx, int ith, int nth) {
    const q_job *j = ctx;
    uint8_t *panel = j->thr + (size_t)ith * j->thr_bytes;
    int64_t pb = 0, pe = j->n_pn, tbb = 0, tbe = j->n_tb;
    if (j->n_pn >= nth) split(j->n_pn, ith, nth, &pb, &pe);
    else split(j->n_tb, ith, nth, &tbb, &tbe);
    if (pb >= pe || tbb >= tbe) return;
    gemm_q_amx_begin(&j->L);
    float *F = (float *)(panel + j->panel_bytes + j->xq_bytes);
    const int64_t t0 = tbb * GEMM_TB, tv = (tbe * GEMM_TB < j->n_tok ? tbe * GEMM_TB : j->n_tok) - t0;
    for (int64_t p = pb; p < pe; p++) {
        const int64_t o0 = p * GEMM_RB;
        const int ov = (int)(j->n_out - o0 < GEMM_RB ? j->n_out - o0 : GEMM_RB);
        gemm_q_pack_panel(&j->L, j->W + (size_t)o0 * j->row_bytes, j->row_bytes, j->n_in, ov, panel);
        gemm_q_amx_panel(&j->L, j->n_in, panel, &j->A, tbb, tbe - tbb, tv,
                         j->Y + (size_t)t0 * (size_t)j->n_out + o0, (size_t)j->n_out, ov, F);
    }
    gemm_q_amx_end();
}

static int gemm_q(loom_pool *pool, float *Y, const void *W, loom_dtype wt, int64_t n_in, int64_t n_out,
                  const float *X, int64_t n_tok, const gemm_q_layout *L) {
    const int nth = loom_pool_size(pool);
    q_job j = {.L = *L, .W = W, .row_bytes = loom_row_size(wt, n_in), .n_in = n_in, .n_out = n_out,
               .n_tok = n_tok, .X = X, .Y = Y, .act_bytes = loom_act_row_size(wt, n_in)};
    j.n_tb = (n_tok + GEMM_TB - 1) / GEMM_TB;
    j.n_pn = (n_out + GEMM_RB - 1) / GEMM_RB;
    j.A.n_tb = j.n_tb;
    j.A.meta_bytes = ALIGN_UP(gemm_q_meta_bytes(L, n_in));
    j.panel_bytes = ALIGN_UP(gemm_q_panel_bytes(L, n_in));
    size_t xq_bytes, act_total, thr_total, total;
    if (!j.row_bytes || !j.act_bytes || !loom_size_mul(j.act_bytes, GEMM_TB, &xq_bytes)) return -1;
    j.xq_bytes = ALIGN_UP(xq_bytes);
    j.thr_bytes = j.panel_bytes + j.xq_bytes + (size_t)j.n_tb * 256 * sizeof(float); /* + F */
    if (!loom_size_mul(j.A.meta_bytes + (size_t)n_in * GEMM_TB, (size_t)j.n_tb, &act_total) ||
        !loom_size_mul(j.thr_bytes, (size_t)nth, &thr_total) || !loom_size_add(act_total, thr_total, &total))
        return -1;
    uint8_t *s = gscratch_get(total);
    if (!s) return -1;
    j.A.tiles = s;
    j.A.meta = s + (size_t)n_in * GEMM_TB * (size_t)j.n_tb;
    j.thr = s + act_total;
    loom_pool_run(j.n_tb > 1 ? pool : NULL, q_pack_worker, &j);
    loom_pool_run(pool, q_worker, &j);
    return 0;
}

/* ==== entry ==== */

int loom_gemm(loom_pool *pool, float *Y, const void *W, loom_dtype wt, int64_t n_in, int64_t n_out, const float *X,
              int64_t n_tok) {
    pthread_once(&g_once, tables_init);
    const loom_isa isa = loom_isa_active();
    if (n_in <= 0 || n_out <= 0 || n_tok <= 0) return 1;
    const int min_override = atomic_load(&g_min_tok);
    if (wt == LOOM_F32 || wt == LOOM_F16 || wt == LOOM_BF16) {
        if (isa < LOOM_ISA_AVX2 || n_tok < (min_override ? min_override : GEMM_MIN_TOK_F32)) return 1;
        return gemm_f32(pool, &g_f32[isa], Y, W, wt, n_in, n_out, X, n_tok);
    }
    gemm_q_layout L;
    if (isa < LOOM_ISA_AVX512 || !g_amx_ok || !atomic_load(&g_amx_on) || n_tok < (min_override ? min_override : GEMM_MIN_TOK_Q)) return 1;
    if (gemm_q_layout_for(wt, &L) != 0 || n_in % L.group != 0) return 1;
    return gemm_q(pool, Y, W, wt, n_in, n_out, X, n_tok, &L);
}
