/* tests/core/test_gemm.c — the tiled GEMM engines behind loom_matmul (core/gemm*.c).
 *
 * Oracle: the scalar reference kernels (loom_vec_dot_isa(LOOM_ISA_SCALAR, ...), themselves checked against
 * f64 decodes in test_matmul.c) on the same quantized activations, per row and token. Tolerance: 1e-5 * S
 * with S = sum_i |w_i * x_i| (what float rounding scales with). Shapes are awkward on purpose: n_out not a
 * multiple of any tile, n_tok = 1, 3, 17, 64, 577, n_in from one block to several cache blocks with a tail.
 * Threaded results must equal single-threaded ones bit for bit.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "core/gemm_int.h"
#include "core/matmul.h"
#include "core/matmul_int.h"
#include "core/quant.h"
#include "core/threadpool.h"
#include "tests/core/rand_rows.h"
#include "tests/testutil.h"


typedef struct shape {
    int64_t n_in, n_out, n_tok;
} shape;

/* Y from loom_matmul (engine forced on from 1 token) vs the scalar reference, and threaded vs single. */
static void check_type(loom_dtype t, const shape *shapes, int n_shapes, int expect_engine) {
    loom_pool *pool2 = NULL, *pool3 = NULL;
    cr_assert_eq(loom_pool_new(&pool2, 2, NULL), LOOM_OK);
    cr_assert_eq(loom_pool_new(&pool3, 3, NULL), LOOM_OK);
    loom_gemm_set_min_tokens(1);
    for (int si = 0; si < n_shapes; si++) {
        const int64_t n_in = shapes[si].n_in, n_out = shapes[si].n_out, n_tok = shapes[si].n_tok;
        uint64_t s = 777 + (uint64_t)si * 31 + (uint64_t)t;
        uint8_t *W = rand_rows(t, n_in, n_out, &s);
        const size_t rb = loom_row_size(t, n_in), ab = loom_act_row_size(t, n_in);
        float *X = loom_malloc((size_t)(n_tok * n_in) * sizeof(float));
        for (int64_t i = 0; i < n_tok * n_in; i++) X[i] = loom_test_rand_normal(&s);
        const size_t ybytes = (size_t)(n_tok * n_out) * sizeof(float);
        float *Y1 = loom_malloc(ybytes), *Y2 = loom_malloc(ybytes), *Y3 = loom_malloc(ybytes);
        float *wd = loom_malloc((size_t)(n_out * n_in) * sizeof(float));
        uint8_t *xq = loom_malloc(ab);
        for (int64_t o = 0; o < n_out; o++) cr_assert_eq(loom_dequantize_row(t, W + o * rb, wd + o * n_in, n_in), 0);
        if (expect_engine) {
            cr_assert_eq(loom_gemm(NULL, Y1, W, t, n_in, n_out, X, n_tok), 0, "%s: engine not taken",
                         loom_type_name(t));
        }
        cr_assert_eq(loom_matmul(NULL, Y1, W, t, n_in, n_out, X, n_tok), 0);
        cr_assert_eq(loom_matmul(pool2, Y2, W, t, n_in, n_out, X, n_tok), 0);
        cr_assert_eq(loom_matmul(pool3, Y3, W, t, n_in, n_out, X, n_tok), 0);
        cr_assert_eq(memcmp(Y1, Y2, ybytes), 0, "%s %ldx%ldx%ld: 2 threads differ", loom_type_name(t), (long)n_in,
                     (long)n_out, (long)n_tok);
        cr_assert_eq(memcmp(Y1, Y3, ybytes), 0, "%s: 3 threads differ", loom_type_name(t));
        double worst = 0;
        for (int64_t tok = 0; tok < n_tok; tok++) {
            const float *x = X + tok * n_in;
            loom_act_quantize(t, x, xq, n_in);
            for (int64_t o = 0; o < n_out; o++) {
                const float ref = loom_vec_dot_isa(LOOM_ISA_SCALAR, t, n_in, W + o * rb, xq);
                double S = 0;
                for (int64_t i = 0; i < n_in; i++) S += fabs((double)wd[o * n_in + i] * x[i]);
                const double err = fabs((double)Y1[tok * n_out + o] - ref);
                if (err / (S + 1e-30) > worst) worst = err / (S + 1e-30);
                cr_assert(err <= 1e-5 * S + 1e-30, "%s %ldx%ldx%ld tok %ld row %ld: %.9g vs ref %.9g (S %.3g)",
                          loom_type_name(t), (long)n_in, (long)n_out, (long)n_tok, (long)tok, (long)o,
                          Y1[tok * n_out + o], ref, S);
            }
        }
        cr_log_info("%s %ldx%ldx%ld: worst |err|/S = %.3g", loom_type_name(t), (long)n_in, (long)n_out, (long)n_tok,
                    worst);
        loom_free(W);
        loom_free(X);
        loom_free(Y1);
        loom_free(Y2);
        loom_free(Y3);
        loom_free(wd);
        loom_free(xq);
    }
    loom_gemm_set_min_tokens(0);
    loom_pool_free(pool2);
    loom_pool_free(pool3);
}

