/* fusion/lm_forward.c — the backbone forward pass over a batch of positions, with the KV cache.
 *
 * Pipeline per layer (LLAMA4.md §1.3–§1.5), for a batch of n embeddings at absolute positions pos..pos+n-1:
 *
 *   xn = RMSNorm(x) * attn_norm
 *   q, k, v = xn Wq, xn Wk, xn Wv                       [n, n_head*d_head], [n, n_kv_head*d_head] x2
 *   RoPE layers: rotate adjacent pairs of q and k; then QK-norm (no weight) when the model uses it
 *   NoPE layers: q *= 1 + 0.1 ln(1 + floor((p+1)/floor_scale))       (k untouched, so the cache is too)
 *   attention: causal; RoPE layers only see keys in their own absolute-aligned chunk
 *   x += attn Wo
 *   hn = RMSNorm(x) * ffn_norm
 *   MoE: top-k over raw router logits, g = sigmoid(logit), routed = E(g * hn) (weight on the INPUT),
 *        plus the shared expert on hn; dense layers: SwiGLU
 *   x += ffn
 * then logits = RMSNorm(x) * output_norm · W_out for the rows the caller asked for.
 *
 * Keys and values of the batch are attended from the batch buffers, and only written to the cache after the
 * layer's attention: a chunked layer's ring holds one chunk, and a batch crossing a chunk boundary must not
 * overwrite keys that its own earlier queries still need.
 */
#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "core/attn.h"
#include "core/log.h"
#include "core/matmul.h"
#include "core/ops.h"
#include "fusion/lm_int.h"

#define LM_MAX_BATCH 512
#define LM_MAX_EXPERTS 4096 /* lm_load.c refuses more */

/* ==== scratch layout ==== */

typedef struct batch_dims {
    size_t d, qd, kvd, wide, hidden, E, K;
} batch_dims;

static batch_dims dims_of(const loom_lm_hparams *hp) {
    batch_dims m;
    m.d = (size_t)hp->d_model;
    m.qd = (size_t)hp->n_head * hp->d_head;
    m.kvd = (size_t)hp->n_kv_head * hp->d_head;
    m.wide = m.qd > m.d ? m.qd : m.d; /* att doubles as the FFN output [n, d] */
    m.hidden = (size_t)hp->d_expert;
    if ((size_t)hp->d_shexp > m.hidden) m.hidden = (size_t)hp->d_shexp;
    if ((size_t)hp->d_ff_dense > m.hidden) m.hidden = (size_t)hp->d_ff_dense;
    m.E = (size_t)(hp->n_expert > 0 ? hp->n_expert : 1);
    m.K = (size_t)(hp->n_expert_used > 0 ? hp->n_expert_used : 1);
    return m;
}

/* Must cover every loom_arena_alloc in eval_batch (18 allocations, each padded to LOOM_ALIGN). */
static size_t scratch_bytes(const loom_lm_hparams *hp, size_t B) {
    batch_dims m = dims_of(hp);
    size_t floats = B * (m.d + 2 * m.wide + m.qd + 2 * m.kvd + 2 * m.K * m.hidden + 2 * m.K * m.d + m.E + 4 * m.K +
                         (size_t)hp->d_head);
    floats += m.d;
    return floats * sizeof(float) + 20 * LOOM_ALIGN;
}

/* ==== session ==== */

/* KV buffers on huge pages, as the weights, where a buffer fills one: on 4 KiB pages a long decode's attention
 * takes a TLB miss (a nested page walk in a VM) every 4 KiB of each head's keys and values; below 2 MiB a huge
 * page would make the rest of its 2 MiB resident for nothing */
static bool kv_huge(size_t bytes) { return bytes >= ((size_t)2 << 20); }
static float *kv_alloc(size_t bytes) { return kv_huge(bytes) ? loom_malloc_huge(bytes) : loom_malloc(bytes); }
static void kv_release(float *p, size_t bytes) {
    if (kv_huge(bytes)) loom_free_huge(p, bytes);
    else loom_free(p);
}

