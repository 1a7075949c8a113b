/* fusion/lm_int.h — private layout of the backbone (weights bound to GGUF tensors, session state). */
#ifndef LOOM_FUSION_LM_INT_H
#define LOOM_FUSION_LM_INT_H

#include "core/arena.h"
#include "core/threadpool.h"
#include "fusion/lm.h"

/* A weight matrix: a view into the GGUF mapping. ne = [n_in, n_out(, n_expert)]. */
typedef struct lm_weight {
    const void *data;
    loom_dtype  type;
    int64_t     n_in, n_out, n_mat; /* n_mat > 1 for expert stacks */
    size_t      row_bytes;          /* bytes of one n_in row */
} lm_weight;

typedef struct lm_layer {
    const float *attn_norm; /* [d_model] */
    const float *ffn_norm;  /* [d_model] */
    lm_weight    wq, wk, wv, wo;
    bool         is_moe;
    bool         use_rope;  /* RoPE layer (chunked attention); NoPE layers use full attention */
    /* MoE */
    lm_weight    router;                        /* [d_model -> n_expert], kept f32 */
    lm_weight    gate_exps, up_exps, down_exps; /* [d_model -> d_expert] x E, [d_expert -> d_model] x E */
    lm_weight    gate_sh, up_sh, down_sh;       /* shared expert */
    /* dense */
    lm_weight    gate, up, down;
} lm_layer;

struct loom_lm {
    loom_gguf      *gguf;
    loom_lm_hparams hp;
    const void     *tok_embd;      /* [n_vocab rows of d_model] */
    loom_dtype      tok_embd_type;
    size_t          tok_embd_row_bytes;
    const float    *output_norm;
    lm_weight       output;
    float          *inv_freq;      /* [d_head/2] rope inverse frequencies incl. llama3 factors */
    float          *norm_copies;   /* f32 copies of norm weights stored in another type */
    lm_layer       *layers;
    size_t          weight_bytes;
};

/* KV cache of one layer: a ring of `cap` positions; position j lives in slot j % cap. Full-attention layers
 * have cap = n_ctx, chunked layers only min(n_ctx, chunk_size): a chunked query never sees an older chunk.
 * Head-major: one KV head's keys are contiguous, so an attention task (one KV head) reads them as one run
 * rather than rows a whole KV width apart (decode 1500 positions deep: 0.78-0.83 of the bandwidth against
 * 0.73-0.79 position-major; docs/PERF.md stop 16). */
typedef struct lm_kv {
    float  *k, *v; /* [n_kv_head][cap][d_head] f32; from 2 MiB on, on transparent huge pages (loom_malloc_huge) */
    size_t  bytes; /* of k, and of v */
    int64_t cap;
} lm_kv;

struct loom_lm_session {
    const loom_lm *lm;
    loom_pool     *pool;
    int64_t        n_ctx, pos;
    lm_kv         *kv; /* [n_layer] */
    int64_t        max_batch;
    loom_arena     scratch; /* per-eval buffers sized for max_batch */
    bool            profiling;
    double          prof_mark; /* end of the last timed part */
    loom_lm_profile prof;
};

#endif
