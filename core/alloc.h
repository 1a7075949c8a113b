/* core/alloc.h — the single allocation entry point.
 *
 * Every heap allocation in loom goes through loom_malloc/loom_calloc/loom_realloc/loom_free, so tests can
 * inject failures (loom_alloc_fail_after) and check for leaks (loom_alloc_live_bytes), as sqlite's faultsim
 * does. Blocks are 64-byte aligned (one cache line, one AVX-512 register), so SIMD kernels may use aligned
 * loads on any buffer that came from here. loom_free(NULL) is a no-op.
 */
#ifndef LOOM_CORE_ALLOC_H
#define LOOM_CORE_ALLOC_H

#include <stddef.h>
#include <stdint.h>

#define LOOM_ALIGN 64

void *loom_malloc(size_t n);               /* NULL on failure or n == 0 overflow; free with loom_free */
void *loom_calloc(size_t count, size_t n); /* zeroed; NULL if count*n overflows */
void *loom_realloc(void *p, size_t n);     /* contents kept up to min(old, n) */
void  loom_free(void *p);
char *loom_strdup(const char *s);

/* Large buffers (weights read with --no-mmap): anonymous memory advised for transparent huge pages, so a
 * multi-GB weight walk does not miss the TLB every 4 KiB. Counted and fault-injected like loom_malloc; the
 * caller passes the size back to loom_free_huge. */
void *loom_malloc_huge(size_t n);
void  loom_free_huge(void *p, size_t n);

/* Fault injection: after `n` more successful allocations every allocation fails (n < 0 disables). */
void    loom_alloc_fail_after(int64_t n);
/* Bytes currently allocated through loom_malloc and friends (for leak checks in tests). */
int64_t loom_alloc_live_bytes(void);

/* Overflow-checked size arithmetic: return 0 and leave *out untouched on overflow. */
static inline int loom_size_mul(size_t a, size_t b, size_t *out) {
    return __builtin_mul_overflow(a, b, out) ? 0 : 1;
}
static inline int loom_size_add(size_t a, size_t b, size_t *out) {
    return __builtin_add_overflow(a, b, out) ? 0 : 1;
}

#endif
