/* core/dot_rows.h — private to the ISA kernel files (dot_avx2.c, dot_avx512.c): the matvec row-range driver
 * (loom_kernels.rows) around each file's own inlined dot kernels, compiled under that file's ISA flags.
 * The includer defines INLINE first, and sets far_prefetch (from loom_far_prefetch) when it fills its table. */
#ifndef LOOM_CORE_DOT_ROWS_H
#define LOOM_CORE_DOT_ROWS_H

#include <immintrin.h>
#include <stdint.h>

/* Weight rows are prefetched per block PF_DIST bytes ahead into L1, and PF_FAR bytes ahead into L2 as well
 * where far_prefetch is set: the L1 prefetches alone keep about as many misses in flight as the L1 can track,
 * which on Zen 4 left the Q4_K, Q6_K and Q8_0 matvecs at 0.81-0.93 of the read probe; with the L2 prefetches far
 * ahead they read 5-10 % more (2 threads, 2.4-36 MB matrices, alternating in one process; stop 16). Not
 * measured on Intel yet: LOOM_FAR_PREFETCH=0 turns them off. */
#define PF_DIST 2048
#define PF_FAR  8192
static int far_prefetch; /* one per including ISA file */
INLINE void prefetch_lines(const void *p, int bytes) {
    for (int o = 0; o < bytes; o += 64) {
        _mm_prefetch((const char *)p + PF_DIST + o, _MM_HINT_T0);
        if (far_prefetch) _mm_prefetch((const char *)p + PF_FAR + o, _MM_HINT_T1);
    }
}

/* The matvec row-range kernels (rows_*) prefetch the first PF_DIST bytes of their range up front: the
 * per-block prefetches only start covering lines PF_DIST bytes in, and a thread's range of a small matrix
 * (the k/v projections: ~300 KB per thread) would otherwise start with a burst of demand misses. The
 * per-block prefetches themselves stay as they are: an exact one-prefetch-per-line stream measured no faster
 * (its loop branches mispredict: 144- and 210-byte blocks are not whole cache lines). */
INLINE void prefetch_head(const void *begin, const void *end) {
    const char *p = (const char *)((uintptr_t)begin & ~(uintptr_t)63), *e = (const char *)begin + PF_DIST;
    if (e > (const char *)end) e = end;
    for (; p < e; p += 64) _mm_prefetch(p, _MM_HINT_T0);
}

/* y[r] = dot(row r) for n_rows consecutive rows: the same inlined kernel as dot_* (bit-identical results),
 * with the loop-invariant constants hoisted out of the row loop. With streams == 2 the range is walked as two
 * interleaved streams (rows r and r + n_rows/2 in turn), each with its own software prefetch ahead of it: an
 * Intel core read ~7 % more per second from two streams than from one (Q6_K matvec, 339 MB, 1 and 2 threads,
 * A/B on the same buffers), one stream's misses in flight stopping short of what the core keeps outstanding;
 * a Zen 4 core reads more from one (loom_row_streams). */
#define ROWS_FN(name, call)                                                                                    \
    static void rows_##name(int64_t n, const void *w, size_t rb, int64_t nr, const void *x, float *y,          \
                            int streams) {                                                                     \
        const int64_t h = streams == 2 ? nr / 2 : 0;                                                           \
        const char *end = (const char *)w + rb * (size_t)nr;                                                   \
        prefetch_head(w, end);                                                                                 \
        if (h) prefetch_head((const char *)w + rb * (size_t)h, end);                                           \
        for (int64_t i = 0; i < h; i++) {                                                                      \
            int64_t r = i;                                                                                     \
            const void *wr = (const char *)w + rb * (size_t)r;                                                 \
            call;                                                                                              \
            r = i + h;                                                                                         \
            wr = (const char *)w + rb * (size_t)r;                                                             \
            call;                                                                                              \
        }                                                                                                      \
        for (int64_t r = 2 * h; r < nr; r++) {                                                                 \
            const void *wr = (const char *)w + rb * (size_t)r;                                                 \
            call;                                                                                              \
        }                                                                                                      \
    }
#endif