loom_status loom_lm_session_new(loom_lm_session **out, const loom_lm *lm, int64_t n_ctx, int n_threads, loom_err *err) {
    *out = NULL;
    const loom_lm_hparams *hp = &lm->hp;
    if (n_ctx < 1 || n_ctx > (1LL << 26))
        return LOOM_FAIL(err, LOOM_ERR_INVALID, "context size %lld is out of range [1, %lld]", (long long)n_ctx,
                         1LL << 26);
    loom_lm_session *s = loom_calloc(1, sizeof *s);
    if (!s) return LOOM_FAIL(err, LOOM_ERR_NOMEM, "out of memory");
    s->lm = lm;
    s->n_ctx = n_ctx;
    s->max_batch = n_ctx < LM_MAX_BATCH ? n_ctx : LM_MAX_BATCH;
    loom_status st = loom_pool_new(&s->pool, n_threads, err);
    if (st) goto fail;
    s->kv = loom_calloc((size_t)hp->n_layer, sizeof(lm_kv));
    if (!s->kv) goto nomem;
    size_t kvd = (size_t)hp->n_kv_head * hp->d_head;
    for (int l = 0; l < hp->n_layer; l++) {
        int64_t cap = n_ctx;
        if (lm->layers[l].use_rope && hp->chunk_size < cap) cap = hp->chunk_size;
        size_t bytes;
        if (!loom_size_mul((size_t)cap, kvd * sizeof(float), &bytes)) goto nomem;
        s->kv[l].cap = cap;
        s->kv[l].bytes = bytes;
        s->kv[l].k = kv_alloc(bytes);
        s->kv[l].v = kv_alloc(bytes);
        if (!s->kv[l].k || !s->kv[l].v) goto nomem;
        /* touched now, as llama.cpp clears its KV buffer: otherwise the first pass over each position takes
         * page faults inside a decode step (~0.08 ms per token on the reference shape) */
        memset(s->kv[l].k, 0, bytes);
        memset(s->kv[l].v, 0, bytes);
    }
    if (loom_arena_init(&s->scratch, scratch_bytes(hp, (size_t)s->max_batch)) != LOOM_OK)
        goto nomem;
    *out = s;
    return LOOM_OK;
nomem:
    st = LOOM_FAIL(err, LOOM_ERR_NOMEM, "out of memory for a %lld-position KV cache (try a smaller -c)", (long long)n_ctx);
fail:
    loom_lm_session_free(s);
    return st;
}

void loom_lm_session_free(loom_lm_session *s) {
    if (!s) return;
    if (s->kv)
        for (int l = 0; l < s->lm->hp.n_layer; l++) {
            kv_release(s->kv[l].k, s->kv[l].bytes);
            kv_release(s->kv[l].v, s->kv[l].bytes);
        }
    loom_free(s->kv);
    loom_arena_release(&s->scratch);
    loom_pool_free(s->pool);
    loom_free(s);
}

int64_t loom_lm_session_pos(const loom_lm_session *s) { return s->pos; }
int64_t loom_lm_session_n_ctx(const loom_lm_session *s) { return s->n_ctx; }
void loom_lm_session_reset(loom_lm_session *s) { s->pos = 0; }

/* ==== profiling (loom_lm_session_set_profiling) ==== */

void loom_lm_session_set_profiling(loom_lm_session *s, bool on) {
    s->profiling = on;
    memset(&s->prof, 0, sizeof s->prof);
}

void loom_lm_session_get_profile(const loom_lm_session *s, loom_lm_profile *out) { *out = s->prof; }

const char *loom_lm_part_name(loom_lm_part part) {
    static const char *const names[LOOM_LM_PART_COUNT] = {"glue", "qkv", "attention", "wo", "shared", "routed", "head"};
    return part >= 0 && part < LOOM_LM_PART_COUNT ? names[part] : "?";
}

/* Charges the time since the previous charge, and `bytes` of weights read, to `part`. */
static void prof_charge(loom_lm_session *s, loom_lm_part part, double bytes) {
    if (!s->profiling) return;
    const double t = loom_time_s();
    s->prof.seconds[part] += t - s->prof_mark;
    s->prof.weight_bytes[part] += bytes;
    s->prof_mark = t;
}

static double weight_bytes(const lm_weight *w) { return (double)w->n_out * (double)w->row_bytes; }

/* ==== helpers ==== */

static const void *expert_slice(const lm_weight *w, int e) {
    return (const unsigned char *)w->data + (size_t)e * (size_t)w->n_out * w->row_bytes;
}

static int mm(loom_lm_session *s, float *y, const lm_weight *w, const void *data, const float *x, int64_t n) {
    return loom_matmul(s->pool, y, data ? data : w->data, w->type, w->n_in, w->n_out, x, n);
}

/* ==== attention ====
 *
 * Work is split into tasks of up to 16 (position, query head) lanes that share one KV head: the GQA group of a
 * few consecutive positions. Each task streams its keys once through core/attn (fused online softmax). Keys
 * before pos0 come from the ring cache (one or two contiguous runs: the ring may wrap), keys of the batch from
 * the batch buffers. */

