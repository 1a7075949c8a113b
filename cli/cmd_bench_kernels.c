/* cli/cmd_bench_kernels.c — `loom bench kernels`: matrix-vector throughput per weight type against the
 * machine's measured memory read bandwidth, plus a prefill (matmul) rate.
 *
 * A decode step is bound by streaming the weights from DRAM, so the figure of merit is GB/s of weight bytes
 * read by loom_matvec, as a fraction of what a plain threaded streaming read achieves in the same run with
 * the same thread count. To keep the weights out of the caches (the host L3 may be hundreds of MiB), each
 * shape is replicated into as many copies as needed to exceed --cold-mib, and one rep multiplies every copy
 * once; the best rep is reported. The bandwidth probe streams a --bw-mib buffer (best of --reps).
 *
 * The matmul line multiplies the first shape by --tokens activation rows (prefill / ViT) and reports GFLOP/s
 * (2 * rows * cols * tokens per call) and the time per token relative to one cold matvec.
 */
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/commands.h"
#include "core/alloc.h"
#include "core/matmul.h"
#include "core/roofline.h"
#include "core/tensor.h"
#include "core/threadpool.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static uint64_t rng_next(uint64_t *s) {
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1DULL;
}

/* ==== memory bandwidth probe: core/roofline.h (shared with `loom bench -m`) ====
 * Probed again after every type and each type's ratios taken against the better of the probes before and
 * after it: this VM's bandwidth moves by a third from one minute to the next, and a single probe at the start
 * put whole columns above 1. */

static double probe_gbs(loom_bw_probe *p, loom_pool *pool, int reps) { return loom_bw_probe_best(p, pool, reps) / 1e9; }

/* ==== weights ==== */

/* Random bytes with sane f16 scales (no NaN/inf/subnormal slow paths). */
static void fill_weights(loom_dtype t, uint8_t *w, size_t bytes, uint64_t *s) {
    for (size_t i = 0; i + 8 <= bytes; i += 8) {
        uint64_t r = rng_next(s);
        memcpy(w + i, &r, 8);
    }
    const uint16_t d = 0x211F; /* ~0.01 */
    size_t bs = (size_t)loom_type_info_get(t)->type_size;
    switch (t) {
    case LOOM_F32:
        for (size_t i = 0; i + 4 <= bytes; i += 4) {
            float f = (float)((int)(rng_next(s) % 2001) - 1000) * 1e-3f;
            memcpy(w + i, &f, 4);
        }
        return;
    case LOOM_F16:
    case LOOM_BF16:
        for (size_t i = 0; i + 2 <= bytes; i += 2) {
            uint16_t h;
            memcpy(&h, w + i, 2);
            h = t == LOOM_F16 ? (uint16_t)((h & 0x83FF) | 0x3800) : (uint16_t)((h & 0x807F) | 0x3F00);
            memcpy(w + i, &h, 2);
        }
        return;
    default: break;
    }
    for (size_t b = 0; b + bs <= bytes; b += bs) {
        if (t == LOOM_Q6_K) {
            memcpy(w + b + 208, &d, 2);
            continue;
        }
        memcpy(w + b, &d, 2);
        if (t == LOOM_Q4_1 || t == LOOM_Q5_1 || t == LOOM_Q4_K || t == LOOM_Q5_K) memcpy(w + b + 2, &d, 2);
    }
}

typedef struct result {
    loom_dtype t;
    int64_t    rows, cols;
    double     gbs, ms;    /* matvec: weight GB/s, ms per call */
    int        copies;
} result;

/* Best-of-reps matvec over `copies` replicas of a rows x cols matrix. */
static int bench_matvec(loom_pool *pool, loom_dtype t, int64_t rows, int64_t cols, size_t cold_bytes, int reps,
                        result *res) {
    size_t rb = loom_row_size(t, cols);
    size_t mat = rb * (size_t)rows;
    int copies = (int)((cold_bytes + mat - 1) / mat);
    if (copies < 1) copies = 1;
    uint8_t *W = loom_malloc(mat * (size_t)copies);
    float *x = loom_malloc((size_t)cols * sizeof(float)), *y = loom_malloc((size_t)rows * sizeof(float));
    if (!W || !x || !y) {
        loom_free(W);
        loom_free(x);
        loom_free(y);
        return -1;
    }
    uint64_t s = 42 + (uint64_t)t;
    fill_weights(t, W, mat, &s);
    for (int c = 1; c < copies; c++) memcpy(W + (size_t)c * mat, W, mat);
    for (int64_t i = 0; i < cols; i++) x[i] = (float)((int)(rng_next(&s) % 2001) - 1000) * 1e-3f;
    double best = 1e30;
    int rc = 0;
    for (int r = 0; r < reps + 1 && !rc; r++) {
        double t0 = now_s();
        for (int c = 0; c < copies && !rc; c++) rc = loom_matvec(pool, y, W + (size_t)c * mat, t, cols, rows, x);
        double dt = (now_s() - t0) / copies;
        if (r > 0 && dt < best) best = dt;
    }
    res->t = t;
    res->rows = rows;
    res->cols = cols;
    res->copies = copies;
    res->ms = best * 1e3;
    res->gbs = mat / best / 1e9;
    loom_free(W);
    loom_free(x);
    loom_free(y);
    return rc;
}