static int have_amx(void) { return loom_gemm_amx_enable(1); }
/* VNNI runs where AMX is absent; tests reach it on AMX machines too by switching AMX off. */
static int use_vnni(void) {
    loom_gemm_amx_enable(0);
    return loom_gemm_vnni_enable(1);
}
/* AVX2 runs where AVX-512 is absent; tests reach it on AVX-512 machines by switching AMX and VNNI off. */
static int use_avx2(void) {
    loom_gemm_amx_enable(0);
    loom_gemm_vnni_enable(0);
    return loom_gemm_avx2_enable(1);
}
static void restore_engines(void) {
    loom_gemm_avx2_enable(1);
    loom_gemm_vnni_enable(1);
    loom_gemm_amx_enable(1);
}
static int have_int8_engine(void) { return have_amx() || loom_gemm_vnni_enable(1) || loom_gemm_avx2_enable(1); }

static const shape k_shapes_256[] = {
    {256, 37, 1}, {256, 17, 577}, {768, 45, 17}, {2304, 33, 64}, {512, 100, 3}, {1024, 16, 40},
};
static const shape k_shapes_32[] = {
    {32, 37, 1}, {96, 17, 577}, {288, 45, 17}, {1056, 33, 64}, {64, 100, 3}, {512, 16, 33},
};
static const shape k_shapes_f[] = {
    {16, 37, 1}, {75, 17, 577}, {300, 45, 17}, {600, 33, 64}, {520, 100, 3}, {256, 32, 25}, {1, 5, 13},
    {4500, 35, 20}, /* past two of the AVX-512 engine's 2048-input blocks, with a tail */
};
#define N_SH(a) (int)(sizeof(a) / sizeof(a[0]))

#define QTEST(name, T, SH)                                                                                     \
    Test(gemm, int8_##name) {                                                                                  \
        if (!have_amx()) cr_skip_test("no AMX int8 here: the int8 engine is not used");                         \
        check_type(T, SH, N_SH(SH), 1);                                                                        \
    }
QTEST(q4_k, LOOM_Q4_K, k_shapes_256)
QTEST(q5_k, LOOM_Q5_K, k_shapes_256)
QTEST(q6_k, LOOM_Q6_K, k_shapes_256)
QTEST(q8_0, LOOM_Q8_0, k_shapes_32)
QTEST(q4_0, LOOM_Q4_0, k_shapes_32)
QTEST(q5_0, LOOM_Q5_0, k_shapes_32)

#define VTEST(name, T, SH)                                                                                     \
    Test(gemm, vnni_##name) {                                                                                  \
        const int ok = use_vnni();                                                                             \
        if (ok) check_type(T, SH, N_SH(SH), 1);                                                                \
        loom_gemm_amx_enable(1);                                                                               \
        if (!ok) cr_skip_test("no AVX-512 VNNI here: the VNNI int8 engine is not used");                        \
    }
VTEST(q4_k, LOOM_Q4_K, k_shapes_256)
VTEST(q5_k, LOOM_Q5_K, k_shapes_256)
VTEST(q6_k, LOOM_Q6_K, k_shapes_256)
VTEST(q8_0, LOOM_Q8_0, k_shapes_32)
VTEST(q4_0, LOOM_Q4_0, k_shapes_32)
VTEST(q5_0, LOOM_Q5_0, k_shapes_32)

