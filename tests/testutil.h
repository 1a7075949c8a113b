/* tests/testutil.h — helpers shared by every test binary (header-only: each folder is its own binary).
 *
 * Reference data lives outside the project, in $LOOM_SHARED (default ../shared); tests that need it use
 * LOOM_SHARED_PATH(buf, "testdata/quant/Q4_K/Q4_K.gguf") which skips the test with a clear message when the
 * file is absent, rather than failing on a machine without the data.
 */
#ifndef LOOM_TESTS_TESTUTIL_H
#define LOOM_TESTS_TESTUTIL_H

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "core/alloc.h"

static inline const char *loom_test_shared_root(void) {
    const char *s = getenv("LOOM_SHARED");
    return s && *s ? s : "../shared";
}

/* Fills buf with $LOOM_SHARED/rel; skips the calling test when it does not exist. */
#define LOOM_SHARED_PATH(buf, rel)                                                                              \
    do {                                                                                                        \
        snprintf((buf), sizeof(buf), "%s/%s", loom_test_shared_root(), (rel));                                  \
        struct stat st_;                                                                                        \
        if (stat((buf), &st_) != 0)                                                                             \
            cr_skip_test("reference data %s not found (set LOOM_SHARED to the shared/ folder)", (buf));         \
    } while (0)

/* Reads a whole file into a loom_malloc'd buffer; NULL on failure. */
static inline void *loom_test_read_file(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *buf = loom_malloc(n > 0 ? (size_t)n : 1);
    if (buf && n > 0 && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        loom_free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf && size) *size = (size_t)n;
    return buf;
}

/* Deterministic random numbers for kernel tests (xorshift64*). */
/* A raw f32 reference file under $LOOM_SHARED that must hold exactly expect_floats values (loom_free it). */
static inline float *loom_test_read_f32(const char *rel, size_t expect_floats) {
    char path[512];
    LOOM_SHARED_PATH(path, rel);
    size_t size = 0;
    float *buf = loom_test_read_file(path, &size);
    cr_assert_not_null(buf, "cannot read %s", path);
    cr_assert_eq(size, expect_floats * sizeof(float), "%s: %zu bytes, expected %zu", rel, size, expect_floats * 4);
    return buf;
}

static inline uint64_t loom_test_rand_u64(uint64_t *s) {
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1DULL;
}
static inline float loom_test_rand_normal(uint64_t *s) {
    /* sum of 4 uniforms, rescaled: cheap and good enough to exercise kernels */
    float acc = 0;
    for (int i = 0; i < 4; i++) acc += (float)(loom_test_rand_u64(s) >> 40) / (float)(1ULL << 24);
    return (acc - 2.0f) * 1.7320508f;
}

#endif