typedef struct attn_job {
    const loom_lm_hparams *hp;
    const lm_kv           *kv;
    const float           *q, *k, *v; /* batch [n, qd], [n, kvd], [n, kvd] */
    float                 *out;       /* [n, qd] */
    int64_t                n, pos0, tasks_per_kv;
    bool                   chunked;
    _Alignas(64) _Atomic int64_t next_task; /* loom_pool_take's counter */
    char                   pad[64 - sizeof(int64_t)];
} attn_job;

static void attn_tasks(const attn_job *j, int64_t begin, int64_t end) {
    const loom_lm_hparams *hp = j->hp;
    int dh = hp->d_head, G = hp->n_head / hp->n_kv_head;
    int64_t qd = (int64_t)hp->n_head * dh, kvd = (int64_t)hp->n_kv_head * dh, cap = j->kv->cap;
    for (int64_t task = begin; task < end; task++) {
        int kh = (int)(task / j->tasks_per_kv);
        int64_t lane0 = (task % j->tasks_per_kv) * LOOM_ATTN_LANES, lanes = (int64_t)j->n * G - lane0;
        if (lanes > LOOM_ATTN_LANES) lanes = LOOM_ATTN_LANES;
        loom_attn_task t;
        t.n_q = (int)lanes;
        t.d_head = dh;
        t.scale = 1.0f / sqrtf((float)dh);
        int64_t min_lo = INT64_MAX, max_hi = -1;
        for (int m = 0; m < t.n_q; m++) {
            int64_t i = (lane0 + m) / G, h = (int64_t)kh * G + (lane0 + m) % G, p = j->pos0 + i;
            t.q[m] = j->q + i * qd + h * dh;
            t.out[m] = j->out + i * qd + h * dh;
            t.hi[m] = p;
            t.lo[m] = j->chunked ? (p / hp->chunk_size) * hp->chunk_size : 0;
            if (t.lo[m] < min_lo) min_lo = t.lo[m];
            if (p > max_hi) max_hi = p;
        }
        t.n_seg = 0;
        /* cached keys: positions [min_lo, pos0), slot = pos % cap, split where the ring wraps */
        for (int64_t a = min_lo; a < j->pos0;) {
            int64_t slot = a % cap, run = cap - slot;
            if (run > j->pos0 - a) run = j->pos0 - a;
            const int64_t row = (int64_t)kh * cap + slot;
            t.seg[t.n_seg++] = (loom_attn_seg){j->kv->k + row * dh, j->kv->v + row * dh, dh, a, run};
            a += run;
        }
        if (max_hi >= j->pos0)
            t.seg[t.n_seg++] = (loom_attn_seg){j->k + (int64_t)kh * dh, j->v + (int64_t)kh * dh, kvd, j->pos0,
                                               max_hi - j->pos0 + 1};
        loom_attn_run(&t);
    }
}

/* ==== one layer ==== */

typedef struct batch_bufs {
    float   *x, *xn, *q, *k, *v, *att, *h1, *h2, *ffn, *gathered, *router;
    float   *rope_cs; /* [n][d_head] cos/sin pairs of the batch's positions */
    int32_t *sel;   /* [n, k] selected experts */
    float   *gate;  /* [n, k] sigmoid weights */
    int32_t *order; /* [n * k] token-slot indices grouped by expert */
    int32_t *where; /* [n * k] row of each slot in the grouped buffers */
} batch_bufs;

/* cos/sin of every rotary pair at positions pos0 .. pos0+n-1: [n][d_head / 2][2]. A table per batch, not per
 * layer: the angles depend only on the position, and 16-48 layers recomputing them was most of the RoPE step. */
/* Tasks differ in cost (a later position sees more keys), so they go out by guided self-scheduling. */
static void attn_worker(void *arg, int ith, int nth) {
    (void)ith;
    attn_job *j = arg;
    int64_t b, e;
    while (loom_pool_take(&j->next_task, j->tasks_per_kv * j->hp->n_kv_head, nth, 1, &b, &e)) attn_tasks(j, b, e);
}

static void rope_table(float *cs, int64_t n, int dh, int64_t pos0, const float *inv_freq) {
    const int n_pairs = dh / 2;
    for (int64_t i = 0; i < n; i++) {
        const float p = (float)(pos0 + i);
        for (int c = 0; c < n_pairs; c++) {
            const float ang = p * inv_freq[c];
            cs[(i * n_pairs + c) * 2] = cosf(ang);
            cs[(i * n_pairs + c) * 2 + 1] = sinf(ang);
        }
    }
}