#define ATEST(name, T, SH)                                                                                     \
    Test(gemm, avx2_##name) {                                                                                  \
        const int ok = use_avx2();                                                                             \
        if (ok) check_type(T, SH, N_SH(SH), 1);                                                                \
        restore_engines();                                                                                     \
        if (!ok) cr_skip_test("no AVX2 here: the AVX2 int8 engine is not used");                                \
    }
ATEST(q4_k, LOOM_Q4_K, k_shapes_256)
ATEST(q5_k, LOOM_Q5_K, k_shapes_256)
ATEST(q6_k, LOOM_Q6_K, k_shapes_256)
ATEST(q8_0, LOOM_Q8_0, k_shapes_32)
ATEST(q4_0, LOOM_Q4_0, k_shapes_32)
ATEST(q5_0, LOOM_Q5_0, k_shapes_32)

/* The largest integer terms the engines' narrow sums can meet: every q at its maximum, the Q4_K/Q5_K sub-block
 * scales at 63 (Q6_K's at -1 and -128: scales only enter vpmaddwd, whose int32 sums have room), Q8_0's -128,
 * every activation +-127. An s16 sum taken one step too far wraps and shows here as a wrong
 * sign or magnitude. Each engine present is checked; the reference is the scalar dot on the same blocks. */
static void check_extremes(void) {
    const loom_dtype types[] = {LOOM_Q4_K, LOOM_Q5_K, LOOM_Q6_K, LOOM_Q8_0, LOOM_Q4_0, LOOM_Q5_0};
    const int64_t n_out = 19, n_tok = 7;
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        const loom_dtype t = types[ti];
        const int64_t n_in = t == LOOM_Q4_K || t == LOOM_Q5_K || t == LOOM_Q6_K ? 512 : 96;
        for (int fi = 0; fi < 2; fi++) {
            uint8_t *W = fill_rows(t, n_in, n_out, fi ? 0x80 : 0xFF, mm_f32_to_f16(0.01f));
            float *X = loom_malloc(sizeof(float) * (size_t)(n_tok * n_in)), *Y = loom_malloc(sizeof(float) * (size_t)(n_tok * n_out));
            uint8_t *xq = loom_malloc(loom_act_row_size(t, n_in));
            for (int64_t tok = 0; tok < n_tok; tok++)
                for (int64_t i = 0; i < n_in; i++) X[tok * n_in + i] = tok % 2 ? -1.0f : 1.0f;
            cr_assert_eq(loom_gemm(NULL, Y, W, t, n_in, n_out, X, n_tok), 0, "%s: engine not taken", loom_type_name(t));
            for (int64_t tok = 0; tok < n_tok; tok++) {
                loom_act_quantize(t, X + tok * n_in, xq, n_in);
                for (int64_t o = 0; o < n_out; o++) {
                    const float ref = loom_vec_dot_isa(LOOM_ISA_SCALAR, t, n_in, W + o * loom_row_size(t, n_in), xq);
                    cr_assert(fabsf(Y[tok * n_out + o] - ref) <= 1e-5f * fabsf(ref) + 1e-6f,
                              "%s fill %#x tok %ld row %ld: %.9g vs ref %.9g", loom_type_name(t), fi ? 0x80 : 0xFF,
                              (long)tok, (long)o, Y[tok * n_out + o], ref);
                }
            }
            loom_free(W);
            loom_free(X);
            loom_free(Y);
            loom_free(xq);
        }
    }
}

Test(gemm, extreme_values_do_not_overflow) {
    loom_gemm_set_min_tokens(1);
    int engines = 0;
    if (have_amx()) check_extremes(), engines++;
    if (use_vnni()) check_extremes(), engines++;
    if (use_avx2()) check_extremes(), engines++;
    restore_engines();
    loom_gemm_set_min_tokens(0);
    if (!engines) cr_skip_test("no int8 engine on this CPU");
}

static void check_float(loom_isa isa) {
    loom_isa_force(isa);
    check_type(LOOM_F32, k_shapes_f, N_SH(k_shapes_f), 1);
    check_type(LOOM_F16, k_shapes_f, N_SH(k_shapes_f), 1);
    check_type(LOOM_BF16, k_shapes_f, N_SH(k_shapes_f), 1);
    loom_isa_force(loom_isa_best());
}

