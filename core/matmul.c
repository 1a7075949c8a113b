/* core/matmul.c — dispatch, activation quantization, and the threaded matvec / matmul over the kernels of
 * dot_ref.c, dot_avx2.c and dot_avx512.c (see matmul_int.h for the kernel contract).
 *
 * Threading. Output rows are split into chunks of ROW_ALIGN rows (16 f32 outputs = one 64-byte cache line),
 * and thread ith takes a contiguous run of chunks, so two threads never write the same output cache line
 * (given a 64-byte aligned output and, for matmul, n_out a multiple of 16) and each output is computed by
 * exactly one thread with the same kernel call: threaded results equal single-threaded ones bit for bit.
 *
 * Matmul tiling (prefill, ViT). All token activations are quantized once (threaded over tokens); then each
 * thread walks its rows in tiles of TILE_ROWS rows and, for each tile, all tokens four at a time through the
 * kernels' dot4 (one weight load + unpack serves four tokens). A tile of weight rows stays in L1/L2 while the
 * tokens stream over it, so every weight byte comes from memory once per call instead of once per token.
 *
 * Scratch. The API has no context argument, so quantized activations go to a per-thread buffer of the
 * *calling* thread (pthread TLS key: grown once to the largest size seen, reused, freed when that thread
 * exits or by loom_matmul_scratch_release). Worker threads only read it during the call, and two threads
 * calling matvec concurrently each get their own buffer, so no lock is needed.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/gemm_int.h"
#include "core/matmul_int.h"
#include "core/tls_scratch.h"

#define ROW_ALIGN 16
#define TILE_ROWS 16

/* ==== kernel tables ==== */

static loom_kernels   g_kern[3];
static pthread_once_t g_kern_once = PTHREAD_ONCE_INIT;

static void kern_init(void) {
    /* filling only stores function pointers; none of the SIMD code runs unless the CPU has it */
    loom_kernels_fill_ref(&g_kern[LOOM_ISA_SCALAR]);
    loom_kernels_fill_avx2(&g_kern[LOOM_ISA_AVX2]);
    loom_kernels_fill_avx512(&g_kern[LOOM_ISA_AVX512]);
}

const loom_kernels *loom_kernels_get(loom_isa isa) {
    pthread_once(&g_kern_once, kern_init);
    loom_isa best = loom_isa_best();
    if ((int)isa < 0 || isa > best) isa = best;
    return &g_kern[isa];
}

/* ==== activation formats ==== */

loom_dtype loom_vec_dot_type(loom_dtype wt) {
    switch (wt) {
    case LOOM_F32:
    case LOOM_F16:
    case LOOM_BF16: return LOOM_F32;
    case LOOM_Q8_0:
    case LOOM_Q4_0:
    case LOOM_Q4_1:
    case LOOM_Q5_0:
    case LOOM_Q5_1: return LOOM_Q8_0;
    case LOOM_Q4_K:
    case LOOM_Q5_K:
    case LOOM_Q6_K: return LOOM_Q8_K;
    default: return LOOM_DTYPE_COUNT;
    }
}

static int block_of(loom_dtype vt) { return vt == LOOM_Q8_0 ? QK8_0 : vt == LOOM_Q8_K ? QK_K : 1; }

size_t loom_act_row_size(loom_dtype wt, int64_t n) {
    loom_dtype vt = loom_vec_dot_type(wt);
    if (vt == LOOM_DTYPE_COUNT || n < 0 || n % block_of(vt)) return 0;
    size_t per = vt == LOOM_Q8_0 ? sizeof(block_q8_0) : vt == LOOM_Q8_K ? sizeof(block_q8_k) : sizeof(float);
    size_t out;
    return loom_size_mul((size_t)(n / block_of(vt)), per, &out) ? out : 0;
}

static void act_quantize_isa(const loom_kernels *k, loom_dtype wt, const float *x, void *xq, int64_t n) {
    switch (loom_vec_dot_type(wt)) {
    case LOOM_Q8_0: k->quant_q8_0(x, xq, n); break;
    case LOOM_Q8_K: k->quant_q8_k(x, xq, n); break;
    case LOOM_F32: memcpy(xq, x, (size_t)n * sizeof(float)); break;
    default: break;
    }
}

void loom_act_quantize(loom_dtype wt, const float *x, void *xq, int64_t n) {
    LOOM_ASSERT(loom_act_row_size(wt, n) != 0 || n == 0);
    act_quantize_isa(loom_kernels_get(loom_isa_active()), wt, x, xq, n);
}

