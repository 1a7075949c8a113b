/* core/pool_steal.c — contiguous ranges with back-stealing (see threadpool.h).
 *
 * Each slot packs its range as back << 32 | front, so the owner taking from the front and a thief taking from
 * the back agree through one compare-and-swap on one word: an index is in exactly one slot, or handed out.
 * Only the owner advances the front and only an empty slot's owner refills it (with what it stole), so a
 * range never grows under a thief. Relaxed order suffices: the ranges only partition indices; the data they
 * cover is ordered by loom_pool_run. */
#include "core/threadpool.h"

static uint64_t pack(int64_t front, int64_t back) { return (uint64_t)back << 32 | (uint64_t)front; }
static int64_t  front_of(uint64_t v) { return (int64_t)(uint32_t)v; }
static int64_t  back_of(uint64_t v) { return (int64_t)(v >> 32); }

int loom_steal_init(loom_steal *s, int64_t n, int nth) {
    if (nth < 1 || nth > LOOM_STEAL_MAX_THREADS || n < 0 || n > (int64_t)UINT32_MAX) return 0;
    s->nth = nth;
    for (int t = 0; t < nth; t++)
        atomic_init(&s->slot[t].range, pack(n * t / nth, n * (t + 1) / nth));
    return 1;
}

int loom_steal_take(loom_steal *s, int ith, int64_t chunk, int64_t *b, int64_t *e) {
    if (chunk < 1) chunk = 1;
    _Atomic uint64_t *mine = &s->slot[ith].range;
    for (;;) {
        uint64_t v = atomic_load_explicit(mine, memory_order_relaxed);
        while (front_of(v) < back_of(v)) {
            const int64_t f = front_of(v), left = back_of(v) - f, n = left < chunk ? left : chunk;
            if (atomic_compare_exchange_weak_explicit(mine, &v, pack(f + n, back_of(v)), memory_order_relaxed,
                                                      memory_order_relaxed)) {
                *b = f;
                *e = f + n;
                return 1;
            }
        }
        /* Own range empty: take the back half of the fullest other one. Back halves, so the owner keeps
         * streaming from its front and the thief starts a run the owner would reach last. */
        int      victim = -1;
        int64_t  most = 0;
        uint64_t seen = 0;
        for (int t = 0; t < s->nth; t++) {
            if (t == ith) continue;
            const uint64_t w = atomic_load_explicit(&s->slot[t].range, memory_order_relaxed);
            if (back_of(w) - front_of(w) > most) {
                most = back_of(w) - front_of(w);
                victim = t;
                seen = w;
            }
        }
        if (victim < 0) return 0; /* every index is handed out (or in a thief's hands, on its way to its slot) */
        const int64_t back = back_of(seen), k = (most + 1) / 2;
        if (!atomic_compare_exchange_strong_explicit(&s->slot[victim].range, &seen, pack(front_of(seen), back - k),
                                                     memory_order_relaxed, memory_order_relaxed))
            continue; /* the owner or another thief moved first: look again */
        atomic_store_explicit(mine, pack(back - k, back), memory_order_relaxed);
    }
}