Test(gemm, f32_avx512) {
    if (loom_isa_best() < LOOM_ISA_AVX512) cr_skip_test("no AVX-512");
    check_float(LOOM_ISA_AVX512);
}

Test(gemm, f32_avx2) {
    if (loom_isa_best() < LOOM_ISA_AVX2) cr_skip_test("no AVX2");
    check_float(LOOM_ISA_AVX2);
}

/* Types and ISAs without an engine report "not mine" and loom_matmul still answers through dot4. */
Test(gemm, declines_and_falls_back) {
    uint64_t s = 5;
    const int64_t n_in = 64, n_out = 20, n_tok = 32;
    uint8_t *W = rand_rows(LOOM_Q4_1, n_in, n_out, &s), *W8 = rand_rows(LOOM_Q8_0, n_in, n_out, &s);
    float X[32 * 64], Y[32 * 20];
    for (int i = 0; i < n_tok * n_in; i++) X[i] = loom_test_rand_normal(&s);
    cr_assert_eq(loom_gemm(NULL, Y, W, LOOM_Q4_1, n_in, n_out, X, n_tok), 1);
    cr_assert_eq(loom_gemm(NULL, Y, W, LOOM_F32, n_in, n_out, X, 2), 1); /* below the threshold */
    loom_isa_force(LOOM_ISA_SCALAR);
    cr_assert_eq(loom_gemm(NULL, Y, W, LOOM_F32, 16, n_out, X, n_tok), 1);
    cr_assert_eq(loom_gemm(NULL, Y, W8, LOOM_Q8_0, n_in, n_out, X, n_tok), 1);
    loom_isa_force(loom_isa_best());
    loom_gemm_amx_enable(0);
    loom_gemm_vnni_enable(0);
    loom_gemm_avx2_enable(0);
    cr_assert_eq(loom_gemm(NULL, Y, W8, LOOM_Q8_0, n_in, n_out, X, n_tok), 1);
    cr_assert_eq(loom_matmul(NULL, Y, W8, LOOM_Q8_0, n_in, n_out, X, n_tok), 0);
    restore_engines();
    loom_free(W);
    loom_free(W8);
}

/* The scratch is kept for reuse and released on request; a failed allocation is reported, not crashed on. */
Test(gemm, scratch_and_allocation_failure) {
    if (loom_isa_best() < LOOM_ISA_AVX2) cr_skip_test("no AVX2");
    uint64_t s = 9;
    const int64_t n_in = 64, n_out = 20, n_tok = 32;
    uint8_t *W = rand_rows(LOOM_F16, n_in, n_out, &s);
    float X[32 * 64], Y[32 * 20];
    for (int i = 0; i < n_tok * n_in; i++) X[i] = loom_test_rand_normal(&s);
    int64_t base = loom_alloc_live_bytes();
    loom_alloc_fail_after(0);
    cr_assert_eq(loom_gemm(NULL, Y, W, LOOM_F16, n_in, n_out, X, n_tok), -1);
    loom_alloc_fail_after(-1);
    cr_assert_eq(loom_gemm(NULL, Y, W, LOOM_F16, n_in, n_out, X, n_tok), 0);
    cr_assert_gt(loom_alloc_live_bytes(), base);
    loom_gemm_scratch_release();
    cr_assert_eq(loom_alloc_live_bytes(), base);
    loom_free(W);
}

/* loom_matmul_grouped: every job's Y equals loom_matmul's for that job alone, bit for bit, whether the int8
 * engine takes it (enough tokens, same activation layout as the first taken job) or it falls back (F32, too few
 * tokens, Q6_K beside Q4_K, Q8_0's other activation format); shared and distinct inputs, 1 and 2 threads. */