/* ==== single dot products ==== */

float loom_vec_dot_isa(loom_isa isa, loom_dtype wt, int64_t n, const void *w_row, const void *xq) {
    const loom_kernels *k = loom_kernels_get(isa);
    if ((unsigned)wt >= LOOM_DTYPE_COUNT || !k->dot[wt]) return __builtin_nanf("");
    LOOM_ASSERT(n >= 0 && n % block_of(loom_vec_dot_type(wt)) == 0);
    return k->dot[wt](n, w_row, xq);
}

float loom_vec_dot(loom_dtype wt, int64_t n, const void *w_row, const void *xq) {
    return loom_vec_dot_isa(loom_isa_active(), wt, n, w_row, xq);
}

/* ==== per-thread scratch: core/tls_scratch.h ==== */

static void *scratch_get(size_t n) { return loom_tls_scratch_get(LOOM_TLS_MATMUL, n); }

void loom_matmul_scratch_release(void) { loom_tls_scratch_release(LOOM_TLS_MATMUL); }

/* ==== threaded products ==== */

typedef struct mm_job {
    const loom_kernels *k;
    loom_dtype          wt;
    const uint8_t      *W;        /* [n_out] rows of row_bytes */
    size_t              row_bytes;
    int64_t             n_in, n_out, n_tok;
    const uint8_t      *xq;       /* [n_tok] activation rows of act_bytes */
    size_t              act_bytes;
    const float        *X;        /* [n_tok, n_in] f32, for the threaded quantization */
    float              *Y;        /* [n_tok, n_out] f32 */
} mm_job;

/* Rows [*b, *e) of thread ith: whole ROW_ALIGN chunks, balanced. */
static void thread_rows(int64_t n, int ith, int nth, int64_t *b, int64_t *e) {
    int64_t chunks = (n + ROW_ALIGN - 1) / ROW_ALIGN;
    *b = chunks * ith / nth * ROW_ALIGN;
    *e = chunks * (ith + 1) / nth * ROW_ALIGN;
    if (*b > n) *b = n;
    if (*e > n) *e = n;
}

static int check_args(loom_dtype wt, int64_t n_in, int64_t n_out, size_t *row_bytes, size_t *act_bytes) {
    if ((unsigned)wt >= LOOM_DTYPE_COUNT || !loom_kernels_get(LOOM_ISA_SCALAR)->dot[wt]) return -1;
    if (n_in <= 0 || n_out < 0) return -1;
    *row_bytes = loom_row_size(wt, n_in);
    *act_bytes = loom_act_row_size(wt, n_in);
    return *row_bytes && *act_bytes ? 0 : -1;
}

static void quant_worker(void *ctx, int ith, int nth) {
    const mm_job *j = ctx;
    int64_t b = j->n_tok * ith / nth, e = j->n_tok * (ith + 1) / nth;
    for (int64_t t = b; t < e; t++)
        act_quantize_isa(j->k, j->wt, j->X + t * j->n_in, (uint8_t *)j->xq + (size_t)t * j->act_bytes, j->n_in);
}

static void matmul_worker(void *ctx, int ith, int nth) {
    const mm_job *j = ctx;
    int64_t rb, re;
    thread_rows(j->n_out, ith, nth, &rb, &re);
    const loom_dot_fn  dot = j->k->dot[j->wt];
    const loom_dot4_fn dot4 = j->k->dot4[j->wt];
    for (int64_t r0 = rb; r0 < re; r0 += TILE_ROWS) {
        const int64_t r1 = r0 + TILE_ROWS < re ? r0 + TILE_ROWS : re;
        int64_t t = 0;
        if (dot4) {
            for (; t + 4 <= j->n_tok; t += 4) {
                const uint8_t *xq = j->xq + (size_t)t * j->act_bytes;
                for (int64_t o = r0; o < r1; o++) {
                    float r[4];
                    dot4(j->n_in, j->W + (size_t)o * j->row_bytes, xq, j->act_bytes, r);
                    for (int k = 0; k < 4; k++) j->Y[(t + k) * j->n_out + o] = r[k];
                }
            }
        }
        for (; t < j->n_tok; t++) {
            const uint8_t *xq = j->xq + (size_t)t * j->act_bytes;
            for (int64_t o = r0; o < r1; o++) j->Y[t * j->n_out + o] = dot(j->n_in, j->W + (size_t)o * j->row_bytes, xq);
        }
    }
}