/* Best-of-reps matmul: rows x cols weights, n_tok tokens. Returns seconds per call, < 0 on failure. */
static double bench_matmul(loom_pool *pool, loom_dtype t, int64_t rows, int64_t cols, int64_t n_tok, int reps) {
    size_t mat = loom_row_size(t, cols) * (size_t)rows;
    uint8_t *W = loom_malloc(mat);
    float *X = loom_malloc((size_t)(cols * n_tok) * sizeof(float));
    float *Y = loom_malloc((size_t)(rows * n_tok) * sizeof(float));
    double best = -1;
    if (W && X && Y) {
        uint64_t s = 7 + (uint64_t)t;
        fill_weights(t, W, mat, &s);
        for (int64_t i = 0; i < cols * n_tok; i++) X[i] = (float)((int)(rng_next(&s) % 2001) - 1000) * 1e-3f;
        best = 1e30;
        for (int r = 0; r < reps + 1; r++) {
            double t0 = now_s();
            if (loom_matmul(pool, Y, W, t, cols, rows, X, n_tok)) {
                best = -1;
                break;
            }
            double dt = now_s() - t0;
            if (r > 0 && dt < best) best = dt;
        }
    }
    loom_free(W);
    loom_free(X);
    loom_free(Y);
    return best;
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: loom bench kernels [-t THREADS] [--rows N] [--cols N] [--large-rows N] [--reps R]\n"
            "                          [--types LIST] [--tokens N] [--bw-mib M] [--cold-mib M] [--json]\n"
            "  matrix-vector throughput (GB/s of weights) per type vs the measured memory read bandwidth,\n"
            "  for rows x cols (default 4096 x 4096) and large-rows x cols (default 14336 x 4096), and the\n"
            "  matmul (prefill) rate for rows x cols x tokens (default 64). Defaults: -t 2, --reps 5,\n"
            "  --bw-mib 512, --cold-mib 1024, all types. LOOM_ISA=avx2|scalar caps the kernels.\n");
}

static int parse_i64(const char *s, int64_t lo, int64_t hi, int64_t *out) {
    char *end;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || v < lo || v > hi) return 0;
    *out = v;
    return 1;
}

