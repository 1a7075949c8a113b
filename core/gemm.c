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
#include <stdbool.h>

#include "core/alloc.h"
#include "core/gemm_int.h"
#include "core/tls_scratch.h"
#include "core/matmul_int.h"

/* Below this many tokens the dot4 path (no packing) is used. Measured (Q4_K 2048x1024, one thread): AMX
 * 0.28 ms vs dot4 0.23 ms at 4 tokens, 0.28 vs 0.51 at 8, so the break-even is ~6 tokens; the threshold is
 * one full token block (16) because test_matmul's products_equal_vec_dot_* expect loom_matmul to equal
 * loom_vec_dot bit for bit for n_tok <= 9, which only the dot4 path guarantees. */
#define GEMM_MIN_TOK_F32 16
#define GEMM_MIN_TOK_Q   8 /* AMX beats the dot4 kernels from ~6 tokens (routed experts often get few); VNNI is
                              * about even with dot4 at 8 (Q4_K 1024x2048: 0.39 vs ~0.35 ms) and ahead from 12;
                              * AVX2 (Zen 3) is 2x ahead of its dot4 at 8 (0.52 vs 1.07 ms) */

#define ALIGN_UP(x) (((x) + 63) & ~(size_t)63)

/* ==== scratch: core/tls_scratch.h ==== */

static void *gscratch_get(size_t n) { return loom_tls_scratch_get(LOOM_TLS_GEMM, n); }

void loom_gemm_scratch_release(void) { loom_tls_scratch_release(LOOM_TLS_GEMM); }

/* ==== ISA tables and AMX state ==== */

static loom_gemm_f32_kernels g_f32[3];
static pthread_once_t        g_once = PTHREAD_ONCE_INIT;
static int                   g_amx_ok;      /* CPU + OS support, probed once */
static atomic_int            g_amx_on = 1;  /* tests/bench switch */
static atomic_int            g_vnni_on = 1; /* tests/bench switch */
static atomic_int            g_avx2_on = 1; /* tests/bench switch */
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

int loom_gemm_vnni_enable(int on) {
    pthread_once(&g_once, tables_init);
    atomic_store(&g_vnni_on, on ? 1 : 0);
    return on && loom_isa_best() >= LOOM_ISA_AVX512; /* the AVX-512 level includes VNNI (cpu_features.c) */
}

int loom_gemm_avx2_enable(int on) {
    pthread_once(&g_once, tables_init);
    atomic_store(&g_avx2_on, on ? 1 : 0);
    return on && loom_isa_best() >= LOOM_ISA_AVX2;
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
    float                       *ap;  /* per block of k->kc inputs: [n_tb][kc][mr] (see f32_ap) */
    uint8_t                     *thr; /* per-thread bp buffers */
    size_t                       thr_bytes;
    int64_t                      n_tb, n_pn;
    _Atomic int64_t              next_panel; /* the first panel no thread has taken */
} f32_job;

/* Token block tb's packed activations for the input block from k0 (kc inputs). The blocks of one k0 are
 * adjacent, so each output panel streams them as one run: laid out token block by token block over all
 * inputs, every kernel call started a new 6 KB run 33 KB from the last (ViT, 1408 inputs), which the
 * prefetchers lost, and the product ran at half the rate of its own micro-kernel. */
static float *f32_ap(const f32_job *j, int64_t k0, int kc, int64_t tb) {
    return j->ap + (size_t)k0 * (size_t)j->n_tb * (size_t)j->k->mr + (size_t)tb * (size_t)kc * (size_t)j->k->mr;
}

