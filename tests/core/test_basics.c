/* tests/core/test_basics.c — errors, allocation (fault injection, live bytes), arenas, the thread pool. */
#include <criterion/criterion.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/arena.h"
#include "core/err.h"
#include "core/tensor.h"
#include "core/threadpool.h"

Test(err, fail_fills_record_and_returns_code) {
    loom_err e = {0};
    loom_status s = LOOM_FAIL(&e, LOOM_ERR_FORMAT, "bad %s at %d", "thing", 7);
    cr_assert_eq(s, LOOM_ERR_FORMAT);
    cr_assert_eq(e.code, LOOM_ERR_FORMAT);
    cr_assert_str_eq(e.msg, "bad thing at 7");
    cr_assert(e.line > 0 && strstr(e.file, "test_basics.c"));
    loom_err_prefix(&e, "%s: ", "file.gguf");
    cr_assert_str_eq(e.msg, "file.gguf: bad thing at 7");
    cr_assert_eq(LOOM_FAIL(NULL, LOOM_ERR_IO, "x"), LOOM_ERR_IO);
    cr_assert_str_eq(loom_status_str(LOOM_ERR_NOMEM), "out of memory");
}

Test(alloc, aligned_counted_and_fault_injected) {
    int64_t base = loom_alloc_live_bytes();
    char *p = loom_malloc(100);
    cr_assert_not_null(p);
    cr_assert_eq((uintptr_t)p % LOOM_ALIGN, 0);
    cr_assert_eq(loom_alloc_live_bytes() - base, 100);
    memset(p, 7, 100);
    p = loom_realloc(p, 300);
    cr_assert_eq(p[99], 7);
    cr_assert_eq(loom_alloc_live_bytes() - base, 300);
    loom_free(p);
    cr_assert_eq(loom_alloc_live_bytes(), base);
    cr_assert_null(loom_calloc(SIZE_MAX / 2, 4));
    loom_alloc_fail_after(2);
    void *a = loom_malloc(8), *b = loom_malloc(8), *c = loom_malloc(8);
    cr_assert_not_null(a);
    cr_assert_not_null(b);
    cr_assert_null(c);
    loom_alloc_fail_after(-1);
    loom_free(a);
    loom_free(b);
    loom_free(NULL);
}

Test(arena, bump_align_and_overflow) {
    loom_arena a;
    cr_assert_eq(loom_arena_init(&a, 1000), LOOM_OK);
    void *x = loom_arena_alloc(&a, 10), *y = loom_arena_alloc(&a, 10);
    cr_assert_eq((uintptr_t)y % LOOM_ALIGN, 0);
    cr_assert_eq((char *)y - (char *)x, LOOM_ALIGN);
    cr_assert_null(loom_arena_alloc(&a, 2000));
    cr_assert_null(loom_arena_alloc(&a, SIZE_MAX));
    loom_arena_reset(&a);
    cr_assert_eq(loom_arena_alloc(&a, 1), x);
    cr_assert_eq(a.high_water, LOOM_ALIGN + 10);
    loom_arena_release(&a);
}

Test(tensor, type_table_and_row_sizes) {
    cr_assert_eq(loom_row_size(LOOM_Q4_K, 4096), 16 * 144);
    cr_assert_eq(loom_row_size(LOOM_Q8_0, 64), 68);
    cr_assert_eq(loom_row_size(LOOM_Q4_K, 100), 0);
    cr_assert_eq(loom_row_size((loom_dtype)99, 4), 0);
    loom_dtype t;
    cr_assert(loom_type_from_name("q6_k", &t));
    cr_assert_eq(t, LOOM_Q6_K);
    cr_assert_str_eq(loom_type_name(LOOM_BF16), "BF16");
}

typedef struct sum_ctx {
    _Atomic int64_t total;
    _Atomic int     hits[8];
} sum_ctx;

static void add_range(void *arg, int64_t b, int64_t e, int ith) {
    sum_ctx *c = arg;
    int64_t s = 0;
    for (int64_t i = b; i < e; i++) s += i;
    atomic_fetch_add(&c->total, s);
    atomic_fetch_add(&c->hits[ith], 1);
}