/* Rotates the adjacent pairs of every q and k head of n rows (LLAMA4.md §1.4) by the rows' table entries. */
static void rope_rows(float *q, float *k, int64_t n, int n_head, int n_kv_head, int dh, const float *cs) {
    const int n_pairs = dh / 2;
    for (int64_t i = 0; i < n; i++) {
        const float *c = cs + i * dh;
        for (int h = 0; h < n_head; h++) loom_op_rope_pairs(q + (i * n_head + h) * dh, c, n_pairs);
        for (int h = 0; h < n_kv_head; h++) loom_op_rope_pairs(k + (i * n_kv_head + h) * dh, c, n_pairs);
    }
}

/* ==== row-parallel elementwise steps ====
 * With the matmuls on AMX/VNNI, the per-row work between them (norms, RoPE, residuals, SwiGLU) would cap the
 * 1 -> 2 thread prefill speed-up if it ran on one thread, so it is split over rows too. Small batches (a decode
 * step) run inline: a dispatch costs more than the work. */

enum { ROWS_ADD_NORM, ROWS_QK, ROWS_SWIGLU, ROWS_GATHER, ROWS_SCATTER, ROWS_KV_STORE };

typedef struct rows_job {
    const loom_lm  *lm;
    const lm_layer *L;
    batch_bufs     *b;
    float          *x;    /* ADD_NORM: x += add, then xn = rmsnorm(x) * norm when norm is set */
    const float    *add;
    const float    *norm;
    int64_t         pos0; /* QK: position of row 0 */
    const float    *hn;   /* GATHER: the normed FFN input [n, d] */
    float          *out;  /* SCATTER: the FFN output [n, d] */
    lm_kv          *kv;   /* KV_STORE: the layer's ring */
    int             K;    /* experts per token */
    int64_t         off;  /* SWIGLU: first element of the flat range; KV_STORE: first batch row */
    int             what;
} rows_job;

static void rows_run(void *arg, int64_t begin, int64_t end, int ith) {
    (void)ith;
    const rows_job *j = arg;
    const loom_lm_hparams *hp = &j->lm->hp;
    batch_bufs *b = j->b;
    int d = hp->d_model, dh = hp->d_head;
    int64_t qd = (int64_t)hp->n_head * dh, kvd = (int64_t)hp->n_kv_head * dh;
    if (j->what == ROWS_ADD_NORM) {
        for (int64_t i = begin; i < end; i++) {
            float *x = j->x + i * d;
            if (j->add) loom_op_add(x, j->add + i * d, d);
            if (j->norm) loom_op_rmsnorm(b->xn + i * d, x, j->norm, d, hp->norm_eps);
        }
    } else if (j->what == ROWS_QK) {
        if (j->L->use_rope) {
            rope_rows(b->q + begin * qd, b->k + begin * kvd, end - begin, hp->n_head, hp->n_kv_head, dh,
                      b->rope_cs + begin * dh);
            if (hp->use_qk_norm) {
                for (int64_t r = begin * hp->n_head; r < end * hp->n_head; r++)
                    loom_op_rmsnorm(b->q + r * dh, b->q + r * dh, NULL, dh, hp->norm_eps);
                for (int64_t r = begin * hp->n_kv_head; r < end * hp->n_kv_head; r++)
                    loom_op_rmsnorm(b->k + r * dh, b->k + r * dh, NULL, dh, hp->norm_eps);
            }
        } else {
            for (int64_t i = begin; i < end; i++) {
                double p = (double)(j->pos0 + i);
                float sc = (float)(log(floor((p + 1.0) / hp->temp_floor_scale) + 1.0) * hp->temp_attn_scale + 1.0);
                for (int64_t c = 0; c < qd; c++) b->q[i * qd + c] *= sc;
            }
        }
    } else if (j->what == ROWS_SWIGLU) { /* over the flat range of h1/h2 */
        loom_op_silu_mul(b->h1 + begin + j->off, b->h2 + begin + j->off, end - begin);
    } else if (j->what == ROWS_GATHER) { /* expert input rows, grouped by expert: g * hn (weight on the input) */
        for (int64_t c = begin; c < end; c++) {
            int64_t slot = b->order[c], i = slot / j->K;
            float g = b->gate[slot];
            for (int t = 0; t < d; t++) b->gathered[c * d + t] = g * j->hn[i * d + t];
        }
    } else if (j->what == ROWS_KV_STORE) { /* batch row i (from off on) -> ring slot (pos0 + i) % cap, per head */
        const int64_t cap = j->kv->cap;
        for (int64_t i = begin + j->off; i < end + j->off; i++) {
            const int64_t slot = (j->pos0 + i) % cap;
            for (int h = 0; h < hp->n_kv_head; h++) {
                memcpy(j->kv->k + ((int64_t)h * cap + slot) * dh, b->k + i * kvd + h * dh, sizeof(float) * (size_t)dh);
                memcpy(j->kv->v + ((int64_t)h * cap + slot) * dh, b->v + i * kvd + h * dh, sizeof(float) * (size_t)dh);
            }
        }
    } else { /* ROWS_SCATTER: per token, so no two threads add into the same row */
        for (int64_t i = begin; i < end; i++)
            for (int k = 0; k < j->K; k++) {
                const float *y = b->ffn + (int64_t)b->where[i * j->K + k] * d;
                loom_op_add(j->out + i * d, y, d);
            }
    }
}

