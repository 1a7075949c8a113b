/* core/roofline.c — see roofline.h. The read loop uses SSE2 (baseline x86-64): two threads of 128-bit loads
 * already saturate memory, and the result must not depend on which SIMD file got which flags. */
#include "core/roofline.h"

#include <emmintrin.h>
#include <string.h>

#include "core/alloc.h"
#include "core/log.h"

typedef struct bw_job {
    const unsigned char *buf;
    size_t               bytes;
    _Alignas(64) uint64_t sink[64 * 8];
} bw_job;

static void bw_worker(void *arg, int ith, int nth) {
    bw_job *j = arg;
    size_t per = (j->bytes / (size_t)nth) & ~(size_t)255;
    const __m128i *p = (const __m128i *)(j->buf + per * (size_t)ith), *end = (const __m128i *)((const unsigned char *)p + per);
    __m128i a0 = _mm_setzero_si128(), a1 = a0, a2 = a0, a3 = a0;
    for (; p < end; p += 16) {
        a0 = _mm_add_epi64(a0, _mm_load_si128(p + 0));
        a1 = _mm_add_epi64(a1, _mm_load_si128(p + 1));
        a2 = _mm_add_epi64(a2, _mm_load_si128(p + 2));
        a3 = _mm_add_epi64(a3, _mm_load_si128(p + 3));
        a0 = _mm_add_epi64(a0, _mm_load_si128(p + 4));
        a1 = _mm_add_epi64(a1, _mm_load_si128(p + 5));
        a2 = _mm_add_epi64(a2, _mm_load_si128(p + 6));
        a3 = _mm_add_epi64(a3, _mm_load_si128(p + 7));
        a0 = _mm_add_epi64(a0, _mm_load_si128(p + 8));
        a1 = _mm_add_epi64(a1, _mm_load_si128(p + 9));
        a2 = _mm_add_epi64(a2, _mm_load_si128(p + 10));
        a3 = _mm_add_epi64(a3, _mm_load_si128(p + 11));
        a0 = _mm_add_epi64(a0, _mm_load_si128(p + 12));
        a1 = _mm_add_epi64(a1, _mm_load_si128(p + 13));
        a2 = _mm_add_epi64(a2, _mm_load_si128(p + 14));
        a3 = _mm_add_epi64(a3, _mm_load_si128(p + 15));
    }
    __m128i s = _mm_add_epi64(_mm_add_epi64(a0, a1), _mm_add_epi64(a2, a3));
    _mm_storeu_si128((__m128i *)&j->sink[8 * (ith & 63)], s); /* one cache line per thread */
}

double loom_roofline_read_bw(loom_pool *pool, size_t bytes, int reps) {
    bw_job *j = loom_calloc(1, sizeof *j);
    unsigned char *buf = loom_malloc(bytes);
    if (!j || !buf) {
        loom_free(j);
        loom_free(buf);
        return 0;
    }
    memset(buf, 1, bytes); /* touch every page so the first pass does not measure page faults */
    j->buf = buf;
    j->bytes = bytes;
    int nth = loom_pool_size(pool);
    size_t read = ((bytes / (size_t)nth) & ~(size_t)255) * (size_t)nth;
    double best = 0;
    for (int r = 0; r < (reps > 0 ? reps : 1); r++) {
        double t0 = loom_time_s();
        loom_pool_run(pool, bw_worker, j);
        double dt = loom_time_s() - t0;
        if (dt > 0 && read / dt > best) best = read / dt;
    }
    loom_free(buf);
    loom_free(j);
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
    if (j->kind == LOOM_PEAK_F32_FMA)
        j->ops[ith] = j->avx512 ? loom_roofline_fma_avx512(j->iters) : loom_roofline_fma_avx2(j->iters);
    else
        j->ops[ith] = j->avx512 ? loom_roofline_int8_avx512(j->iters) : loom_roofline_int8_avx2(j->iters);
}

double loom_roofline_peak(loom_pool *pool, loom_peak_kind kind, const char **isa_name) {
    __builtin_cpu_init();
    peak_job j = {0};
    j.kind = kind;
    if (kind == LOOM_PEAK_F32_FMA) j.avx512 = __builtin_cpu_supports("avx512f");
    else j.avx512 = __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512bw");
    if (!j.avx512 && !(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))) {
        if (isa_name) *isa_name = "none";
        return 0;
    }
    if (isa_name)
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