static void f32_pack_worker(void *ctx, int ith, int nth) {
    const f32_job *j = ctx;
    const int mr = j->k->mr;
    int64_t b, e;
    split(j->n_tb, ith, nth, &b, &e);
    for (int64_t tb = b; tb < e; tb++) {
        int64_t t0 = tb * mr;
        int nv = (int)(j->n_tok - t0 < mr ? j->n_tok - t0 : mr);
        for (int64_t k0 = 0; k0 < j->n_in; k0 += j->k->kc) {
            const int kc = (int)(j->n_in - k0 < j->k->kc ? j->n_in - k0 : j->k->kc);
            j->k->pack_x(j->X + k0, j->n_in, kc, t0, nv, f32_ap(j, k0, kc, tb));
        }
    }
}

/* Panel p (nr outputs) over token blocks [tbb, tbe), every input block in order (the kernel adds each
 * block's sums to Y), so a panel's results do not depend on which thread computes it. */
static void f32_panel(const f32_job *j, int64_t p, int64_t tbb, int64_t tbe, float *bp) {
    const int mr = j->k->mr, nr = j->k->nr;
    const int64_t o0 = p * nr;
    const int nv = (int)(j->n_out - o0 < nr ? j->n_out - o0 : nr);
    for (int64_t k0 = 0; k0 < j->n_in; k0 += j->k->kc) {
        const int kc = (int)(j->n_in - k0 < j->k->kc ? j->n_in - k0 : j->k->kc);
        j->k->pack_w(j->wt, j->W, j->row_bytes, o0, nv, k0, kc, bp);
        for (int64_t tb = tbb; tb < tbe; tb++) {
            const int64_t t0 = tb * mr;
            const int mv = (int)(j->n_tok - t0 < mr ? j->n_tok - t0 : mr);
            const float *ap = f32_ap(j, k0, kc, tb);
            if (tb + 1 < tbe) /* the next block's Y rows: strided by n_out, they miss L2 and stall the epilogue */
                for (int i = 0; i < mr && t0 + mr + i < j->n_tok; i++) {
                    const char *y = (const char *)(j->Y + (size_t)(t0 + mr + i) * (size_t)j->n_out + o0);
                    __builtin_prefetch(y, 1);
                    __builtin_prefetch(y + (size_t)nv * sizeof(float) - 1, 1);
                }
            j->k->kernel(kc, ap, bp, j->Y + (size_t)t0 * (size_t)j->n_out + o0, (size_t)j->n_out, mv, nv, k0 > 0);
        }
    }
}

/* Threads take output panels by guided self-scheduling (loom_pool_take), as the decode matvecs take rows: a
 * static split waits at the end of every product for whichever vCPU the VM slowed (a ViT tile is ~140
 * products). With fewer panels than threads they split the token blocks instead. Taking two or four panels
 * per pass over the activations (to halve their L3 reads) measured no different here. */