static void rows_parallel(loom_lm_session *s, rows_job *j, int64_t n, int64_t min_parallel) {
    j->lm = s->lm;
    if (n < min_parallel) rows_run(j, 0, n, 0);
    else loom_pool_for(s->pool, n, rows_run, j);
}

/* down( silu(h1) * h2 ) into out, where h1/h2 already hold the gate/up products. */
static int swiglu_down(loom_lm_session *s, float *out, const lm_weight *dn, int e, int64_t n, batch_bufs *b) {
    rows_job j = {.b = b, .what = ROWS_SWIGLU};
    rows_parallel(s, &j, n * dn->n_in, 4 * dn->n_in);
    return mm(s, out, dn, e >= 0 ? expert_slice(dn, e) : NULL, b->h1, n);
}

static int swiglu(loom_lm_session *s, float *out, const lm_weight *g, const lm_weight *u, const lm_weight *dn,
                  int e, const float *x, int64_t n, batch_bufs *b) {
    const void *gd = e >= 0 ? expert_slice(g, e) : g->data, *ud = e >= 0 ? expert_slice(u, e) : u->data;
    /* gate and up read the same input: one activation quantization, one dispatch */
    loom_matmul_job jobs[2] = {{b->h1, gd, g->type, g->n_out}, {b->h2, ud, u->type, u->n_out}};
    if (loom_matmul_multi(s->pool, jobs, 2, g->n_in, x, n)) return -1;
    return swiglu_down(s, out, dn, e, n, b);
}

/* The routed experts of a batch: gate/up of every expert that got rows in one grouped product, SwiGLU over
 * all rows, then every down projection in one more: two product passes per layer instead of two per expert
 * (a 512-token prefill gives each of 16 experts ~32 rows, too few to amortise a dispatch each). Row c of
 * the grouped buffers belongs to expert e for first[e] <= c < first[e + 1]. */
#define MOE_GROUP 32 /* experts per grouped product (2 jobs each for gate/up) */
static int routed_experts(loom_lm_session *s, const lm_layer *L, const int32_t *first, batch_bufs *b) {
    const loom_lm_hparams *hp = &s->lm->hp;
    const int64_t d = hp->d_model, h = L->gate_exps.n_out;
    loom_matmul_group_job jobs[2 * MOE_GROUP];
    for (int e0 = 0; e0 < hp->n_expert; e0 += MOE_GROUP) {
        const int e1 = e0 + MOE_GROUP < hp->n_expert ? e0 + MOE_GROUP : hp->n_expert;
        if (first[e1] == first[e0]) continue;
        int nj = 0;
        for (int e = e0; e < e1; e++) {
            const int64_t c0 = first[e], cnt = first[e + 1] - c0;
            if (!cnt) continue;
            const float *x = b->gathered + c0 * d;
            jobs[nj++] = (loom_matmul_group_job){b->h1 + c0 * h, expert_slice(&L->gate_exps, e), L->gate_exps.type, h, x, cnt};
            jobs[nj++] = (loom_matmul_group_job){b->h2 + c0 * h, expert_slice(&L->up_exps, e), L->up_exps.type, h, x, cnt};
        }
        if (loom_matmul_grouped(s->pool, jobs, nj, d)) return -1;
        /* SwiGLU over the rows of this run of experts (contiguous in the grouped buffers) */
        const int64_t r0 = first[e0], r1 = first[e1];
        rows_job sw = {.b = b, .what = ROWS_SWIGLU, .off = r0 * h};
        rows_parallel(s, &sw, (r1 - r0) * h, 4 * h);
        nj = 0;
        for (int e = e0; e < e1; e++) {
            const int64_t c0 = first[e], cnt = first[e + 1] - c0;
            if (cnt)
                jobs[nj++] = (loom_matmul_group_job){b->ffn + c0 * d, expert_slice(&L->down_exps, e), L->down_exps.type,
                                                     d, b->h1 + c0 * h, cnt};
        }
        if (loom_matmul_grouped(s->pool, jobs, nj, h)) return -1;
    }
    return 0;
}