int loom_matmul(loom_pool *pool, float *Y, const void *W, loom_dtype wt, int64_t n_in, int64_t n_out, const float *X,
                int64_t n_tok) {
    size_t row_bytes, act_bytes;
    if (check_args(wt, n_in, n_out, &row_bytes, &act_bytes) || n_tok < 0) return -1;
    if (n_tok == 0 || n_out == 0) return 0;
    if (n_tok == 1) return loom_matvec(pool, Y, W, wt, n_in, n_out, X);
    const int g = loom_gemm(pool, Y, W, wt, n_in, n_out, X, n_tok); /* tiled GEMM where it pays */
    if (g <= 0) return g;
    const loom_kernels *k = loom_kernels_get(loom_isa_active());
    mm_job j = {.k = k, .wt = wt, .W = W, .row_bytes = row_bytes, .n_in = n_in, .n_out = n_out, .n_tok = n_tok,
                .xq = (const uint8_t *)X, .act_bytes = act_bytes, .X = X, .Y = Y};
    if (loom_vec_dot_type(wt) != LOOM_F32) {
        size_t total;
        if (!loom_size_mul(act_bytes, (size_t)n_tok, &total)) return -1;
        void *buf = scratch_get(total);
        if (!buf) return -1;
        j.xq = buf;
        loom_pool_run(pool, quant_worker, &j);
    }
    loom_pool_run(n_out >= 2 * ROW_ALIGN ? pool : NULL, matmul_worker, &j);
    return 0;
}

/* ==== single-token products (decode) ====
 *
 * A decode step is ~100 dispatches of matrix-vector products of 0.5 to 340 MB, each read once from DRAM, so
 * the goal is the memory bandwidth: threads take long contiguous runs of rows (the kernels' rows_* prefetch
 * each run as one stream; mv_worker says how they are shared out), and the products that share an input go
 * out in one pool dispatch. Runs are whole ROW_ALIGN units of each product's rows, and each row is computed
 * by the same kernel whatever the thread count, so the results equal loom_vec_dot's bit for bit. */

#define MV_MAX_PARTS 16 /* products per dispatch; loom_matmul_multi sends larger batches in groups */

typedef struct mv_part {
    loom_rows_fn   rows; /* NULL: dot per row */
    loom_dot_fn    dot;
    const uint8_t *W;
    size_t         row_bytes;
    int64_t        n_out;
    float         *y;
    const void    *xq;
} mv_part;

typedef struct mv_plan {
    int     n_parts;
    int     streams;                    /* loom_row_streams(), read once per dispatch */
    int64_t n_in;
    size_t  total;                      /* bytes of all parts */
    int64_t unit0[MV_MAX_PARTS + 1];    /* first ROW_ALIGN-row unit of each part; unit0[n_parts] = all units */
    loom_steal *ranges;                 /* the steal schedule's ranges; NULL: guided, by `next` */
    _Alignas(64) _Atomic int64_t next;  /* first unit no thread has taken yet */
    char    pad[64 - sizeof(int64_t)];  /* `next` alone in its cache line: the threads write it */
    mv_part part[MV_MAX_PARTS];
} mv_plan;

/* Rows of units [u0, u1) (ROW_ALIGN-row units numbered across the parts in order), part by part. */
static void mv_units(const mv_plan *pl, int64_t u0, int64_t u1) {
    for (int i = 0; i < pl->n_parts && u0 < u1; i++) {
        if (u0 >= pl->unit0[i + 1]) continue;
        const mv_part *p = &pl->part[i];
        const int64_t end_u = u1 < pl->unit0[i + 1] ? u1 : pl->unit0[i + 1];
        const int64_t b = (u0 - pl->unit0[i]) * ROW_ALIGN;
        int64_t e = (end_u - pl->unit0[i]) * ROW_ALIGN;
        if (e > p->n_out) e = p->n_out;
        u0 = end_u;
        const uint8_t *W = p->W + (size_t)b * p->row_bytes;
        if (p->rows) {
            p->rows(pl->n_in, W, p->row_bytes, e - b, p->xq, p->y + b, pl->streams);
        } else { /* the row streams the rows_* kernels walk (core/dot_rows.h) */
            const int64_t nr = e - b, h = pl->streams == 2 ? nr / 2 : 0;
            for (int64_t o = 0; o < h; o++) {
                p->y[b + o] = p->dot(pl->n_in, W + (size_t)o * p->row_bytes, p->xq);
                p->y[b + o + h] = p->dot(pl->n_in, W + (size_t)(o + h) * p->row_bytes, p->xq);
            }
            for (int64_t o = 2 * h; o < nr; o++) p->y[b + o] = p->dot(pl->n_in, W + (size_t)o * p->row_bytes, p->xq);
        }
    }
}