Test(threadpool, parallel_for_covers_every_index_once) {
    for (int nt = 1; nt <= 4; nt++) {
        loom_pool *pool;
        cr_assert_eq(loom_pool_new(&pool, nt, NULL), LOOM_OK);
        cr_assert_eq(loom_pool_size(pool), nt);
        for (int rep = 0; rep < 200; rep++) {
            sum_ctx c = {0};
            int64_t n = 1 + rep * 37;
            loom_pool_for(pool, n, add_range, &c);
            cr_assert_eq(c.total, n * (n - 1) / 2, "nt=%d n=%lld", nt, (long long)n);
        }
        loom_pool_free(pool);
    }
    loom_pool *bad;
    cr_assert_eq(loom_pool_new(&bad, 100000, NULL), LOOM_ERR_INVALID);
}

/* loom_steal: every index handed out exactly once, for awkward sizes, chunks and thread counts. In the
 * second pass thread 0 starts only after all the others have finished, so they must have stolen its whole
 * range (back half after back half) and it gets nothing. */
typedef struct steal_ctx {
    loom_steal     s;
    int64_t        chunk;
    int            late_owner; /* thread 0 waits for the others */
    _Atomic int    done;       /* threads out of their loop */
    _Atomic int   *owner;      /* per index: 1 + the thread that took it */
    _Atomic int    dup;        /* indices taken twice */
    _Atomic int    bad_piece;  /* pieces larger than chunk or out of [0, n) */
    int64_t        n;
    _Atomic int    taken_by0;
} steal_ctx;

static void steal_fn(void *arg, int ith, int nth) {
    steal_ctx *c = arg;
    if (c->late_owner && ith == 0)
        for (int i = 0; i < 5000000 && atomic_load(&c->done) < nth - 1; i++) sched_yield();
    int64_t b, e;
    while (loom_steal_take(&c->s, ith, c->chunk, &b, &e)) {
        if (b < 0 || e > c->n || e <= b || e - b > c->chunk) atomic_fetch_add(&c->bad_piece, 1);
        for (int64_t i = b; i < e && i < c->n && i >= 0; i++) {
            int none = 0;
            if (!atomic_compare_exchange_strong(&c->owner[i], &none, 1 + ith)) atomic_fetch_add(&c->dup, 1);
        }
        if (ith == 0) atomic_fetch_add(&c->taken_by0, (int)(e - b));
    }
    atomic_fetch_add(&c->done, 1);
}

Test(threadpool, steal_hands_out_every_index_once) {
    const int64_t ns[] = {0, 1, 5, 63, 64, 1000, 4099};
    const int64_t chunks[] = {1, 3, 4};
    for (int nt = 1; nt <= 5; nt++) {
        loom_pool *pool;
        cr_assert_eq(loom_pool_new(&pool, nt, NULL), LOOM_OK);
        for (int ni = 0; ni < 7; ni++)
            for (int ci = 0; ci < 3; ci++)
                for (int late = 0; late < 2; late++) {
                    steal_ctx *c = calloc(1, sizeof *c);
                    c->n = ns[ni];
                    c->chunk = chunks[ci];
                    c->late_owner = late && nt > 1;
                    c->owner = calloc((size_t)c->n + 1, sizeof *c->owner);
                    cr_assert(loom_steal_init(&c->s, c->n, nt));
                    loom_pool_run(pool, steal_fn, c);
                    const char *what = late ? "late owner" : "all start";
                    cr_assert_eq(c->dup, 0, "%d threads, n %lld, chunk %lld, %s", nt, (long long)c->n,
                                 (long long)c->chunk, what);
                    cr_assert_eq(c->bad_piece, 0);
                    for (int64_t i = 0; i < c->n; i++)
                        cr_assert_neq(c->owner[i], 0, "index %lld never handed out (%d threads, n %lld, %s)",
                                      (long long)i, nt, (long long)c->n, what);
                    if (c->late_owner) cr_assert_eq(c->taken_by0, 0, "the others left thread 0 work");
                    free(c->owner);
                    free(c);
                }
        loom_pool_free(pool);
    }
    loom_steal s;
    cr_assert_eq(loom_steal_init(&s, 100, LOOM_STEAL_MAX_THREADS + 1), 0);
    cr_assert_eq(loom_steal_init(&s, (int64_t)1 << 32, 2), 0);
    cr_assert_eq(loom_steal_init(&s, 100, 0), 0);
    cr_assert_eq(loom_steal_init(&s, UINT32_MAX, LOOM_STEAL_MAX_THREADS), 1);
}
