/* core/roofline.c — see roofline.h. */
#include "core/roofline.h"

#include <immintrin.h>
#include <string.h>

#include "core/alloc.h"
#include "core/gemm_int.h"
#include "core/matmul.h"
#include "core/log.h"

typedef struct bw_job {
    const unsigned char *buf;
    size_t               bytes;
    int                  avx2, avx512; /* the widest read loop this CPU runs */
    int                  streams;      /* per thread: 1 or 2 */
    _Alignas(64) uint64_t sink[64 * 8];
} bw_job;

/* The probe gets the same help the kernels get (wide loads, software prefetch 2 KiB ahead into L1 and 8 KiB
 * ahead into L2: the hardware prefetcher stops at 4 KiB page boundaries, see core/dot_rows.h; and one or two
 * interleaved streams per thread, as the matvec row ranges walk them), so "ratio to bandwidth" compares the
 * kernels with the best a plain read loop reaches here, not with a handicapped loop. Which shape is faster
 * depends on the core: with one stream per thread the probe read less than the Q6_K output head did on a Zen 3
 * VM (ratios up to 1.14); with two it read 25-31 GB/s where one gave 36-38 on a Zen 4 VM (ratios up to 1.24).
 * So the probe measures both and keeps the faster (loom_bw_probe_best). On Zen 3 one thread read 11.5-13 GB/s
 * from 2 streams and 9-10 from 4 or 8. */
__attribute__((target("avx2"))) static inline uint64_t read_sum_avx2_ns(const unsigned char *p, size_t b, size_t e,
                                                                        const int NS) {
    __m256i s[2];
    for (int k = 0; k < NS; k++) s[k] = _mm256_setzero_si256();
    const size_t h = (e - b) / NS;
    for (size_t l = b; l < b + h; l++) {
#pragma GCC unroll 2
        for (int k = 0; k < NS; k++) {
            const unsigned char *q = p + 64 * (l + (size_t)k * h);
            _mm_prefetch((const char *)q + 2048, _MM_HINT_T0);
            _mm_prefetch((const char *)q + 8192, _MM_HINT_T1); /* on Zen 4: no change from one stream, +10 % from two */
            s[k] = _mm256_add_epi64(s[k], _mm256_add_epi64(_mm256_load_si256((const __m256i *)q),
                                                           _mm256_load_si256((const __m256i *)(q + 32))));
        }
    }
    for (size_t l = b + NS * h; l < e; l++)
        s[0] = _mm256_add_epi64(s[0], _mm256_add_epi64(_mm256_load_si256((const __m256i *)(p + 64 * l)),
                                                       _mm256_load_si256((const __m256i *)(p + 64 * l + 32))));
    for (int k = 1; k < NS; k++) s[0] = _mm256_add_epi64(s[0], s[k]); /* every stream's loads feed the result */
    uint64_t out[4];
    _mm256_storeu_si256((__m256i *)out, s[0]);
    return out[0] + out[1] + out[2] + out[3];
}
__attribute__((target("avx2"))) static uint64_t read_sum_avx2(const unsigned char *p, size_t b, size_t e, int ns) {
    return ns == 1 ? read_sum_avx2_ns(p, b, e, 1) : read_sum_avx2_ns(p, b, e, 2);
}

static uint64_t read_sum_sse2(const unsigned char *p, size_t b, size_t e, int ns) {
    const __m128i *v = (const __m128i *)p;
    __m128i s0 = _mm_setzero_si128(), s1 = s0, s2 = s0, s3 = s0;
    const size_t h = ns == 2 ? (e - b) / 2 : 0;
    for (size_t l = b; l < b + h; l++) {
        _mm_prefetch((const char *)p + 64 * l + 2048, _MM_HINT_T0);
        _mm_prefetch((const char *)p + 64 * (l + h) + 2048, _MM_HINT_T0);
        s0 = _mm_add_epi64(s0, _mm_load_si128(v + 4 * l));
        s1 = _mm_add_epi64(s1, _mm_load_si128(v + 4 * l + 1));
        s2 = _mm_add_epi64(s2, _mm_load_si128(v + 4 * l + 2));
        s3 = _mm_add_epi64(s3, _mm_load_si128(v + 4 * l + 3));
        s0 = _mm_add_epi64(s0, _mm_load_si128(v + 4 * (l + h)));
        s1 = _mm_add_epi64(s1, _mm_load_si128(v + 4 * (l + h) + 1));
        s2 = _mm_add_epi64(s2, _mm_load_si128(v + 4 * (l + h) + 2));
        s3 = _mm_add_epi64(s3, _mm_load_si128(v + 4 * (l + h) + 3));
    }
    for (size_t l = b + 2 * h; l < e; l++)
        for (int q = 0; q < 4; q++) s0 = _mm_add_epi64(s0, _mm_load_si128(v + 4 * l + q));
    s0 = _mm_add_epi64(_mm_add_epi64(s0, s1), _mm_add_epi64(s2, s3));
    uint64_t out[2];
    _mm_storeu_si128((__m128i *)out, s0);
    return out[0] + out[1];
}

static void bw_worker(void *arg, int ith, int nth) {
    bw_job *j = arg;
    size_t lines = j->bytes / 64, b = lines * (size_t)ith / (size_t)nth, e = lines * (size_t)(ith + 1) / (size_t)nth;
    j->sink[8 * (ith & 63)] = j->avx512 ? loom_roofline_read_avx512(j->buf, b, e, j->streams)
                              : j->avx2 ? read_sum_avx2(j->buf, b, e, j->streams)
                                        : read_sum_sse2(j->buf, b, e, j->streams);
}

struct loom_bw_probe {
    bw_job *job;
    size_t  bytes;
    int     calibrated; /* job->streams is the faster shape, from a loom_bw_probe_best */
};

