/* core/alloc.c — aligned, counted allocations with optional fault injection.
 *
 * Each block carries a 64-byte header holding its size so loom_realloc and the live-byte counter work
 * without a side table; the user pointer stays 64-byte aligned. Counters are atomics because kernels on
 * worker threads may allocate scratch space.
 */
#include "core/alloc.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

static _Atomic int64_t live_bytes;
static _Atomic int64_t fail_countdown = -1;

typedef struct block_header {
    size_t size;
    char   pad[LOOM_ALIGN - sizeof(size_t)];
} block_header;

void loom_alloc_fail_after(int64_t n) { atomic_store(&fail_countdown, n); }
int64_t loom_alloc_live_bytes(void) { return atomic_load(&live_bytes); }

static int injected_failure(void) {
    int64_t left = atomic_load(&fail_countdown);
    while (left >= 0) {
        if (left == 0) return 1;
        if (atomic_compare_exchange_weak(&fail_countdown, &left, left - 1)) return 0;
    }
    return 0;
}

void *loom_malloc(size_t n) {
    size_t total;
    if (!loom_size_add(n, sizeof(block_header), &total)) return NULL;
    if (injected_failure()) return NULL;
    void *raw = NULL;
    if (posix_memalign(&raw, LOOM_ALIGN, total ? total : LOOM_ALIGN) != 0) return NULL;
    block_header *h = raw;
    h->size = n;
    atomic_fetch_add(&live_bytes, (int64_t)n);
    return h + 1;
}

void *loom_calloc(size_t count, size_t n) {
    size_t total;
    if (!loom_size_mul(count, n, &total)) return NULL;
    void *p = loom_malloc(total);
    if (p) memset(p, 0, total);
    return p;
}

void loom_free(void *p) {
    if (!p) return;
    block_header *h = (block_header *)p - 1;
    atomic_fetch_sub(&live_bytes, (int64_t)h->size);
    free(h);
}

void *loom_realloc(void *p, size_t n) {
    if (!p) return loom_malloc(n);
    block_header *h = (block_header *)p - 1;
    void *q = loom_malloc(n);
    if (!q) return NULL;
    memcpy(q, p, h->size < n ? h->size : n);
    loom_free(p);
    return q;
}

char *loom_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = loom_malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

#define HUGE_PAGE ((size_t)2 << 20)

void *loom_malloc_huge(size_t n) {
    if (n == 0 || n > SIZE_MAX - HUGE_PAGE) return NULL;
    if (injected_failure()) return NULL;
    size_t len = (n + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
    /* map one huge page more and trim, so the buffer starts on a 2 MiB boundary (THP needs aligned ranges) */
    unsigned char *raw = mmap(NULL, len + HUGE_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) return NULL;
    unsigned char *p = (unsigned char *)(((uintptr_t)raw + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1));
    if (p > raw) munmap(raw, (size_t)(p - raw));
    if (p + len < raw + len + HUGE_PAGE) munmap(p + len, (size_t)(raw + len + HUGE_PAGE - (p + len)));
#ifdef MADV_HUGEPAGE
    madvise(p, len, MADV_HUGEPAGE); /* advice only: without THP the buffer works the same */
#endif
    atomic_fetch_add(&live_bytes, (int64_t)n);
    return p;
}

void loom_free_huge(void *p, size_t n) {
    if (!p) return;
    munmap(p, (n + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1));
    atomic_fetch_sub(&live_bytes, (int64_t)n);
}
