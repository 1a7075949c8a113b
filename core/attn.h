/* core/attn.h — fused attention for up to 16 query vectors against a masked run of keys (flash-attention style:
 * one pass over the keys with an online softmax, no score matrix).
 *
 *   out[m] = sum_j softmax_j(scale * q[m]·k[j]) v[j]     over the keys j with lo[m] <= pos(j) <= hi[m]
 *
 * Keys come as up to LOOM_ATTN_MAX_SEGS segments of rows (a KV cache ring can wrap, and a prefill batch keeps
 * its own keys apart from the cache): segment s holds keys at absolute positions pos0 .. pos0+n-1, key i at
 * k + i*stride (floats), value at v + i*stride. The 16 query lanes are typically the GQA group of query heads
 * sharing one KV head times a few consecutive positions, so every key row loaded serves 16 dot products.
 * All arithmetic is f32; the SIMD versions differ from the scalar reference only by summation order and their
 * exp approximation (relative error < 2e-7).
 */
#ifndef LOOM_CORE_ATTN_H
#define LOOM_CORE_ATTN_H

#include <stdint.h>

#define LOOM_ATTN_LANES    16
#define LOOM_ATTN_MAX_SEGS 4

typedef struct loom_attn_seg {
    const float *k, *v; /* first key / value row of the segment (head offset applied) */
    int64_t      stride; /* floats between consecutive rows */
    int64_t      pos0;   /* absolute position of row 0 */
    int64_t      n;      /* rows */
} loom_attn_seg;

typedef struct loom_attn_task {
    int            n_q;       /* query vectors, 1..16 */
    int            d_head;
    float          scale;
    const float   *q[LOOM_ATTN_LANES];   /* each [d_head] */
    float         *out[LOOM_ATTN_LANES]; /* each [d_head] */
    int64_t        lo[LOOM_ATTN_LANES], hi[LOOM_ATTN_LANES]; /* visible positions, inclusive */
    int            n_seg;
    loom_attn_seg  seg[LOOM_ATTN_MAX_SEGS];
} loom_attn_task;

/* Runs one task with the best kernel for this CPU (AVX-512, else AVX2 + FMA, when d_head <= 256). */
void loom_attn_run(const loom_attn_task *t);
/* The scalar reference (and the fallback). */
void loom_attn_run_ref(const loom_attn_task *t);
/* AVX-512 version (core/attn_avx512.c); requires d_head <= 256. */
void loom_attn_run_avx512(const loom_attn_task *t);
/* AVX2 + FMA version (core/attn_avx2.c); requires d_head <= 256. */
void loom_attn_run_avx2(const loom_attn_task *t);

#endif
