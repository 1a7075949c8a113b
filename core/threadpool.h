/* core/threadpool.h — a fixed pool of pthreads with a parallel-for.
 *
 *   loom_pool *pool;
 *   loom_pool_new(&pool, n_threads, &err);        // n_threads includes the caller
 *   loom_pool_run(pool, fn, ctx);                 // fn(ctx, ith, nth) on every thread, caller included
 *   loom_pool_for(pool, n, fn_range, ctx);        // [0,n) split into nth contiguous ranges
 *   loom_pool_take(&next, n, nth, min, &b, &e);   // inside fn: the next piece of [0,n), guided
 *   loom_steal_take(&steal, ith, chunk, &b, &e);  // inside fn: own range first, then others' back halves
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

/* Contiguous ranges with back-stealing inside one loom_pool_run: thread t owns [n t / nth, n (t+1) / nth) of
 * [0, n) and takes it from the front, `chunk` at a time; when its range is empty it steals the back half of
 * the fullest other range and goes on from there. Each thread so reads one long run of memory (a matvec's rows
 * stream on, where guided pieces restart the stream ~7 times per thread: docs/PERF.md, stop 17) and a slow
 * thread still loses its tail to the others. Every index of [0, n) is handed out exactly once.
 *   loom_steal s; if (loom_steal_init(&s, n, nth)) ...;   // before loom_pool_run, with the pool's nth
 *   while (loom_steal_take(&s, ith, chunk, &b, &e)) ...;   // inside fn
 * loom_steal_init returns 0, leaving s unusable, where nth > LOOM_STEAL_MAX_THREADS or n >= 2^32 (the two
 * ends of a range share one 64-bit word): use loom_pool_take there. */
#define LOOM_STEAL_MAX_THREADS 64
typedef struct loom_steal {
    struct {
        _Alignas(64) _Atomic uint64_t range; /* back << 32 | front; one cache line per thread */
    } slot[LOOM_STEAL_MAX_THREADS];
    int nth;
} loom_steal;

int loom_steal_init(loom_steal *s, int64_t n, int nth);
int loom_steal_take(loom_steal *s, int ith, int64_t chunk, int64_t *b, int64_t *e);

int loom_cpu_count(void);

#endif