/* Threads share the units by one of two schedules (loom_mv_schedule). A static split would wait, at every one of
 * a decode step's ~100 dispatches, for whichever thread the machine slowed down (2-thread decode read 0.85-0.90
 * of the bandwidth measured in the same windows; docs/PERF.md, stop 15), so both hand work to whoever is free:
 * - steal (default): each thread streams its own contiguous range MV_CHUNK_UNITS at a time and then takes
 *   back halves of the others' (loom_steal_take). One long stream per thread: on the Zen 4 VM the per-layer
 *   dispatches (1-4 MB) read 1.05-1.08x faster than guided, the 340 MB head the same (stop 17), and decode
 *   tokens alternating between the two ran 1.01-1.03x faster (`loom bench --schedule-ab`, stop 18).
 * - guided (loom_pool_take, at least MV_MIN_UNITS): ~7 separate pieces per thread per matrix, each restarting
 *   its stream (the first lines are demand misses and the far prefetch is not yet running). Also the fallback
 *   for more threads or units than loom_steal holds.
 * Which thread computes a row changes nothing: each row is one kernel call on the same inputs. */
#define MV_MIN_UNITS   2
#define MV_CHUNK_UNITS 4 /* 64 rows: ~37 KB of a 2048-wide Q4_K matrix between a thread's range checks */
static void mv_worker(void *ctx, int ith, int nth) {
    mv_plan *pl = ctx;
    int64_t u0, u1;
    if (pl->ranges) {
        while (loom_steal_take(pl->ranges, ith, MV_CHUNK_UNITS, &u0, &u1)) mv_units(pl, u0, u1);
        return;
    }
    while (loom_pool_take(&pl->next, pl->unit0[pl->n_parts], nth, MV_MIN_UNITS, &u0, &u1)) mv_units(pl, u0, u1);
}

static atomic_int g_schedule_env, g_schedule_forced; /* 0 = not read yet / not forced */

loom_mv_schedule_kind loom_mv_schedule(void) {
    const int forced = atomic_load_explicit(&g_schedule_forced, memory_order_relaxed);
    if (forced) return (loom_mv_schedule_kind)forced;
    int s = atomic_load_explicit(&g_schedule_env, memory_order_relaxed);
    if (!s) {
        const char *env = getenv("LOOM_MV_SCHEDULE");
        s = env && !strcmp(env, "guided") ? LOOM_MV_GUIDED : LOOM_MV_STEAL;
        atomic_store_explicit(&g_schedule_env, s, memory_order_relaxed);
    }
    return (loom_mv_schedule_kind)s;
}

void loom_mv_schedule_force(loom_mv_schedule_kind kind) {
    atomic_store(&g_schedule_forced, kind == LOOM_MV_STEAL || kind == LOOM_MV_GUIDED ? (int)kind : 0);
}

/* Up to MV_MAX_PARTS products of x in one dispatch. x is quantized once per activation format (Q8_0 and
 * Q8_K copies side by side in the caller's scratch; float weights read x in place). */
