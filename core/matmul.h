/* core/matmul.h — dot products, matrix-vector and matrix-matrix products over quantized weights.
 *
 * The hot path of the backbone and the ViT. Weights W have ne = [n_in, n_out] (row o is n_in values of the
 * weight type, contiguous); activations are f32.
 *
 *   loom_matvec:  y[o]      = sum_i W[o][i] * x[i]           y [n_out], x [n_in]
 *   loom_matmul:  Y[t][o]   = sum_i W[o][i] * X[t][i]        Y [n_tok, n_out], X [n_tok, n_in]
 *
 * How the activations are read depends on the weight type ("vec_dot type", as in ggml):
 *   F32, F16, BF16 weights      -> f32 activations (exact products, f32 accumulation)
 *   Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 -> activations quantized to Q8_0 blocks, integer dot products per block
 *   Q4_K, Q5_K, Q6_K             -> activations quantized to Q8_K blocks, integer dot products per block
 * Each kernel has a scalar reference (`_ref`) and AVX2 / AVX-512 (VNNI where present) versions; the fastest
 * one the CPU supports is chosen at run time (loom_cpu_features). Results of SIMD and scalar kernels agree to
 * float rounding of the per-block scale sums.
 */
#ifndef LOOM_CORE_MATMUL_H
#define LOOM_CORE_MATMUL_H

#include <stddef.h>
#include <stdint.h>

#include "core/tensor.h"
#include "core/threadpool.h"

typedef enum loom_isa { LOOM_ISA_SCALAR = 0, LOOM_ISA_AVX2 = 1, LOOM_ISA_AVX512 = 2 } loom_isa;

typedef struct loom_cpu_features {
    int avx2, fma, f16c, avx512f, avx512bw, avx512vl, avx512vnni, avx512bf16, avxvnni;
    int amd, family, model; /* vendor AuthenticAMD; display family and model (CPUID leaf 1) */
} loom_cpu_features;

const loom_cpu_features *loom_cpu_features_get(void);
loom_isa    loom_isa_best(void);              /* highest ISA the kernels can use here */
void        loom_isa_force(loom_isa isa);     /* tests/bench: pin the dispatch (clamped to what the CPU has) */
const char *loom_isa_name(loom_isa isa);
loom_isa    loom_isa_active(void);            /* what loom_vec_dot/matvec/matmul dispatch to now (best or forced) */

/* How many interleaved streams of weight rows each thread's share of a matvec is walked as: 1 or 2. The
 * faster one depends on the core's prefetchers (docs/PERF.md, stop 16): 2 on the Intel Xeons measured here,
 * 1 on Zen 4, where two streams read up to ~20 % less. LOOM_ROW_STREAMS=1|2 overrides the CPU's default.
 * Results are the same bits either way. */
int  loom_row_streams(void);
void loom_row_streams_force(int streams); /* tests/bench: 1 or 2; 0 restores the default */
/* How a matvec's rows are shared among the pool's threads (core/matmul.c, mv_worker): LOOM_MV_STEAL, each
 * thread's own contiguous range and then back halves of the others' (the default; measured on Zen 4), or
 * LOOM_MV_GUIDED, guided self-scheduling (stop 16's; unmeasured against steal on Intel). LOOM_MV_SCHEDULE=
 * guided|steal overrides the default. Results are the same bits either way. */
typedef enum { LOOM_MV_STEAL = 1, LOOM_MV_GUIDED = 2 } loom_mv_schedule_kind;
loom_mv_schedule_kind loom_mv_schedule(void);
void loom_mv_schedule_force(loom_mv_schedule_kind kind); /* tests/bench; 0 restores the default */
/* Whether the matvec kernels also prefetch weights far ahead into L2 (core/dot_rows.h): 1 unless
 * LOOM_FAR_PREFETCH=0. Read once, when the kernel tables are filled. */
int  loom_far_prefetch(void);

/* Activation format for weights of type wt, and its size for n values. */
loom_dtype loom_vec_dot_type(loom_dtype wt);
size_t     loom_act_row_size(loom_dtype wt, int64_t n);
/* Convert n f32 values into the activation format of wt (a plain copy for float weights). */
void       loom_act_quantize(loom_dtype wt, const float *x, void *xq, int64_t n);

/* One row: dot(W row, activation) where xq came from loom_act_quantize(wt, ...). */
float loom_vec_dot(loom_dtype wt, int64_t n, const void *w_row, const void *xq);
float loom_vec_dot_isa(loom_isa isa, loom_dtype wt, int64_t n, const void *w_row, const void *xq);

/* Threaded products; pool may be NULL (single thread). Scratch for the quantized activations is allocated
 * internally (grown once, reused). Returns 0, or -1 for an unsupported weight type or allocation failure. */
int loom_matvec(loom_pool *pool, float *y, const void *W, loom_dtype wt, int64_t n_in, int64_t n_out, const float *x);
int loom_matmul(loom_pool *pool, float *Y, const void *W, loom_dtype wt, int64_t n_in, int64_t n_out, const float *X,
                int64_t n_tok);

/* Frees the calling thread's activation scratch (it is otherwise kept for reuse and freed at thread exit);
 * for leak checks and for long-lived threads that are done multiplying. */
void loom_matmul_scratch_release(void);

/* Several products that share one input (q/k/v of a layer, gate/up of an FFN): the activations are quantized
 * once per weight type and all outputs are computed in one pool dispatch, which matters in decode where a
 * token is ~200 small products. Each job: Y [n_tok, n_out] = X W^T with W ne = [n_in, n_out]. */
typedef struct loom_matmul_job {
    float      *Y;
    const void *W;
    loom_dtype  wt;
    int64_t     n_out;
} loom_matmul_job;
int loom_matmul_multi(loom_pool *pool, const loom_matmul_job *jobs, int n_jobs, int64_t n_in, const float *X,
                      int64_t n_tok);

/* Products with inputs of their own (the routed experts of a batch: each expert's weights times the rows
 * routed to it), computed together: on the int8 engine two pool passes for all of them instead of two per
 * product. Job j: Y [n_tok, n_out] = X W^T (W ne = [n_in, n_out]); jobs with the same X and n_tok share one
 * activation quantization. Results equal loom_matmul's for each job, bit for bit. 0 on success, -1 on bad
 * arguments or allocation failure. */
typedef struct loom_matmul_group_job {
    float       *Y;
    const void  *W;
    loom_dtype   wt;
    int64_t      n_out;
    const float *X;
    int64_t      n_tok;
} loom_matmul_group_job;
int loom_matmul_grouped(loom_pool *pool, const loom_matmul_group_job *jobs, int n_jobs, int64_t n_in);

#endif
