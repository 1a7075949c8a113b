/* core/arena.c — see arena.h. Alignment is LOOM_ALIGN so SIMD kernels can rely on it. */
#include "core/arena.h"

#include "core/alloc.h"

loom_status loom_arena_init(loom_arena *a, size_t bytes) {
    a->base = loom_malloc(bytes);
    a->size = a->base ? bytes : 0;
    a->used = 0;
    a->high_water = 0;
    return a->base ? LOOM_OK : LOOM_ERR_NOMEM;
}

void *loom_arena_alloc(loom_arena *a, size_t bytes) {
    size_t start = (a->used + LOOM_ALIGN - 1) & ~(size_t)(LOOM_ALIGN - 1);
    size_t end;
    if (!loom_size_add(start, bytes, &end) || end > a->size) return NULL;
    a->used = end;
    if (end > a->high_water) a->high_water = end;
    return a->base + start;
}

void loom_arena_reset(loom_arena *a) { a->used = 0; }

void loom_arena_release(loom_arena *a) {
    loom_free(a->base);
    a->base = NULL;
    a->size = a->used = 0;
}