static void f32_worker(void *ctx, int ith, int nth) {
    f32_job *j = ctx;
    float *bp = (float *)(j->thr + (size_t)ith * j->thr_bytes);
    if (j->n_pn >= nth) {
        int64_t p0, p1;
        while (loom_pool_take(&j->next_panel, j->n_pn, nth, 1, &p0, &p1))
            for (int64_t p = p0; p < p1; p++) f32_panel(j, p, 0, j->n_tb, bp);
    } else {
        int64_t tbb, tbe;
        split(j->n_tb, ith, nth, &tbb, &tbe);
        for (int64_t p = 0; p < j->n_pn; p++) f32_panel(j, p, tbb, tbe, bp);
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
    j.thr_bytes = ALIGN_UP((size_t)k->kc * (size_t)k->nr * sizeof(float));
    if (!loom_size_mul((size_t)j.n_tb * (size_t)k->mr, (size_t)n_in * sizeof(float), &ap_bytes)) return -1;
    ap_bytes = ALIGN_UP(ap_bytes);
    if (!loom_size_add(ap_bytes, j.thr_bytes * (size_t)nth, &total)) return -1;
    uint8_t *s = gscratch_get(total);
    if (!s) return -1;
    j.ap = (float *)s;
    j.thr = s + ap_bytes;
    loom_pool_run(j.n_tb > 1 ? pool : NULL, f32_pack_worker, &j);
    atomic_init(&j.next_panel, 0);
    loom_pool_run(pool, f32_worker, &j);
    return 0;
}

/* ==== int8 engines: AMX, else AVX-512 VNNI, else AVX2 (same passes and buffers, their own layouts) ==== */

typedef struct q_engine {
    int    (*layout_for)(loom_dtype wt, gemm_q_layout *L);
    size_t (*meta_bytes)(const gemm_q_layout *L, int64_t n_in);
    size_t (*panel_bytes)(const gemm_q_layout *L, int64_t n_in);
    void   (*pack_act)(const gemm_q_layout *L, const uint8_t *xq, size_t act_bytes, int64_t n_in, int nv,
                       const gemm_q_act *A, int64_t tb);
    void   (*pack_panel)(const gemm_q_layout *L, const uint8_t *W, size_t row_bytes, int64_t n_in, int nv,
                         uint8_t *dst);
    void   (*begin)(const gemm_q_layout *L);
    void   (*end)(void);
    void   (*panel)(const gemm_q_layout *L, int64_t n_in, const uint8_t *panel, const gemm_q_act *A, int64_t tb0,
                    int64_t n_tb, int64_t n_tokv, float *Y, size_t ldy, int ov, float *F);
} q_engine;

static void no_begin(const gemm_q_layout *L) { (void)L; }
static void no_end(void) {}

static const q_engine k_amx = {gemm_q_layout_for, gemm_q_meta_bytes, gemm_q_panel_bytes, gemm_q_pack_act,
                               gemm_q_pack_panel, gemm_q_amx_begin, gemm_q_amx_end, gemm_q_amx_panel};
static const q_engine k_vnni = {gemm_q_tok_layout_for, gemm_q_tok_meta_bytes, gemm_q_vnni_panel_bytes,
                                gemm_q_tok_pack_act, gemm_q_vnni_pack_panel, no_begin, no_end, gemm_q_vnni_panel};
static const q_engine k_avx2 = {gemm_q_tok_layout_for, gemm_q_tok_meta_bytes, gemm_q_avx2_panel_bytes,
                                gemm_q_tok_pack_act, gemm_q_avx2_pack_panel, no_begin, no_end, gemm_q_avx2_panel};

/* The engine quantized products use now, or NULL (dot4 fallback). With the AVX-512 engines switched off the
 * AVX2 one runs on AVX-512 machines too, which is how their tests reach it there. */
static const q_engine *q_engine_now(void) {
    const loom_isa isa = loom_isa_active();
    if (isa >= LOOM_ISA_AVX512 && g_amx_ok && atomic_load(&g_amx_on)) return &k_amx;
    if (isa >= LOOM_ISA_AVX512 && atomic_load(&g_vnni_on)) return &k_vnni;
    return isa >= LOOM_ISA_AVX2 && atomic_load(&g_avx2_on) ? &k_avx2 : NULL;
}

typedef struct q_job {
    const q_engine *E;
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
    _Alignas(64) _Atomic int64_t next_panel; /* loom_pool_take's counter */
    char           pad[64 - sizeof(int64_t)];
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
        j->E->pack_act(&j->L, xq, j->act_bytes, j->n_in, nv, &j->A, tb);
    }
}

/* Panels go out by guided self-scheduling (loom_pool_take): on a shared VM one core's int8 throughput can
 * drop by a third for a while, and with a static split every product then waited for it. With fewer panels
 * than threads the token blocks are split instead. */
