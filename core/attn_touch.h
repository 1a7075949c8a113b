/* core/attn_touch.h — private to the attention kernels (attn_avx2.c, attn_avx512.c). */
#ifndef LOOM_CORE_ATTN_TOUCH_H
#define LOOM_CORE_ATTN_TOUCH_H

#include <stdint.h>

#include "core/attn.h"

/* Reads one byte of every cache line of the key and value rows of the block of kb keys after the one at j0 in
 * segment g (clipped to its last visible key `last`), so that they are on their way while the current block
 * computes (the key-major, decode path). In decode the KV cache was evicted by the weights streamed since the
 * last token, and there the key and value loads stalled the loop:
 * 1500 positions deep (AVX-512, Zen 4, 2 threads) attention took 5.9-7.9 ms of a token with no help, the same
 * with prefetch instructions (all at once one block ahead, line by line, or into L2 four to sixteen blocks
 * ahead), and 4.8-5.8 ms with these loads (docs/PERF.md, stop 16). Volatile, so the compiler keeps them;
 * their values are not used. */
static inline void loom_attn_touch_next_block(const loom_attn_seg *g, int64_t j0, int64_t last, int kb, int dh) {
    const int64_t j1 = j0 + 2 * kb - 1 < last ? j0 + 2 * kb - 1 : last;
    for (int64_t r = j0 + kb; r <= j1; r++) {
        const volatile char *k = (const volatile char *)(g->k + r * g->stride);
        const volatile char *v = (const volatile char *)(g->v + r * g->stride);
        for (size_t o = 0; o < sizeof(float) * (size_t)dh; o += 64) {
            (void)k[o];
            (void)v[o];
        }
    }
}

#endif
