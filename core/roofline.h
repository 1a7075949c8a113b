/* core/roofline.h — measured machine limits, for benchmarks that report ratios instead of bare times.
 *
 * Each function measures in the calling process, with the thread pool the benchmark itself uses, so a ratio
 * "kernel throughput / roofline" compares like with like (same threads, same moment, same machine).
 */
#ifndef LOOM_CORE_ROOFLINE_H
#define LOOM_CORE_ROOFLINE_H

#include <stddef.h>
#include <stdint.h>

#include "core/threadpool.h"

/* Streaming read bandwidth in bytes/s: every thread sums its slice of a `bytes` buffer (use >= 4x the last-level
 * cache) as one stream or as two interleaved ones, best of `reps` passes of each. Returns 0 when the buffer
 * cannot be allocated. */
double loom_roofline_read_bw(loom_pool *pool, size_t bytes, int reps);

/* The same probe with its buffer kept, for benchmarks that sample the bandwidth many times while they run. */
typedef struct loom_bw_probe loom_bw_probe;
loom_bw_probe *loom_bw_probe_new(size_t bytes); /* NULL when the buffer cannot be allocated */
void           loom_bw_probe_free(loom_bw_probe *p);
/* Best of `passes` passes of each read shape (one or two streams per thread; after one warm-up pass), bytes/s:
 * the peak the machine gives at its best moment. The shape of the best pass is kept for the windows. */
double loom_bw_probe_best(loom_bw_probe *p, loom_pool *pool, int passes);
int    loom_bw_probe_streams(const loom_bw_probe *p); /* streams per thread of the kept shape */
/* Passes back to back, in the kept shape, for at least `seconds` (at least one; a probe not yet calibrated by
 * loom_bw_probe_best is first); returns bytes/s over the whole window, dips included: the bandwidth the machine
 * gave during that window. *bytes_read and *elapsed may be NULL. */
double loom_bw_probe_window(loom_bw_probe *p, loom_pool *pool, double seconds, double *bytes_read, double *elapsed);

typedef enum loom_peak_kind {
    LOOM_PEAK_F32_FMA = 0,  /* f32 multiply-adds, widest FMA the CPU has (AVX-512 or AVX2) */
    LOOM_PEAK_INT8_DOT = 1, /* int8 multiply-adds: AVX-512 VNNI vpdpbusd, else AVX2 maddubs+madd */
    LOOM_PEAK_INT8_AMX = 2, /* int8 tile products (AMX tdpbssd); 0 when the quantized GEMM does not use AMX here */
} loom_peak_kind;

/* Peak operations per second (a multiply-add counts as 2 operations) over all pool threads, from a register-
 * only loop of independent accumulators. *isa_name (may be NULL) receives the instruction set measured. */
double loom_roofline_peak(loom_pool *pool, loom_peak_kind kind, const char **isa_name);

/* ==== internal: per-ISA loops (roofline_avx2.c, roofline_avx512.c); each returns the op count done ==== */
double loom_roofline_fma_avx2(long iters);
double loom_roofline_fma_avx512(long iters);
double loom_roofline_int8_avx2(long iters);
double loom_roofline_int8_avx512(long iters);
/* The read loop over 64-byte lines [b, e) of p as `streams` (1 or 2) interleaved streams (roofline_avx512.c). */
uint64_t loom_roofline_read_avx512(const unsigned char *p, size_t b, size_t e, int streams);

#endif
