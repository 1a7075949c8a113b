/* core/threadpool.c — see threadpool.h.
 *
 * One job at a time: the caller publishes (fn, ctx), bumps `generation`, runs its own share as thread 0 and
 * waits until `pending` drops to zero. Workers spin on `generation` for a short while (most calls come in
 * quick succession during decode), then fall back to a condition variable. Per-thread state lives in its own
 * cache line to avoid false sharing.
 */
#include "core/threadpool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include "core/alloc.h"

/* Waiting: a short busy spin (a decode-sized job finishes within microseconds), then yields (on an
 * oversubscribed machine the thread we wait for may need our core), then a condition variable. A long pure
 * spin is the worst choice when other processes compete for the cores: the spinner burns the time slice the
 * awaited thread needs. */
#define SPIN_PAUSES 1000
#define SPIN_YIELDS 50

#include <sched.h>

/* Returns when *word != seen (or the budget runs out); the caller re-checks and blocks if needed. */
static uint64_t wait_change_u64(_Atomic uint64_t *word, uint64_t seen) {
    uint64_t v;
    for (int i = 0; i < SPIN_PAUSES; i++) {
        if ((v = atomic_load_explicit(word, memory_order_acquire)) != seen) return v;
        __builtin_ia32_pause();
    }
    for (int i = 0; i < SPIN_YIELDS; i++) {
        if ((v = atomic_load_explicit(word, memory_order_acquire)) != seen) return v;
        sched_yield();
    }
    return atomic_load_explicit(word, memory_order_acquire);
}

static int wait_zero_int(_Atomic int *word) {
    for (int i = 0; i < SPIN_PAUSES; i++) {
        if (atomic_load_explicit(word, memory_order_acquire) == 0) return 0;
        __builtin_ia32_pause();
    }
    for (int i = 0; i < SPIN_YIELDS; i++) {
        if (atomic_load_explicit(word, memory_order_acquire) == 0) return 0;
        sched_yield();
    }
    return atomic_load_explicit(word, memory_order_acquire);
}

typedef struct worker {
    pthread_t  thread;
    loom_pool *pool;
    int        ith;
    char       pad[64 - sizeof(pthread_t) - sizeof(void *) - sizeof(int)];
} worker;

struct loom_pool {
    int             n_threads;
    worker         *workers; /* n_threads - 1 entries */
    _Alignas(64) _Atomic uint64_t generation;
    _Alignas(64) _Atomic int pending;
    _Alignas(64) loom_pool_fn fn;
    void           *ctx;
    int             stop;
    pthread_mutex_t mu;
    pthread_cond_t  wake;
    pthread_cond_t  done;
};

int loom_cpu_count(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

static void *worker_main(void *arg) {
    worker *w = arg;
    loom_pool *p = w->pool;
    uint64_t seen = 0;
    for (;;) {
        uint64_t g = wait_change_u64(&p->generation, seen);
        if (g == seen) {
            pthread_mutex_lock(&p->mu);
            while ((g = atomic_load(&p->generation)) == seen && !p->stop) pthread_cond_wait(&p->wake, &p->mu);
            pthread_mutex_unlock(&p->mu);
        }
        if (p->stop) return NULL;
        seen = g;
        p->fn(p->ctx, w->ith, p->n_threads);
        if (atomic_fetch_sub_explicit(&p->pending, 1, memory_order_acq_rel) == 1) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->done);
            pthread_mutex_unlock(&p->mu);
        }
    }
}

loom_status loom_pool_new(loom_pool **out, int n_threads, loom_err *err) {
    *out = NULL;
    if (n_threads <= 0) n_threads = loom_cpu_count();
    if (n_threads > 512) return LOOM_FAIL(err, LOOM_ERR_INVALID, "thread count %d is too large (max 512)", n_threads);
    loom_pool *p = loom_calloc(1, sizeof *p);
    if (!p) return LOOM_FAIL(err, LOOM_ERR_NOMEM, "out of memory creating thread pool");
    p->n_threads = n_threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->done, NULL);
    if (n_threads > 1) {
        p->workers = loom_calloc((size_t)n_threads - 1, sizeof(worker));
        if (!p->workers) {
            loom_pool_free(p);
            return LOOM_FAIL(err, LOOM_ERR_NOMEM, "out of memory creating thread pool");
        }
        for (int i = 0; i < n_threads - 1; i++) {
            p->workers[i].pool = p;
            p->workers[i].ith = i + 1;
            if (pthread_create(&p->workers[i].thread, NULL, worker_main, &p->workers[i]) != 0) {
                p->n_threads = i + 1; /* only join the ones that started */
                loom_pool_free(p);
                return LOOM_FAIL(err, LOOM_ERR_IO, "cannot start worker thread %d", i + 1);
            }
        }
    }
    *out = p;
    return LOOM_OK;
}

void loom_pool_free(loom_pool *p) {
    if (!p) return;
    if (p->workers) {
        pthread_mutex_lock(&p->mu);
        p->stop = 1;
        atomic_fetch_add(&p->generation, 1);
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->mu);
        for (int i = 0; i < p->n_threads - 1; i++) pthread_join(p->workers[i].thread, NULL);
        loom_free(p->workers);
    }
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->done);
    loom_free(p);
}

int loom_pool_size(const loom_pool *p) { return p ? p->n_threads : 1; }

void loom_pool_run(loom_pool *p, loom_pool_fn fn, void *ctx) {
    if (!p || p->n_threads == 1) {
        fn(ctx, 0, 1);
        return;
    }
    p->fn = fn;
    p->ctx = ctx;
    atomic_store(&p->pending, p->n_threads - 1);
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add_explicit(&p->generation, 1, memory_order_release);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    fn(ctx, 0, p->n_threads);
    if (wait_zero_int(&p->pending) != 0) {
        pthread_mutex_lock(&p->mu);
        while (atomic_load(&p->pending) != 0) pthread_cond_wait(&p->done, &p->mu);
        pthread_mutex_unlock(&p->mu);
    }
}

int loom_pool_take(_Atomic int64_t *next, int64_t n, int nth, int64_t min_take, int64_t *b, int64_t *e) {
    if (min_take < 1) min_take = 1;
    int64_t at = atomic_load_explicit(next, memory_order_relaxed);
    while (at < n) {
        int64_t take = (n - at) / (2 * (int64_t)(nth > 0 ? nth : 1));
        if (take < min_take) take = min_take;
        const int64_t end = n - at > take ? at + take : n;
        /* relaxed: the pieces only partition indices; the data they cover is ordered by loom_pool_run */
        if (atomic_compare_exchange_weak_explicit(next, &at, end, memory_order_relaxed, memory_order_relaxed)) {
            *b = at;
            *e = end;
            return 1;
        }
    }
    return 0;
}

typedef struct range_job {
    int64_t            n;
    loom_pool_range_fn fn;
    void              *ctx;
} range_job;

static void range_trampoline(void *arg, int ith, int nth) {
    range_job *j = arg;
    int64_t per = (j->n + nth - 1) / nth;
    int64_t b = per * ith, e = b + per;
    if (e > j->n) e = j->n;
    if (b < e) j->fn(j->ctx, b, e, ith);
}

void loom_pool_for(loom_pool *p, int64_t n, loom_pool_range_fn fn, void *ctx) {
    if (n <= 0) return;
    range_job j = {n, fn, ctx};
    loom_pool_run(p, range_trampoline, &j);
}
