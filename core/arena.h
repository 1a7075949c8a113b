/* core/arena.h — bump allocator for activations (one per request, like a ggml context).
 *
 *   loom_arena a;
 *   if (loom_arena_init(&a, bytes) != LOOM_OK) ...;   // one loom_malloc
 *   float *x = loom_arena_alloc(&a, n * sizeof(float)); // 64-byte aligned, NULL when full
 *   loom_arena_reset(&a);                               // forget everything, keep the memory
 *   loom_arena_release(&a);
 */
#ifndef LOOM_CORE_ARENA_H
#define LOOM_CORE_ARENA_H

#include <stddef.h>

#include "core/err.h"

typedef struct loom_arena {
    unsigned char *base;
    size_t         size;
    size_t         used;
    size_t         high_water; /* largest `used` seen: sizes the arena in a measuring pass */
} loom_arena;

loom_status loom_arena_init(loom_arena *a, size_t bytes);
void       *loom_arena_alloc(loom_arena *a, size_t bytes);
void        loom_arena_reset(loom_arena *a);
void        loom_arena_release(loom_arena *a);

#endif