static int moe_forward(loom_lm_session *s, const lm_layer *L, const float *hn, float *out, int64_t n, batch_bufs *b) {
    const loom_lm_hparams *hp = &s->lm->hp;
    int E = hp->n_expert, K = hp->n_expert_used, d = hp->d_model;
    /* the router and the shared expert's gate/up all read hn: one dispatch */
    loom_matmul_job jobs[3] = {{b->router, L->router.data, L->router.type, E},
                               {b->h1, L->gate_sh.data, L->gate_sh.type, L->gate_sh.n_out},
                               {b->h2, L->up_sh.data, L->up_sh.type, L->up_sh.n_out}};
    prof_charge(s, LOOM_LM_PART_GLUE, 0);
    if (loom_matmul_multi(s->pool, jobs, 3, d, hn, n)) return -1;
    if (swiglu_down(s, out, &L->down_sh, -1, n, b)) return -1;
    prof_charge(s, LOOM_LM_PART_SHARED,
                weight_bytes(&L->router) + weight_bytes(&L->gate_sh) + weight_bytes(&L->up_sh) + weight_bytes(&L->down_sh));
    /* top-k on the raw logits; the sigmoid of each selected logit is its weight (no softmax, no renorm) */
    for (int64_t i = 0; i < n; i++) {
        const float *r = b->router + i * E;
        for (int k = 0; k < K; k++) {
            int best = -1;
            for (int e = 0; e < E; e++) {
                bool taken = false;
                for (int kk = 0; kk < k; kk++) taken |= b->sel[i * K + kk] == e;
                if (!taken && (best < 0 || r[e] > r[best])) best = e;
            }
            b->sel[i * K + k] = best;
            b->gate[i * K + k] = loom_sigmoid(r[best]);
        }
    }
    /* routed experts: slots sorted by expert (counting sort), so each expert's weights are read once per batch;
     * order[c] is the slot in row c of the grouped buffers, where[slot] the row of a slot */
    int32_t first[LM_MAX_EXPERTS + 1] = {0};
    for (int64_t slot = 0; slot < n * K; slot++) first[b->sel[slot] + 1]++;
    for (int e = 0; e < E; e++) first[e + 1] += first[e];
    int32_t fill[LM_MAX_EXPERTS];
    memcpy(fill, first, sizeof(int32_t) * (size_t)E);
    for (int64_t slot = 0; slot < n * K; slot++) {
        int32_t row = fill[b->sel[slot]]++;
        b->order[row] = (int32_t)slot;
        b->where[slot] = row;
    }
    rows_job gather = {.b = b, .hn = hn, .K = K, .what = ROWS_GATHER};
    rows_parallel(s, &gather, n * K, 4);
    prof_charge(s, LOOM_LM_PART_GLUE, 0);
    double routed_bytes = 0;
    for (int e = 0; s->profiling && e < E; e++)
        if (first[e + 1] > first[e])
            routed_bytes += weight_bytes(&L->gate_exps) + weight_bytes(&L->up_exps) + weight_bytes(&L->down_exps);
    if (n == 1) { /* decode: gate/up of the token's experts as one matrix-vector dispatch each */
        for (int e = 0; e < E; e++) {
            int64_t cnt = first[e + 1] - first[e];
            if (!cnt) continue;
            if (swiglu(s, b->ffn + (int64_t)first[e] * d, &L->gate_exps, &L->up_exps, &L->down_exps, e,
                       b->gathered + (int64_t)first[e] * d, cnt, b))
                return -1;
        }
    } else if (routed_experts(s, L, first, b)) {
        return -1;
    }
    prof_charge(s, LOOM_LM_PART_ROUTED, routed_bytes);
    rows_job scatter = {.b = b, .out = out, .K = K, .what = ROWS_SCATTER};
    rows_parallel(s, &scatter, n, 4);
    return 0;
}

