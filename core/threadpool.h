/* core/threadpool.h — a fixed pool of pthreads with a parallel-for.
 *
 *   loom_pool *pool;
 *   loom_pool_new(&pool, n_threads, &err);        // n_threads includes the caller
 *   loom_pool_run(pool, fn, ctx);                 // fn(ctx, ith, nth) on every thread, caller included
 *   loom_pool_for(pool, n, fn_range, ctx);        // [0,n) split into nth contiguous ranges
 *   loom_pool_take(&next, n, nth, min, &b, &e);   // inside fn: the next piece of [0,n), guided
 *   loom_pool_free(pool);
 *
 * The caller thread takes part as thread 0, so a pool of 1 runs everything inline with no threads.
 * Workers spin briefly on an atomic generation counter before sleeping, which keeps the per-call cost
 * of decode-sized matvecs (tens of microseconds) low without burning a core while idle.
 */
#ifndef LOOM_CORE_THREADPOOL_H
#define LOOM_CORE_THREADPOOL_H

#include <stdatomic.h>
#include <stdint.h>

#include "core/err.h"

typedef struct loom_pool loom_pool;

typedef void (*loom_pool_fn)(void *ctx, int ith, int nth);
typedef void (*loom_pool_range_fn)(void *ctx, int64_t begin, int64_t end, int ith);

loom_status loom_pool_new(loom_pool **out, int n_threads, loom_err *err); /* n_threads <= 0: all cores */
void        loom_pool_free(loom_pool *pool);
int         loom_pool_size(const loom_pool *pool); /* 1 when pool is NULL */
void        loom_pool_run(loom_pool *pool, loom_pool_fn fn, void *ctx); /* pool may be NULL: runs inline */
void        loom_pool_for(loom_pool *pool, int64_t n, loom_pool_range_fn fn, void *ctx);

/* Guided self-scheduling inside one loom_pool_run: every thread calls this until it returns 0, and gets
 * [*b, *e) of [0, n), about 1 / (2 nth) of what is still free (at least min_take). Faster threads come back
 * more often, so none waits long for a slow one (on a shared VM one core can run 10-40 % slower for
 * milliseconds), and the last pieces are small. *next starts at 0 (one counter per pass, alone in its cache
 * line: every thread writes it). Costs ~2 nth ln(n / min_take) atomic operations per pass. */
int loom_pool_take(_Atomic int64_t *next, int64_t n, int nth, int64_t min_take, int64_t *b, int64_t *e);

int loom_cpu_count(void);

#endif