/* engine: an int8 engine runs; q6_joins: its Q6_K activations share the Q4_K layout (VNNI, AVX2; not AMX) */
static void check_grouped(bool engine, bool q6_joins) {
    uint64_t s = 21;
    const int64_t n_in = 512;
    enum { NJ = 9 };
    const loom_dtype types[NJ] = {LOOM_Q4_K, LOOM_Q4_K, LOOM_Q5_K, LOOM_Q6_K, LOOM_Q8_0, LOOM_F32, LOOM_Q4_K, LOOM_Q4_K, LOOM_Q4_K};
    const int64_t n_out[NJ] = {40, 17, 33, 48, 16, 20, 1, 64, 30};
    const int64_t n_tok[NJ] = {37, 37, 9, 20, 33, 40, 3, 17, 1}; /* jobs 0, 1 share X (same pointer, count) */
    float *X[NJ], *Y[NJ], *R[NJ];
    void *W[NJ];
    loom_matmul_group_job jobs[NJ];
    for (int j = 0; j < NJ; j++) {
        W[j] = rand_rows(types[j], n_in, n_out[j], &s);
        X[j] = loom_malloc(sizeof(float) * (size_t)(n_tok[j] * n_in));
        Y[j] = loom_malloc(sizeof(float) * (size_t)(n_tok[j] * n_out[j]));
        R[j] = loom_malloc(sizeof(float) * (size_t)(n_tok[j] * n_out[j]));
        for (int64_t i = 0; i < n_tok[j] * n_in; i++) X[j][i] = loom_test_rand_normal(&s);
    }
    loom_free(X[1]);
    X[1] = X[0];
    for (int j = 0; j < NJ; j++) {
        jobs[j] = (loom_matmul_group_job){Y[j], W[j], types[j], n_out[j], X[j], n_tok[j]};
        cr_assert_eq(loom_matmul(NULL, R[j], W[j], types[j], n_in, n_out[j], X[j], n_tok[j]), 0);
    }
    loom_pool *pool;
    loom_err err;
    cr_assert_eq(loom_pool_new(&pool, 2, &err), LOOM_OK);
    for (int pass = 0; pass < 2; pass++) {
        for (int j = 0; j < NJ; j++) memset(Y[j], 0xFF, sizeof(float) * (size_t)(n_tok[j] * n_out[j]));
        cr_assert_eq(loom_matmul_grouped(pass ? pool : NULL, jobs, NJ, n_in), 0);
        for (int j = 0; j < NJ; j++)
            cr_assert_eq(memcmp(Y[j], R[j], sizeof(float) * (size_t)(n_tok[j] * n_out[j])), 0, "job %d, pass %d", j, pass);
    }
    /* what the int8 engine takes: the first Q4_K layout's jobs with >= 8 tokens (Q5_K shares the layout) */
    bool done[NJ];
    cr_assert_eq(loom_gemm_grouped(NULL, jobs, NJ, n_in, done), 0);
    const bool expect[NJ] = {1, 1, 1, q6_joins, 0, 0, 0, 1, 0};
    for (int j = 0; j < NJ; j++) cr_assert_eq(done[j], expect[j] && engine, "job %d", j);
    /* a failed allocation is an error, with nothing claimed done (without AMX nothing here allocates: the
     * fallback products reuse the scratch of the calls above) */
    if (engine) {
        loom_alloc_fail_after(0);
        cr_assert_eq(loom_gemm_grouped(NULL, jobs, NJ, n_in, done), -1);
        for (int j = 0; j < NJ; j++) cr_assert(!done[j]);
        cr_assert_eq(loom_matmul_grouped(NULL, jobs, NJ, n_in), -1);
        loom_alloc_fail_after(-1);
    }
    cr_assert_eq(loom_matmul_grouped(NULL, jobs, -1, n_in), -1);
    jobs[2].n_tok = -1;
    cr_assert_eq(loom_matmul_grouped(NULL, jobs, NJ, n_in), -1);
    loom_pool_free(pool);
    for (int j = 0; j < NJ; j++) {
        loom_free(W[j]);
        if (j != 1) loom_free(X[j]);
        loom_free(Y[j]);
        loom_free(R[j]);
    }
}

Test(gemm, grouped_equals_one_at_a_time) {
    const bool amx = have_amx(), engine = have_int8_engine();
    check_grouped(engine, !amx); /* (VNNI and AVX2 keep Q6_K's activations in the Q4_K layout) */
}

/* the AVX2 engine's grouped pass, on AVX-512 machines too (their default engine is another) */
Test(gemm, avx2_grouped_equals_one_at_a_time) {
    const int ok = use_avx2();
    if (ok) check_grouped(true, true);
    restore_engines();
    if (!ok) cr_skip_test("no AVX2 here: the AVX2 int8 engine is not used");
}