static void q_worker(void *ctx, int ith, int nth) {
    q_job *j = ctx;
    uint8_t *panel = j->thr + (size_t)ith * j->thr_bytes;
    float *F = (float *)(panel + j->panel_bytes + j->xq_bytes);
    int64_t pb = 0, pe = j->n_pn, tbb = 0, tbe = j->n_tb;
    const bool by_panel = j->n_pn >= nth;
    if (!by_panel) split(j->n_tb, ith, nth, &tbb, &tbe);
    if (by_panel ? !loom_pool_take(&j->next_panel, j->n_pn, nth, 1, &pb, &pe) : tbb >= tbe) return;
    j->E->begin(&j->L);
    const int64_t t0 = tbb * GEMM_TB, tv = (tbe * GEMM_TB < j->n_tok ? tbe * GEMM_TB : j->n_tok) - t0;
    do {
        for (int64_t p = pb; p < pe; p++) {
            const int64_t o0 = p * GEMM_RB;
            const int ov = (int)(j->n_out - o0 < GEMM_RB ? j->n_out - o0 : GEMM_RB);
            j->E->pack_panel(&j->L, j->W + (size_t)o0 * j->row_bytes, j->row_bytes, j->n_in, ov, panel);
            j->E->panel(&j->L, j->n_in, panel, &j->A, tbb, tbe - tbb, tv, j->Y + (size_t)t0 * (size_t)j->n_out + o0,
                        (size_t)j->n_out, ov, F);
        }
    } while (by_panel && loom_pool_take(&j->next_panel, j->n_pn, nth, 1, &pb, &pe));
    j->E->end();
}

