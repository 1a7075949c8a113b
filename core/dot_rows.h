/* core/dot_rows.h — private to the ISA kernel files (dot_avx2.c, dot_avx512.c): the matvec row-range driver
 * (loom_kernels.rows) around each file's own inlined dot kernels, compiled under that file's ISA flags.
 * The includer defines INLINE and PF_DIST (its per-block prefetch distance) first. */
#ifndef LOOM_CORE_DOT_ROWS_H
#define LOOM_CORE_DOT_ROWS_H

#include <immintrin.h>
#include <stdint.h>

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