loom_bw_probe *loom_bw_probe_new(size_t bytes) {
    loom_bw_probe *p = loom_calloc(1, sizeof *p);
    bw_job *j = loom_calloc(1, sizeof *j);
    /* on transparent huge pages, as --no-mmap weights are: the same loop reads up to ~10 % more there than on
     * 4 KiB pages (fewer TLB misses), and a roofline must be the best the machine gives, not a flattering one */
    unsigned char *buf = bytes >= 64 ? loom_malloc_huge(bytes) : NULL;
    if (!p || !j || !buf) {
        loom_free(p);
        loom_free(j);
        if (buf) loom_free_huge(buf, bytes);
        return NULL;
    }
    memset(buf, 1, bytes); /* touch every page so the first pass does not measure page faults */
    j->buf = buf;
    j->bytes = bytes;
    __builtin_cpu_init();
    j->avx2 = __builtin_cpu_supports("avx2");
    /* the machine's bandwidth, whatever LOOM_ISA caps the kernels at (roofline_avx512.c is built for this set) */
    const loom_cpu_features *f = loom_cpu_features_get();
    j->avx512 = f->avx512f && f->avx512bw && f->avx512vl && f->avx512vnni;
    j->streams = 2;
    p->job = j;
    p->bytes = bytes / 64 * 64;
    return p;
}

void loom_bw_probe_free(loom_bw_probe *p) {
    if (!p) return;
    loom_free_huge((void *)p->job->buf, p->job->bytes);
    loom_free(p->job);
    loom_free(p);
}

/* Both shapes in turn, `passes` passes each: the best pass is the peak, and its shape the one the windows use. */
double loom_bw_probe_best(loom_bw_probe *p, loom_pool *pool, int passes) {
    double best = 0;
    int best_streams = p->job->streams;
    for (int r = 0; r < 2 * (passes > 0 ? passes : 1) + 1; r++) {
        p->job->streams = 1 + r % 2;
        double t0 = loom_time_s();
        loom_pool_run(pool, bw_worker, p->job);
        double dt = loom_time_s() - t0;
        if (r > 0 && dt > 0 && p->bytes / dt > best) { /* pass 0 warms threads and TLB */
            best = p->bytes / dt;
            best_streams = p->job->streams;
        }
    }
    p->job->streams = best_streams;
    p->calibrated = 1;
    return best;
}

int loom_bw_probe_streams(const loom_bw_probe *p) { return p->job->streams; }

double loom_bw_probe_window(loom_bw_probe *p, loom_pool *pool, double seconds, double *bytes_read, double *elapsed) {
    if (!p->calibrated) loom_bw_probe_best(p, pool, 2);
    double t0 = loom_time_s(), t = t0, read = 0;
    do {
        loom_pool_run(pool, bw_worker, p->job);
        read += (double)p->bytes;
        t = loom_time_s();
    } while (t - t0 < seconds);
    if (bytes_read) *bytes_read = read;
    if (elapsed) *elapsed = t - t0;
    return t > t0 ? read / (t - t0) : 0;
}

double loom_roofline_read_bw(loom_pool *pool, size_t bytes, int reps) {
    loom_bw_probe *p = loom_bw_probe_new(bytes);
    if (!p) return 0;
    double best = loom_bw_probe_best(p, pool, reps);
    loom_bw_probe_free(p);
    return best;
}

typedef struct peak_job {
    int    kind, avx512;
    long   iters;
    double ops[512];
} peak_job;

static void peak_worker(void *arg, int ith, int nth) {
    peak_job *j = arg;
    (void)nth;
    if (j->kind == LOOM_PEAK_INT8_AMX)
        j->ops[ith] = loom_gemm_amx_peak_loop(j->iters / 8);
    else if (j->kind == LOOM_PEAK_F32_FMA)
        j->ops[ith] = j->avx512 ? loom_roofline_fma_avx512(j->iters) : loom_roofline_fma_avx2(j->iters);
    else
        j->ops[ith] = j->avx512 ? loom_roofline_int8_avx512(j->iters) : loom_roofline_int8_avx2(j->iters);
}

double loom_roofline_peak(loom_pool *pool, loom_peak_kind kind, const char **isa_name) {
    peak_job j = {0};
    j.kind = kind;
    if (kind == LOOM_PEAK_INT8_AMX) {
        if (!loom_gemm_amx_active()) {
            if (isa_name) *isa_name = "none";
            return 0;
        }
        j.avx512 = 1;
    } else {
        /* the ISA the kernels dispatch to (LOOM_ISA caps it), so the peak is that of the instructions used */
        j.avx512 = loom_isa_active() >= LOOM_ISA_AVX512;
    }
    if (!j.avx512 && loom_isa_active() < LOOM_ISA_AVX2) {
        if (isa_name) *isa_name = "none";
        return 0;
    }
    if (isa_name && kind == LOOM_PEAK_INT8_AMX) *isa_name = "AMX int8";
    else if (isa_name)
        *isa_name = kind == LOOM_PEAK_F32_FMA ? (j.avx512 ? "AVX-512 FMA" : "AVX2 FMA")
                                              : (j.avx512 ? "AVX-512 VNNI" : "AVX2 maddubs");
    int nth = loom_pool_size(pool);
    double best = 0;
    j.iters = 2000000;
    for (int r = 0; r < 5; r++) {
        double t0 = loom_time_s();
        loom_pool_run(pool, peak_worker, &j);
        double dt = loom_time_s() - t0, ops = 0;
        for (int t = 0; t < nth && t < 512; t++) ops += j.ops[t];
        if (dt > 0 && ops / dt > best) best = ops / dt;
    }
    return best;
}
