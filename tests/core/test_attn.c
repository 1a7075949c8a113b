/* tests/core/test_attn.c — the AVX-512 fused attention against its scalar reference, on random tasks of awkward
 * shapes: head sizes 16..256, 1..16 query lanes (both the key-major path for few lanes and the lane-major one),
 * 1..4 key segments of odd lengths and strides laid out like a wrapped KV ring, per-lane visible ranges
 * (causal, chunked, single key, empty, outside every key), rows no lane sees poisoned with NaN. */
#include <math.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

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

static bool has_avx512(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq");
}

/* A KV ring of cap rows. Keys and values each end exactly at the last row's last element, right before an
 * inaccessible page, so a kernel that reads past a row (a full 16-float load where d_head % 16 != 0) faults. */
typedef struct ring {
    float  *k, *v;
    int64_t cap, stride;
    size_t  map_bytes;
    void   *map_k, *map_v;
} ring;

static float *guarded_floats(size_t n, size_t *map_bytes, void **map) {
    size_t page = (size_t)sysconf(_SC_PAGESIZE), data = (sizeof(float) * n + page - 1) / page * page;
    *map_bytes = data + page;
    *map = mmap(NULL, *map_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    cr_assert(*map != MAP_FAILED);
    cr_assert(mprotect((char *)*map + data, page, PROT_NONE) == 0);
    return (float *)((char *)*map + data) - n;
}

static void ring_init(ring *r, int64_t cap, int64_t stride, int dh) {
    size_t n = (size_t)((cap - 1) * stride + dh);
    r->cap = cap;
    r->stride = stride;
    r->k = guarded_floats(n, &r->map_bytes, &r->map_k);
    r->v = guarded_floats(n, &r->map_bytes, &r->map_v);
}

static void ring_release(ring *r) {
    munmap(r->map_k, r->map_bytes);
    munmap(r->map_v, r->map_bytes);
}

/* Fills the slots of positions pos0..pos0+n-1 (slot = first_slot + i, wrapping) with random rows, or NaN for
 * positions that no lane of t sees (a kernel must never let them reach an output). */
static void ring_fill(ring *r, int64_t first_slot, int64_t pos0, int64_t n, int dh, const loom_attn_task *t,
                      uint64_t *rng) {
    for (int64_t i = 0; i < n; i++) {
        int64_t slot = (first_slot + i) % r->cap, pos = pos0 + i;
        bool seen = false;
        for (int m = 0; m < t->n_q; m++) seen |= t->lo[m] <= pos && pos <= t->hi[m];
        for (int d = 0; d < dh; d++) {
            r->k[slot * r->stride + d] = seen ? loom_test_rand_normal(rng) : NAN;
            r->v[slot * r->stride + d] = seen ? loom_test_rand_normal(rng) : NAN;
        }
    }
}

/* Visible window of one lane over the positions [first, last] of the task's keys, of a random kind. */
static void pick_window(int64_t first, int64_t last, uint64_t *rng, int64_t *lo, int64_t *hi) {
    int64_t span = last - first + 1;
    int64_t a = first + (int64_t)(loom_test_rand_u64(rng) % (uint64_t)span);
    int64_t b = first + (int64_t)(loom_test_rand_u64(rng) % (uint64_t)span);
    if (a > b) {
        int64_t x = a;
        a = b;
        b = x;
    }
    switch (loom_test_rand_u64(rng) % 8) {
    case 0: *lo = first, *hi = b; break;              /* causal */
    case 1: *lo = a, *hi = a; break;                  /* a single key */
    case 2: *lo = b + 1, *hi = b; break;              /* empty */
    case 3: *lo = last + 1, *hi = last + 40; break;   /* after every key */
    case 4: *lo = first - 40, *hi = first - 1; break; /* before every key */
    case 5: *lo = first - 5, *hi = last + 5; break;   /* wider than the keys */
    default: *lo = a, *hi = b; break;                 /* chunked / sliding */
    }
}

/* Runs t through the AVX-512 kernel and the reference and compares every output element. */
static void check_against_reference(loom_attn_task *t, float *outs, const char *what) {
    loom_attn_task r = *t;
    for (int m = 0; m < t->n_q; m++) {
        t->out[m] = outs + m * 256;
        r.out[m] = outs + (16 + m) * 256;
    }
    loom_attn_run_avx512(t);
    loom_attn_run_ref(&r);
    for (int m = 0; m < t->n_q; m++) {
        float mag = 0.0f;
        for (int d = 0; d < t->d_head; d++) mag = fmaxf(mag, fabsf(r.out[m][d]));
        cr_assert(isfinite(mag), "%s lane %d: the reference saw a poisoned row", what, m);
        for (int d = 0; d < t->d_head; d++) {
            float a = t->out[m][d], b = r.out[m][d];
            cr_assert(fabsf(a - b) <= 1e-5f * (1.0f + mag), "%s lane %d dim %d: simd %g ref %g (n_q %d, d_head %d)",
                      what, m, d, a, b, t->n_q, t->d_head);
        }
    }
}

/* One random task: n_keys keys in n_seg segments stored ring-style (the first segment ends at the ring's last
 * slot, the others restart at slot 0), optionally with position gaps between segments. */
static void random_ring_task(int n_q, int dh, int64_t pos_base, uint64_t *rng, float *qs, float *outs,
                             const char *what) {
    static const int extra_stride[] = {0, 5, 16, 48, 7 * 16 + 3};
    int64_t stride = dh + extra_stride[loom_test_rand_u64(rng) % 5];
    int n_seg = 1 + (int)(loom_test_rand_u64(rng) % LOOM_ATTN_MAX_SEGS);
    int64_t n_keys = n_seg + (int64_t)(loom_test_rand_u64(rng) % 300);
    if (n_keys > 300) n_keys = 300;
    int64_t len[LOOM_ATTN_MAX_SEGS], left = n_keys;
    for (int s = 0; s < n_seg; s++) {
        int64_t room = left - (n_seg - 1 - s); /* keep at least one key for each later segment */
        len[s] = s == n_seg - 1 ? left : 1 + (int64_t)(loom_test_rand_u64(rng) % (uint64_t)room);
        left -= len[s];
    }
    loom_attn_task t;
    memset(&t, 0, sizeof t);
    t.n_q = n_q;
    t.d_head = dh;
    t.scale = 1.0f / sqrtf((float)dh);
    t.n_seg = n_seg;
    ring rg;
    ring_init(&rg, n_keys + (int64_t)(loom_test_rand_u64(rng) % 20), stride, dh);
    int64_t pos = pos_base, slot = rg.cap - len[0];
    for (int s = 0; s < n_seg; s++) {
        t.seg[s] = (loom_attn_seg){rg.k + slot * stride, rg.v + slot * stride, stride, pos, len[s]};
        slot = (slot + len[s]) % rg.cap;
        pos += len[s] + (loom_test_rand_u64(rng) % 4 == 0 ? 3 : 0);
    }
    int64_t first = pos_base, last = t.seg[n_seg - 1].pos0 + len[n_seg - 1] - 1;
    for (int m = 0; m < n_q; m++) {
        for (int d = 0; d < dh; d++) qs[m * 256 + d] = 2.0f * loom_test_rand_normal(rng);
        t.q[m] = qs + m * 256;
        pick_window(first, last, rng, &t.lo[m], &t.hi[m]);
    }
    for (int s = 0; s < n_seg; s++)
        ring_fill(&rg, (t.seg[s].k - rg.k) / stride, t.seg[s].pos0, t.seg[s].n, dh, &t, rng);
    check_against_reference(&t, outs, what);
    ring_release(&rg);
}

Test(attn, few_and_many_lanes_match_reference_on_ring_tasks) {
    if (!has_avx512()) cr_skip_test("no AVX-512 on this CPU (the scalar reference is what runs here)");
    static const int dhs[] = {16, 40, 64, 72, 128, 200, 256};
    uint64_t rng = 0xA77E5EEDull;
    float *outs = loom_malloc(sizeof(float) * 2 * 16 * 256), *qs = loom_malloc(sizeof(float) * 16 * 256);
    for (int i = 0; i < 7; i++)
        for (int n_q = 1; n_q <= 16; n_q++)
            for (int trial = 0; trial < (n_q <= 8 ? 3 : 1); trial++) {
                char what[64];
                snprintf(what, sizeof what, "d_head %d n_q %d trial %d", dhs[i], n_q, trial);
                random_ring_task(n_q, dhs[i], (int64_t)(loom_test_rand_u64(&rng) % 5000), &rng, qs, outs, what);
            }
    loom_free(outs);
    loom_free(qs);
}

Test(attn, positions_beyond_32_bits) {
    /* positions are int64: a context past 2^31 must still mask right on both paths */
    if (!has_avx512()) cr_skip_test("no AVX-512 on this CPU (the scalar reference is what runs here)");
    uint64_t rng = 0xB16B005ull;
    float *outs = loom_malloc(sizeof(float) * 2 * 16 * 256), *qs = loom_malloc(sizeof(float) * 16 * 256);
    for (int n_q = 1; n_q <= 16; n_q++)
        for (int trial = 0; trial < 2; trial++) {
            char what[64];
            snprintf(what, sizeof what, "n_q %d trial %d around 2^31", n_q, trial);
            random_ring_task(n_q, 64, ((int64_t)1 << 31) - 150, &rng, qs, outs, what); /* straddles 2^31 */
        }
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
