/* tests/core/test_ops.c — the AVX2 and AVX-512 row ops against their scalar references (core/ops_int.h), on random rows
 * of awkward lengths (tails of every size, a row shorter than one vector, the model widths). */
#include <criterion/criterion.h>
#include <math.h>

#include "core/alloc.h"
#include "core/matmul.h"
#include "core/ops.h"
#include "core/ops_int.h"
#include "tests/testutil.h"

static const int64_t LENS[] = {1, 7, 15, 16, 17, 63, 64, 65, 100, 127, 1000, 1024, 2048, 2051};
#define N_LENS (sizeof LENS / sizeof LENS[0])

/* uniform in [-scale, scale) */
static void fill(float *x, int64_t n, float scale, uint64_t *s) {
    for (int64_t i = 0; i < n; i++) x[i] = scale * ((float)(loom_test_rand_u64(s) >> 40) / (float)(1 << 23) - 1.0f);
}

static float *buf(int64_t n) {
    float *p = loom_malloc((size_t)n * sizeof(float));
    cr_assert_not_null(p);
    return p;
}

typedef void (*rmsnorm_fn)(float *, const float *, const float *, int64_t, float);
typedef void (*silu_fn)(float *, const float *, int64_t);
typedef void (*add_fn)(float *, const float *, int64_t);

static void check_rmsnorm(rmsnorm_fn fn) {
    uint64_t s = 11;
    for (size_t li = 0; li < N_LENS; li++) {
        const int64_t n = LENS[li];
        float *x = buf(n), *w = buf(n), *ref = buf(n), *got = buf(n);
        fill(x, n, 3.0f, &s);
        fill(w, n, 1.5f, &s);
        for (int with_w = 0; with_w < 2; with_w++) {
            loom_op_rmsnorm_ref(ref, x, with_w ? w : NULL, n, 1e-5f);
            fn(got, x, with_w ? w : NULL, n, 1e-5f);
            for (int64_t i = 0; i < n; i++) /* only the sum of squares is ordered differently */
                cr_assert(fabsf(got[i] - ref[i]) <= 1e-6f * fabsf(ref[i]) + 1e-30f, "n %ld i %ld: %g vs %g",
                          (long)n, (long)i, got[i], ref[i]);
        }
        /* in place, as the QK-norm uses it */
        loom_op_rmsnorm_ref(ref, x, NULL, n, 1e-5f);
        fn(x, x, NULL, n, 1e-5f);
        for (int64_t i = 0; i < n; i++) cr_assert(fabsf(x[i] - ref[i]) <= 1e-6f * fabsf(ref[i]) + 1e-30f);
        loom_free(x), loom_free(w), loom_free(ref), loom_free(got);
    }
}

static void check_silu_mul(silu_fn fn) {
    uint64_t s = 12;
    for (size_t li = 0; li < N_LENS; li++) {
        const int64_t n = LENS[li];
        float *h = buf(n), *g = buf(n), *ref = buf(n);
        fill(h, n, 12.0f, &s);
        fill(g, n, 4.0f, &s);
        if (n > 4) h[0] = -200.0f, h[1] = 150.0f, h[2] = 0.0f, h[3] = -0.0f; /* past the exp clamp, and zeros */
        for (int64_t i = 0; i < n; i++) ref[i] = h[i];
        loom_op_silu_mul_ref(ref, g, n);
        fn(h, g, n);
        for (int64_t i = 0; i < n; i++)
            cr_assert(fabsf(h[i] - ref[i]) <= 1e-6f * fabsf(ref[i]) + 1e-30f, "n %ld i %ld: %g vs %g", (long)n,
                      (long)i, h[i], ref[i]);
        loom_free(h), loom_free(g), loom_free(ref);
    }
}

static void check_add(add_fn fn) {
    uint64_t s = 13;
    for (size_t li = 0; li < N_LENS; li++) {
        const int64_t n = LENS[li];
        float *x = buf(n + 1), *a = buf(n), *ref = buf(n);
        fill(x, n, 5.0f, &s);
        fill(a, n, 5.0f, &s);
        x[n] = 42.0f; /* the element after the row: a masked tail must not write it */
        for (int64_t i = 0; i < n; i++) ref[i] = x[i];
        loom_op_add_ref(ref, a, n);
        fn(x, a, n);
        for (int64_t i = 0; i < n; i++) cr_assert_eq(x[i], ref[i]);
        cr_assert_eq(x[n], 42.0f);
        loom_free(x), loom_free(a), loom_free(ref);
    }
}

#define NEED(isa, what) if (loom_isa_best() < (isa)) cr_skip_test("no " what " on this CPU")
Test(ops, rmsnorm_avx512_matches_reference) { NEED(LOOM_ISA_AVX512, "AVX-512"); check_rmsnorm(loom_op_rmsnorm_avx512); }
Test(ops, silu_mul_avx512_matches_reference) { NEED(LOOM_ISA_AVX512, "AVX-512"); check_silu_mul(loom_op_silu_mul_avx512); }
Test(ops, add_avx512_is_exact_and_stays_in_bounds) { NEED(LOOM_ISA_AVX512, "AVX-512"); check_add(loom_op_add_avx512); }
Test(ops, rmsnorm_avx2_matches_reference) { NEED(LOOM_ISA_AVX2, "AVX2"); check_rmsnorm(loom_op_rmsnorm_avx2); }
Test(ops, silu_mul_avx2_matches_reference) { NEED(LOOM_ISA_AVX2, "AVX2"); check_silu_mul(loom_op_silu_mul_avx2); }
Test(ops, add_avx2_is_exact_and_stays_in_bounds) { NEED(LOOM_ISA_AVX2, "AVX2"); check_add(loom_op_add_avx2); }

Test(ops, dispatch_follows_the_isa_cap) {
    /* the public entry points give the reference's bits when LOOM_ISA caps the kernels below AVX2 */
    uint64_t s = 14;
    const int64_t n = 2048;
    float *x = buf(n), *ref = buf(n), *got = buf(n);
    fill(x, n, 2.0f, &s);
    loom_isa_force(LOOM_ISA_SCALAR);
    loom_op_rmsnorm(got, x, NULL, n, 1e-5f);
    loom_isa_force(loom_isa_best());
    loom_op_rmsnorm_ref(ref, x, NULL, n, 1e-5f);
    for (int64_t i = 0; i < n; i++) cr_assert_eq(got[i], ref[i]);
    loom_free(x), loom_free(ref), loom_free(got);
}
