/* tests/core/test_attn.c — the SIMD fused attention kernels (AVX-512, AVX2 + FMA) against their scalar
 * reference, on random tasks of awkward shapes: head sizes 8..256 (multiples of 8 and not), 1..16 query lanes
 * (both the key-major path for few lanes and the lane-major one), 1..4 key segments of odd lengths and strides
 * laid out like a wrapped KV ring, per-lane visible ranges (causal, chunked, single key, empty, outside every
 * key), rows no lane sees poisoned with NaN, contexts of thousands of keys; plus the dispatch and exp256. */
#include <math.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/attn.h"
#include "core/matmul.h"
#include "tests/testutil.h"

typedef void (*attn_kernel)(const loom_attn_task *t);

void loom_test_exp256(float *y, const float *x, int n); /* tests/core/exp_check_avx2.c */

static bool has_avx512(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq");
}

static bool has_avx2(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

/* Sets the first dh floats of every key and value row that no lane of t sees to NaN: a kernel must skip them
 * (never-written KV-cache rows may hold anything). */
static void poison_unseen_rows(loom_attn_task *t) {
    for (int s = 0; s < t->n_seg; s++)
        for (int64_t i = 0; i < t->seg[s].n; i++) {
            int64_t pos = t->seg[s].pos0 + i;
            bool seen = false;
            for (int m = 0; m < t->n_q; m++) seen |= t->lo[m] <= pos && pos <= t->hi[m];
            if (seen) continue;
            float *k = (float *)t->seg[s].k + i * t->seg[s].stride, *v = (float *)t->seg[s].v + i * t->seg[s].stride;
            for (int d = 0; d < t->d_head; d++) k[d] = v[d] = NAN;
        }
}

/* trials random tasks in one pool of rows (segments back to back, the last one sometimes ending the pool's
 * rows exactly), run through fn and the reference. */
static void random_tasks_match_reference(attn_kernel fn, const int *dhs, int n_dh, int trials, uint64_t rng,
                                         bool poison) {
    float *pool = loom_malloc(sizeof(float) * 3 * 400 * 300);
    float *outs = loom_malloc(sizeof(float) * 2 * 16 * 256), *qs = loom_malloc(sizeof(float) * 16 * 256);
    for (int trial = 0; trial < trials; trial++) {
        int dh = dhs[trial % n_dh];
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
        if (poison) poison_unseen_rows(&t);
        loom_attn_task r = t;
        for (int m = 0; m < t.n_q; m++) {
            t.out[m] = outs + m * 256;
            r.out[m] = outs + (16 + m) * 256;
        }
        fn(&t);
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

Test(attn, avx512_matches_reference_on_random_tasks) {
    if (!has_avx512()) cr_skip_test("no AVX-512 on this CPU (the scalar reference is what runs here)");
    static const int dhs[] = {16, 32, 88, 128, 256, 8, 40};
    random_tasks_match_reference(loom_attn_run_avx512, dhs, 7, 300, 0x1234567, false);
}

Test(attn, avx2_matches_reference_on_random_tasks) {
    if (!has_avx2()) cr_skip_test("no AVX2 + FMA on this CPU (the scalar reference is what runs here)");
    /* whole chunks, the ViT's 88, and partial last chunks of every length 1..7 (36, 75, 100, 13, 250, 6) */
    static const int dhs[] = {8, 36, 75, 88, 100, 128, 256, 13, 64, 250, 6, 16};
    random_tasks_match_reference(loom_attn_run_avx2, dhs, 12, 480, 0x2B2B2B2, true);
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

/* Runs t through fn and the reference and compares every output element. */
static void check_against_reference(attn_kernel fn, loom_attn_task *t, float *outs, const char *what) {
    loom_attn_task r = *t;
    for (int m = 0; m < t->n_q; m++) {
        t->out[m] = outs + m * 256;
        r.out[m] = outs + (16 + m) * 256;
    }
    fn(t);
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
static void random_ring_task(attn_kernel fn, int n_q, int dh, int64_t pos_base, uint64_t *rng, float *qs, float *outs,
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
    check_against_reference(fn, &t, outs, what);
    ring_release(&rg);
}

static void ring_tasks_match_reference(attn_kernel fn, const int *dhs, int n_dh, uint64_t rng) {
    float *outs = loom_malloc(sizeof(float) * 2 * 16 * 256), *qs = loom_malloc(sizeof(float) * 16 * 256);
    for (int i = 0; i < n_dh; i++)
        for (int n_q = 1; n_q <= 16; n_q++)
            for (int trial = 0; trial < (n_q <= 8 ? 3 : 1); trial++) {
                char what[64];
                snprintf(what, sizeof what, "d_head %d n_q %d trial %d", dhs[i], n_q, trial);
                random_ring_task(fn, n_q, dhs[i], (int64_t)(loom_test_rand_u64(&rng) % 5000), &rng, qs, outs, what);
            }
    loom_free(outs);
    loom_free(qs);
}

/* positions are int64: a context past 2^31 must still mask right on both paths */
static void positions_beyond_32_bits_match(attn_kernel fn, int dh, uint64_t rng) {
    float *outs = loom_malloc(sizeof(float) * 2 * 16 * 256), *qs = loom_malloc(sizeof(float) * 16 * 256);
    for (int n_q = 1; n_q <= 16; n_q++)
        for (int trial = 0; trial < 2; trial++) {
            char what[64];
            snprintf(what, sizeof what, "n_q %d trial %d around 2^31 (d_head %d)", n_q, trial, dh);
            random_ring_task(fn, n_q, dh, ((int64_t)1 << 31) - 150, &rng, qs, outs, what); /* straddles 2^31 */
        }
    loom_free(outs);
    loom_free(qs);
}

Test(attn, few_and_many_lanes_match_reference_on_ring_tasks) {
    if (!has_avx512()) cr_skip_test("no AVX-512 on this CPU (the scalar reference is what runs here)");
    static const int dhs[] = {16, 40, 64, 72, 128, 200, 256};
    ring_tasks_match_reference(loom_attn_run_avx512, dhs, 7, 0xA77E5EEDull);
}

Test(attn, positions_beyond_32_bits) {
    if (!has_avx512()) cr_skip_test("no AVX-512 on this CPU (the scalar reference is what runs here)");
    positions_beyond_32_bits_match(loom_attn_run_avx512, 64, 0xB16B005ull);
}

Test(attn, avx2_few_and_many_lanes_match_reference_on_ring_tasks) {
    if (!has_avx2()) cr_skip_test("no AVX2 + FMA on this CPU (the scalar reference is what runs here)");
    static const int dhs[] = {8, 36, 64, 75, 88, 100, 128, 200, 256};
    ring_tasks_match_reference(loom_attn_run_avx2, dhs, 9, 0xA77E2222ull);
}

Test(attn, avx2_positions_beyond_32_bits) {
    if (!has_avx2()) cr_skip_test("no AVX2 + FMA on this CPU (the scalar reference is what runs here)");
    positions_beyond_32_bits_match(loom_attn_run_avx2, 64, 0xB16B2222ull);
    positions_beyond_32_bits_match(loom_attn_run_avx2, 75, 0xB16B2223ull);
}

/* Tasks of the model's own shapes with thousands of keys, where the online softmax rescales many times:
 * Llama 4 decode (4 lanes, d_head 128, 8200 keys in a wrapped ring of two runs), prefill (16 lanes = 4
 * positions x 4 heads, causal, keys of the cache plus the batch), the ViT (16 lanes, d_head 88, all keys). */
static void long_task_matches(attn_kernel fn, int n_q, int dh, int64_t n_keys, int heads, bool causal, uint64_t *rng) {
    int64_t stride = dh + 8, split = n_keys / 3 + 5;
    float *kv = loom_malloc(sizeof(float) * (size_t)(2 * n_keys * stride));
    for (int64_t i = 0; i < 2 * n_keys * stride; i++) kv[i] = loom_test_rand_normal(rng);
    float *outs = loom_malloc(sizeof(float) * 2 * 16 * 256), *qs = loom_malloc(sizeof(float) * 16 * 256);
    loom_attn_task t;
    memset(&t, 0, sizeof t);
    t.n_q = n_q;
    t.d_head = dh;
    t.scale = 1.0f / sqrtf((float)dh);
    t.n_seg = 2; /* rows [split, n) then [0, split): a ring that wrapped */
    float *k = kv, *v = kv + n_keys * stride;
    t.seg[0] = (loom_attn_seg){k + split * stride, v + split * stride, stride, 0, n_keys - split};
    t.seg[1] = (loom_attn_seg){k, v, stride, n_keys - split, split};
    for (int m = 0; m < n_q; m++) {
        for (int d = 0; d < dh; d++) qs[m * 256 + d] = 2.0f * loom_test_rand_normal(rng);
        t.q[m] = qs + m * 256;
        t.lo[m] = 0;
        t.hi[m] = causal ? n_keys - 1 - (n_q / heads - 1 - m / heads) : n_keys - 1; /* position-major lanes */
    }
    char what[96];
    snprintf(what, sizeof what, "n_q %d d_head %d keys %lld%s", n_q, dh, (long long)n_keys, causal ? " causal" : "");
    check_against_reference(fn, &t, outs, what);
    loom_free(kv);
    loom_free(outs);
    loom_free(qs);
}

Test(attn, avx2_long_contexts_match_reference) {
    if (!has_avx2()) cr_skip_test("no AVX2 + FMA on this CPU (the scalar reference is what runs here)");
    uint64_t rng = 0x10C0DEull;
    long_task_matches(loom_attn_run_avx2, 4, 128, 8200, 4, true, &rng);  /* decode */
    long_task_matches(loom_attn_run_avx2, 5, 128, 3001, 5, true, &rng);  /* decode, 5-head groups */
    long_task_matches(loom_attn_run_avx2, 16, 128, 2050, 4, true, &rng); /* prefill */
    long_task_matches(loom_attn_run_avx2, 16, 88, 577, 1, false, &rng);  /* ViT */
}

/* The tasks fusion/lm_forward.c builds in a prefill: 4 positions x 4 query heads of one KV head, lane m at
 * position p0 + m / 4 seeing [0, p] (or its attention chunk, [p - p % 32, p]); cached keys then the batch's, in
 * two segments. Every p0 in a range puts each lane's last key at every offset within a key block. */
Test(attn, avx2_causal_prefill_tasks_match_reference) {
    if (!has_avx2()) cr_skip_test("no AVX2 + FMA on this CPU (the scalar reference is what runs here)");
    uint64_t rng = 0xCA05A1ull;
    const int dh = 128, n_max = 160;
    float *kv = loom_malloc(sizeof(float) * 2 * n_max * 2 * dh), *qs = loom_malloc(sizeof(float) * 16 * 256);
    float *outs = loom_malloc(sizeof(float) * 2 * 16 * 256);
    for (int i = 0; i < 2 * n_max * 2 * dh; i++) kv[i] = loom_test_rand_normal(&rng);
    for (int chunked = 0; chunked < 2; chunked++)
        for (int64_t p0 = 0; p0 + 4 <= n_max; p0++) {
            int64_t batch0 = p0 < 40 ? 0 : 40; /* keys before batch0 come from the "cache" */
            loom_attn_task t;
            memset(&t, 0, sizeof t);
            t.n_q = 16;
            t.d_head = dh;
            t.scale = 1.0f / sqrtf((float)dh);
            for (int m = 0; m < 16; m++) {
                for (int d = 0; d < dh; d++) qs[m * 256 + d] = 2.0f * loom_test_rand_normal(&rng);
                t.q[m] = qs + m * 256;
                t.hi[m] = p0 + m / 4;
                t.lo[m] = chunked ? t.hi[m] - t.hi[m] % 32 : 0;
            }
            int64_t min_lo = t.lo[0], stride = 2 * dh; /* K and V rows interleaved: kvd-strided like the cache */
            if (batch0 > min_lo)
                t.seg[t.n_seg++] = (loom_attn_seg){kv + min_lo * stride, kv + min_lo * stride + dh, stride, min_lo,
                                                   batch0 - min_lo};
            int64_t b0 = batch0 > min_lo ? batch0 : min_lo;
            t.seg[t.n_seg++] = (loom_attn_seg){kv + n_max * stride + b0 * stride, kv + n_max * stride + b0 * stride + dh,
                                               stride, b0, p0 + 4 - b0};
            char what[64];
            snprintf(what, sizeof what, "p0 %lld%s", (long long)p0, chunked ? " chunked" : "");
            check_against_reference(loom_attn_run_avx2, &t, outs, what);
        }
    loom_free(kv);
    loom_free(qs);
    loom_free(outs);
}

Test(attn, dispatch_follows_the_isa) {
    /* LOOM_ISA=scalar (or a pin) must give the reference bit for bit; an AVX2-only CPU must get the AVX2
     * kernel, not the reference */
    uint64_t rng = 0xD15Bull;
    const int dh = 100, n = 300;
    float *kv = loom_malloc(sizeof(float) * 2 * n * dh), out[3][16 * 100], q[16 * 100];
    for (int i = 0; i < 2 * n * dh; i++) kv[i] = loom_test_rand_normal(&rng);
    for (int i = 0; i < 16 * dh; i++) q[i] = 2.0f * loom_test_rand_normal(&rng);
    for (int n_q = 4; n_q <= 16; n_q += 12) {
        loom_attn_task t;
        memset(&t, 0, sizeof t);
        t.n_q = n_q;
        t.d_head = dh;
        t.scale = 0.1f;
        t.n_seg = 1;
        t.seg[0] = (loom_attn_seg){kv, kv + n * dh, dh, 0, n};
        for (int m = 0; m < n_q; m++) {
            t.q[m] = q + m * dh;
            t.lo[m] = m;
            t.hi[m] = n - 1 - m;
        }
        loom_attn_task r = t, s = t;
        for (int m = 0; m < n_q; m++) {
            t.out[m] = out[0] + m * dh;
            r.out[m] = out[1] + m * dh;
            s.out[m] = out[2] + m * dh;
        }
        loom_isa_force(LOOM_ISA_SCALAR);
        loom_attn_run(&t);
        loom_attn_run_ref(&r);
        cr_assert(memcmp(out[0], out[1], sizeof(float) * (size_t)(n_q * dh)) == 0, "n_q %d: scalar pin", n_q);
        if (loom_isa_best() == LOOM_ISA_AVX2) {
            loom_isa_force(LOOM_ISA_AVX2);
            loom_attn_run(&t);
            loom_attn_run_avx2(&s);
            cr_assert(memcmp(out[0], out[2], sizeof(float) * (size_t)(n_q * dh)) == 0, "n_q %d: avx2", n_q);
            cr_assert(memcmp(out[0], out[1], sizeof(float) * (size_t)(n_q * dh)) != 0,
                      "n_q %d: the AVX2 dispatch ran the reference", n_q);
        }
        loom_isa_force(LOOM_ISA_AVX512); /* undo the pin (clamped to the hardware) */
    }
    loom_free(kv);
}

Test(attn, exp256_relative_error_below_2e_7) {
    if (!has_avx2()) cr_skip_test("no AVX2 + FMA on this CPU");
    enum { N = 1 << 20 };
    float *x = loom_malloc(sizeof(float) * N), *y = loom_malloc(sizeof(float) * N);
    for (int i = 0; i < N; i++) x[i] = -87.0f + 175.0f * (float)i / (float)(N - 1); /* the whole clamp range */
    x[0] = -87.0f;
    x[N - 1] = 88.0f;
    x[N / 2] = 0.0f;
    loom_test_exp256(y, x, N);
    double worst = 0.0;
    int at = 0;
    for (int i = 0; i < N; i++) {
        double e = exp((double)x[i]), rel = fabs((double)y[i] - e) / e;
        if (rel > worst) worst = rel, at = i;
    }
    cr_assert(worst < 2e-7, "exp256(%.9g) = %.9g, e^x = %.9g: relative error %.3g", x[at], y[at], exp((double)x[at]),
              worst);
    cr_assert(y[N / 2] == 1.0f, "exp256(0) = %.9g", y[N / 2]);
    /* past the clamp: finite and monotone, never inf or 0 (a masked score of -1e30 still gives a finite factor) */
    float big[8] = {-1e30f, -200.0f, -88.0f, 89.0f, 1e30f, -87.0f, 88.0f, 0.5f}, eb[8];
    loom_test_exp256(eb, big, 8);
    for (int i = 0; i < 8; i++) cr_assert(isfinite(eb[i]) && eb[i] > 0.0f, "exp256(%g) = %g", big[i], eb[i]);
    loom_free(x);
    loom_free(y);
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