static loom_status layer_forward(loom_lm_session *s, int l, int64_t n, batch_bufs *b, loom_err *err) {
    const loom_lm *lm = s->lm;
    const loom_lm_hparams *hp = &lm->hp;
    const lm_layer *L = &lm->layers[l];
    int d = hp->d_model;
    int64_t pos0 = s->pos;

    rows_job norm1 = {.b = b, .x = b->x, .norm = L->attn_norm, .what = ROWS_ADD_NORM};
    rows_parallel(s, &norm1, n, 4);
    loom_matmul_job qkv[3] = {{b->q, L->wq.data, L->wq.type, L->wq.n_out},
                              {b->k, L->wk.data, L->wk.type, L->wk.n_out},
                              {b->v, L->wv.data, L->wv.type, L->wv.n_out}};
    prof_charge(s, LOOM_LM_PART_GLUE, 0);
    if (loom_matmul_multi(s->pool, qkv, 3, d, b->xn, n))
        return LOOM_FAIL(err, LOOM_ERR_NOMEM, "layer %d: attention projections failed", l);
    prof_charge(s, LOOM_LM_PART_QKV, weight_bytes(&L->wq) + weight_bytes(&L->wk) + weight_bytes(&L->wv));
    rows_job qk = {.L = L, .b = b, .pos0 = pos0, .what = ROWS_QK};
    rows_parallel(s, &qk, n, 4);
    int64_t tasks_per_kv = (n * (hp->n_head / hp->n_kv_head) + LOOM_ATTN_LANES - 1) / LOOM_ATTN_LANES;
    attn_job job = {.hp = hp, .kv = &s->kv[l], .q = b->q, .k = b->k, .v = b->v, .out = b->att, .n = n, .pos0 = pos0,
                    .tasks_per_kv = tasks_per_kv, .chunked = L->use_rope};
    prof_charge(s, LOOM_LM_PART_GLUE, 0);
    loom_pool_run(s->pool, attn_worker, &job);
    prof_charge(s, LOOM_LM_PART_ATTN, 0);
    /* now the batch's keys may enter the ring (only the last `cap` of them can matter) */
    lm_kv *kv = &s->kv[l];
    const int64_t skip = n > kv->cap ? n - kv->cap : 0; /* rows that distinct slots cannot all hold */
    rows_job store = {.b = b, .kv = kv, .pos0 = pos0, .off = skip, .what = ROWS_KV_STORE};
    rows_parallel(s, &store, n - skip, 4);
    prof_charge(s, LOOM_LM_PART_GLUE, 0);
    if (mm(s, b->ffn, &L->wo, NULL, b->att, n)) return LOOM_FAIL(err, LOOM_ERR_NOMEM, "layer %d: output projection failed", l);
    prof_charge(s, LOOM_LM_PART_WO, weight_bytes(&L->wo));
    /* residual, then the FFN norm of the new x, in one pass over the rows (wo's output went to att2) */
    rows_job norm2 = {.b = b, .x = b->x, .add = b->ffn, .norm = L->ffn_norm, .what = ROWS_ADD_NORM};
    rows_parallel(s, &norm2, n, 4);
    /* att is dead after the output projection and at least d wide per row: it takes the FFN output */
    int rc;
    if (L->is_moe) {
        rc = moe_forward(s, L, b->xn, b->att, n, b);
    } else {
        prof_charge(s, LOOM_LM_PART_GLUE, 0);
        rc = swiglu(s, b->att, &L->gate, &L->up, &L->down, -1, b->xn, n, b);
        prof_charge(s, LOOM_LM_PART_SHARED, weight_bytes(&L->gate) + weight_bytes(&L->up) + weight_bytes(&L->down));
    }
    if (rc) return LOOM_FAIL(err, LOOM_ERR_NOMEM, "layer %d: feed-forward failed", l);
    rows_job res = {.b = b, .x = b->x, .add = b->att, .what = ROWS_ADD_NORM};
    rows_parallel(s, &res, n, 4);
    prof_charge(s, LOOM_LM_PART_GLUE, 0);
    return LOOM_OK;
}

/* ==== eval ==== */