static int gemm_q(loom_pool *pool, const q_engine *E, float *Y, const void *W, loom_dtype wt, int64_t n_in,
                  int64_t n_out, const float *X, int64_t n_tok, const gemm_q_layout *L) {
    const int nth = loom_pool_size(pool);
    q_job j = {.E = E, .L = *L, .W = W, .row_bytes = loom_row_size(wt, n_in), .n_in = n_in, .n_out = n_out,
               .n_tok = n_tok, .X = X, .Y = Y, .act_bytes = loom_act_row_size(wt, n_in)};
    j.n_tb = (n_tok + GEMM_TB - 1) / GEMM_TB;
    j.n_pn = (n_out + GEMM_RB - 1) / GEMM_RB;
    j.A.n_tb = j.n_tb;
    j.A.meta_bytes = ALIGN_UP(E->meta_bytes(L, n_in));
    j.panel_bytes = ALIGN_UP(E->panel_bytes(L, n_in));
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

/* ==== grouped int8 products ====
 *
 * Many products at once (the routed experts of a prefill batch, q/k/v, gate/up): one pass packs every distinct
 * input, one pass computes every (product, panel) pair, so a batch costs two pool dispatches instead of two per
 * product. With ~30 tokens per expert the per-product dispatches and their end-of-pass waits were what kept the
 * 1 -> 2 thread prefill speed-up below 1.8x. Each panel is computed exactly as gemm_q computes it (all token
 * blocks of its input, same kernels), so the results equal the one-at-a-time products bit for bit. */

typedef struct gq_set {
    const float *X;
    int64_t      n_tok, n_tb, tb0; /* tb0: first block in the pass's global numbering */
    gemm_q_act   A;
} gq_set;

typedef struct gq_job {
    const q_engine               *E;
    gemm_q_layout                 L; /* the activation layout every product shares */
    const loom_matmul_group_job *jobs;
    int                           n_jobs, n_sets;
    int64_t                       n_in, n_tb_total;
    size_t                        act_bytes, thr_bytes, panel_bytes, xq_bytes;
    uint8_t                      *thr;
    gemm_q_layout                 Lj[GEMM_GROUP_MAX];
    int                           set_of[GEMM_GROUP_MAX];
    int64_t                       pn0[GEMM_GROUP_MAX + 1]; /* panels of the products before this one */
    gq_set                        sets[GEMM_GROUP_MAX];
    _Alignas(64) _Atomic int64_t  next_panel; /* loom_pool_take's counter over all products' panels */
    char                          pad[64 - sizeof(int64_t)];
} gq_job;

static void gq_pack_worker(void *ctx, int ith, int nth) {
    const gq_job *j = ctx;
    uint8_t *xq = j->thr + (size_t)ith * j->thr_bytes + j->panel_bytes;
    int64_t b, e;
    split(j->n_tb_total, ith, nth, &b, &e);
    int k = 0;
    for (int64_t g = b; g < e; g++) {
        while (g >= j->sets[k].tb0 + j->sets[k].n_tb) k++;
        const gq_set *S = &j->sets[k];
        const int64_t tb = g - S->tb0, t0 = tb * GEMM_TB;
        const int nv = (int)(S->n_tok - t0 < GEMM_TB ? S->n_tok - t0 : GEMM_TB);
        for (int t = 0; t < nv; t++)
            loom_act_quantize(j->L.wt, S->X + (t0 + t) * j->n_in, xq + (size_t)t * j->act_bytes, j->n_in);
        j->E->pack_act(&j->L, xq, j->act_bytes, j->n_in, nv, &S->A, tb);
    }
}

/* (product, panel) pairs, numbered product by product, go out by guided self-scheduling (see q_worker). */
static void gq_worker(void *ctx, int ith, int nth) {
    gq_job *j = ctx;
    uint8_t *panel = j->thr + (size_t)ith * j->thr_bytes;
    float *F = (float *)(panel + j->panel_bytes + j->xq_bytes);
    int64_t g0, g1;
    bool begun = false;
    int i = 0;
    while (loom_pool_take(&j->next_panel, j->pn0[j->n_jobs], nth, 1, &g0, &g1)) {
        if (!begun) j->E->begin(&j->L);
        begun = true;
        /* a thread's pieces only move forward (the counter only grows), so i never has to go back */
        for (int64_t g = g0; g < g1; g++) {
            while (g >= j->pn0[i + 1]) i++;
            const loom_matmul_group_job *J = &j->jobs[i];
            const gq_set *S = &j->sets[j->set_of[i]];
            const size_t row_bytes = loom_row_size(J->wt, j->n_in);
            const int64_t o0 = (g - j->pn0[i]) * GEMM_RB;
            const int ov = (int)(J->n_out - o0 < GEMM_RB ? J->n_out - o0 : GEMM_RB);
            j->E->pack_panel(&j->Lj[i], (const uint8_t *)J->W + (size_t)o0 * row_bytes, row_bytes, j->n_in, ov, panel);
            j->E->panel(&j->Lj[i], j->n_in, panel, &S->A, 0, S->n_tb, S->n_tok, J->Y + o0, (size_t)J->n_out, ov, F);
        }
    }
    if (begun) j->E->end();
}

static bool same_act_layout(const gemm_q_layout *a, const gemm_q_layout *b) {
    return a->group == b->group && a->kc == b->kc && a->has_min == b->has_min;
}

int loom_gemm_grouped(loom_pool *pool, const loom_matmul_group_job *jobs, int n_jobs, int64_t n_in, bool *done) {
    pthread_once(&g_once, tables_init);
    for (int i = 0; i < n_jobs; i++) done[i] = false;
    if (n_jobs <= 0 || n_jobs > GEMM_GROUP_MAX || n_in <= 0) return 0;
    const q_engine *E = q_engine_now();
    if (!E) return 0;
    const int min_override = atomic_load(&g_min_tok), min_tok = min_override ? min_override : GEMM_MIN_TOK_Q;
    gq_job *j = loom_calloc(1, sizeof *j);
    if (!j) return -1;
    j->E = E;
    j->jobs = jobs;
    j->n_in = n_in;
    /* the products this pass takes: int8 layouts equal to the first taker's, enough tokens */
    int taken = 0;
    int64_t max_tb = 0;
    for (int i = 0; i < n_jobs; i++) {
        const loom_matmul_group_job *J = &jobs[i];
        gemm_q_layout L;
        if (J->n_tok < min_tok || J->n_out <= 0 || E->layout_for(J->wt, &L) != 0 || n_in % L.group != 0) continue;
        if (taken && !same_act_layout(&L, &j->L)) continue;
        if (!taken) j->L = L;
        int k = 0;
        while (k < j->n_sets && !(j->sets[k].X == J->X && j->sets[k].n_tok == J->n_tok)) k++;
        if (k == j->n_sets) {
            gq_set *S = &j->sets[j->n_sets++];
            S->X = J->X;
            S->n_tok = J->n_tok;
            S->n_tb = (J->n_tok + GEMM_TB - 1) / GEMM_TB;
            S->tb0 = j->n_tb_total;
            j->n_tb_total += S->n_tb;
            if (S->n_tb > max_tb) max_tb = S->n_tb;
        }
        const size_t pb = ALIGN_UP(E->panel_bytes(&L, n_in));
        if (pb > j->panel_bytes) j->panel_bytes = pb;
        j->Lj[taken] = L;
        j->set_of[taken] = k;
        j->pn0[taken + 1] = j->pn0[taken] + (J->n_out + GEMM_RB - 1) / GEMM_RB;
        done[i] = true;
        /* compact: the worker walks jobs[0..taken) of a private copy */
        taken++;
    }
    int rc = 0;
    if (taken) {
        loom_matmul_group_job *mine = loom_malloc(sizeof *mine * (size_t)taken);
        if (!mine) {
            rc = -1;
            goto out;
        }
        for (int i = 0, t = 0; i < n_jobs; i++)
            if (done[i]) mine[t++] = jobs[i];
        j->jobs = mine;
        j->n_jobs = taken;
        const int nth = loom_pool_size(pool);
        j->act_bytes = loom_act_row_size(j->L.wt, n_in);
        const size_t meta_bytes = ALIGN_UP(E->meta_bytes(&j->L, n_in));
        size_t xq_bytes, act_total = 0, thr_total, total;
        if (!j->act_bytes || !loom_size_mul(j->act_bytes, GEMM_TB, &xq_bytes)) {
            rc = -1;
            goto freed;
        }
        j->xq_bytes = ALIGN_UP(xq_bytes);
        j->thr_bytes = j->panel_bytes + j->xq_bytes + (size_t)max_tb * 256 * sizeof(float); /* + F */
        for (int k = 0; k < j->n_sets; k++) {
            size_t bytes;
            if (!loom_size_mul(meta_bytes + (size_t)n_in * GEMM_TB, (size_t)j->sets[k].n_tb, &bytes) ||
                !loom_size_add(act_total, bytes, &act_total)) {
                rc = -1;
                goto freed;
            }
        }
        if (!loom_size_mul(j->thr_bytes, (size_t)nth, &thr_total) || !loom_size_add(act_total, thr_total, &total)) {
            rc = -1;
            goto freed;
        }
        uint8_t *s = gscratch_get(total);
        if (!s) {
            rc = -1;
            goto freed;
        }
        for (int k = 0; k < j->n_sets; k++) { /* each set: tiles of all its blocks, then their metadata */
            gq_set *S = &j->sets[k];
            S->A.n_tb = S->n_tb;
            S->A.meta_bytes = meta_bytes;
            S->A.tiles = s;
            S->A.meta = s + (size_t)n_in * GEMM_TB * (size_t)S->n_tb;
            s += (meta_bytes + (size_t)n_in * GEMM_TB) * (size_t)S->n_tb;
        }
        j->thr = s;
        loom_pool_run(j->n_tb_total > 1 ? pool : NULL, gq_pack_worker, j);
        loom_pool_run(pool, gq_worker, j);
    freed:
        loom_free(mine);
    }
out:
    if (rc) for (int i = 0; i < n_jobs; i++) done[i] = false;
    loom_free(j);
    return rc;
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
    const q_engine *E = q_engine_now();
    if (!E || n_tok < (min_override ? min_override : GEMM_MIN_TOK_Q)) return 1;
    if (E->layout_for(wt, &L) != 0 || n_in % L.group != 0) return 1;
    return gemm_q(pool, E, Y, W, wt, n_in, n_out, X, n_tok, &L);
}
