/* tests/core/test_attn.c — the AVX-512 fused attention against its scalar reference, on random tasks of awkward
 * shapes: head sizes 16..256, 1..16 query lanes, 1..3 key segments of odd lengths and strides, per-lane visible
 * ranges (causal, chunked, single key, empty). */
#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "core/attn.h"
#include "tests/testutil.h"

Test(attn, avx512_matches_reference_on_random_tasks) {
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512dq"))
        cr_skip_test("no AVX-512 on this CPU (the scalar reference is what runs here)");
    uint64_t rng = 0x1234567;
    static const int dhs[] = {16, 32, 88, 128, 256, 8, 40};
    float *pool = loom_malloc(sizeof(float) * 3 * 400 * 300);
    float *outs = loom_malloc(sizeof(float) * 2 * 16 * 256), *qs = loom_malloc(sizeof(float) * 16 * 256);
    for (int trial = 0; trial < 300; trial++) {
        int dh = dhs[trial % 7];
        loom_attn_task t;
        memset(&t, 0, sizeof t);
        t.d_head = dh;
        t.scale = 1.0f / sqrtf((float)dh);
        t.n_q = 1 + (int)(loom_test_rand_u64(&rng) % 16);
        t.n_seg = 1 + (int)(loom_test_rand_u64(&rng) % 3);
        int64_t pos = (int64_t)(loom_test_rand_u64(&rng) % 50), total = 0;
        float *cursor = pool;
        for (int s = 0; s < t.n_seg; s++) {
            int64_t n = 1 + (int64_t)(loom_test_rand_u64(&rng) % 70);
            int64_t stride = dh + (int64_t)(loom_test_rand_u64(&rng) % 3) * 16;
            if (s == t.n_seg - 1 && trial % 3 == 0) stride = dh; /* last row ends the buffer: masked tail reads */
            for (int64_t i = 0; i < n * stride * 2; i++) cursor[i] = loom_test_rand_normal(&rng);
            t.seg[s] = (loom_attn_seg){cursor, cursor + n * stride, stride, pos, n};
            cursor += n * stride * 2;
            pos += n;
            total += n;
        }
        int64_t first = t.seg[0].pos0, last = pos - 1;
        for (int m = 0; m < t.n_q; m++) {
            for (int d = 0; d < dh; d++) qs[m * 256 + d] = 2.0f * loom_test_rand_normal(&rng);
            t.q[m] = qs + m * 256;
            int64_t hi = first + (int64_t)(loom_test_rand_u64(&rng) % (uint64_t)total);
            int64_t lo = first + (int64_t)(loom_test_rand_u64(&rng) % (uint64_t)(hi - first + 1));
            if (m == 1 && trial % 7 == 0) lo = hi;          /* a single visible key */
            if (m == 2 && trial % 11 == 0) lo = hi + 1;     /* nothing visible: output 0 */
            t.lo[m] = lo;
            t.hi[m] = hi > last ? last : hi;
        }
        loom_attn_task r = t;
        for (int m = 0; m < t.n_q; m++) {
            t.out[m] = outs + m * 256;
            r.out[m] = outs + (16 + m) * 256;
        }
        loom_attn_run_avx512(&t);
        loom_attn_run_ref(&r);
        for (int m = 0; m < t.n_q; m++)
            for (int d = 0; d < dh; d++) {
                float a = t.out[m][d], b = r.out[m][d];
                cr_assert(fabsf(a - b) <= 2e-5f * (1.0f + fabsf(b)), "trial %d lane %d dim %d: simd %g ref %g (dh %d)",
                          trial, m, d, a, b, dh);
            }
    }
    loom_free(pool);
    loom_free(outs);
    loom_free(qs);
}

Test(attn, reference_is_softmax_attention) {
    /* two keys, one query: out = (e^{s0} v0 + e^{s1} v1) / (e^{s0} + e^{s1}) */
    float k[2][16] = {{0}}, v[2][16] = {{0}}, q[16] = {0}, out[16];
    k[0][0] = 1.0f;
    k[1][1] = 2.0f;
    q[0] = 0.5f;
    q[1] = 1.5f;
    v[0][3] = 10.0f;
    v[1][3] = -4.0f;
    loom_attn_task t;
    memset(&t, 0, sizeof t);
    t.n_q = 1;
    t.d_head = 16;
    t.scale = 0.25f;
    t.q[0] = q;
    t.out[0] = out;
    t.lo[0] = 0;
    t.hi[0] = 1;
    t.n_seg = 1;
    t.seg[0] = (loom_attn_seg){&k[0][0], &v[0][0], 16, 0, 2};
    loom_attn_run_ref(&t);
    double s0 = 0.25 * 0.5, s1 = 0.25 * 3.0, w0 = exp(s0) / (exp(s0) + exp(s1));
    cr_assert_float_eq(out[3], (float)(w0 * 10 + (1 - w0) * -4), 1e-5);
    cr_assert_float_eq(out[0], 0.0f, 1e-7);
    t.hi[0] = 0; /* causal cut: only the first key */
    loom_attn_run(&t);
    cr_assert_float_eq(out[3], 10.0f, 1e-5);
}