static loom_status eval_batch(loom_lm_session *s, const float *x, int64_t n, float *logits, bool all_rows,
                              loom_err *err) {
    const loom_lm *lm = s->lm;
    const loom_lm_hparams *hp = &lm->hp;
    batch_dims m = dims_of(hp);
    size_t d = m.d, qd = m.qd, kvd = m.kvd, hidden = m.hidden, E = m.E, K = m.K, wide = m.wide;
    size_t N = (size_t)n;
    loom_arena *a = &s->scratch;
    loom_arena_reset(a);
    batch_bufs b = {0};
    b.x = loom_arena_alloc(a, N * d * sizeof(float));
    b.xn = loom_arena_alloc(a, N * wide * sizeof(float));
    b.q = loom_arena_alloc(a, N * qd * sizeof(float));
    b.k = loom_arena_alloc(a, N * kvd * sizeof(float));
    b.v = loom_arena_alloc(a, N * kvd * sizeof(float));
    b.att = loom_arena_alloc(a, N * wide * sizeof(float));
    b.h1 = loom_arena_alloc(a, N * K * hidden * sizeof(float)); /* the routed experts' rows of a batch */
    b.h2 = loom_arena_alloc(a, N * K * hidden * sizeof(float));
    b.ffn = loom_arena_alloc(a, N * K * d * sizeof(float));
    b.gathered = loom_arena_alloc(a, N * K * d * sizeof(float));
    b.router = loom_arena_alloc(a, N * E * sizeof(float));
    b.sel = loom_arena_alloc(a, N * K * sizeof(int32_t));
    b.gate = loom_arena_alloc(a, N * K * sizeof(float));
    b.order = loom_arena_alloc(a, N * K * sizeof(int32_t));
    b.where = loom_arena_alloc(a, N * K * sizeof(int32_t));
    b.rope_cs = loom_arena_alloc(a, N * (size_t)hp->d_head * sizeof(float));
    float *norm = loom_arena_alloc(a, d * sizeof(float));
    if (!b.x || !b.xn || !b.q || !b.k || !b.v || !b.att || !b.h1 || !b.h2 || !b.ffn || !b.gathered || !b.router ||
        !b.sel || !b.gate || !b.order || !b.where || !b.rope_cs || !norm)
        return LOOM_FAIL(err, LOOM_ERR_NOMEM, "scratch arena too small for a batch of %lld", (long long)n);
    if (s->profiling) s->prof_mark = loom_time_s();
    memcpy(b.x, x, N * d * sizeof(float));
    rope_table(b.rope_cs, n, hp->d_head, s->pos, lm->inv_freq);
    for (int l = 0; l < hp->n_layer; l++) {
        loom_status st = layer_forward(s, l, n, &b, err);
        if (st) return st;
    }
    s->pos += n;
    if (!logits) return LOOM_OK;
    prof_charge(s, LOOM_LM_PART_GLUE, 0);
    int64_t first = all_rows ? 0 : n - 1;
    for (int64_t i = first; i < n; i++) {
        loom_op_rmsnorm(b.xn + (i - first) * d, b.x + i * d, lm->output_norm, (int64_t)d, hp->norm_eps);
    }
    if (loom_matmul(s->pool, logits, lm->output.data, lm->output.type, lm->output.n_in, lm->output.n_out, b.xn, n - first))
        return LOOM_FAIL(err, LOOM_ERR_NOMEM, "output head failed");
    prof_charge(s, LOOM_LM_PART_HEAD, weight_bytes(&lm->output));
    return LOOM_OK;
}

loom_status loom_lm_eval(loom_lm_session *s, const float *x, int64_t n, float *logits, loom_logits_mode mode,
                         loom_err *err) {
    if (n < 1) return LOOM_FAIL(err, LOOM_ERR_INVALID, "nothing to evaluate");
    if (n > s->n_ctx - s->pos)
        return LOOM_FAIL(err, LOOM_ERR_LIMIT, "%lld more positions do not fit the context of %lld (%lld used); use a larger -c",
                         (long long)n, (long long)s->n_ctx, (long long)s->pos);
    int64_t V = s->lm->hp.n_vocab, d = s->lm->hp.d_model;
    if (s->profiling) s->prof.evals++;
    for (int64_t done = 0; done < n;) {
        int64_t nb = n - done < s->max_batch ? n - done : s->max_batch;
        bool last_batch = done + nb == n;
        float *out = NULL;
        if (mode == LOOM_LOGITS_ALL) out = logits + done * V;
        else if (mode == LOOM_LOGITS_LAST && last_batch) out = logits;
        loom_status st = eval_batch(s, x + done * d, nb, out, mode == LOOM_LOGITS_ALL, err);
        if (st) return st;
        done += nb;
    }
    return LOOM_OK;
}