static int mv_run(loom_pool *pool, const loom_matmul_job *jobs, int n_jobs, int64_t n_in, const float *x) {
    const loom_kernels *k = loom_kernels_get(loom_isa_active());
    size_t rb[MV_MAX_PARTS], ab;
    int need_q80 = 0, need_q8k = 0;
    for (int j = 0; j < n_jobs; j++) {
        if (!jobs[j].Y && jobs[j].n_out > 0) return -1;
        if (check_args(jobs[j].wt, n_in, jobs[j].n_out, &rb[j], &ab)) return -1;
        need_q80 |= loom_vec_dot_type(jobs[j].wt) == LOOM_Q8_0;
        need_q8k |= loom_vec_dot_type(jobs[j].wt) == LOOM_Q8_K;
    }
    const size_t sz80 = need_q80 ? loom_act_row_size(LOOM_Q8_0, n_in) : 0;
    const size_t sz8k = need_q8k ? loom_act_row_size(LOOM_Q4_K, n_in) : 0;
    uint8_t *buf = NULL;
    if (sz80 + sz8k) {
        buf = scratch_get(sz80 + sz8k);
        if (!buf) return -1;
        if (need_q80) k->quant_q8_0(x, buf, n_in);
        if (need_q8k) k->quant_q8_k(x, buf + sz80, n_in);
    }
    mv_plan pl = {.n_in = n_in, .streams = loom_row_streams()};
    int64_t rows = 0;
    for (int j = 0; j < n_jobs; j++) {
        if (jobs[j].n_out == 0) continue;
        const loom_dtype vt = loom_vec_dot_type(jobs[j].wt);
        mv_part *p = &pl.part[pl.n_parts++];
        p->rows = k->rows[jobs[j].wt];
        p->dot = k->dot[jobs[j].wt];
        p->W = jobs[j].W;
        p->row_bytes = rb[j];
        p->n_out = jobs[j].n_out;
        p->y = jobs[j].Y;
        p->xq = vt == LOOM_Q8_0 ? (const void *)buf : vt == LOOM_Q8_K ? (const void *)(buf + sz80) : (const void *)x;
        size_t bytes;
        if (!loom_size_mul(rb[j], (size_t)jobs[j].n_out, &bytes) || pl.total + bytes < pl.total) return -1;
        pl.total += bytes;
        rows += jobs[j].n_out;
        pl.unit0[pl.n_parts] = pl.unit0[pl.n_parts - 1] + (jobs[j].n_out + ROW_ALIGN - 1) / ROW_ALIGN;
    }
    if (!pl.n_parts) return 0;
    loom_pool *run_on = rows >= 2 * ROW_ALIGN ? pool : NULL;
    loom_steal ranges; /* ~4 KB, set up for loom_pool_size(run_on) slots only */
    if (loom_mv_schedule() == LOOM_MV_STEAL && loom_steal_init(&ranges, pl.unit0[pl.n_parts], loom_pool_size(run_on)))
        pl.ranges = &ranges;
    atomic_init(&pl.next, 0);
    loom_pool_run(run_on, mv_worker, &pl);
    return 0;
}

int loom_matvec(loom_pool *pool, float *y, const void *W, loom_dtype wt, int64_t n_in, int64_t n_out, const float *x) {
    const loom_matmul_job job = {.Y = y, .W = W, .wt = wt, .n_out = n_out};
    return mv_run(pool, &job, 1, n_in, x);
}

int loom_matmul_grouped(loom_pool *pool, const loom_matmul_group_job *jobs, int n_jobs, int64_t n_in) {
    if (n_jobs < 0 || (n_jobs > 0 && !jobs)) return -1;
    for (int j = 0; j < n_jobs; j++) {
        size_t rb, ab;
        if (jobs[j].n_tok < 0 || check_args(jobs[j].wt, n_in, jobs[j].n_out, &rb, &ab)) return -1;
    }
    for (int j0 = 0; j0 < n_jobs; j0 += GEMM_GROUP_MAX) {
        const int n = n_jobs - j0 < GEMM_GROUP_MAX ? n_jobs - j0 : GEMM_GROUP_MAX;
        bool done[GEMM_GROUP_MAX];
        if (loom_gemm_grouped(pool, jobs + j0, n, n_in, done) != 0) return -1;
        /* what the int8 engine did not take (few tokens, other layouts, no AMX) goes one product at a time */
        for (int i = 0; i < n; i++) {
            const loom_matmul_group_job *J = &jobs[j0 + i];
            if (!done[i] && loom_matmul(pool, J->Y, J->W, J->wt, n_in, J->n_out, J->X, J->n_tok) != 0) return -1;
        }
    }
    return 0;
}

int loom_matmul_multi(loom_pool *pool, const loom_matmul_job *jobs, int n_jobs, int64_t n_in, const float *X,
                      int64_t n_tok) {
    if (n_jobs < 0 || (n_jobs > 0 && !jobs) || n_tok < 0) return -1;
    if (n_tok != 1) { /* prefill: one grouped product sharing the activation quantization */
        loom_matmul_group_job g[MV_MAX_PARTS];
        for (int j0 = 0; j0 < n_jobs; j0 += MV_MAX_PARTS) {
            const int n = n_jobs - j0 < MV_MAX_PARTS ? n_jobs - j0 : MV_MAX_PARTS;
            for (int i = 0; i < n; i++)
                g[i] = (loom_matmul_group_job){jobs[j0 + i].Y, jobs[j0 + i].W, jobs[j0 + i].wt, jobs[j0 + i].n_out, X, n_tok};
            if (loom_matmul_grouped(pool, g, n, n_in) != 0) return -1;
        }
        return 0;
    }
    for (int j = 0; j < n_jobs; j += MV_MAX_PARTS)
        if (mv_run(pool, jobs + j, n_jobs - j < MV_MAX_PARTS ? n_jobs - j : MV_MAX_PARTS, n_in, X) != 0) return -1;
    return 0;
}
