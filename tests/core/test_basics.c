/* tests/core/test_basics.c — errors, allocation (fault injection, live bytes), arenas, the thread pool. */
#include <criterion/criterion.h>
#include <stdatomic.h>
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