int cmd_bench_kernels(int argc, char **argv) {
    int64_t threads = 2, rows = 4096, cols = 4096, large = 14336, reps = 5, n_tok = 64, bw_mib = 512, cold_mib = 1024;
    int json = 0;
    loom_dtype types[32];
    int n_types = 0;
    const loom_dtype all[] = {LOOM_F32,  LOOM_F16,  LOOM_BF16, LOOM_Q8_0, LOOM_Q4_0, LOOM_Q4_1,
                              LOOM_Q5_0, LOOM_Q5_1, LOOM_Q4_K, LOOM_Q5_K, LOOM_Q6_K};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int64_t *dst = NULL, lo = 1, hi = 1 << 20;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--json")) {
            json = 1;
            continue;
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) dst = &threads, hi = 512;
        else if (!strcmp(a, "--rows")) dst = &rows;
        else if (!strcmp(a, "--cols")) dst = &cols;
        else if (!strcmp(a, "--large-rows")) dst = &large, lo = 0;
        else if (!strcmp(a, "--reps")) dst = &reps, hi = 1000;
        else if (!strcmp(a, "--tokens")) dst = &n_tok, lo = 0, hi = 4096;
        else if (!strcmp(a, "--bw-mib")) dst = &bw_mib, hi = 1 << 16;
        else if (!strcmp(a, "--cold-mib")) dst = &cold_mib, lo = 0, hi = 1 << 16;
        else if (!strcmp(a, "--types")) {
            if (!v) goto bad;
            char buf[256];
            snprintf(buf, sizeof buf, "%s", v);
            for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
                loom_dtype t;
                if (!loom_type_from_name(tok, &t) || loom_vec_dot_type(t) == LOOM_DTYPE_COUNT || n_types >= 32) {
                    fprintf(stderr, "loom bench kernels: unsupported type '%s'\n", tok);
                    return 2;
                }
                types[n_types++] = t;
            }
            i++;
            continue;
        } else {
            fprintf(stderr, "loom bench kernels: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        }
        if (!v || !parse_i64(v, lo, hi, dst)) goto bad;
        i++;
        continue;
    bad:
        fprintf(stderr, "loom bench kernels: bad or missing value for %s\n", a);
        return 2;
    }
    if (!n_types) {
        memcpy(types, all, sizeof all);
        n_types = (int)(sizeof all / sizeof all[0]);
    }
    for (int i = 0; i < n_types; i++)
        if (cols % (loom_vec_dot_type(types[i]) == LOOM_Q8_K ? 256 : 32)) {
            fprintf(stderr, "loom bench kernels: --cols %lld is not a multiple of %s's block\n", (long long)cols,
                    loom_type_name(types[i]));
            return 2;
        }

    loom_err err = {0};
    loom_pool *pool = NULL;
    if (loom_pool_new(&pool, (int)threads, &err) != LOOM_OK) {
        fprintf(stderr, "loom bench kernels: %s\n", err.msg);
        return 1;
    }
    const loom_isa isa = loom_isa_active();
    loom_bw_probe *probe = loom_bw_probe_new((size_t)bw_mib << 20);
    double bw = probe ? probe_gbs(probe, pool, (int)reps) : 0;
    if (bw <= 0) {
        loom_bw_probe_free(probe);
        fprintf(stderr, "loom bench kernels: cannot allocate the %lld MiB bandwidth buffer\n", (long long)bw_mib);
        loom_pool_free(pool);
        return 1;
    }
    if (!json) {
        printf("isa %s, %lld threads, memory read bandwidth %.1f GB/s (%lld MiB stream, best of %lld; probed again "
               "after each type, whose ratios use the better of the probes around it)\n",
               loom_isa_name(isa), (long long)threads, bw, (long long)bw_mib, (long long)reps);
        printf("matvec: weights cold (>= %lld MiB of replicas per shape); matmul: %lld tokens, weights warm\n\n",
               (long long)cold_mib, (long long)n_tok);
        printf("%-5s | %12s %8s %6s | %12s %8s %6s | %9s %9s\n", "type", "GB/s", "ms", "of bw", "GB/s", "ms",
               "of bw", "mm GFLOP/s", "tok x");
        printf("%-5s | %-28s | %-28s |\n", "", "matvec rows x cols", large > 0 ? "matvec large-rows x cols" : "-");
    } else {
        printf("{\"isa\":\"%s\",\"threads\":%lld,\"bandwidth_gbs\":%.3f,\"rows\":%lld,\"cols\":%lld,"
               "\"large_rows\":%lld,\"tokens\":%lld,\"results\":[",
               loom_isa_name(isa), (long long)threads, bw, (long long)rows, (long long)cols, (long long)large,
               (long long)n_tok);
    }
    int rc = 0;
    for (int i = 0; i < n_types && !rc; i++) {
        loom_dtype t = types[i];
        result r1 = {0}, r2 = {0};
        if (bench_matvec(pool, t, rows, cols, (size_t)cold_mib << 20, (int)reps, &r1) ||
            (large > 0 && bench_matvec(pool, t, large, cols, (size_t)cold_mib << 20, (int)reps, &r2))) {
            fprintf(stderr, "loom bench kernels: %s failed (out of memory?)\n", loom_type_name(t));
            rc = 1;
            break;
        }
        const double bw_next = probe_gbs(probe, pool, (int)reps), bw_t = bw_next > bw ? bw_next : bw;
        bw = bw_next;
        double mm = n_tok > 0 ? bench_matmul(pool, t, rows, cols, n_tok, (int)reps) : -1;
        double gflops = mm > 0 ? 2.0 * rows * cols * n_tok / mm / 1e9 : 0;
        double speed = mm > 0 ? r1.ms * 1e-3 * n_tok / mm : 0; /* matmul per-token speed-up over matvec */
        if (!json) {
            printf("%-5s | %12.2f %8.3f %6.2f | ", loom_type_name(t), r1.gbs, r1.ms, r1.gbs / bw_t);
            if (large > 0) printf("%12.2f %8.3f %6.2f | ", r2.gbs, r2.ms, r2.gbs / bw_t);
            else printf("%12s %8s %6s | ", "-", "-", "-");
            printf("%9.1f %8.2fx\n", gflops, speed);
        } else {
            printf("%s{\"type\":\"%s\",\"bandwidth_gbs\":%.3f,\"matvec_gbs\":%.3f,\"matvec_ms\":%.4f,"
                   "\"matvec_ratio\":%.4f,\"large_gbs\":%.3f,\"large_ms\":%.4f,\"large_ratio\":%.4f,"
                   "\"matmul_gflops\":%.3f,\"matmul_speedup_per_token\":%.3f}",
                   i ? "," : "", loom_type_name(t), bw_t, r1.gbs, r1.ms, r1.gbs / bw_t, r2.gbs, r2.ms, r2.gbs / bw_t,
                   gflops, speed);
        }
        fflush(stdout);
    }
    if (json) printf("]}\n");
    else printf("\n'tok x': matmul time per token vs one cold matvec (higher is better).\n");
    loom_bw_probe_free(probe);
    loom_pool_free(pool);
    return rc;
}
