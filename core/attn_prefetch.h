/* core/attn_prefetch.h — private to the attention kernels (attn_avx2.c, attn_avx512.c). */
#ifndef LOOM_CORE_ATTN_PREFETCH_H
#define LOOM_CORE_ATTN_PREFETCH_H

#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>

/* In decode the KV cache was evicted by the weights streamed since the last token, and the key-major loop,
 * which computes for about as long as its bytes take to arrive, stalled on its key and value loads. Each of
 * those loads (one per 64-byte line, key and value rows alike) therefore prefetches into L2 the line
 * KM_PREFETCH_BLOCKS blocks further on, spreading the prefetches evenly over the computation. One task of 4
 * queries over 4096 evicted keys (4.2 MB, AVX-512, Zen 4) took 220-265 us so, against 400-430 with one volatile
 * load per line of the next block up front and 430 with nothing; prefetches into L1 (spread or up front) and an
 * up-front burst into L2 stayed at 350-490: the burst stalls the loop behind it, and L1 prefetches evict the
 * block in use (docs/PERF.md, stop 18). */
#define KM_PREFETCH_BLOCKS 2

/* The byte distance of that line for rows `stride` floats apart and blocks of kb rows. */
static inline ptrdiff_t loom_attn_prefetch_distance(int64_t stride, int kb) {
    return (ptrdiff_t)KM_PREFETCH_BLOCKS * kb * (ptrdiff_t)stride * (ptrdiff_t)sizeof(float);
}

/* Prefetches the line `ahead` bytes past p into L2; ahead 0 does nothing (the paths that do not stream). The
 * address may lie past the cache's end (a prefetch never faults), so it is formed as an integer. */
static inline __attribute__((always_inline)) void loom_attn_prefetch_ahead(const float *p, ptrdiff_t ahead) {
    if (ahead) _mm_prefetch((const char *)((uintptr_t)p + (uintptr_t)ahead), _MM_HINT_T1);
}

#endif
